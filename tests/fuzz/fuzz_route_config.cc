// Fuzz target: routing documents (VirtualService, DestinationRule,
// HTTPRoute, GRPCRoute, ReferenceGrant) and AuthorizationPolicies through
// the loader and the route / authz compilers, then a few requests matched
// against every table compiled and authorized against every policy set.
// Properties: a rejected file names its problem; an accepted one compiles
// (findings carry a location and a message), and matching, picking and
// rewriting never crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "tests/fuzz/fuzz_util.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_authz.h"
#include "waypoint/route/rewrite.h"

namespace {

// Services the fuzzed documents can name (the input is appended after it).
constexpr std::string_view kWorld = R"(services:
- {name: reviews, namespace: demo, hostname: reviews.demo.svc.cluster.local,
   vips: [/10.96.0.20], ports: {80: 8080, 9080: 9080}}
- {name: ratings, namespace: demo, hostname: ratings.demo.svc.cluster.local,
   vips: [/10.96.0.21], ports: {80: 8080}}
workloads:
- {uid: c//Pod/demo/r1, name: r1, namespace: demo, workloadIps: [10.0.0.1], protocol: HBONE,
   labels: {version: v1}, services: {"demo/reviews.demo.svc.cluster.local": {80: 8080}}}
- {uid: c//Pod/demo/wp, name: wp, namespace: demo, workloadIps: [10.0.0.9],
   labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
---
)";

class NoHeaders final : public ambit::waypoint::route::RequestView::Headers {
 public:
  void Values(std::string_view name, std::vector<std::string_view>* out) const override {
    if (name == "x-canary-user") out->push_back("true");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(kWorld);
  text.append(reinterpret_cast<const char*>(data), size);
  auto cfg = ambit::config::ParseLocalConfig(text, "fuzz.yaml");
  if (!cfg.ok()) {
    FUZZ_CHECK(!cfg.status().message().empty());
    return 0;
  }
  ambit::mesh::WorkloadStore store;
  if (!ambit::mesh::ApplyLocalConfig(*cfg, &store).ok()) return 0;
  auto snap = store.Build();
  using namespace ambit::waypoint::route;
  CompileResult r = Compile(cfg->resources, *snap, 1);
  FUZZ_CHECK(r.config != nullptr);
  for (const Finding& f : r.findings) {
    FUZZ_CHECK(!f.location.empty() && !f.message.empty());
  }
  NoHeaders headers;
  if (const ambit::mesh::Workload* self = snap->FindWorkload("c//Pod/demo/wp")) {
    AuthzCompileResult a = CompileAuthz(cfg->resources, *snap, *self);
    FUZZ_CHECK(a.config != nullptr);
    for (const Finding& f : a.findings) {
      FUZZ_CHECK(!f.location.empty() && !f.message.empty());
    }
    std::string scratch;
    for (std::string_view path : {"/", "/api/v1/../x?y=1", "/%2e%2e/a", ""}) {
      AuthzRequest q;
      q.has_identity = true;
      q.principal = "cluster.local/ns/demo/sa/frontend";
      q.ns = "demo";
      q.method = "GET";
      q.path = AuthzPath(path, &scratch);
      q.authority = "reviews:80";
      q.destination_port = 80;
      q.headers = &headers;
      for (bool tcp : {false, true}) {
        q.tcp = tcp;
        (void)EvaluateAuthz(*a.config, a.config->waypoint_wide, q);
        for (const auto& [k, set] : a.config->by_service) (void)EvaluateAuthz(*a.config, set, q);
      }
    }
  }
  for (const auto& [key, table] : r.config->tables) {
    for (std::string_view path : {"/", "/api/v1?x=1", "/foo/bar", ""}) {
      RequestView v;
      v.method = "GET";
      v.path = path;
      v.authority = "reviews:80";
      v.port = table.port;
      v.headers = &headers;
      const RouteMatch* m = nullptr;
      const Route* route = MatchRoute(table, v, &m);
      if (route == nullptr) continue;
      (void)PickCluster(*route, size);
      (void)RewritePath(route->rewrite, m ? &m->path : nullptr, path);
      if (route->redirect) {
        (void)RedirectLocation(*route->redirect, m ? &m->path : nullptr, "http", v.authority,
                               path, table.port);
      }
    }
  }
  return 0;
}
