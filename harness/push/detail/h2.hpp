#pragma once
// nghttp2 plumbing shared by the fake APNs and the APNs client: the session as an owning
// pointer and how one is opened, header fields, bodies sent from a string, draining what a
// session wants to send, and ALPN h2. Private to harness/push.
// libnghttp2 1.52 (Debian 12) has only the ssize_t API (nghttp2_session_mem_send, ...); the
// *2 functions of 1.60 and later are absent.
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace mdmc::push::detail {

struct SessionDeleter {
  void operator()(nghttp2_session* session) const noexcept { nghttp2_session_del(session); }
};
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;

struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* callbacks) const noexcept { nghttp2_session_callbacks_del(callbacks); }
};
using CallbacksPtr = std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>;

struct OptionDeleter {
  void operator()(nghttp2_option* option) const noexcept { nghttp2_option_del(option); }
};
using OptionPtr = std::unique_ptr<nghttp2_option, OptionDeleter>;

// The callbacks a session calls (null: none), each handed the user_data open_session is given.
struct SessionCallbacks {
  nghttp2_on_begin_headers_callback on_begin_headers = nullptr;
  nghttp2_on_header_callback on_header = nullptr;
  nghttp2_on_data_chunk_recv_callback on_data_chunk = nullptr;
  nghttp2_on_frame_recv_callback on_frame = nullptr;
  nghttp2_on_frame_send_callback on_frame_sent = nullptr;
  nghttp2_on_stream_close_callback on_stream_close = nullptr;
};

enum class Role { client, server };

// A session with `callbacks` and `option` (null: nghttp2's defaults) whose first frame, queued,
// is SETTINGS with `settings`; null when nghttp2 cannot make the session or queue the settings.
SessionPtr open_session(Role role, const SessionCallbacks& callbacks, void* user_data, const nghttp2_option* option,
                        std::span<const nghttp2_settings_entry> settings);

// A body sent as a stream's DATA frames: `text` from `sent` on.
struct OutgoingBody {
  std::string text;
  std::size_t sent = 0;
};
// A data provider that sends `body` and ends the stream after it; `body` outlives the stream.
nghttp2_data_provider body_provider(OutgoingBody& body);

// A header field nghttp2 copies on submit: the strings need not outlive the call.
inline nghttp2_nv header_field(std::string_view name, std::string_view value) {
  // nghttp2 takes non-const pointers but only reads through them.
  return nghttp2_nv{const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(name.data())),
                    const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

// Appends what `session` wants to send to `out` until it has nothing more or `out` holds
// `cap` bytes (the caller writes, then drains again). False on a fatal session error.
inline bool drain_output(nghttp2_session* session, std::string& out, std::size_t cap) {
  while (out.size() < cap) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

// Bytes gathered before a write: enough to batch many small frames, small enough to bound
// what a client that does not read can make us hold.
inline constexpr std::size_t kOutputBatchBytes = 64 * 1024;

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// ALPN's wire form of "h2": APNs speaks HTTP/2 only.
inline constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
// Whether the TLS handshake on `ssl` selected h2.
bool selected_h2(const SSL* ssl);

}  // namespace mdmc::push::detail
