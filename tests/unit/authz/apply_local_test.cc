// Standalone wiring end to end: one config file with workloads (labels),
// a `policies:` entry and Istio resources → store → snapshot → index.
#include <doctest/doctest.h>

#include "common/authz/apply_local.h"
#include "common/authz/evaluate.h"
#include "common/mesh/from_config.h"
#include "common/config/loader.h"
#include "tests/unit/authz/authz_test_util.h"

namespace ambit::authz {
namespace {

using namespace testing;

constexpr const char* kConfig = R"(
workloads:
- uid: api
  name: api
  namespace: default
  serviceAccount: api
  trustDomain: cluster.local
  workloadIps: ["10.0.1.7"]
  protocol: HBONE
  labels: {app: api}
- uid: web
  name: web
  namespace: default
  workloadIps: ["10.0.1.8"]
  labels: {app: web}
policies:
- name: no-ssh
  namespace: default
  scope: Namespace
  action: Deny
  rules: [[[{destinationPorts: [22]}]]]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-from-frontend, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/frontend"]}}]
)";

TEST_CASE("config file → store → snapshot → authorization decisions") {
  auto cfg = config::ParseLocalConfig(kConfig, "local.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  auto result = ApplyIstioResources(*cfg, &store);
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  CHECK(result->findings.empty());
  auto snap = store.Build();
  const mesh::Workload* api = snap->FindWorkload("api");
  const mesh::Workload* web = snap->FindWorkload("web");
  REQUIRE(api != nullptr);
  REQUIRE(web != nullptr);
  CHECK(api->authorization_policies ==
        std::vector<std::string>{"default/api-from-frontend",
                                 "istio-system/istio_converted_static_strict"});
  CHECK(web->authorization_policies ==
        std::vector<std::string>{"istio-system/istio_converted_static_strict"});

  auto index = AuthzIndex::Build(snap->policies(), snap->workloads());
  const identity::Identity other = Id("spiffe://cluster.local/ns/default/sa/other");
  const ConnectionInfo fe = Conn(&Frontend());
  const ConnectionInfo fe_ssh = Conn(&Frontend(), "10.0.0.5", "10.0.1.7", 22);
  const ConnectionInfo plain = Conn(nullptr);
  const ConnectionInfo from_other = Conn(&other);
  CHECK(std::string(Evaluate(*index, *api, fe).reason) == "allowed by default/api-from-frontend");
  CHECK(std::string(Evaluate(*index, *api, fe_ssh).reason) == "explicitly denied by default/no-ssh");
  CHECK(std::string(Evaluate(*index, *api, plain).reason) ==
        "explicitly denied by istio-system/istio_converted_static_strict");
  CHECK(std::string(Evaluate(*index, *api, from_other).reason) ==
        "allow policies exist, but none allowed");
  CHECK(Evaluate(*index, *web, from_other).allow);
  CHECK_FALSE(Evaluate(*index, *web, plain).allow);
}

TEST_CASE("a translated policy may not shadow a policies: entry") {
  auto cfg = config::ParseLocalConfig(R"(
policies:
- {name: dup, namespace: default, scope: Namespace, action: Allow, rules: []}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dup, namespace: default}
spec: {}
)",
                                      "local.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  auto result = ApplyIstioResources(*cfg, &store);
  REQUIRE_FALSE(result.ok());
  CHECK(std::string(result.status().message()) ==
        "policy default/dup is defined both under `policies:` and as an Istio resource; rename "
        "one");
}

}  // namespace
}  // namespace ambit::authz
