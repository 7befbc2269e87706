#include "common/http2/h2_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ambit::http2 {

namespace {
// Small writes are merged into the tail chunk up to this size.
constexpr size_t kMergeLimit = 16u << 10;
}  // namespace

void H2SendQueue::Append(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  if (front_ < chunks_.size() && chunks_.back().size() + bytes.size() <= kMergeLimit) {
    auto& tail = chunks_.back();
    tail.insert(tail.end(), bytes.begin(), bytes.end());
  } else {
    chunks_.emplace_back(bytes.begin(), bytes.end());
  }
  size_ += bytes.size();
}

void H2SendQueue::Append(std::vector<std::byte>&& bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  chunks_.push_back(std::move(bytes));
}

size_t H2SendQueue::Pull(std::span<std::byte> dst) {
  size_t copied = 0;
  while (copied < dst.size() && front_ < chunks_.size()) {
    auto& front = chunks_[front_];
    size_t n = std::min(dst.size() - copied, front.size() - front_offset_);
    std::memcpy(dst.data() + copied, front.data() + front_offset_, n);
    copied += n;
    front_offset_ += n;
    if (front_offset_ == front.size()) {
      front = {};  // free the chunk now, not at the next compaction
      ++front_;
      front_offset_ = 0;
    }
  }
  if (front_ == chunks_.size()) {
    chunks_.clear();
    if (chunks_.capacity() > 16) chunks_.shrink_to_fit();  // after a burst
    front_ = 0;
  } else if (front_ >= 32 && front_ * 2 >= chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(front_));
    front_ = 0;
  }
  size_ -= copied;
  return copied;
}

}  // namespace ambit::http2
