// ByteStream: one bidirectional byte pipe seen by a protocol driver, whatever
// carries it — a TCP socket (FdStream), an HBONE CONNECT stream
// (http2::SessionStream), or a stream with bytes already read in front
// (PrefixedStream). HTTP/1.1 and h2c codecs, relays and the waypoint's
// listeners work on this interface only.
//
//   auto chunk = co_await s.Peek();   // buffered bytes; empty span = clean EOF
//   ... parse or forward chunk ...; s.Consume(n);
//   co_await s.Write(bytes);          // may wait for flow control / the kernel
//   s.CloseWrite();                   // FIN / END_STREAM
//   s.Abort();                        // RST / RST_STREAM
//
// Peek() returns what is buffered at once; after Consume() of everything it
// waits for new bytes. Bytes handed out stay valid until they are consumed.
// Owner: the loop thread of the stream; one reader and one writer task.
#pragma once

#include <cstddef>
#include <span>

#include "common/base/status.h"
#include "common/io/ops.h"
#include "common/io/task.h"

namespace ambit::io {

class ByteStream {
 public:
  virtual ~ByteStream() = default;

  virtual Task<StatusOr<std::span<const std::byte>>> Peek(OpOptions o = {}) = 0;
  virtual void Consume(size_t n) = 0;
  virtual Task<Status> Write(std::span<const std::byte> bytes, OpOptions o = {}) = 0;
  // Half-close: the peer reads EOF after everything written so far.
  virtual void CloseWrite() = 0;
  // Abortive close (the peer sees a reset); later operations fail.
  virtual void Abort() = 0;
};

}  // namespace ambit::io
