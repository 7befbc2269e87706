// L7 AuthorizationPolicy at the waypoint: binding by targetRefs (as istiod's
// policyattachment), the truth table per field (exact / prefix / suffix /
// presence and the not-forms), DENY over ALLOW, AUDIT, dry-run, CUSTOM
// failing closed, and findings for bad input.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/route/compile_authz.h"

namespace ambit::waypoint::route {
namespace {

constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/waypoint, name: waypoint-0, namespace: demo, serviceAccount: waypoint,
   workloadIps: [10.0.0.9], labels: {gateway.networking.k8s.io/gateway-name: waypoint},
   services: {"demo/waypoint.demo.svc.cluster.local": {15008: 15008}}}
- {uid: c//Pod/demo/api-1, name: api-1, namespace: demo, workloadIps: [10.0.0.1], protocol: HBONE,
   services: {"demo/api.demo.svc.cluster.local": {80: 8080},
              "demo/other.demo.svc.cluster.local": {80: 8080},
              "demo/direct.demo.svc.cluster.local": {80: 8080}}}
services:
- {name: waypoint, namespace: demo, hostname: waypoint.demo.svc.cluster.local,
   vips: [/10.96.0.99], ports: {15008: 15008}}
- {name: api, namespace: demo, hostname: api.demo.svc.cluster.local, vips: [/10.96.0.20],
   ports: {80: 8080}, waypoint: {destination: {namespace: demo, hostname: waypoint.demo.svc.cluster.local}, hboneMtlsPort: 15008}}
- {name: other, namespace: demo, hostname: other.demo.svc.cluster.local, vips: [/10.96.0.21],
   ports: {80: 8080}, waypoint: {destination: {namespace: demo, hostname: waypoint.demo.svc.cluster.local}, hboneMtlsPort: 15008}}
- {name: direct, namespace: demo, hostname: direct.demo.svc.cluster.local, vips: [/10.96.0.22],
   ports: {80: 8080}}
)";

struct Headers final : RequestView::Headers {
  std::multimap<std::string, std::string> h;
  void Values(std::string_view name, std::vector<std::string_view>* out) const override {
    auto [b, e] = h.equal_range(std::string(name));
    for (auto it = b; it != e; ++it) out->push_back(it->second);
  }
};

struct World {
  std::shared_ptr<const mesh::Snapshot> snap;
  AuthzCompileResult result;
  const AuthzConfig& cfg() const { return *result.config; }
  const mesh::Service* Svc(std::string_view name) const {
    for (const auto& [k, s] : snap->services()) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  std::string Findings() const {
    std::string s;
    for (const auto& f : result.findings) s += f.ToString() + (f.invalid ? " [invalid]\n" : "\n");
    return s;
  }
  bool Invalid() const {
    for (const auto& f : result.findings) {
      if (f.invalid) return true;
    }
    return false;
  }
};

World Compile(const std::string& docs) {
  const std::string text = std::string(kWorld) + "---\n" + docs;
  auto cfg = config::ParseLocalConfig(text, "authz.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  World w;
  w.snap = store.Build();
  const mesh::Workload* self = w.snap->FindWorkload("c//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  w.result = CompileAuthz(cfg->resources, *w.snap, *self);
  return w;
}

// One policy attached to the waypoint (Gateway ref) with `spec` lines
// (indented by 2) after targetRefs.
std::string Policy(std::string_view name, std::string_view body, std::string_view ns = "demo",
                   std::string_view extra_meta = "") {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " +
         std::string(name) + "\n  namespace: " + std::string(ns) + "\n" + std::string(extra_meta) +
         "spec:\n  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: "
         "waypoint}\n" +
         std::string(body) + "---\n";
}

struct Req {
  std::string principal = "cluster.local/ns/demo/sa/frontend";
  bool mtls = true;
  std::string src = "10.0.0.50", dst = "10.96.0.20";
  uint16_t port = 80;
  std::string method = "GET", path = "/", host = "api.demo";
  Headers headers;
  std::string_view service = "api";
};

AuthzDecision Eval(const World& w, const Req& q) {
  AuthzRequest r;
  r.has_identity = q.mtls;
  if (q.mtls) {
    r.principal = q.principal;
    const size_t at = q.principal.find("/ns/");
    std::string_view rest = std::string_view(q.principal).substr(at + 4);
    r.ns = rest.substr(0, rest.find('/'));
  }
  r.source_ip = *net::IpAddress::Parse(q.src);
  r.remote_ip = r.source_ip;
  r.destination_ip = *net::IpAddress::Parse(q.dst);
  r.destination_port = q.port;
  r.method = q.method;
  r.path = q.path;
  r.authority = q.host;
  r.headers = &q.headers;
  const mesh::Service* svc = q.service.empty() ? nullptr : w.Svc(q.service);
  return EvaluateAuthz(w.cfg(), w.cfg().For(svc), r);
}

bool Allowed(const World& w, const Req& q) { return Eval(w, q).allow; }

// An ALLOW policy with one rule; a request is allowed iff the rule matches.
World Rule(std::string_view rule) {
  World w = Compile(Policy("p", "  rules:\n" + std::string(rule)));
  REQUIRE_MESSAGE(!w.Invalid(), w.Findings());
  REQUIRE(w.cfg().policies.size() == 1);
  return w;
}

}  // namespace

TEST_CASE("authz binding follows istiod's policy attachment for waypoints") {
  const std::string docs =
      Policy("gw", "  rules: [{}]\n") +
      R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-gw, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: elsewhere}]
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: svc, namespace: demo}
spec:
  targetRefs: [{kind: Service, group: "", name: api}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/svc-deny"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: class, namespace: istio-system}
spec:
  targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/class-deny"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: class-wrong-ns, namespace: demo}
spec:
  targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: selector, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  action: DENY
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: legacy, namespace: demo}
spec:
  targetRef: {kind: Service, group: "", name: other}
  action: DENY
  rules: [{to: [{operation: {paths: ["/legacy-deny"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nowaypoint, namespace: demo}
spec:
  targetRefs: [{kind: Service, group: "", name: direct}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: missing, namespace: demo}
spec:
  targetRefs: [{kind: Service, group: "", name: nosuch}]
)";
  World w = Compile(docs);
  CHECK_MESSAGE(!w.Invalid(), w.Findings());
  std::vector<std::string> keys;
  for (const auto& p : w.cfg().policies) keys.push_back(p.key);
  CHECK(keys == std::vector<std::string>{"demo/gw", "demo/svc", "istio-system/class",
                                         "demo/legacy"});
  CHECK(w.cfg().waypoint == "demo/waypoint");
  CHECK(w.cfg().waypoint_wide.allow.size() == 1);
  CHECK(w.cfg().waypoint_wide.deny.size() == 1);  // the GatewayClass one
  Req q;
  q.path = "/svc-deny";
  CHECK_FALSE(Allowed(w, q));
  q.service = "other";
  CHECK(Allowed(w, q));  // the Service ref binds api only
  q.path = "/legacy-deny";
  CHECK_FALSE(Allowed(w, q));
  q.service = "";  // pod-addressed: only waypoint-wide policies
  q.path = "/svc-deny";
  CHECK(Allowed(w, q));
  q.path = "/class-deny";
  CHECK_FALSE(Allowed(w, q));
  std::string unbound;
  for (const auto& u : w.result.unbound) unbound += u + "\n";
  CHECK(unbound.find("demo/other-gw: Gateway demo/elsewhere is not this waypoint") !=
        std::string::npos);
  CHECK(unbound.find("demo/class-wrong-ns") != std::string::npos);
  CHECK(unbound.find("demo/nowaypoint: Service demo/direct does not use this waypoint") !=
        std::string::npos);
  CHECK(w.Findings().find("no Service nosuch in namespace demo") != std::string::npos);
}

TEST_CASE("authz principals, namespaces and ipBlocks with their not-forms") {
  World w = Rule(R"(  - from:
    - source:
        principals: ["cluster.local/ns/demo/sa/frontend", "spiffe-less/*", "*/sa/batch"]
)");
  Req q;
  CHECK(Allowed(w, q));
  q.principal = "spiffe-less/ns/x/sa/y";  // prefix
  CHECK(Allowed(w, q));
  q.principal = "td/ns/jobs/sa/batch";  // suffix
  CHECK(Allowed(w, q));
  q.principal = "cluster.local/ns/demo/sa/other";
  CHECK_FALSE(Allowed(w, q));
  q.mtls = false;  // no identity never matches a positive list
  CHECK_FALSE(Allowed(w, q));

  w = Rule("  - from: [{source: {notPrincipals: [\"*\"]}}]\n");
  q = Req{};
  CHECK_FALSE(Allowed(w, q));
  q.mtls = false;  // no identity satisfies a negative list
  CHECK(Allowed(w, q));

  w = Rule("  - from: [{source: {namespaces: [\"mon*\"], notNamespaces: [\"monitoring-dev\"]}}]\n");
  q = Req{};
  q.principal = "cluster.local/ns/monitoring/sa/prometheus";
  CHECK(Allowed(w, q));
  q.principal = "cluster.local/ns/monitoring-dev/sa/prometheus";
  CHECK_FALSE(Allowed(w, q));
  q.principal = "cluster.local/ns/demo/sa/prometheus";
  CHECK_FALSE(Allowed(w, q));

  w = Rule("  - from: [{source: {ipBlocks: [\"10.0.0.0/24\"], notIpBlocks: [\"10.0.0.66\"]}}]\n");
  q = Req{};
  CHECK(Allowed(w, q));
  q.src = "10.0.0.66";
  CHECK_FALSE(Allowed(w, q));
  q.src = "10.0.1.1";
  CHECK_FALSE(Allowed(w, q));

  w = Rule("  - from: [{source: {remoteIpBlocks: [\"10.0.0.50\"]}}]\n");
  q = Req{};
  CHECK(Allowed(w, q));  // no trusted hops: the remote address is the peer

  w = Rule("  - from: [{source: {serviceAccounts: [\"demo/frontend\", \"ops\"]}}]\n");
  q = Req{};
  CHECK(Allowed(w, q));
  q.principal = "cluster.local/ns/demo/sa/ops";  // bare name: the policy's namespace
  CHECK(Allowed(w, q));
  q.principal = "cluster.local/ns/other/sa/frontend";
  CHECK_FALSE(Allowed(w, q));
}

TEST_CASE("authz requestPrincipals and request.auth are reported and never present") {
  World w = Compile(Policy("p", R"(  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
  - when: [{key: "request.auth.claims[iss]", notValues: ["evil"]}]
)"));
  CHECK_FALSE(w.Invalid());
  CHECK(w.Findings().find("rules[0].from[0].source.requestPrincipals: RequestAuthentication") !=
        std::string::npos);
  CHECK(w.Findings().find("authz.yaml:") != std::string::npos);
  Req q;
  const AuthzDecision d = Eval(w, q);
  CHECK(d.allow);  // rule 1: no claim → notValues holds
  w = Compile(Policy("p", "  rules:\n  - from: [{source: {requestPrincipals: [\"*\"]}}]\n"));
  CHECK_FALSE(Allowed(w, q));
}

TEST_CASE("authz hosts, methods, paths and ports: exact, prefix, suffix and not-forms") {
  World w = Rule(R"(  - to:
    - operation:
        hosts: ["api.demo", "*.example.com", "admin.*"]
        methods: ["GET", "PO*"]
        paths: ["/exact", "/api/v1/*", "*.json", "*"]
        notPaths: ["/api/v1/secret", "/private*"]
        ports: ["80"]
)");
  Req q;
  q.path = "/exact";
  CHECK(Allowed(w, q));
  q.host = "API.Demo";  // hosts are case-insensitive
  CHECK(Allowed(w, q));
  q.host = "www.EXAMPLE.com";
  CHECK(Allowed(w, q));
  q.host = "admin.internal:8080";
  CHECK(Allowed(w, q));
  q.host = "api.demo:80";  // exact host includes the port as sent
  CHECK_FALSE(Allowed(w, q));
  q.host = "api.demo";
  q.method = "POST";
  CHECK(Allowed(w, q));
  q.method = "get";  // methods are case-sensitive
  CHECK_FALSE(Allowed(w, q));
  q.method = "DELETE";
  CHECK_FALSE(Allowed(w, q));
  q.method = "GET";
  q.path = "/api/v1/secret";
  CHECK_FALSE(Allowed(w, q));
  q.path = "/private/x";
  CHECK_FALSE(Allowed(w, q));
  q.path = "/x.json";
  CHECK(Allowed(w, q));
  q.port = 8080;
  CHECK_FALSE(Allowed(w, q));

  w = Rule(R"(  - to:
    - operation: {paths: ["/api/v1/*"]}
    - operation: {notMethods: ["DELETE"], notPorts: ["9090"], notHosts: ["*.internal"]}
)");
  q = Req{};
  q.method = "DELETE";
  q.path = "/api/v1/users";
  CHECK(Allowed(w, q));  // first alternative
  q.path = "/other";
  CHECK_FALSE(Allowed(w, q));
  q.method = "PUT";
  CHECK(Allowed(w, q));  // second alternative
  q.host = "db.internal";
  CHECK_FALSE(Allowed(w, q));
}

TEST_CASE("authz when: headers, source, destination and connection keys") {
  World w = Rule(R"(  - when:
    - key: request.headers[X-Request-Id]
      notValues: [""]
)");
  Req q;
  CHECK(Allowed(w, q));  // absent header: the negative test holds (Envoy's NOT)
  q.headers.h.emplace("x-request-id", "");
  CHECK_FALSE(Allowed(w, q));
  q.headers.h.clear();
  q.headers.h.emplace("x-request-id", "abc");
  CHECK(Allowed(w, q));

  w = Rule(R"(  - when:
    - {key: "request.headers[x-team]", values: ["blue", "gr*"]}
)");
  q = Req{};
  CHECK_FALSE(Allowed(w, q));
  q.headers.h.emplace("x-team", "red,blue");  // any comma-separated element
  CHECK(Allowed(w, q));
  q.headers.h.clear();
  q.headers.h.emplace("x-team", "green");
  CHECK(Allowed(w, q));

  w = Rule(R"(  - when:
    - {key: source.ip, values: ["10.0.0.0/8"]}
    - {key: source.namespace, values: ["demo"]}
    - {key: source.principal, notValues: ["*/sa/evil"]}
    - {key: destination.ip, values: ["10.96.0.0/16"]}
    - {key: destination.port, values: ["80", "443"]}
)");
  q = Req{};
  CHECK(Allowed(w, q));
  q.port = 8080;
  CHECK_FALSE(Allowed(w, q));
  q = Req{};
  q.principal = "cluster.local/ns/demo/sa/evil";
  CHECK_FALSE(Allowed(w, q));
  q = Req{};
  q.dst = "10.97.0.1";
  CHECK_FALSE(Allowed(w, q));

  World sni = Compile(Policy("p", "  rules:\n  - when: [{key: connection.sni, values: [\"*\"]}]\n"));
  CHECK(sni.Findings().find("connection.sni") != std::string::npos);
  CHECK_FALSE(Allowed(sni, Req{}));
}

TEST_CASE("authz order: DENY beats ALLOW, none matched denies, AUDIT and dry-run only report") {
  World w = Compile(Policy("allow-api", R"(  rules:
  - to: [{operation: {paths: ["/api/*"]}}]
)") + Policy("deny-admin", R"(  action: DENY
  rules:
  - to: [{operation: {paths: ["/api/admin*"]}}]
)") + Policy("audit", R"(  action: AUDIT
  rules:
  - to: [{operation: {methods: ["POST"]}}]
)") + Policy("dry-deny", R"(  action: DENY
  rules:
  - to: [{operation: {paths: ["/api/users"]}}]
)", "demo", "  annotations: {istio.io/dry-run: \"true\"}\n") + Policy("dry-allow", R"(  rules:
  - to: [{operation: {paths: ["/api/users", "/api/orders"]}}]
)", "demo", "  annotations: {istio.io/dry-run: \"true\"}\n"));
  REQUIRE_MESSAGE(!w.Invalid(), w.Findings());
  Req q;
  q.path = "/api/orders";
  AuthzDecision d = Eval(w, q);
  CHECK(d.allow);
  REQUIRE(d.policy != nullptr);
  CHECK(d.policy->key == "demo/allow-api");
  CHECK(d.shadow);
  CHECK(d.shadow_allow);
  CHECK(d.shadow_policy->key == "demo/dry-allow");
  CHECK(d.audit == nullptr);

  q.path = "/api/admin/x";
  d = Eval(w, q);
  CHECK_FALSE(d.allow);
  CHECK(d.policy->key == "demo/deny-admin");
  CHECK(d.shadow);
  CHECK_FALSE(d.shadow_allow);  // dry-run ALLOWs exist, none matched

  q.path = "/api/users";
  q.method = "POST";
  d = Eval(w, q);
  CHECK(d.allow);  // the dry-run DENY does not enforce
  CHECK_FALSE(d.shadow_allow);
  CHECK(d.shadow_policy->key == "demo/dry-deny");
  REQUIRE(d.audit != nullptr);
  CHECK(d.audit->key == "demo/audit");

  q.path = "/elsewhere";
  d = Eval(w, q);
  CHECK_FALSE(d.allow);  // ALLOW policies exist, none matched
  CHECK(d.policy == nullptr);

  // Nothing bound: allowed without evaluation.
  World none = Compile("");
  d = Eval(none, q);
  CHECK(d.allow);
  CHECK_FALSE(d.evaluated);

  // ALLOW with no rules allows nothing; `rules: [{}]` allows everything.
  World nothing = Compile(Policy("nothing", ""));
  CHECK_FALSE(Allowed(nothing, q));
  World all = Compile(Policy("all", "  rules: [{}]\n"));
  CHECK(Allowed(all, q));
  // DENY with no rules denies nothing.
  World deny_none = Compile(Policy("d", "  action: DENY\n"));
  CHECK(Allowed(deny_none, q));
}

TEST_CASE("authz CUSTOM fails closed and path templates read strictly") {
  World w = Compile(Policy("ext", R"(  action: CUSTOM
  provider: {name: opa}
  rules:
  - to: [{operation: {paths: ["/ext/*"]}}]
)"));
  CHECK_FALSE(w.Invalid());
  CHECK(w.Findings().find("CUSTOM (external authorization) is not supported") !=
        std::string::npos);
  Req q;
  q.path = "/ext/a";
  CHECK_FALSE(Allowed(w, q));
  q.path = "/other";
  CHECK(Allowed(w, q));

  // ALLOW: a template never matches; DENY: it matches every path.
  w = Compile(Policy("t", "  rules:\n  - to: [{operation: {paths: [\"/a/{*}/b\"]}}]\n"));
  CHECK(w.Findings().find("path templates") != std::string::npos);
  q.path = "/a/x/b";
  CHECK_FALSE(Allowed(w, q));
  w = Compile(Policy("t", "  action: DENY\n  rules:\n  - to: [{operation: {paths: [\"/a/{**}\"]}}]\n"));
  q.path = "/anything";
  CHECK_FALSE(Allowed(w, q));
}

TEST_CASE("authz invalid input: findings at file:line, the change is rejected") {
  struct Case {
    const char* body;
    const char* needle;
  };
  const Case cases[] = {
      {"  rules:\n  - from: [{source: {ipBlocks: [\"not-an-ip\"]}}]\n",
       "rules[0].from[0].source.ipBlocks[0]: 'not-an-ip' is not an IP address or CIDR"},
      {"  rules:\n  - to: [{operation: {ports: [\"99999\"]}}]\n", "is not a port number"},
      {"  rules:\n  - from: [{source: {}}]\n", "must be a non-empty map"},
      {"  rules:\n  - when: [{key: request.bogus, values: [\"x\"]}]\n",
       "'request.bogus' is not a supported attribute"},
      {"  rules:\n  - when: [{key: source.ip}]\n", "one of values or notValues is required"},
      {"  action: MAYBE\n", "action: 'MAYBE' is not ALLOW, DENY, AUDIT or CUSTOM"},
      {"  selector: {matchLabels: {app: x}}\n", "only one of selector and targetRefs"},
      {"  rules:\n  - to: [{operation: {verbs: [\"GET\"]}}]\n", "operation.verbs: unknown field"},
      {"  provider: {name: x}\n", "provider: only allowed with action CUSTOM"},
      {"  rules:\n  - wehn: [{key: source.ip, values: [\"1.2.3.4\"]}]\n",
       "rules[0].wehn: unknown field"},
      {"  rules:\n  - when: [{key: source.ip, valus: [\"1.2.3.4\"]}]\n",
       "rules[0].when[0].valus: unknown field"},
      {"  rulez: []\n", "spec.rulez: unknown field"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    World w = Compile(Policy("bad", c.body));
    CHECK(w.Invalid());
    const std::string f = w.Findings();
    CHECK_MESSAGE(f.find(c.needle) != std::string::npos, f);
    CHECK_MESSAGE(f.find("authz.yaml:") != std::string::npos, f);
  }
  // The line is the field's own line.
  World w = Compile(Policy("bad", "  rules:\n  - from: [{source: {ipBlocks: [\"x\"]}}]\n"));
  int world_lines = 0;
  for (char ch : kWorld) world_lines += ch == '\n';
  const int line = world_lines + 1 /* --- */ + 10;
  CHECK(w.Findings().find(fmt::format("authz.yaml:{}:", line)) != std::string::npos);
  World kind = Compile(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: k, "
      "namespace: demo}\nspec:\n  targetRefs: [{kind: Pod, name: x}]\n");
  CHECK(kind.Invalid());
  CHECK(kind.Findings().find("'Pod' is not a target of AuthorizationPolicy") != std::string::npos);
}

}  // namespace ambit::waypoint::route

namespace ambit::waypoint::route {

TEST_CASE("authz path: query dropped, dot segments resolved like Envoy's normalization") {
  std::string s;
  CHECK(AuthzPath("/api/v1/users?x=1", &s) == "/api/v1/users");
  CHECK(AuthzPath("/api/v1/../admin", &s) == "/api/admin");
  CHECK(AuthzPath("/api/v1/../../admin/x", &s) == "/admin/x");
  CHECK(AuthzPath("/a/./b/.", &s) == "/a/b/");
  CHECK(AuthzPath("/a/%2e%2E/b", &s) == "/b");
  CHECK(AuthzPath("/a/.%2e", &s) == "/");
  CHECK(AuthzPath("/../..", &s) == "/");
  CHECK(AuthzPath("/x.json", &s) == "/x.json");
  CHECK(AuthzPath("/a/...", &s) == "/a/...");
  CHECK(AuthzPath("/a//b", &s) == "/a//b");  // Istio's default (BASE) keeps double slashes
}

TEST_CASE("authz on TCP: HTTP rules drop from ALLOW, HTTP fields drop from DENY") {
  World w = Compile(Policy("allow", R"(  rules:
  - to: [{operation: {paths: ["/api/*"]}}]
  - from: [{source: {namespaces: ["demo"]}}]
    to: [{operation: {ports: ["9000"]}}]
)"));
  Req q;
  AuthzRequest r;
  r.has_identity = true;
  r.principal = q.principal;
  r.ns = "demo";
  r.destination_port = 9000;
  r.tcp = true;
  const AuthzSet& set = w.cfg().For(w.Svc("api"));
  CHECK(EvaluateAuthz(w.cfg(), set, r).allow);  // rule 1 is L4 only
  r.destination_port = 9001;
  CHECK_FALSE(EvaluateAuthz(w.cfg(), set, r).allow);  // rule 0 (paths) never matches TCP
  r.tcp = false;
  r.path = "/api/x";
  CHECK(EvaluateAuthz(w.cfg(), set, r).allow);

  World deny = Compile(Policy("deny", R"(  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"], ports: ["9000"]}}]
)"));
  AuthzRequest t;
  t.tcp = true;
  t.destination_port = 9000;
  const AuthzSet& dset = deny.cfg().For(deny.Svc("api"));
  CHECK_FALSE(EvaluateAuthz(deny.cfg(), dset, t).allow);  // the path is ignored: stricter
  t.destination_port = 9001;
  CHECK(EvaluateAuthz(deny.cfg(), dset, t).allow);
  t.tcp = false;
  t.destination_port = 9000;
  t.path = "/other";
  CHECK(EvaluateAuthz(deny.cfg(), dset, t).allow);
}

}  // namespace ambit::waypoint::route
