// Fuzz target: an xDS Address resource (istio.workload.Address) as it
// arrives from istiod, parsed and converted into the agent's domain model.
//
// agent/xds_adapters has not landed yet, so this target maps the proto onto
// the local-config structs with the same checks an adapter must make (IPs
// are 4 or 16 bytes, ports fit 16 bits, enums in range) and runs the
// agent/state converter and snapshot build on the result. Switch to the
// real adapter once it exists.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "agent/state/from_config.h"
#include "common/config/local_config.h"
#include "proto/workload.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace pb = istio::workload;
using namespace ambit;

std::optional<std::string> IpText(const std::string& bytes) {
  char buf[INET6_ADDRSTRLEN];
  if (bytes.size() == 4) return inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  if (bytes.size() == 16) return inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return std::nullopt;
}

std::optional<config::NetworkAddressConfig> Addr(const pb::NetworkAddress& a) {
  auto ip = IpText(a.address());
  if (!ip) return std::nullopt;
  config::NetworkAddressConfig out{a.network(), *ip, std::nullopt};
  if (a.has_length()) {
    if (a.length() > (a.address().size() == 4 ? 32u : 128u)) return std::nullopt;
    out.prefix_len = static_cast<uint8_t>(a.length());
  }
  return out;
}

std::optional<config::GatewayConfig> Gateway(const pb::GatewayAddress& g) {
  config::GatewayConfig out;
  if (g.hbone_mtls_port() > 65535) return std::nullopt;
  if (g.hbone_mtls_port() != 0) out.hbone_mtls_port = static_cast<uint16_t>(g.hbone_mtls_port());
  if (g.has_address()) {
    out.address = Addr(g.address());
    if (!out.address) return std::nullopt;
  } else if (g.has_hostname()) {
    out.hostname_namespace = g.hostname().namespace_();
    out.hostname = g.hostname().hostname();
  } else {
    return std::nullopt;
  }
  return out;
}

bool Ports(const google::protobuf::RepeatedPtrField<pb::Port>& in, config::PortMap* out) {
  for (const auto& p : in) {
    if (p.service_port() > 65535 || p.target_port() > 65535) return false;
    (*out)[static_cast<uint16_t>(p.service_port())] = static_cast<uint16_t>(p.target_port());
  }
  return true;
}

std::optional<config::WorkloadConfig> ToConfig(const pb::Workload& w) {
  config::WorkloadConfig c;
  c.uid = w.uid();
  c.name = w.name();
  c.ns = w.namespace_();
  c.service_account = w.service_account();
  c.trust_domain = w.trust_domain();
  for (const auto& a : w.addresses()) {
    auto ip = IpText(a);
    if (!ip) return std::nullopt;
    c.workload_ips.push_back(*ip);
  }
  c.hostname = w.hostname();
  c.network = w.network();
  c.node = w.node();
  c.cluster_id = w.cluster_id();
  if (w.tunnel_protocol() > pb::HBONE) return std::nullopt;
  c.protocol = w.tunnel_protocol() == pb::HBONE ? config::Protocol::kHbone : config::Protocol::kTcp;
  c.network_mode = w.network_mode() == pb::HOST_NETWORK ? config::NetworkMode::kHostNetwork
                                                        : config::NetworkMode::kStandard;
  c.status = w.status() == pb::UNHEALTHY ? config::HealthStatus::kUnhealthy
                                         : config::HealthStatus::kHealthy;
  c.workload_name = w.workload_name();
  if (w.workload_type() < 0 || w.workload_type() > pb::JOB) return std::nullopt;
  c.workload_type = static_cast<config::WorkloadType>(w.workload_type());
  c.canonical_name = w.canonical_name();
  c.canonical_revision = w.canonical_revision();
  c.native_tunnel = w.native_tunnel();
  if (w.has_application_tunnel()) {
    if (w.application_tunnel().port() > 65535) return std::nullopt;
    c.application_tunnel = config::ApplicationTunnelConfig{
        w.application_tunnel().protocol() == pb::ApplicationTunnel::PROXY
            ? config::AppTunnelProtocol::kProxy
            : config::AppTunnelProtocol::kNone,
        static_cast<uint16_t>(w.application_tunnel().port())};
  }
  c.authorization_policies.assign(w.authorization_policies().begin(),
                                  w.authorization_policies().end());
  c.locality = {w.locality().region(), w.locality().zone(), w.locality().subzone()};
  if (w.has_capacity()) c.capacity = w.capacity().value();
  if (w.has_waypoint()) {
    c.waypoint = Gateway(w.waypoint());
    if (!c.waypoint) return std::nullopt;
  }
  if (w.has_network_gateway()) {
    c.network_gateway = Gateway(w.network_gateway());
    if (!c.network_gateway) return std::nullopt;
  }
  for (const auto& [key, list] : w.services()) {
    if (!Ports(list.ports(), &c.services[key])) return std::nullopt;
  }
  return c;
}

std::optional<config::ServiceConfig> ToConfig(const pb::Service& s) {
  config::ServiceConfig c;
  c.name = s.name();
  c.ns = s.namespace_();
  c.hostname = s.hostname();
  for (const auto& a : s.addresses()) {
    auto addr = Addr(a);
    if (!addr) return std::nullopt;
    (addr->prefix_len ? c.cidr_vips : c.vips).push_back(*addr);
  }
  if (!Ports(s.ports(), &c.ports)) return std::nullopt;
  c.subject_alt_names.assign(s.subject_alt_names().begin(), s.subject_alt_names().end());
  if (s.has_waypoint()) {
    c.waypoint = Gateway(s.waypoint());
    if (!c.waypoint) return std::nullopt;
  }
  for (const auto& ww : s.weighted_waypoints()) {
    auto g = Gateway(ww.destination());
    if (!g) return std::nullopt;
    c.weighted_waypoints.push_back({*g, ww.weight()});
  }
  if (s.has_load_balancing()) {
    config::LoadBalancerConfig lb;
    for (int scope : s.load_balancing().routing_preference()) {
      if (scope < pb::LoadBalancing::REGION || scope > pb::LoadBalancing::NETWORK) {
        return std::nullopt;
      }
      lb.routing_preferences.push_back(static_cast<config::Scope>(scope - 1));
    }
    int mode = s.load_balancing().mode();
    if (mode < 0 || mode > pb::LoadBalancing::PASSTHROUGH) return std::nullopt;
    lb.mode = static_cast<config::LbMode>(mode);
    lb.health_policy = s.load_balancing().health_policy() == pb::LoadBalancing::ALLOW_ALL
                           ? config::HealthPolicy::kAllowAll
                           : config::HealthPolicy::kOnlyHealthy;
    c.load_balancer = lb;
  }
  int families = s.ip_families();
  if (families < 0 || families > pb::DUAL) return std::nullopt;
  c.ip_families = static_cast<config::IpFamilies>(families);
  c.canonical = s.canonical();
  c.visibility = s.visibility() == pb::Service::NAMESPACE ? config::Visibility::kNamespace
                                                          : config::Visibility::kPublic;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is logged otherwise
    return true;
  }();
  (void)quiet;
  pb::Address address;
  if (!address.ParseFromArray(data, static_cast<int>(size))) return 0;

  config::LocalConfig cfg;
  if (address.has_workload()) {
    auto c = ToConfig(address.workload());
    if (!c) return 0;
    auto w = state::ConvertWorkload(*c);
    if (!w.ok()) FUZZ_CHECK(!w.status().message().empty());
    cfg.workloads.push_back(std::move(*c));
  } else if (address.has_service()) {
    auto c = ToConfig(address.service());
    if (!c) return 0;
    auto s = state::ConvertService(*c);
    if (!s.ok()) FUZZ_CHECK(!s.status().message().empty());
    cfg.services.push_back(std::move(*c));
  }
  auto snapshot = state::FromLocalConfig(cfg, "node-a");
  if (!snapshot.ok()) FUZZ_CHECK(!snapshot.status().message().empty());
  return 0;
}
