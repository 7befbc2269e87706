// Rate limits: token bucket refill math on an injected clock, per-value
// bucket bounds, descriptor extraction, local decisions, and the compilers
// (RateLimitPolicy, EnvoyFilter local_ratelimit / ratelimit shapes, bad input).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/proxy/ratelimit_filter.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_util.h"

namespace {

using namespace ambit::waypoint;         // NOLINT: test-local
using namespace ambit::waypoint::route;  // NOLINT: test-local
using std::chrono::milliseconds;
using std::chrono::seconds;

const ambit::base::MonoTime kT0 = ambit::base::MonoTime(std::chrono::hours(1));

TokenBucketSpec Spec(uint32_t max, uint32_t per_fill, milliseconds every) {
  return TokenBucketSpec{max, per_fill, every};
}

// Header lookup over a plain map (lower-case names).
struct MapHeaders final : RequestView::Headers {
  std::multimap<std::string, std::string> h;
  void Values(std::string_view name, std::vector<std::string_view>* out) const override {
    auto [a, b] = h.equal_range(std::string(name));
    for (auto it = a; it != b; ++it) out->push_back(it->second);
  }
};

struct Compiled {
  RouteConfig cfg;
  std::vector<Finding> findings;
  std::string All() const {
    std::string s;
    for (const auto& f : findings) s += f.ToString() + (f.invalid ? " [invalid]\n" : "\n");
    return s;
  }
  const Finding* Find(std::string_view needle) const {
    for (const auto& f : findings) {
      if (f.ToString().find(needle) != std::string::npos) return &f;
    }
    return nullptr;
  }
};

constexpr std::string_view kServices = R"(services:
- {name: reviews, namespace: demo, hostname: reviews.demo.svc.cluster.local, vips: ["/10.96.0.1"], ports: {"9080": 9080}}
workloads:
- uid: cluster1//Pod/demo/waypoint
  name: waypoint-abc
  namespace: demo
  workloadIps: ["10.0.0.9"]
  labels: {"gateway.networking.k8s.io/gateway-name": waypoint}
)";

Compiled CompileYaml(std::string_view docs, bool with_self = true) {
  Compiled c;
  const std::string text = std::string(docs) + "\n---\n" + std::string(kServices);
  auto lc = ambit::config::ParseLocalConfig(text, "rl.yaml");
  REQUIRE_MESSAGE(lc.ok(), lc.status().ToString());
  ambit::mesh::WorkloadStore store;
  REQUIRE(ambit::mesh::ApplyLocalConfig(*lc, &store).ok());
  auto snap = store.Build();
  const ambit::mesh::Workload* self = snap->FindWorkload("cluster1//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  internal::Sink sink(&c.findings);
  internal::CompileRateLimits(lc->resources, *snap, with_self ? self : nullptr, &c.cfg, sink);
  return c;
}

}  // namespace

TEST_CASE("token bucket: starts full, refills in whole intervals, never above max") {
  TokenBucket b(Spec(5, 5, milliseconds(500)), kT0);
  for (int i = 0; i < 5; ++i) CHECK(b.Consume(kT0).allowed);
  auto r = b.Consume(kT0);
  CHECK_FALSE(r.allowed);
  CHECK(r.remaining == 0);
  CHECK(r.reset == milliseconds(500));
  CHECK_FALSE(b.Consume(kT0 + milliseconds(499)).allowed);  // not a whole interval yet
  r = b.Consume(kT0 + milliseconds(500));
  CHECK(r.allowed);
  CHECK(r.remaining == 4);
  // Ten seconds idle: capped at max_tokens, not 100.
  CHECK(b.Peek(kT0 + seconds(10)).remaining == 5);
  // Fill steps keep their phase: at 10.2 s the next fill is at 10.5 s.
  CHECK(b.Consume(kT0 + milliseconds(10'200)).reset == milliseconds(300));
}

TEST_CASE("token bucket: a 10 rps bucket admits 100 +- 10 over 10 s of 30 rps") {
  TokenBucket b(Spec(5, 5, milliseconds(500)), kT0);
  int ok = 0;
  for (int i = 0; i < 300; ++i) ok += b.Consume(kT0 + milliseconds(i * 1000 / 30)).allowed;
  CHECK(ok >= 90);
  CHECK(ok <= 110);
}

TEST_CASE("bucket map: one bucket per key, bounded, evictions counted") {
  BucketMap m(Spec(1, 1, milliseconds(1000)), 16);  // one per shard
  auto a = m.Get("alice", kT0);
  CHECK(m.Get("alice", kT0) == a);
  CHECK(a->Consume(kT0).allowed);
  CHECK_FALSE(m.Get("alice", kT0)->Consume(kT0).allowed);
  CHECK(m.Get("bob", kT0)->Consume(kT0).allowed);  // others unaffected
  for (int i = 0; i < 200; ++i) m.Get("k" + std::to_string(i), kT0);
  CHECK(m.size() <= 16);
  CHECK(m.evictions() > 0);
}

TEST_CASE("descriptors: request_headers, skip_if_absent, remote_address, generic_key, "
          "header_value_match, principal, route") {
  MapHeaders h;
  h.h.emplace("x-api-key", "k1");
  h.h.emplace("x-tier", "gold");
  using K = DescriptorAction::Kind;
  std::vector<std::vector<DescriptorAction>> rules = {
      {{.kind = K::kRequestHeader, .header = "x-api-key", .key = "api_key"}},
      {{.kind = K::kRequestHeader, .header = "x-missing", .key = "m"}},  // makes none
      {{.kind = K::kGenericKey, .key = "generic_key", .value = "all"},
       {.kind = K::kRequestHeader, .header = "x-missing", .key = "m", .skip_if_absent = true}},
      {{.kind = K::kRemoteAddress, .key = "remote_address"}},
      {{.kind = K::kHeaderValueMatch, .key = "header_match", .value = "gold",
        .match_headers = {{"x-tier", "gold"}}}},
      {{.kind = K::kHeaderValueMatch, .key = "header_match", .value = "not-gold",
        .match_headers = {{"x-tier", "gold"}}, .expect_match = false}},  // makes none
      {{.kind = K::kSourcePrincipal, .key = "source_principal"}},
      {{.kind = K::kRouteName, .key = "route"}},
  };
  const DescriptorInput in{.headers = &h, .remote_address = "10.0.0.7",
                           .principal = "spiffe://cluster.local/ns/demo/sa/client",
                           .route_name = ""};
  auto ds = MakeDescriptors(rules, in);
  REQUIRE(ds.size() == 6);
  CHECK(ds[0] == Descriptor{{"api_key", "k1"}});
  CHECK(ds[1] == Descriptor{{"generic_key", "all"}});
  CHECK(ds[2] == Descriptor{{"remote_address", "10.0.0.7"}});
  CHECK(ds[3] == Descriptor{{"header_match", "gold"}});
  CHECK(ds[4] == Descriptor{{"source_principal", "spiffe://cluster.local/ns/demo/sa/client"}});
  CHECK(ds[5] == Descriptor{{"route", "default"}});
  const DescriptorInput anon{.headers = &h};
  CHECK(MakeDescriptors({rules[6]}, anon).empty());  // no peer identity: no descriptor
}

TEST_CASE("local decision: per-value buckets, exact values, default bucket") {
  RateLimitPolicy p;
  p.name = "p";
  p.descriptors.push_back({{{"api_key", ""}}, Spec(2, 2, milliseconds(1000))});
  p.descriptors.push_back({{{"api_key", "vip"}}, Spec(5, 5, milliseconds(1000))});
  p.bucket = Spec(100, 100, milliseconds(1000));
  p.always_consume_default = false;
  RateLimiter l(p, kT0, nullptr, nullptr);
  auto key = [](std::string v) { return std::vector<Descriptor>{{{"api_key", v}}}; };
  CHECK_FALSE(l.CheckLocal(key("a"), kT0).limited);
  CHECK_FALSE(l.CheckLocal(key("a"), kT0).limited);
  auto d = l.CheckLocal(key("a"), kT0);
  CHECK(d.limited);
  CHECK(d.limit == 2);
  CHECK(d.shown.remaining == 0);
  CHECK_FALSE(l.CheckLocal(key("b"), kT0).limited);  // another value, its own bucket
  // "vip" matches both the wildcard and the exact entry: both buckets apply.
  CHECK_FALSE(l.CheckLocal(key("vip"), kT0).limited);
  CHECK_FALSE(l.CheckLocal(key("vip"), kT0).limited);
  CHECK(l.CheckLocal(key("vip"), kT0).limited);
  // No descriptor: the default bucket.
  auto none = l.CheckLocal({}, kT0);
  CHECK(none.checked);
  CHECK(none.limit == 100);
  // A carried-over limiter keeps its buckets.
  RateLimiter next(p, kT0, &l, nullptr);
  CHECK(next.CheckLocal(key("a"), kT0).limited);
}

TEST_CASE("compile: RateLimitPolicy local per header, targetRefs Service") {
  auto c = CompileYaml(R"(apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: demo}
spec:
  targetRefs: [{kind: Service, name: reviews}]
  descriptor: {header: X-Api-Key, key: api_key}
  tokenBucket: {maxTokens: 10, tokensPerFill: 10, fillInterval: 1s}
)");
  REQUIRE_MESSAGE(c.cfg.rate_limits.size() == 1, c.All());
  const RateLimitPolicy& p = c.cfg.rate_limits[0];
  CHECK(p.name == "RateLimitPolicy demo/api");
  CHECK(p.source == "rl.yaml:1");
  CHECK(p.services == std::vector<std::string>{"demo/reviews.demo.svc.cluster.local"});
  REQUIRE(p.rules.size() == 1);
  CHECK(p.rules[0][0].header == "x-api-key");
  CHECK(p.rules[0][0].key == "api_key");
  REQUIRE(p.descriptors.size() == 1);
  CHECK(p.descriptors[0].entries == Descriptor{{"api_key", ""}});
  CHECK(p.descriptors[0].bucket == Spec(10, 10, milliseconds(1000)));
  CHECK(p.x_ratelimit_headers);
  CHECK_FALSE(p.bucket.has_value());
  CHECK(c.findings.empty());
}

TEST_CASE("compile: RateLimitPolicy global with defaults; bad values are invalid") {
  auto c = CompileYaml(R"(apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: g, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  descriptor: {sourcePrincipal: {}}
  global: {domain: production, service: "rls.demo:8081"}
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bad, namespace: demo}
spec:
  tokenBucket: {maxTokens: -1, fillInterval: 1s}
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bad2, namespace: demo}
spec:
  tokenBucket: {maxTokens: 1, fillInterval: 10ms}
  surprise: true
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: other, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, name: another-waypoint}]
  tokenBucket: {maxTokens: 1, fillInterval: 1s}
)");
  REQUIRE_MESSAGE(c.cfg.rate_limits.size() == 1, c.All());
  const RateLimitPolicy& p = c.cfg.rate_limits[0];
  REQUIRE(p.global.has_value());
  CHECK(p.global->domain == "production");
  CHECK(p.global->timeout == milliseconds(20));
  CHECK_FALSE(p.global->failure_mode_deny);
  CHECK(p.rules[0][0].kind == DescriptorAction::Kind::kSourcePrincipal);
  CHECK_FALSE(p.Local());
  const Finding* neg = c.Find("spec.tokenBucket.maxTokens: -1 must be");
  REQUIRE_MESSAGE(neg != nullptr, c.All());
  CHECK(neg->invalid);
  CHECK(neg->location == "rl.yaml:13");
  const Finding* fill = c.Find("spec.tokenBucket.fillInterval: must be at least 50ms");
  REQUIRE_MESSAGE(fill != nullptr, c.All());
  CHECK(fill->invalid);
  CHECK(fill->location == "rl.yaml:19");
  const Finding* unknown = c.Find("spec.surprise: unknown field");
  REQUIRE_MESSAGE(unknown != nullptr, c.All());
  CHECK_FALSE(unknown->invalid);
  CHECK(c.Find("Gateway demo/another-waypoint is not this waypoint") != nullptr);
}

TEST_CASE("compile: EnvoyFilter local_ratelimit as Istio documents it (TypedStruct)") {
  auto c = CompileYaml(R"(apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: filter-local-ratelimit-svc, namespace: istio-system}
spec:
  workloadSelector:
    labels: {"gateway.networking.k8s.io/gateway-name": waypoint}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value:
            stat_prefix: http_local_rate_limiter
            token_bucket: {max_tokens: 4, tokens_per_fill: 4, fill_interval: 60s}
            filter_enabled:
              runtime_key: local_rate_limit_enabled
              default_value: {numerator: 100, denominator: HUNDRED}
            filter_enforced:
              runtime_key: local_rate_limit_enforced
              default_value: {numerator: 50, denominator: HUNDRED}
            response_headers_to_add:
            - append: false
              header: {key: x-local-rate-limit, value: 'true'}
            descriptors:
            - entries: [{key: api_key, value: gold}]
              token_bucket: {max_tokens: 100, tokens_per_fill: 100, fill_interval: {seconds: 1}}
  - applyTo: VIRTUAL_HOST
    match: {context: SIDECAR_INBOUND}
    patch:
      operation: MERGE
      value:
        rate_limits:
        - actions:
          - request_headers: {header_name: x-api-key, descriptor_key: api_key}
  - applyTo: CLUSTER
    patch: {operation: ADD, value: {name: x}}
)");
  REQUIRE_MESSAGE(c.cfg.rate_limits.size() == 1, c.All());
  const RateLimitPolicy& p = c.cfg.rate_limits[0];
  CHECK(p.stat_prefix == "http_local_rate_limiter");
  CHECK(p.bucket == Spec(4, 4, milliseconds(60'000)));
  CHECK(p.enabled_per_million == 1'000'000);
  CHECK(p.enforced_per_million == 500'000);
  CHECK(p.response_headers == std::vector<std::pair<std::string, std::string>>{
                                  {"x-local-rate-limit", "true"}});
  REQUIRE(p.descriptors.size() == 1);
  CHECK(p.descriptors[0].bucket.fill_interval == seconds(1));
  REQUIRE(p.rules.size() == 1);
  CHECK(p.rules[0][0].header == "x-api-key");
  CHECK(p.services.empty());
  CHECK_FALSE(p.x_ratelimit_headers);
  CHECK(c.Find("configPatches[2].applyTo: CLUSTER is not supported") != nullptr);
}

TEST_CASE("compile: EnvoyFilter direct @type, global ratelimit, wrong types and contexts") {
  auto c = CompileYaml(R"(apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: f, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefix: direct
          token_bucket: {max_tokens: 1, fill_interval: 1s}
          filter_enabled: {default_value: {numerator: 100}}
          filter_enforced: {default_value: {numerator: 100}}
          enable_x_ratelimit_headers: DRAFT_VERSION_03
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
          domain: production
          failure_mode_deny: true
          timeout: 0.25s
          rate_limit_service:
            grpc_service:
              envoy_grpc: {cluster_name: outbound|8081||ratelimit.default.svc.cluster.local}
            transport_api_version: V3
  - applyTo: HTTP_FILTER
    match: {context: SIDECAR_OUTBOUND}
    patch:
      operation: INSERT_BEFORE
      value: {name: envoy.filters.http.local_ratelimit}
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
          domain: x
)");
  REQUIRE_MESSAGE(c.cfg.rate_limits.size() == 2, c.All());
  const RateLimitPolicy& local = c.cfg.rate_limits[0];
  CHECK(local.stat_prefix == "direct");
  CHECK(local.x_ratelimit_headers);
  CHECK(local.bucket->tokens_per_fill == 1);
  const RateLimitPolicy& global = c.cfg.rate_limits[1];
  REQUIRE(global.global.has_value());
  CHECK(global.global->service == "ratelimit.default.svc.cluster.local:8081");
  CHECK(global.global->timeout == milliseconds(250));
  CHECK(global.global->failure_mode_deny);
  CHECK(c.Find("no VIRTUAL_HOST rate_limits make a descriptor") != nullptr);
  CHECK(c.Find("SIDECAR_OUTBOUND does not apply to a waypoint") != nullptr);
  const Finding* type = c.Find("does not match filter envoy.filters.http.local_ratelimit");
  REQUIRE_MESSAGE(type != nullptr, c.All());
  CHECK(type->invalid);
}

TEST_CASE("compile: EnvoyFilter bad token buckets and percentages are invalid") {
  auto c = CompileYaml(R"(apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: f, namespace: demo}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefix: a
          token_bucket: {max_tokens: 4, fill_interval: soon}
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefix: b
          token_bucket: {max_tokens: 4, fill_interval: 1s}
          filter_enabled: {default_value: {numerator: 100, denominator: PERCENT}}
)",
                       false);
  CHECK(c.cfg.rate_limits.empty());
  const Finding* fill = c.Find("fill_interval: 'soon' is not a duration");
  REQUIRE_MESSAGE(fill != nullptr, c.All());
  CHECK(fill->invalid);
  CHECK(fill->location == "rl.yaml:14");
  const Finding* den = c.Find("denominator: 'PERCENT'");
  REQUIRE_MESSAGE(den != nullptr, c.All());
  CHECK(den->invalid);
}

TEST_CASE("tools/examples/api-ratelimit-{local,global}.yaml compile without invalid values") {
  for (const char* name : {"api-ratelimit-local.yaml", "api-ratelimit-global.yaml"}) {
    std::ifstream in(std::string(AMBIT_SOURCE_ROOT "/tools/examples/") + name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    auto c = CompileYaml(text.str());
    CAPTURE(name);
    CHECK_MESSAGE(c.cfg.rate_limits.size() == 2, c.All());
    for (const auto& f : c.findings) CHECK_MESSAGE(!f.invalid, f.ToString());
  }
}
