#include "harness/push/provider_token.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "harness/base/bytes.hpp"

namespace mdmc::push {
namespace {

using Json = nlohmann::json;

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;

constexpr std::size_t kCoordinateBytes = 32;  // P-256

std::string openssl_text() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char buffer[256] = {};
  if (code != 0) ERR_error_string_n(code, buffer, sizeof buffer);
  return code != 0 ? buffer : "no OpenSSL detail";
}

BioPtr memory_source(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &length) != 1) return false;
  return std::string_view(group, length) == "prime256v1" || std::string_view(group, length) == "P-256";
}

// A public key from a PUBLIC KEY block, or from the first certificate in `pem`.
PkeyPtr read_public_key(std::string_view pem) {
  if (pem.size() > 64 * 1024) return nullptr;
  auto bio = memory_source(pem);
  if (!bio) return nullptr;
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    bio = memory_source(pem);
    if (!bio) return nullptr;
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  }
  ERR_clear_error();
  return key;
}

// DER ECDSA-Sig-Value to JWS's fixed-width R||S.
std::string raw_signature(const unsigned char* der, std::size_t size) {
  const unsigned char* cursor = der;
  SigPtr sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(size)));
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * kCoordinateBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, bytes, kCoordinateBytes) != static_cast<int>(kCoordinateBytes) ||
      BN_bn2binpad(s, bytes + kCoordinateBytes, kCoordinateBytes) != static_cast<int>(kCoordinateBytes)) {
    return {};
  }
  return out;
}

// JWS's R||S back to DER for OpenSSL; empty when it is not 64 bytes.
std::string der_signature(std::string_view raw) {
  if (raw.size() != 2 * kCoordinateBytes) return {};
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, kCoordinateBytes, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kCoordinateBytes, kCoordinateBytes, nullptr);
  SigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || !sig || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  unsigned char* der = nullptr;
  const int size = i2d_ECDSA_SIG(sig.get(), &der);
  if (size <= 0) return {};
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return out;
}

bool verify_es256(EVP_PKEY* key, std::string_view signed_text, std::string_view raw_sig) {
  const std::string der = der_signature(raw_sig);
  if (der.empty()) return false;
  MdCtxPtr md(EVP_MD_CTX_new());
  const bool ok = md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                                   reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) == 1;
  ERR_clear_error();
  return ok;
}

// A JSON object from base64url text, or a discarded value.
Json decode_object(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes.ok()) return Json(Json::value_t::discarded);
  Json object = Json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return Json(Json::value_t::discarded);
  return object;
}

std::string quoted(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out = base::base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

base::Result<std::string> base64url_decode(std::string_view text) {
  std::string standard(text);
  for (std::size_t i = 0; i < standard.size(); ++i) {
    char& c = standard[i];
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      char detail[64];
      std::snprintf(detail, sizeof detail, "not base64url: byte 0x%02x at offset %zu",
                    static_cast<unsigned>(static_cast<unsigned char>(c)), i);
      return base::fail(detail);
    }
  }
  if (standard.size() % 4 == 1) return base::fail("not base64url: impossible length");
  return base::base64_decode(standard);
}

base::Result<std::string> make_provider_token(std::string_view private_key_pem, std::string_view key_id,
                                              std::string_view team_id, base::SystemTime issued_at) {
  auto bio = memory_source(private_key_pem);
  if (!bio) return base::fail("provider token: out of memory");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
  if (!key) return base::fail("provider token: the key does not load: " + openssl_text());
  if (!is_p256(key.get())) return base::fail("provider token: the key is not EC P-256");

  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(issued_at.time_since_epoch()).count();
  const Json header = {{"alg", "ES256"}, {"kid", key_id}};
  const Json claims = {{"iss", team_id}, {"iat", iat}};
  const std::string signed_text = base64url_encode(quoted(header)) + "." + base64url_encode(quoted(claims));

  MdCtxPtr md(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(signed_text.data()),
                     signed_text.size()) != 1) {
    return base::fail("provider token: cannot sign: " + openssl_text());
  }
  std::string der(size, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(der.data()), &size,
                     reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) != 1) {
    return base::fail("provider token: cannot sign: " + openssl_text());
  }
  const std::string raw = raw_signature(reinterpret_cast<const unsigned char*>(der.data()), size);
  if (raw.empty()) return base::fail("provider token: the signature does not decode: " + openssl_text());
  return signed_text + "." + base64url_encode(raw);
}

ProviderTokenRejection check_provider_token(std::string_view token, const ProviderTokenPolicy& policy,
                                            base::SystemTime now, std::string_view verified_before) {
  auto invalid = [](std::string detail) { return ProviderTokenRejection{"InvalidProviderToken", std::move(detail)}; };
  if (token.empty()) return invalid("empty token");
  if (token.size() > kMaxProviderTokenBytes)
    return invalid("token longer than " + std::to_string(kMaxProviderTokenBytes));
  const auto first_dot = token.find('.');
  const auto second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos) {
    return invalid("not three dot-separated parts");
  }
  const Json header = decode_object(token.substr(0, first_dot));
  if (header.is_discarded()) return invalid("the header is not base64url JSON object");
  const Json claims = decode_object(token.substr(first_dot + 1, second_dot - first_dot - 1));
  if (claims.is_discarded()) return invalid("the claims are not a base64url JSON object");
  const auto signature = base64url_decode(token.substr(second_dot + 1));
  if (!signature.ok()) return invalid("the signature is not base64url");

  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get_ref<const std::string&>() != "ES256") {
    return invalid("alg is " + (alg == header.end() ? std::string("missing") : quoted(*alg)) + ", expected \"ES256\"");
  }
  const auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string() || kid->get_ref<const std::string&>() != policy.key_id) {
    return invalid("kid is " + (kid == header.end() ? std::string("missing") : quoted(*kid)) + ", expected " +
                   quoted(Json(policy.key_id)));
  }
  const auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != policy.team_id) {
    return invalid("iss is " + (iss == claims.end() ? std::string("missing") : quoted(*iss)) + ", expected " +
                   quoted(Json(policy.team_id)));
  }
  const auto iat = claims.find("iat");
  if (iat == claims.end() || !iat->is_number_integer()) return invalid("iat is missing or not an integer");

  // The signature before the age: an expired token that is not ours is still not ours.
  if (verified_before.empty() || token != verified_before) {
    const PkeyPtr key = read_public_key(policy.public_key_pem);
    if (!key || !is_p256(key.get())) return invalid("no EC P-256 key configured to verify it with");
    if (signature->size() != 2 * kCoordinateBytes) {
      return invalid("the signature is " + std::to_string(signature->size()) + " bytes, not a 64-byte R||S");
    }
    if (!verify_es256(key.get(), token.substr(0, second_dot), *signature)) {
      return invalid("the signature does not verify with the configured key");
    }
  }

  const std::int64_t issued =
      iat->is_number_unsigned() && iat->get<std::uint64_t>() > INT64_MAX ? INT64_MAX : iat->get<std::int64_t>();
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (issued > now_s && issued - now_s > policy.clock_skew.count()) {
    return invalid("iat " + std::to_string(issued) + " is " + std::to_string(issued - now_s) + " s in the future");
  }
  if (issued < now_s - policy.max_age.count()) {  // no overflow: now_s is a sane clock
    return ProviderTokenRejection{"ExpiredProviderToken",
                                  "iat " + std::to_string(issued) + " is " + std::to_string(now_s - issued) + " s old"};
  }
  return {};
}

}  // namespace mdmc::push
