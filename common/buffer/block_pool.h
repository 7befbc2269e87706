// Block / BlockPool: fixed-size byte blocks recycled through a per-thread,
// bounded free list, so the bulk data path never hands memory back to the
// allocator (and the kernel) between writes.
//
//   buffer::Block b = buffer::Block::Get(buffer::kChunkBlock);  // uninitialised bytes
//   std::memcpy(b.data(), src, n);
//   b.Release();              // back to this thread's free list (also on destruction)
//
// Why: relay and send-queue buffers used to be malloc'ed per write. glibc trims
// a freed 256 KiB chunk back to the kernel (madvise) and the next write faults
// the pages in again: ~25,000 minor faults/s and one madvise per io_uring_enter
// at 1.25 Gbit/s (issue 20). Blocks of a size class are reused LIFO (their
// pages stay resident and cache-warm) instead.
//
// Bounds: each size class keeps at most `max_cached` blocks per thread;
// anything released beyond that is freed. Trim() (a worker's periodic tick)
// frees the blocks that sat unused in the cache since the previous Trim(), so
// a burst does not pin its peak for the life of the worker. Sizes that are not
// a class are plain heap allocations, never cached.
//
// Threads: a block must be released on the thread that got it (coroutines of
// one io::Loop do); moving it between threads is a bug (it would be cached on
// the wrong thread, which is harmless but defeats the bound per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace ambit::buffer {

// The size classes. 16 KiB: one TLS record, a relay's first reads. 64 KiB:
// send/receive queue chunks. 256 KiB: a relay's reads once a transfer is bulk.
inline constexpr size_t kSmallBlock = 16u << 10;
inline constexpr size_t kChunkBlock = 64u << 10;
inline constexpr size_t kLargeBlock = 256u << 10;

class Block {
 public:
  Block() = default;
  ~Block() { Release(); }
  Block(Block&& o) noexcept : data_(std::move(o.data_)), size_(o.size_) { o.size_ = 0; }
  Block& operator=(Block&& o) noexcept;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  // A block of exactly `size` bytes (contents unspecified); from this thread's
  // free list when `size` is a size class and one is cached.
  static Block Get(size_t size);

  std::span<std::byte> span() { return {data_.get(), size_}; }
  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Back to this thread's free list (or freed if the list is full).
  void Release();

 private:
  std::unique_ptr<std::byte[]> data_;
  size_t size_ = 0;
};

// Counters of this thread's pool since it started (tests, metrics, bench).
struct PoolStats {
  uint64_t gets = 0;       // Get() of a size class
  uint64_t hits = 0;       // ... served from the free list
  uint64_t dropped = 0;    // Release() that freed because the list was full
  uint64_t trimmed = 0;    // blocks freed by Trim()
  size_t cached_blocks = 0;
  size_t cached_bytes = 0;
};

class BlockPool {
 public:
  static PoolStats ThisThread();
  // Frees every cached block that was not taken since the previous Trim()
  // (the free list's low-water mark over the interval); returns how many.
  static size_t Trim();
  // Frees every cached block of this thread (tests; thread exit does it too).
  static void Clear();
  // How many blocks of `size` this thread keeps at most (0: not a class).
  static size_t MaxCached(size_t size);
};

}  // namespace ambit::buffer
