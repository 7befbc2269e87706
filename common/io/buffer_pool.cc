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

// Set once this thread's lists were destroyed (thread exit): buffers released
// later (frames torn down during exit) are simply freed.
thread_local bool t_lists_gone = false;

struct FreeLists {
  std::vector<std::unique_ptr<std::byte[]>> lists[kNumClasses];
  ~FreeLists() { t_lists_gone = true; }
};

FreeLists* Lists() {
  if (t_lists_gone) return nullptr;
  thread_local FreeLists lists;
  return &lists;
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
  FreeLists* lists = Lists();
  if (c >= 0 && lists != nullptr) {
    auto& list = lists->lists[c];
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
  FreeLists* lists = Lists();
  if (c >= 0 && lists != nullptr) {
    auto& list = lists->lists[c];
    if (list.size() < kClasses[c].max_cached) list.push_back(std::move(data_));
  }
  data_.reset();
  size_ = 0;
}

size_t PooledBuffer::CachedOnThisThread() {
  size_t n = 0;
  FreeLists* lists = Lists();
  if (lists == nullptr) return 0;
  for (const auto& l : lists->lists) n += l.size();
  return n;
}

}  // namespace ambit::io
