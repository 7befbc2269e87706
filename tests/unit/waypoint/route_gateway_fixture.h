// Shared by the Gateway API compiler tests: routes written as YAML go
// through the real config loader, next to a fixed set of services, and are
// compiled by internal::CompileGatewayRoutes.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_util.h"

namespace gwtest {

using namespace ambit::waypoint::route;  // NOLINT: test-local

// demo/reviews: 9080 and 8080 speak HTTP, 5432 is declared TCP.
inline constexpr std::string_view kServices = R"(services:
- name: reviews
  namespace: demo
  hostname: reviews.demo.svc.cluster.local
  vips: ["/10.96.0.1"]
  ports:
  - {port: 9080, name: http}
  - {port: 8080, name: http-alt}
  - {port: 5432, name: tcp-db}
- {name: reviews-v1, namespace: demo, hostname: reviews-v1.demo.svc.cluster.local, vips: ["/10.96.0.2"], ports: {"9080": 9080}}
- {name: reviews-v2, namespace: demo, hostname: reviews-v2.demo.svc.cluster.local, vips: ["/10.96.0.3"], ports: {"9080": 9080}}
- {name: reviews-v3, namespace: demo, hostname: reviews-v3.demo.svc.cluster.local, vips: ["/10.96.0.4"], ports: {"9080": 9080}}
- {name: shadow, namespace: demo, hostname: shadow.demo.svc.cluster.local, vips: ["/10.96.0.5"], ports: {"9080": 9080}}
- {name: ratings, namespace: other, hostname: ratings.other.svc.cluster.local, vips: ["/10.96.1.1"], ports: {"80": 8080}}
- name: greeter
  namespace: demo
  hostname: greeter.demo.svc.cluster.local
  vips: ["/10.96.0.9"]
  ports:
  - {port: 9090, name: grpc}
)";

struct Result {
  RouteConfig cfg;
  std::vector<Finding> findings;
  std::string yaml;

  const RouteTable* Table(std::string_view host, uint16_t port) const {
    return cfg.Find(std::string("demo/") + std::string(host) + ".demo.svc.cluster.local", port);
  }
  // Every finding, one a line, for failure messages.
  std::string All() const {
    std::string s;
    for (const Finding& f : findings) s += f.ToString() + "\n";
    return s;
  }
  // The finding whose text contains `needle` (null if none).
  const Finding* Find(std::string_view needle) const {
    for (const Finding& f : findings) {
      if (f.ToString().find(needle) != std::string::npos) return &f;
    }
    return nullptr;
  }
  // "r.yaml:N" for the first line of the routes that contains `marker`.
  std::string At(std::string_view marker) const {
    const size_t pos = yaml.find(marker);
    REQUIRE_MESSAGE(pos != std::string::npos, marker);
    int line = 1;
    for (size_t i = 0; i < pos; ++i) line += yaml[i] == '\n';
    return "r.yaml:" + std::to_string(line);
  }
};

// Routes first (so their lines are the file's), then the services.
inline Result Compile(std::string_view routes) {
  Result r;
  r.yaml = std::string(routes);
  const std::string text = r.yaml + "\n---\n" + std::string(kServices);
  auto lc = ambit::config::ParseLocalConfig(text, "r.yaml");
  REQUIRE_MESSAGE(lc.ok(), lc.status().ToString());
  ambit::mesh::WorkloadStore store;
  REQUIRE(ambit::mesh::ApplyLocalConfig(*lc, &store).ok());
  auto snap = store.Build();
  internal::Sink sink(&r.findings);
  internal::CompileGatewayRoutes(lc->resources, *snap, &r.cfg, sink);
  return r;
}

inline std::vector<std::string> Names(const RouteTable& t) {
  std::vector<std::string> out;
  for (const Route& r : t.routes) out.push_back(r.name);
  return out;
}

inline std::string Cluster(std::string_view host, uint16_t port) {
  return "inbound-vip|" + std::to_string(port) + "|http|" + std::string(host) +
         ".demo.svc.cluster.local";
}

}  // namespace gwtest
