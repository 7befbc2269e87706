// Gateway API backends: backendRefs / mirror backendRef → clusters, the
// ReferenceGrants that allow cross-namespace ones, and the header modifier
// filter body shared by rules and backends.
// Facts: gateway-api apis/v1/shared_types.go (BackendRef: weight default 1,
// 0..1,000,000), httproute_types.go (HTTPBackendRef: invalid when the kind is
// unknown, the object missing or the reference not granted → 500;
// HTTPHeaderFilter: one action per header name), referencegrant_types.go.
#include <fmt/format.h>

#include <set>

#include "common/base/ascii.h"
#include "waypoint/route/compile_gateway.h"

namespace ambit::waypoint::route::internal {

const mesh::Service* FindService(const mesh::Snapshot& snap, std::string_view ns,
                                 std::string_view name) {
  for (const auto& [key, svc] : snap.services()) {
    if (svc.ns == ns && svc.name == name) return &svc;
  }
  return nullptr;
}

namespace {

bool IsCoreGroup(std::string_view g) { return g.empty() || g == "core"; }

}  // namespace

void ReferenceGrants::Add(const Doc& doc, Sink& sink) {
  ReportUnknownKeys(doc, doc.spec, "spec", {"from", "to"}, sink);
  Grant g;
  g.ns = doc.ns;
  const std::string_view what = "grant not applied";
  for (std::string_view list : {"from", "to"}) {
    const YAML::Node n = Child(doc.spec, list);
    const std::string field = Field("spec", list);
    if (!Present(n) || !n.IsSequence() || n.size() == 0) {
      sink.Add(doc, Present(n) ? n : doc.spec,
               fmt::format("{}: a non-empty list is required; grant not applied", field));
      return;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node e = n[i];
      const std::string f = Field(field, i);
      const bool from = list == "from";
      if (from) {
        ReportUnknownKeys(doc, e, f, {"group", "kind", "namespace"}, sink);
      } else {
        ReportUnknownKeys(doc, e, f, {"group", "kind", "name"}, sink);
      }
      // group "" (core) is written explicitly, so only its presence is required.
      if (!Present(Child(e, "group")) || !Child(e, "group").IsScalar()) {
        sink.Add(doc, e, fmt::format("{}.group: required; {}", f, what));
        return;
      }
      const std::string group = Child(e, "group").Scalar();
      const auto kind = Required(doc, e, "kind", f, sink, what);
      if (!kind) return;
      if (from) {
        const auto ns = Required(doc, e, "namespace", f, sink, what);
        if (!ns) return;
        g.from.push_back(From{group, *kind, *ns});
      } else {
        const auto name = OptScalar(doc, Child(e, "name"), Field(f, "name"), "", sink);
        if (!name) return;
        g.to.push_back(To{group, *kind, *name});
      }
    }
  }
  grants_.push_back(std::move(g));
}

bool ReferenceGrants::AllowsService(std::string_view from_kind, std::string_view from_ns,
                                    std::string_view to_ns, std::string_view name) const {
  for (const Grant& g : grants_) {
    if (g.ns != to_ns) continue;
    bool from_ok = false, to_ok = false;
    for (const From& f : g.from) {
      from_ok = from_ok || (f.group == kGatewayGroup && f.kind == from_kind && f.ns == from_ns);
    }
    for (const To& t : g.to) {
      to_ok = to_ok || (IsCoreGroup(t.group) && t.kind == "Service" &&
                        (t.name.empty() || t.name == name));
    }
    if (from_ok && to_ok) return true;
  }
  return false;
}

ResolvedBackend ResolveBackendRef(const Doc& doc, const YAML::Node& ref, std::string_view field,
                                  std::string_view consequence, GatewayContext& ctx) {
  Sink& sink = ctx.sink;
  ResolvedBackend r;
  r.unresolved = true;
  if (!ref.IsMap()) {
    sink.Add(doc, ref, fmt::format("{}: expected a map; {}", field, consequence));
    return r;
  }
  const auto group = OptScalar(doc, Child(ref, "group"), Field(field, "group"), "", sink);
  const auto kind = OptScalar(doc, Child(ref, "kind"), Field(field, "kind"), "Service", sink);
  const auto name = Required(doc, ref, "name", field, sink, consequence);
  const auto ns = OptScalar(doc, Child(ref, "namespace"), Field(field, "namespace"), doc.ns, sink);
  if (!group || !kind || !name || !ns) return r;
  r.cluster.service = fmt::format("{}/{}", *ns, *name);
  if (!IsCoreGroup(*group) || *kind != "Service") {
    sink.Add(doc, ref,
             fmt::format("{}: backend kind '{}/{}' is not supported (only Service); {}", field,
                         *group, *kind, consequence));
    return r;
  }
  if (!Present(Child(ref, "port"))) {
    sink.Add(doc, ref,
             fmt::format("{}.port: required for a Service backend; {}", field, consequence));
    return r;
  }
  const auto port =
      Number(doc, Child(ref, "port"), Field(field, "port"), 1, 65535, consequence, sink);
  if (!port) return r;
  r.cluster.port = static_cast<uint16_t>(*port);
  // The grant is checked first: without one the other namespace is not ours to probe.
  if (*ns != doc.ns && !ctx.grants.AllowsService(doc.kind, doc.ns, *ns, *name)) {
    sink.Add(doc, ref,
             fmt::format("{}: Service {}/{} is in another namespace and no ReferenceGrant in "
                         "'{}' allows {} from '{}'; {}",
                         field, *ns, *name, *ns, doc.kind, doc.ns, consequence));
    return r;
  }
  const mesh::Service* svc = FindService(ctx.snap, *ns, *name);
  if (svc == nullptr) {
    sink.Add(doc, ref, fmt::format("{}: Service {}/{} not found; {}", field, *ns, *name, consequence));
    return r;
  }
  if (!svc->ports.contains(r.cluster.port)) {
    sink.Add(doc, Child(ref, "port"),
             fmt::format("{}.port: {} is not a port of Service {}/{}; {}", field, *port, *ns,
                         *name, consequence));
    return r;
  }
  r.cluster = AddCluster(ctx.out, *svc, r.cluster.port, "", {}, "");
  r.unresolved = false;
  return r;
}

bool CompileHeaderModifier(const Doc& doc, const YAML::Node& n, std::string_view field,
                           HeaderOps* ops, Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"set", "add", "remove"}, sink);
  std::set<std::string> names;  // one action per header name (HTTPHeaderFilter)
  auto once = [&](const YAML::Node& at, const std::string& f, const std::string& name) {
    if (names.insert(name).second) return true;
    sink.Add(doc, at,
             fmt::format("{}: header '{}' has more than one action in this filter; rule dropped",
                         f, name));
    return false;
  };
  for (std::string_view key : {"set", "add"}) {
    const YAML::Node list = Child(n, key);
    if (!Present(list)) continue;
    const std::string lf = Field(field, key);
    if (!list.IsSequence()) {
      sink.Add(doc, list, fmt::format("{}: expected a list; rule dropped", lf));
      return false;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node h = list[i];
      const std::string f = Field(lf, i);
      ReportUnknownKeys(doc, h, f, {"name", "value"}, sink);
      const auto name = Required(doc, h, "name", f, sink);
      if (!name) return false;
      // An empty value is a valid header value; only its absence is an error.
      if (!Present(Child(h, "value")) || !Child(h, "value").IsScalar()) {
        sink.Add(doc, h, fmt::format("{}.value: required; rule dropped", f));
        return false;
      }
      const std::string lower = base::ToLower(*name);
      if (!once(h, f, lower)) return false;
      (key == "set" ? ops->set : ops->add).emplace_back(lower, Child(h, "value").Scalar());
    }
  }
  const YAML::Node remove = Child(n, "remove");
  if (Present(remove)) {
    const std::string lf = Field(field, "remove");
    if (!remove.IsSequence()) {
      sink.Add(doc, remove, fmt::format("{}: expected a list; rule dropped", lf));
      return false;
    }
    for (size_t i = 0; i < remove.size(); ++i) {
      const auto name = Scalar(doc, remove[i], Field(lf, i), sink);
      if (!name || name->empty()) return false;
      const std::string lower = base::ToLower(*name);
      if (!once(remove[i], Field(lf, i), lower)) return false;
      ops->remove.push_back(lower);
    }
  }
  return true;
}

bool CompileBackendRef(const Doc& doc, const YAML::Node& ref, std::string_view field,
                       GatewayContext& ctx, WeightedCluster* out) {
  Sink& sink = ctx.sink;
  constexpr std::string_view kAnswered500 = "requests to it are answered 500";
  ReportUnknownKeys(doc, ref, field, {"group", "kind", "name", "namespace", "port", "weight", "filters"},
                    sink);
  if (Present(Child(ref, "weight"))) {
    const auto w = Number(doc, Child(ref, "weight"), Field(field, "weight"), 0, 1'000'000,
                          "rule dropped", sink);
    if (!w) return false;
    out->weight = static_cast<uint32_t>(*w);
  }
  ResolvedBackend b = ResolveBackendRef(doc, ref, field, kAnswered500, ctx);
  out->cluster = std::move(b.cluster);
  out->unresolved = b.unresolved;
  const YAML::Node filters = Child(ref, "filters");
  if (!Present(filters)) return true;
  const std::string ff = Field(field, "filters");
  if (!filters.IsSequence()) {
    sink.Add(doc, filters, fmt::format("{}: expected a list; rule dropped", ff));
    return false;
  }
  bool seen_req = false, seen_resp = false;
  for (size_t i = 0; i < filters.size(); ++i) {
    const YAML::Node fl = filters[i];
    const std::string f = Field(ff, i);
    const auto type = Required(doc, fl, "type", f, sink);
    if (!type) return false;
    const bool req = *type == "RequestHeaderModifier";
    if (!req && *type != "ResponseHeaderModifier") {
      // A filter must not be skipped (HTTPRouteFilter.Type): fail closed.
      sink.Add(doc, Child(fl, "type"),
               fmt::format("{}.type: {} on a backendRef is not supported; {}", f, *type,
                           kAnswered500));
      out->unresolved = true;
      continue;
    }
    bool& seen = req ? seen_req : seen_resp;
    if (seen) {
      sink.Add(doc, fl, fmt::format("{}: {} filter cannot be repeated; rule dropped", f, *type));
      return false;
    }
    seen = true;
    const std::string key = req ? "requestHeaderModifier" : "responseHeaderModifier";
    ReportUnknownKeys(doc, fl, f, {"type", key}, sink, "does not belong to this filter type; ignored");
    if (!Present(Child(fl, key))) {
      sink.Add(doc, fl, fmt::format("{}.{}: required for type {}; rule dropped", f, key, *type));
      return false;
    }
    if (!CompileHeaderModifier(doc, Child(fl, key), Field(f, key),
                               req ? &out->request_headers : &out->response_headers, sink)) {
      return false;
    }
  }
  return true;
}

}  // namespace ambit::waypoint::route::internal
