// nghttp2 callbacks: translate library events into H2Events and stream
// bookkeeping. All run inside nghttp2_session_mem_recv / mem_send.
#include "common/http2/h2_callbacks.h"

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/http2/h2_conn.h"

namespace ambit::http2 {

namespace {

H2Conn& Conn(void* user_data) { return *static_cast<H2Conn*>(user_data); }

bool IsFinalHeaders(const H2Stream& stream, H2Role role) {
  if (role == H2Role::kServer) return true;
  const std::string* status = FindHeader(stream.headers, ":status");
  return status != nullptr && !status->empty() && (*status)[0] != '1';
}

}  // namespace

struct H2CallbackImpl {
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    H2Conn& conn = Conn(ud);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Stream* stream = conn.FindStream(frame->hd.stream_id);
    if (stream == nullptr && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        conn.role_ == H2Role::kServer) {
      stream = conn.CreateStream(frame->hd.stream_id);
    }
    if (stream != nullptr) {
      stream->headers.clear();
      stream->header_bytes = 0;
      stream->header_overflow = false;
    }
    return 0;
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                      const uint8_t* name, size_t namelen, const uint8_t* value,
                      size_t valuelen, uint8_t, void* ud) {
    H2Conn& conn = Conn(ud);
    H2Stream* stream = conn.FindStream(frame->hd.stream_id);
    if (stream == nullptr || stream->header_overflow) return 0;
    // RFC 9113 §6.5.2: size = name + value + 32 per field.
    stream->header_bytes += namelen + valuelen + 32;
    if (stream->header_bytes > conn.options_.EffectiveMaxHeaderList(conn.role_)) {
      stream->header_overflow = true;
      AMBIT_LOG(kWarn, "http2", "stream {}: header list exceeds {} bytes, resetting",
                frame->hd.stream_id, conn.options_.EffectiveMaxHeaderList(conn.role_));
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    stream->headers.push_back(
        H2Header{std::string(reinterpret_cast<const char*>(name), namelen),
                 std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
  }

  static void OnHeadersFrame(H2Conn& conn, const nghttp2_frame* frame) {
    H2Stream* stream = conn.FindStream(frame->hd.stream_id);
    if (stream == nullptr || stream->header_overflow) return;
    if (!stream->headers_reported && IsFinalHeaders(*stream, conn.role_)) {
      stream->headers_reported = true;
      // Handed over and dropped: a long-lived stream keeps no header copy.
      const H2Headers headers = std::move(stream->headers);
      stream->headers = H2Headers();
      conn.events_.OnStreamHeaders(stream->id, headers);
    } else if (stream->headers_reported && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      const H2Headers trailers = std::move(stream->headers);
      stream->headers = H2Headers();
      conn.events_.OnStreamTrailers(stream->id, trailers);
    }
  }

  static void OnEndStream(H2Conn& conn, const nghttp2_frame* frame) {
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return;
    H2Stream* stream = conn.FindStream(frame->hd.stream_id);
    if (stream == nullptr || stream->end_received || stream->header_overflow) return;
    stream->end_received = true;
    conn.events_.OnStreamEnd(stream->id);
  }

  // Client requests still queued in nghttp2 (over the peer's stream limit)
  // will never be sent after GOAWAY: report them refused (safe to retry).
  static void RefuseUnsent(H2Conn& conn, int32_t last_stream_id) {
    std::vector<H2StreamId> refused;
    for (const auto& [id, stream] : conn.streams_) {
      if (id > last_stream_id && nghttp2_session_find_stream(conn.session_, id) == nullptr) {
        refused.push_back(id);
      }
    }
    for (H2StreamId id : refused) RefuseStream(conn, id);
  }

  static void RefuseStream(H2Conn& conn, H2StreamId id) {
    if (conn.FindStream(id) == nullptr) return;
    conn.EraseStream(id);
    conn.events_.OnStreamClosed(id, NGHTTP2_REFUSED_STREAM);
  }

  // A queued request that nghttp2 gave up on (GOAWAY, stream ids spent).
  static int OnFrameNotSend(nghttp2_session* session, const nghttp2_frame* frame, int,
                            void* ud) {
    H2Conn& conn = Conn(ud);
    if (frame->hd.type == NGHTTP2_HEADERS && conn.role_ == H2Role::kClient &&
        nghttp2_session_find_stream(session, frame->hd.stream_id) == nullptr) {
      RefuseStream(conn, frame->hd.stream_id);
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    H2Conn& conn = Conn(ud);
    conn.keepalive_.OnFrameReceived(conn.clock_.Now());
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        OnHeadersFrame(conn, frame);
        OnEndStream(conn, frame);
        break;
      case NGHTTP2_DATA:
        OnEndStream(conn, frame);
        break;
      case NGHTTP2_RST_STREAM:
        if (conn.FindStream(frame->hd.stream_id) != nullptr) {
          conn.events_.OnStreamReset(frame->hd.stream_id, frame->rst_stream.error_code);
        }
        break;
      case NGHTTP2_GOAWAY:
        conn.goaway_received_ = true;
        conn.events_.OnGoAway(frame->goaway.error_code, frame->goaway.last_stream_id);
        RefuseUnsent(conn, frame->goaway.last_stream_id);
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
          conn.keepalive_.OnPingAck();
          conn.events_.OnPingAck();
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                         const uint8_t* data, size_t len, void* ud) {
    H2Conn& conn = Conn(ud);
    H2Stream* stream = conn.FindStream(stream_id);
    if (stream == nullptr) {
      nghttp2_session_consume(session, stream_id, len);  // nobody will read it
      return 0;
    }
    stream->unconsumed += len;
    conn.events_.OnStreamData(
        stream_id, std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), len));
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* ud) {
    H2Conn& conn = Conn(ud);
    H2Stream* stream = conn.FindStream(stream_id);
    if (stream == nullptr) return 0;
    // Credit the user never returned would otherwise leak from the
    // connection window.
    if (stream->unconsumed > 0) {
      nghttp2_session_consume_connection(session, stream->unconsumed);
    }
    conn.events_.OnStreamClosed(stream_id, error_code);
    conn.EraseStream(stream_id);
    return 0;
  }

  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    H2Conn& conn = Conn(ud);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      H2Stream* stream = conn.FindStream(frame->hd.stream_id);
      if (stream != nullptr && stream->reset_after_end && !stream->end_received) {
        nghttp2_submit_rst_stream(conn.session_, NGHTTP2_FLAG_NONE, stream->id,
                                  NGHTTP2_NO_ERROR);
      }
      return 0;
    }
    if (frame->hd.type != NGHTTP2_GOAWAY) return 0;
    conn.goaway_sent_ = true;
    uint32_t code = frame->goaway.error_code;
    if (code != NGHTTP2_NO_ERROR && !conn.local_terminate_ && conn.failure_.ok()) {
      conn.failure_ = absl::InvalidArgumentError(
          "HTTP/2 peer violated the protocol (sent GOAWAY " + std::string(nghttp2_http2_strerror(code)) +
          "): " + (conn.last_error_.empty() ? std::string("malformed frame or header block")
                                   : conn.last_error_) +
          "; check that the peer speaks HTTP/2 (ALPN h2)");
    }
    return 0;
  }

  static int OnInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                            void* ud) {
    H2Conn& conn = Conn(ud);
    conn.last_error_ = std::string(nghttp2_strerror(lib_error)) + " in frame type " +
                       std::to_string(frame->hd.type) + " on stream " +
                       std::to_string(frame->hd.stream_id);
    return 0;
  }

  // Lets DATA frames grow up to the peer's max frame size (nghttp2 would
  // stop at 16 KiB) when enough bytes are queued.
  static ssize_t DataLength(nghttp2_session*, uint8_t, int32_t stream_id, int32_t session_window,
                            int32_t stream_window, uint32_t remote_max_frame, void* ud) {
    constexpr ssize_t kDefault = 16384;
    const H2Stream* stream = Conn(ud).FindStream(stream_id);
    ssize_t queued = stream == nullptr ? 0 : static_cast<ssize_t>(stream->send_queue.size());
    ssize_t limit = std::min<ssize_t>({session_window, stream_window,
                                       static_cast<ssize_t>(remote_max_frame)});
    return std::max<ssize_t>(1, std::min(limit, std::max(queued, kDefault)));
  }

  static int OnError(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
    Conn(ud).last_error_.assign(msg, len);
    AMBIT_LOG(kDebug, "http2", "nghttp2: {}", Conn(ud).last_error_);
    return 0;
  }
};

nghttp2_session_callbacks* H2Callbacks::Make() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2CallbackImpl::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2CallbackImpl::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2CallbackImpl::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2CallbackImpl::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2CallbackImpl::OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &H2CallbackImpl::OnFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, &H2CallbackImpl::OnFrameNotSend);
  nghttp2_session_callbacks_set_error_callback2(cbs, &H2CallbackImpl::OnError);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs,
                                                               &H2CallbackImpl::OnInvalidFrame);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs,
                                                                 &H2CallbackImpl::DataLength);
  return cbs;
}

ssize_t H2Callbacks::ReadStreamData(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                    size_t length, uint32_t* data_flags,
                                    nghttp2_data_source* source, void* ud) {
  H2Conn& conn = Conn(ud);
  auto* stream = static_cast<H2Stream*>(source->ptr);
  size_t n = stream->send_queue.Pull(std::span<std::byte>(reinterpret_cast<std::byte*>(buf), length));
  if (stream->send_queue.empty() && stream->write_closed) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    stream->end_sent = true;
    if (stream->trailers.has_value()) {
      // END_STREAM goes on the trailers' HEADERS frame instead.
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (!conn.SubmitTrailerFrame(*stream).ok()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  } else if (n == 0) {
    stream->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n > 0) conn.events_.OnStreamDrained(stream_id, stream->send_queue.size());
  return static_cast<ssize_t>(n);
}

}  // namespace ambit::http2
