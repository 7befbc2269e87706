#include "common/mesh/from_config.h"

#include <fmt/format.h>

#include <set>

#include "common/mesh/waypoint_binding.h"

namespace ambit::mesh {
namespace {

// Config and state enums list their values in the same order.
template <typename To, typename From>
To Same(From f) {
  return static_cast<To>(static_cast<int>(f));
}

StatusOr<IpAddress> Ip(const std::string& text, std::string_view what) {
  auto ip = IpAddress::Parse(text);
  if (!ip.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: '{}' is not an IP address", what, text));
  }
  return *ip;
}

StatusOr<NetworkAddress> Addr(const config::NetworkAddressConfig& c, std::string_view what) {
  NetworkAddress a;
  a.network = c.network;
  ASSIGN_OR_RETURN(a.ip, Ip(c.ip, what));
  a.prefix_len = c.prefix_len ? *c.prefix_len : (a.ip.is_v4() ? 32 : 128);
  return a;
}

StatusOr<GatewayAddress> Gateway(const config::GatewayConfig& c, std::string_view what) {
  GatewayAddress g;
  g.hbone_mtls_port = c.hbone_mtls_port;
  if (c.address) {
    ASSIGN_OR_RETURN(g.destination, Addr(*c.address, what));
  } else {
    g.destination = NamespacedHostname{c.hostname_namespace, c.hostname};
  }
  return g;
}

StatusOr<std::vector<net::Cidr>> Cidrs(const std::vector<config::CidrConfig>& in,
                                       std::string_view what) {
  std::vector<net::Cidr> out;
  for (const auto& c : in) {
    ASSIGN_OR_RETURN(IpAddress ip, Ip(c.ip, what));
    auto cidr = net::Cidr::Make(ip, c.prefix_len);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}/{} is not a valid CIDR", what, c.ip, c.prefix_len));
    }
    out.push_back(*cidr);
  }
  return out;
}

std::vector<StringMatch> Strings(const std::vector<config::StringMatchConfig>& in) {
  std::vector<StringMatch> out;
  for (const auto& m : in) out.push_back({Same<StringMatch::Kind>(m.kind), m.value});
  return out;
}

std::vector<ServiceAccountMatch> Sas(const std::vector<config::ServiceAccountMatchConfig>& in) {
  std::vector<ServiceAccountMatch> out;
  for (const auto& m : in) out.push_back({m.ns, m.service_account});
  return out;
}

StatusOr<Match> ConvertMatch(const config::MatchConfig& c, std::string_view what) {
  Match m;
  m.namespaces = Strings(c.namespaces);
  m.not_namespaces = Strings(c.not_namespaces);
  m.principals = Strings(c.principals);
  m.not_principals = Strings(c.not_principals);
  ASSIGN_OR_RETURN(m.source_ips, Cidrs(c.source_ips, what));
  ASSIGN_OR_RETURN(m.not_source_ips, Cidrs(c.not_source_ips, what));
  ASSIGN_OR_RETURN(m.destination_ips, Cidrs(c.destination_ips, what));
  ASSIGN_OR_RETURN(m.not_destination_ips, Cidrs(c.not_destination_ips, what));
  m.destination_ports = c.destination_ports;
  m.not_destination_ports = c.not_destination_ports;
  m.service_accounts = Sas(c.service_accounts);
  m.not_service_accounts = Sas(c.not_service_accounts);
  return m;
}

// istiod's choice per Kubernetes Service port (app_protocol.h).
void FillPortProtocols(const config::ServiceConfig& c, Service& s) {
  for (const auto& [port, target] : c.ports) {
    auto d = c.port_details.find(port);
    const config::ServicePortDetail* detail = d == c.port_details.end() ? nullptr : &d->second;
    std::string_view name = detail ? std::string_view(detail->name) : std::string_view();
    const std::string* app = detail && detail->app_protocol ? &*detail->app_protocol : nullptr;
    AppProtocol p = ProtocolFromKubernetes(port, name, app);
    if (p != AppProtocol::kUnknown) s.port_protocols[port] = p;
    if (!name.empty()) s.port_names[port] = std::string(name);
  }
}

// appProtocol values Kubernetes accepts but Istio does not know: sniffed.
void ReportUnknownAppProtocols(const config::ServiceConfig& c, std::vector<std::string>* out) {
  for (const auto& [port, d] : c.port_details) {
    if (d.app_protocol && !IsKnownIstioProtocol(*d.app_protocol)) {
      out->push_back(fmt::format("service {}/{} (line {}): port {}: appProtocol '{}' is not a "
                                 "protocol Istio knows; the port's protocol is UNKNOWN (sniffed)",
                                 c.ns, c.name, c.line, port, *d.app_protocol));
    }
  }
}

}  // namespace

StatusOr<Workload> ConvertWorkload(const config::WorkloadConfig& c) {
  std::string what = fmt::format("workload {}/{} (line {})", c.ns, c.name, c.line);
  Workload w;
  w.uid = c.uid.empty() ? fmt::format("{}//Pod/{}/{}", c.cluster_id, c.ns, c.name) : c.uid;
  w.name = c.name;
  w.ns = c.ns;
  for (const std::string& ip : c.workload_ips) {
    ASSIGN_OR_RETURN(IpAddress a, Ip(ip, what));
    w.addresses.push_back(a);
  }
  w.hostname = c.hostname;
  w.network = c.network;
  w.protocol = Same<TunnelProtocol>(c.protocol);
  w.trust_domain = c.trust_domain;
  w.service_account = c.service_account;
  if (c.waypoint) {
    ASSIGN_OR_RETURN(w.waypoint, Gateway(*c.waypoint, what));
  }
  if (c.network_gateway) {
    ASSIGN_OR_RETURN(w.network_gateway, Gateway(*c.network_gateway, what));
  }
  w.node = c.node;
  w.canonical_name = c.canonical_name;
  w.canonical_revision = c.canonical_revision;
  w.workload_type = Same<WorkloadType>(c.workload_type);
  w.workload_name = c.workload_name;
  w.native_tunnel = c.native_tunnel;
  if (c.application_tunnel) {
    w.application_tunnel = ApplicationTunnel{
        Same<AppTunnelProtocol>(c.application_tunnel->protocol), c.application_tunnel->port};
  }
  w.services = c.services;
  w.authorization_policies = c.authorization_policies;
  w.status = Same<WorkloadStatus>(c.status);
  w.cluster_id = c.cluster_id;
  w.locality = {c.locality.region, c.locality.zone, c.locality.subzone};
  w.network_mode = Same<NetworkMode>(c.network_mode);
  w.capacity = c.capacity;
  w.netns = c.netns;
  w.labels = c.labels;
  return w;
}

StatusOr<Service> ConvertService(const config::ServiceConfig& c) {
  std::string what = fmt::format("service {}/{} (line {})", c.ns, c.hostname, c.line);
  Service s;
  s.name = c.name;
  s.ns = c.ns;
  s.hostname = c.hostname;
  for (const auto& v : c.vips) {
    ASSIGN_OR_RETURN(NetworkAddress a, Addr(v, what));
    s.vips.push_back(a);
  }
  for (const auto& v : c.cidr_vips) {
    ASSIGN_OR_RETURN(NetworkAddress a, Addr(v, what));
    s.vips.push_back(a);
  }
  s.ports = c.ports;
  FillPortProtocols(c, s);
  s.subject_alt_names = c.subject_alt_names;
  if (c.waypoint) {
    ASSIGN_OR_RETURN(s.waypoint, Gateway(*c.waypoint, what));
  }
  for (const auto& ww : c.weighted_waypoints) {
    ASSIGN_OR_RETURN(GatewayAddress g, Gateway(ww.destination, what));
    s.weighted_waypoints.push_back({std::move(g), ww.weight});
  }
  if (c.load_balancer) {
    LoadBalancing lb;
    for (auto scope : c.load_balancer->routing_preferences) {
      lb.routing_preference.push_back(Same<LbScope>(scope));
    }
    lb.mode = Same<LbMode>(c.load_balancer->mode);
    lb.health_policy = Same<HealthPolicy>(c.load_balancer->health_policy);
    s.load_balancing = std::move(lb);
  }
  s.ip_families = Same<IpFamilies>(c.ip_families);
  s.canonical = c.canonical;
  s.visibility = Same<Visibility>(c.visibility);
  return s;
}

StatusOr<Policy> ConvertPolicy(const config::PolicyConfig& c) {
  std::string what = fmt::format("policy {}/{} (line {})", c.ns, c.name, c.line);
  Policy p;
  p.name = c.name;
  p.ns = c.ns;
  p.scope = Same<PolicyScope>(c.scope);
  p.action = Same<PolicyAction>(c.action);
  p.dry_run = c.dry_run;
  for (const auto& rule_cfg : c.rules) {
    Rule rule;
    for (const auto& clause_cfg : rule_cfg) {
      Clause clause;
      for (const auto& m : clause_cfg) {
        ASSIGN_OR_RETURN(Match match, ConvertMatch(m, what));
        clause.matches.push_back(std::move(match));
      }
      rule.clauses.push_back(std::move(clause));
    }
    p.rules.push_back(std::move(rule));
  }
  return p;
}

Status ApplyLocalConfig(const config::LocalConfig& cfg, WorkloadStore* store,
                        std::vector<std::string>* findings) {
  store->Clear();
  ASSIGN_OR_RETURN(WaypointBindings bindings, BindWaypoints(cfg));
  std::set<std::string> seen;
  for (size_t i = 0; i < cfg.workloads.size(); ++i) {
    const config::WorkloadConfig& wc = cfg.workloads[i];
    ASSIGN_OR_RETURN(Workload w, ConvertWorkload(wc));
    if (auto b = bindings.workloads.find(i); b != bindings.workloads.end()) w.waypoint = b->second;
    if (!seen.insert(w.uid).second) {
      return absl::InvalidArgumentError(
          fmt::format("workload {}/{} (line {}): duplicate uid {}", wc.ns, wc.name, wc.line,
                      w.uid));
    }
    RETURN_IF_ERROR(store->UpsertWorkload(std::move(w)));
  }
  for (size_t i = 0; i < cfg.services.size(); ++i) {
    const config::ServiceConfig& sc = cfg.services[i];
    ASSIGN_OR_RETURN(Service s, ConvertService(sc));
    if (auto b = bindings.services.find(i); b != bindings.services.end()) s.waypoint = b->second;
    if (findings != nullptr) ReportUnknownAppProtocols(sc, findings);
    RETURN_IF_ERROR(store->UpsertService(std::move(s)));
  }
  for (const auto& pc : cfg.policies) {
    ASSIGN_OR_RETURN(Policy p, ConvertPolicy(pc));
    RETURN_IF_ERROR(store->UpsertPolicy(std::move(p)));
  }
  if (findings != nullptr) {
    findings->insert(findings->end(), bindings.findings.begin(), bindings.findings.end());
  }
  return absl::OkStatus();
}

StatusOr<std::shared_ptr<const Snapshot>> FromLocalConfig(const config::LocalConfig& cfg,
                                                          const std::string& node_name) {
  WorkloadStore store(node_name);
  RETURN_IF_ERROR(ApplyLocalConfig(cfg, &store));
  return store.Build();
}

}  // namespace ambit::mesh
