// Transport: the bytes under an HTTP/2 Session. Two kinds:
//   TlsTransport    (tls_transport.h): TLS 1.3 over a connected socket — HBONE;
//   StreamTransport (stream_transport.h): plaintext over an io::ByteStream —
//                   h2c inside an HBONE tunnel (the waypoint's downstream and
//                   upstream HTTP/2), or over a plain TCP socket in tests.
// The Session's reader task calls Read(); its writer task Stage()s the
// frames nghttp2 serialized and Flush()es them. Loop-thread only.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "common/base/status.h"
#include "common/identity/identity.h"
#include "common/io/cancel.h"
#include "common/io/task.h"
#include "common/net/address.h"

namespace ambit::http2 {

class Transport {
 public:
  virtual ~Transport() = default;

  // Waits for plaintext from the peer. An empty span means the peer closed
  // cleanly (TCP FIN, TLS close_notify, END_STREAM of the carrying stream).
  // The bytes are valid until the next Read().
  virtual io::Task<StatusOr<std::span<const std::byte>>> Read(io::CancelScope& scope) = 0;
  // Takes frames for the peer (encrypted or copied into the send buffer).
  virtual Status Stage(std::span<const std::byte> bytes) = 0;
  // Bytes staged and not yet sent (the writer batches up to a bound).
  virtual size_t staged() const = 0;
  // Sends everything staged.
  virtual io::Task<Status> Flush(io::CancelScope& scope) = 0;
  // Graceful end of our direction once the last frames are staged: TLS
  // close_notify (then Flush), or half-close of the carrying stream.
  virtual void Shutdown() = 0;
  // Every task of the session ended: no operation is in flight any more, the
  // socket (or stream) may be released. A carrying stream that was not shut
  // down gracefully is reset.
  virtual void Release() = 0;

  virtual const net::SocketAddress& peer_address() const = 0;
  virtual const net::SocketAddress& local_address() const = 0;
  // The peer's SPIFFE identity (TLS client certificate / server certificate);
  // none for plaintext transports.
  virtual const std::optional<identity::Identity>& peer_identity() const = 0;
};

}  // namespace ambit::http2
