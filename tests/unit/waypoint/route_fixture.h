// A small world for route compiler tests: services demo/reviews (80, 9080),
// demo/ratings (80), other/details (80), pods with version labels, plus the
// routing documents under test, compiled through the real loader.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/route/compile.h"

namespace ambit::waypoint::route::testing {

inline constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/reviews-v1, name: reviews-v1, namespace: demo, workloadIps: [10.0.0.1],
   protocol: HBONE, labels: {app: reviews, version: v1},
   services: {"demo/reviews.demo.svc.cluster.local": {80: 8080, 9080: 9080}}}
- {uid: c//Pod/demo/reviews-v2, name: reviews-v2, namespace: demo, workloadIps: [10.0.0.2],
   protocol: HBONE, labels: {app: reviews, version: v2},
   services: {"demo/reviews.demo.svc.cluster.local": {80: 8080, 9080: 9080}}}
- {uid: c//Pod/demo/ratings-1, name: ratings-1, namespace: demo, workloadIps: [10.0.0.3],
   protocol: HBONE, labels: {app: ratings},
   services: {"demo/ratings.demo.svc.cluster.local": {80: 8080}}}
- {uid: c//Pod/other/details-1, name: details-1, namespace: other, workloadIps: [10.0.0.4],
   protocol: HBONE, labels: {app: details},
   services: {"other/details.other.svc.cluster.local": {80: 8080}}}
services:
- {name: reviews, namespace: demo, hostname: reviews.demo.svc.cluster.local,
   vips: [/10.96.0.20], ports: {80: 8080, 9080: 9080}}
- {name: ratings, namespace: demo, hostname: ratings.demo.svc.cluster.local,
   vips: [/10.96.0.21], ports: {80: 8080}}
- {name: details, namespace: other, hostname: details.other.svc.cluster.local,
   vips: [/10.96.0.22], ports: [{port: 80, targetPort: 8080, appProtocol: http}, {port: 5432, appProtocol: tcp}]}
)";

struct Compiled {
  std::shared_ptr<const mesh::Snapshot> snap;
  CompileResult result;
  const RouteTable* Table(std::string_view svc, uint16_t port) const {
    return result.config->Find(svc, port);
  }
  // Findings whose text contains `needle`.
  std::vector<std::string> FindingsWith(std::string_view needle) const {
    std::vector<std::string> out;
    for (const auto& f : result.findings) {
      std::string s = f.ToString();
      if (s.find(needle) != std::string::npos) out.push_back(s);
    }
    return out;
  }
  std::string AllFindings() const {
    std::string s;
    for (const auto& f : result.findings) s += f.ToString() + "\n";
    return s;
  }
};

// `docs` follows kWorld after "---" (its first line is line 25 of the file).
inline Compiled CompileWorld(const std::string& docs) {
  std::string text = std::string(kWorld) + "---\n" + docs;
  auto cfg = config::ParseLocalConfig(text, "routes.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  Compiled c;
  c.snap = store.Build();
  c.result = Compile(cfg->resources, *c.snap, 1);
  return c;
}

// Line in the compiled file of line `n` (1-based) of `docs`.
inline int DocLine(int n) {
  int lines = 0;
  for (char ch : kWorld) lines += ch == '\n';
  return lines + 1 /* --- */ + n;
}

// Request headers as a flat list.
class FakeHeaders final : public RequestView::Headers {
 public:
  explicit FakeHeaders(std::vector<std::pair<std::string, std::string>> h) : h_(std::move(h)) {}
  void Values(std::string_view name, std::vector<std::string_view>* out) const override {
    for (const auto& [k, v] : h_) {
      if (k == name) out->push_back(v);
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> h_;
};

struct Req {
  std::string method = "GET";
  std::string path = "/";
  std::string authority = "reviews";
  uint16_t port = 80;
  std::vector<std::pair<std::string, std::string>> headers;
  std::map<std::string, std::string> labels;
  std::string ns = "demo";
};

// The name of the route `r` matches in `t` ("" = none).
inline std::string RouteFor(const RouteTable& t, const Req& r) {
  FakeHeaders h(r.headers);
  RequestView v;
  v.method = r.method;
  v.path = r.path;
  v.authority = r.authority;
  v.port = r.port;
  v.headers = &h;
  v.source_labels = &r.labels;
  v.source_namespace = r.ns;
  const Route* route = MatchRoute(t, v);
  return route == nullptr ? std::string() : route->name;
}

}  // namespace ambit::waypoint::route::testing
