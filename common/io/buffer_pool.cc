#include "common/io/buffer_pool.h"

#include <vector>

namespace ambit::io {
namespace {

// Cached blocks per size: 64 × 16 KiB + 4 × 256 KiB at most, 2 MiB per thread.
struct SizeClass {
  size_t size;
  size_t max_cached;
};
constexpr SizeClass kClasses[] = {{16 << 10, 64}, {256 << 10, 4}};
constexpr size_t kNumClasses = sizeof(kClasses) / sizeof(kClasses[0]);

struct FreeLists {
  std::vector<std::unique_ptr<std::byte[]>> lists[kNumClasses];
};

FreeLists& Lists() {
  thread_local FreeLists lists;
  return lists;
}

int ClassOf(size_t size) {
  for (size_t i = 0; i < kNumClasses; ++i) {
    if (kClasses[i].size == size) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    data_ = std::move(o.data_);
    size_ = o.size_;
    o.size_ = 0;
  }
  return *this;
}

PooledBuffer PooledBuffer::Get(size_t size) {
  PooledBuffer b;
  if (size == 0) return b;
  const int c = ClassOf(size);
  if (c >= 0) {
    auto& list = Lists().lists[c];
    if (!list.empty()) {
      b.data_ = std::move(list.back());
      list.pop_back();
    }
  }
  if (!b.data_) b.data_ = std::make_unique_for_overwrite<std::byte[]>(size);
  b.size_ = size;
  return b;
}

void PooledBuffer::Release() {
  if (!data_) return;
  const int c = ClassOf(size_);
  if (c >= 0) {
    auto& list = Lists().lists[c];
    if (list.size() < kClasses[c].max_cached) list.push_back(std::move(data_));
  }
  data_.reset();
  size_ = 0;
}

size_t PooledBuffer::CachedOnThisThread() {
  size_t n = 0;
  for (const auto& l : Lists().lists) n += l.size();
  return n;
}

}  // namespace ambit::io
