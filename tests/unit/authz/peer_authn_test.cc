// PeerAuthentication translation: STRICT / PERMISSIVE / UNSET inheritance,
// precedence, port-level mTLS; checked through the evaluator.
#include <doctest/doctest.h>

#include "common/authz/evaluate.h"
#include "tests/unit/authz/authz_test_util.h"
#include "tests/unit/authz/translate_util.h"

namespace ambit::authz {
namespace {

using namespace testing;

constexpr const char* kStrictKey = "istio-system/istio_converted_static_strict";

const std::vector<mesh::Workload> kWorkloads = {
    Wl("api", "default", {{"app", "api"}}),
    Wl("web", "default", {{"app", "web"}}),
    Wl("db", "prod", {{"app", "db"}}),
};

// Evaluates plaintext and mTLS connections to `port` of workload `uid`.
struct Outcome {
  bool plaintext, mtls;
  std::string deny_policy;  // plaintext decision's policy
};
Outcome Run(const TranslateResult& r, const std::string& uid, uint16_t port) {
  std::vector<mesh::Workload> ws = kWorkloads;
  AttachWorkloadPolicies(r, ws);
  auto index = AuthzIndex::Build(r.policies);
  const mesh::Workload* w = nullptr;
  for (const auto& x : ws) {
    if (x.uid == uid) w = &x;
  }
  REQUIRE(w != nullptr);
  const ConnectionInfo plain = Conn(nullptr, "10.0.0.5", "10.0.1.7", port);
  const ConnectionInfo mtls = Conn(&Frontend(), "10.0.0.5", "10.0.1.7", port);
  Decision p = Evaluate(*index, *w, plain);
  Decision m = Evaluate(*index, *w, mtls);
  return {p.allow, m.allow, std::string(p.policy)};
}

TEST_CASE("namespace STRICT: plaintext denied by the static strict policy") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  mtls:
    mode: STRICT
)",
                                kWorkloads);
  CHECK(r.findings.empty());
  REQUIRE(r.policies.size() == 1);
  const mesh::Policy& p = r.policies[0];
  CHECK(p.Key() == kStrictKey);
  CHECK(p.action == mesh::PolicyAction::kDeny);
  CHECK(p.scope == mesh::PolicyScope::kWorkloadSelector);
  REQUIRE(p.rules.size() == 1);
  const mesh::Match& m = p.rules[0].clauses.at(0).matches.at(0);
  REQUIRE(m.not_principals.size() == 1);
  CHECK(m.not_principals[0].kind == K::kPresence);
  CHECK(KeysOf(r, "api") == std::vector<std::string>{kStrictKey});
  CHECK(KeysOf(r, "web") == std::vector<std::string>{kStrictKey});
  CHECK(KeysOf(r, "db").empty());

  Outcome o = Run(r, "api", 8080);
  CHECK_FALSE(o.plaintext);
  CHECK(o.deny_policy == kStrictKey);
  CHECK(o.mtls);
  CHECK(Run(r, "db", 8080).plaintext);
}

TEST_CASE("mesh STRICT, namespace PERMISSIVE, workload overrides") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mesh, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: relaxed, namespace: prod}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web-legacy, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api-inherit, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: UNSET}
)",
                                kWorkloads);
  CHECK(r.findings.empty());
  CHECK(KeysOf(r, "api") == std::vector<std::string>{kStrictKey});  // UNSET → mesh STRICT
  CHECK(KeysOf(r, "web").empty());                                   // DISABLE wins
  CHECK(KeysOf(r, "db").empty());                                    // namespace PERMISSIVE
  CHECK_FALSE(Run(r, "api", 80).plaintext);
  CHECK(Run(r, "web", 80).plaintext);
  CHECK(Run(r, "db", 80).plaintext);
}

TEST_CASE("port-level PERMISSIVE under STRICT excludes the port") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api-ports, namespace: default}
spec:
  selector:
    matchLabels:
      app: api
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: PERMISSIVE
    9000:
      mode: UNSET
)",
                                kWorkloads);
  CHECK(r.findings.empty());
  const std::string key = "default/converted_peer_authentication_api-ports";
  CHECK(KeysOf(r, "api") == std::vector<std::string>{key});
  CHECK(KeysOf(r, "web").empty());
  const mesh::Policy* p = FindPolicy(r, key);
  REQUIRE(p != nullptr);
  const mesh::Match& m = p->rules.at(0).clauses.at(0).matches.at(0);
  CHECK(m.not_principals.at(0).kind == K::kPresence);
  CHECK(m.not_destination_ports == std::vector<uint16_t>{8080});
  CHECK(m.destination_ports.empty());
  CHECK(Run(r, "api", 8080).plaintext);
  Outcome o = Run(r, "api", 9000);
  CHECK_FALSE(o.plaintext);
  CHECK(o.deny_policy == key);
  CHECK(o.mtls);
}

TEST_CASE("port-level STRICT under a PERMISSIVE default denies plaintext on that port only") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db-admin, namespace: prod}
spec:
  selector: {matchLabels: {app: db}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls:
    "5432": {mode: STRICT}
)",
                                kWorkloads);
  CHECK(r.findings.empty());
  const mesh::Policy* p = FindPolicy(r, "prod/converted_peer_authentication_db-admin");
  REQUIRE(p != nullptr);
  CHECK(p->rules.at(0).clauses.at(0).matches.at(0).destination_ports ==
        std::vector<uint16_t>{5432});
  CHECK_FALSE(Run(r, "db", 5432).plaintext);
  CHECK(Run(r, "db", 5432).mtls);
  CHECK(Run(r, "db", 8080).plaintext);
}

TEST_CASE("PERMISSIVE everywhere or no PeerAuthentication: no policies") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
)",
                                kWorkloads);
  CHECK(r.policies.empty());
  CHECK(r.workload_policies.empty());
}

TEST_CASE("conflicts and bad values are reported") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: first, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: second, namespace: default}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: odd, namespace: prod}
spec:
  mtls: {mode: MAYBE}
  portLevelMtls:
    http: {mode: STRICT}
)",
                                kWorkloads);
  const std::vector<std::string> m = Messages(r);
  REQUIRE(m.size() == 3);
  CHECK(m[0] == "spec.mtls.mode: must be UNSET, DISABLE, PERMISSIVE or STRICT; treated as UNSET");
  CHECK(m[1] == "spec.portLevelMtls[http]: spec.portLevelMtls: 'http' is not a port number "
                "(1-65535); entry ignored");
  CHECK(m[2] == "another namespace-wide PeerAuthentication (default/first) already applies; "
                "this one is ignored");
  CHECK(r.findings[2].resource == "default/second");
  CHECK(KeysOf(r, "api") == std::vector<std::string>{kStrictKey});
}

TEST_CASE("two selectors on one workload: the first applies, the other is reported") {
  TranslateResult r = Translate(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: PERMISSIVE}
)",
                                kWorkloads);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].resource == "default/b");
  CHECK(r.findings[0].message == "selects workload api already selected by PeerAuthentication "
                                 "default/a; ignored for the workloads both select");
  CHECK(KeysOf(r, "api") == std::vector<std::string>{kStrictKey});
  CHECK_FALSE(Run(r, "api", 80).plaintext);
}

}  // namespace
}  // namespace ambit::authz
