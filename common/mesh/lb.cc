#include "common/mesh/lb.h"

#include <algorithm>
#include <vector>

namespace ambit::mesh {

std::optional<uint16_t> TranslatePort(const Service& svc, const Endpoint& ep,
                                      const Workload& w, uint16_t service_port,
                                      LbPurpose purpose) {
  auto sp = svc.ports.find(service_port);
  if (sp == svc.ports.end()) {
    if (purpose == LbPurpose::kWaypoint && w.application_tunnel) return service_port;
    return std::nullopt;
  }
  auto ep_port = ep.ports.find(service_port);
  if (ep_port != ep.ports.end() && ep_port->second != 0) return ep_port->second;
  if (sp->second != 0) return sp->second;
  if (purpose == LbPurpose::kWaypoint && w.application_tunnel) return service_port;
  return std::nullopt;  // named port that this endpoint does not map
}

namespace {

bool FamilyAllowed(IpFamilies f, const IpAddress& ip) {
  switch (f) {
    case IpFamilies::kIpv4Only: return ip.is_v4();
    case IpFamilies::kIpv6Only: return ip.is_v6();
    default: return true;
  }
}

bool ScopeMatches(LbScope scope, const Workload& a, const Workload& b) {
  switch (scope) {
    case LbScope::kRegion: return a.locality.region == b.locality.region;
    case LbScope::kZone: return a.locality.zone == b.locality.zone;
    case LbScope::kSubzone: return a.locality.subzone == b.locality.subzone;
    case LbScope::kNode: return a.node == b.node;
    case LbScope::kCluster: return a.cluster_id == b.cluster_id;
    case LbScope::kNetwork: return a.network == b.network;
  }
  return false;
}

}  // namespace

std::optional<IpAddress> SelectIp(const Workload& w, const Service* svc,
                                  const IpAddress& original) {
  if (w.HasAddress(original)) return original;
  IpFamilies fam = svc ? svc->ip_families : IpFamilies::kAutomatic;
  const IpAddress* fallback = nullptr;
  for (const IpAddress& ip : w.addresses) {
    if (!FamilyAllowed(fam, ip)) continue;
    if (ip.family() == original.family()) return ip;
    if (fallback == nullptr) fallback = &ip;
  }
  if (fallback) return *fallback;
  return std::nullopt;  // hostname-only workloads: PickEndpoint marks them `resolve`
}

std::optional<IpAddress> PickResolvedIp(const std::vector<IpAddress>& resolved,
                                        const IpAddress& original, Rng& rng) {
  std::vector<const IpAddress*> same, other;
  for (const IpAddress& ip : resolved) (ip.family() == original.family() ? same : other).push_back(&ip);
  const auto& pool = same.empty() ? other : same;
  if (pool.empty()) return std::nullopt;
  return *pool[pool.size() == 1 ? 0 : rng.Below(pool.size())];
}

int LocalityRank(const LoadBalancing& lb, const Workload& src, const Workload& ep) {
  const auto& prefs = lb.routing_preference;
  int rank = 0;
  size_t i = 0;
  if (!prefs.empty() && prefs[0] == LbScope::kNetwork) {
    // NETWORK first acts as a gate; when it matches it is worth all the rest.
    if (!ScopeMatches(LbScope::kNetwork, src, ep)) {
      return lb.mode == LbMode::kStrict || lb.mode == LbMode::kFailover ? -1 : 0;
    }
    rank = static_cast<int>(prefs.size()) - 1;
    i = 1;
  }
  for (; i < prefs.size(); ++i) {
    if (!ScopeMatches(prefs[i], src, ep)) break;
    ++rank;
  }
  if (lb.mode == LbMode::kStrict && rank < static_cast<int>(prefs.size())) return -1;
  return rank;
}

std::optional<Upstream> PickEndpoint(const Snapshot& snap, const Service& svc,
                                     const Workload* source, uint16_t service_port,
                                     const IpAddress& original_ip, LbPurpose purpose,
                                     Rng& rng) {
  struct Candidate {
    Upstream up;
    int rank;
  };
  std::vector<Candidate> cands;
  const bool ranked = svc.load_balancing && source != nullptr &&
                      (svc.load_balancing->mode == LbMode::kStrict ||
                       svc.load_balancing->mode == LbMode::kFailover);
  for (const auto& [uid, ep] : svc.endpoints) {
    const Workload* w = snap.FindWorkload(uid);
    if (w == nullptr) continue;
    auto port = TranslatePort(svc, ep, *w, service_port, purpose);
    if (!port) continue;
    auto ip = SelectIp(*w, &svc, original_ip);
    if (!ip && w->hostname.empty()) continue;
    int rank = ranked ? LocalityRank(*svc.load_balancing, *source, *w) : 0;
    if (rank < 0) continue;
    cands.push_back({Upstream{w, ip.value_or(IpAddress()), *port, !ip.has_value()}, rank});
  }
  if (cands.empty()) return std::nullopt;
  int best = 0;
  for (const Candidate& c : cands) best = std::max(best, c.rank);
  std::erase_if(cands, [best](const Candidate& c) { return c.rank != best; });

  uint64_t total = 0;
  for (const Candidate& c : cands) total += c.up.workload->capacity;
  if (total == 0) return cands[rng.Below(cands.size())].up;
  uint64_t r = rng.Below(total);
  for (const Candidate& c : cands) {
    if (r < c.up.workload->capacity) return c.up;
    r -= c.up.workload->capacity;
  }
  return cands.back().up;
}

}  // namespace ambit::mesh
