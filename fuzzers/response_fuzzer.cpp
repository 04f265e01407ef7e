// The emulator's handling of server responses: a series fed any sequence of answers, and a
// network user fed any answer to UserAuthenticate, end in a state, within the series bound.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/emulator/emulator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mdmc;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Answers are separated by a line holding only "--": the second and later ones answer the
  // client's reports to the commands in the first ones.
  emulator::SeriesOptions options;
  options.max_exchanges = 16;
  options.policy =
      size % 2 ? emulator::AnswerPolicy::acknowledge : emulator::AnswerPolicy::not_now_until_device_configured;
  options.flags.user_configuration = size % 3 == 0;
  emulator::Series series(protocol::Channel{"UDID", "USER"}, protocol::UserFacts{"USER", "u", "U"}, options);
  std::size_t start = 0;
  int answers = 0;
  while (!series.done() && answers < 32) {
    auto end = bytes.find("\n--\n", start);
    auto piece = bytes.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    int status = piece.size() % 7 == 6 ? 204 : 200;
    series.on_answer(emulator::Answer{status, std::string(piece)});
    ++answers;
    if (end == std::string_view::npos) break;
    start = end + 4;
  }
  if (series.outcome().exchanges > options.max_exchanges) __builtin_trap();

  emulator::IdentitySource ids(size);
  emulator::UserAgent user("UDID", {"N1", "nick", "Nick"}, emulator::UserKind::network, ids);
  (void)user.on_user_authenticate(emulator::Answer{200, std::string(bytes)});
  (void)user.on_user_authenticate(emulator::Answer{200, std::string(bytes)});
  return 0;
}
