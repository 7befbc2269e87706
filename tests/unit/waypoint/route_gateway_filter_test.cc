// HTTPRoute / GRPCRoute → routes: backends, weights, ReferenceGrants,
// filters, GRPCRoute method matching (compile_gateway*.cc).
#include "route_gateway_fixture.h"

using namespace gwtest;  // NOLINT

namespace {

constexpr std::string_view kHead = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: f, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
)";

Result CompileRules(std::string_view rules, std::string_view extra = {}) {
  return Compile(std::string(kHead) + std::string(rules) + std::string(extra));
}

// The single route of the table (the test's rules produce one), or fail.
const Route& Only(const Result& r) {
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE_MESSAGE(t->routes.size() == 1, r.All());
  return t->routes[0];
}

std::vector<std::string> Messages(const Result& r) {
  std::vector<std::string> out;
  for (const Finding& f : r.findings) out.push_back(f.location + ": " + f.message);
  return out;
}

}  // namespace

TEST_CASE("backendRefs: weights (default 1, 0 kept), clusters registered") {
  Result r = CompileRules(R"(  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 70}
    - {name: reviews-v2, port: 9080, weight: 30}
    - {name: reviews-v3, port: 9080, weight: 0}
    - {name: shadow, port: 9080}
)");
  const Route& route = Only(r);
  CHECK(route.action == Route::Action::kForward);
  REQUIRE(route.clusters.size() == 4);
  CHECK(route.clusters[0].cluster.name == Cluster("reviews-v1", 9080));
  CHECK(route.clusters[0].cluster.service == "demo/reviews-v1.demo.svc.cluster.local");
  CHECK(route.clusters[0].cluster.port == 9080);
  CHECK(route.clusters[0].weight == 70);
  CHECK(route.clusters[1].weight == 30);
  CHECK(route.clusters[2].weight == 0);
  CHECK(route.clusters[3].weight == 1);
  CHECK(route.total_weight == 101);
  for (const WeightedCluster& c : route.clusters) {
    CHECK_FALSE(c.unresolved);
    CHECK(r.cfg.clusters.contains(c.cluster.name));
  }
  CHECK(r.cfg.clusters.at(Cluster("reviews-v2", 9080)).ref.service ==
        "demo/reviews-v2.demo.svc.cluster.local");
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("unresolvable backends answer 500; no backendRefs answers 500") {
  Result r = CompileRules(R"(  - backendRefs:
    - {name: reviews-v1}
    - {name: nope, port: 9080}
    - {name: reviews-v1, port: 81}
    - {group: multicluster.x-k8s.io, kind: ServiceImport, name: reviews-v1, port: 9080}
    - {name: ratings, namespace: other, port: 80}
    - {name: reviews-v1, port: 9080}
  - matches: [{path: {value: /none}}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE(t->routes.size() == 2);
  const Route& none = t->routes[0];  // /none is the longer prefix
  CHECK(none.action == Route::Action::kDirectResponse);
  CHECK(none.direct_response->status == 500);
  const Route& split = t->routes[1];
  CHECK(split.action == Route::Action::kForward);
  CHECK(split.unresolved_status == 500);
  REQUIRE(split.clusters.size() == 6);
  for (size_t i = 0; i < 5; ++i) CHECK_MESSAGE(split.clusters[i].unresolved, i);
  CHECK_FALSE(split.clusters[5].unresolved);
  CHECK(split.clusters[4].cluster.service == "other/ratings");
  CHECK(split.total_weight == 6);  // unresolved shares still count: they answer 500
  const std::string b = "spec.rules[0].backendRefs";
  CHECK(Messages(r) ==
        std::vector<std::string>{
            r.At("{name: reviews-v1}") + ": " + b +
                "[0].port: required for a Service backend; requests to it are answered 500",
            r.At("name: nope") + ": " + b +
                "[1]: Service demo/nope not found; requests to it are answered 500",
            r.At("port: 81") + ": " + b +
                "[2].port: 81 is not a port of Service demo/reviews-v1; requests to it are "
                "answered 500",
            r.At("ServiceImport") + ": " + b +
                "[3]: backend kind 'multicluster.x-k8s.io/ServiceImport' is not supported (only "
                "Service); requests to it are answered 500",
            r.At("namespace: other") + ": " + b +
                "[4]: Service other/ratings is in another namespace and no ReferenceGrant in "
                "'other' allows HTTPRoute from 'demo'; requests to it are answered 500",
        });
}

TEST_CASE("ReferenceGrant: the right from/to allows a cross-namespace backend, others do not") {
  const std::string rules = R"(  - backendRefs: [{name: ratings, namespace: other, port: 80}]
)";
  auto grant = [](std::string_view from_kind, std::string_view from_ns, std::string_view to) {
    return "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
           "metadata: {name: g, namespace: other}\nspec:\n  from: [{group: "
           "gateway.networking.k8s.io, kind: " +
           std::string(from_kind) + ", namespace: " + std::string(from_ns) + "}]\n  to: [" +
           std::string(to) + "]\n";
  };
  struct Row {
    std::string grant;
    bool allowed;
  };
  const Row rows[] = {
      {"", false},
      {grant("HTTPRoute", "demo", "{group: \"\", kind: Service}"), true},
      {grant("HTTPRoute", "demo", "{group: \"\", kind: Service, name: ratings}"), true},
      {grant("HTTPRoute", "demo", "{group: \"\", kind: Service, name: other-svc}"), false},
      {grant("GRPCRoute", "demo", "{group: \"\", kind: Service}"), false},
      {grant("HTTPRoute", "elsewhere", "{group: \"\", kind: Service}"), false},
      {grant("HTTPRoute", "demo", "{group: \"\", kind: Secret}"), false},
  };
  for (const Row& row : rows) {
    Result r = CompileRules(rules, row.grant);
    const Route& route = Only(r);
    REQUIRE(route.clusters.size() == 1);
    CHECK_MESSAGE(route.clusters[0].unresolved == !row.allowed, row.grant);
    CHECK_MESSAGE(r.findings.size() == (row.allowed ? 0u : 1u), r.All());
  }
  // A grant in the route's namespace grants nothing for "other".
  Result wrong_ns = CompileRules(
      rules,
      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: {name: g, "
      "namespace: demo}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, "
      "namespace: demo}]\n  to: [{group: \"\", kind: Service}]\n");
  CHECK(Only(wrong_ns).clusters[0].unresolved);
  Result bad = CompileRules(rules,
                            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\n"
                            "metadata: {name: g, namespace: other}\nspec:\n  to: [{kind: Service}]\n");
  CHECK(Only(bad).clusters[0].unresolved);
  CHECK(bad.Find("ReferenceGrant other/g: spec.from: a non-empty list is required; grant not "
                 "applied") != nullptr);
}

TEST_CASE("header modifiers: set/add/remove with names lower-cased, on rules and backends") {
  Result r = CompileRules(R"(  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: a}]
        add: [{name: X-Add, value: b}, {name: X-Empty, value: ""}]
        remove: [X-Gone]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Resp, value: c}]
    backendRefs:
    - name: reviews-v1
      port: 9080
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {add: [{name: X-Backend, value: v1}]}
      - type: ResponseHeaderModifier
        responseHeaderModifier: {remove: [Server]}
)");
  const Route& route = Only(r);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  CHECK(route.request_headers.set == Pairs{{"x-set", "a"}});
  CHECK(route.request_headers.add == Pairs{{"x-add", "b"}, {"x-empty", ""}});
  CHECK(route.request_headers.remove == std::vector<std::string>{"x-gone"});
  CHECK(route.response_headers.set == Pairs{{"x-resp", "c"}});
  REQUIRE(route.clusters.size() == 1);
  CHECK(route.clusters[0].request_headers.add == Pairs{{"x-backend", "v1"}});
  CHECK(route.clusters[0].response_headers.remove == std::vector<std::string>{"server"});
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("RequestRedirect: every field, default 302, Gateway port rules") {
  Result r = CompileRules(R"(  - matches: [{path: {value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: example.com
        port: 8443
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        statusCode: 301
  - matches: [{path: {type: Exact, value: /plain}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /full}}
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE(t->routes.size() == 2);
  const Route& plain = t->routes[0];  // Exact first
  REQUIRE(plain.redirect.has_value());
  CHECK(plain.action == Route::Action::kRedirect);
  CHECK(plain.redirect->status == 302);
  CHECK(plain.redirect->gateway_port_rules);
  CHECK_FALSE(plain.redirect->scheme.has_value());
  CHECK(plain.redirect->path.kind == PathRewrite::Kind::kFull);
  CHECK(plain.redirect->path.value == "/full");
  const Route& full = t->routes[1];
  REQUIRE(full.redirect.has_value());
  CHECK(full.redirect->status == 301);
  CHECK(full.redirect->scheme == std::optional<std::string>("https"));
  CHECK(full.redirect->authority == std::optional<std::string>("example.com"));
  CHECK(full.redirect->port == std::optional<uint16_t>(8443));
  CHECK(full.redirect->path.kind == PathRewrite::Kind::kReplacePrefixMatch);
  CHECK(full.redirect->path.value == "/new");
  CHECK(full.clusters.empty());
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("URLRewrite: hostname, ReplaceFullPath, ReplacePrefixMatch (incl. empty)") {
  Result r = CompileRules(R"(  - matches: [{path: {value: /strip}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: backend.internal
        path: {type: ReplacePrefixMatch, replacePrefixMatch: ""}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: Exact, value: /full}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /other}}
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE(t->routes.size() == 2);
  CHECK(t->routes[0].rewrite.kind == PathRewrite::Kind::kFull);
  CHECK(t->routes[0].rewrite.value == "/other");
  CHECK_FALSE(t->routes[0].authority_rewrite.has_value());
  CHECK(t->routes[1].rewrite.kind == PathRewrite::Kind::kReplacePrefixMatch);
  CHECK(t->routes[1].rewrite.value == "");
  CHECK(t->routes[1].authority_rewrite == std::optional<std::string>("backend.internal"));
  CHECK(t->routes[1].action == Route::Action::kForward);
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("RequestMirror: percent, fraction, default 100%, unresolved mirror skipped") {
  Result r = CompileRules(R"(  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, percent: 42}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, fraction: {numerator: 1, denominator: 3}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, fraction: {numerator: 5}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: ghost, port: 9080}}
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const Route& route = Only(r);
  REQUIRE(route.mirrors.size() == 5);
  CHECK(route.mirrors[0].per_million == 420'000);
  CHECK(route.mirrors[1].per_million == 333'333);
  CHECK(route.mirrors[2].per_million == 50'000);
  CHECK(route.mirrors[3].per_million == 1'000'000);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(route.mirrors[i].cluster.name == Cluster("shadow", 9080));
    CHECK_FALSE(route.mirrors[i].unresolved);
  }
  CHECK(route.mirrors[4].unresolved);
  CHECK(Messages(r) == std::vector<std::string>{
                           r.At("name: ghost") +
                           ": spec.rules[0].filters[4].requestMirror.backendRef: Service "
                           "demo/ghost not found; the mirror is skipped"});
}

TEST_CASE("filters that cannot be applied fail closed (500); invalid combinations drop the rule") {
  Result r = CompileRules(R"(  - name: ext
    matches: [{path: {value: /ext}}]
    filters:
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Thing, name: t}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: unknown
    matches: [{path: {value: /unknown}}]
    filters: [{type: Teleport}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: rewrite-and-redirect
    filters:
    - {type: URLRewrite, urlRewrite: {hostname: a.b}}
    - {type: RequestRedirect, requestRedirect: {hostname: c.d}}
  - name: two-redirects
    filters:
    - {type: RequestRedirect, requestRedirect: {hostname: c.d}}
    - {type: RequestRedirect, requestRedirect: {hostname: e.f}}
  - name: redirect-and-backends
    filters:
    - {type: RequestRedirect, requestRedirect: {hostname: c.d}}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: prefix-on-exact
    matches: [{path: {type: Exact, value: /e}}]
    filters:
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: bad-status
    filters:
    - {type: RequestRedirect, requestRedirect: {statusCode: 404}}
  - name: wrong-body
    filters:
    - {type: RequestHeaderModifier, urlRewrite: {hostname: a.b}}
  - name: both-fractions
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 9080}, percent: 1, fraction: {numerator: 1}}}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: repeated-headers
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: "1"}]}}
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: b, value: "1"}]}}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: two-actions
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: A, value: "1"}], remove: [a]}}
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(Names(*t) == std::vector<std::string>{"HTTPRoute demo/f unknown match[0]",
                                              "HTTPRoute demo/f ext match[0]"});
  for (const Route& route : t->routes) {
    CHECK(route.action == Route::Action::kDirectResponse);
    CHECK(route.direct_response->status == 500);
  }
  const std::string f = "spec.rules[";
  CHECK(Messages(r) ==
        std::vector<std::string>{
            r.At("type: ExtensionRef") + ": " + f +
                "0].filters[0].type: ExtensionRef filter is not supported yet; requests matching "
                "this rule are answered 500",
            r.At("Teleport") + ": " + f +
                "1].filters[0].type: Teleport filter is not supported; requests matching this "
                "rule are answered 500",
            r.At("{type: RequestRedirect, requestRedirect: {hostname: c.d}}") + ": " + f +
                "2].filters[1]: RequestRedirect and URLRewrite cannot be combined in one rule; "
                "rule dropped",
            r.At("{type: RequestRedirect, requestRedirect: {hostname: e.f}}") + ": " + f +
                "3].filters[1]: RequestRedirect filter cannot be repeated; rule dropped",
            r.At("    backendRefs: [{name: reviews-v1, port: 9080}]\n  - name: prefix-on-exact") +
                ": " + f +
                "4].backendRefs: RequestRedirect cannot be used together with backendRefs; rule "
                "dropped",
            r.At("    - {type: URLRewrite, urlRewrite: {path:") + ": " + f +
                "5].filters: ReplacePrefixMatch needs exactly one PathPrefix match in the rule; "
                "rule dropped",
            r.At("404") + ": " + f +
                "6].filters[0].requestRedirect.statusCode: 404 is not 301, 302, 303, 307 or 308; "
                "rule dropped",
            r.At("urlRewrite: {hostname: a.b}}\n  - name: both") + ": " + f +
                "7].filters[0].urlRewrite: must not be set for a RequestHeaderModifier filter; "
                "rule dropped",
            r.At("percent: 1, fraction") + ": " + f +
                "8].filters[0].requestMirror: only one of percent or fraction may be set; rule "
                "dropped",
            r.At("{name: b, value") + ": " + f +
                "9].filters[1]: RequestHeaderModifier filter cannot be repeated; rule dropped",
            r.At("remove: [a]") + ": " + f +
                "10].filters[0].requestHeaderModifier.remove[0]: header 'a' has more than one "
                "action in this filter; rule dropped",
        });
}

TEST_CASE("GRPCRoute: method matches become path conditions; precedence by service, method, "
          "headers") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - name: any
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: method-only
    matches: [{method: {method: SayHello}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: service
    matches: [{method: {service: helloworld.Greeter}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: exact
    matches:
    - method: {service: helloworld.Greeter, method: SayHello}
    - method: {service: helloworld.Greeter, method: SayHello}
      headers: [{name: X-Canary, value: "true"}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-g, value: "1"}]}}
    backendRefs: [{name: reviews-v2, port: 9080}]
  - name: regex
    matches: [{method: {type: RegularExpression, service: "helloworld\\..*", method: "Say.*"}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: bad
    matches: [{method: {service: "a/b", method: X}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: redirect
    filters: [{type: RequestRedirect, requestRedirect: {hostname: x}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("greeter", 9090);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(t->kind == RouteTable::Kind::kGrpcRoute);
  // Exact service "helloworld.Greeter" (18 characters) beats the regex's 14
  // pattern characters; then method characters, then header count.
  CHECK(Names(*t) == std::vector<std::string>{
                         "GRPCRoute demo/g exact match[1]",
                         "GRPCRoute demo/g exact match[0]",
                         "GRPCRoute demo/g service match[0]",
                         "GRPCRoute demo/g regex match[0]",
                         "GRPCRoute demo/g method-only match[0]",
                         "GRPCRoute demo/g any match[0]",
                         "GRPCRoute demo/g redirect match[0]",
                     });
  for (const Route& route : t->routes) CHECK(route.grpc);
  const RouteMatch& exact = t->routes[0].matches[0];
  CHECK(exact.path.kind == PathMatcher::Kind::kExact);
  CHECK(exact.path.value == "/helloworld.Greeter/SayHello");
  REQUIRE(exact.headers.size() == 1);
  CHECK(exact.headers[0].name == "x-canary");
  CHECK(t->routes[0].request_headers.set.size() == 1);
  const PathMatcher& svc = t->routes[2].matches[0].path;
  CHECK(svc.kind == PathMatcher::Kind::kPrefix);
  CHECK(svc.value == "/helloworld.Greeter/");
  const PathMatcher& re = t->routes[3].matches[0].path;
  CHECK(re.kind == PathMatcher::Kind::kRegex);
  REQUIRE(re.regex != nullptr);
  CHECK(RE2::FullMatch("/helloworld.Greeter/SayHi", *re.regex));
  CHECK_FALSE(RE2::FullMatch("/other.Greeter/SayHi", *re.regex));
  CHECK_FALSE(RE2::FullMatch("/helloworld.Greeter/Hello", *re.regex));
  const PathMatcher& m = t->routes[4].matches[0].path;
  CHECK(m.kind == PathMatcher::Kind::kRegex);
  REQUIRE(m.regex != nullptr);
  CHECK(RE2::FullMatch("/a.B/SayHello", *m.regex));
  CHECK_FALSE(RE2::FullMatch("/a/b/SayHello", *m.regex));
  CHECK(t->routes[5].matches[0].path.kind == PathMatcher::Kind::kAny);
  // RequestRedirect is not a GRPCRoute filter: fail closed.
  CHECK(t->routes[6].action == Route::Action::kDirectResponse);
  CHECK(Messages(r) ==
        std::vector<std::string>{
            r.At("service: \"a/b\"") +
                ": spec.rules[5].matches[0].method: 'a/b'/'X' is not a valid gRPC service/method "
                "name; rule dropped",
            r.At("type: RequestRedirect") +
                ": spec.rules[6].filters[0].type: RequestRedirect filter is not supported yet; "
                "requests matching this rule are answered 500",
        });
}

TEST_CASE("an HTTPRoute and a GRPCRoute on one port are not merged: the older one wins") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: h, namespace: demo, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: GRPCRoute
metadata: {name: g, namespace: demo, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
)");
  const RouteTable* t = r.Table("greeter", 9090);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(t->kind == RouteTable::Kind::kGrpcRoute);
  CHECK(t->bound == std::vector<std::string>{"GRPCRoute demo/g"});
  CHECK(Names(*t) == std::vector<std::string>{"GRPCRoute demo/g rule[0] match[0]"});
  CHECK(Messages(r) ==
        std::vector<std::string>{
            r.At("  parentRefs: [{group: \"\", kind: Service, name: greeter}]") +
            ": spec.parentRefs: demo/greeter.demo.svc.cluster.local port 9090 is also bound by "
            "GRPCRoute demo/g, which is older (or first by name); HTTPRoute and GRPCRoute are not "
            "merged on one port (Gateway API), so this route is not applied there"});
}
