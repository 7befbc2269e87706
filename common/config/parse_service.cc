// services[]: ztunnel local-config service entries.
#include <fmt/format.h>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

Status ParseAddresses(const YamlReader& r, const YAML::Node& n, std::string_view path,
                      bool cidr, std::vector<NetworkAddressConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    NetworkAddressConfig a;
    RETURN_IF_ERROR(ParseNetworkAddress(r, n[i], Idx(path, i), cidr, &a));
    out->push_back(std::move(a));
  }
  return absl::OkStatus();
}

Status ParseLoadBalancer(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         LoadBalancerConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(n, path, {"routingPreferences", "mode", "healthPolicy"}));
  if (Has(n, "routingPreferences")) {
    const YAML::Node prefs = n["routingPreferences"];
    std::string ppath = Sub(path, "routingPreferences");
    RETURN_IF_ERROR(r.ExpectSeq(prefs, ppath));
    for (size_t i = 0; i < prefs.size(); ++i) {
      int idx = 0;
      RETURN_IF_ERROR(r.ToEnum(prefs[i], Idx(ppath, i),
                               {"Region", "Zone", "Subzone", "Node", "Cluster", "Network"},
                               &idx));
      out->routing_preferences.push_back(static_cast<Scope>(idx));
    }
  }
  int idx = 0;
  if (Has(n, "mode")) {
    RETURN_IF_ERROR(r.ToEnum(n["mode"], Sub(path, "mode"),
                             {"Standard", "Strict", "Failover", "Passthrough"}, &idx));
    out->mode = static_cast<LbMode>(idx);
  }
  if (Has(n, "healthPolicy")) {
    RETURN_IF_ERROR(r.ToEnum(n["healthPolicy"], Sub(path, "healthPolicy"),
                             {"OnlyHealthy", "AllowAll"}, &idx));
    out->health_policy = static_cast<HealthPolicy>(idx);
  }
  return absl::OkStatus();
}

Status ParseWeighted(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     std::vector<WeightedWaypointConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string ipath = Idx(path, i);
    const YAML::Node e = n[i];
    RETURN_IF_ERROR(r.ExpectMap(e, ipath));
    RETURN_IF_ERROR(r.CheckKeys(e, ipath, {"destination", "hboneMtlsPort", "weight"}));
    WeightedWaypointConfig w;
    // The gateway parser sees destination + hboneMtlsPort; weight is ours.
    YAML::Node gw(YAML::NodeType::Map);
    if (e["destination"].IsDefined()) gw["destination"] = e["destination"];
    if (e["hboneMtlsPort"].IsDefined()) gw["hboneMtlsPort"] = e["hboneMtlsPort"];
    if (!Has(e, "destination")) {
      return r.Error(e, Sub(ipath, "destination"), "required field is missing");
    }
    RETURN_IF_ERROR(ParseGateway(r, gw, ipath, &w.destination));
    if (Has(e, "weight")) {
      uint64_t v = 0;
      RETURN_IF_ERROR(r.ToUint(e["weight"], Sub(ipath, "weight"), UINT32_MAX, &v));
      w.weight = static_cast<uint32_t>(v);
    }
    out->push_back(std::move(w));
  }
  return absl::OkStatus();
}

Status ParseServiceEnums(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         ServiceConfig* out) {
  int idx = 0;
  if (Has(n, "ipFamilies")) {
    RETURN_IF_ERROR(r.ToEnum(n["ipFamilies"], Sub(path, "ipFamilies"),
                             {"Automatic", "IPv4", "IPv6", "Dual"}, &idx));
    out->ip_families = static_cast<IpFamilies>(idx);
  }
  if (Has(n, "visibility")) {
    RETURN_IF_ERROR(r.ToEnum(n["visibility"], Sub(path, "visibility"),
                             {"Public", "Namespace"}, &idx));
    out->visibility = static_cast<Visibility>(idx);
  }
  return r.OptBool(n, path, "canonical", &out->canonical);
}

}  // namespace

Status ParseService(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    ServiceConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(
      n, path,
      {"name", "namespace", "hostname", "vips", "cidrVips", "ports", "subjectAltNames",
       "waypoint", "weightedWaypoints", "loadBalancer", "ipFamilies", "canonical",
       "visibility", "labels"}));
  out->line = YamlReader::Line(n);
  RETURN_IF_ERROR(r.ReqString(n, path, "name", &out->name));
  RETURN_IF_ERROR(r.ReqString(n, path, "namespace", &out->ns));
  RETURN_IF_ERROR(r.ReqString(n, path, "hostname", &out->hostname));
  if (Has(n, "vips")) {
    RETURN_IF_ERROR(ParseAddresses(r, n["vips"], Sub(path, "vips"), false, &out->vips));
  }
  if (Has(n, "cidrVips")) {
    RETURN_IF_ERROR(
        ParseAddresses(r, n["cidrVips"], Sub(path, "cidrVips"), true, &out->cidr_vips));
  }
  if (Has(n, "ports")) {
    RETURN_IF_ERROR(ParseServicePorts(r, n["ports"], Sub(path, "ports"), out));
  }
  if (Has(n, "labels")) {
    RETURN_IF_ERROR(ParseLabels(r, n["labels"], Sub(path, "labels"), &out->labels));
  }
  if (Has(n, "subjectAltNames")) {
    RETURN_IF_ERROR(r.ToStringList(n["subjectAltNames"], Sub(path, "subjectAltNames"),
                                   &out->subject_alt_names));
  }
  if (Has(n, "waypoint")) {
    out->waypoint.emplace();
    RETURN_IF_ERROR(ParseGateway(r, n["waypoint"], Sub(path, "waypoint"), &*out->waypoint));
  }
  if (Has(n, "weightedWaypoints")) {
    RETURN_IF_ERROR(ParseWeighted(r, n["weightedWaypoints"], Sub(path, "weightedWaypoints"),
                                  &out->weighted_waypoints));
  }
  if (Has(n, "loadBalancer")) {
    out->load_balancer.emplace();
    RETURN_IF_ERROR(ParseLoadBalancer(r, n["loadBalancer"], Sub(path, "loadBalancer"),
                                      &*out->load_balancer));
  }
  return ParseServiceEnums(r, n, path, out);
}

}  // namespace ambit::config
