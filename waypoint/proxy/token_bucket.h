// Token buckets shared by every worker of the waypoint (Envoy's local rate
// limit: "the token bucket is shared across all workers"), and a bounded map
// of them keyed by descriptor value (one bucket per x-api-key value).
//
// Refill is computed when a request arrives, in whole fill intervals since
// the last fill (Envoy fills on a timer, the same steps): no timer thread,
// and the caller passes `now`, so tests drive the clock. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/clock.h"
#include "waypoint/route/ratelimit_config.h"

namespace ambit::waypoint {

class TokenBucket {
 public:
  // Starts full (max_tokens), as Envoy's.
  TokenBucket(const route::TokenBucketSpec& spec, base::MonoTime now);

  struct Result {
    bool allowed = false;
    uint32_t remaining = 0;     // tokens left after this request
    base::Duration reset{0};    // until the next fill
  };
  // Takes one token if there is one.
  Result Consume(base::MonoTime now);
  // The state at `now` without taking a token (x-ratelimit-* when another
  // bucket refused the request).
  Result Peek(base::MonoTime now);
  const route::TokenBucketSpec& spec() const { return spec_; }

 private:
  void Refill(base::MonoTime now);  // mu_ held

  const route::TokenBucketSpec spec_;
  std::mutex mu_;
  uint64_t tokens_;
  base::MonoTime last_fill_;
};

// Buckets by key (the descriptor's values), created full on first use, at
// most `max_entries`; past that a bucket is evicted (a full one if the probe
// finds one, else any) and counted. Sharded locks keep workers apart.
class BucketMap {
 public:
  BucketMap(const route::TokenBucketSpec& spec, size_t max_entries);
  std::shared_ptr<TokenBucket> Get(std::string_view key, base::MonoTime now);
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  size_t size() const;
  const route::TokenBucketSpec& spec() const { return spec_; }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<TokenBucket>> buckets;
  };
  const route::TokenBucketSpec spec_;
  const size_t per_shard_max_;
  Shard shards_[kShards];
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace ambit::waypoint
