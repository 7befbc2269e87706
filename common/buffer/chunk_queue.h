// ChunkQueue: a FIFO of bytes stored in pooled blocks (block_pool.h) — the
// HTTP/2 send queue of a stream and the receive buffer of a SessionStream.
//
//   buffer::ChunkQueue q;
//   q.Append(bytes);                  // copied into the tail block, then new 64 KiB blocks
//   q.Append(std::move(block), n);    // adopts a filled block (no copy)
//   auto run = q.Front();             // first contiguous run of bytes
//   q.Consume(run.size());            // drained blocks go back to the pool at once
//   size_t n = q.Pull(dst);           // copy out + consume
//
// Bytes never move once appended, so a span from Front() stays valid while
// more bytes are appended, until those bytes are consumed. A queue holds
// blocks only while it holds bytes: once empty it owns no memory at all, so an
// idle stream pins nothing (BENCHMARKS.md memory goal). Not thread-safe; used
// on the thread that owns the blocks.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "common/buffer/block_pool.h"

namespace ambit::buffer {

class ChunkQueue {
 public:
  ChunkQueue() = default;
  ChunkQueue(ChunkQueue&&) noexcept = default;
  ChunkQueue& operator=(ChunkQueue&&) noexcept = default;

  void Append(std::span<const std::byte> bytes);
  // Adopts `block`, whose first `used` bytes are data. A small fill that fits
  // the tail block's room is copied there instead and the block released.
  void Append(Block&& block, size_t used);

  // The first contiguous run of queued bytes (empty when the queue is).
  std::span<const std::byte> Front() const;
  // Drops the first min(n, size()) bytes.
  void Consume(size_t n);
  // Copies up to dst.size() bytes out of the queue and consumes them.
  size_t Pull(std::span<std::byte> dst);
  // Releases every block.
  void Clear();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t blocks() const { return chunks_.size() - front_; }

 private:
  struct Chunk {
    Block block;
    size_t begin = 0;  // first unconsumed byte
    size_t end = 0;    // one past the last byte written
  };
  // Pops fully consumed chunks from the front; frees everything when empty.
  void DropConsumed();

  std::vector<Chunk> chunks_;
  size_t front_ = 0;  // first live chunk
  size_t size_ = 0;
};

}  // namespace ambit::buffer
