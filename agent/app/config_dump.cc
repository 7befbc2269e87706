#include "agent/app/config_dump.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace ambit::agent {

namespace {

using json = nlohmann::ordered_json;

std::string Base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Rfc3339(base::WallTime t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

json PortMap(const mesh::PortMap& ports) {
  json j = json::object();
  for (const auto& [sp, tp] : ports) j[std::to_string(sp)] = tp;
  return j;
}

// ztunnel's GatewayAddress: {destination: "ns/hostname" | "network/ip",
// hboneMtlsPort} (an untagged enum of two string forms).
json GatewayJson(const mesh::GatewayAddress& g) {
  std::string dest;
  if (const auto* h = std::get_if<mesh::NamespacedHostname>(&g.destination)) {
    dest = h->Key();
  } else if (const auto* a = std::get_if<mesh::NetworkAddress>(&g.destination)) {
    dest = a->network + "/" + a->ip.ToString();
  }
  return {{"destination", dest}, {"hboneMtlsPort", g.hbone_mtls_port}};
}

// Optional fields are left out when unset, as ztunnel's serde attributes do
// (`skip_serializing_if = "is_default"`).
void PutIf(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}
void PutIf(json& j, const char* key, const std::optional<mesh::GatewayAddress>& g) {
  if (g) j[key] = GatewayJson(*g);
}

std::string_view TypeName(mesh::WorkloadType t) {
  switch (t) {
    case mesh::WorkloadType::kDeployment: return "deployment";
    case mesh::WorkloadType::kCronJob: return "cronjob";
    case mesh::WorkloadType::kPod: return "pod";
    case mesh::WorkloadType::kJob: return "job";
  }
  return "pod";
}

json WorkloadJson(const mesh::Workload& w) {
  json ips = json::array();
  for (const auto& ip : w.addresses) ips.push_back(ip.ToString());
  json out = json::object();
  out["workloadIps"] = ips;
  PutIf(out, "waypoint", w.waypoint);
  PutIf(out, "networkGateway", w.network_gateway);
  out["protocol"] = w.protocol == mesh::TunnelProtocol::kHbone ? "HBONE" : "TCP";
  out["networkMode"] = w.network_mode == mesh::NetworkMode::kHostNetwork ? "HostNetwork" : "Standard";
  PutIf(out, "uid", w.uid);
  out["name"] = w.name;
  out["namespace"] = w.ns;
  PutIf(out, "trustDomain", w.trust_domain);
  PutIf(out, "serviceAccount", w.service_account);
  PutIf(out, "network", w.network);
  PutIf(out, "workloadName", w.workload_name);
  out["workloadType"] = TypeName(w.workload_type);
  PutIf(out, "canonicalName", w.canonical_name);
  PutIf(out, "canonicalRevision", w.canonical_revision);
  PutIf(out, "hostname", w.hostname);
  PutIf(out, "node", w.node);
  if (w.native_tunnel) out["nativeTunnel"] = true;
  if (w.application_tunnel) {  // sandwich target (ISTIO-COMPAT §2.7); port 0 = none
    const auto& t = *w.application_tunnel;
    out["applicationTunnel"] = {
        {"protocol", t.protocol == mesh::AppTunnelProtocol::kProxy ? "PROXY" : "NONE"},
        {"port", t.port == 0 ? json(nullptr) : json(t.port)}};
  }
  if (!w.authorization_policies.empty()) out["authorizationPolicies"] = w.authorization_policies;
  out["status"] = w.status == mesh::WorkloadStatus::kHealthy ? "Healthy" : "Unhealthy";
  out["clusterId"] = w.cluster_id;
  const mesh::Locality& l = w.locality;
  if (!l.region.empty() || !l.zone.empty() || !l.subzone.empty()) {
    out["locality"] = {{"region", l.region}, {"zone", l.zone}, {"subzone", l.subzone}};
  }
  if (!w.services.empty()) {
    json services = json::array();  // "ns/hostname"; ports live on the service
    for (const auto& [key, ports] : w.services) services.push_back(key);
    out["services"] = services;
  }
  out["capacity"] = w.capacity;
  PutIf(out, "netns", w.netns);  // Ambit
  return out;
}

json EndpointJson(const mesh::Endpoint& e) {
  return {{"workloadUid", e.workload_uid},
          {"port", PortMap(e.ports)},
          {"status", e.status == mesh::WorkloadStatus::kHealthy ? "Healthy" : "Unhealthy"}};
}

// Every service port's application protocol (workload.proto enum names).
json AppProtocols(const mesh::Service& s) {
  json j = json::object();
  for (const auto& [sp, tp] : s.ports) {
    j[std::to_string(sp)] = std::string(mesh::AppProtocolName(s.PortProtocol(sp)));
  }
  return j;
}

std::string_view ScopeName(mesh::LbScope s) {
  switch (s) {
    case mesh::LbScope::kRegion: return "Region";
    case mesh::LbScope::kZone: return "Zone";
    case mesh::LbScope::kSubzone: return "Subzone";
    case mesh::LbScope::kNode: return "Node";
    case mesh::LbScope::kCluster: return "Cluster";
    case mesh::LbScope::kNetwork: return "Network";
  }
  return "Network";
}

std::string_view ModeName(mesh::LbMode m) {
  switch (m) {
    case mesh::LbMode::kStandard: return "Standard";
    case mesh::LbMode::kStrict: return "Strict";
    case mesh::LbMode::kFailover: return "Failover";
    case mesh::LbMode::kPassthrough: return "Passthrough";
  }
  return "Standard";
}

json LoadBalancerJson(const mesh::LoadBalancing& lb) {
  json prefs = json::array();
  for (mesh::LbScope s : lb.routing_preference) prefs.push_back(ScopeName(s));
  return {{"routingPreferences", prefs},
          {"mode", ModeName(lb.mode)},
          {"healthPolicy",
           lb.health_policy == mesh::HealthPolicy::kAllowAll ? "AllowAll" : "OnlyHealthy"}};
}

json ServiceJson(const mesh::Service& s) {
  json vips = json::array(), cidr_vips = json::array();
  for (const auto& v : s.vips) {
    if (v.IsCidr()) {
      cidr_vips.push_back({{"network", v.network},
                           {"cidr", v.ip.ToString() + "/" + std::to_string(v.prefix_len)}});
    } else {
      vips.push_back(v.network + "/" + v.ip.ToString());
    }
  }
  json eps = json::object();
  for (const auto& [uid, e] : s.endpoints) eps[uid] = EndpointJson(e);
  json out = {{"name", s.name}, {"namespace", s.ns}, {"hostname", s.hostname}, {"vips", vips}};
  if (!cidr_vips.empty()) out["cidrVips"] = cidr_vips;
  out["ports"] = PortMap(s.ports);
  out["endpoints"] = eps;
  out["subjectAltNames"] = s.subject_alt_names;
  PutIf(out, "waypoint", s.waypoint);
  if (!s.weighted_waypoints.empty()) {
    json ww = json::array();
    for (const auto& w : s.weighted_waypoints) {
      ww.push_back({{"destination", GatewayJson(w.destination)}, {"weight", w.weight}});
    }
    out["weightedWaypoints"] = ww;
  }
  if (s.load_balancing) out["loadBalancer"] = LoadBalancerJson(*s.load_balancing);
  switch (s.ip_families) {  // Automatic = unset: left out
    case mesh::IpFamilies::kAutomatic: break;
    case mesh::IpFamilies::kIpv4Only: out["ipFamilies"] = "IPv4"; break;
    case mesh::IpFamilies::kIpv6Only: out["ipFamilies"] = "IPv6"; break;
    case mesh::IpFamilies::kDual: out["ipFamilies"] = "Dual"; break;
  }
  out["canonical"] = s.canonical;
  out["visibility"] = s.visibility == mesh::Visibility::kNamespace ? "Namespace" : "Public";
  out["appProtocols"] = AppProtocols(s);  // Ambit
  return out;
}

json StringMatchJson(const mesh::StringMatch& m) {
  switch (m.kind) {
    case mesh::StringMatch::Kind::kExact: return {{"Exact", m.value}};
    case mesh::StringMatch::Kind::kPrefix: return {{"Prefix", m.value}};
    case mesh::StringMatch::Kind::kSuffix: return {{"Suffix", m.value}};
    case mesh::StringMatch::Kind::kPresence: return {{"Presence", json::array()}};  // serde: ()
  }
  return nullptr;
}

json MatchJson(const mesh::Match& m) {
  json j = json::object();
  auto strings = [&](const char* key, const std::vector<mesh::StringMatch>& v) {
    if (v.empty()) return;
    json a = json::array();
    for (const auto& x : v) a.push_back(StringMatchJson(x));
    j[key] = a;
  };
  auto cidrs = [&](const char* key, const auto& v) {
    if (v.empty()) return;
    json a = json::array();
    for (const auto& c : v) a.push_back(c.ToString());
    j[key] = a;
  };
  auto sas = [&](const char* key, const std::vector<mesh::ServiceAccountMatch>& v) {
    if (v.empty()) return;
    json a = json::array();
    for (const auto& x : v) a.push_back({{"namespace", x.ns}, {"serviceAccount", x.service_account}});
    j[key] = a;
  };
  strings("namespaces", m.namespaces);
  strings("notNamespaces", m.not_namespaces);
  strings("principals", m.principals);
  strings("notPrincipals", m.not_principals);
  sas("serviceAccounts", m.service_accounts);
  sas("notServiceAccounts", m.not_service_accounts);
  cidrs("sourceIps", m.source_ips);
  cidrs("notSourceIps", m.not_source_ips);
  cidrs("destinationIps", m.destination_ips);
  cidrs("notDestinationIps", m.not_destination_ips);
  if (!m.destination_ports.empty()) j["destinationPorts"] = m.destination_ports;
  if (!m.not_destination_ports.empty()) j["notDestinationPorts"] = m.not_destination_ports;
  return j;
}

json PolicyJson(const mesh::Policy& p) {
  json rules = json::array();
  for (const auto& r : p.rules) {
    json clauses = json::array();
    for (const auto& c : r.clauses) {
      json matches = json::array();
      for (const auto& m : c.matches) matches.push_back(MatchJson(m));
      clauses.push_back(matches);
    }
    rules.push_back(clauses);
  }
  std::string_view scope = p.scope == mesh::PolicyScope::kGlobal      ? "Global"
                           : p.scope == mesh::PolicyScope::kNamespace ? "Namespace"
                                                                       : "WorkloadSelector";
  return {{"name", p.name},
          {"namespace", p.ns},
          {"scope", scope},
          {"action", p.action == mesh::PolicyAction::kAllow ? "Allow" : "Deny"},
          {"rules", rules},
          {"dryRun", p.dry_run}};
}

json CertJson(std::string_view pem, const std::string& serial, base::WallTime from,
              base::WallTime to) {
  return {{"pem", Base64(pem)},
          {"serialNumber", serial},
          {"validFrom", Rfc3339(from)},
          {"expirationTime", Rfc3339(to)}};
}

}  // namespace

std::string BuildConfigDump(const DumpInputs& in) {
  json doc = json::object();
  json workloads = json::array(), services = json::array(), policies = json::array();
  json staged = json::object();
  if (in.snapshot != nullptr) {
    for (const auto& [uid, w] : in.snapshot->workloads()) workloads.push_back(WorkloadJson(w));
    for (const auto& [key, s] : in.snapshot->services()) services.push_back(ServiceJson(s));
    for (const auto& [key, p] : in.snapshot->policies()) policies.push_back(PolicyJson(p));
    for (const auto& [key, eps] : in.snapshot->staged_endpoints()) {
      json list = json::object();
      for (const auto& e : eps) list[e.workload_uid] = EndpointJson(e);
      staged[key] = list;
    }
  }
  json certs = json::array();
  for (const auto& c : in.certificates) {
    json chain = json::array(), roots = json::array();
    if (const identity::CertBundle* b = c.bundle) {
      chain.push_back(CertJson(b->leaf_pem, b->serial_hex, b->not_before, b->not_after));
      for (const auto& inter : b->chain_pems) chain.push_back(CertJson(inter, "", b->not_before, b->not_after));
      roots.push_back(CertJson(b->root_pem, "", b->not_before, b->not_after));
    }
    json cj = {{"identity", c.identity}, {"state", c.state}, {"certChain", chain}, {"rootCerts", roots}};
    if (!c.last_error.empty()) cj["lastError"] = c.last_error;
    certs.push_back(cj);
  }
  json state = json::object();
  for (const auto& p : in.pods) {
    json inbound = json::array(), outbound = json::array();
    for (const auto& c : in.connections) {
      if (c.pod_uid != p.uid) continue;
      json cj = {{"src", c.src},
                 {"originalDst", c.original_dst},
                 {"actualDst", c.actual_dst},
                 {"protocol", c.hbone ? "HBONE" : "TCP"}};
      (c.direction == Direction::kInbound ? inbound : outbound).push_back(cj);
    }
    state[p.uid] = {{"state", p.up ? "Up" : "Pending"},
                    {"info", {{"name", p.name}, {"namespace", p.ns}, {"serviceAccount", p.service_account}}},
                    {"connections", {{"inbound", inbound}, {"outbound", outbound}}}};
  }
  json findings = json::array();
  if (in.findings != nullptr) {
    for (const auto& f : *in.findings) {
      findings.push_back({{"location", f.location}, {"kind", f.kind}, {"resource", f.resource},
                          {"message", f.message}});
    }
  }
  json config = json::object();
  for (const auto& [k, v] : in.config) config[k] = v;
  doc["workloads"] = workloads;
  doc["services"] = services;
  doc["policies"] = policies;
  doc["certificates"] = certs;
  doc["workloadState"] = state;
  doc["stagedServices"] = staged;
  doc["staticConfig"] = json::object();
  doc["version"] = in.version;
  doc["config"] = config;
  json config_findings = json::array();
  if (in.config_findings != nullptr) {
    for (const auto& f : *in.config_findings) config_findings.push_back(f);
  }
  json dns_cache = json::array();
  for (const auto& e : in.on_demand_dns) {
    json row = {{"hostname", e.hostname},
                {"addresses", e.addresses},
                {"expiresInSeconds", e.expires_in_seconds}};
    if (!e.negative.empty()) row["negative"] = e.negative;
    dns_cache.push_back(std::move(row));
  }
  const auto& ds = in.on_demand_dns_stats;
  doc["ambit"] = {{"policyFindings", findings},
                  {"configFindings", config_findings},
                  {"onDemandDns",
                   {{"cache", dns_cache},
                    {"capacity", ds.capacity},
                    {"hits", ds.hits},
                    {"misses", ds.misses},
                    {"queries", ds.queries},
                    {"failures", ds.failures}}}};
  return doc.dump(2);
}

}  // namespace ambit::agent
