// Session: one HTTP/2 connection (the sans-I/O H2Conn) driven on one worker
// Loop over a Transport — TLS over a socket (HBONE, see common/hbone) or
// plaintext over a byte stream (h2c inside a tunnel). Client side it opens
// streams (CONNECT tunnels or HTTP requests); server side it hands each new
// stream with its request headers to a handler.
//
// Tasks per session: a reader (transport → H2 → stream events), a writer (H2
// frames → transport, woken by a Notifier) and a keepalive ticker. All three
// register on the session's CancelScope; Close() cancels it, fails every
// stream, and the transport is released after the last task ended. See
// README.md beside this file for flow control and lifetimes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/status.h"
#include "common/http2/h2_conn.h"
#include "common/http2/transport.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/notifier.h"
#include "common/io/task.h"

namespace ambit::http2 {

class SessionStream;

struct SessionOptions {
  H2Options h2;
  // Stream write watermarks: Write() waits while more than `high` bytes are
  // queued on the stream and resumes under `low`.
  size_t stream_high_water = 1 << 20;
  size_t stream_low_water = 256 << 10;
};

class Session : public H2Events, public std::enable_shared_from_this<Session> {
 public:
  // Server: receives each new stream with its request headers.
  using StreamHandler =
      std::function<void(std::unique_ptr<SessionStream> stream, const H2Headers& headers)>;

  // Starts the tasks over an established transport (TLS handshake done, or
  // a plaintext stream). Server sessions need a handler.
  static StatusOr<std::shared_ptr<Session>> Start(io::Loop& loop,
                                                  std::unique_ptr<Transport> transport,
                                                  H2Role role, SessionOptions options,
                                                  StreamHandler handler = {});

  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Client: a CONNECT stream (":method CONNECT", ":authority", then `extra`)
  // or any request (`headers` with the pseudo headers). The stream is open at
  // once; await its response with SessionStream::AwaitHeaders(). Errors carry
  // ErrorReason kConnClosed / kStreamRefused.
  StatusOr<std::unique_ptr<SessionStream>> OpenConnect(std::string_view authority,
                                                       const H2Headers& extra);
  StatusOr<std::unique_ptr<SessionStream>> OpenRequest(const H2Headers& headers, bool end_stream);

  // May this (client) session take one more stream under `max_streams`?
  bool Usable(size_t max_streams) const;
  size_t active_streams() const { return streams_.size(); }
  bool closed() const { return closed_; }
  bool draining() const { return draining_; }
  const std::optional<identity::Identity>& peer_identity() const {
    return transport_->peer_identity();
  }
  const net::SocketAddress& peer_address() const { return transport_->peer_address(); }
  const net::SocketAddress& local_address() const { return transport_->local_address(); }
  Transport& transport() { return *transport_; }
  // When a stream was last opened or ended (the pool's idle clock).
  base::MonoTime last_used() const { return last_used_; }
  void MarkUsed() { last_used_ = loop_.Now(); }
  io::Loop& loop() const { return loop_; }
  const Status& close_reason() const { return close_reason_; }

  // Graceful: GOAWAY, no new streams; the session closes when the last
  // stream ends.
  void Drain();
  // Abrupt: all streams fail with `reason`; the transport is released after
  // the tasks end.
  void Close(Status reason);
  // Fires (once) when the session is closed; for pools and trackers.
  void SetOnClosed(std::function<void(Session*)> fn) { on_closed_ = std::move(fn); }

  // ---- used by SessionStream ----------------------------------------------
  H2Conn& h2() { return *h2_; }
  void KickWriter() { writer_wake_.Notify(); }
  void Detach(H2StreamId id);
  const SessionOptions& options() const { return options_; }

 private:
  Session(io::Loop& loop, std::unique_ptr<Transport> transport, SessionOptions options);
  StatusOr<std::unique_ptr<SessionStream>> Register(StatusOr<H2StreamId> id);
  void StartTasks();
  static io::Task<void> ReaderLoop(std::shared_ptr<Session> self);
  static io::Task<void> WriterLoop(std::shared_ptr<Session> self);
  static io::Task<void> TickLoop(std::shared_ptr<Session> self);
  Status PumpOutput();  // H2 frames → transport
  void TaskEnded();
  void MaybeFinishDrain();

  // H2Events
  void OnStreamHeaders(H2StreamId id, const H2Headers& headers) override;
  void OnStreamTrailers(H2StreamId id, const H2Headers& trailers) override;
  void OnStreamData(H2StreamId id, std::span<const std::byte> data) override;
  void OnStreamEnd(H2StreamId id) override;
  void OnStreamReset(H2StreamId id, uint32_t error_code) override;
  void OnStreamClosed(H2StreamId id, uint32_t error_code) override;
  void OnStreamDrained(H2StreamId id, size_t queued) override;
  void OnGoAway(uint32_t error_code, H2StreamId last_stream_id) override;

  SessionStream* Find(H2StreamId id) const;

  io::Loop& loop_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<H2Conn> h2_;
  SessionOptions options_;
  io::CancelScope scope_;
  io::Notifier writer_wake_;
  std::unordered_map<H2StreamId, SessionStream*> streams_;
  StreamHandler handler_;
  std::function<void(Session*)> on_closed_;
  base::MonoTime last_used_{};
  int tasks_running_ = 0;
  bool closed_ = false;
  bool draining_ = false;
  bool shutdown_sent_ = false;
  Status close_reason_;
};

}  // namespace ambit::http2
