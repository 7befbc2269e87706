// SessionStream: one stream of an http2::Session, as a byte pipe with
// headers and trailers. The same object serves an HBONE CONNECT tunnel (bytes
// only) and an HTTP request/response exchange (headers, body, trailers).
//
//   auto chunk = co_await stream.Peek(opts);   // buffered body bytes, empty = END_STREAM
//   ... send chunk somewhere ...; stream.Consume(sent);   // returns H2 credit
//   co_await stream.Write(bytes, opts);        // waits above the high watermark
//   stream.CloseWrite();                       // END_STREAM
//   stream.SendTrailers(trailers);             // trailers, then END_STREAM
//   stream.Reset(kH2Cancel);                   // RST_STREAM
//
// Received bytes keep their flow-control credit until Consume(), so a slow
// destination slows the sender (ISTIO-COMPAT §2.5 maps FIN/RST as above).
// As an io::ByteStream, Abort() is RST_STREAM(CONNECT_ERROR): the peer of a
// tunnel sees a TCP reset.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>

#include "common/base/status.h"
#include "common/buffer/chunk_queue.h"
#include "common/http2/h2_types.h"
#include "common/io/byte_stream.h"
#include "common/io/notifier.h"
#include "common/io/ops.h"
#include "common/io/task.h"

namespace ambit::http2 {

class Session;

class SessionStream final : public io::ByteStream {
 public:
  SessionStream(std::shared_ptr<Session> session, H2StreamId id);
  ~SessionStream() override;  // resets the stream if it is still open
  SessionStream(const SessionStream&) = delete;
  SessionStream& operator=(const SessionStream&) = delete;

  H2StreamId id() const { return id_; }
  Session& conn() const { return *session_; }
  const std::shared_ptr<Session>& conn_ptr() const { return session_; }

  // Server: the response headers (":status" is added). With end_stream the
  // stream ends after them (no body).
  Status Respond(int status, const H2Headers& headers, bool end_stream);
  // Client: waits for the final response headers (":status" included).
  // Errors carry ErrorReason kStreamRefused (the peer never processed the
  // stream: safe to retry), kStreamReset, kConnClosed or kResponseTimeout.
  io::Task<StatusOr<H2Headers>> AwaitHeaders(io::OpOptions o);

  // Waits until bytes are buffered or the peer ended the stream. An empty span
  // means clean EOF (END_STREAM, or RST_STREAM NO_ERROR/CANCEL); a reset or a
  // connection failure is an error.
  io::Task<StatusOr<std::span<const std::byte>>> Peek(io::OpOptions o = {}) override;
  void Consume(size_t n) override;
  io::Task<Status> Write(std::span<const std::byte> bytes, io::OpOptions o = {}) override;
  void CloseWrite() override;
  void Abort() override { Reset(kH2ConnectError); }
  // Trailers after the queued bytes, then END_STREAM (the response or request
  // must have been started without end_stream).
  Status SendTrailers(const H2Headers& trailers);
  // Waits until the stream is fully closed: everything we wrote (and our
  // END_STREAM) was framed and the peer ended its side. Call before dropping
  // a stream after a clean finish, or the queued tail would be reset away.
  io::Task<Status> AwaitClosed(io::OpOptions o = {});
  void Reset(uint32_t error_code);

  // Trailers the peer sent (after its body), if any.
  const std::optional<H2Headers>& trailers() const { return trailers_; }
  bool end_received() const { return end_received_; }
  bool write_closed() const { return write_closed_; }

  // ---- driven by Session --------------------------------------------------
  void OnHeaders(const H2Headers& headers);
  void OnTrailers(const H2Headers& trailers);
  void OnData(std::span<const std::byte> data);
  void OnEnd();
  void OnReset(uint32_t error_code);
  void OnClosed(uint32_t error_code);
  void OnDrained(size_t queued);
  void OnConnClosed(const Status& reason);

  uint64_t bytes_received() const { return bytes_received_; }
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  void WakeAll();

  std::shared_ptr<Session> session_;
  H2StreamId id_;
  io::Notifier readable_;
  io::Notifier writable_;
  io::Notifier headers_ready_;
  io::Notifier closed_notifier_;
  // Bytes received and not yet consumed, in pooled blocks: a span handed out
  // by Peek stays valid while more bytes arrive behind it, and an idle stream
  // holds no block.
  buffer::ChunkQueue inbox_;
  std::optional<H2Headers> response_;
  std::optional<H2Headers> trailers_;
  bool response_taken_ = false;
  bool end_received_ = false;
  bool write_closed_ = false;
  bool closed_ = false;    // H2 stream gone
  bool ended_by_us_ = false;  // our END_STREAM is queued: the stream ends by itself
  Status error_;           // reset / connection failure
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
};

}  // namespace ambit::http2
