// The target profile loader: any bytes as a profile either load or raise a LoadError naming a
// line. Any other exception, a crash, a hang or an unbounded allocation is a bug.
//
// So that inputs reach past `${env:...}` and file names, the fuzzer gives the profile a folder
// with a test CA (ca.crt, ca.key) and an identity pool (pool/), sets the environment variables
// the shipped profiles read, and lends a built-in server to inputs of even length.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "harness/base/load_error.hpp"
#include "harness/pki/pki.hpp"
#include "harness/target/profile.hpp"

namespace {

namespace fs = std::filesystem;

struct Fixture {
  fs::path dir;
  std::optional<mdmc::target::BuiltinTarget> builtin;

  Fixture() {
    dir = fs::temp_directory_path() / ("mdmc_profile_fuzzer_" + std::to_string(::getpid()));
    fs::create_directories(dir / "pool");
    auto ca = mdmc::pki::create_test_ca("profile fuzzer CA");
    if (!ca) fail(ca.message());
    auto device = mdmc::pki::issue_device_identity(*ca, "device-1", mdmc::pki::KeyType::ec_p256);
    if (!device) fail(device.message());
    if (auto written = mdmc::pki::write_identity(*ca, dir / "ca.crt", dir / "ca.key"); !written)
      fail(written.message());
    if (auto written = mdmc::pki::write_identity(*device, dir / "pool/device-1.crt", dir / "pool/device-1.key");
        !written) {
      fail(written.message());
    }
    builtin = mdmc::target::BuiltinTarget{8443, *ca};
    // What specs/targets/nanomdm.yaml and micromdm.yaml read; relative paths resolve in `dir`.
    ::setenv("NANOMDM_CA_CERT", "ca.crt", 1);
    ::setenv("NANOMDM_CA_KEY", "ca.key", 1);
    ::setenv("NANOMDM_API_KEY", "key", 1);
    ::setenv("MICROMDM_TOPIC", "com.apple.mgmt.External.fuzz", 1);
    ::setenv("MICROMDM_TLS_CA", "ca.crt", 1);
    ::setenv("MICROMDM_IDENTITIES", "pool", 1);
    ::setenv("MICROMDM_P12_PASSWORD", "", 1);
    ::setenv("MICROMDM_API_KEY", "key", 1);
  }
  [[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "profile_loader_fuzzer: cannot set up %s: %s\n", dir.c_str(), why.c_str());
    std::abort();
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& f = fixture();
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  try {
    (void)mdmc::target::load_profile_text(yaml, "fuzz-target.yaml", f.dir, size % 2 == 0 ? f.builtin : std::nullopt);
  } catch (const mdmc::base::LoadError&) {
    // The profile is wrong, and the error says where: the expected outcome for most inputs.
  }
  return 0;
}
