// Plain types shared by the HTTP/2 connection (H2Conn) and its users:
// options, header lists, stream ids and the event interface.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"

namespace ambit::http2 {

// HTTP/2 stream id as on the wire (client-initiated streams are odd).
using H2StreamId = int32_t;

enum class H2Role : uint8_t { kClient, kServer };

// HTTP/2 error codes we name explicitly (RFC 9113 §7).
enum H2ErrorCode : uint32_t {
  kH2NoError = 0x0,
  kH2ProtocolError = 0x1,
  kH2InternalError = 0x2,
  kH2FlowControlError = 0x3,
  kH2StreamClosed = 0x5,
  kH2RefusedStream = 0x7,
  kH2Cancel = 0x8,
  kH2ConnectError = 0xa,
};

struct H2Header {
  std::string name;   // lower case; pseudo headers start with ':'
  std::string value;
  bool operator==(const H2Header&) const = default;
};
using H2Headers = std::vector<H2Header>;

// Returns the value of the first header called `name`, or nullptr.
const std::string* FindHeader(const H2Headers& headers, std::string_view name);

// Settings and limits (ISTIO-COMPAT §1.4 client, §2.5 server).
struct H2Options {
  uint32_t initial_stream_window = 4u << 20;   // SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t connection_window = 16u << 20;      // WINDOW_UPDATE on stream 0
  uint32_t max_frame_size = 1u << 20;          // SETTINGS_MAX_FRAME_SIZE
  // Advertised SETTINGS_MAX_CONCURRENT_STREAMS (server only; 0 = don't send).
  uint32_t max_concurrent_streams = 200;
  // SETTINGS_MAX_HEADER_LIST_SIZE; 0 = role default (16 KiB client,
  // 64 KiB server). Also enforced on received header blocks.
  uint32_t max_header_list_size = 0;
  // Client: streams assumed allowed before the server's SETTINGS arrive.
  uint32_t initial_peer_max_streams = 100;
  // Stop serializing frames once this many output bytes are pending.
  size_t output_high_water = 256u << 10;
  base::Duration ping_interval = std::chrono::seconds(10);
  base::Duration ping_timeout = std::chrono::seconds(20);

  uint32_t EffectiveMaxHeaderList(H2Role role) const {
    if (max_header_list_size != 0) return max_header_list_size;
    return role == H2Role::kClient ? 16u << 10 : 64u << 10;
  }
};

// Events raised while the caller drives the connection (Feed, OnTick, ...).
// Handlers may call back into H2Conn (Write, Consume, SubmitResponse, Reset)
// but must not destroy it.
class H2Events {
 public:
  virtual ~H2Events() = default;
  // Server: request headers of a new stream. Client: final response headers
  // (":status" included; 1xx responses are not reported).
  virtual void OnStreamHeaders(H2StreamId id, const H2Headers& headers) = 0;
  // A second header block with END_STREAM: the peer's trailers (after its
  // body). OnStreamEnd follows.
  virtual void OnStreamTrailers(H2StreamId /*id*/, const H2Headers& /*trailers*/) {}
  // Payload bytes. They hold flow-control credit until Consume(id, n).
  virtual void OnStreamData(H2StreamId id, std::span<const std::byte> data) = 0;
  // END_STREAM received: the peer will send no more bytes on this stream.
  virtual void OnStreamEnd(H2StreamId /*id*/) {}
  // RST_STREAM received from the peer.
  virtual void OnStreamReset(H2StreamId /*id*/, uint32_t /*error_code*/) {}
  // The stream is gone (both directions closed, reset, or connection end).
  virtual void OnStreamClosed(H2StreamId /*id*/, uint32_t /*error_code*/) {}
  // Queued outgoing bytes of the stream were handed to the framer;
  // `queued` is what is still waiting (for low-watermark resumption).
  virtual void OnStreamDrained(H2StreamId /*id*/, size_t /*queued*/) {}
  virtual void OnGoAway(uint32_t /*error_code*/, H2StreamId /*last_stream_id*/) {}
  virtual void OnPingAck() {}
};

}  // namespace ambit::http2
