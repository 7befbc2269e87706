// namespaces[] ({name, labels}) and Gateway API Gateways: what the
// standalone waypoint binding needs of them (common/mesh/waypoint_binding.h).
#include <fmt/format.h>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

constexpr std::string_view kGatewayApiGroup = "gateway.networking.k8s.io/";
constexpr const char* kWaypointFor = "istio.io/waypoint-for";

bool IsWaypointClass(std::string_view c) { return c == "istio-waypoint" || c == "ambit-waypoint"; }

// allowedRoutes.namespaces of the listener {protocol: HBONE, port: 15008}
// (istiod's default binding); Same when there is none.
Status ParseMeshListener(const YamlReader& r, const YAML::Node& listeners, std::string_view path,
                         GatewayDeclConfig* out) {
  RETURN_IF_ERROR(r.ExpectSeq(listeners, path));
  for (size_t i = 0; i < listeners.size(); ++i) {
    const YAML::Node l = listeners[i];
    std::string lpath = Idx(path, i);
    RETURN_IF_ERROR(r.ExpectMap(l, lpath));
    std::string protocol;
    RETURN_IF_ERROR(r.OptString(l, lpath, "protocol", &protocol));
    uint16_t port = 0;
    if (Has(l, "port")) RETURN_IF_ERROR(r.ToPort(l["port"], Sub(lpath, "port"), &port));
    if (protocol != "HBONE" || port != 15008) continue;
    // (Type queries on an absent node throw in yaml-cpp: test Has() first.)
    if (!Has(l, "allowedRoutes")) return absl::OkStatus();
    const YAML::Node routes = l["allowedRoutes"];
    RETURN_IF_ERROR(r.ExpectMap(routes, Sub(lpath, "allowedRoutes")));
    if (!Has(routes, "namespaces")) return absl::OkStatus();
    const YAML::Node ns = routes["namespaces"];
    std::string npath = Sub(lpath, "allowedRoutes.namespaces");
    RETURN_IF_ERROR(r.ExpectMap(ns, npath));
    if (Has(ns, "from")) {
      int idx = 0;
      RETURN_IF_ERROR(r.ToEnum(ns["from"], Sub(npath, "from"), {"Same", "All", "Selector"}, &idx));
      out->allowed = static_cast<AllowedNamespaces>(idx);
    }
    if (out->allowed == AllowedNamespaces::kSelector) {
      std::string spath = Sub(npath, "selector");
      if (!Has(ns, "selector") || !ns["selector"].IsMap()) {
        return r.Error(ns, spath, "from: Selector needs selector.matchLabels");
      }
      const YAML::Node sel = ns["selector"];
      RETURN_IF_ERROR(r.CheckKeys(sel, spath, {"matchLabels"}));
      if (!Has(sel, "matchLabels")) {
        return r.Error(sel, Sub(spath, "matchLabels"), "required field is missing");
      }
      RETURN_IF_ERROR(ParseLabels(r, sel["matchLabels"], Sub(spath, "matchLabels"),
                                  &out->allowed_selector));
    }
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

bool IsGatewayApiGateway(std::string_view api_version, std::string_view kind) {
  return kind == "Gateway" && api_version.starts_with(kGatewayApiGroup);
}

Status ParseNamespace(const YamlReader& r, const YAML::Node& n, std::string_view path,
                      NamespaceConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(n, path, {"name", "labels"}));
  out->line = YamlReader::Line(n);
  RETURN_IF_ERROR(r.ReqString(n, path, "name", &out->name));
  if (Has(n, "labels")) {
    RETURN_IF_ERROR(ParseLabels(r, n["labels"], Sub(path, "labels"), &out->labels));
  }
  return absl::OkStatus();
}

Status ParseGatewayDecl(const YamlReader& r, const YAML::Node& n, std::string_view path,
                        bool entry, GatewayDeclConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  out->file = r.file();
  out->line = YamlReader::Line(n);
  if (entry) {
    RETURN_IF_ERROR(r.CheckKeys(n, path, {"apiVersion", "kind", "metadata", "spec"}));
    std::string api = "gateway.networking.k8s.io/v1", kind = "Gateway";
    RETURN_IF_ERROR(r.OptString(n, path, "apiVersion", &api));
    RETURN_IF_ERROR(r.OptString(n, path, "kind", &kind));
    if (!IsGatewayApiGateway(api, kind)) {
      return r.Error(n, path, fmt::format("'{}' {} is not a Gateway API Gateway "
                                          "(gateway.networking.k8s.io/v1 Gateway)",
                                          api, kind));
    }
  }
  const YAML::Node meta = n["metadata"];
  std::string mpath = Sub(path, "metadata");
  if (!meta.IsDefined() || meta.IsNull()) return r.Error(n, mpath, "required field is missing");
  RETURN_IF_ERROR(r.ExpectMap(meta, mpath));
  RETURN_IF_ERROR(r.ReqString(meta, mpath, "name", &out->name));
  out->ns = "default";
  RETURN_IF_ERROR(r.OptString(meta, mpath, "namespace", &out->ns));
  if (Has(meta, "labels")) {
    RETURN_IF_ERROR(ParseLabels(r, meta["labels"], Sub(mpath, "labels"), &out->labels));
  }
  const YAML::Node spec = n["spec"];
  std::string spath = Sub(path, "spec");
  if (!spec.IsDefined() || spec.IsNull()) return r.Error(n, spath, "required field is missing");
  RETURN_IF_ERROR(r.ExpectMap(spec, spath));
  RETURN_IF_ERROR(r.ReqString(spec, spath, "gatewayClassName", &out->class_name));
  if (!IsWaypointClass(out->class_name)) return absl::OkStatus();  // not ours to check
  if (auto it = out->labels.find(kWaypointFor); it != out->labels.end()) {
    const std::string& v = it->second;
    if (v != "service" && v != "workload" && v != "all" && v != "none") {
      return r.Error(meta["labels"], Sub(Sub(mpath, "labels"), kWaypointFor),
                     fmt::format("'{}' is not one of service|workload|all|none", v));
    }
  }
  if (Has(spec, "listeners")) {
    RETURN_IF_ERROR(ParseMeshListener(r, spec["listeners"], Sub(spath, "listeners"), out));
  }
  return absl::OkStatus();
}

}  // namespace ambit::config
