#include "common/mesh/decision.h"

#include <fmt/format.h>

#include "common/mesh/waypoint.h"

namespace ambit::mesh {
namespace {

using net::SocketAddress;

Decision ViaWaypoint(const Snapshot& snap, const GatewayAddress& gw, const Workload& source,
                     const SocketAddress& target, const Service* svc, Rng& rng) {
  auto wp = ResolveWaypoint(snap, gw, source, rng);
  if (!wp.ok()) {
    return DecisionError{fmt::format("{} (destination {})", std::string(wp.status().message()),
                                     target.ToString())};
  }
  if (wp->workload->network != source.network) {
    return DecisionError{fmt::format("waypoint {} is on network '{}': cross-network not "
                                     "supported yet",
                                     wp->workload->uid, wp->workload->network)};
  }
  HboneRoute r;
  r.next_hop = SocketAddress(wp->ip, wp->port);
  r.authority = target;  // untranslated original destination
  r.expected_identities = std::move(wp->identities);
  r.upstream = wp->workload;
  r.service = svc;
  r.via_waypoint = true;
  return r;
}

Decision Direct(const Upstream& up, const Service* svc) {
  if (up.workload->protocol != TunnelProtocol::kHbone) {
    return TcpRoute{SocketAddress(up.ip, up.port), up.workload, svc};
  }
  HboneRoute r;
  r.next_hop = SocketAddress(up.ip, kHbonePort);
  r.authority = SocketAddress(up.ip, up.port);
  if (svc) r.expected_identities = svc->subject_alt_names;
  r.expected_identities.push_back(up.workload->Identity());
  r.upstream = up.workload;
  r.service = svc;
  return r;
}

// ztunnel's illegal_call: a loopback target on one of the agent's ports. The
// pod's own IP on those ports is not refused (it is routed like any workload).
bool IsSelfCall(const SocketAddress& target) {
  return target.ip().IsLoopback() && IsIllegalTargetPort(target.port());
}

}  // namespace

Decision Decide(const Snapshot& snap, const Workload& source, const SocketAddress& target,
                Rng& rng) {
  if (IsSelfCall(target)) {
    return DecisionError{fmt::format(
        "self-call to {} refused: ports 15001/15006/15008 belong to the agent",
        target.ToString())};
  }
  AddressMatch match = snap.FindAddress(source.network, target.ip(), source.ns);
  const Service* svc = nullptr;
  Upstream up;
  if (const auto* s = std::get_if<const Service*>(&match)) {
    svc = *s;
    // ztunnel build_request: a service waypoint is always taken for
    // service-addressed traffic, whoever the source is (the from-waypoint
    // check applies to workload-addressed traffic only).
    if (const GatewayAddress* gw = ChooseServiceWaypoint(*svc, rng)) {
      return ViaWaypoint(snap, *gw, source, target, svc, rng);
    }
    if (svc->IsPassthrough()) return PassthroughRoute{target};
    auto picked = PickEndpoint(snap, *svc, &source, target.port(), target.ip(),
                               LbPurpose::kStandard, rng);
    if (!picked) {
      return DecisionError{fmt::format("no healthy upstream for service {} port {}",
                                       svc->Key(), target.port())};
    }
    up = *picked;
  } else if (const auto* w = std::get_if<const Workload*>(&match)) {
    up = Upstream{*w, target.ip(), target.port()};
  } else {
    return PassthroughRoute{target};
  }
  if (up.workload->network != source.network) {
    return DecisionError{fmt::format("upstream {} is on network '{}': cross-network not "
                                     "supported yet",
                                     up.workload->uid, up.workload->network)};
  }
  if (up.resolve) return ResolveRoute{up.workload, svc, up.port, target};
  if (svc == nullptr && up.workload->waypoint &&
      !IsWaypointWorkload(snap, *up.workload->waypoint, source)) {
    return ViaWaypoint(snap, *up.workload->waypoint, source, target, nullptr, rng);
  }
  return Direct(up, svc);
}

Decision CompleteResolved(const ResolveRoute& r, const IpAddress& ip) {
  return Direct(Upstream{r.upstream, ip, r.port}, r.service);
}

std::string DescribeDecision(const Decision& d) {
  struct V {
    std::string operator()(const HboneRoute& r) const {
      return fmt::format("hbone next_hop={} authority={} upstream={}{}", r.next_hop.ToString(),
                         r.authority.ToString(), r.upstream ? r.upstream->uid : "?",
                         r.via_waypoint ? " via waypoint" : "");
    }
    std::string operator()(const TcpRoute& r) const {
      return fmt::format("tcp {} upstream={}", r.target.ToString(),
                         r.upstream ? r.upstream->uid : "?");
    }
    std::string operator()(const PassthroughRoute& r) const {
      return "passthrough " + r.target.ToString();
    }
    std::string operator()(const ResolveRoute& r) const {
      return fmt::format("resolve {}:{} upstream={}", r.upstream ? r.upstream->hostname : "?",
                         r.port, r.upstream ? r.upstream->uid : "?");
    }
    std::string operator()(const DecisionError& e) const { return "error: " + e.reason; }
  };
  return std::visit(V{}, d);
}

}  // namespace ambit::mesh
