#include "waypoint/proxy/lb_locality.h"

#include <cmath>
#include <map>
#include <optional>
#include <string>

namespace ambit::waypoint::lb {

namespace {

std::string LocalityKey(const mesh::Locality& l) {
  return l.region + "/" + l.zone + "/" + l.subzone;
}

// A label as istiod reads it for failoverPriority: the topology keys come
// from the workload's locality and network.
std::optional<std::string> LabelOf(const mesh::Workload& w, std::string_view key) {
  if (key == "topology.kubernetes.io/region") return w.locality.region;
  if (key == "topology.kubernetes.io/zone") return w.locality.zone;
  if (key == "topology.istio.io/subzone") return w.locality.subzone;
  if (key == "topology.istio.io/network") return w.network;
  auto it = w.labels.find(std::string(key));
  if (it == w.labels.end()) return std::nullopt;
  return it->second;
}

// How many leading failoverPriority labels `ep` shares with `self`
// ("key=value": the endpoint's label must have that value).
size_t MatchedLabels(const mesh::Workload& self, const mesh::Workload& ep,
                     const std::vector<std::string>& labels) {
  size_t n = 0;
  for (const std::string& l : labels) {
    const size_t eq = l.find('=');
    bool match;
    if (eq != std::string::npos) {
      auto v = LabelOf(ep, std::string_view(l).substr(0, eq));
      match = v && *v == l.substr(eq + 1);
    } else {
      auto mine = LabelOf(self, l);
      auto theirs = LabelOf(ep, l);
      match = mine && theirs && *mine == *theirs;
    }
    if (!match) break;
    ++n;
  }
  return n;
}

// istiod's LbPriority plus the `failover` region pairs: 0 same subzone,
// 1 same zone, 2 same region, 3 another region (the failover target when
// one is named for ours), 4 a region the failover list does not name.
uint32_t LocalityPriority(const mesh::Locality& self, const mesh::Locality& ep,
                          const std::vector<route::LocalitySetting::Failover>& failover) {
  uint32_t p;
  if (self.region != ep.region) {
    p = 3;
  } else if (self.zone != ep.zone) {
    p = 2;
  } else if (self.subzone != ep.subzone) {
    p = 1;
  } else {
    p = 0;
  }
  if (p == 3) {
    for (const auto& f : failover) {
      if (f.from != self.region) continue;
      if (ep.region != f.to) p = 4;
      break;
    }
  }
  return p;
}

std::vector<Level> Distribute(const mesh::Workload& self,
                              const std::vector<const mesh::Workload*>& eps,
                              const route::LocalitySetting::Distribute& d) {
  // Each `to` entry takes the endpoints no earlier entry took; its weight
  // is split over their localities by endpoint count (istiod divides a
  // locality's weight by the matched total and rounds up).
  std::vector<bool> taken(eps.size(), false);
  std::map<std::string, Group> groups;
  for (const auto& [pattern, weight] : d.to) {
    std::map<std::string, std::vector<uint32_t>> matched;
    size_t total = 0;
    for (size_t i = 0; i < eps.size(); ++i) {
      if (taken[i] || !LocalityMatch(eps[i]->locality, pattern)) continue;
      taken[i] = true;
      matched[LocalityKey(eps[i]->locality)].push_back(static_cast<uint32_t>(i));
      ++total;
    }
    for (auto& [loc, members] : matched) {
      Group& g = groups[loc];
      g.weight = static_cast<uint32_t>(
          std::ceil(static_cast<double>(members.size()) * weight / static_cast<double>(total)));
      g.members = std::move(members);
    }
  }
  (void)self;
  Level level;
  for (auto& [loc, g] : groups) level.push_back(std::move(g));
  if (level.empty()) return {};
  return {std::move(level)};
}

}  // namespace

bool LocalityMatch(const mesh::Locality& l, std::string_view pattern) {
  const std::string_view parts[3] = {l.region, l.zone, l.subzone};
  size_t i = 0;
  while (!pattern.empty() && i < 3) {
    const size_t slash = pattern.find('/');
    const std::string_view seg = pattern.substr(0, slash);
    if (seg != "*" && seg != parts[i]) return false;
    ++i;
    if (slash == std::string_view::npos) break;
    pattern = pattern.substr(slash + 1);
  }
  return true;
}

std::vector<Level> Arrange(const mesh::Workload& self,
                           const std::vector<const mesh::Workload*>& eps,
                           const route::LocalitySetting* setting, bool failover) {
  auto all = [&] {
    Group g;
    for (size_t i = 0; i < eps.size(); ++i) g.members.push_back(static_cast<uint32_t>(i));
    return std::vector<Level>{Level{std::move(g)}};
  };
  if (eps.empty()) return {};
  if (setting != nullptr && !setting->enabled) return all();
  if (setting != nullptr && !setting->distribute.empty()) {
    for (const auto& d : setting->distribute) {
      if (LocalityMatch(self.locality, d.from)) return Distribute(self, eps, d);
    }
    return all();
  }
  if (!failover) return all();
  static const std::vector<route::LocalitySetting::Failover> kNone;
  const auto& pairs = setting != nullptr ? setting->failover : kNone;
  const bool labels = setting != nullptr && !setting->failover_priority.empty();
  std::map<uint32_t, Group> by_priority;
  for (size_t i = 0; i < eps.size(); ++i) {
    uint32_t p = 0;
    if (labels) {
      p = static_cast<uint32_t>(setting->failover_priority.size() -
                                MatchedLabels(self, *eps[i], setting->failover_priority));
      // With failoverPriority, locality failover refines it only when
      // `failover` pairs are written too.
      if (!pairs.empty()) p = p * 5 + LocalityPriority(self.locality, eps[i]->locality, pairs);
    } else {
      p = LocalityPriority(self.locality, eps[i]->locality, pairs);
    }
    by_priority[p].priority = p;
    by_priority[p].members.push_back(static_cast<uint32_t>(i));
  }
  std::vector<Level> out;
  for (auto& [p, g] : by_priority) out.push_back(Level{std::move(g)});
  return out;
}

}  // namespace ambit::waypoint::lb
