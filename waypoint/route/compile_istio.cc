// VirtualService and DestinationRule (networking.istio.io v1, v1beta1,
// v1alpha3) → route tables and subsets, as istiod programs a waypoint:
// hosts name services (short names in the VirtualService's namespace),
// `gateways` absent or containing "mesh", http[] rules in order, first match
// wins. What is not supported yet is reported, never silently dropped.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "waypoint/route/compile.h"
#include "waypoint/route/compile_istio_internal.h"
#include "waypoint/route/compile_retry.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr std::string_view kApiVersions[] = {"networking.istio.io/v1",
                                             "networking.istio.io/v1beta1",
                                             "networking.istio.io/v1alpha3"};

bool KnownApiVersion(const config::ResourceConfig& rc, Sink& sink) {
  if (std::find(std::begin(kApiVersions), std::end(kApiVersions), rc.api_version) !=
      std::end(kApiVersions)) {
    return true;
  }
  sink.AddRaw(rc, fmt::format("apiVersion '{}' is not supported (networking.istio.io/v1, "
                              "v1beta1, v1alpha3); resource not applied",
                              rc.api_version));
  return false;
}

}  // namespace

// Resources of one kind in file order, duplicates (same ns/name) reported.
std::vector<Doc> LoadKind(std::span<const config::ResourceConfig> resources,
                          std::string_view kind, Sink& sink) {
  std::vector<Doc> out;
  std::set<std::string> seen;
  for (const config::ResourceConfig& rc : resources) {
    if (rc.kind != kind || !KnownApiVersion(rc, sink)) continue;
    std::optional<Doc> d = LoadDoc(rc, sink);
    if (!d) continue;
    if (!seen.insert(d->Key()).second) {
      sink.Add(*d, "duplicate definition (same kind, namespace and name); this one is ignored");
      continue;
    }
    out.push_back(std::move(*d));
  }
  return out;
}

namespace {

std::vector<std::string> Strings(const Doc& doc, const YAML::Node& n, std::string_view field,
                                 Sink& sink) {
  std::vector<std::string> out;
  if (!Present(n)) return out;
  if (!n.IsSequence()) {
    sink.Add(doc, n, fmt::format("{}: expected a list of strings", field));
    return out;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    if (auto s = Scalar(doc, n[i], Field(field, i), sink)) out.push_back(*s);
  }
  return out;
}

struct Destination {
  const mesh::Service* service = nullptr;
  std::optional<uint16_t> port;
  std::string subset;
  std::string host;  // as written
};

std::optional<Destination> ParseDestination(const Doc& doc, const YAML::Node& n,
                                            const std::string& field,
                                            const mesh::Snapshot& snap, Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field, {"host", "subset", "port"}, sink, "unknown field; ignored");
  Destination d;
  auto host = Scalar(doc, Child(n, "host"), Field(field, "host"), sink);
  if (!host) return std::nullopt;
  d.host = *host;
  d.service = ResolveHost(snap, *host, doc.ns);
  if (const YAML::Node s = Child(n, "subset"); Present(s)) {
    auto v = Scalar(doc, s, Field(field, "subset"), sink);
    if (!v) return std::nullopt;
    d.subset = *v;
  }
  if (const YAML::Node p = Child(n, "port"); Present(p)) {
    auto num = Uint(doc, Child(p, "number"), Field(Field(field, "port"), "number"), 65535, sink);
    if (!num || *num == 0) return std::nullopt;
    d.port = static_cast<uint16_t>(*num);
  }
  return d;
}

// The cluster a destination means for requests to `port` of the bound
// service; `unresolved` (with a finding) when it names no usable cluster.
WeightedCluster ResolveDestination(const Doc& doc, const YAML::Node& at, const std::string& field,
                                   const Destination& d, uint16_t port, RouteConfig* out,
                                   Sink& sink, std::set<std::string>* reported) {
  WeightedCluster wc;
  auto once = [&](std::string msg) {
    if (reported->insert(field + msg).second) sink.Add(doc, at, std::move(msg));
  };
  if (d.service == nullptr) {
    once(fmt::format("{}.host: no service '{}' (from namespace {}); requests routed here get "
                     "503 (NC)", field, d.host, doc.ns));
    wc.unresolved = true;
    wc.cluster.name = fmt::format("inbound-vip|{}|http|{}", d.port.value_or(port), d.host);
    return wc;
  }
  uint16_t p = 0;
  if (d.port) {
    p = *d.port;
  } else if (d.service->ports.contains(port)) {
    p = port;  // the port the request came to
  } else if (d.service->ports.size() == 1) {
    p = d.service->ports.begin()->first;
  }
  if (p == 0 || !d.service->ports.contains(p)) {
    once(fmt::format("{}: service {} has no port {}; requests routed here get 503 (NC)", field,
                     d.service->hostname, p == 0 ? std::string("matching the request")
                                                 : std::to_string(p)));
    wc.unresolved = true;
    wc.cluster.name = fmt::format("inbound-vip|{}|http|{}", p, d.service->hostname);
    return wc;
  }
  LabelMap labels;
  std::string source;
  if (!d.subset.empty()) {
    const Subset* found = nullptr;
    if (auto it = out->subsets.find(d.service->Key()); it != out->subsets.end()) {
      for (const Subset& s : it->second) {
        if (s.name == d.subset) found = &s;
      }
    }
    if (found == nullptr) {
      once(fmt::format("{}.subset: no DestinationRule defines subset '{}' of {}; requests "
                       "routed here get 503 (NC)", field, d.subset, d.service->hostname));
      wc.unresolved = true;
      wc.cluster = ClusterRef{ClusterName(*d.service, p, d.subset), d.service->Key(), p, d.subset};
      return wc;
    }
    labels = found->labels;
    source = "DestinationRule subset " + d.subset;
  }
  wc.cluster = AddCluster(out, *d.service, p, d.subset, labels, source);
  return wc;
}

struct RuleParts {
  Route route;
  std::vector<std::pair<YAML::Node, std::string>> destinations;  // node, field
  std::vector<Destination> dests;
  std::vector<uint32_t> weights;
  std::vector<std::pair<HeaderOps, HeaderOps>> dest_headers;
  std::vector<std::pair<Destination, uint32_t>> mirrors;  // per million
  std::vector<std::pair<YAML::Node, std::string>> mirror_at;
};

uint32_t PercentToPerMillion(double pct) {
  if (pct <= 0) return 0;
  if (pct >= 100) return 1'000'000;
  return static_cast<uint32_t>(pct * 10'000 + 0.5);
}

std::optional<double> Percentage(const Doc& doc, const YAML::Node& n, const std::string& field,
                                 Sink& sink) {
  const YAML::Node v = Child(n, "value");
  if (!Present(v) || !v.IsScalar()) {
    sink.Add(doc, n, fmt::format("{}.value: expected a number (percent)", field));
    return std::nullopt;
  }
  char* end = nullptr;
  const std::string& s = v.Scalar();
  const double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !(d >= 0 && d <= 100)) {
    sink.Invalid(doc, v, fmt::format("{}.value: '{}' is not a percentage in 0..100", field, s));
    return std::nullopt;
  }
  return d;
}

// Parses one http[] rule; nullopt when it is dropped (findings say why).
std::optional<RuleParts> ParseRule(const Doc& doc, const YAML::Node& n, const std::string& field,
                                   const mesh::Snapshot& snap, Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return std::nullopt;
  }
  RuleParts parts;
  Route& route = parts.route;
  std::string rule_name;
  if (const YAML::Node nm = Child(n, "name"); Present(nm) && nm.IsScalar()) {
    rule_name = nm.Scalar();
  }
  route.name = fmt::format("VirtualService {} {}", doc.Key(),
                           rule_name.empty() ? field : field + " (" + rule_name + ")");
  route.source = sink.Location(doc, n);
  if (const YAML::Node t = Child(n, "timeout"); Present(t)) {
    auto d = Duration(doc, t, Field(field, "timeout"), sink);
    if (!d) return std::nullopt;
    route.timeout = *d;
  }
  if (const YAML::Node f = Child(n, "fault"); Present(f)) {
    route.fault.emplace();
    if (!CompileFault(doc, f, Field(field, "fault"), sink, &*route.fault)) return std::nullopt;
  }
  if (const YAML::Node r = Child(n, "retries"); Present(r)) {
    route.retry = CompileIstioRetries(doc, r, Field(field, "retries"), sink);
    if (!route.retry) return std::nullopt;
  }
  if (Present(Child(n, "corsPolicy"))) {
    sink.Add(doc, Child(n, "corsPolicy"),
             fmt::format("{}: not supported yet; ignored", Field(field, "corsPolicy")));
  }
  ReportUnknownKeys(doc, n, field,
                    {"name", "match", "route", "redirect", "directResponse", "delegate",
                     "rewrite", "timeout", "retries", "fault", "mirror", "mirrors",
                     "mirrorPercentage", "mirrorPercent", "mirror_percent", "corsPolicy",
                     "headers"},
                    sink, "unknown field; ignored");
  if (Present(Child(n, "delegate"))) {
    sink.Add(doc, Child(n, "delegate"),
             fmt::format("{}: delegate is not supported; rule dropped", Field(field, "delegate")));
    return std::nullopt;
  }
  // Match blocks (ORed). A rule whose every block is for gateways only does
  // not apply to the mesh at all.
  if (const YAML::Node ms = Child(n, "match"); Present(ms)) {
    if (!ms.IsSequence()) {
      sink.Add(doc, ms, fmt::format("{}: expected a list; rule dropped", Field(field, "match")));
      return std::nullopt;
    }
    size_t gateway_only = 0;
    for (size_t i = 0; i < ms.size(); ++i) {
      bool mesh = true;
      auto m = CompileIstioMatch(doc, ms[i], Field(Field(field, "match"), i), sink, &mesh);
      if (!mesh) ++gateway_only;
      if (m) route.matches.push_back(std::move(*m));
    }
    if (route.matches.empty()) {
      if (gateway_only < ms.size()) {
        sink.Add(doc, ms, fmt::format("{}: no usable match block; rule dropped",
                                      Field(field, "match")));
      }
      return std::nullopt;
    }
  }
  if (!CompileHeaders(doc, Child(n, "headers"), Field(field, "headers"), sink,
                      &route.request_headers, &route.response_headers)) {
    return std::nullopt;
  }
  const YAML::Node dests = Child(n, "route"), redirect = Child(n, "redirect"),
                   direct = Child(n, "directResponse");
  const int actions = Present(dests) + Present(redirect) + Present(direct);
  if (actions != 1) {
    sink.Add(doc, n, fmt::format("{}: exactly one of route, redirect, directResponse is "
                                 "required (found {}); rule dropped", field, actions));
    return std::nullopt;
  }
  if (Present(redirect)) {
    route.action = Route::Action::kRedirect;
    route.redirect.emplace();
    if (!CompileRedirect(doc, redirect, Field(field, "redirect"), sink, &*route.redirect)) {
      return std::nullopt;
    }
  } else if (Present(direct)) {
    route.action = Route::Action::kDirectResponse;
    route.direct_response.emplace();
    if (!CompileDirectResponse(doc, direct, Field(field, "directResponse"), sink,
                               &*route.direct_response)) {
      return std::nullopt;
    }
  } else {
    if (!dests.IsSequence() || dests.size() == 0) {
      sink.Add(doc, dests, fmt::format("{}: expected a non-empty list; rule dropped",
                                       Field(field, "route")));
      return std::nullopt;
    }
    bool any_weight = false;
    for (size_t i = 0; i < dests.size(); ++i) {
      const std::string df = Field(Field(field, "route"), i);
      const YAML::Node d = dests[i];
      ReportUnknownKeys(doc, d, df, {"destination", "weight", "headers"}, sink,
                        "unknown field; ignored");
      auto dest = ParseDestination(doc, Child(d, "destination"), Field(df, "destination"), snap,
                                   sink);
      if (!dest) return std::nullopt;
      uint32_t weight = 0;
      if (const YAML::Node w = Child(d, "weight"); Present(w)) {
        auto v = Uint(doc, w, Field(df, "weight"), 1'000'000, sink);
        if (!v) return std::nullopt;
        weight = static_cast<uint32_t>(*v);
        any_weight = true;
      }
      std::pair<HeaderOps, HeaderOps> hdrs;
      if (!CompileHeaders(doc, Child(d, "headers"), Field(df, "headers"), sink, &hdrs.first,
                          &hdrs.second)) {
        return std::nullopt;
      }
      parts.destinations.emplace_back(d, Field(df, "destination"));
      parts.dests.push_back(std::move(*dest));
      parts.weights.push_back(weight);
      parts.dest_headers.push_back(std::move(hdrs));
    }
    // A lone destination takes everything; several without any weight
    // share equally (weights are relative: weight ÷ sum).
    if (!any_weight) std::fill(parts.weights.begin(), parts.weights.end(), 1);
    if (parts.dests.size() == 1 && parts.weights[0] == 0) parts.weights[0] = 1;
    if (!CompileRewrite(doc, Child(n, "rewrite"), Field(field, "rewrite"), sink, &route)) {
      return std::nullopt;
    }
  }
  if (route.action != Route::Action::kForward && Present(Child(n, "rewrite"))) {
    sink.Add(doc, Child(n, "rewrite"),
             fmt::format("{}: rewrite only applies to route destinations; ignored",
                         Field(field, "rewrite")));
  }
  // Mirrors: `mirror` + `mirrorPercentage` (default 100 %), or `mirrors`.
  if (const YAML::Node m = Child(n, "mirror"); Present(m)) {
    double pct = 100;
    if (const YAML::Node mp = Child(n, "mirrorPercentage"); Present(mp)) {
      auto p = Percentage(doc, mp, Field(field, "mirrorPercentage"), sink);
      if (!p) return std::nullopt;
      pct = *p;
    }
    auto dest = ParseDestination(doc, m, Field(field, "mirror"), snap, sink);
    if (!dest) return std::nullopt;
    parts.mirrors.emplace_back(std::move(*dest), PercentToPerMillion(pct));
    parts.mirror_at.emplace_back(m, Field(field, "mirror"));
  }
  if (const YAML::Node ms = Child(n, "mirrors"); Present(ms)) {
    if (!ms.IsSequence()) {
      sink.Add(doc, ms, fmt::format("{}: expected a list", Field(field, "mirrors")));
      return std::nullopt;
    }
    for (size_t i = 0; i < ms.size(); ++i) {
      const std::string mf = Field(Field(field, "mirrors"), i);
      double pct = 100;
      if (const YAML::Node p = Child(ms[i], "percentage"); Present(p)) {
        auto v = Percentage(doc, p, Field(mf, "percentage"), sink);
        if (!v) return std::nullopt;
        pct = *v;
      }
      auto dest = ParseDestination(doc, Child(ms[i], "destination"), Field(mf, "destination"),
                                   snap, sink);
      if (!dest) return std::nullopt;
      parts.mirrors.emplace_back(std::move(*dest), PercentToPerMillion(pct));
      parts.mirror_at.emplace_back(ms[i], mf);
    }
  }
  return parts;
}

// The rule as it applies to requests for `port`: destinations resolved.
Route Instantiate(const Doc& doc, const RuleParts& parts, uint16_t port, RouteConfig* out,
                  Sink& sink, std::set<std::string>* reported) {
  Route route = parts.route;
  for (size_t i = 0; i < parts.dests.size(); ++i) {
    WeightedCluster wc = ResolveDestination(doc, parts.destinations[i].first,
                                            parts.destinations[i].second, parts.dests[i], port,
                                            out, sink, reported);
    wc.weight = parts.weights[i];
    wc.request_headers = parts.dest_headers[i].first;
    wc.response_headers = parts.dest_headers[i].second;
    route.total_weight += wc.weight;
    route.clusters.push_back(std::move(wc));
  }
  route.unresolved_status = 503;
  for (size_t i = 0; i < parts.mirrors.size(); ++i) {
    WeightedCluster wc = ResolveDestination(doc, parts.mirror_at[i].first,
                                            parts.mirror_at[i].second, parts.mirrors[i].first,
                                            port, out, sink, reported);
    route.mirrors.push_back(Mirror{wc.cluster, parts.mirrors[i].second, wc.unresolved});
  }
  return route;
}

void CompileVirtualService(const Doc& doc, const mesh::Snapshot& snap, RouteConfig* out,
                           Sink& sink, std::set<std::string>* claimed) {
  const YAML::Node& spec = doc.spec;
  ReportUnknownKeys(doc, spec, "spec", {"hosts", "gateways", "http", "tcp", "tls", "exportTo"},
                    sink, "unknown field; ignored");
  for (const char* l4 : {"tcp", "tls"}) {
    if (Present(Child(spec, l4))) {
      sink.Add(doc, Child(spec, l4),
               fmt::format("spec.{}: not supported on the waypoint yet; ignored", l4));
    }
  }
  if (Present(Child(spec, "exportTo"))) {
    sink.Add(doc, Child(spec, "exportTo"),
             "spec.exportTo: not enforced (every namespace sees the routes)");
  }
  const std::vector<std::string> gateways =
      Strings(doc, Child(spec, "gateways"), "spec.gateways", sink);
  if (!gateways.empty() && std::find(gateways.begin(), gateways.end(), "mesh") == gateways.end()) {
    return;  // bound to ingress gateways only: nothing for the mesh
  }
  const std::vector<std::string> hosts = Strings(doc, Child(spec, "hosts"), "spec.hosts", sink);
  if (hosts.empty()) {
    sink.Add(doc, Child(spec, "hosts"), "spec.hosts: at least one host is required; resource "
                                        "not applied");
    return;
  }
  std::vector<const mesh::Service*> services;
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto found = ResolveHostPattern(snap, hosts[i], doc.ns);
    if (found.empty()) {
      sink.Add(doc, Child(spec, "hosts")[i],
               fmt::format("spec.hosts[{}]: no service '{}' (from namespace {}); this host has "
                           "no routes", i, hosts[i], doc.ns));
    }
    for (const mesh::Service* s : found) {
      if (std::find(services.begin(), services.end(), s) == services.end()) services.push_back(s);
    }
  }
  std::vector<RuleParts> rules;
  if (const YAML::Node http = Child(spec, "http"); Present(http)) {
    if (!http.IsSequence()) {
      sink.Add(doc, http, "spec.http: expected a list; resource not applied");
      return;
    }
    for (size_t i = 0; i < http.size(); ++i) {
      if (auto r = ParseRule(doc, http[i], Field("spec.http", i), snap, sink)) {
        rules.push_back(std::move(*r));
      }
    }
  }
  std::set<std::string> reported;
  for (const mesh::Service* svc : services) {
    for (uint16_t port : HttpPorts(*svc, 0)) {
      const std::string key = RouteConfig::TableKey(svc->Key(), port);
      if (auto it = out->tables.find(key); it != out->tables.end()) {
        if (reported.insert("conflict " + key).second) {
          sink.Add(doc, fmt::format("{} port {} already has routes from {}; this "
                                    "VirtualService is ignored there (Istio does not merge "
                                    "routes for one host)",
                                    svc->hostname, port,
                                    it->second.bound.empty() ? "another resource"
                                                             : it->second.bound.front()));
        }
        continue;
      }
      RouteTable table;
      table.service = svc->Key();
      table.port = port;
      table.kind = RouteTable::Kind::kVirtualService;
      table.bound.push_back("VirtualService " + doc.Key());
      for (const RuleParts& rule : rules) {
        table.routes.push_back(Instantiate(doc, rule, port, out, sink, &reported));
      }
      out->tables.emplace(key, std::move(table));
    }
  }
}

}  // namespace

void CompileVirtualServices(std::span<const config::ResourceConfig> resources,
                            const mesh::Snapshot& snap, RouteConfig* out, Sink& sink) {
  std::set<std::string> claimed;
  for (const Doc& doc : LoadKind(resources, "VirtualService", sink)) {
    CompileVirtualService(doc, snap, out, sink, &claimed);
  }
}

}  // namespace ambit::waypoint::route::internal
