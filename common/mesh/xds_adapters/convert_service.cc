#include <string>
#include <utility>

#include "common/mesh/xds_adapters/convert.h"
#include "common/mesh/xds_adapters/convert_util.h"

namespace ambit::xds_adapters {
namespace {

namespace pb = ::istio::workload;
using internal::ConvertGateway;
using internal::ConvertNetworkAddress;
using internal::ConvertPorts;
using internal::Invalid;

StatusOr<mesh::LbScope> ConvertScope(int value) {
  switch (value) {
    case pb::LoadBalancing::REGION:
      return mesh::LbScope::kRegion;
    case pb::LoadBalancing::ZONE:
      return mesh::LbScope::kZone;
    case pb::LoadBalancing::SUBZONE:
      return mesh::LbScope::kSubzone;
    case pb::LoadBalancing::NODE:
      return mesh::LbScope::kNode;
    case pb::LoadBalancing::CLUSTER:
      return mesh::LbScope::kCluster;
    case pb::LoadBalancing::NETWORK:
      return mesh::LbScope::kNetwork;
    default:
      return Invalid("load_balancing.routing_preference",
                     "unsupported scope " + std::to_string(value));
  }
}

StatusOr<mesh::LoadBalancing> ConvertLoadBalancing(const pb::LoadBalancing& lb) {
  mesh::LoadBalancing out;
  for (int scope : lb.routing_preference()) {
    ASSIGN_OR_RETURN(mesh::LbScope s, ConvertScope(scope));
    out.routing_preference.push_back(s);
  }
  switch (lb.mode()) {
    case pb::LoadBalancing::UNSPECIFIED_MODE:
      out.mode = mesh::LbMode::kStandard;
      break;
    case pb::LoadBalancing::STRICT:
      out.mode = mesh::LbMode::kStrict;
      break;
    case pb::LoadBalancing::FAILOVER:
      out.mode = mesh::LbMode::kFailover;
      break;
    case pb::LoadBalancing::PASSTHROUGH:
      out.mode = mesh::LbMode::kPassthrough;
      break;
    default:
      return Invalid("load_balancing.mode", "unknown value " + std::to_string(lb.mode()));
  }
  switch (lb.health_policy()) {
    case pb::LoadBalancing::ONLY_HEALTHY:
      out.health_policy = mesh::HealthPolicy::kOnlyHealthy;
      break;
    case pb::LoadBalancing::ALLOW_ALL:
      out.health_policy = mesh::HealthPolicy::kAllowAll;
      break;
    default:
      return Invalid("load_balancing.health_policy",
                     "unknown value " + std::to_string(lb.health_policy()));
  }
  return out;
}

StatusOr<mesh::IpFamilies> ConvertIpFamilies(int value) {
  switch (value) {
    case pb::AUTOMATIC:
      return mesh::IpFamilies::kAutomatic;
    case pb::IPV4_ONLY:
      return mesh::IpFamilies::kIpv4Only;
    case pb::IPV6_ONLY:
      return mesh::IpFamilies::kIpv6Only;
    case pb::DUAL:
      return mesh::IpFamilies::kDual;
    default:
      return Invalid("ip_families", "unknown value " + std::to_string(value));
  }
}

StatusOr<mesh::Visibility> ConvertVisibility(int value) {
  if (value == pb::Service::PUBLIC) return mesh::Visibility::kPublic;
  if (value == pb::Service::NAMESPACE) return mesh::Visibility::kNamespace;
  return Invalid("visibility", "unknown value " + std::to_string(value));
}

// Port.app_protocol; a value this build does not know is UNKNOWN, not a
// reason to reject the service (it only informs L7 handling).
mesh::AppProtocol ConvertAppProtocol(int value) {
  switch (value) {
    case pb::HTTP11: return mesh::AppProtocol::kHttp11;
    case pb::HTTP2: return mesh::AppProtocol::kHttp2;
    case pb::GRPC: return mesh::AppProtocol::kGrpc;
    case pb::TCP: return mesh::AppProtocol::kTcp;
    case pb::TLS: return mesh::AppProtocol::kTls;
    default: return mesh::AppProtocol::kUnknown;
  }
}

void FillPortProtocols(const pb::Service& s, mesh::Service& out) {
  for (const pb::Port& p : s.ports()) {
    mesh::AppProtocol proto = ConvertAppProtocol(p.app_protocol());
    // Ports were range-checked by ConvertPorts.
    if (proto != mesh::AppProtocol::kUnknown) {
      out.port_protocols[static_cast<uint16_t>(p.service_port())] = proto;
    }
  }
}

Status FillWaypoints(const pb::Service& s, mesh::Service& out) {
  if (s.has_waypoint()) {
    ASSIGN_OR_RETURN(out.waypoint, ConvertGateway(s.waypoint(), "waypoint"));
  }
  for (int i = 0; i < s.weighted_waypoints_size(); ++i) {
    const pb::WeightedWaypoint& ww = s.weighted_waypoints(i);
    const std::string what = "weighted_waypoints[" + std::to_string(i) + "]";
    if (!ww.has_destination()) return Invalid(what, "has no destination");
    mesh::WeightedWaypoint out_ww;
    ASSIGN_OR_RETURN(out_ww.destination, ConvertGateway(ww.destination(), what));
    out_ww.weight = ww.weight();
    out.weighted_waypoints.push_back(std::move(out_ww));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<mesh::Service> ConvertService(const pb::Service& s) {
  if (s.hostname().empty()) return Invalid("service " + s.name(), "hostname is empty");
  if (s.namespace_().empty()) return Invalid("service " + s.hostname(), "namespace is empty");
  mesh::Service out;
  out.name = s.name();
  out.ns = s.namespace_();
  out.hostname = s.hostname();
  for (int i = 0; i < s.addresses_size(); ++i) {
    ASSIGN_OR_RETURN(mesh::NetworkAddress vip,
                     ConvertNetworkAddress(s.addresses(i), "addresses[" + std::to_string(i) + "]"));
    out.vips.push_back(std::move(vip));
  }
  ASSIGN_OR_RETURN(out.ports, ConvertPorts(s.ports(), "ports"));
  FillPortProtocols(s, out);
  out.subject_alt_names.assign(s.subject_alt_names().begin(), s.subject_alt_names().end());
  RETURN_IF_ERROR(FillWaypoints(s, out));
  if (s.has_load_balancing()) {
    ASSIGN_OR_RETURN(out.load_balancing, ConvertLoadBalancing(s.load_balancing()));
  }
  ASSIGN_OR_RETURN(out.ip_families, ConvertIpFamilies(s.ip_families()));
  out.canonical = s.canonical();
  ASSIGN_OR_RETURN(out.visibility, ConvertVisibility(s.visibility()));
  return out;
}

}  // namespace ambit::xds_adapters
