// workloads[]: ztunnel local-config workload entries + Ambit netns/labels.
#include <fmt/format.h>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

template <typename E>
Status OptEnum(const YamlReader& r, const YAML::Node& map, std::string_view path,
               const char* key, std::initializer_list<std::string_view> names, E* out) {
  if (!Has(map, key)) return absl::OkStatus();
  int idx = 0;
  RETURN_IF_ERROR(r.ToEnum(map[key], Sub(path, key), names, &idx));
  *out = static_cast<E>(idx);
  return absl::OkStatus();
}

Status ParseLocality(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     LocalityConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(n, path, {"region", "zone", "subzone"}));
  RETURN_IF_ERROR(r.OptString(n, path, "region", &out->region));
  RETURN_IF_ERROR(r.OptString(n, path, "zone", &out->zone));
  return r.OptString(n, path, "subzone", &out->subzone);
}

Status ParseAppTunnel(const YamlReader& r, const YAML::Node& n, std::string_view path,
                      ApplicationTunnelConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(n, path, {"protocol", "port"}));
  RETURN_IF_ERROR(OptEnum(r, n, path, "protocol", {"NONE", "PROXY"}, &out->protocol));
  if (Has(n, "port")) RETURN_IF_ERROR(r.ToPort(n["port"], Sub(path, "port"), &out->port));
  return absl::OkStatus();
}

Status ParseIps(const YamlReader& r, const YAML::Node& n, std::string_view path,
                std::vector<std::string>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string ip;
    RETURN_IF_ERROR(r.ToIp(n[i], Idx(path, i), &ip));
    out->push_back(std::move(ip));
  }
  return absl::OkStatus();
}

Status ParseServices(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     std::map<std::string, PortMap>* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  for (const auto& kv : n) {
    std::string key;
    RETURN_IF_ERROR(r.ToString(kv.first, path, &key));
    std::string kpath = fmt::format("{}[\"{}\"]", path, key);
    size_t slash = key.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == key.size()) {
      return r.Error(kv.first, kpath, "key must be \"<namespace>/<hostname>\"");
    }
    PortMap ports;
    RETURN_IF_ERROR(ParsePortMap(r, kv.second, kpath, false, &ports));
    (*out)[key] = std::move(ports);
  }
  return absl::OkStatus();
}

Status ParseWorkloadEnums(const YamlReader& r, const YAML::Node& n, std::string_view path,
                          WorkloadConfig* out) {
  RETURN_IF_ERROR(OptEnum(r, n, path, "protocol", {"TCP", "HBONE"}, &out->protocol));
  RETURN_IF_ERROR(OptEnum(r, n, path, "networkMode", {"Standard", "HostNetwork"},
                          &out->network_mode));
  RETURN_IF_ERROR(OptEnum(r, n, path, "status", {"Healthy", "Unhealthy"}, &out->status));
  return OptEnum(r, n, path, "workloadType", {"Deployment", "CronJob", "Pod", "Job"},
                 &out->workload_type);
}

Status ParseWorkloadStrings(const YamlReader& r, const YAML::Node& n, std::string_view path,
                            WorkloadConfig* out) {
  RETURN_IF_ERROR(r.OptString(n, path, "uid", &out->uid));
  RETURN_IF_ERROR(r.ReqString(n, path, "name", &out->name));
  RETURN_IF_ERROR(r.ReqString(n, path, "namespace", &out->ns));
  RETURN_IF_ERROR(r.OptString(n, path, "serviceAccount", &out->service_account));
  RETURN_IF_ERROR(r.OptString(n, path, "trustDomain", &out->trust_domain));
  RETURN_IF_ERROR(r.OptString(n, path, "hostname", &out->hostname));
  RETURN_IF_ERROR(r.OptString(n, path, "network", &out->network));
  RETURN_IF_ERROR(r.OptString(n, path, "node", &out->node));
  RETURN_IF_ERROR(r.OptString(n, path, "clusterId", &out->cluster_id));
  RETURN_IF_ERROR(r.OptString(n, path, "workloadName", &out->workload_name));
  RETURN_IF_ERROR(r.OptString(n, path, "canonicalName", &out->canonical_name));
  RETURN_IF_ERROR(r.OptString(n, path, "canonicalRevision", &out->canonical_revision));
  return r.OptString(n, path, "netns", &out->netns);
}

Status ParseWorkloadNested(const YamlReader& r, const YAML::Node& n, std::string_view path,
                           WorkloadConfig* out) {
  if (Has(n, "applicationTunnel")) {
    out->application_tunnel.emplace();
    RETURN_IF_ERROR(ParseAppTunnel(r, n["applicationTunnel"], Sub(path, "applicationTunnel"),
                                   &*out->application_tunnel));
  }
  if (Has(n, "authorizationPolicies")) {
    RETURN_IF_ERROR(r.ToStringList(n["authorizationPolicies"],
                                   Sub(path, "authorizationPolicies"),
                                   &out->authorization_policies));
  }
  if (Has(n, "locality")) {
    RETURN_IF_ERROR(ParseLocality(r, n["locality"], Sub(path, "locality"), &out->locality));
  }
  if (Has(n, "capacity")) {
    uint64_t c = 0;
    RETURN_IF_ERROR(r.ToUint(n["capacity"], Sub(path, "capacity"), UINT32_MAX, &c));
    out->capacity = static_cast<uint32_t>(c);
  }
  if (Has(n, "waypoint")) {
    out->waypoint.emplace();
    RETURN_IF_ERROR(ParseGateway(r, n["waypoint"], Sub(path, "waypoint"), &*out->waypoint));
  }
  if (Has(n, "networkGateway")) {
    out->network_gateway.emplace();
    RETURN_IF_ERROR(ParseGateway(r, n["networkGateway"], Sub(path, "networkGateway"),
                                 &*out->network_gateway));
  }
  if (Has(n, "services")) {
    RETURN_IF_ERROR(ParseServices(r, n["services"], Sub(path, "services"), &out->services));
  }
  if (Has(n, "labels")) {
    RETURN_IF_ERROR(ParseLabels(r, n["labels"], Sub(path, "labels"), &out->labels));
  }
  return r.OptBool(n, path, "nativeTunnel", &out->native_tunnel);
}

}  // namespace

Status ParseWorkload(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     WorkloadConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(
      n, path,
      {"uid", "name", "namespace", "serviceAccount", "trustDomain", "workloadIps", "hostname",
       "network", "protocol", "networkMode", "node", "clusterId", "status", "workloadName",
       "workloadType", "canonicalName", "canonicalRevision", "nativeTunnel",
       "applicationTunnel", "authorizationPolicies", "locality", "capacity", "waypoint",
       "networkGateway", "services", "netns", "labels"}));
  out->line = YamlReader::Line(n);
  RETURN_IF_ERROR(ParseWorkloadStrings(r, n, path, out));
  if (!n["workloadIps"].IsDefined()) {
    return r.Error(n, Sub(path, "workloadIps"), "required field is missing");
  }
  if (!n["workloadIps"].IsNull()) {
    RETURN_IF_ERROR(ParseIps(r, n["workloadIps"], Sub(path, "workloadIps"),
                             &out->workload_ips));
  }
  RETURN_IF_ERROR(ParseWorkloadEnums(r, n, path, out));
  return ParseWorkloadNested(r, n, path, out);
}

}  // namespace ambit::config
