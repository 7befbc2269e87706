// Clusters and endpoints: per-request round robin over healthy endpoints,
// port translation, never the waypoint itself, pool keys per pod.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "tests/unit/mesh/fixtures.h"
#include "waypoint/proxy/cluster.h"

using namespace ambit;
using namespace ambit::mesh;
using namespace ambit::mesh::testing;
using waypoint::EndpointPicker;

namespace {

struct World {
  std::shared_ptr<const Snapshot> snap;
  const Service* svc = nullptr;
  const Workload* self = nullptr;
};

World Make(int pods, bool one_unhealthy = false) {
  WorkloadStore store;
  Service svc = Svc("demo", "echo", "10.96.0.30", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  for (int i = 0; i < pods; ++i) {
    Workload w = Pod("demo", "echo-" + std::to_string(i), "10.0.0." + std::to_string(i + 10));
    if (one_unhealthy && i == 0) w.status = WorkloadStatus::kUnhealthy;
    Join(w, svc);
    REQUIRE(store.UpsertWorkload(w).ok());
  }
  Workload wp = Pod("demo", "waypoint", "10.0.0.99");
  Join(wp, svc);  // even if the waypoint were an endpoint, it never picks itself
  REQUIRE(store.UpsertWorkload(wp).ok());
  World out;
  out.snap = store.Build();
  out.svc = out.snap->FindServiceByKey(svc.Key());
  out.self = out.snap->FindWorkload(wp.uid);
  return out;
}

// ROUND_ROBIN named by a DestinationRule (the default is LEAST_REQUEST).
const waypoint::route::TrafficPolicy& RoundRobin() {
  static const waypoint::route::TrafficPolicy p = [] {
    waypoint::route::TrafficPolicy t;
    t.load_balancer.emplace().kind = waypoint::route::LoadBalancerPolicy::Kind::kRoundRobin;
    return t;
  }();
  return p;
}

}  // namespace

TEST_CASE("round robin: 1,000 picks over 3 endpoints are exactly even") {
  World w = Make(3);
  EndpointPicker picker;
  std::map<std::string, int> counts;
  for (int i = 0; i < 999; ++i) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin()});
    REQUIRE(ep != nullptr);
    CHECK(ep->address.port() == 8080);
    CHECK(ep->workload->name != "waypoint");
    counts[ep->workload->name]++;
  }
  CHECK(counts.size() == 3);
  for (const auto& [name, n] : counts) CHECK(n == 333);
}

TEST_CASE("unhealthy endpoints and unknown ports get nothing") {
  World w = Make(2, /*one_unhealthy=*/true);
  EndpointPicker picker;
  for (int i = 0; i < 10; ++i) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self);
    REQUIRE(ep != nullptr);
    CHECK(ep->workload->name == "echo-1");
  }
  CHECK(picker.Pick(w.snap, *w.svc, 81, *w.self) == nullptr);
}

TEST_CASE("no endpoint at all: nullopt (no healthy upstream)") {
  World w = Make(0);
  EndpointPicker picker;
  CHECK(picker.Pick(w.snap, *w.svc, 80, *w.self) == nullptr);
}

TEST_CASE("avoid skips the endpoint a failed try used, unless it is the only one") {
  World w = Make(2);
  EndpointPicker picker;
  auto a = picker.Pick(w.snap, *w.svc, 80, *w.self);
  REQUIRE(a != nullptr);
  auto b = picker.Pick(w.snap, *w.svc, 80, *w.self, {.avoid = a->Key()});
  REQUIRE(b != nullptr);
  CHECK(b->Key() != a->Key());
  World one = Make(1);
  auto only = picker.Pick(one.snap, *one.svc, 80, *one.self);
  REQUIRE(only != nullptr);
  CHECK(picker.Pick(one.snap, *one.svc, 80, *one.self, {.avoid = only->Key()})->Key() == only->Key());
}

TEST_CASE("endpoint lists are reused per snapshot and rebuilt for a new one") {
  World w = Make(2);
  EndpointPicker picker;
  auto a = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin()});
  auto b = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin()});
  auto c = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin()});
  CHECK(a.get() == c.get());  // the same cached object, round robin over two
  CHECK(a.get() != b.get());
  World next = Make(1);
  auto d = picker.Pick(next.snap, *next.svc, 80, *next.self);
  REQUIRE(d != nullptr);
  CHECK(d->workload->name == "echo-0");
  CHECK(a->workload->name.rfind("echo-", 0) == 0);  // held endpoints stay valid
}

TEST_CASE("endpoint identities, pool keys and the Envoy cluster name") {
  World w = Make(1);
  auto eps = EndpointPicker::Endpoints(*w.snap, *w.svc, 80, *w.self);
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].identities.back() == "spiffe://cluster.local/ns/demo/sa/default");
  CHECK(eps[0].hbone);
  CHECK(eps[0].Key() == "c1//Pod/demo/echo-0|10.0.0.10|8080");
  CHECK(eps[0].LiveKey() == waypoint::EndpointLiveKey(*eps[0].workload, Ip("10.0.0.10")));
  CHECK(waypoint::ClusterName(*w.svc, 80) == "inbound-vip|80|http|echo.demo.svc.cluster.local");
}

namespace {

// Excludes the endpoints whose address is listed; Begin says whether any is.
struct ExcludeSet final : waypoint::EndpointFilter {
  std::set<std::string> out;
  mutable size_t seen = 0;
  bool Begin(size_t endpoints) const override {
    seen = endpoints;
    return !out.empty();
  }
  bool Excluded(const waypoint::UpstreamEndpoint& e) const override {
    return out.contains(e.address.ToString());
  }
};

}  // namespace

TEST_CASE("an EndpointFilter keeps excluded endpoints out; all excluded is no healthy upstream") {
  World w = Make(3);
  EndpointPicker picker;
  ExcludeSet f;
  f.out = {"10.0.0.10:8080"};
  std::map<std::string, int> counts;
  for (int i = 0; i < 100; ++i) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin(), .filter = &f});
    REQUIRE(ep != nullptr);
    counts[ep->workload->name]++;
  }
  CHECK(f.seen == 3);
  CHECK(counts.count("echo-0") == 0);
  CHECK(counts["echo-1"] == 50);
  CHECK(counts["echo-2"] == 50);
  // `avoid` still falls back to the one endpoint left.
  auto only = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin(), .filter = &f});
  f.out.insert(only->address.ToString());
  auto last = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin(), .filter = &f});
  REQUIRE(last != nullptr);
  CHECK(picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin(), .avoid = last->Key(), .filter = &f})->Key() == last->Key());
  f.out.insert(last->address.ToString());
  CHECK(picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &RoundRobin(), .filter = &f}) == nullptr);
}
