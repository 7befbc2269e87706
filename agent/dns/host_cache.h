// The on-demand resolver's cache (on_demand.h): hostname → addresses until
// the answer's TTL expires, or → a negative answer (NXDOMAIN / no address)
// until its RFC 2308 TTL expires. Bounded: at capacity, expired entries go
// first, then the one expiring soonest. Time is passed in (tests inject it).
// Not thread-safe: the owner locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/clock.h"
#include "common/net/address.h"

namespace ambit::dns {

struct HostEntry {
  std::vector<net::IpAddress> addresses;  // empty = negative answer
  std::string_view negative_reason;       // "nxdomain" / "no_addresses" when negative
  base::MonoTime expires;
};

class HostCache {
 public:
  explicit HostCache(size_t capacity) : capacity_(capacity) {}

  // The live entry for `host` (expires > now), or null; an expired one is
  // dropped. The pointer is valid until the next Put/Find.
  const HostEntry* Find(std::string_view host, base::MonoTime now);
  // Stores `e` (replacing any entry for host). An entry already expired at
  // `now` (TTL 0) is not stored. Capacity 0 stores nothing.
  void Put(const std::string& host, HostEntry e, base::MonoTime now);

  struct Row {
    std::string hostname;
    HostEntry entry;
  };
  std::vector<Row> Live(base::MonoTime now) const;  // sorted by hostname
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }
  uint64_t evictions() const { return evictions_; }  // live entries dropped for room

 private:
  void Erase(std::map<std::string, HostEntry, std::less<>>::iterator it);

  size_t capacity_;
  std::map<std::string, HostEntry, std::less<>> entries_;
  std::set<std::pair<base::MonoTime, std::string>> by_expiry_;
  uint64_t evictions_ = 0;
};

}  // namespace ambit::dns
