#include "common/buffer/block_pool.h"

#include <algorithm>
#include <vector>

namespace ambit::buffer {
namespace {

// Cached blocks per class and thread, at most 1 + 8 + 2 = 11 MiB. The 64 KiB
// bound covers the swing of a few bulk streams' send queues between their low
// and high water marks (256 KiB .. 1.25 MiB, ~16 blocks each) without falling
// back to malloc; Trim() gives an idle worker's cache back.
struct SizeClass {
  size_t size;
  size_t max_cached;
};
constexpr SizeClass kClasses[] = {{kSmallBlock, 64}, {kChunkBlock, 128}, {kLargeBlock, 8}};
constexpr size_t kNumClasses = sizeof(kClasses) / sizeof(kClasses[0]);

struct FreeList {
  std::vector<std::unique_ptr<std::byte[]>> blocks;
  size_t low_water = 0;  // fewest blocks cached since the last Trim()
};

// Set once this thread's lists were destroyed (thread exit): blocks released
// later (frames torn down during exit) are simply freed.
thread_local bool t_lists_gone = false;

struct ThreadPool {
  FreeList lists[kNumClasses];
  PoolStats stats;
  ~ThreadPool() { t_lists_gone = true; }
};

ThreadPool* Pool() {
  if (t_lists_gone) return nullptr;
  thread_local ThreadPool pool;
  return &pool;
}

int ClassOf(size_t size) {
  for (size_t i = 0; i < kNumClasses; ++i) {
    if (kClasses[i].size == size) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

Block& Block::operator=(Block&& o) noexcept {
  if (this != &o) {
    Release();
    data_ = std::move(o.data_);
    size_ = o.size_;
    o.size_ = 0;
  }
  return *this;
}

Block Block::Get(size_t size) {
  Block b;
  if (size == 0) return b;
  const int c = ClassOf(size);
  ThreadPool* pool = Pool();
  if (c >= 0 && pool != nullptr) {
    ++pool->stats.gets;
    FreeList& list = pool->lists[c];
    if (!list.blocks.empty()) {
      ++pool->stats.hits;
      b.data_ = std::move(list.blocks.back());
      list.blocks.pop_back();
      list.low_water = std::min(list.low_water, list.blocks.size());
    }
  }
  if (!b.data_) b.data_ = std::make_unique_for_overwrite<std::byte[]>(size);
  b.size_ = size;
  return b;
}

void Block::Release() {
  if (!data_) return;
  const int c = ClassOf(size_);
  ThreadPool* pool = Pool();
  if (c >= 0 && pool != nullptr) {
    FreeList& list = pool->lists[c];
    if (list.blocks.size() < kClasses[c].max_cached) {
      if (list.blocks.capacity() == 0) list.blocks.reserve(kClasses[c].max_cached);
      list.blocks.push_back(std::move(data_));
    } else {
      ++pool->stats.dropped;
    }
  }
  data_.reset();
  size_ = 0;
}

PoolStats BlockPool::ThisThread() {
  ThreadPool* pool = Pool();
  if (pool == nullptr) return {};
  PoolStats s = pool->stats;
  for (size_t i = 0; i < kNumClasses; ++i) {
    s.cached_blocks += pool->lists[i].blocks.size();
    s.cached_bytes += pool->lists[i].blocks.size() * kClasses[i].size;
  }
  return s;
}

size_t BlockPool::Trim() {
  ThreadPool* pool = Pool();
  if (pool == nullptr) return 0;
  size_t freed = 0;
  for (FreeList& list : pool->lists) {
    // The list is LIFO: the `low_water` blocks at its bottom were never taken
    // in this interval; the top ones are the warm ones, kept.
    const size_t unused = std::min(list.low_water, list.blocks.size());
    list.blocks.erase(list.blocks.begin(),
                      list.blocks.begin() + static_cast<std::ptrdiff_t>(unused));
    freed += unused;
    list.low_water = list.blocks.size();
  }
  pool->stats.trimmed += freed;
  return freed;
}

void BlockPool::Clear() {
  ThreadPool* pool = Pool();
  if (pool == nullptr) return;
  for (FreeList& list : pool->lists) {
    list.blocks.clear();
    list.low_water = 0;
  }
}

size_t BlockPool::MaxCached(size_t size) {
  const int c = ClassOf(size);
  return c < 0 ? 0 : kClasses[c].max_cached;
}

}  // namespace ambit::buffer
