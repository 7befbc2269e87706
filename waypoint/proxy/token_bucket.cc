#include "waypoint/proxy/token_bucket.h"

#include <algorithm>
#include <functional>

namespace ambit::waypoint {

TokenBucket::TokenBucket(const route::TokenBucketSpec& spec, base::MonoTime now)
    : spec_(spec), tokens_(spec.max_tokens), last_fill_(now) {}

void TokenBucket::Refill(base::MonoTime now) {
  if (spec_.fill_interval.count() <= 0 || now <= last_fill_) return;
  const int64_t fills = (now - last_fill_) / spec_.fill_interval;
  if (fills <= 0) return;
  last_fill_ += spec_.fill_interval * fills;
  const uint64_t add = static_cast<uint64_t>(std::min<int64_t>(fills, spec_.max_tokens)) *
                       spec_.tokens_per_fill;
  tokens_ = std::min<uint64_t>(spec_.max_tokens, tokens_ + add);
}

TokenBucket::Result TokenBucket::Consume(base::MonoTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  Refill(now);
  Result r;
  if (tokens_ > 0) {
    --tokens_;
    r.allowed = true;
  }
  r.remaining = static_cast<uint32_t>(tokens_);
  r.reset = last_fill_ + spec_.fill_interval - now;
  return r;
}

TokenBucket::Result TokenBucket::Peek(base::MonoTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  Refill(now);
  Result r;
  r.allowed = tokens_ > 0;
  r.remaining = static_cast<uint32_t>(tokens_);
  r.reset = last_fill_ + spec_.fill_interval - now;
  return r;
}

BucketMap::BucketMap(const route::TokenBucketSpec& spec, size_t max_entries)
    : spec_(spec), per_shard_max_(std::max<size_t>(1, max_entries / kShards)) {}

std::shared_ptr<TokenBucket> BucketMap::Get(std::string_view key, base::MonoTime now) {
  Shard& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto it = s.buckets.find(std::string(key)); it != s.buckets.end()) return it->second;
  if (s.buckets.size() >= per_shard_max_) {
    // Prefer a bucket that refilled to full: forgetting it loses nothing.
    auto victim = s.buckets.begin();
    int probe = 0;
    for (auto it = s.buckets.begin(); it != s.buckets.end() && probe < 8; ++it, ++probe) {
      if (it->second->Peek(now).remaining >= spec_.max_tokens) {
        victim = it;
        break;
      }
    }
    s.buckets.erase(victim);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  auto b = std::make_shared<TokenBucket>(spec_, now);
  s.buckets.emplace(std::string(key), b);
  return b;
}

size_t BucketMap::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace ambit::waypoint
