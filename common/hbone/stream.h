// HboneStream: one CONNECT stream of an HboneConn seen as a byte pipe.
//
//   auto chunk = co_await stream.Peek(opts);   // buffered bytes, empty = EOF
//   ... send chunk somewhere ...; stream.Consume(sent);   // returns H2 credit
//   co_await stream.Write(bytes, opts);        // waits above the high watermark
//   stream.CloseWrite();                       // END_STREAM (TCP FIN)
//   stream.Reset(kH2Cancel);                   // RST_STREAM (TCP RST)
//
// Received bytes keep their flow-control credit until Consume(), so a slow
// destination slows the sender (ISTIO-COMPAT §2.5 maps FIN/RST as above).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "common/base/status.h"
#include "common/hbone/notifier.h"
#include "common/http2/h2_types.h"
#include "common/io/ops.h"
#include "common/io/task.h"

namespace ambit::hbone {

class HboneConn;

class HboneStream {
 public:
  HboneStream(std::shared_ptr<HboneConn> conn, http2::H2StreamId id);
  ~HboneStream();  // resets the stream if it is still open
  HboneStream(const HboneStream&) = delete;
  HboneStream& operator=(const HboneStream&) = delete;

  http2::H2StreamId id() const { return id_; }
  HboneConn& conn() const { return *conn_; }
  const std::shared_ptr<HboneConn>& conn_ptr() const { return conn_; }

  // Server: the response (200 lets bytes flow; anything else ends the stream).
  Status Respond(int status, const http2::H2Headers& headers = {});

  // Waits until bytes are buffered or the peer ended the stream. An empty span
  // means clean EOF (END_STREAM, or RST_STREAM NO_ERROR/CANCEL); a reset or a
  // connection failure is an error.
  io::Task<StatusOr<std::span<const std::byte>>> Peek(io::OpOptions o = {});
  void Consume(size_t n);

  io::Task<Status> Write(std::span<const std::byte> bytes, io::OpOptions o = {});
  // Waits until the stream is fully closed: everything we wrote (and our
  // END_STREAM) was framed and the peer ended its side. Call before dropping
  // a stream after a clean finish, or the queued tail would be reset away.
  io::Task<Status> AwaitClosed(io::OpOptions o = {});
  void CloseWrite();
  void Reset(uint32_t error_code);

  // ---- driven by HboneConn ------------------------------------------------
  void OnHeaders(const http2::H2Headers& headers);
  void OnData(std::span<const std::byte> data);
  void OnEnd();
  void OnReset(uint32_t error_code);
  void OnClosed(uint32_t error_code);
  void OnDrained(size_t queued);
  void OnConnClosed(const Status& reason);
  // Client: waits for the response headers.
  io::Task<StatusOr<http2::H2Headers>> AwaitResponse(io::OpOptions o);

  uint64_t bytes_received() const { return bytes_received_; }
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  std::shared_ptr<HboneConn> conn_;
  http2::H2StreamId id_;
  Notifier readable_;
  Notifier writable_;
  Notifier headers_ready_;
  Notifier closed_notifier_;
  std::vector<std::byte> rbuf_;  // bytes arriving from H2
  std::vector<std::byte> out_;   // bytes handed out by Peek (stable until consumed)
  size_t ooff_ = 0;
  std::optional<http2::H2Headers> response_;
  bool end_received_ = false;
  bool write_closed_ = false;
  bool closed_ = false;  // H2 stream gone
  bool final_response_ = false;  // we answered non-200: the stream ends by itself
  Status error_;         // reset / connection failure
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
};

}  // namespace ambit::hbone
