// StreamTransport: plaintext HTTP/2 (h2c, prior knowledge) over an
// io::ByteStream — inside an HBONE CONNECT stream (the waypoint's downstream
// and upstream HTTP/2), or over a TCP socket (FdStream) in tests.
//
// Read() hands out the carrier's buffered bytes and consumes them on the next
// call (the session feeds them to nghttp2 in between, which copies what it
// keeps). Staged frames are copied into one send buffer and written with one
// ByteStream::Write per batch, which applies the carrier's flow control.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "common/http2/transport.h"
#include "common/io/byte_stream.h"

namespace ambit::http2 {

class StreamTransport final : public Transport {
 public:
  // `owned` may be null when the carrier outlives the session (then pass it
  // as `carrier`); addresses and identity describe the carrier for logs.
  StreamTransport(std::unique_ptr<io::ByteStream> owned, io::ByteStream* carrier,
                  net::SocketAddress peer, net::SocketAddress local,
                  std::optional<identity::Identity> peer_identity);
  ~StreamTransport() override;

  static std::unique_ptr<StreamTransport> Owning(std::unique_ptr<io::ByteStream> s,
                                                 net::SocketAddress peer = {},
                                                 net::SocketAddress local = {},
                                                 std::optional<identity::Identity> id = {});

  io::Task<StatusOr<std::span<const std::byte>>> Read(io::CancelScope& scope) override;
  Status Stage(std::span<const std::byte> bytes) override;
  size_t staged() const override { return out_.size(); }
  io::Task<Status> Flush(io::CancelScope& scope) override;
  void Shutdown() override;
  void Release() override;

  const net::SocketAddress& peer_address() const override { return peer_; }
  const net::SocketAddress& local_address() const override { return local_; }
  const std::optional<identity::Identity>& peer_identity() const override { return identity_; }

 private:
  std::unique_ptr<io::ByteStream> owned_;
  io::ByteStream* carrier_;
  net::SocketAddress peer_, local_;
  std::optional<identity::Identity> identity_;
  size_t handed_out_ = 0;        // bytes of the last Read() to consume on the next
  std::vector<std::byte> out_;   // staged frames
  std::vector<std::byte> sending_;
  bool shutdown_ = false;
  bool released_ = false;
};

}  // namespace ambit::http2
