// A growable FIFO of bytes with one contiguous readable region, used as the
// ciphertext buffer between OpenSSL and the caller. Amortised: memory grows to
// the high-water mark and is reused; consuming everything resets it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>

namespace ambit::tls {

class ByteQueue {
 public:
  void Append(const void* data, size_t n);
  // Zero-copy append: a writable region of at least `n` bytes at the tail;
  // Commit(k) makes the first k of them readable.
  std::span<std::byte> Prepare(size_t n);
  void Commit(size_t k);
  // Copies up to n bytes out; returns how many.
  size_t Read(void* out, size_t n);
  std::span<const std::byte> Readable() const { return {buf_.get() + head_, tail_ - head_}; }
  void Consume(size_t n);
  size_t size() const { return tail_ - head_; }
  size_t capacity() const { return cap_; }
  // Exchanges contents and storage (no copy).
  void Swap(ByteQueue& o) noexcept {
    buf_.swap(o.buf_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(tail_, o.tail_);
  }
  bool empty() const { return head_ == tail_; }

 private:
  void MakeRoom(size_t n);

  std::unique_ptr<std::byte[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t tail_ = 0;
};

}  // namespace ambit::tls
