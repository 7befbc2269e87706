#include "common/tls/byte_queue.h"

#include <algorithm>
#include <cstring>

namespace ambit::tls {
namespace {
constexpr size_t kMinCapacity = 32 * 1024;  // two full TLS records
}  // namespace

void ByteQueue::MakeRoom(size_t n) {
  if (cap_ - tail_ >= n) return;
  const size_t live = size();
  if (cap_ - live >= n && head_ >= live) {
    // Enough room once compacted, and the copy is cheaper than what was consumed.
    std::memmove(buf_.get(), buf_.get() + head_, live);
  } else {
    const size_t new_cap = std::max({kMinCapacity, cap_ * 2, live + n});
    auto fresh = std::make_unique_for_overwrite<std::byte[]>(new_cap);
    if (live > 0) std::memcpy(fresh.get(), buf_.get() + head_, live);
    buf_ = std::move(fresh);
    cap_ = new_cap;
  }
  head_ = 0;
  tail_ = live;
}

void ByteQueue::Append(const void* data, size_t n) {
  if (n == 0) return;
  MakeRoom(n);
  std::memcpy(buf_.get() + tail_, data, n);
  tail_ += n;
}

std::span<std::byte> ByteQueue::Prepare(size_t n) {
  MakeRoom(n);
  return {buf_.get() + tail_, cap_ - tail_};
}

void ByteQueue::Commit(size_t k) { tail_ += std::min(k, cap_ - tail_); }

size_t ByteQueue::Read(void* out, size_t n) {
  n = std::min(n, size());
  if (n > 0) std::memcpy(out, buf_.get() + head_, n);
  Consume(n);
  return n;
}

void ByteQueue::Consume(size_t n) {
  head_ += std::min(n, size());
  if (head_ == tail_) head_ = tail_ = 0;
}

}  // namespace ambit::tls
