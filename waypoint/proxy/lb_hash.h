// Consistent hashing for DestinationRule consistentHash: Envoy's ring hash
// (ketama-style points on a 64-bit ring, at least `min_size` of them) and
// Maglev (a prime-sized lookup table where each endpoint owns ~M/N slots).
// Both map a request's 64-bit key to an endpoint index and move about 1/N
// of the keys when one of N endpoints leaves. Pure: built per cluster and
// endpoint set on a worker, then read per request.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ambit::waypoint::lb {

// 64-bit hash of request keys and endpoint names (FNV-1a, then a
// finalizer so nearby inputs land far apart on the ring).
uint64_t Hash64(std::string_view s, uint64_t seed = 0);

class RingHash {
 public:
  // `names` identify the endpoints (stable across rebuilds, e.g. address).
  RingHash(const std::vector<std::string>& names, uint64_t min_size);
  // Index into `names` owning `key`'s point; `skip` > 0 walks on to the
  // skip-th next distinct endpoint (a retry avoiding the previous one).
  size_t Pick(uint64_t key, size_t skip = 0) const;
  size_t size() const { return ring_.size(); }

 private:
  struct Point {
    uint64_t hash;
    uint32_t index;
  };
  std::vector<Point> ring_;
  size_t endpoints_ = 0;
};

class Maglev {
 public:
  // `table_size` must be prime (checked at config compile).
  Maglev(const std::vector<std::string>& names, uint64_t table_size);
  size_t Pick(uint64_t key) const { return table_[key % table_.size()]; }
  size_t size() const { return table_.size(); }

 private:
  std::vector<uint32_t> table_;
};

}  // namespace ambit::waypoint::lb
