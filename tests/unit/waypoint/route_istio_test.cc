// VirtualService / DestinationRule compilation and matching (WAYPOINT.md §4,
// §5 "VirtualService"): binding, first match wins, each match kind, weights,
// subsets, header edits, findings with the field's line.
#include <doctest/doctest.h>

#include "tests/unit/waypoint/route_fixture.h"

using namespace ambit::waypoint::route;
using namespace ambit::waypoint::route::testing;

namespace {

constexpr const char* kSeed = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-routing, namespace: demo}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match:
    - headers:
        x-canary-user: {exact: "true"}
    route:
    - destination: {host: reviews, subset: v2}
  - name: split
    route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v2}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-destination, namespace: demo}
spec:
  host: reviews.demo.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
)";

bool Has(const std::string& route_name, const char* rule) {
  return route_name.find(std::string("(") + rule + ")") != std::string::npos;
}

std::string Vs(const std::string& http, const std::string& extra_spec = "") {
  return "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
         "metadata: {name: t, namespace: demo}\nspec:\n  hosts: [reviews]\n" +
         extra_spec + "  http:\n" + http;
}

}  // namespace

TEST_CASE("the seed's canary: header → v2, everyone else 90/10 over subsets") {
  Compiled c = CompileWorld(kSeed);
  INFO(c.AllFindings());
  CHECK(c.result.findings.empty());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  CHECK(t->kind == RouteTable::Kind::kVirtualService);
  CHECK(c.Table("demo/reviews.demo.svc.cluster.local", 9080) != nullptr);  // every HTTP port
  CHECK(c.Table("demo/ratings.demo.svc.cluster.local", 80) == nullptr);    // default route
  REQUIRE(t->routes.size() == 2);
  CHECK(Has(RouteFor(*t, {.headers = {{"x-canary-user", "true"}}}), "canary"));
  CHECK(Has(RouteFor(*t, {.headers = {{"x-canary-user", "TRUE"}}}), "split"));  // values exact
  CHECK(Has(RouteFor(*t, {}), "split"));
  const Route& split = t->routes[1];
  REQUIRE(split.clusters.size() == 2);
  CHECK(split.total_weight == 100);
  CHECK(split.clusters[0].cluster.name == "inbound-vip|80|http/v1|reviews.demo.svc.cluster.local");
  CHECK(split.clusters[1].cluster.subset == "v2");
  // Weighted pick is weight ÷ sum over the whole random range.
  int v1 = 0;
  for (uint64_t r = 0; r < 100; ++r) v1 += PickCluster(split, r)->cluster.subset == "v1";
  CHECK(v1 == 90);
  const auto& clusters = c.result.config->clusters;
  REQUIRE(clusters.contains("inbound-vip|80|http/v2|reviews.demo.svc.cluster.local"));
  CHECK(clusters.at("inbound-vip|80|http/v2|reviews.demo.svc.cluster.local").subset_labels ==
        std::map<std::string, std::string>{{"version", "v2"}});
  // 9080 requests route to 9080 of the same service (the request's port).
  CHECK(c.Table("demo/reviews.demo.svc.cluster.local", 9080)->routes[1].clusters[0].cluster.port ==
        9080);
}

TEST_CASE("uri: prefix is a plain string prefix, exact is byte-exact, regex is a full match") {
  Compiled c = CompileWorld(Vs(R"(  - {name: exact, match: [{uri: {exact: /exact}}], route: [{destination: {host: ratings}}]}
  - {name: prefix, match: [{uri: {prefix: /api}}], route: [{destination: {host: ratings}}]}
  - {name: regex, match: [{uri: {regex: "/b[io]t"}}], route: [{destination: {host: ratings}}]}
  - {name: nocase, match: [{uri: {prefix: /CaSe}, ignoreUriCase: true}], route: [{destination: {host: ratings}}]}
  - {name: nocase-re, match: [{uri: {regex: "/re[a-z]+"}, ignoreUriCase: true}], route: [{destination: {host: ratings}}]}
)"));
  INFO(c.AllFindings());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  CHECK(Has(RouteFor(*t, {.path = "/exact"}), "exact"));
  CHECK(RouteFor(*t, {.path = "/exact/"}).empty());
  CHECK(RouteFor(*t, {.path = "/EXACT"}).empty());
  CHECK(Has(RouteFor(*t, {.path = "/exact?x=1"}), "exact"));  // the query is not the path
  CHECK(Has(RouteFor(*t, {.path = "/api"}), "prefix"));
  CHECK(Has(RouteFor(*t, {.path = "/apiv2"}), "prefix"));
  CHECK(Has(RouteFor(*t, {.path = "/api/x"}), "prefix"));
  CHECK(Has(RouteFor(*t, {.path = "/bit"}), "regex"));
  CHECK(Has(RouteFor(*t, {.path = "/bot"}), "regex"));
  CHECK(RouteFor(*t, {.path = "/bite"}).empty());
  CHECK(RouteFor(*t, {.path = "/xbit"}).empty());
  CHECK(Has(RouteFor(*t, {.path = "/case/a"}), "nocase"));
  CHECK(Has(RouteFor(*t, {.path = "/CASEx"}), "nocase"));
  CHECK(Has(RouteFor(*t, {.path = "/reab"}), "nocase-re"));
  CHECK(RouteFor(*t, {.path = "/REAB"}).empty());  // ignoreUriCase does not touch regex
}

TEST_CASE("headers: names case-insensitive, values exact/prefix/regex, presence, withoutHeaders") {
  Compiled c = CompileWorld(Vs(R"(  - name: exact
    match: [{headers: {X-User: {exact: jason}}}]
    route: [{destination: {host: ratings}}]
  - name: prefix
    match: [{headers: {x-group: {prefix: beta}}}]
    route: [{destination: {host: ratings}}]
  - name: regex
    match: [{headers: {x-id: {regex: "(?i)id-[0-9]+"}}}]
    route: [{destination: {host: ratings}}]
  - name: present
    match: [{headers: {x-any: {}}}]
    route: [{destination: {host: ratings}}]
  - name: star
    match: [{headers: {x-star: {regex: "*"}}}]
    route: [{destination: {host: ratings}}]
  - name: without
    match: [{withoutHeaders: {x-skip: {}}, uri: {prefix: /w}}]
    route: [{destination: {host: ratings}}]
  - name: both
    match: [{headers: {a: {exact: "1"}, b: {exact: "2"}}}, {method: {exact: DELETE}}]
    route: [{destination: {host: ratings}}]
)"));
  INFO(c.AllFindings());
  CHECK(c.result.findings.empty());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  CHECK(Has(RouteFor(*t, {.headers = {{"x-user", "jason"}}}), "exact"));
  CHECK(RouteFor(*t, {.headers = {{"x-user", "Jason"}}}).empty());
  CHECK(Has(RouteFor(*t, {.headers = {{"x-group", "beta-1"}}}), "prefix"));
  CHECK(Has(RouteFor(*t, {.headers = {{"x-id", "ID-42"}}}), "regex"));
  CHECK(RouteFor(*t, {.headers = {{"x-id", "ID-42x"}}}).empty());
  CHECK(Has(RouteFor(*t, {.headers = {{"x-any", ""}}}), "present"));
  CHECK(Has(RouteFor(*t, {.headers = {{"x-star", "v"}}}), "star"));
  CHECK(Has(RouteFor(*t, {.path = "/w"}), "without"));
  CHECK(RouteFor(*t, {.path = "/w", .headers = {{"x-skip", "1"}}}).empty());
  // Blocks OR, fields within a block AND.
  CHECK(Has(RouteFor(*t, {.headers = {{"a", "1"}, {"b", "2"}}}), "both"));
  CHECK(RouteFor(*t, {.headers = {{"a", "1"}}}).empty());
  CHECK(Has(RouteFor(*t, {.method = "DELETE"}), "both"));
}

TEST_CASE("method, authority, query, port, source labels and namespace") {
  Compiled c = CompileWorld(Vs(R"(  - {name: method, match: [{method: {exact: POST}}], route: [{destination: {host: ratings}}]}
  - {name: authority, match: [{authority: {prefix: reviews.demo}}], route: [{destination: {host: ratings}}]}
  - {name: query, match: [{queryParams: {Debug: {exact: "1"}}}], route: [{destination: {host: ratings}}]}
  - {name: query-re, match: [{queryParams: {id: {regex: "[0-9]+"}}}], route: [{destination: {host: ratings}}]}
  - {name: port, match: [{port: 9080}], route: [{destination: {host: ratings, port: {number: 80}}}]}
  - {name: labels, match: [{sourceLabels: {app: productpage}}], route: [{destination: {host: ratings}}]}
  - {name: ns, match: [{sourceNamespace: other}], route: [{destination: {host: ratings}}]}
)"));
  INFO(c.AllFindings());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  CHECK(Has(RouteFor(*t, {.method = "POST"}), "method"));
  CHECK(Has(RouteFor(*t, {.authority = "reviews.demo:80"}), "authority"));
  CHECK(Has(RouteFor(*t, {.path = "/x?Debug=1"}), "query"));
  CHECK(RouteFor(*t, {.path = "/x?debug=1"}).empty());  // names are case-sensitive
  CHECK(Has(RouteFor(*t, {.path = "/x?a=b&id=77"}), "query-re"));
  CHECK(RouteFor(*t, {.path = "/x?id=7a"}).empty());
  CHECK(RouteFor(*t, {.port = 80}).empty());
  const RouteTable* t9080 = c.Table("demo/reviews.demo.svc.cluster.local", 9080);
  REQUIRE(t9080 != nullptr);
  CHECK(Has(RouteFor(*t9080, {.port = 9080}), "port"));
  CHECK(Has(RouteFor(*t, {.labels = {{"app", "productpage"}, {"v", "1"}}}), "labels"));
  CHECK(Has(RouteFor(*t, {.ns = "other"}), "ns"));
  CHECK(RouteFor(*t, {.ns = "demo"}).empty());
}

TEST_CASE("weights are relative; a 0-weight destination gets nothing; no weights share") {
  Compiled c = CompileWorld(Vs(R"(  - name: w
    match: [{uri: {prefix: /w}}]
    route:
    - {destination: {host: reviews}, weight: 3}
    - {destination: {host: ratings}, weight: 1}
    - {destination: {host: details.other}, weight: 0}
  - name: equal
    route:
    - {destination: {host: reviews}}
    - {destination: {host: ratings}}
)"));
  INFO(c.AllFindings());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  const Route& w = t->routes[0];
  CHECK(w.total_weight == 4);
  std::map<std::string, int> got;
  for (uint64_t r = 0; r < 400; ++r) got[PickCluster(w, r)->cluster.service]++;
  CHECK(got["demo/reviews.demo.svc.cluster.local"] == 300);
  CHECK(got["demo/ratings.demo.svc.cluster.local"] == 100);
  CHECK(got.count("other/details.other.svc.cluster.local") == 0);
  CHECK(t->routes[1].total_weight == 2);
}

TEST_CASE("header edits, rewrite, redirect and direct response compile") {
  Compiled c = CompileWorld(Vs(R"(  - name: edits
    match: [{uri: {prefix: /foo}}]
    headers:
      request: {set: {X-Set: a}, add: {x-add: b}, remove: [X-Remove]}
      response: {set: {x-resp: c}}
    rewrite: {uri: /, authority: other.example}
    route:
    - destination: {host: ratings}
      headers: {request: {add: {x-dest: d}}}
  - name: regex
    match: [{uri: {prefix: /service}}]
    rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}
    route: [{destination: {host: ratings}}]
  - name: moved
    match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: new.example, redirectCode: 308}
  - name: teapot
    match: [{uri: {exact: /tea}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
)"));
  INFO(c.AllFindings());
  CHECK(c.result.findings.empty());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  REQUIRE(t->routes.size() == 4);
  const Route& e = t->routes[0];
  CHECK(e.request_headers.set == std::vector<std::pair<std::string, std::string>>{{"x-set", "a"}});
  CHECK(e.request_headers.add == std::vector<std::pair<std::string, std::string>>{{"x-add", "b"}});
  CHECK(e.request_headers.remove == std::vector<std::string>{"x-remove"});
  CHECK(e.response_headers.set.size() == 1);
  CHECK(e.rewrite.kind == PathRewrite::Kind::kPrefix);
  CHECK(e.rewrite.value == "/");
  CHECK(e.authority_rewrite == "other.example");
  CHECK(e.clusters[0].request_headers.add.size() == 1);
  CHECK(t->routes[1].rewrite.kind == PathRewrite::Kind::kRegex);
  const Route& m = t->routes[2];
  CHECK(m.action == Route::Action::kRedirect);
  CHECK(m.redirect->status == 308);
  CHECK(m.redirect->authority == "new.example");
  CHECK(m.redirect->path.kind == PathRewrite::Kind::kFull);
  const Route& d = t->routes[3];
  CHECK(d.action == Route::Action::kDirectResponse);
  CHECK(d.direct_response->status == 418);
  CHECK(d.direct_response->body == "short and stout");
}

TEST_CASE("redirect code defaults to 301; mirrors carry their percentage") {
  Compiled c = CompileWorld(Vs(R"(  - name: r
    match: [{uri: {exact: /r}}]
    redirect: {uri: /s}
  - name: mirrored
    route: [{destination: {host: reviews}}]
    mirror: {host: ratings}
    mirrorPercentage: {value: 12.5}
)"));
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  CHECK(t->routes[0].redirect->status == 301);
  REQUIRE(t->routes[1].mirrors.size() == 1);
  CHECK(t->routes[1].mirrors[0].per_million == 125'000);
  CHECK(t->routes[1].mirrors[0].cluster.service == "demo/ratings.demo.svc.cluster.local");
}

TEST_CASE("binding: gateways without mesh do not bind; short names resolve in the namespace") {
  Compiled c = CompileWorld(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ingress-only, namespace: demo}
spec:
  hosts: [reviews]
  gateways: [istio-system/ingress]
  http: [{route: [{destination: {host: ratings}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: d, namespace: other}
spec:
  hosts: [details]
  gateways: [mesh, istio-system/ingress]
  http: [{route: [{destination: {host: details}}]}]
)");
  INFO(c.AllFindings());
  CHECK(c.Table("demo/reviews.demo.svc.cluster.local", 80) == nullptr);
  CHECK(c.Table("other/details.other.svc.cluster.local", 80) != nullptr);
  CHECK(c.Table("other/details.other.svc.cluster.local", 5432) == nullptr);  // TCP port
}

TEST_CASE("bad input is a finding at the field's line; the rest applies") {
  const std::string docs = Vs(R"(  - name: bad-regex
    match: [{uri: {regex: "/(unclosed"}}]
    route: [{destination: {host: ratings}}]
  - name: delegate
    delegate: {name: x}
  - name: retries
    corsPolicy: {allowOrigins: [{exact: x}]}
    route: [{destination: {host: nosuch}}]
  - name: subset
    route: [{destination: {host: reviews, subset: v9}}]
  - name: weight
    route: [{destination: {host: ratings}, weight: -3}]
  - name: two-actions
    redirect: {uri: /x}
    directResponse: {status: 200}
  - name: good
    route: [{destination: {host: ratings}}]
)", "  bogus: 1\n");
  Compiled c = CompileWorld(docs);
  INFO(c.AllFindings());
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  // bad-regex, delegate, weight and two-actions are dropped; retries (ignored
  // field) and subset (unresolved → 503) stay.
  REQUIRE(t->routes.size() == 3);
  CHECK(Has(t->routes[0].name, "retries"));
  CHECK(t->routes[0].clusters[0].unresolved);
  CHECK(t->routes[1].clusters[0].unresolved);
  CHECK(Has(t->routes[2].name, "good"));
  auto at = [&](std::string_view needle, int doc_line) {
    auto f = c.FindingsWith(needle);
    REQUIRE_MESSAGE(f.size() == 1, needle);
    CHECK_MESSAGE(f[0].starts_with("routes.yaml:" + std::to_string(DocLine(doc_line)) + ": "),
                  f[0]);
  };
  at("spec.bogus: unknown field", 6);
  at("invalid regex", 9);
  at("delegate is not supported", 12);
  at("spec.http[2].corsPolicy: not supported yet", 14);
  at("no service 'nosuch'", 15);
  at("subset 'v9'", 17);
  at("spec.http[4].route[0].weight", 19);
  at("exactly one of route, redirect, directResponse", 20);
}

TEST_CASE("conflicts and duplicates are reported") {
  Compiled c = CompileWorld(std::string(kSeed) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second, namespace: demo}
spec:
  hosts: [reviews.demo.svc.cluster.local]
  http: [{route: [{destination: {host: ratings}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-routing, namespace: demo}
spec: {hosts: [ratings], http: []}
---
apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: {name: future, namespace: demo}
spec: {hosts: [ratings]}
)");
  CHECK(c.FindingsWith("already has routes from VirtualService demo/reviews-routing").size() == 2);
  CHECK(c.FindingsWith("duplicate definition").size() == 1);
  CHECK(c.FindingsWith("apiVersion 'networking.istio.io/v2'").size() == 1);
  CHECK(c.Table("demo/ratings.demo.svc.cluster.local", 80) == nullptr);
}

TEST_CASE("a VirtualService and an HTTPRoute on one service port: the HTTPRoute keeps it") {
  Compiled c = CompileWorld(std::string(kSeed) + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hr, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 80}]
  rules: [{backendRefs: [{name: ratings, port: 80}]}]
)");
  const RouteTable* t80 = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  const RouteTable* t9080 = c.Table("demo/reviews.demo.svc.cluster.local", 9080);
  REQUIRE(t80 != nullptr);
  REQUIRE(t9080 != nullptr);
  CHECK(t80->kind == RouteTable::Kind::kHttpRoute);
  CHECK(t9080->kind == RouteTable::Kind::kVirtualService);  // the HTTPRoute binds port 80 only
  auto f = c.FindingsWith("port 80 already has routes from HTTPRoute demo/hr");
  REQUIRE_MESSAGE(f.size() == 1, c.AllFindings());
  CHECK(f[0].find("VirtualService demo/reviews-routing") != std::string::npos);
}

TEST_CASE("timeout: Istio and Gateway API duration forms; bad ones are findings") {
  Compiled c = CompileWorld(Vs(R"(  - {name: a, timeout: 0.5s, match: [{uri: {prefix: /a}}], route: [{destination: {host: ratings}}]}
  - {name: b, timeout: 1m30s, match: [{uri: {prefix: /b}}], route: [{destination: {host: ratings}}]}
  - {name: c, timeout: 0s, match: [{uri: {prefix: /c}}], route: [{destination: {host: ratings}}]}
  - {name: d, timeout: soon, route: [{destination: {host: ratings}}]}
)"));
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  REQUIRE(t->routes.size() == 3);
  CHECK(t->routes[0].timeout == std::chrono::milliseconds(500));
  CHECK(t->routes[1].timeout == std::chrono::seconds(90));
  CHECK(t->routes[2].timeout == std::chrono::nanoseconds(0));
  CHECK(c.FindingsWith("spec.http[3].timeout: 'soon' is not a duration").size() == 1);
}

TEST_CASE("fault: delay and abort with per-million shares; bad ones drop the rule") {
  Compiled c = CompileWorld(Vs(R"(  - name: both
    match: [{uri: {prefix: /a}}]
    fault:
      delay: {fixedDelay: 1.5s, percentage: {value: 12.5}}
      abort: {httpStatus: 503, percentage: {value: 0.0001}}
    route: [{destination: {host: ratings}}]
  - name: grpc
    match: [{uri: {prefix: /g}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
  - name: nopct
    match: [{uri: {prefix: /n}}]
    fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: ratings}}]
  - name: badstatus
    fault: {abort: {httpStatus: 99, percentage: {value: 1}}}
    route: [{destination: {host: ratings}}]
  - name: badgrpc
    fault: {abort: {grpcStatus: SOMETIMES, percentage: {value: 1}}}
    route: [{destination: {host: ratings}}]
  - name: empty
    fault: {}
    route: [{destination: {host: ratings}}]
)"));
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE(t != nullptr);
  INFO(c.AllFindings());
  REQUIRE(t->routes.size() == 3);
  const Fault& a = *t->routes[0].fault;
  CHECK(a.delay == std::chrono::milliseconds(1500));
  CHECK(a.delay_per_million == 125'000);
  CHECK(a.abort_status == 503);
  CHECK(a.abort_per_million == 1);
  const Fault& g = *t->routes[1].fault;
  CHECK(g.abort_grpc == 14);
  CHECK(g.abort_status == 200);
  CHECK(g.abort_per_million == 1'000'000);
  CHECK(t->routes[2].fault->abort_per_million == 0);
  CHECK(c.FindingsWith("abort: no percentage: no request is affected").size() == 1);
  CHECK(c.FindingsWith("httpStatus: must be 200..599").size() == 1);
  CHECK(c.FindingsWith("'SOMETIMES' is not a gRPC error code name").size() == 1);
  CHECK(c.FindingsWith("needs delay or abort").size() == 1);
}
