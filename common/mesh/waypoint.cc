#include "common/mesh/waypoint.h"

#include <fmt/format.h>

namespace ambit::mesh {
namespace {

std::string Describe(const GatewayAddress& gw) {
  if (const auto* h = std::get_if<NamespacedHostname>(&gw.destination)) return h->Key();
  const auto& a = std::get<NetworkAddress>(gw.destination);
  return a.network + "/" + a.ip.ToString();
}

// Service the waypoint reference names (hostname form, or an address that is a VIP).
const Service* WaypointService(const Snapshot& snap, const GatewayAddress& gw) {
  if (const auto* h = std::get_if<NamespacedHostname>(&gw.destination)) {
    return snap.FindServiceByKey(h->Key());
  }
  const auto& a = std::get<NetworkAddress>(gw.destination);
  return snap.FindServiceByVip(a.network, a.ip, "");
}

}  // namespace

const GatewayAddress* ChooseServiceWaypoint(const Service& svc, Rng& rng) {
  uint64_t total = 0;
  for (const WeightedWaypoint& w : svc.weighted_waypoints) total += w.weight;
  if (total > 0) {
    uint64_t r = rng.Below(total);
    for (const WeightedWaypoint& w : svc.weighted_waypoints) {
      if (r < w.weight) return &w.destination;
      r -= w.weight;
    }
  }
  return svc.waypoint ? &*svc.waypoint : nullptr;
}

StatusOr<ResolvedWaypoint> ResolveWaypoint(const Snapshot& snap, const GatewayAddress& gw,
                                           const Workload& source, Rng& rng) {
  ResolvedWaypoint out;
  out.port = gw.hbone_mtls_port;
  if (const auto* a = std::get_if<NetworkAddress>(&gw.destination)) {
    if (const Workload* w = snap.FindWorkloadByIp(a->network, a->ip)) {
      out.workload = w;
      out.ip = a->ip;
      out.identities.push_back(w->Identity());
      return out;
    }
  }
  const Service* svc = WaypointService(snap, gw);
  if (svc == nullptr) {
    return absl::NotFoundError(fmt::format("waypoint {} not found", Describe(gw)));
  }
  IpAddress original = svc->vips.empty() ? IpAddress() : svc->vips.front().ip;
  auto up = PickEndpoint(snap, *svc, &source, gw.hbone_mtls_port, original,
                         LbPurpose::kWaypoint, rng);
  if (!up) {
    return absl::UnavailableError(
        fmt::format("no healthy waypoint endpoint for {}", svc->Key()));
  }
  out.workload = up->workload;
  out.ip = up->ip;
  out.identities = svc->subject_alt_names;
  out.identities.push_back(up->workload->Identity());
  return out;
}

// ztunnel's check_from_waypoint: one of the waypoint's workloads has the
// source's identity and one of its addresses (not just the same uid: a pod IP
// reused by another identity is not the waypoint).
bool IsWaypointWorkload(const Snapshot& snap, const GatewayAddress& gw, const Workload& w) {
  auto is_source = [&w](const Workload& wp) {
    if (wp.Identity() != w.Identity() || wp.network != w.network) return false;
    for (const IpAddress& ip : wp.addresses) {
      if (w.HasAddress(ip)) return true;
    }
    return false;
  };
  if (const auto* a = std::get_if<NetworkAddress>(&gw.destination)) {
    if (const Workload* wp = snap.FindWorkloadByIp(a->network, a->ip)) return is_source(*wp);
  }
  const Service* svc = WaypointService(snap, gw);
  if (svc == nullptr) return false;
  for (const auto& [uid, ep] : svc->endpoints) {
    const Workload* wp = snap.FindWorkload(uid);
    if (wp != nullptr && is_source(*wp)) return true;
  }
  return false;
}

}  // namespace ambit::mesh
