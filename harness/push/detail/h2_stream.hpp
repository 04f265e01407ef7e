#pragma once
// HTTP/2 over TLS on Asio, as the fake APNs and the APNs client both run it: the names they
// use, and the loop that writes what an nghttp2 session wants to send. Private to harness/push,
// for its files compiled as harness/push/CMakeLists.txt compiles Asio code.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <string>
#include <utility>

#include "harness/push/detail/h2.hpp"

namespace mdmc::push::detail {

// The names, for `using namespace detail::asio_names;` in a file's own namespace.
namespace asio_names {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace asio_names

enum class WriteEnd {
  sent,            // the session has nothing more to send
  session_failed,  // nghttp2 could not make its frames (a fatal session error)
  write_failed,    // the write failed or its deadline passed: the error_code says which
};

// Writes all that `session` wants to send, in batches of at most kOutputBatchBytes held in
// `output`, each write bounded by the deadline `arm_deadline()` sets on the stream.
template <typename ArmDeadline>
boost::asio::awaitable<std::pair<WriteEnd, boost::system::error_code>> write_output(asio_names::TlsStream& stream,
                                                                                    nghttp2_session* session,
                                                                                    std::string& output,
                                                                                    ArmDeadline arm_deadline) {
  using namespace asio_names;
  for (;;) {
    output.clear();
    if (!drain_output(session, output, kOutputBatchBytes)) co_return std::pair{WriteEnd::session_failed, error_code()};
    if (output.empty()) co_return std::pair{WriteEnd::sent, error_code()};
    arm_deadline();
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(output), kTuple);
    if (ec) co_return std::pair{WriteEnd::write_failed, ec};
  }
}

}  // namespace mdmc::push::detail
