// ambit-bench-waypoint-authz: per-request cost of the waypoint's L7
// authorization (waypoint/route/authz.h) with N AuthorizationPolicies bound
// to the waypoint, compiled from YAML as the waypoint does. Each policy has
// one rule like the api-access-policy example (principals, methods, paths,
// a header condition). Scenarios: a request no policy matches (every rule
// scanned, then denied) and one the last policy allows. Prints the compile
// time and ns per evaluation; bounded by --iterations. Never pass/fail.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/route/compile_authz.h"

namespace ambit::waypoint::route {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/waypoint, name: waypoint-0, namespace: demo, serviceAccount: waypoint,
   workloadIps: [10.0.0.9], labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
services: []
)";

struct Headers final : RequestView::Headers {
  void Values(std::string_view name, std::vector<std::string_view>* out) const override {
    if (name == "x-request-id") out->push_back("0b4c3f5e-1111-2222-3333-444455556666");
  }
};

std::string Policies(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += fmt::format(R"(---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p{0}, namespace: demo}}
spec:
  targetRefs: [{{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}}]
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/demo/sa/client-{0}"]}}}}]
    to: [{{operation: {{methods: ["GET", "POST"], paths: ["/api/v{0}/*", "/health"]}}}}]
    when: [{{key: "request.headers[x-request-id]", notValues: [""]}}]
)",
                       i);
  }
  return out;
}

int Main(int argc, char** argv) {
  int iterations = 200000;
  std::vector<int> sizes = {1, 10, 100, 1000};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--policies") == 0) sizes = {std::atoi(argv[i + 1])};
  }
  fmt::print("| policies | compile ms | scenario | ns/request |\n|---|---|---|---|\n");
  for (int n : sizes) {
    auto cfg = config::ParseLocalConfig(std::string(kWorld) + Policies(n), "bench.yaml");
    if (!cfg.ok()) {
      fmt::print(stderr, "{}\n", cfg.status().ToString());
      return 1;
    }
    mesh::WorkloadStore store;
    if (!mesh::ApplyLocalConfig(*cfg, &store).ok()) return 1;
    auto snap = store.Build();
    const auto t0 = Clock::now();
    AuthzCompileResult c =
        CompileAuthz(cfg->resources, *snap, *snap->FindWorkload("c//Pod/demo/waypoint"));
    const double compile_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    Headers headers;
    const std::string last = fmt::format("cluster.local/ns/demo/sa/client-{}", n - 1);
    const std::string last_path = fmt::format("/api/v{}/users", n - 1);
    struct Scenario {
      const char* name;
      std::string_view principal, path;
      bool want;
    } scenarios[] = {{"no policy matches (denied)", "cluster.local/ns/demo/sa/stranger",
                      "/api/v1/users", false},
                     {"the last policy allows", last, last_path, true}};
    for (const Scenario& s : scenarios) {
      AuthzRequest r;
      r.has_identity = true;
      r.principal = s.principal;
      r.ns = "demo";
      r.method = "GET";
      r.path = s.path;
      r.authority = "api.demo";
      r.destination_port = 80;
      r.headers = &headers;
      const AuthzSet& set = c.config->For(nullptr);
      int allowed = 0;
      const auto start = Clock::now();
      for (int i = 0; i < iterations; ++i) allowed += EvaluateAuthz(*c.config, set, r).allow;
      const double ns =
          std::chrono::duration<double, std::nano>(Clock::now() - start).count() / iterations;
      if ((allowed == iterations) != s.want) fmt::print(stderr, "unexpected decision\n");
      fmt::print("| {} | {:.1f} | {} | {:.0f} |\n", n, compile_ms, s.name, ns);
    }
    if (n >= 1000) iterations = std::max(1000, iterations / 10);
  }
  return 0;
}

}  // namespace
}  // namespace ambit::waypoint::route

int main(int argc, char** argv) { return ambit::waypoint::route::Main(argc, argv); }
