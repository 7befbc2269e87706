// PooledBuffer: a receive buffer borrowed from a per-thread free list.
//
//   io::PooledBuffer buf = io::PooledBuffer::Get(16 << 10);  // uninitialised bytes
//   co_await loop.Recv(fd, buf.span());
//   buf.Release();            // back to this thread's free list (also on destruction)
//
// Relays take a buffer only once their socket is readable and give it back when
// the socket is drained, so an idle connection holds none (BENCHMARKS.md memory
// goal). The free list keeps a bounded number of blocks per size so a busy loop
// does not hit malloc per message; anything beyond is freed. A buffer must be
// released on the thread that got it (coroutines of one Loop do).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace ambit::io {

class PooledBuffer {
 public:
  PooledBuffer() = default;
  ~PooledBuffer() { Release(); }
  PooledBuffer(PooledBuffer&& o) noexcept : data_(std::move(o.data_)), size_(o.size_) {
    o.size_ = 0;
  }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  // A buffer of exactly `size` bytes (contents unspecified).
  static PooledBuffer Get(size_t size);

  std::span<std::byte> span() { return {data_.get(), size_}; }
  std::byte* data() { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void Release();

  // Blocks currently cached on this thread (tests, metrics).
  static size_t CachedOnThisThread();

 private:
  std::unique_ptr<std::byte[]> data_;
  size_t size_ = 0;
};

}  // namespace ambit::io
