// Standalone waypoint binding (waypoint_binding.h), rule by rule, through the
// loader and ApplyLocalConfig as the agent runs them.
#include "common/mesh/waypoint_binding.h"

#include <doctest/doctest.h>

#include <string>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "tests/unit/mesh/fixtures.h"

using namespace ambit;
using namespace ambit::mesh;
using namespace ambit::mesh::testing;

namespace {

// A waypoint "wp" in namespace "infra" (pod + service), a backend service in
// "app"; EXTRA is appended to the document (more namespaces, labels...).
std::string Base(const std::string& svc_labels, const std::string& extra,
                 const std::string& wp_labels = "", const std::string& server_labels = "") {
  return R"(workloads:
- name: wp-0
  namespace: infra
  workloadIps: ["10.44.4.10"]
  protocol: HBONE
  serviceAccount: wp
  labels: {gateway.networking.k8s.io/gateway-name: wp)" + wp_labels + R"(}
  services: {"infra/wp.infra.svc.cluster.local": {15008: 15008}}
- name: server
  namespace: app
  workloadIps: ["10.44.2.10"]
  protocol: HBONE
  labels: {app: server)" + server_labels + R"(}
  services: {"app/httpbin.app.svc.cluster.local": {80: 8080}}
services:
- name: wp
  namespace: infra
  hostname: wp.infra.svc.cluster.local
  vips: ["/10.96.0.99"]
  ports: {15008: 15008}
- name: httpbin
  namespace: app
  hostname: httpbin.app.svc.cluster.local
  vips: ["/10.96.0.10"]
  ports: {80: 8080}
  labels: {)" + svc_labels + R"(}
)" + extra;
}

struct Result {
  std::shared_ptr<const Snapshot> snap;
  std::vector<std::string> findings;
  Status status;
};

Result Apply(const std::string& yaml) {
  auto cfg = config::ParseLocalConfig(yaml, "c.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  WorkloadStore store;
  Result r;
  r.status = ApplyLocalConfig(*cfg, &store, &r.findings);
  if (r.status.ok()) r.snap = store.Build();
  return r;
}

std::string ServiceWaypoint(const Result& r, const std::string& key = "app/httpbin.app.svc.cluster.local") {
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  const Service* s = r.snap->FindServiceByKey(key);
  REQUIRE(s != nullptr);
  if (!s->waypoint) return "none";
  if (const auto* h = std::get_if<NamespacedHostname>(&s->waypoint->destination)) {
    return h->Key() + ":" + std::to_string(s->waypoint->hbone_mtls_port);
  }
  return std::get<NetworkAddress>(s->waypoint->destination).ip.ToString();
}

std::string WorkloadWaypoint(const Result& r, const std::string& uid) {
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  const Workload* w = r.snap->FindWorkload(uid);
  REQUIRE(w != nullptr);
  if (!w->waypoint) return "none";
  if (const auto* h = std::get_if<NamespacedHostname>(&w->waypoint->destination)) return h->Key();
  return std::get<NetworkAddress>(w->waypoint->destination).ip.ToString();
}

const char* kAllowAll = R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: infra, labels: {istio.io/waypoint-for: all}}
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - {name: mesh, port: 15008, protocol: HBONE, allowedRoutes: {namespaces: {from: All}}}
)";

constexpr const char* kWp = "infra/wp.infra.svc.cluster.local:15008";
constexpr const char* kServerUid = "//Pod/app/server";

}  // namespace

TEST_CASE("no labels: no waypoint") {
  Result r = Apply(Base("", ""));
  CHECK(ServiceWaypoint(r) == "none");
  CHECK(r.findings.empty());
}

TEST_CASE("service label in the waypoint's own namespace; cross-namespace needs allowedRoutes") {
  // Waypoint declared only by its pod's gateway-name label: Same namespace only.
  Result same_only =
      Apply(Base("istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: infra", ""));
  CHECK(ServiceWaypoint(same_only) == "none");
  REQUIRE(same_only.findings.size() == 1);
  CHECK(same_only.findings[0] ==
        "service app/httpbin (line 21): waypoint infra/wp does not allow attachment from "
        "namespace app (its HBONE listener's allowedRoutes)");

  Result r =
      Apply(Base("istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: infra", kAllowAll));
  CHECK(ServiceWaypoint(r) == kWp);
  CHECK(r.findings.empty());
}

TEST_CASE("namespace label applies to its services; the service's own label wins; none opts out") {
  const std::string ns = "namespaces:\n- name: app\n  labels: {istio.io/use-waypoint: wp, "
                         "istio.io/use-waypoint-namespace: infra}\n";
  CHECK(ServiceWaypoint(Apply(Base("", ns + kAllowAll))) == kWp);
  Result none = Apply(Base("istio.io/use-waypoint: none", ns + kAllowAll));
  CHECK(ServiceWaypoint(none) == "none");
  CHECK(none.findings.empty());
  // The service names another waypoint: that one, not the namespace's.
  std::string other = std::string(kAllowAll) + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp2, namespace: app}
spec: {gatewayClassName: ambit-waypoint}
---
workloads:
- {name: wp2-0, namespace: app, workloadIps: ["10.44.4.20"], labels: {gateway.networking.k8s.io/gateway-name: wp2}}
)";
  CHECK(ServiceWaypoint(Apply(Base("istio.io/use-waypoint: wp2", ns + other))) == "10.44.4.20");
  // A namespace-level none is no binding either.
  CHECK(ServiceWaypoint(Apply(Base("", "namespaces:\n- {name: app, labels: "
                                       "{istio.io/use-waypoint: none}}\n"))) == "none");
}

TEST_CASE("waypoint-for decides what binds; an inherited workload binding to a service "
          "waypoint is silent") {
  const std::string ns = "namespaces:\n- name: infra\n  labels: {istio.io/use-waypoint: wp}\n";
  // The backend lives in infra too for these cases.
  auto yaml = [&](const std::string& wp_for, const std::string& server_labels) {
    std::string s = Base("", ns, "", server_labels);
    for (auto [from, to] : {std::pair<std::string, std::string>{"namespace: app", "namespace: infra"},
                            {"app/httpbin", "infra/httpbin"},
                            {"httpbin.app.svc", "httpbin.infra.svc"}}) {
      for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
        s.replace(p, from.size(), to);
      }
    }
    if (!wp_for.empty()) {
      s += "gateways:\n- metadata: {name: wp, namespace: infra, labels: {istio.io/waypoint-for: " +
           wp_for + "}}\n  spec: {gatewayClassName: istio-waypoint}\n";
    }
    return s;
  };
  const std::string svc = "infra/httpbin.infra.svc.cluster.local";
  const std::string uid = "//Pod/infra/server";
  Result def = Apply(yaml("", ""));  // default: service
  CHECK(ServiceWaypoint(def, svc) == kWp);
  CHECK(WorkloadWaypoint(def, uid) == "none");
  CHECK(def.findings.empty());

  Result all = Apply(yaml("all", ""));
  CHECK(ServiceWaypoint(all, svc) == kWp);
  CHECK(WorkloadWaypoint(all, uid) == "infra/wp.infra.svc.cluster.local");

  Result wl = Apply(yaml("workload", ""));
  CHECK(ServiceWaypoint(wl, svc) == "none");
  CHECK(WorkloadWaypoint(wl, uid) == "infra/wp.infra.svc.cluster.local");
  REQUIRE(wl.findings.size() == 1);
  CHECK(wl.findings[0].ends_with("waypoint infra/wp is istio.io/waypoint-for: workload, not service"));

  Result none = Apply(yaml("none", ""));
  CHECK(ServiceWaypoint(none, svc) == "none");
  CHECK(WorkloadWaypoint(none, uid) == "none");

  // The workload's own label on a service-only waypoint is reported.
  Result own = Apply(yaml("service", ", istio.io/use-waypoint: wp"));
  CHECK(WorkloadWaypoint(own, uid) == "none");
  REQUIRE(own.findings.size() == 1);
  CHECK(own.findings[0].ends_with("is istio.io/waypoint-for: service, not workload"));

  // Workload none beats the namespace label; the service keeps its own binding.
  Result wnone = Apply(yaml("all", ", istio.io/use-waypoint: none"));
  CHECK(WorkloadWaypoint(wnone, uid) == "none");
  CHECK(ServiceWaypoint(wnone, svc) == kWp);
}

TEST_CASE("a waypoint and its own service never get a waypoint") {
  const std::string ns = "namespaces:\n- {name: infra, labels: {istio.io/use-waypoint: wp}}\n";
  std::string yaml = Base("", ns) +
                     "gateways:\n- metadata: {name: wp, namespace: infra, labels: "
                     "{istio.io/waypoint-for: all}}\n  spec: {gatewayClassName: istio-waypoint}\n";
  Result r = Apply(yaml);
  CHECK(ServiceWaypoint(r, "infra/wp.infra.svc.cluster.local") == "none");
  CHECK(WorkloadWaypoint(r, "//Pod/infra/wp-0") == "none");
  REQUIRE(r.snap->FindWorkload("//Pod/infra/wp-0") != nullptr);
  CHECK(IsWaypointInstance(*r.snap->FindWorkload("//Pod/infra/wp-0")));
  CHECK_FALSE(IsWaypointInstance(*r.snap->FindWorkload(kServerUid)));
}

TEST_CASE("an explicit waypoint: field wins over labels") {
  std::string yaml = Base("istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: infra",
                          kAllowAll);
  yaml.replace(yaml.find("  labels: {istio.io/use-waypoint: wp"), 0,
               "  waypoint: {destination: \"/10.44.9.9\"}\n");
  CHECK(ServiceWaypoint(Apply(yaml)) == "10.44.9.9");
}

TEST_CASE("unknown and unready waypoints are findings, not errors") {
  Result gone = Apply(Base("istio.io/use-waypoint: nope", ""));
  CHECK(ServiceWaypoint(gone) == "none");
  REQUIRE(gone.findings.size() == 1);
  CHECK(gone.findings[0] == "service app/httpbin (line 21): waypoint app/nope not found");

  // Declared by a Gateway, but no service and no instance: not ready.
  Result unready = Apply(Base("istio.io/use-waypoint: lonely",
                              "gateways:\n- metadata: {name: lonely, namespace: app}\n"
                              "  spec: {gatewayClassName: istio-waypoint}\n"));
  CHECK(ServiceWaypoint(unready) == "none");
  REQUIRE(unready.findings.size() == 1);
  CHECK(unready.findings[0].ends_with("waypoint app/lonely is not ready: no service lonely in "
                                      "namespace app and no instance with an address"));
  // A Gateway of another class is not a waypoint.
  Result ingress = Apply(Base("istio.io/use-waypoint: gw",
                              "gateways:\n- metadata: {name: gw, namespace: app}\n"
                              "  spec: {gatewayClassName: istio}\n"));
  REQUIRE(ingress.findings.size() == 1);
  CHECK(ingress.findings[0].ends_with("waypoint app/gw not found"));
}

TEST_CASE("Selector attachment matches the namespace's labels") {
  std::string gw = R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: infra}
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
    allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {mesh: "yes"}}}}
)";
  const std::string use = "istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: infra";
  CHECK(ServiceWaypoint(Apply(Base(use, "namespaces:\n- {name: app, labels: {mesh: \"yes\"}}\n" + gw))) ==
        kWp);
  CHECK(ServiceWaypoint(Apply(Base(use, "namespaces:\n- {name: app, labels: {mesh: \"no\"}}\n" + gw))) ==
        "none");
  CHECK(ServiceWaypoint(Apply(Base(use, gw))) == "none");  // namespace not listed
}

TEST_CASE("malformed values are config errors naming the entry") {
  CHECK(Apply(Base("istio.io/use-waypoint: \"a/b\"", "")).status.message() ==
        "service app/httpbin (line 21): label istio.io/use-waypoint: 'a/b' is not a waypoint "
        "name (or none)");
  CHECK(Apply(Base("istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: \"\"", ""))
            .status.message() ==
        "service app/httpbin (line 21): label istio.io/use-waypoint-namespace: '' is not a "
        "namespace name");
  CHECK(Apply(Base("", "namespaces:\n- {name: app}\n- {name: app}\n")).status.message() ==
        "namespace app (line 29): duplicate namespace");
  CHECK(Apply(Base("", "namespaces:\n- {name: app, labels: {istio.io/use-waypoint: \"x y\"}}\n"))
            .status.message() ==
        "namespace app: label istio.io/use-waypoint: 'x y' is not a waypoint name (or none)");
  CHECK(std::string(Apply(Base("", std::string(kAllowAll) + kAllowAll)).status.message())
            .ends_with("Gateway infra/wp: duplicate waypoint"));
}
