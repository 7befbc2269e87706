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
  if (!chunks_.empty() && chunks_.back().size() + bytes.size() <= kMergeLimit) {
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
  while (copied < dst.size() && !chunks_.empty()) {
    const auto& front = chunks_.front();
    size_t n = std::min(dst.size() - copied, front.size() - front_offset_);
    std::memcpy(dst.data() + copied, front.data() + front_offset_, n);
    copied += n;
    front_offset_ += n;
    if (front_offset_ == front.size()) {
      chunks_.pop_front();
      front_offset_ = 0;
    }
  }
  size_ -= copied;
  return copied;
}

}  // namespace ambit::http2
