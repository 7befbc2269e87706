// Load balancing: capacity weighting, locality STRICT/FAILOVER, port translation.
#include <doctest/doctest.h>

#include <map>

#include "common/mesh/lb.h"
#include "tests/unit/mesh/fixtures.h"

using namespace ambit::mesh;
using namespace ambit::mesh::testing;

TEST_CASE("weighted random pick follows capacity over 10,000 picks (±5%)") {
  WorkloadStore store;
  Service svc = Svc("ns", "web", "10.96.0.1", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  const std::pair<const char*, uint32_t> pods[] = {{"a", 1}, {"b", 2}, {"c", 7}};
  int i = 1;
  for (auto [name, cap] : pods) {
    Workload w = Pod("ns", name, "10.0.0." + std::to_string(i++));
    w.capacity = cap;
    Join(w, svc);
    REQUIRE(store.UpsertWorkload(w).ok());
  }
  auto snap = store.Build();
  const Service& s = *snap->FindServiceByKey(svc.Key());
  DefaultRng rng(12345);
  std::map<std::string, int> counts;
  for (int n = 0; n < 10000; ++n) {
    auto up = PickEndpoint(*snap, s, nullptr, 80, Ip("10.96.0.1"), LbPurpose::kStandard, rng);
    REQUIRE(up.has_value());
    CHECK(up->port == 8080);
    counts[up->workload->name]++;
  }
  CHECK(std::abs(counts["a"] - 1000) <= 500);
  CHECK(std::abs(counts["b"] - 2000) <= 500);
  CHECK(std::abs(counts["c"] - 7000) <= 500);
  CHECK(counts["c"] > counts["b"]);
  CHECK(counts["b"] > counts["a"]);
}

namespace {

struct LocalityFixture {
  WorkloadStore store;
  Service svc = Svc("ns", "web", "10.96.0.1", 80, 8080);
  Workload src = Pod("ns", "src", "10.0.9.9");

  LocalityFixture(LbMode mode, std::vector<LbScope> prefs) {
    svc.load_balancing = LoadBalancing{std::move(prefs), mode, HealthPolicy::kOnlyHealthy};
    src.locality = {"r1", "z1", ""};
    REQUIRE(store.UpsertService(svc).ok());
    Add("same-zone", "10.0.0.1", {"r1", "z1", ""});
    Add("same-region", "10.0.0.2", {"r1", "z2", ""});
    Add("far", "10.0.0.3", {"r2", "z3", ""});
  }
  void Add(const std::string& name, const std::string& ip, Locality loc) {
    Workload w = Pod("ns", name, ip);
    w.locality = std::move(loc);
    Join(w, svc);
    REQUIRE(store.UpsertWorkload(w).ok());
  }
  std::string Pick() {
    auto snap = store.Build();
    ScriptedRng rng({0, 1, 2, 3});
    std::string picked;
    for (int i = 0; i < 4; ++i) {
      auto up = PickEndpoint(*snap, *snap->FindServiceByKey(svc.Key()), &src, 80,
                             Ip("10.96.0.1"), LbPurpose::kStandard, rng);
      if (!up) return "none";
      if (!picked.empty() && picked != up->workload->name) return "mixed";
      picked = up->workload->name;
    }
    return picked;
  }
};

}  // namespace

TEST_CASE("FAILOVER keeps the best locality group and fails over when it empties") {
  LocalityFixture f(LbMode::kFailover, {LbScope::kRegion, LbScope::kZone});
  CHECK(f.Pick() == "same-zone");
  f.store.RemoveWorkload("c1//Pod/ns/same-zone");
  CHECK(f.Pick() == "same-region");
  f.store.RemoveWorkload("c1//Pod/ns/same-region");
  CHECK(f.Pick() == "far");
}

TEST_CASE("STRICT only uses endpoints matching every preference") {
  LocalityFixture f(LbMode::kStrict, {LbScope::kRegion, LbScope::kZone});
  CHECK(f.Pick() == "same-zone");
  f.store.RemoveWorkload("c1//Pod/ns/same-zone");
  CHECK(f.Pick() == "none");
}

TEST_CASE("no mode: all endpoints are candidates") {
  LocalityFixture f(LbMode::kStandard, {LbScope::kRegion, LbScope::kZone});
  CHECK(f.Pick() == "mixed");
}

TEST_CASE("NETWORK first is a gate and outranks the rest") {
  LoadBalancing lb{{LbScope::kNetwork, LbScope::kRegion}, LbMode::kFailover, {}};
  Workload src = Pod("ns", "s", "10.0.0.1"), same = src, other = src;
  src.locality.region = "r1";
  same.locality.region = "r2";
  other.network = "net2";
  other.locality.region = "r1";
  CHECK(LocalityRank(lb, src, same) == 1);
  CHECK(LocalityRank(lb, src, src) == 2);
  CHECK(LocalityRank(lb, src, other) == -1);
}

TEST_CASE("port translation: endpoint map > service target > waypoint app tunnel") {
  Service svc = Svc("ns", "s", "10.96.0.1", 80, 8080);
  svc.ports[81] = 0;  // named port
  Workload w = Pod("ns", "w", "10.0.0.1");
  Endpoint ep{w.uid, {{81, 9191}}, WorkloadStatus::kHealthy};
  CHECK(TranslatePort(svc, ep, w, 80, LbPurpose::kStandard) == 8080);
  CHECK(TranslatePort(svc, ep, w, 81, LbPurpose::kStandard) == 9191);
  CHECK(!TranslatePort(svc, Endpoint{}, w, 81, LbPurpose::kStandard).has_value());
  CHECK(!TranslatePort(svc, ep, w, 99, LbPurpose::kStandard).has_value());
  CHECK(!TranslatePort(svc, ep, w, 99, LbPurpose::kWaypoint).has_value());
  w.application_tunnel = ApplicationTunnel{AppTunnelProtocol::kProxy, 15088};
  CHECK(TranslatePort(svc, ep, w, 99, LbPurpose::kWaypoint) == 99);
}

TEST_CASE("IP selection honours ip_families and prefers the original family") {
  Workload w = Pod("ns", "w", "10.0.0.1");
  w.addresses.push_back(Ip("fd00::1"));
  Service svc = Svc("ns", "s", "10.96.0.1", 80, 80);
  CHECK(SelectIp(w, &svc, Ip("10.96.0.1"))->ToString() == "10.0.0.1");
  CHECK(SelectIp(w, &svc, Ip("fd00::96"))->ToString() == "fd00::1");
  svc.ip_families = IpFamilies::kIpv6Only;
  CHECK(SelectIp(w, &svc, Ip("10.96.0.1"))->ToString() == "fd00::1");
  CHECK(SelectIp(w, &svc, Ip("10.0.0.1"))->ToString() == "10.0.0.1");  // it is w's own
}
