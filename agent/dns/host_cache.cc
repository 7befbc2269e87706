#include "agent/dns/host_cache.h"

namespace ambit::dns {

void HostCache::Erase(std::map<std::string, HostEntry, std::less<>>::iterator it) {
  by_expiry_.erase({it->second.expires, it->first});
  entries_.erase(it);
}

const HostEntry* HostCache::Find(std::string_view host, base::MonoTime now) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now) {
    Erase(it);
    return nullptr;
  }
  return &it->second;
}

void HostCache::Put(const std::string& host, HostEntry e, base::MonoTime now) {
  if (auto it = entries_.find(host); it != entries_.end()) Erase(it);
  if (e.expires <= now || capacity_ == 0) return;
  // Expired entries first (cheapest to lose), then the one expiring soonest.
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    Erase(entries_.find(by_expiry_.begin()->second));
  }
  while (entries_.size() >= capacity_) {
    Erase(entries_.find(by_expiry_.begin()->second));
    ++evictions_;
  }
  by_expiry_.insert({e.expires, host});
  entries_.emplace(host, std::move(e));
}

std::vector<HostCache::Row> HostCache::Live(base::MonoTime now) const {
  std::vector<Row> out;
  for (const auto& [host, e] : entries_) {
    if (e.expires > now) out.push_back(Row{host, e});
  }
  return out;
}

}  // namespace ambit::dns
