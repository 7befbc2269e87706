#include "waypoint/proxy/lb_hash.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace ambit::waypoint::lb {

uint64_t Hash64(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  // splitmix64 finalizer: FNV alone leaves close strings ("ep_1", "ep_2")
  // close on the ring.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

RingHash::RingHash(const std::vector<std::string>& names, uint64_t min_size) {
  endpoints_ = names.size();
  if (names.empty()) return;
  // Every endpoint gets the same number of points, enough that the ring has
  // at least min_size, rounded up to a power of two: then one endpoint
  // leaving (or joining) rarely changes the others' points, and only the
  // keys it owned move.
  uint64_t per = 1;
  while (per * names.size() < min_size) per *= 2;
  ring_.reserve(per * names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    std::string point = names[i];
    point.push_back('_');
    const size_t base = point.size();
    for (uint64_t k = 0; k < per; ++k) {
      point.resize(base);
      point.append(std::to_string(k));
      ring_.push_back({Hash64(point), static_cast<uint32_t>(i)});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
  });
}

size_t RingHash::Pick(uint64_t key, size_t skip) const {
  auto it = std::lower_bound(ring_.begin(), ring_.end(), key,
                             [](const Point& p, uint64_t k) { return p.hash < k; });
  size_t at = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
  const uint32_t first = ring_[at].index;
  if (skip == 0 || endpoints_ < 2) return first;
  // The skip-th distinct endpoint clockwise.
  std::vector<uint32_t> seen{first};
  for (size_t n = 1; n < ring_.size(); ++n) {
    const uint32_t idx = ring_[(at + n) % ring_.size()].index;
    if (std::find(seen.begin(), seen.end(), idx) != seen.end()) continue;
    seen.push_back(idx);
    if (seen.size() > skip) return idx;
  }
  return seen.back();
}

Maglev::Maglev(const std::vector<std::string>& names, uint64_t table_size) {
  const uint64_t m = table_size;
  const size_t n = names.size();
  if (n == 0 || m == 0) return;
  // Each endpoint walks its own permutation of the slots (offset + j*skip,
  // skip coprime to the prime m) and takes turns claiming free ones.
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; ++i) {
    offset[i] = Hash64(names[i], 1) % m;
    skip[i] = m > 1 ? Hash64(names[i], 2) % (m - 1) + 1 : 1;
  }
  constexpr uint32_t kFree = UINT32_MAX;
  table_.assign(m, kFree);
  uint64_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; ++i) {
      uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
      while (table_[slot] != kFree) {
        ++next[i];
        slot = (offset[i] + next[i] * skip[i]) % m;
      }
      table_[slot] = static_cast<uint32_t>(i);
      ++next[i];
      if (++filled == m) return;
    }
  }
}

}  // namespace ambit::waypoint::lb
