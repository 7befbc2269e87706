#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "common/mesh/xds_adapters/convert.h"
#include "common/mesh/xds_adapters/convert_util.h"

namespace ambit::xds_adapters {
namespace {

namespace pb = ::istio::workload;
using internal::ConvertGateway;
using internal::ConvertPorts;
using internal::Invalid;
using internal::Port;

StatusOr<mesh::TunnelProtocol> ConvertTunnel(int value) {
  switch (value) {
    case pb::NONE:
      return mesh::TunnelProtocol::kNone;
    case pb::HBONE:
      return mesh::TunnelProtocol::kHbone;
    case pb::LEGACY_ISTIO_MTLS:
      return Invalid("tunnel_protocol", "LEGACY_ISTIO_MTLS is not supported (use HBONE or NONE)");
    default:
      return Invalid("tunnel_protocol", "unknown value " + std::to_string(value));
  }
}

StatusOr<mesh::WorkloadStatus> ConvertStatus(int value) {
  if (value == pb::HEALTHY) return mesh::WorkloadStatus::kHealthy;
  if (value == pb::UNHEALTHY) return mesh::WorkloadStatus::kUnhealthy;
  return Invalid("status", "unknown value " + std::to_string(value));
}

StatusOr<mesh::NetworkMode> ConvertNetworkMode(int value) {
  if (value == pb::STANDARD) return mesh::NetworkMode::kStandard;
  if (value == pb::HOST_NETWORK) return mesh::NetworkMode::kHostNetwork;
  return Invalid("network_mode", "unknown value " + std::to_string(value));
}

// Telemetry only: an unknown value from a newer control plane is not fatal.
mesh::WorkloadType ConvertWorkloadType(int value) {
  switch (value) {
    case pb::CRONJOB:
      return mesh::WorkloadType::kCronJob;
    case pb::POD:
      return mesh::WorkloadType::kPod;
    case pb::JOB:
      return mesh::WorkloadType::kJob;
    default:
      return mesh::WorkloadType::kDeployment;
  }
}

StatusOr<mesh::ApplicationTunnel> ConvertAppTunnel(const pb::ApplicationTunnel& t) {
  mesh::ApplicationTunnel out;
  if (t.protocol() == pb::ApplicationTunnel::PROXY) {
    out.protocol = mesh::AppTunnelProtocol::kProxy;
  } else if (t.protocol() != pb::ApplicationTunnel::NONE) {
    return Invalid("application_tunnel.protocol", "unknown value " + std::to_string(t.protocol()));
  }
  ASSIGN_OR_RETURN(out.port, Port(t.port(), "application_tunnel.port"));
  return out;
}

std::string OrDefault(const std::string& v, std::string_view def) {
  return v.empty() ? std::string(def) : v;
}

// Identity, addressing and tunnel fields.
Status FillWorkloadCore(const pb::Workload& w, mesh::Workload& out) {
  out.uid = w.uid();
  out.name = w.name();
  out.ns = w.namespace_();
  for (int i = 0; i < w.addresses_size(); ++i) {
    ASSIGN_OR_RETURN(net::IpAddress ip,
                     IpFromBytes(w.addresses(i), "addresses[" + std::to_string(i) + "]"));
    out.addresses.push_back(ip);
  }
  out.hostname = w.hostname();
  out.network = w.network();
  ASSIGN_OR_RETURN(out.protocol, ConvertTunnel(w.tunnel_protocol()));
  out.trust_domain = OrDefault(w.trust_domain(), kDefaultTrustDomain);
  out.service_account = OrDefault(w.service_account(), kDefaultServiceAccount);
  if (w.has_waypoint()) {
    ASSIGN_OR_RETURN(out.waypoint, ConvertGateway(w.waypoint(), "waypoint"));
  }
  if (w.has_network_gateway()) {
    ASSIGN_OR_RETURN(out.network_gateway, ConvertGateway(w.network_gateway(), "network_gateway"));
  }
  out.native_tunnel = w.native_tunnel();
  if (w.has_application_tunnel()) {
    ASSIGN_OR_RETURN(out.application_tunnel, ConvertAppTunnel(w.application_tunnel()));
  }
  ASSIGN_OR_RETURN(out.network_mode, ConvertNetworkMode(w.network_mode()));
  return absl::OkStatus();
}

}  // namespace

StatusOr<mesh::Workload> ConvertWorkload(const pb::Workload& w) {
  if (w.uid().empty()) return Invalid("workload", "uid is empty");
  mesh::Workload out;
  RETURN_IF_ERROR(FillWorkloadCore(w, out));
  out.node = w.node();
  out.canonical_name = w.canonical_name();
  out.canonical_revision = w.canonical_revision();
  out.workload_type = ConvertWorkloadType(w.workload_type());
  out.workload_name = w.workload_name();
  for (const auto& [key, list] : w.services()) {
    ASSIGN_OR_RETURN(out.services[key], ConvertPorts(list.ports(), "services[" + key + "]"));
  }
  out.authorization_policies.assign(w.authorization_policies().begin(),
                                    w.authorization_policies().end());
  ASSIGN_OR_RETURN(out.status, ConvertStatus(w.status()));
  out.cluster_id = OrDefault(w.cluster_id(), kDefaultClusterId);
  out.locality = {w.locality().region(), w.locality().zone(), w.locality().subzone()};
  out.capacity = w.has_capacity() ? w.capacity().value() : 1;
  return out;
}

StatusOr<std::variant<mesh::Workload, mesh::Service>> ConvertAddress(const pb::Address& a) {
  switch (a.type_case()) {
    case pb::Address::kWorkload: {
      ASSIGN_OR_RETURN(mesh::Workload w, ConvertWorkload(a.workload()));
      return std::variant<mesh::Workload, mesh::Service>(std::move(w));
    }
    case pb::Address::kService: {
      ASSIGN_OR_RETURN(mesh::Service s, ConvertService(a.service()));
      return std::variant<mesh::Workload, mesh::Service>(std::move(s));
    }
    default:
      return Invalid("Address", "has neither workload nor service");
  }
}

}  // namespace ambit::xds_adapters
