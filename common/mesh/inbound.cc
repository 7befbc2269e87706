#include "common/mesh/inbound.h"

#include <fmt/format.h>

#include <charconv>

#include "common/base/ascii.h"
#include "common/mesh/waypoint.h"

namespace ambit::mesh {
namespace {

InboundTarget Refuse(int status, std::string reason) {
  InboundTarget t;
  t.status = status;
  t.reason = std::move(reason);
  return t;
}

bool SplitHostPort(std::string_view a, std::string_view* host, uint16_t* port) {
  size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  *host = a.substr(0, colon);
  std::string_view p = a.substr(colon + 1);
  unsigned v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || end != p.data() + p.size() || p.empty() || v == 0 || v > 65535) {
    return false;
  }
  if (host->find_first_of(":[]/ ") != std::string_view::npos) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

// Does the address in the authority name something whose waypoint is `local`?
bool TargetUsesLocalAsWaypoint(const Snapshot& snap, const Workload& local,
                               const IpAddress& ip) {
  AddressMatch m = snap.FindAddress(local.network, ip, local.ns);
  if (const auto* w = std::get_if<const Workload*>(&m)) {
    return (*w)->waypoint && IsWaypointWorkload(snap, *(*w)->waypoint, local);
  }
  if (const auto* s = std::get_if<const Service*>(&m)) {
    if ((*s)->waypoint && IsWaypointWorkload(snap, *(*s)->waypoint, local)) return true;
    for (const WeightedWaypoint& ww : (*s)->weighted_waypoints) {
      if (IsWaypointWorkload(snap, ww.destination, local)) return true;
    }
  }
  return false;
}

// A service's VIP on `network`, IPv4 first; `fallback` when it has none
// (headless service).
IpAddress ServiceVip(const Service& svc, const std::string& network, const IpAddress& fallback) {
  const IpAddress* v6 = nullptr;
  for (const NetworkAddress& v : svc.vips) {
    if (v.network != network || v.IsCidr()) continue;
    if (v.ip.is_v4()) return v.ip;
    if (v6 == nullptr) v6 = &v.ip;
  }
  return v6 != nullptr ? *v6 : fallback;
}

// Hostname form: service by hostname (local namespace preferred), then the
// local endpoint's port map, then the service target port.
InboundTarget MapHostname(const Snapshot& snap, const Workload& local, std::string_view host,
                          uint16_t port) {
  const Service* svc = snap.FindServiceByHostname(host, local.ns);
  if (svc == nullptr) {
    return Refuse(503, fmt::format("no service with hostname {}", host));
  }
  InboundTarget t;
  t.service = svc;
  auto ep = svc->endpoints.find(local.uid);
  if (ep != svc->endpoints.end()) {
    auto p = ep->second.ports.find(port);
    if (p != ep->second.ports.end() && p->second != 0) t.upstream = {{}, p->second};
  }
  if (t.upstream.port() == 0) {
    auto p = svc->ports.find(port);
    if (p == svc->ports.end() || p->second == 0) {
      return Refuse(503, fmt::format("service {} has no target for port {}", svc->Key(), port));
    }
    t.upstream = {{}, p->second};
  }
  return t;
}

}  // namespace

InboundTarget MapInboundAuthority(const Snapshot& snap, const Workload& local,
                                  const IpAddress& arrival_ip, std::string_view authority) {
  InboundTarget t;
  auto sa = net::SocketAddress::Parse(authority);
  if (sa.ok()) {
    if (sa->ip() != arrival_ip && !local.application_tunnel &&
        !TargetUsesLocalAsWaypoint(snap, local, sa->ip())) {
      return Refuse(400, fmt::format("authority {} does not match the local address {} and "
                                     "{} is not its waypoint",
                                     authority, arrival_ip.ToString(), local.uid));
    }
    t.upstream = {arrival_ip, sa->port()};
    t.proxy_destination = *sa;
  } else {
    std::string_view host;
    uint16_t port = 0;
    if (!SplitHostPort(authority, &host, &port)) {
      return Refuse(400, fmt::format("authority '{}' is not ip:port or host:port", authority));
    }
    t = MapHostname(snap, local, host, port);
    if (t.status != 200) return t;
    t.upstream = {arrival_ip, t.upstream.port()};
    t.proxy_destination = {ServiceVip(*t.service, local.network, arrival_ip), port};
  }
  if (IsIllegalTargetPort(t.upstream.port())) {
    return Refuse(503, fmt::format("target port {} belongs to the agent (self-call)",
                                   t.upstream.port()));
  }
  if (local.application_tunnel) {
    if (local.application_tunnel->port != 0) {
      if (IsIllegalTargetPort(local.application_tunnel->port)) {
        return Refuse(503, fmt::format("application tunnel port {} of {} belongs to the agent "
                                       "(self-call)",
                                       local.application_tunnel->port, local.uid));
      }
      t.upstream = {arrival_ip, local.application_tunnel->port};
    }
    t.app_tunnel_proxy = local.application_tunnel->protocol == AppTunnelProtocol::kProxy;
  }
  return t;
}

const Service* GuessInboundService(const Snapshot& snap, const Workload& local,
                                   uint16_t target_port,
                                   std::optional<std::string_view> forwarded_host) {
  if (forwarded_host.has_value()) {
    for (const auto& [key, ports] : local.services) {
      const Service* s = snap.FindServiceByKey(key);
      if (s != nullptr && s->hostname == *forwarded_host) return s;
    }
  }
  for (const auto& [key, endpoint_ports] : local.services) {
    const Service* s = snap.FindServiceByKey(key);
    if (s == nullptr) continue;
    for (const auto& [svc_port, tgt_port] : s->ports) {
      if (tgt_port == target_port) return s;
      auto ep = endpoint_ports.find(svc_port);  // named port: the endpoint decides
      if (ep != endpoint_ports.end() && ep->second == target_port) return s;
    }
  }
  return nullptr;
}

bool FromOtherNetwork(const std::optional<std::string>& forwarded_network,
                      std::string_view local_network) {
  return forwarded_network.has_value() && !base::EqualsIgnoreCase(*forwarded_network, local_network);
}

}  // namespace ambit::mesh
