// Compiled Gateway API tables under MatchRoute: the precedence winner takes
// each sample request (compile_gateway*.cc + route_table.cc).
#include "route_fixture.h"
#include "route_gateway_fixture.h"

using ambit::waypoint::route::testing::Req;
using ambit::waypoint::route::testing::RouteFor;
using namespace gwtest;  // NOLINT

namespace {

Req Get(std::string path, std::vector<std::pair<std::string, std::string>> headers = {},
        std::string method = "GET") {
  Req r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.port = 9080;
  r.headers = std::move(headers);
  return r;
}

}  // namespace

TEST_CASE("MatchRoute picks the HTTPRoute precedence winner") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: p, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - name: regex
    matches: [{path: {type: RegularExpression, value: "/b[io]t"}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: query1
    matches: [{path: {value: /a}, queryParams: [{name: q, value: "1"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: headers1
    matches: [{path: {value: /a}, headers: [{name: H1, value: "1"}], queryParams: [{name: q, value: "1"}, {name: r, value: "2"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: headers2
    matches: [{path: {value: /a}, headers: [{name: h1, value: "1"}, {name: h2, value: "2"}]}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: method
    matches: [{path: {value: /a}, method: GET}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: prefix-long
    matches: [{path: {value: /a/b/}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: exact
    matches: [{path: {type: Exact, value: /a/b}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: plain
    matches: [{path: {value: /a}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  auto winner = [&](const Req& req) {
    const std::string name = RouteFor(*t, req);
    const std::string prefix = "HTTPRoute demo/p ";
    return name.starts_with(prefix) ? name.substr(prefix.size()) : name;
  };
  const std::vector<std::pair<std::string, std::string>> h12 = {{"h1", "1"}, {"h2", "2"}};
  CHECK(winner(Get("/a/b")) == "exact match[0]");
  CHECK(winner(Get("/a/b/")) == "prefix-long match[0]");   // Exact is byte-exact
  CHECK(winner(Get("/a/b/c")) == "prefix-long match[0]");
  CHECK(winner(Get("/a/bc")) == "method match[0]");        // segments: /a/b is not a prefix
  CHECK(winner(Get("/a", h12)) == "method match[0]");      // method beats two headers
  CHECK(winner(Get("/a", h12, "POST")) == "headers2 match[0]");
  CHECK(winner(Get("/a?q=1&r=2", {{"h1", "1"}}, "POST")) == "headers1 match[0]");
  CHECK(winner(Get("/a?q=1", {}, "POST")) == "query1 match[0]");
  CHECK(winner(Get("/a?Q=1", {}, "POST")) == "plain match[0]");  // query names case-sensitive
  CHECK(winner(Get("/a", {}, "POST")) == "plain match[0]");
  CHECK(winner(Get("/ax", {}, "POST")) == "");             // no rule matches: 404
  CHECK(winner(Get("/bot")) == "regex match[0]");
  CHECK(winner(Get("/bite")) == "");                       // RE2 full match
}

TEST_CASE("MatchRoute: equal matches go to the oldest route, then by name") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-new, namespace: demo, creationTimestamp: "2024-06-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: z-old, namespace: demo, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules: [{backendRefs: [{name: reviews-v2, port: 9080}]}]
)");
  const RouteTable* t = r.Table("reviews", 9080);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  CHECK(RouteFor(*t, Get("/anything")) == "HTTPRoute demo/z-old rule[0] match[0]");
}

TEST_CASE("MatchRoute on a GRPCRoute table: service, method, headers") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter, port: 9090}]
  rules:
  - name: method-only
    matches: [{method: {method: SayHello}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: service
    matches: [{method: {service: helloworld.Greeter}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: canary
    matches: [{method: {service: helloworld.Greeter, method: SayHello}, headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - name: exact
    matches: [{method: {service: helloworld.Greeter, method: SayHello}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
)");
  const RouteTable* t = r.Table("greeter", 9090);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  auto req = [](std::string path, std::vector<std::pair<std::string, std::string>> h = {}) {
    Req q = Get(std::move(path), std::move(h), "POST");
    q.port = 9090;
    return q;
  };
  CHECK(RouteFor(*t, req("/helloworld.Greeter/SayHello", {{"x-canary", "true"}})) ==
        "GRPCRoute demo/g canary match[0]");
  CHECK(RouteFor(*t, req("/helloworld.Greeter/SayHello")) == "GRPCRoute demo/g exact match[0]");
  CHECK(RouteFor(*t, req("/helloworld.Greeter/Other")) == "GRPCRoute demo/g service match[0]");
  CHECK(RouteFor(*t, req("/other.Svc/SayHello")) == "GRPCRoute demo/g method-only match[0]");
  CHECK(RouteFor(*t, req("/other.Svc/Nope")) == "");  // UNIMPLEMENTED
}

TEST_CASE("MatchRoute: a consumer route only serves clients of its namespace") {
  Result r = Compile(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings, namespace: other}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
)");
  const RouteTable* t = r.cfg.Find("other/ratings.other.svc.cluster.local", 80);
  REQUIRE_MESSAGE(t != nullptr, r.All());
  Req q = Get("/");
  q.port = 80;
  q.ns = "demo";
  CHECK(RouteFor(*t, q) == "HTTPRoute demo/c rule[0] match[0]");
  q.ns = "other";  // not a consumer: the service's own endpoints, as without routes
  CHECK(RouteFor(*t, q) == "default other/ratings.other.svc.cluster.local|80 (no producer route)");
}
