// HboneConn: one HBONE connection — TCP + TLS 1.3 (TlsEngine) + HTTP/2
// (H2Conn) — driven on one worker Loop. Client side it carries the CONNECT
// streams of a pool; server side it hands each received CONNECT to a handler.
//
// Tasks per connection: a reader (recv → TLS → H2 → stream events), a writer
// (H2 frames → TLS records → send, woken by a Notifier) and a keepalive
// ticker. All three register on the connection's CancelScope; Close() cancels
// it, fails every stream, and the fd is closed after the last task ended.
// See README.md beside this file for the TLS binding, flow control and lifetimes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/hbone/notifier.h"
#include "common/http2/h2_conn.h"
#include "common/identity/identity.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "common/net/address.h"
#include "common/net/fd.h"
#include "common/tls/context.h"
#include "common/tls/engine.h"

namespace ambit::hbone {

class HboneStream;

struct ConnOptions {
  http2::H2Options h2;
  base::Duration handshake_timeout = std::chrono::seconds(10);
  size_t read_buffer = 64 * 1024;
  // Stream write watermarks: Write() waits while more than `high` bytes are
  // queued on the stream and resumes under `low`.
  size_t stream_high_water = 1 << 20;
  size_t stream_low_water = 256 << 10;
};

// Why a connection failed at setup, for response_flags and logs.
enum class SetupFailure : uint8_t { kNone, kConnect, kTls, kH2 };

class HboneConn : public http2::H2Events, public std::enable_shared_from_this<HboneConn> {
 public:
  // Server: receives one accepted CONNECT stream with its request headers.
  using StreamHandler =
      std::function<void(std::unique_ptr<HboneStream> stream, const http2::H2Headers& headers)>;

  // Client: TLS handshake (verifying the server against `expected`) and h2
  // setup on a connected socket.
  static io::Task<StatusOr<std::shared_ptr<HboneConn>>> Handshake(
      io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx,
      std::vector<identity::Identity> expected, ConnOptions options);
  // Server: TLS handshake (client cert required, same trust domain) and h2
  // server setup; then streams go to `handler` until the peer leaves.
  static io::Task<StatusOr<std::shared_ptr<HboneConn>>> Accept(
      io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx,
      ConnOptions options, StreamHandler handler);

  ~HboneConn() override;
  HboneConn(const HboneConn&) = delete;
  HboneConn& operator=(const HboneConn&) = delete;

  // Client: opens a CONNECT stream and waits for the response headers.
  // Non-200 → error naming the status (PermissionDenied for 401).
  io::Task<StatusOr<std::unique_ptr<HboneStream>>> Open(std::string authority,
                                                         http2::H2Headers headers,
                                                         base::Duration timeout);

  // May this (client) connection take one more stream under `max_streams`?
  bool Usable(size_t max_streams) const;
  size_t active_streams() const { return streams_.size(); }
  bool closed() const { return closed_; }
  const std::optional<identity::Identity>& peer_identity() const { return tls_->peer_identity(); }
  const net::SocketAddress& peer_address() const { return peer_; }
  const net::SocketAddress& local_address() const { return local_; }
  // When a stream was last opened or ended (the pool's idle clock).
  base::MonoTime last_used() const { return last_used_; }
  void MarkUsed() { last_used_ = loop_.Now(); }
  io::Loop& loop() const { return loop_; }

  // Graceful: GOAWAY, no new streams; the connection closes when the last
  // stream ends.
  void Drain();
  // Abrupt: all streams fail with `reason`; the fd closes after the tasks end.
  void Close(Status reason);
  // Fires (once) when the connection is closed; for pools and trackers.
  void SetOnClosed(std::function<void(HboneConn*)> fn) { on_closed_ = std::move(fn); }

  // ---- used by HboneStream ------------------------------------------------
  http2::H2Conn& h2() { return *h2_; }
  void KickWriter() { writer_wake_.Notify(); }
  void Detach(http2::H2StreamId id);
  const ConnOptions& options() const { return options_; }

 private:
  HboneConn(io::Loop& loop, net::Fd fd, std::unique_ptr<tls::TlsEngine> tls, ConnOptions options);
  io::Task<Status> DoHandshake();
  Status StartH2(http2::H2Role role);
  void StartTasks();
  static io::Task<void> ReaderLoop(std::shared_ptr<HboneConn> self);
  static io::Task<void> WriterLoop(std::shared_ptr<HboneConn> self);
  static io::Task<void> TickLoop(std::shared_ptr<HboneConn> self);
  Status DrainPlaintext();
  Status PumpOutput();  // H2 frames → TLS records
  void TaskEnded();
  void MaybeFinishDrain();

  // H2Events
  void OnStreamHeaders(http2::H2StreamId id, const http2::H2Headers& headers) override;
  void OnStreamData(http2::H2StreamId id, std::span<const std::byte> data) override;
  void OnStreamEnd(http2::H2StreamId id) override;
  void OnStreamReset(http2::H2StreamId id, uint32_t error_code) override;
  void OnStreamClosed(http2::H2StreamId id, uint32_t error_code) override;
  void OnStreamDrained(http2::H2StreamId id, size_t queued) override;
  void OnGoAway(uint32_t error_code, http2::H2StreamId last_stream_id) override;

  HboneStream* Find(http2::H2StreamId id) const;

  io::Loop& loop_;
  net::Fd fd_;
  std::unique_ptr<tls::TlsEngine> tls_;
  std::unique_ptr<http2::H2Conn> h2_;
  ConnOptions options_;
  io::CancelScope scope_;
  Notifier writer_wake_;
  // Receive (ciphertext) and plaintext scratch, options_.read_buffer bytes
  // each, left uninitialised: an idle connection only touches the pages its
  // small records use.
  std::unique_ptr<std::byte[]> rbuf_;
  std::unique_ptr<std::byte[]> pbuf_;
  std::span<std::byte> rspan() { return {rbuf_.get(), options_.read_buffer}; }
  std::span<std::byte> pspan() { return {pbuf_.get(), options_.read_buffer}; }
  std::unordered_map<http2::H2StreamId, HboneStream*> streams_;
  StreamHandler handler_;
  std::function<void(HboneConn*)> on_closed_;
  net::SocketAddress peer_;
  net::SocketAddress local_;
  base::MonoTime last_used_{};
  int tasks_running_ = 0;
  bool closed_ = false;
  bool draining_ = false;
  bool close_notify_sent_ = false;
  Status close_reason_;
};

}  // namespace ambit::hbone
