// EnvoyFilter → rate limit policies, for the shape Istio documents
// ("Enabling Rate Limits using Envoy"): an HTTP_FILTER patch inserting
// envoy.filters.http.local_ratelimit (token bucket, descriptors,
// filter_enabled / filter_enforced, response headers) or
// envoy.filters.http.ratelimit (the global RateLimitService) into the HTTP
// connection manager, and VIRTUAL_HOST patches merging route `rate_limits`
// (the actions that make descriptors). typed_config is accepted direct
// (@type LocalRateLimit / RateLimit) or wrapped in a TypedStruct. Any other
// patch is reported and not applied: the waypoint is not an Envoy.
#include <fmt/format.h>

#include <set>

#include "common/base/ascii.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_ratelimit_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr std::string_view kLocalFilter = "envoy.filters.http.local_ratelimit";
constexpr std::string_view kGlobalFilter = "envoy.filters.http.ratelimit";
constexpr std::string_view kLocalType =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
constexpr std::string_view kGlobalType =
    "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";

bool IsTypedStruct(std::string_view t) {
  return t == "type.googleapis.com/udpa.type.v1.TypedStruct" ||
         t == "type.googleapis.com/xds.type.v3.TypedStruct";
}

bool True(const YAML::Node& n) { return Present(n) && n.IsScalar() && n.Scalar() == "true"; }

// typed_config → (type url, the message's fields), or false with a finding.
bool Unwrap(const Doc& doc, const YAML::Node& tc, const std::string& field, Sink& sink,
            std::string* type, YAML::Node* value, std::string* value_field) {
  if (!tc.IsMap()) {
    sink.Add(doc, tc, fmt::format("{}: expected a map; patch ignored", field));
    return false;
  }
  auto t = Scalar(doc, Child(tc, "@type"), Field(field, "@type"), sink);
  if (!t) return false;
  if (IsTypedStruct(*t)) {
    ReportUnknownKeys(doc, tc, field, {"@type", "type_url", "value"}, sink,
                      "unknown field; ignored");
    auto u = Scalar(doc, Child(tc, "type_url"), Field(field, "type_url"), sink);
    if (!u) return false;
    *type = *u;
    *value = Child(tc, "value");
    *value_field = Field(field, "value");
    if (!Present(*value)) *value = YAML::Node(YAML::NodeType::Map);
  } else {
    *type = *t;
    *value = tc;
    *value_field = field;
  }
  if (!value->IsMap()) {
    sink.Add(doc, *value, fmt::format("{}: expected a map; patch ignored", *value_field));
    return false;
  }
  return true;
}

// RuntimeFractionalPercent {default_value {numerator, denominator}} → per
// million; absent → 0 (Envoy: not enabled / not enforced).
std::optional<uint32_t> FractionalPercent(const Doc& doc, const YAML::Node& n,
                                          const std::string& field, Sink& sink) {
  if (!Present(n)) {
    sink.Add(doc, fmt::format("{}: absent, so Envoy applies it to 0% of requests; set "
                              "default_value {{numerator: 100, denominator: HUNDRED}}", field));
    return 0;
  }
  ReportUnknownKeys(doc, n, field, {"default_value", "runtime_key"}, sink,
                    "unknown field; ignored");
  const YAML::Node dv = Child(n, "default_value");
  const std::string df = Field(field, "default_value");
  if (!dv.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: required", df));
    return std::nullopt;
  }
  uint64_t num = 0;
  if (const YAML::Node nu = Child(dv, "numerator"); Present(nu)) {
    std::vector<Finding> why;
    Sink probe(&why);
    auto v = Uint(doc, nu, Field(df, "numerator"), UINT32_MAX, probe);
    if (!v) {
      sink.Invalid(doc, nu, fmt::format("{}.numerator: not a non-negative integer", df));
      return std::nullopt;
    }
    num = *v;
  }
  uint64_t denom = 100;
  if (const YAML::Node de = Child(dv, "denominator"); Present(de)) {
    const std::string s = de.IsScalar() ? de.Scalar() : "";
    if (s == "HUNDRED") denom = 100;
    else if (s == "TEN_THOUSAND") denom = 10'000;
    else if (s == "MILLION") denom = 1'000'000;
    else {
      sink.Invalid(doc, de, fmt::format("{}.denominator: '{}' is not HUNDRED, TEN_THOUSAND or "
                                        "MILLION", df, s));
      return std::nullopt;
    }
  }
  const uint64_t pm = std::min<uint64_t>(num, denom) * (1'000'000 / denom);
  return static_cast<uint32_t>(pm);
}

// response_headers_to_add [{append, header {key, value}}].
void HeadersToAdd(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                  std::vector<std::pair<std::string, std::string>>* out) {
  if (!Present(n)) return;
  if (!n.IsSequence()) {
    sink.Add(doc, n, fmt::format("{}: expected a list; ignored", field));
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string f = Field(field, i);
    ReportUnknownKeys(doc, n[i], f, {"header", "append", "append_action"}, sink,
                      "unknown field; ignored");
    const YAML::Node h = Child(n[i], "header");
    auto k = Scalar(doc, Child(h, "key"), Field(f, "header.key"), sink);
    auto v = Scalar(doc, Child(h, "value"), Field(f, "header.value"), sink);
    if (k && v) out->emplace_back(base::ToLower(*k), *v);
  }
}

bool XRateLimitHeaders(const Doc& doc, const YAML::Node& n, const std::string& field,
                       Sink& sink) {
  if (!Present(n)) return false;
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "DRAFT_VERSION_03") return true;
  if (s != "OFF") {
    sink.Invalid(doc, n, fmt::format("{}: '{}' is not OFF or DRAFT_VERSION_03", field, s));
  }
  return false;
}

std::optional<RateLimitPolicy> LocalRateLimit(const Doc& doc, const YAML::Node& v,
                                              const std::string& f, Sink& sink) {
  ReportUnknownKeys(doc, v, f,
                    {"@type", "stat_prefix", "status", "token_bucket", "filter_enabled",
                     "filter_enforced", "response_headers_to_add", "descriptors",
                     "enable_x_ratelimit_headers", "always_consume_default_token_bucket",
                     "local_rate_limit_per_downstream_connection", "stage", "rate_limits"},
                    sink, "not supported; ignored");
  RateLimitPolicy p;
  auto prefix = Scalar(doc, Child(v, "stat_prefix"), Field(f, "stat_prefix"), sink);
  if (!prefix) {
    sink.Invalid(doc, v, fmt::format("{}.stat_prefix: required", f));
    return std::nullopt;
  }
  p.stat_prefix = *prefix;
  if (const YAML::Node tb = Child(v, "token_bucket"); Present(tb)) {
    p.bucket = CompileTokenBucket(doc, tb, Field(f, "token_bucket"), false, sink);
    if (!p.bucket) return std::nullopt;
  }
  if (const YAML::Node st = Child(v, "status"); Present(st)) {
    const YAML::Node code = Child(st, "code");
    const std::string s = code.IsScalar() ? code.Scalar() : "";
    int c = s == "TooManyRequests" ? 429 : s == "ServiceUnavailable" ? 503 : std::atoi(s.c_str());
    if (c < 400 || c > 599) {
      sink.Invalid(doc, st, fmt::format("{}.status.code: '{}' is not a 4xx/5xx status", f, s));
      return std::nullopt;
    }
    p.status = c;
  }
  auto enabled = FractionalPercent(doc, Child(v, "filter_enabled"), Field(f, "filter_enabled"),
                                   sink);
  auto enforced = FractionalPercent(doc, Child(v, "filter_enforced"),
                                    Field(f, "filter_enforced"), sink);
  if (!enabled || !enforced) return std::nullopt;
  p.enabled_per_million = *enabled;
  p.enforced_per_million = *enforced;
  HeadersToAdd(doc, Child(v, "response_headers_to_add"), Field(f, "response_headers_to_add"),
               sink, &p.response_headers);
  p.x_ratelimit_headers = XRateLimitHeaders(doc, Child(v, "enable_x_ratelimit_headers"),
                                            Field(f, "enable_x_ratelimit_headers"), sink);
  if (const YAML::Node a = Child(v, "always_consume_default_token_bucket"); Present(a)) {
    p.always_consume_default = !(a.IsScalar() && a.Scalar() == "false");
  }
  if (True(Child(v, "local_rate_limit_per_downstream_connection"))) {
    sink.Add(doc, Child(v, "local_rate_limit_per_downstream_connection"),
             fmt::format("{}.local_rate_limit_per_downstream_connection: not supported; the "
                         "buckets are per waypoint", f));
  }
  if (const YAML::Node st = Child(v, "stage"); Present(st) && st.IsScalar() && st.Scalar() != "0") {
    sink.Add(doc, st, fmt::format("{}.stage: only stage 0 is served; filter not applied", f));
    return std::nullopt;
  }
  if (const YAML::Node ds = Child(v, "descriptors"); Present(ds)) {
    if (!ds.IsSequence()) {
      sink.Invalid(doc, ds, fmt::format("{}.descriptors: expected a list", f));
      return std::nullopt;
    }
    for (size_t i = 0; i < ds.size(); ++i) {
      const std::string df = Field(Field(f, "descriptors"), i);
      ReportUnknownKeys(doc, ds[i], df, {"entries", "token_bucket"}, sink,
                        "unknown field; ignored");
      LocalDescriptor ld;
      const YAML::Node es = Child(ds[i], "entries");
      if (!es.IsSequence() || es.size() == 0) {
        sink.Invalid(doc, ds[i], fmt::format("{}.entries: at least one entry is required", df));
        return std::nullopt;
      }
      for (size_t j = 0; j < es.size(); ++j) {
        const std::string ef = Field(Field(df, "entries"), j);
        auto k = Scalar(doc, Child(es[j], "key"), Field(ef, "key"), sink);
        if (!k) return std::nullopt;
        const YAML::Node val = Child(es[j], "value");
        ld.entries.emplace_back(*k, Present(val) && val.IsScalar() ? val.Scalar() : "");
      }
      auto b = CompileTokenBucket(doc, Child(ds[i], "token_bucket"),
                                  Field(df, "token_bucket"), false, sink);
      if (!b) return std::nullopt;
      ld.bucket = *b;
      p.descriptors.push_back(std::move(ld));
    }
  }
  if (!p.Local()) {
    sink.Invalid(doc, v, fmt::format("{}: needs token_bucket or descriptors", f));
    return std::nullopt;
  }
  if (const YAML::Node rl = Child(v, "rate_limits"); rl.IsSequence()) {
    for (size_t i = 0; i < rl.size(); ++i) {
      if (auto a = CompileRateLimitActions(doc, rl[i], Field(Field(f, "rate_limits"), i), sink)) {
        p.rules.push_back(std::move(*a));
      }
    }
  }
  return p;
}

// cluster_name outbound|PORT||HOST (how istiod names a service's cluster)
// → HOST:PORT; anything else is taken as a gRPC target as written.
std::string RlsTarget(std::string_view cluster) {
  if (cluster.starts_with("outbound|")) {
    const size_t a = cluster.find('|'), b = cluster.find('|', a + 1);
    const size_t c = b == std::string_view::npos ? b : cluster.find('|', b + 1);
    if (b != std::string_view::npos && c != std::string_view::npos) {
      return fmt::format("{}:{}", cluster.substr(c + 1), cluster.substr(a + 1, b - a - 1));
    }
  }
  return std::string(cluster);
}

std::optional<RateLimitPolicy> GlobalRateLimitFilter(const Doc& doc, const YAML::Node& v,
                                                     const std::string& f, Sink& sink) {
  ReportUnknownKeys(doc, v, f,
                    {"@type", "domain", "timeout", "failure_mode_deny", "rate_limit_service",
                     "enable_x_ratelimit_headers", "stage", "request_type"},
                    sink, "not supported; ignored");
  RateLimitPolicy p;
  GlobalRateLimit g;
  auto domain = Scalar(doc, Child(v, "domain"), Field(f, "domain"), sink);
  if (!domain || domain->empty()) {
    sink.Invalid(doc, v, fmt::format("{}.domain: required", f));
    return std::nullopt;
  }
  g.domain = *domain;
  p.stat_prefix = *domain;
  if (const YAML::Node t = Child(v, "timeout"); Present(t)) {
    auto d = ProtoDuration(doc, t, Field(f, "timeout"), sink);
    if (!d) return std::nullopt;
    g.timeout = *d;
  }
  g.failure_mode_deny = True(Child(v, "failure_mode_deny"));
  p.x_ratelimit_headers = XRateLimitHeaders(doc, Child(v, "enable_x_ratelimit_headers"),
                                            Field(f, "enable_x_ratelimit_headers"), sink);
  const YAML::Node svc = Child(v, "rate_limit_service");
  const std::string sf = Field(f, "rate_limit_service");
  ReportUnknownKeys(doc, svc, sf, {"grpc_service", "transport_api_version"}, sink,
                    "unknown field; ignored");
  const YAML::Node gs = Child(svc, "grpc_service");
  const YAML::Node cluster = Child(Child(gs, "envoy_grpc"), "cluster_name");
  const YAML::Node target = Child(Child(gs, "google_grpc"), "target_uri");
  if (Present(cluster) && cluster.IsScalar()) {
    g.service = RlsTarget(cluster.Scalar());
  } else if (Present(target) && target.IsScalar()) {
    g.service = target.Scalar();
  } else {
    sink.Invalid(doc, svc, fmt::format("{}.grpc_service: envoy_grpc.cluster_name or "
                                       "google_grpc.target_uri is required", sf));
    return std::nullopt;
  }
  if (const YAML::Node t = Child(gs, "timeout"); Present(t)) {
    auto d = ProtoDuration(doc, t, Field(sf, "grpc_service.timeout"), sink);
    if (!d) return std::nullopt;
    if (!Present(Child(v, "timeout"))) g.timeout = *d;
  }
  if (g.timeout.count() == 0) {
    sink.Add(doc, v, fmt::format("{}.timeout: 0 (no timeout) is bounded to 1s", f));
    g.timeout = std::chrono::seconds(1);
  }
  p.global = std::move(g);
  return p;
}

bool ContextApplies(const Doc& doc, const YAML::Node& match, const std::string& f, Sink& sink) {
  const YAML::Node ctx = Child(match, "context");
  if (!Present(ctx)) return true;
  const std::string c = ctx.IsScalar() ? ctx.Scalar() : "";
  if (c == "SIDECAR_INBOUND" || c == "ANY") return true;
  sink.Add(doc, ctx, fmt::format("{}.match.context: {} does not apply to a waypoint "
                                 "(SIDECAR_INBOUND or ANY); patch ignored", f, c));
  return false;
}

}  // namespace

void CompileEnvoyFilters(std::span<const config::ResourceConfig> resources,
                         const mesh::Snapshot& snap, const mesh::Workload* self,
                         RouteConfig* out, Sink& sink) {
  std::vector<std::pair<Doc, RateLimitPolicy>> policies;
  std::vector<std::vector<DescriptorAction>> vhost_rules;
  std::set<std::string> seen;
  for (const config::ResourceConfig& rc : resources) {
    if (rc.kind != "EnvoyFilter") continue;
    if (!rc.api_version.starts_with("networking.istio.io/")) {
      sink.AddRaw(rc, fmt::format("apiVersion '{}' is not networking.istio.io; not applied",
                                  rc.api_version));
      continue;
    }
    std::optional<Doc> doc = LoadDoc(rc, sink);
    if (!doc) continue;
    if (!seen.insert(doc->Key()).second) {
      sink.Add(*doc, "duplicate definition (same kind, namespace and name); this one is ignored");
      continue;
    }
    ReportUnknownKeys(*doc, doc->spec, "spec",
                      {"workloadSelector", "targetRefs", "configPatches", "priority"}, sink,
                      "not supported; ignored");
    std::vector<std::string> services;
    if (!BindsWaypoint(*doc, snap, self, true, sink, &services)) continue;
    const YAML::Node patches = Child(doc->spec, "configPatches");
    if (!patches.IsSequence()) {
      sink.Add(*doc, patches, "configPatches: expected a list; resource not applied");
      continue;
    }
    for (size_t i = 0; i < patches.size(); ++i) {
      const std::string f = Field("configPatches", i);
      const YAML::Node cp = patches[i];
      auto apply = Scalar(*doc, Child(cp, "applyTo"), Field(f, "applyTo"), sink);
      if (!apply) continue;
      const YAML::Node match = Child(cp, "match"), patch = Child(cp, "patch");
      if (!ContextApplies(*doc, match, f, sink)) continue;
      const YAML::Node value = Child(patch, "value");
      const std::string vf = Field(f, "patch.value");
      if (*apply == "VIRTUAL_HOST") {
        const YAML::Node rl = Child(value, "rate_limits");
        if (!rl.IsSequence()) {
          sink.Add(*doc, value, fmt::format("{}.rate_limits: only rate_limits is applied to "
                                            "the waypoint's virtual hosts; patch ignored", vf));
          continue;
        }
        ReportUnknownKeys(*doc, value, vf, {"rate_limits"}, sink, "not supported; ignored");
        for (size_t j = 0; j < rl.size(); ++j) {
          if (auto a = CompileRateLimitActions(*doc, rl[j], Field(Field(vf, "rate_limits"), j),
                                               sink)) {
            vhost_rules.push_back(std::move(*a));
          }
        }
        continue;
      }
      if (*apply != "HTTP_FILTER") {
        sink.Add(*doc, Child(cp, "applyTo"),
                 fmt::format("{}.applyTo: {} is not supported (HTTP_FILTER with a rate limit "
                             "filter, VIRTUAL_HOST with rate_limits); patch ignored", f, *apply));
        continue;
      }
      const YAML::Node op = Child(patch, "operation");
      const std::string ops = op.IsScalar() ? op.Scalar() : "";
      if (ops != "INSERT_BEFORE" && ops != "INSERT_FIRST" && ops != "INSERT_AFTER" &&
          ops != "ADD") {
        sink.Add(*doc, op, fmt::format("{}.patch.operation: '{}' is not supported for a rate "
                                       "limit filter (INSERT_BEFORE/FIRST/AFTER, ADD); patch "
                                       "ignored", f, ops));
        continue;
      }
      auto name = Scalar(*doc, Child(value, "name"), Field(vf, "name"), sink);
      if (!name) continue;
      if (*name != kLocalFilter && *name != kGlobalFilter) {
        sink.Add(*doc, Child(value, "name"),
                 fmt::format("{}.name: filter '{}' is not supported by the waypoint; patch "
                             "ignored", vf, *name));
        continue;
      }
      std::string type, inner_field;
      YAML::Node inner;
      if (!Unwrap(*doc, Child(value, "typed_config"), Field(vf, "typed_config"), sink, &type,
                  &inner, &inner_field)) {
        continue;
      }
      const std::string_view want = *name == kLocalFilter ? kLocalType : kGlobalType;
      if (type != want) {
        sink.Invalid(*doc, Child(value, "typed_config"),
                     fmt::format("{}.typed_config: type '{}' does not match filter {} ({})", vf,
                                 type, *name, want));
        continue;
      }
      std::optional<RateLimitPolicy> p = *name == kLocalFilter
                                             ? LocalRateLimit(*doc, inner, inner_field, sink)
                                             : GlobalRateLimitFilter(*doc, inner, inner_field, sink);
      if (!p) continue;
      p->name = fmt::format("EnvoyFilter {} {}", doc->Key(), f);
      p->source = sink.Location(*doc, cp);
      p->services = services;
      policies.emplace_back(*doc, std::move(*p));
    }
  }
  // The route actions are the virtual host's: every rate limit filter of
  // the waypoint sees the descriptors they make (stage 0).
  for (auto& [doc, p] : policies) {
    for (const auto& r : vhost_rules) p.rules.push_back(r);
    if (p.global && p.rules.empty()) {
      sink.Add(doc, fmt::format("{}: no VIRTUAL_HOST rate_limits make a descriptor, so the "
                              "RateLimitService is never asked", p.name));
    }
    out->rate_limits.push_back(std::move(p));
  }
}

}  // namespace ambit::waypoint::route::internal
