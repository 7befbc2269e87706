// AuthorizationPolicy translation (§7.4) from YAML as users write it.
#include <doctest/doctest.h>

#include "common/authz/evaluate.h"
#include "tests/unit/authz/authz_test_util.h"
#include "tests/unit/authz/translate_util.h"

namespace ambit::authz {
namespace {

using namespace testing;
using S = mesh::PolicyScope;
using A = mesh::PolicyAction;

const std::vector<mesh::Workload> kWorkloads = {
    Wl("api-1", "default", {{"app", "api"}, {"version", "v1"}}),
    Wl("web-1", "default", {{"app", "web"}}),
    Wl("api-prod", "prod", {{"app", "api"}}),
};

// The documentation-style pair as a user writes it: an ALLOW policy for the
// api that names the frontend and also HTTP methods and paths, plus STRICT mTLS
// for the namespace.
constexpr const char* kDocExample = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: frontend-to-api
  namespace: production
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/production/sa/frontend"]
    to:
    - operation:
        methods: ["GET", "POST"]
        paths: ["/api/v1/*"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: production
spec:
  mtls:
    mode: STRICT
)";

TEST_CASE("Istio doc example: ALLOW rule with methods/paths is dropped (fail closed), STRICT kept") {
  const std::vector<mesh::Workload> workloads = {
      Wl("api-production", "production", {{"app", "api"}}),
      Wl("web-production", "production", {{"app", "web"}}),
      Wl("api-default", "default", {{"app", "api"}}),
  };
  TranslateResult r = Translate(kDocExample, workloads);
  // Both documents accepted: the AuthorizationPolicy (rules gone) and the
  // synthetic DENY that STRICT turns into.
  REQUIRE(r.policies.size() == 2);
  const mesh::Policy* p = FindPolicy(r, "production/frontend-to-api");
  REQUIRE(p != nullptr);
  CHECK(p->scope == S::kWorkloadSelector);
  CHECK(p->action == A::kAllow);
  CHECK(p->rules.empty());  // the only rule is gone: allow-nothing for the api
  const mesh::Policy* strict = FindPolicy(r, "istio-system/istio_converted_static_strict");
  REQUIRE(strict != nullptr);
  CHECK(strict->action == A::kDeny);
  CHECK(KeysOf(r, "api-production") ==
        std::vector<std::string>{"production/frontend-to-api",
                                 "istio-system/istio_converted_static_strict"});
  CHECK(KeysOf(r, "web-production") ==
        std::vector<std::string>{"istio-system/istio_converted_static_strict"});
  CHECK(KeysOf(r, "api-default").empty());  // other namespace: neither applies

  // Only the L7 part is reported; STRICT is fully enforceable at L4.
  REQUIRE(r.findings.size() == 2);
  const Finding& f = r.findings[0];
  CHECK(f.message ==
        "rule 0 of ALLOW policy dropped: uses L7 fields methods, paths; the agent enforces L4 "
        "only (L7 rules need a waypoint: attach the policy to it with targetRefs) (fail "
        "closed)");
  CHECK(f.kind == "AuthorizationPolicy");
  CHECK(f.resource == "production/frontend-to-api");
  CHECK(f.location == "test.yaml:2");
  CHECK(f.ToString() == "test.yaml:2: AuthorizationPolicy production/frontend-to-api: " + f.message);
  CHECK(r.findings[1].resource == "production/frontend-to-api");
  CHECK(r.findings[1].message.starts_with("no rule of this ALLOW policy is enforceable at L4"));

  // End to end: the frontend is denied at L4 (a waypoint would have to
  // enforce the L7 part), plaintext is denied by STRICT.
  std::vector<mesh::Workload> ws = workloads;
  AttachWorkloadPolicies(r, ws);
  AttachWorkloadPolicies(r, ws);  // idempotent
  CHECK(ws[0].authorization_policies.size() == 2);
  auto index = AuthzIndex::Build(r.policies);
  const identity::Identity frontend = Id("spiffe://cluster.local/ns/production/sa/frontend");
  Decision d = Evaluate(*index, ws[0], Conn(&frontend));
  CHECK_FALSE(d.allow);
  CHECK(d.reason == "allow policies exist, but none allowed");
  d = Evaluate(*index, ws[0], Conn(nullptr));
  CHECK_FALSE(d.allow);
  CHECK(d.reason == "explicitly denied by istio-system/istio_converted_static_strict");
  CHECK(Evaluate(*index, ws[1], Conn(&frontend)).allow);  // web: not selected, mTLS
  CHECK_FALSE(Evaluate(*index, ws[1], Conn(nullptr)).allow);  // web: STRICT too
  CHECK(Evaluate(*index, ws[2], Conn(nullptr)).allow);  // other namespace: untouched
}

TEST_CASE("DENY with paths keeps its L4 part") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-untrusted-admin
  namespace: default
spec:
  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["untrusted"]
    to:
    - operation:
        paths: ["/admin*"]
        ports: ["8080"]
)");
  REQUIRE(r.policies.size() == 1);
  const mesh::Policy& p = r.policies[0];
  CHECK(p.scope == S::kNamespace);
  CHECK(p.action == A::kDeny);
  REQUIRE(p.rules.size() == 1);
  REQUIRE(p.rules[0].clauses.size() == 2);
  const mesh::Match& to = p.rules[0].clauses[0].matches.at(0);
  CHECK(to.destination_ports == std::vector<uint16_t>{8080});
  const mesh::Match& from = p.rules[0].clauses[1].matches.at(0);
  REQUIRE(from.namespaces.size() == 1);
  CHECK(from.namespaces[0].kind == K::kExact);
  CHECK(from.namespaces[0].value == "untrusted");
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].message ==
        "rule 0 of DENY policy partially applied: uses L7 fields paths; the agent enforces L4 "
        "only (L7 rules need a waypoint: attach the policy to it with targetRefs); L7 fields are left out (an element with only L7 fields never matches, as in "
        "ztunnel), malformed parts match anything");

  auto index = AuthzIndex::Build(r.policies);
  const identity::Identity untrusted = Id("spiffe://cluster.local/ns/untrusted/sa/x");
  const mesh::Workload w = kWorkloads[0];
  const ConnectionInfo to_8080 = Conn(&untrusted);
  const ConnectionInfo to_9090 = Conn(&untrusted, "10.0.0.5", "10.0.1.7", 9090);
  const ConnectionInfo trusted = Conn(&Frontend());
  CHECK(std::string(Evaluate(*index, w, to_8080).reason) ==
        "explicitly denied by default/deny-untrusted-admin");
  CHECK(Evaluate(*index, w, to_9090).allow);
  CHECK(Evaluate(*index, w, trusted).allow);
}

TEST_CASE("DENY: an alternative made only of L7 fields is an empty Match, as istiod sends it") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-get, namespace: default}
spec:
  action: DENY
  rules:
  - to:
    - operation: {ports: ["80"]}
    - operation: {methods: ["GET"]}
  - from:
    - source: {requestPrincipals: ["*"]}
  - when:
    - key: request.headers[x-token]
      values: ["abc"]
    - key: destination.port
      values: ["8080"]
  - to:
    - operation: {paths: ["/admin"]}
)");
  REQUIRE(r.policies.size() == 1);
  const mesh::Policy& p = r.policies[0];
  REQUIRE(p.rules.size() == 4);
  // to[]: port 80 or (GET, as an empty Match that never matches).
  REQUIRE(p.rules[0].clauses.size() == 1);
  REQUIRE(p.rules[0].clauses[0].matches.size() == 2);
  CHECK(p.rules[0].clauses[0].matches[0].destination_ports == std::vector<uint16_t>{80});
  CHECK(IsEmptyMatch(p.rules[0].clauses[0].matches[1]));
  // from[] of only an L7 source: one clause of one empty Match.
  REQUIRE(p.rules[1].clauses.size() == 1);
  REQUIRE(p.rules[1].clauses[0].matches.size() == 1);
  CHECK(IsEmptyMatch(p.rules[1].clauses[0].matches[0]));
  // when[]: the header condition is an empty-Match clause, the port one real.
  REQUIRE(p.rules[2].clauses.size() == 2);
  CHECK(IsEmptyMatch(p.rules[2].clauses[0].matches.at(0)));
  CHECK(p.rules[2].clauses[1].matches.at(0).destination_ports == std::vector<uint16_t>{8080});
  REQUIRE(r.findings.size() == 4);
  CHECK(r.findings[1].message.find("uses L7 fields requestPrincipals") != std::string::npos);
  CHECK(r.findings[2].message.find("uses L7 fields when key request.headers[x-token]") !=
        std::string::npos);

  // Only rule 0's port 80 denies: the L7-only parts deny nothing at L4.
  auto index = AuthzIndex::Build(r.policies);
  const mesh::Workload w = kWorkloads[0];
  CHECK(Evaluate(*index, w, Conn(&Frontend())).allow);  // 8080
  CHECK(Evaluate(*index, w, Conn(nullptr)).allow);
  CHECK(std::string(Evaluate(*index, w, Conn(&Frontend(), "10.0.0.5", "10.0.1.7", 80)).reason) ==
        "explicitly denied by default/deny-get");
}

TEST_CASE("scopes: selector, namespace, root namespace") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ns-wide, namespace: prod}
spec: {rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-wide, namespace: istio-system}
spec: {action: DENY, rules: [{to: [{operation: {ports: ["22"]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: all-apis, namespace: istio-system}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: empty-selector, namespace: default}
spec:
  selector: {matchLabels: {}}
)",
                                kWorkloads);
  REQUIRE(r.policies.size() == 4);
  CHECK(FindPolicy(r, "prod/ns-wide")->scope == S::kNamespace);
  CHECK(FindPolicy(r, "istio-system/mesh-wide")->scope == S::kGlobal);
  CHECK(FindPolicy(r, "istio-system/all-apis")->scope == S::kWorkloadSelector);
  CHECK(FindPolicy(r, "default/empty-selector")->scope == S::kNamespace);
  CHECK(KeysOf(r, "api-1") == std::vector<std::string>{"istio-system/all-apis"});
  CHECK(KeysOf(r, "api-prod") == std::vector<std::string>{"istio-system/all-apis"});
  CHECK(KeysOf(r, "web-1").empty());
  CHECK(r.findings.empty());
}

TEST_CASE("spec: {} is allow-nothing, rules: [{}] is allow-all") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: prod}
spec:
  rules:
  - {}
)");
  const mesh::Policy* nothing = FindPolicy(r, "default/allow-nothing");
  REQUIRE(nothing != nullptr);
  CHECK(nothing->action == A::kAllow);
  CHECK(nothing->rules.empty());
  const mesh::Policy* all = FindPolicy(r, "prod/allow-all");
  REQUIRE(all != nullptr);
  REQUIRE(all->rules.size() == 1);
  CHECK(all->rules[0].clauses.empty());
  auto index = AuthzIndex::Build(r.policies);
  const ConnectionInfo plain = Conn(nullptr);
  CHECK_FALSE(Evaluate(*index, kWorkloads[0], plain).allow);
  CHECK(Evaluate(*index, kWorkloads[2], plain).allow);
}

TEST_CASE("source and operation fields, wildcards, IP prefixes") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: fields, namespace: default}
spec:
  rules:
  - from:
    - source:
        principals: ["*", "*/sa/frontend", "cluster.local/ns/default/*", "td/ns/a/sa/b"]
        notPrincipals: ["cluster.local/ns/x/sa/y"]
        namespaces: ["prod-*"]
        notNamespaces: ["kube-system"]
        ipBlocks: ["10.0.0.5", "10.1.0.0/16", "fd00::1"]
        notIpBlocks: ["10.1.2.0/24"]
        serviceAccounts: ["team/builder", "deployer"]
        notServiceAccounts: ["default/legacy"]
    to:
    - operation:
        ports: ["8080", "9090"]
        notPorts: ["15000"]
)");
  REQUIRE(r.findings.empty());
  const mesh::Policy* p = FindPolicy(r, "default/fields");
  REQUIRE(p != nullptr);
  REQUIRE(p->rules.size() == 1);
  REQUIRE(p->rules[0].clauses.size() == 2);
  const mesh::Match& op = p->rules[0].clauses[0].matches.at(0);
  CHECK(op.destination_ports == std::vector<uint16_t>{8080, 9090});
  CHECK(op.not_destination_ports == std::vector<uint16_t>{15000});
  const mesh::Match& src = p->rules[0].clauses[1].matches.at(0);
  REQUIRE(src.principals.size() == 4);
  CHECK(src.principals[0].kind == K::kPresence);
  CHECK(src.principals[1].kind == K::kSuffix);
  CHECK(src.principals[1].value == "/sa/frontend");
  CHECK(src.principals[2].kind == K::kPrefix);
  CHECK(src.principals[2].value == "cluster.local/ns/default/");
  CHECK(src.principals[3].kind == K::kExact);
  CHECK(src.not_principals.at(0).value == "cluster.local/ns/x/sa/y");
  CHECK(src.namespaces.at(0).kind == K::kPrefix);
  CHECK(src.namespaces.at(0).value == "prod-");
  CHECK(src.not_namespaces.at(0).value == "kube-system");
  REQUIRE(src.source_ips.size() == 3);
  CHECK(src.source_ips[0].ToString() == "10.0.0.5/32");
  CHECK(src.source_ips[1].ToString() == "10.1.0.0/16");
  CHECK(src.source_ips[2].ToString() == "fd00::1/128");
  CHECK(src.not_source_ips.at(0).ToString() == "10.1.2.0/24");
  REQUIRE(src.service_accounts.size() == 2);
  CHECK(src.service_accounts[0].ns == "team");
  CHECK(src.service_accounts[0].service_account == "builder");
  CHECK(src.service_accounts[1].ns == "default");  // bare name: policy namespace
  CHECK(src.service_accounts[1].service_account == "deployer");
  CHECK(src.not_service_accounts.at(0).service_account == "legacy");
}

TEST_CASE("when conditions on L4 keys become one clause each") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: conditions, namespace: default}
spec:
  rules:
  - when:
    - key: source.ip
      values: ["10.0.0.0/8"]
      notValues: ["10.9.0.0/16"]
    - key: source.namespace
      values: ["front*"]
    - key: source.principal
      notValues: ["*"]
    - key: destination.ip
      values: ["10.0.1.7"]
    - key: destination.port
      values: ["8080"]
      notValues: ["9090"]
)");
  REQUIRE(r.findings.empty());
  const mesh::Policy* p = FindPolicy(r, "default/conditions");
  REQUIRE(p != nullptr);
  const auto& cl = p->rules.at(0).clauses;
  REQUIRE(cl.size() == 5);
  CHECK(cl[0].matches.at(0).source_ips.at(0).ToString() == "10.0.0.0/8");
  CHECK(cl[0].matches.at(0).not_source_ips.at(0).ToString() == "10.9.0.0/16");
  CHECK(cl[1].matches.at(0).namespaces.at(0).kind == K::kPrefix);
  CHECK(cl[2].matches.at(0).not_principals.at(0).kind == K::kPresence);
  CHECK(cl[3].matches.at(0).destination_ips.at(0).ToString() == "10.0.1.7/32");
  CHECK(cl[4].matches.at(0).destination_ports == std::vector<uint16_t>{8080});
  CHECK(cl[4].matches.at(0).not_destination_ports == std::vector<uint16_t>{9090});
}

TEST_CASE("findings: ALLOW with L7 when key, bad values; DENY with bad values") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mixed, namespace: default}
spec:
  rules:
  - from: [{source: {namespaces: ["a"]}}]
  - when:
    - key: request.auth.claims[iss]
      values: ["x"]
  - from: [{source: {ipBlocks: ["10.0.0.0/33"]}}]
  - to: [{operation: {ports: ["http"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-bad, namespace: default}
spec:
  action: DENY
  rules:
  - from: [{source: {ipBlocks: ["10.0.0.1", "not-an-ip"], namespaces: ["evil"]}}]
)");
  const mesh::Policy* mixed = FindPolicy(r, "default/mixed");
  REQUIRE(mixed != nullptr);
  CHECK(mixed->rules.size() == 1);  // only rule 0 survives
  const std::vector<std::string> m = Messages(r);
  REQUIRE(m.size() == 4);
  CHECK(m[0] == "rule 1 of ALLOW policy dropped: uses L7 fields when key request.auth.claims[iss]; "
                "the agent enforces L4 only (L7 rules need a waypoint: attach the policy to it "
                "with targetRefs) (fail closed)");
  CHECK(m[1] == "rule 2 of ALLOW policy dropped: rules[2].from[0].source.ipBlocks: '10.0.0.0/33' "
                "is not an IP address or CIDR (fail closed)");
  CHECK(m[2] == "rule 3 of ALLOW policy dropped: rules[3].to[0].operation.ports: 'http' is not a "
                "port number (1-65535) (fail closed)");
  CHECK(m[3].starts_with("rule 0 of DENY policy partially applied: "
                         "rules[0].from[0].source.ipBlocks: 'not-an-ip'"));
  // The DENY keeps its namespace condition and drops the whole ipBlocks field.
  const mesh::Policy* deny = FindPolicy(r, "default/deny-bad");
  REQUIRE(deny != nullptr);
  const mesh::Match& src = deny->rules.at(0).clauses.at(0).matches.at(0);
  CHECK(src.source_ips.empty());
  CHECK(src.namespaces.at(0).value == "evil");
}

TEST_CASE("not applied: AUDIT, CUSTOM, targetRefs, unknown apiVersion; dry-run annotation") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: default}
spec: {action: AUDIT, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: default}
spec: {action: CUSTOM, provider: {name: opa}, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: waypoint-policy, namespace: default}
spec:
  targetRefs:
  - {kind: Service, group: "", name: reviews}
  action: DENY
  rules: [{}]
---
apiVersion: security.istio.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: old, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: trial
  namespace: default
  annotations:
    istio.io/dry-run: "true"
spec: {action: DENY, rules: [{}]}
)");
  REQUIRE(r.policies.size() == 1);
  CHECK(r.policies[0].Key() == "default/trial");
  CHECK(r.policies[0].dry_run);
  const std::vector<std::string> m = Messages(r);
  REQUIRE(m.size() == 4);
  CHECK(m[0] == "action AUDIT cannot be enforced by the agent (istiod does not send it to node "
                "proxies); policy not applied");
  CHECK(m[1].starts_with("action CUSTOM cannot be enforced"));
  CHECK(m[2] == "targetRef(s) to Service are enforced by a waypoint, not by the node agent; "
                "policy not applied by the agent");
  CHECK(m[3] == "apiVersion 'security.istio.io/v1alpha1' is not supported (expected "
                "security.istio.io/v1 or v1beta1); resource not applied");
}

}  // namespace
}  // namespace ambit::authz

namespace ambit::authz {
namespace {

using namespace testing;

TEST_CASE("unknown fields, duplicates and empty sources") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: default}
spec:
  actoin: DENY
  rules:
  - form: [{source: {namespaces: ["a"]}}]
  - from: [{source: {}}]
    to: [{operation: {ports: ["80"]}, extra: 1}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: default}
spec: {}
)");
  const std::vector<std::string> m = Messages(r);
  REQUIRE(m.size() == 5);
  CHECK(m[0] == "spec.actoin: unknown field ignored");
  CHECK(m[1] == "rule 0 of ALLOW policy dropped: rules[0].form: unknown field (fail closed)");
  CHECK(m[2] == "rule 1 of ALLOW policy dropped: rules[1].to[0].extra: unknown field; "
                "rules[1].from[0].source: must not be empty (istiod rejects it) (fail closed)");
  CHECK(m[3].starts_with("no rule of this ALLOW policy is enforceable at L4"));
  CHECK(m[4] == "duplicate definition (same kind, namespace and name); this one is ignored");
  REQUIRE(r.policies.size() == 1);
  CHECK(r.policies[0].rules.empty());

  // An empty source is rejected as istiod's validation does: reported, and
  // the ALLOW rule is dropped (fail closed).
  TranslateResult e = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: any-source, namespace: default}
spec:
  rules:
  - from: [{source: {}}, {source: {namespaces: ["a"]}}]
    to: [{operation: {ports: ["80"]}}]
)");
  REQUIRE(e.findings.size() == 2);
  CHECK(e.findings[0].message == "rule 0 of ALLOW policy dropped: rules[0].from[0].source: must "
                                 "not be empty (istiod rejects it) (fail closed)");
  REQUIRE(e.policies.size() == 1);
  CHECK(e.policies[0].rules.empty());
}

TEST_CASE("resources without namespace land in default; other kinds are ignored") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-ns}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec: {hosts: ["x"]}
)");
  REQUIRE(r.policies.size() == 1);
  CHECK(r.policies[0].Key() == "default/no-ns");
  CHECK(r.policies[0].scope == mesh::PolicyScope::kNamespace);
  CHECK(r.findings.empty());
}

}  // namespace
}  // namespace ambit::authz

namespace ambit::authz {
namespace {

using namespace testing;

TEST_CASE("malformed shapes never crash and are reported") {
  const char* specs[] = {
      "rules: oops",
      "rules: [5, [1, 2], null]",
      "rules: [{from: 5, to: {a: 1}, when: x}]",
      "rules: [{from: [5, {source: 7}], to: [{operation: [1]}], when: [5, {key: [1]}]}]",
      "rules: [{from: [{source: {principals: [{a: 1}], ipBlocks: 3}}]}]",
      "rules: [{to: [{operation: {ports: ['99999', '-1', '']}}]}]",
      "selector: 5",
      "selector: {matchLabels: [a]}",
      "action: [ALLOW]",
      "targetRef: 5",
      "targetRefs: [5, {kind: [x]}]",
  };
  for (const char* spec_text : specs) {
    const std::string spec = spec_text;
    CAPTURE(spec);
    const std::string yaml = std::string(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: odd, namespace: default}
spec:
  )") + spec + R"(
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: odd, namespace: default}
spec:
  )" + spec + "\n";
    TranslateResult r = Translate(yaml);
    CHECK_FALSE(r.findings.empty());
    for (const mesh::Policy& p : r.policies) {
      // Whatever survived is never more permissive than allow-nothing for an
      // ALLOW: no rule without a finding explaining it.
      if (p.action == mesh::PolicyAction::kAllow) CHECK(p.rules.empty());
    }
  }
}

}  // namespace
}  // namespace ambit::authz
