// FdStream: a connected TCP socket as an io::ByteStream, and PrefixedStream:
// a ByteStream with bytes that were already read (protocol sniffing, a PROXY
// header's tail) handed out first.
//
// FdStream owns the fd: it is closed (on the loop) when the stream is
// destroyed. Its receive buffer is borrowed from io::PooledBuffer only while
// bytes are waiting to be consumed, so an idle stream holds none.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "common/io/buffer_pool.h"
#include "common/io/byte_stream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"

namespace ambit::io {

class FdStream final : public ByteStream {
 public:
  // `fd`: a connected, non-blocking socket; owned from now on.
  FdStream(Loop& loop, int fd);
  ~FdStream() override;
  FdStream(const FdStream&) = delete;
  FdStream& operator=(const FdStream&) = delete;

  Task<StatusOr<std::span<const std::byte>>> Peek(OpOptions o = {}) override;
  void Consume(size_t n) override;
  Task<Status> Write(std::span<const std::byte> bytes, OpOptions o = {}) override;
  void CloseWrite() override;
  void Abort() override;

  int fd() const { return fd_; }

 private:
  Loop& loop_;
  int fd_;
  PooledBuffer buf_;
  size_t begin_ = 0, end_ = 0;  // unconsumed bytes in buf_
  bool eof_ = false;
  bool write_closed_ = false;
  bool aborted_ = false;
};

class PrefixedStream final : public ByteStream {
 public:
  PrefixedStream(std::vector<std::byte> prefix, ByteStream& inner)
      : prefix_(std::move(prefix)), inner_(inner) {}

  Task<StatusOr<std::span<const std::byte>>> Peek(OpOptions o = {}) override;
  void Consume(size_t n) override;
  Task<Status> Write(std::span<const std::byte> bytes, OpOptions o = {}) override {
    return inner_.Write(bytes, o);
  }
  void CloseWrite() override { inner_.CloseWrite(); }
  void Abort() override { inner_.Abort(); }

 private:
  std::vector<std::byte> prefix_;
  size_t off_ = 0;
  ByteStream& inner_;
};

}  // namespace ambit::io
