// ambit.dev/v1alpha1 RateLimitPolicy → a rate limit policy: the typed form
// of what the EnvoyFilter shape says, for the common cases.
//
//   spec:
//     targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
//                 # or {kind: Service, name: reviews}
//     descriptor: {header: x-api-key, key: api_key}  # one bucket per value
//               | {sourcePrincipal: {}} | {route: {}}  # absent: one bucket
//     tokenBucket: {maxTokens: 10, tokensPerFill: 10, fillInterval: 1s}
//     xRateLimitHeaders: true        # default true
//     global: {domain: production, service: rls.example:8081, timeout: 20ms,
//              failureModeDeny: false}
#include <fmt/format.h>

#include <set>

#include "common/base/ascii.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_ratelimit_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr std::string_view kApiVersion = "ambit.dev/v1alpha1";

bool Bool(const Doc& doc, const YAML::Node& n, const std::string& field, bool def, Sink& sink) {
  if (!Present(n)) return def;
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true") return true;
  if (s == "false") return false;
  sink.Invalid(doc, n, fmt::format("{}: '{}' is not true or false", field, s));
  return def;
}

// The descriptor rule and the key its bucket matches on.
bool CompileDescriptor(const Doc& doc, const YAML::Node& n, Sink& sink, DescriptorAction* out) {
  const std::string f = "spec.descriptor";
  if (!n.IsMap() || n.size() == 0) {
    sink.Invalid(doc, n, fmt::format("{}: expected one of header, sourcePrincipal, route", f));
    return false;
  }
  ReportUnknownKeys(doc, n, f, {"header", "key", "sourcePrincipal", "route"}, sink,
                    "unknown field; ignored");
  const YAML::Node h = Child(n, "header"), sp = Child(n, "sourcePrincipal"),
                   r = Child(n, "route");
  const int kinds = int(Present(h)) + int(Present(sp)) + int(Present(r));
  if (kinds != 1) {
    sink.Invalid(doc, n, fmt::format("{}: exactly one of header, sourcePrincipal, route", f));
    return false;
  }
  if (Present(h)) {
    auto name = Scalar(doc, h, Field(f, "header"), sink);
    if (!name || name->empty()) return false;
    out->kind = DescriptorAction::Kind::kRequestHeader;
    out->header = base::ToLower(*name);
    out->key = out->header;
  } else if (Present(sp)) {
    out->kind = DescriptorAction::Kind::kSourcePrincipal;
    out->key = "source_principal";
  } else {
    out->kind = DescriptorAction::Kind::kRouteName;
    out->key = "route";
  }
  if (const YAML::Node k = Child(n, "key"); Present(k)) {
    auto key = Scalar(doc, k, Field(f, "key"), sink);
    if (!key || key->empty()) return false;
    out->key = *key;
  }
  return true;
}

std::optional<GlobalRateLimit> CompileGlobal(const Doc& doc, const YAML::Node& n, Sink& sink) {
  const std::string f = "spec.global";
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", f));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, f, {"domain", "service", "timeout", "failureModeDeny"}, sink,
                    "unknown field; ignored");
  GlobalRateLimit g;
  auto domain = Scalar(doc, Child(n, "domain"), Field(f, "domain"), sink);
  auto service = Scalar(doc, Child(n, "service"), Field(f, "service"), sink);
  if (!domain || !service || domain->empty() || service->find(':') == std::string::npos) {
    sink.Invalid(doc, n, fmt::format("{}: domain and service (host:port) are required", f));
    return std::nullopt;
  }
  g.domain = *domain;
  g.service = *service;
  if (const YAML::Node t = Child(n, "timeout"); Present(t)) {
    auto d = ProtoDuration(doc, t, Field(f, "timeout"), sink);
    if (!d) return std::nullopt;
    if (d->count() == 0 || *d > std::chrono::seconds(10)) {
      sink.Invalid(doc, t, fmt::format("{}.timeout: must be above 0 and at most 10s", f));
      return std::nullopt;
    }
    g.timeout = *d;
  }
  g.failure_mode_deny = Bool(doc, Child(n, "failureModeDeny"), Field(f, "failureModeDeny"),
                             false, sink);
  return g;
}

}  // namespace

void CompileRateLimitPolicies(std::span<const config::ResourceConfig> resources,
                              const mesh::Snapshot& snap, const mesh::Workload* self,
                              RouteConfig* out, Sink& sink) {
  std::set<std::string> seen;
  for (const config::ResourceConfig& rc : resources) {
    if (rc.kind != "RateLimitPolicy") continue;
    if (rc.api_version != kApiVersion) {
      sink.AddRaw(rc, fmt::format("apiVersion '{}' is not supported ({}); not applied",
                                  rc.api_version, kApiVersion));
      continue;
    }
    std::optional<Doc> doc = LoadDoc(rc, sink);
    if (!doc) continue;
    if (!seen.insert(doc->Key()).second) {
      sink.Add(*doc, "duplicate definition (same kind, namespace and name); this one is ignored");
      continue;
    }
    const YAML::Node& spec = doc->spec;
    ReportUnknownKeys(*doc, spec, "spec",
                      {"targetRefs", "targetRef", "descriptor", "tokenBucket",
                       "xRateLimitHeaders", "global"},
                      sink, "unknown field; ignored");
    RateLimitPolicy p;
    p.name = fmt::format("RateLimitPolicy {}", doc->Key());
    p.source = fmt::format("{}:{}", rc.file, rc.line);
    p.stat_prefix = doc->name;
    bool ok = true;
    std::optional<DescriptorAction> action;
    if (const YAML::Node d = Child(spec, "descriptor"); Present(d)) {
      action.emplace();
      ok = CompileDescriptor(*doc, d, sink, &*action);
    }
    const YAML::Node tb = Child(spec, "tokenBucket"), gl = Child(spec, "global");
    if (!Present(tb) && !Present(gl)) {
      sink.Invalid(*doc, spec, "spec: needs tokenBucket (local) or global (RateLimitService)");
      ok = false;
    }
    std::optional<TokenBucketSpec> bucket;
    if (Present(tb)) {
      bucket = CompileTokenBucket(*doc, tb, "spec.tokenBucket", true, sink);
      ok = ok && bucket.has_value();
    }
    if (Present(gl)) {
      p.global = CompileGlobal(*doc, gl, sink);
      ok = ok && p.global.has_value();
    }
    p.x_ratelimit_headers = Bool(*doc, Child(spec, "xRateLimitHeaders"),
                                 "spec.xRateLimitHeaders", true, sink);
    std::vector<std::string> services;
    if (!ok || !BindsWaypoint(*doc, snap, self, false, sink, &services)) continue;
    p.services = std::move(services);
    if (action) {
      // Requests without the header (or without a peer identity) make no
      // descriptor and are not limited, as in Envoy.
      p.rules.push_back({*action});
      if (bucket) p.descriptors.push_back({{{action->key, ""}}, *bucket});
    } else {
      // One descriptor for everything, so the global service sees a domain
      // entry; locally the single default bucket applies.
      p.rules.push_back({DescriptorAction{.kind = DescriptorAction::Kind::kGenericKey,
                                          .key = "generic_key",
                                          .value = doc->name}});
      if (bucket) p.bucket = *bucket;
    }
    p.always_consume_default = false;
    out->rate_limits.push_back(std::move(p));
  }
}

}  // namespace ambit::waypoint::route::internal
