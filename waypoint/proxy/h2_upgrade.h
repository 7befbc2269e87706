// DestinationRule connectionPool.http.h2UpgradePolicy: UPGRADE — an
// HTTP/1.1 downstream request goes upstream as HTTP/2 (h2c prior knowledge
// inside the HBONE stream, on the worker's H2Pool sessions).
//
// H2UpgradeStream looks like an HTTP/1.1 upstream connection to the
// HTTP/1.1 proxy (so the try loop, retries, timeouts and the exchange stay
// as they are): the request bytes written to it are parsed and sent as one
// HTTP/2 request stream (head → HEADERS, body → DATA, chunked trailers →
// trailers), and the HTTP/2 response is read back as HTTP/1.1 bytes (the
// head, then the body as sent with content-length, else chunked, trailers
// included). One request per stream object: it is never pooled (the h2
// session under it is).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/base/status.h"
#include "common/http1/codec.h"
#include "common/http2/h2_types.h"
#include "common/http2/session_stream.h"
#include "common/io/byte_stream.h"
#include "common/io/event.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::waypoint {

class H2UpgradeStream final : public io::ByteStream {
 public:
  // Opens the request stream for the converted head (H2Pool::OpenRequest).
  using Opener = std::function<io::Task<StatusOr<std::unique_ptr<http2::SessionStream>>>(
      const http2::H2Headers& headers, bool end_stream)>;
  H2UpgradeStream(io::Loop& loop, Opener open);
  ~H2UpgradeStream() override;

  io::Task<StatusOr<std::span<const std::byte>>> Peek(io::OpOptions o) override;
  void Consume(size_t n) override;
  io::Task<Status> Write(std::span<const std::byte> bytes, io::OpOptions o) override;
  void CloseWrite() override;
  void Abort() override;

 private:
  io::Task<Status> ReadHead(io::OpOptions o);
  io::Task<Status> ReadBody(io::OpOptions o);

  Opener open_;
  http1::Parser request_{http1::Kind::kRequest};
  std::string method_;
  std::unique_ptr<http2::SessionStream> stream_;
  Status open_error_;
  io::Event opened_;  // the stream opened, or opening failed
  bool request_ended_ = false;
  enum class Phase : uint8_t { kHead, kBody, kDone } phase_ = Phase::kHead;
  bool chunked_ = false;
  std::string out_;  // HTTP/1.1 response bytes not yet consumed
  size_t out_pos_ = 0;
};

// HTTP/1.1 request head → HTTP/2 request headers: pseudo headers from the
// request line and Host, names lower-cased, connection-specific headers
// (and Expect, Host) dropped (RFC 9113 §8.2.2, §8.3.1). Pure (unit tests).
http2::H2Headers UpgradeRequestHeaders(const http1::RequestHead& head);
// HTTP/2 response headers → the HTTP/1.1 head (appended to `out`); returns
// whether the body must be chunked (no content-length, a body may follow).
// `ended`: the stream ended with its headers; `head_request`: a HEAD.
bool AppendDowngradedHead(std::string& out, const http2::H2Headers& h2, bool ended,
                          bool head_request);

}  // namespace ambit::waypoint
