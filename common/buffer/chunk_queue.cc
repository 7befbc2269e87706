#include "common/buffer/chunk_queue.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ambit::buffer {

void ChunkQueue::Append(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    if (front_ == chunks_.size() || chunks_.back().end == chunks_.back().block.size()) {
      chunks_.push_back(Chunk{Block::Get(kChunkBlock), 0, 0});
    }
    Chunk& tail = chunks_.back();
    const size_t n = std::min(bytes.size(), tail.block.size() - tail.end);
    std::memcpy(tail.block.data() + tail.end, bytes.data(), n);
    tail.end += n;
    size_ += n;
    bytes = bytes.subspan(n);
  }
}

void ChunkQueue::Append(Block&& block, size_t used) {
  used = std::min(used, block.size());
  if (used == 0) {
    block.Release();
    return;
  }
  if (front_ < chunks_.size()) {
    const Chunk& tail = chunks_.back();
    if (tail.block.size() - tail.end >= used) {
      Append(std::span<const std::byte>(block.data(), used));
      block.Release();
      return;
    }
  }
  chunks_.push_back(Chunk{std::move(block), 0, used});
  size_ += used;
}

std::span<const std::byte> ChunkQueue::Front() const {
  if (front_ == chunks_.size()) return {};
  const Chunk& c = chunks_[front_];
  return {c.block.data() + c.begin, c.end - c.begin};
}

void ChunkQueue::Consume(size_t n) {
  n = std::min(n, size_);
  size_ -= n;
  while (n > 0) {
    Chunk& c = chunks_[front_];
    const size_t k = std::min(n, c.end - c.begin);
    c.begin += k;
    n -= k;
    if (c.begin == c.end) {
      c.block.Release();  // back to the pool now, not at the next compaction
      ++front_;
    }
  }
  DropConsumed();
}

size_t ChunkQueue::Pull(std::span<std::byte> dst) {
  size_t copied = 0;
  while (copied < dst.size() && front_ < chunks_.size()) {
    Chunk& c = chunks_[front_];
    const size_t n = std::min(dst.size() - copied, c.end - c.begin);
    std::memcpy(dst.data() + copied, c.block.data() + c.begin, n);
    copied += n;
    c.begin += n;
    if (c.begin == c.end) {
      c.block.Release();
      ++front_;
    }
  }
  size_ -= copied;
  DropConsumed();
  return copied;
}

void ChunkQueue::Clear() {
  std::vector<Chunk>().swap(chunks_);  // releases every block
  front_ = 0;
  size_ = 0;
}

void ChunkQueue::DropConsumed() {
  if (front_ == chunks_.size()) {
    // Empty: own nothing (the slot vector too), so an idle stream costs 0 B.
    Clear();
  } else if (front_ >= 16 && front_ * 2 >= chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(front_));
    front_ = 0;
  }
}

}  // namespace ambit::buffer
