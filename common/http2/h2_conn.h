// Connection side of HTTP/2 (client or server) over nghttp2's sans-I/O API:
// bytes in through Feed(), bytes out through PendingOutput()/ConsumeOutput().
// No sockets, no threads: the caller owns I/O and time.
//
// Flow control is driven by the consumer: received DATA keeps its
// flow-control credit until Consume(stream, n) says the bytes left our
// buffers, so a slow reader slows the sender instead of growing memory.
// Outgoing bytes go into a per-stream queue (Write/CloseWrite) that nghttp2
// drains as the peer's windows allow; QueuedBytes() is the watermark input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/http2/h2_keepalive.h"
#include "common/http2/h2_stream.h"
#include "common/http2/h2_types.h"

struct nghttp2_session;

namespace ambit::http2 {

class H2Conn {
 public:
  // Creates the session and queues the preface + SETTINGS + connection
  // WINDOW_UPDATE. `events` and `clock` must outlive the H2Conn.
  static StatusOr<std::unique_ptr<H2Conn>> Create(H2Role role, const H2Options& options,
                                                  H2Events& events, const base::Clock& clock);
  ~H2Conn();
  H2Conn(const H2Conn&) = delete;
  H2Conn& operator=(const H2Conn&) = delete;

  H2Role role() const { return role_; }

  // ---- input -------------------------------------------------------------
  // Processes bytes from the peer; raises events. A protocol violation
  // returns an error (and queues GOAWAY); the connection is then dead.
  Status Feed(std::span<const std::byte> bytes);

  // ---- output ------------------------------------------------------------
  // Bytes to write to the transport (serializes pending frames first, up to
  // output_high_water). Valid until the next call into H2Conn.
  std::span<const std::byte> PendingOutput();
  void ConsumeOutput(size_t n);
  // PendingOutput() moved out in one vector.
  std::vector<std::byte> TakeOutput();
  bool WantsWrite() const;
  bool WantsRead() const;
  // Nothing more to read or write: the transport can be closed.
  bool Closed() const;

  // ---- streams -----------------------------------------------------------
  // Client: opens a CONNECT stream (":method CONNECT", ":authority", no
  // ":scheme"/":path") followed by `extra` headers.
  StatusOr<H2StreamId> SubmitConnect(std::string_view authority, const H2Headers& extra);
  // Client: any request; `headers` includes the pseudo headers.
  StatusOr<H2StreamId> SubmitRequest(const H2Headers& headers, bool end_stream = false);
  // Server: response headers (":status" is added). Without end_stream the
  // stream stays open for Write().
  Status SubmitResponse(H2StreamId id, int status, const H2Headers& headers,
                        bool end_stream = false);
  // RST_STREAM now; frames of the stream not yet serialized are dropped. A
  // client request still queued behind the peer's stream limit is dropped
  // without events.
  Status Reset(H2StreamId id, uint32_t error_code);
  // Queues payload bytes for the stream.
  Status Write(H2StreamId id, std::span<const std::byte> bytes);
  Status Write(H2StreamId id, std::vector<std::byte>&& bytes);
  // Half-close: END_STREAM after the queued bytes.
  Status CloseWrite(H2StreamId id);
  // Trailers after the queued bytes, then END_STREAM (a HEADERS frame). The
  // request/response must have been submitted without end_stream.
  Status SubmitTrailers(H2StreamId id, const H2Headers& trailers);
  // Once our END_STREAM is out, RST_STREAM(NO_ERROR) tells a peer that is
  // still sending to stop (RFC 9113 §8.1); nothing when the peer ended too.
  void ResetAfterEnd(H2StreamId id);
  // Returns flow-control credit for `n` bytes delivered by OnStreamData.
  Status Consume(H2StreamId id, size_t n);
  // Bytes written to the stream and not yet framed (0 for unknown streams).
  size_t QueuedBytes(H2StreamId id) const;
  // Streams open on this connection (including ones still queued locally).
  size_t ActiveStreams() const { return streams_.size(); }
  // Peer's SETTINGS_MAX_CONCURRENT_STREAMS (initial_peer_max_streams on a
  // client until the server's SETTINGS arrive).
  uint32_t PeerMaxConcurrentStreams() const;
  // Client: may a new stream be opened here? False after GOAWAY (either
  // way), when dead, or when the peer's stream limit is reached.
  bool AcceptsNewStreams() const;

  // ---- connection control ------------------------------------------------
  Status Ping();
  // Keepalive: sends PING when idle, returns an error once a PING stayed
  // unanswered for ping_timeout (the connection then sends GOAWAY and is
  // dead). Call at least at NextTickDeadline().
  Status OnTick(base::MonoTime now);
  base::MonoTime NextTickDeadline() const { return keepalive_.NextDeadline(); }
  // Graceful drain: GOAWAY(NO_ERROR); open streams may finish.
  Status GoAway();
  // Abrupt close: GOAWAY(error_code); all streams end.
  Status Terminate(uint32_t error_code);
  bool GoAwayReceived() const { return goaway_received_; }
  bool Dead() const { return dead_; }

 private:
  friend struct H2Callbacks;
  friend struct H2CallbackImpl;

  H2Conn(H2Role role, const H2Options& options, H2Events& events, const base::Clock& clock);
  Status Init();
  Status SubmitSettings();
  StatusOr<H2StreamId> SubmitHeadersInternal(const H2Headers& headers, bool end_stream);
  H2Stream* FindStream(H2StreamId id) const;
  H2Stream* CreateStream(H2StreamId id);
  void EraseStream(H2StreamId id);
  void ResumeIfDeferred(H2Stream& stream);
  Status SubmitTrailerFrame(H2Stream& stream);
  // Frames pending output until output_high_water (at least one frame when
  // `at_least_one`, so a queued GOAWAY is noticed right after Feed()).
  void Serialize(bool at_least_one = false);
  Status Fail(std::string message);

  H2Role role_;
  H2Options options_;
  H2Events& events_;
  const base::Clock& clock_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<H2StreamId, std::unique_ptr<H2Stream>> streams_;
  std::vector<std::byte> out_;
  size_t out_offset_ = 0;
  H2Keepalive keepalive_;
  Status failure_;           // first fatal error; sticky
  std::string last_error_;   // nghttp2 error_callback2 text of the last error
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  bool dead_ = false;
  bool local_terminate_ = false;  // we chose to end the connection
};

}  // namespace ambit::http2
