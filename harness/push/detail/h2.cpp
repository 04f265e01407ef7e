#include "harness/push/detail/h2.hpp"

#include <algorithm>
#include <cstring>

namespace mdmc::push::detail {
namespace {

ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  auto* body = static_cast<OutgoingBody*>(source->ptr);
  const std::size_t n = std::min(length, body->text.size() - body->sent);
  std::copy_n(body->text.data() + body->sent, n, buf);
  body->sent += n;
  if (body->sent == body->text.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

SessionPtr open_session(Role role, const SessionCallbacks& callbacks, void* user_data, const nghttp2_option* option,
                        std::span<const nghttp2_settings_entry> settings) {
  nghttp2_session_callbacks* raw_callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&raw_callbacks) != 0) return nullptr;
  const CallbacksPtr table(raw_callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(table.get(), callbacks.on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(table.get(), callbacks.on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(table.get(), callbacks.on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(table.get(), callbacks.on_frame);
  nghttp2_session_callbacks_set_on_frame_send_callback(table.get(), callbacks.on_frame_sent);
  nghttp2_session_callbacks_set_on_stream_close_callback(table.get(), callbacks.on_stream_close);
  nghttp2_session* raw = nullptr;
  // With a null option, the *_new2 constructors are the plain *_new ones (they are not the *2
  // API of 1.60, which 1.52 lacks).
  const int made = role == Role::client ? nghttp2_session_client_new2(&raw, table.get(), user_data, option)
                                        : nghttp2_session_server_new2(&raw, table.get(), user_data, option);
  if (made != 0) return nullptr;
  SessionPtr session(raw);
  if (nghttp2_submit_settings(session.get(), NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0) return nullptr;
  return session;
}

nghttp2_data_provider body_provider(OutgoingBody& body) {
  nghttp2_data_provider provider{};
  provider.source.ptr = &body;
  provider.read_callback = read_body;
  return provider;
}

bool selected_h2(const SSL* ssl) {
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
  return alpn_length == 2 && std::memcmp(alpn, "h2", 2) == 0;
}

}  // namespace mdmc::push::detail
