// HTTPRoute / GRPCRoute → route tables: binding, matches, precedence and the
// findings for what cannot be applied (compile_gateway*.cc).
#include "route_gateway_fixture.h"

#include "waypoint/route/compile_gateway.h"

using namespace gwtest;  // NOLINT

TEST_CASE("a Service parentRef binds every HTTP port; port and sectionName narrow it") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all, namespace: demo}
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews}
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: one, namespace: demo}
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews-v1, port: 9080}
  - {group: core, kind: Service, name: reviews-v2, sectionName: nope}
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t9080 = r.Table("reviews", 9080);
  const RouteTable* t8080 = r.Table("reviews", 8080);
  REQUIRE(t9080 != nullptr);
  REQUIRE(t8080 != nullptr);
  CHECK(r.Table("reviews", 5432) == nullptr);  // declared TCP: no HTTP routing
  CHECK(t9080->kind == RouteTable::Kind::kHttpRoute);
  CHECK(t9080->service == "demo/reviews.demo.svc.cluster.local");
  CHECK(t9080->port == 9080);
  CHECK(t9080->bound == std::vector<std::string>{"HTTPRoute demo/all"});
  REQUIRE(r.Table("reviews-v1", 9080) != nullptr);
  CHECK(r.Table("reviews-v1", 9080)->bound == std::vector<std::string>{"HTTPRoute demo/one"});
  CHECK(r.Table("reviews-v2", 9080) == nullptr);
  const Finding* f = r.Find("sectionName");
  REQUIRE_MESSAGE(f != nullptr, r.All());
  CHECK(f->ToString() ==
        r.At("sectionName: nope") +
            ": HTTPRoute demo/one: spec.parentRefs[1].sectionName: Service demo/reviews-v2 has no "
            "port named 'nope'; not bound");
  CHECK_MESSAGE(r.findings.size() == 1, r.All());
}

TEST_CASE("parentRefs: Gateways are silent, other kinds, wrong groups, unknown services and TCP "
          "ports are findings") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: p, namespace: demo}
spec:
  parentRefs:
  - {name: ingress}
  - {kind: Service, name: reviews}
  - {group: "", kind: Service, name: missing}
  - {group: "", kind: ServiceEntry, name: se}
  - {group: "", kind: Service, name: reviews, port: 5432}
  - {group: "", kind: Service, name: reviews, port: 7777}
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
)");
  CHECK(r.cfg.tables.empty());
  const std::vector<std::string> want = {
      r.At("kind: Service, name: reviews}") +
          ": HTTPRoute demo/p: spec.parentRefs[1].group: a Service parent needs group \"\" "
          "(core), not 'gateway.networking.k8s.io' (the default); not bound",
      r.At("name: missing") + ": HTTPRoute demo/p: spec.parentRefs[2]: Service demo/missing not "
                              "found; not bound",
      r.At("ServiceEntry") + ": HTTPRoute demo/p: spec.parentRefs[3]: parent '/ServiceEntry' is "
                             "neither a Service (mesh) nor a Gateway; ignored",
      r.At("port: 5432") + ": HTTPRoute demo/p: spec.parentRefs[4]: Service demo/reviews has no "
                           "HTTP port 5432 (declared TCP/TLS); not bound",
      r.At("7777") + ": HTTPRoute demo/p: spec.parentRefs[5].port: 7777 is not a port of Service "
                     "demo/reviews; not bound",
  };
  std::vector<std::string> got;
  for (const Finding& f : r.findings) got.push_back(f.ToString());
  CHECK(got == want);
}

TEST_CASE("a parent Service in another namespace makes a consumer route for the route's namespace") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings, namespace: other}]
  hostnames: [ratings.example.com]
  useDefaultGateways: All
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.cfg.Find("other/ratings.other.svc.cluster.local", 80);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  std::vector<std::string> got;
  for (const Finding& f : r.findings) got.push_back(f.location + ": " + f.message);
  CHECK(got == std::vector<std::string>{
                   r.At("useDefaultGateways") + ": spec.useDefaultGateways: not supported; ignored",
                   r.At("hostnames") + ": spec.hostnames: not used for Service parents (binding "
                                       "is by destination service); ignored"});
  REQUIRE(t->routes.size() == 2);
  CHECK(t->routes[0].matches.at(0).source_namespace == std::optional<std::string>("demo"));
  // Other namespaces' clients keep the default route (the parent service itself).
  CHECK(t->routes[1].matches.empty());
  REQUIRE(t->routes[1].clusters.size() == 1);
  CHECK(t->routes[1].clusters[0].cluster.name ==
        "inbound-vip|80|http|ratings.other.svc.cluster.local");
}

TEST_CASE("matches: default PathPrefix /, trailing slash, Exact, regex, headers, query, method") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: m, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
  - matches:
    - path: {value: /v2/}
      headers:
      - {name: X-User, value: alice}
      - {name: x-user, value: bob}
      - {type: RegularExpression, name: X-Ver, value: "v[0-9]+"}
      queryParams:
      - {name: Debug, value: "1"}
      method: POST
    - path: {type: Exact, value: /exact}
    - path: {type: RegularExpression, value: "/b[io]t"}
    backendRefs: [{name: reviews-v2, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE(t->routes.size() == 4);
  // Precedence order: Exact, PathPrefix /v2 (longer), PathPrefix /, regex.
  CHECK(Names(*t) == std::vector<std::string>{"HTTPRoute demo/m rule[1] match[1]",
                                              "HTTPRoute demo/m rule[1] match[0]",
                                              "HTTPRoute demo/m rule[0] match[0]",
                                              "HTTPRoute demo/m rule[1] match[2]"});
  const RouteMatch& exact = t->routes[0].matches.at(0);
  CHECK(exact.path.kind == PathMatcher::Kind::kExact);
  CHECK(exact.path.value == "/exact");
  const RouteMatch& v2 = t->routes[1].matches.at(0);
  CHECK(v2.path.kind == PathMatcher::Kind::kPathPrefix);
  CHECK(v2.path.value == "/v2");
  REQUIRE(v2.headers.size() == 2);  // the repeated x-user is ignored
  CHECK(v2.headers[0].name == "x-user");
  CHECK(v2.headers[0].value.kind == StringMatcher::Kind::kExact);
  CHECK(v2.headers[0].value.value == "alice");
  CHECK(v2.headers[1].name == "x-ver");
  CHECK(v2.headers[1].value.kind == StringMatcher::Kind::kRegex);
  REQUIRE(v2.headers[1].value.regex != nullptr);
  CHECK(RE2::FullMatch("v12", *v2.headers[1].value.regex));
  REQUIRE(v2.query.size() == 1);
  CHECK(v2.query[0].name == "Debug");  // case kept
  REQUIRE(v2.method.has_value());
  CHECK(v2.method->value == "POST");
  const RouteMatch& def = t->routes[2].matches.at(0);
  CHECK(def.path.kind == PathMatcher::Kind::kPathPrefix);
  CHECK(def.path.value == "/");
  CHECK(def.headers.empty());
  const RouteMatch& re = t->routes[3].matches.at(0);
  CHECK(re.path.kind == PathMatcher::Kind::kRegex);
  REQUIRE(re.path.regex != nullptr);
  CHECK(RE2::FullMatch("/bot", *re.path.regex));
  CHECK_FALSE(RE2::FullMatch("/bite", *re.path.regex));
  for (const Route& route : t->routes) {
    CHECK(route.unresolved_status == 500);
    CHECK_FALSE(route.grpc);
  }
  CHECK(t->routes[2].source == r.At("- backendRefs: [{name: reviews-v1"));
  CHECK(t->routes[0].source == r.At("- matches:"));
  const Finding* dup = r.Find("x-user");
  REQUIRE_MESSAGE(dup != nullptr, r.All());
  CHECK(dup->location == r.At("{name: x-user"));
  CHECK(dup->message == "spec.rules[1].matches[0].headers[1]: header 'x-user' is already matched "
                        "by an earlier entry; ignored (only the first counts)");
  CHECK_MESSAGE(r.findings.size() == 1, r.All());
}

TEST_CASE("precedence: exact > longest prefix > method > header count > query count") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: p, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - name: regex
    matches: [{path: {type: RegularExpression, value: "/a/.*/long/regex/pattern"}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: query1
    matches: [{path: {value: /a}, queryParams: [{name: q, value: "1"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: headers1
    matches: [{path: {value: /a}, headers: [{name: h1, value: "1"}], queryParams: [{name: q, value: "1"}, {name: r, value: "2"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: headers2
    matches: [{path: {value: /a}, headers: [{name: h1, value: "1"}, {name: h2, value: "2"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: method
    matches: [{path: {value: /a}, method: GET}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: prefix-long
    matches: [{path: {value: /a/b}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: root
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: exact-short
    matches: [{path: {type: Exact, value: /z}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: plain
    matches: [{path: {value: /a}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(Names(*t) == std::vector<std::string>{
                         "HTTPRoute demo/p exact-short match[0]",
                         "HTTPRoute demo/p prefix-long match[0]",
                         "HTTPRoute demo/p method match[0]",
                         "HTTPRoute demo/p headers2 match[0]",
                         "HTTPRoute demo/p headers1 match[0]",
                         "HTTPRoute demo/p query1 match[0]",
                         "HTTPRoute demo/p plain match[0]",
                         "HTTPRoute demo/p root match[0]",
                         // The spec leaves regex to the implementation; as Istio, below prefixes.
                         "HTTPRoute demo/p regex match[0]",
                     });
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("precedence ties: oldest route, then ns/name, then rule order, then match order") {
  const char* kRoute = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: %s%s}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, namespace: demo, port: 9080}]
  rules:
  - matches: [{path: {value: /x}}, {path: {value: /y}}]
    backendRefs: [{name: reviews-v1, namespace: demo, port: 9080}]
  - matches: [{path: {value: /x}}]
    backendRefs: [{name: reviews-v1, namespace: demo, port: 9080}]
)";
  auto route = [&](const char* name, const char* ns, const char* ts) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, kRoute, name, ns, ts);
    return std::string(buf);
  };
  Result r = Compile(route("zeta", "demo", ", creationTimestamp: \"2024-01-01T00:00:00Z\"") +
                     "---\n" + route("alpha", "demo", "") + "---\n" +
                     route("beta", "demo", ", creationTimestamp: \"2024-01-01T00:00:00Z\"") +
                     "---\n" +
                     route("old", "demo", ", creationTimestamp: \"2023-12-31T23:00:00-02:00\""));
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  // old (2024-01-01T01:00Z) is younger than beta/zeta (00:00Z); beta and zeta tie on
  // age and sort by name; alpha has no timestamp and counts as the newest.
  CHECK(Names(*t) == std::vector<std::string>{
                         "HTTPRoute demo/beta rule[0] match[0]",
                         "HTTPRoute demo/beta rule[0] match[1]",
                         "HTTPRoute demo/beta rule[1] match[0]",
                         "HTTPRoute demo/zeta rule[0] match[0]",
                         "HTTPRoute demo/zeta rule[0] match[1]",
                         "HTTPRoute demo/zeta rule[1] match[0]",
                         "HTTPRoute demo/old rule[0] match[0]",
                         "HTTPRoute demo/old rule[0] match[1]",
                         "HTTPRoute demo/old rule[1] match[0]",
                         "HTTPRoute demo/alpha rule[0] match[0]",
                         "HTTPRoute demo/alpha rule[0] match[1]",
                         "HTTPRoute demo/alpha rule[1] match[0]",
                     });
  CHECK(t->bound == std::vector<std::string>{"HTTPRoute demo/alpha", "HTTPRoute demo/beta",
                                             "HTTPRoute demo/old", "HTTPRoute demo/zeta"});
  CHECK_MESSAGE(r.findings.empty(), r.All());
}

TEST_CASE("precedence across namespaces orders by ns/name") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: zz}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, namespace: demo, port: 9080}]
  rules: [{backendRefs: [{name: reviews-v1, namespace: demo, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: g, namespace: demo}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: zz}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: z, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(Names(*t) == std::vector<std::string>{"HTTPRoute demo/z rule[0] match[0]",
                                              "HTTPRoute zz/a rule[0] match[0]"});
  CHECK(t->routes[1].matches[0].source_namespace == std::optional<std::string>("zz"));
  CHECK_FALSE(t->routes[1].clusters.at(0).unresolved);  // granted
}

TEST_CASE("resource-level findings: apiVersion, duplicates, bad timestamp, no rules") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1alpha1
kind: HTTPRoute
metadata: {name: old-api, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews-v1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dup, namespace: demo, creationTimestamp: yesterday}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews-v2}]
  rules: [{backendRefs: [{name: reviews-v2, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dup, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews-v3}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: empty, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: shadow}]
)");
  CHECK(r.Table("reviews-v1", 9080) == nullptr);
  REQUIRE(r.Table("reviews-v2", 9080) != nullptr);
  CHECK(r.Table("reviews-v3", 9080) == nullptr);
  const RouteTable* empty = r.Table("shadow", 9080);
  REQUIRE(empty != nullptr);
  REQUIRE(empty->routes.size() == 1);
  CHECK(empty->routes[0].action == Route::Action::kDirectResponse);
  CHECK(empty->routes[0].direct_response->status == 500);
  const std::vector<std::string> want = {
      "r.yaml:1: HTTPRoute demo/old-api: apiVersion 'gateway.networking.k8s.io/v1alpha1' is not "
      "supported for HTTPRoute (use gateway.networking.k8s.io/v1, "
      "gateway.networking.k8s.io/v1beta1); resource not applied",
      r.At("creationTimestamp: yesterday") +
          ": HTTPRoute demo/dup: metadata.creationTimestamp: not an RFC 3339 time; taken as "
          "absent (newest)",
  };
  REQUIRE_MESSAGE(r.findings.size() == 4, r.All());
  CHECK(r.findings[0].ToString() == want[0]);
  CHECK(r.findings[1].ToString() == want[1]);
  CHECK(r.findings[2].message == "duplicate HTTPRoute demo/dup: this later one is ignored");
  CHECK(r.findings[2].location == "r.yaml:14");  // the resource's line
  CHECK(r.findings[3].ToString() ==
        r.At("  parentRefs: [{group: \"\", kind: Service, name: shadow}]") +
            ": HTTPRoute demo/empty: spec.rules: none; the Gateway API default (one rule, "
            "PathPrefix /, no backendRefs) answers every request 500");
}

TEST_CASE("invalid rules are dropped with a finding at the field; the rest applies") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/a(("}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: Prefix, value: /a}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {value: relative}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{method: FETCH}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{headers: [{name: x, type: Prefix, value: a}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{headers: [{name: x}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - backendRefs: [{name: reviews-v1, port: 9080, weight: 1000001}]
  - name: good
    backendRefs: [{name: reviews-v1, port: 9080}]
    timeouts: {request: 10s}
    retry: {attempts: 3}
    sessionPersistence: {type: Cookie}
    frobnicate: true
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(Names(*t) == std::vector<std::string>{"HTTPRoute demo/bad good match[0]"});
  std::vector<std::string> got;
  for (const Finding& f : r.findings) got.push_back(f.location + ": " + f.message);
  const std::vector<std::string> want = {
      r.At("\"/a((\"") + ": spec.rules[0].matches[0].path.value: invalid regex '/a((': missing ): /a((",
      r.At("type: Prefix, value: /a") +
          ": spec.rules[1].matches[0].path.type: 'Prefix' is not Exact, PathPrefix or "
          "RegularExpression; rule dropped",
      r.At("relative") + ": spec.rules[2].matches[0].path.value: 'relative' must be an absolute "
                         "path without '//'; rule dropped",
      r.At("FETCH") + ": spec.rules[3].matches[0].method: 'FETCH' is not one of GET, HEAD, POST, "
                      "PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; rule dropped",
      r.At("type: Prefix, value: a") + ": spec.rules[4].matches[0].headers[0].type: 'Prefix' is "
                                       "not Exact or RegularExpression; rule dropped",
      r.At("{name: x}") + ": spec.rules[5].matches[0].headers[0].value: required; rule dropped",
      r.At("1000001") + ": spec.rules[6].backendRefs[0].weight: '1000001' is not a number in "
                        "0..1000000; rule dropped",
      r.At("frobnicate") + ": spec.rules[7].frobnicate: not supported; ignored",
      r.At("sessionPersistence:") + ": spec.rules[7].sessionPersistence: not supported yet; ignored",
  };
  CHECK(got == want);
  CHECK(t->routes[0].timeout == std::chrono::seconds(10));
}

TEST_CASE("timeouts: the shorter of request and backendRequest; 0s is none; bad ones drop") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: t, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    timeouts: {request: 1m30s, backendRequest: 500ms}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /b}}]
    timeouts: {request: 0s}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /c}}]
    timeouts: {request: 1s, backendRequest: 2s}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /d}}]
    timeouts: {request: later}
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  REQUIRE(t->routes.size() == 2);
  CHECK(t->routes[0].timeout == std::chrono::milliseconds(500));
  CHECK(t->routes[1].timeout == std::chrono::nanoseconds(0));
  CHECK(r.Find("backendRequest: must not be longer than request") != nullptr);
  CHECK(r.Find("'later' is not a duration") != nullptr);
}

TEST_CASE("RFC 3339 creation timestamps") {
  using ambit::waypoint::route::internal::ParseRfc3339;
  CHECK(ParseRfc3339("1970-01-01T00:00:00Z") == std::make_pair(int64_t{0}, int32_t{0}));
  CHECK(ParseRfc3339("2024-01-02T03:04:05Z") == std::make_pair(int64_t{1704164645}, int32_t{0}));
  CHECK(ParseRfc3339("2024-01-02T03:04:05.25Z") ==
        std::make_pair(int64_t{1704164645}, int32_t{250'000'000}));
  CHECK(ParseRfc3339("2024-01-02T05:04:05+02:00") ==
        std::make_pair(int64_t{1704164645}, int32_t{0}));
  CHECK(ParseRfc3339("2024-01-02t01:04:05-02:00z") == std::nullopt);
  CHECK(ParseRfc3339("2024-01-02T03:04:05") == std::nullopt);
  CHECK(ParseRfc3339("2024-13-02T03:04:05Z") == std::nullopt);
  CHECK(ParseRfc3339("2024-01-02 03:04:05Z") == std::nullopt);
  CHECK(ParseRfc3339("2024-01-02T03:04:05.Z") == std::nullopt);
}

TEST_CASE("duplicate rule names: the later rule is dropped and reported") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dup, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - name: a
    matches: [{path: {type: PathPrefix, value: /one}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: a
    matches: [{path: {type: PathPrefix, value: /two}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE(t != nullptr);
  CHECK(t->routes.size() == 1);
  const Finding* f = r.Find("duplicate rule name 'a'");
  REQUIRE_MESSAGE(f != nullptr, r.All());
  CHECK(f->message.starts_with("spec.rules[1].name:"));
}
