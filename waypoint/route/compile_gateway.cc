// HTTPRoute / GRPCRoute → route tables (WAYPOINT.md §4–5): which service
// ports a route binds (parentRefs of kind Service), and the Gateway API's
// precedence across every rule bound to one port. Rules themselves are
// compiled in compile_gateway_rule.cc.
//
// Facts: gateway-api apis/v1/shared_types.go (ParentReference: group
// defaults to gateway.networking.k8s.io and kind to Gateway, so a Service
// parent spells group ""; a parent Service in another namespace makes a
// "consumer" route that applies only to clients of the route's namespace),
// httproute_types.go (HTTPRouteRule.Matches: precedence), grpcroute_types.go
// (GRPCRouteRule.Matches: precedence; GRPCRouteSpec.Hostnames: an HTTPRoute
// and a GRPCRoute on one parent are not merged, the older one is accepted).
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "waypoint/route/compile.h"
#include "waypoint/route/compile_gateway.h"

namespace ambit::waypoint::route::internal {

namespace {

struct RouteDoc {
  Doc doc;
  bool grpc = false;
  // metadata.creationTimestamp; absent = the newest (see Age).
  std::optional<std::pair<int64_t, int32_t>> created;
  std::string Label() const { return fmt::format("{} {}", doc.kind, doc.Key()); }
};

// <0 when a is older. The spec orders ties by "the oldest Route based on
// creation timestamp"; an object without one (a hand-written file) is taken
// as created now, i.e. after every object that carries one, so adding a
// route never takes traffic from a route that was already there.
int Age(const RouteDoc& a, const RouteDoc& b) {
  if (a.created && b.created) {
    if (*a.created == *b.created) return 0;
    return *a.created < *b.created ? -1 : 1;
  }
  if (a.created.has_value() != b.created.has_value()) return a.created ? -1 : 1;
  return 0;
}

// Older, then "ns/name" first alphabetically: the spec's cross-route tie-break.
bool Senior(const RouteDoc& a, const RouteDoc& b) {
  if (int age = Age(a, b); age != 0) return age < 0;
  return a.doc.Key() < b.doc.Key();
}

struct Binding {
  const mesh::Service* svc = nullptr;
  uint16_t port = 0;
  bool consumer = false;  // parent Service in another namespace
};

struct Entry {
  const RouteDoc* src = nullptr;
  const RankedRoute* rr = nullptr;
  bool consumer = false;
};

bool Before(const Entry& a, const Entry& b) {
  const RouteRank& x = a.rr->rank;
  const RouteRank& y = b.rr->rank;
  if (a.src->grpc) {  // one table holds one kind (see CompileGatewayRoutes)
    if (x.grpc_service != y.grpc_service) return x.grpc_service > y.grpc_service;
    if (x.grpc_method != y.grpc_method) return x.grpc_method > y.grpc_method;
    if (x.headers != y.headers) return x.headers > y.headers;
  } else {
    if (x.path_kind != y.path_kind) return x.path_kind > y.path_kind;
    if (x.path_len != y.path_len) return x.path_len > y.path_len;
    if (x.method != y.method) return x.method;
    if (x.headers != y.headers) return x.headers > y.headers;
    if (x.query != y.query) return x.query > y.query;
  }
  if (a.src != b.src) return Senior(*a.src, *b.src);
  if (x.rule != y.rule) return x.rule < y.rule;
  return x.match < y.match;
}

// The service ports one parentRef binds (empty, with a finding, when none).
void BindParent(const Doc& doc, const YAML::Node& p, const std::string& f,
                const mesh::Snapshot& snap, std::vector<Binding>* out, Sink& sink) {
  ReportUnknownKeys(doc, p, f, {"group", "kind", "namespace", "name", "sectionName", "port"}, sink);
  const auto group = OptScalar(doc, Child(p, "group"), Field(f, "group"), kGatewayGroup, sink);
  const auto kind = OptScalar(doc, Child(p, "kind"), Field(f, "kind"), "Gateway", sink);
  if (!group || !kind) return;
  if (*kind == "Gateway" && *group == kGatewayGroup) return;  // an ingress binding, not ours
  if (*kind != "Service") {
    sink.Add(doc, p,
             fmt::format("{}: parent '{}/{}' is neither a Service (mesh) nor a Gateway; ignored", f,
                         *group, *kind));
    return;
  }
  if (!group->empty() && *group != "core") {
    sink.Add(doc, Present(Child(p, "group")) ? Child(p, "group") : p,
             fmt::format("{}.group: a Service parent needs group \"\" (core), not '{}'{}; not "
                         "bound",
                         f, *group, Present(Child(p, "group")) ? "" : " (the default)"));
    return;
  }
  const auto name = Required(doc, p, "name", f, sink, "not bound");
  const auto ns = OptScalar(doc, Child(p, "namespace"), Field(f, "namespace"), doc.ns, sink);
  if (!name || !ns) return;
  const mesh::Service* svc = FindService(snap, *ns, *name);
  if (svc == nullptr) {
    sink.Add(doc, p, fmt::format("{}: Service {}/{} not found; not bound", f, *ns, *name));
    return;
  }
  uint16_t port = 0;
  if (Present(Child(p, "port"))) {
    const auto n = Number(doc, Child(p, "port"), Field(f, "port"), 1, 65535, "not bound", sink);
    if (!n) return;
    port = static_cast<uint16_t>(*n);
    if (!svc->ports.contains(port)) {
      sink.Add(doc, Child(p, "port"),
               fmt::format("{}.port: {} is not a port of Service {}/{}; not bound", f, port, *ns,
                           *name));
      return;
    }
  }
  const auto section = OptScalar(doc, Child(p, "sectionName"), Field(f, "sectionName"), "", sink);
  if (!section) return;
  std::vector<uint16_t> ports;
  for (const auto& [p_num, target] : svc->ports) {
    if (port != 0 && p_num != port) continue;
    if (!section->empty()) {
      auto it = svc->port_names.find(p_num);
      if (it == svc->port_names.end() || it->second != *section) continue;
    }
    ports.push_back(p_num);
  }
  if (ports.empty()) {
    sink.Add(doc, Child(p, "sectionName"),
             fmt::format("{}.sectionName: Service {}/{} has no port named '{}'{}; not bound", f,
                         *ns, *name, *section, port != 0 ? fmt::format(" with number {}", port) : ""));
    return;
  }
  const std::vector<uint16_t> http = HttpPorts(*svc, 0);
  size_t bound = 0;
  for (uint16_t p_num : ports) {
    if (std::find(http.begin(), http.end(), p_num) == http.end()) continue;
    out->push_back(Binding{svc, p_num, *ns != doc.ns});
    ++bound;
  }
  if (bound == 0) {
    sink.Add(doc, p,
             fmt::format("{}: Service {}/{} has no HTTP port{} (declared TCP/TLS); not bound", f,
                         *ns, *name, port != 0 ? fmt::format(" {}", port) : ""));
  }
}

std::vector<Binding> Bindings(const Doc& doc, const mesh::Snapshot& snap, Sink& sink) {
  std::vector<Binding> out;
  const YAML::Node refs = Child(doc.spec, "parentRefs");
  if (!Present(refs)) {
    sink.Add(doc, doc.spec, "spec.parentRefs: none; the route binds no Service");
    return out;
  }
  if (!refs.IsSequence()) {
    sink.Add(doc, refs, "spec.parentRefs: expected a list; resource not applied");
    return out;
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    const std::string f = Field("spec.parentRefs", i);
    if (!refs[i].IsMap()) {
      sink.Add(doc, refs[i], fmt::format("{}: expected a map; ignored", f));
      continue;
    }
    BindParent(doc, refs[i], f, snap, &out, sink);
  }
  return out;
}

bool VersionOk(const config::ResourceConfig& rc, std::initializer_list<std::string_view> versions,
               Sink& sink) {
  std::string list;
  for (std::string_view v : versions) {
    if (rc.api_version == fmt::format("{}/{}", kGatewayGroup, v)) return true;
    list += list.empty() ? "" : ", ";
    list += fmt::format("{}/{}", kGatewayGroup, v);
  }
  sink.AddRaw(rc, fmt::format("apiVersion '{}' is not supported for {} (use {}); resource not "
                              "applied",
                              rc.api_version, rc.kind, list));
  return false;
}

// Loads the routes and grants, skipping duplicates and unknown versions.
void Load(std::span<const config::ResourceConfig> resources, ReferenceGrants* grants,
          std::vector<RouteDoc>* routes, Sink& sink) {
  std::set<std::string> seen;
  for (const config::ResourceConfig& rc : resources) {
    const bool grpc = rc.kind == "GRPCRoute";
    const bool grant = rc.kind == "ReferenceGrant";
    if (!grpc && !grant && rc.kind != "HTTPRoute") continue;
    const bool ok = grant  ? VersionOk(rc, {"v1beta1", "v1"}, sink)
                    : grpc ? VersionOk(rc, {"v1", "v1alpha2"}, sink)
                           : VersionOk(rc, {"v1", "v1beta1"}, sink);
    if (!ok) continue;
    std::optional<Doc> doc = LoadDoc(rc, sink);
    if (!doc) continue;
    if (!seen.insert(fmt::format("{} {}", rc.kind, doc->Key())).second) {
      sink.Add(*doc, fmt::format("duplicate {} {}: this later one is ignored", rc.kind, doc->Key()));
      continue;
    }
    if (grant) {
      grants->Add(*doc, sink);
      continue;
    }
    RouteDoc r{std::move(*doc), grpc, std::nullopt};
    const YAML::Node ts = Child(Child(rc.node, "metadata"), "creationTimestamp");
    if (Present(ts)) {
      if (ts.IsScalar()) r.created = ParseRfc3339(ts.Scalar());
      if (!r.created) {
        sink.Add(r.doc, ts,
                 "metadata.creationTimestamp: not an RFC 3339 time; taken as absent (newest)");
      }
    }
    routes->push_back(std::move(r));
  }
}

// Keeps one route kind per table: the senior route's (the spec accepts
// exactly one of an HTTPRoute and a GRPCRoute on one parent).
bool KeepOneKind(std::vector<Entry>* entries, const Binding& b, Sink& sink) {
  const RouteDoc* senior = nullptr;
  bool http = false, grpc = false;
  for (const Entry& e : *entries) {
    (e.src->grpc ? grpc : http) = true;
    if (senior == nullptr || Senior(*e.src, *senior)) senior = e.src;
  }
  if (!(http && grpc)) return grpc;
  std::set<const RouteDoc*> reported;
  for (const Entry& e : *entries) {
    if (e.src->grpc == senior->grpc || !reported.insert(e.src).second) continue;
    sink.Add(e.src->doc, Child(e.src->doc.spec, "parentRefs"),
             fmt::format("spec.parentRefs: {} port {} is also bound by {}, which is older (or first "
                         "by name); HTTPRoute and GRPCRoute are not merged on one port (Gateway "
                         "API), so this route is not applied there",
                         b.svc->Key(), b.port, senior->Label()));
  }
  std::erase_if(*entries, [&](const Entry& e) { return e.src->grpc != senior->grpc; });
  return senior->grpc;
}

// The service's own endpoints, for requests no consumer route claims.
Route DefaultRoute(const mesh::Service& svc, uint16_t port, RouteConfig* out) {
  Route r;
  r.name = fmt::format("default {}|{} (no producer route)", svc.Key(), port);
  WeightedCluster wc;
  wc.cluster = AddCluster(out, svc, port, "", {}, "");
  r.clusters.push_back(std::move(wc));
  r.total_weight = 1;
  return r;
}

}  // namespace

std::optional<std::pair<int64_t, int32_t>> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
  auto digits = [&](size_t pos, size_t n, int* v) {
    if (pos + n > s.size()) return false;
    *v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  int year, mon, day, hour, min, sec;
  if (s.size() < 20 || !digits(0, 4, &year) || s[4] != '-' || !digits(5, 2, &mon) ||
      s[7] != '-' || !digits(8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &min) || s[16] != ':' ||
      !digits(17, 2, &sec)) {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  int32_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int32_t scale = 100'000'000;
    const size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const int64_t t = static_cast<int64_t>(timegm(&tm));
  return std::make_pair(t - offset, nanos);
}

void CompileGatewayRoutes(std::span<const config::ResourceConfig> resources,
                          const mesh::Snapshot& snapshot, RouteConfig* out, Sink& sink) {
  ReferenceGrants grants;
  std::vector<RouteDoc> routes;
  Load(resources, &grants, &routes, sink);

  GatewayContext ctx{snapshot, grants, out, sink};
  // Compiled once per resource, then copied into every table it binds.
  std::vector<std::vector<RankedRoute>> compiled(routes.size());
  std::map<std::string, std::pair<Binding, std::vector<Entry>>> tables;
  for (size_t i = 0; i < routes.size(); ++i) {
    const std::vector<Binding> bindings = Bindings(routes[i].doc, snapshot, sink);
    if (bindings.empty()) continue;
    const Doc& doc = routes[i].doc;
    ReportUnknownKeys(doc, doc.spec, "spec", {"parentRefs", "rules", "hostnames"}, sink);
    if (Present(Child(doc.spec, "hostnames"))) {
      // Mesh routes bind by the connection's destination service, not Host.
      sink.Add(doc, Child(doc.spec, "hostnames"),
               "spec.hostnames: not used for Service parents (binding is by destination "
               "service); ignored");
    }
    compiled[i] = CompileGatewayRules(doc, routes[i].grpc, ctx);
    std::set<std::string> keys;  // a route listing one port twice binds it once
    for (const Binding& b : bindings) {
      const std::string key = RouteConfig::TableKey(b.svc->Key(), b.port);
      if (!keys.insert(key).second) continue;
      auto& [binding, entries] = tables[key];
      binding = b;
      for (const RankedRoute& rr : compiled[i]) entries.push_back(Entry{&routes[i], &rr, b.consumer});
    }
  }

  for (auto& [key, t] : tables) {
    auto& [binding, entries] = t;
    if (entries.empty()) continue;  // every rule dropped: the route is not accepted
    const bool grpc = KeepOneKind(&entries, binding, sink);
    std::stable_sort(entries.begin(), entries.end(), Before);
    RouteTable table;
    table.service = binding.svc->Key();
    table.port = binding.port;
    table.kind = grpc ? RouteTable::Kind::kGrpcRoute : RouteTable::Kind::kHttpRoute;
    std::set<std::string> bound;
    for (const Entry& e : entries) {
      Route r = e.rr->route;
      // A consumer route applies only to clients of its own namespace.
      if (e.consumer) r.matches[0].source_namespace = e.src->doc.ns;
      table.routes.push_back(std::move(r));
      bound.insert(e.src->Label());
    }
    table.bound.assign(bound.begin(), bound.end());
    if (std::all_of(entries.begin(), entries.end(), [](const Entry& e) { return e.consumer; })) {
      // Only consumer routes: clients of other namespaces keep Istio's default
      // route (the service itself) instead of getting 404 from this table.
      table.routes.push_back(DefaultRoute(*binding.svc, binding.port, out));
    }
    out->tables[key] = std::move(table);
  }
}

}  // namespace ambit::waypoint::route::internal
