// Internal: nghttp2 callback table for H2Conn (trampolines into H2Conn).
#pragma once

#include <nghttp2/nghttp2.h>

namespace ambit::http2 {

struct H2Callbacks {
  // Returns a new callback table; the caller deletes it with
  // nghttp2_session_callbacks_del.
  static nghttp2_session_callbacks* Make();
  // Data provider read callback serving H2Stream::send_queue.
  static ssize_t ReadStreamData(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                size_t length, uint32_t* data_flags,
                                nghttp2_data_source* source, void* user_data);
};

}  // namespace ambit::http2
