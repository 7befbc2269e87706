// Load balancing (DestinationRule loadBalancer): distributions of each
// policy through EndpointPicker, ring hash / Maglev key stability and key
// movement when an endpoint leaves, locality levels, request hash keys.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "tests/unit/mesh/fixtures.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/lb_hash.h"
#include "waypoint/proxy/lb_locality.h"
#include "waypoint/proxy/lb_request.h"

using namespace ambit;
using namespace ambit::mesh;
using namespace ambit::mesh::testing;
using waypoint::EndpointPicker;
using waypoint::EndpointPtr;
using LB = waypoint::route::LoadBalancerPolicy;

namespace {

struct World {
  std::shared_ptr<const Snapshot> snap;
  const Service* svc = nullptr;
  const Workload* self = nullptr;
};

// `zones[i]` is pod i's zone (region r1 for all); the waypoint is in r1/z1.
World Make(int pods, std::vector<std::string> zones = {}, std::vector<int> unhealthy = {}) {
  WorkloadStore store;
  Service svc = Svc("demo", "echo", "10.96.0.30", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  for (int i = 0; i < pods; ++i) {
    Workload w = Pod("demo", "echo-" + std::to_string(i), "10.0.0." + std::to_string(i + 10));
    w.locality = {"r1", i < static_cast<int>(zones.size()) ? zones[i] : "z1", ""};
    if (std::find(unhealthy.begin(), unhealthy.end(), i) != unhealthy.end()) {
      w.status = WorkloadStatus::kUnhealthy;
    }
    Join(w, svc);
    REQUIRE(store.UpsertWorkload(w).ok());
  }
  Workload wp = Pod("demo", "waypoint", "10.0.0.99");
  wp.locality = {"r1", "z1", ""};
  REQUIRE(store.UpsertWorkload(wp).ok());
  World out;
  out.snap = store.Build();
  out.svc = out.snap->FindServiceByKey(svc.Key());
  out.self = out.snap->FindWorkload(wp.uid);
  return out;
}

waypoint::route::TrafficPolicy MakePolicy(LB lb) {
  waypoint::route::TrafficPolicy p;
  p.load_balancer = lb;
  return p;
}

std::map<std::string, int> Spread(EndpointPicker& picker, const World& w,
                                  const waypoint::route::TrafficPolicy* p, int n) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = p});
    REQUIRE(ep != nullptr);
    counts[ep->workload->name]++;
  }
  return counts;
}

std::vector<std::string> Names(int n, int skip = -1) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    if (i != skip) out.push_back("10.0.0." + std::to_string(i) + ":8080");
  }
  return out;
}

}  // namespace

TEST_CASE("ROUND_ROBIN: 1,200 picks over 4 endpoints are exactly even") {
  World w = Make(4);
  EndpointPicker picker;
  LB lb;
  lb.kind = LB::Kind::kRoundRobin;
  auto p = MakePolicy(lb);
  auto counts = Spread(picker, w, &p, 1200);
  REQUIRE(counts.size() == 4);
  for (const auto& [name, n] : counts) CHECK(n == 300);
}

TEST_CASE("RANDOM and the default LEAST_REQUEST spread over every endpoint") {
  World w = Make(4);
  EndpointPicker picker;
  LB lb;
  lb.kind = LB::Kind::kRandom;
  auto p = MakePolicy(lb);
  for (const waypoint::route::TrafficPolicy* policy : {&p, static_cast<waypoint::route::TrafficPolicy*>(nullptr)}) {
    auto counts = Spread(picker, w, policy, 4000);
    REQUIRE(counts.size() == 4);
    for (const auto& [name, n] : counts) {
      CHECK(n > 800);
      CHECK(n < 1200);
    }
  }
}

TEST_CASE("LEAST_REQUEST: an endpoint holding requests gets few new ones; leases count down") {
  World w = Make(3);
  EndpointPicker picker;
  // Hold 20 requests on echo-0 (what a slow endpoint looks like).
  std::vector<EndpointPtr> held;
  while (held.size() < 20) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self);
    if (ep->workload->name == "echo-0") {
      held.push_back(ep);
    }
  }
  const std::string key = held.front()->Key();
  CHECK(picker.Active(key) == 20);
  std::map<std::string, int> counts;
  for (int i = 0; i < 1000; ++i) {
    auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self);  // released at once
    counts[ep->workload->name]++;
  }
  // echo-0 wins only when both candidates are echo-0 (1/9).
  CHECK(counts["echo-0"] < 180);
  CHECK(counts["echo-1"] > 350);
  CHECK(counts["echo-2"] > 350);
  held.clear();
  CHECK(picker.Active(key) == 0);
}

TEST_CASE("ring hash and Maglev: one key, one endpoint; removing one of N moves <= 1/N + 5%") {
  for (const bool maglev : {false, true}) {
    CAPTURE(maglev);
    constexpr int kEndpoints = 5;
    auto pick = [&](const std::vector<std::string>& names, uint64_t key) -> std::string {
      if (maglev) return names[waypoint::lb::Maglev(names, 65537).Pick(key)];
      return names[waypoint::lb::RingHash(names, 1024).Pick(key)];
    };
    const auto all = Names(kEndpoints);
    const auto fewer = Names(kEndpoints, 2);
    waypoint::lb::RingHash ring_all(all, 1024), ring_fewer(fewer, 1024);
    waypoint::lb::Maglev mag_all(all, 65537), mag_fewer(fewer, 65537);
    auto at = [&](bool full, uint64_t key) {
      const auto& names = full ? all : fewer;
      if (maglev) return names[(full ? mag_all : mag_fewer).Pick(key)];
      return names[(full ? ring_all : ring_fewer).Pick(key)];
    };
    CHECK(pick(all, 42) == at(true, 42));  // rebuilt tables agree
    std::map<std::string, int> share;
    int moved = 0;
    constexpr int kKeys = 10000;
    for (int k = 0; k < kKeys; ++k) {
      const uint64_t h = waypoint::lb::Hash64("user-" + std::to_string(k));
      const std::string before = at(true, h), after = at(false, h);
      CHECK(before == at(true, h));
      share[before]++;
      if (before != after) ++moved;
      // Ring hash: only the removed endpoint's keys move (Maglev shifts a
      // few more slots between the others).
      if (!maglev && before != all[2]) CHECK(before == after);
    }
    CHECK(share.size() == kEndpoints);
    for (const auto& [n, c] : share) CHECK(c > kKeys / kEndpoints / 2);
    CHECK(moved <= kKeys * (1.0 / kEndpoints + 0.05));
  }
}

TEST_CASE("Maglev table of the default size fills every slot; ring has at least its minimum") {
  waypoint::lb::Maglev m(Names(3), 65537);
  CHECK(m.size() == 65537);
  waypoint::lb::RingHash r(Names(3), 1000);
  CHECK(r.size() >= 1000);
  std::set<size_t> seen;
  for (uint64_t k = 0; k < 1000; ++k) seen.insert(m.Pick(waypoint::lb::Hash64(std::to_string(k))));
  CHECK(seen.size() == 3);
}

TEST_CASE("picker: hashed policy sends one key to one endpoint; retry avoids it") {
  World w = Make(4);
  for (const auto kind : {LB::Kind::kRingHash, LB::Kind::kMaglev}) {
    EndpointPicker picker;
    LB lb;
    lb.kind = kind;
    lb.hash_key = LB::HashKey::kHeader;
    auto p = MakePolicy(lb);
    std::set<std::string> endpoints;
    for (int i = 0; i < 50; ++i) {
      auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &p, .hash = uint64_t{1234}});
      endpoints.insert(ep->Key());
    }
    CHECK(endpoints.size() == 1);
    auto other = picker.Pick(w.snap, *w.svc, 80, *w.self,
                             {.policy = &p, .hash = uint64_t{1234}, .avoid = *endpoints.begin()});
    CHECK(other->Key() != *endpoints.begin());
    // No key (header absent): random over all.
    std::set<std::string> any;
    for (int i = 0; i < 200; ++i) any.insert(picker.Pick(w.snap, *w.svc, 80, *w.self, {.policy = &p})->Key());
    CHECK(any.size() == 4);
  }
}

TEST_CASE("outlier filter: excluded endpoints are never picked, under every policy") {
  struct Not1 : waypoint::EndpointFilter {
    bool Begin(size_t) const override { return true; }
    bool Excluded(const waypoint::UpstreamEndpoint& e) const override {
      return e.workload->name == "echo-1";
    }
  } not1;
  World w = Make(3);
  EndpointPicker picker;
  for (const auto kind : {LB::Kind::kLeastRequest, LB::Kind::kRoundRobin, LB::Kind::kRandom,
                          LB::Kind::kRingHash, LB::Kind::kMaglev}) {
    LB lb;
    lb.kind = kind;
    auto p = MakePolicy(lb);
    std::map<std::string, int> counts;
    for (int i = 0; i < 300; ++i) {
      auto ep = picker.Pick(w.snap, *w.svc, 80, *w.self,
                            {.policy = &p, .hash = waypoint::lb::Hash64(std::to_string(i)), .filter = &not1});
      REQUIRE(ep != nullptr);
      counts[ep->workload->name]++;
    }
    CHECK(counts.count("echo-1") == 0);
    CHECK(counts.size() == 2);
  }
}

TEST_CASE("locality failover: with outlierDetection, the waypoint's zone first, then the region") {
  // echo-0, echo-1 in z1 (the waypoint's), echo-2 in z2.
  World w = Make(3, {"z1", "z1", "z2"});
  LB lb;
  lb.kind = LB::Kind::kRoundRobin;
  auto p = MakePolicy(lb);
  p.outlier_written = true;
  EndpointPicker picker;
  auto counts = Spread(picker, w, &p, 1000);
  CHECK(counts["echo-0"] == 500);
  CHECK(counts["echo-1"] == 500);
  CHECK(counts.count("echo-2") == 0);
  // Without outlierDetection Istio sets no priorities: all three share.
  p.outlier_written = false;
  CHECK(Spread(picker, w, &p, 999).size() == 3);
  // The local endpoints unhealthy: the next level takes everything.
  World down = Make(3, {"z1", "z1", "z2"}, {0, 1});
  p.outlier_written = true;
  auto after = Spread(picker, down, &p, 1000);
  CHECK(after["echo-2"] == 1000);
}

TEST_CASE("locality: Arrange levels, failover region pairs, failoverPriority, distribute") {
  Workload self;
  self.locality = {"us-east", "z1", ""};
  self.labels = {{"tier", "a"}};
  auto ep = [](std::string region, std::string zone, std::string tier = "") {
    auto w = std::make_shared<Workload>();
    w->locality = {region, zone, ""};
    if (!tier.empty()) w->labels["tier"] = tier;
    return w;
  };
  std::vector<std::shared_ptr<Workload>> owned = {ep("us-east", "z1"), ep("us-east", "z2"),
                                                  ep("us-west", "z1"), ep("eu", "z1", "a")};
  std::vector<const Workload*> eps;
  for (auto& o : owned) eps.push_back(o.get());
  waypoint::route::LocalitySetting s;
  auto levels = waypoint::lb::Arrange(self, eps, &s, true);
  REQUIRE(levels.size() == 3);  // same zone, same region, other regions
  CHECK(levels[0][0].members == std::vector<uint32_t>{0});
  CHECK(levels[1][0].members == std::vector<uint32_t>{1});
  CHECK(levels[2][0].members == std::vector<uint32_t>{2, 3});
  s.failover = {{"us-east", "eu"}};
  levels = waypoint::lb::Arrange(self, eps, &s, true);
  REQUIRE(levels.size() == 4);
  CHECK(levels[2][0].members == std::vector<uint32_t>{3});  // eu before us-west
  CHECK(levels[3][0].members == std::vector<uint32_t>{2});
  waypoint::route::LocalitySetting labels;
  labels.failover_priority = {"tier"};
  levels = waypoint::lb::Arrange(self, eps, &labels, true);
  REQUIRE(levels.size() == 2);
  CHECK(levels[0][0].members == std::vector<uint32_t>{3});
  waypoint::route::LocalitySetting dist;
  dist.distribute = {{"us-east/*", {{"us-east/*", 80}, {"us-west/*", 20}}}};
  levels = waypoint::lb::Arrange(self, eps, &dist, false);
  REQUIRE(levels.size() == 1);
  REQUIRE(levels[0].size() == 3);  // eu gets nothing
  uint32_t total = 0;
  for (const auto& g : levels[0]) total += g.weight;
  CHECK(total == 100);
  CHECK(waypoint::lb::LocalityMatch({"a", "b", "c"}, "a/*"));
  CHECK(waypoint::lb::LocalityMatch({"a", "b", "c"}, "a/b"));
  CHECK_FALSE(waypoint::lb::LocalityMatch({"a", "b", "c"}, "a/c"));
}

TEST_CASE("distribute: shares follow the weights over 2,000 picks") {
  World w = Make(2, {"z1", "z2"});
  LB lb;
  lb.kind = LB::Kind::kRoundRobin;
  waypoint::route::LocalitySetting s;
  s.distribute = {{"r1/z1", {{"r1/z1", 25}, {"r1/z2", 75}}}};
  lb.locality = s;
  auto p = MakePolicy(lb);
  EndpointPicker picker;
  auto counts = Spread(picker, w, &p, 2000);
  CHECK(counts["echo-1"] > 1350);
  CHECK(counts["echo-1"] < 1650);
}

TEST_CASE("warmup: a new endpoint starts near 10% of its share") {
  World w = Make(2);
  LB lb;
  lb.kind = LB::Kind::kRoundRobin;
  lb.warmup = std::chrono::milliseconds(300);
  auto p = MakePolicy(lb);
  EndpointPicker picker;
  Spread(picker, w, &p, 10);  // both seen now, warm once the window passed
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  // A third pod joins.
  WorkloadStore store;
  Service svc = Svc("demo", "echo", "10.96.0.30", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  for (int i = 0; i < 3; ++i) {
    Workload x = Pod("demo", "echo-" + std::to_string(i), "10.0.0." + std::to_string(i + 10));
    Join(x, svc);
    REQUIRE(store.UpsertWorkload(x).ok());
  }
  Workload wp = Pod("demo", "waypoint", "10.0.0.99");
  REQUIRE(store.UpsertWorkload(wp).ok());
  World w3;
  w3.snap = store.Build();
  w3.svc = w3.snap->FindServiceByKey(svc.Key());
  w3.self = w3.snap->FindWorkload(wp.uid);
  picker.Forget(w3.snap);
  auto counts = Spread(picker, w3, &p, 3000);
  CHECK(counts.size() == 3);  // never starved
  CHECK(counts["echo-2"] < 3000 * 0.15);  // ~0.1 / 2.1 of the picks at first
  CHECK(counts["echo-0"] > 1200);
}

TEST_CASE("hash keys: header, cookie (issued with ttl), query parameter, source IP") {
  struct H : waypoint::route::RequestView::Headers {
    std::multimap<std::string, std::string> m;
    void Values(std::string_view n, std::vector<std::string_view>* out) const override {
      for (const auto& [k, v] : m) {
        if (k == n) out->push_back(v);
      }
    }
  } headers;
  waypoint::route::RequestView view;
  view.headers = &headers;
  view.path = "/p?user=bob&x=1";
  const auto ip = net::IpAddress::Parse("10.1.2.3").value();
  LB lb;
  lb.kind = LB::Kind::kRingHash;
  lb.hash_key = LB::HashKey::kHeader;
  lb.hash_name = "x-user";
  CHECK_FALSE(waypoint::HashRequest(lb, &view, ip, 0).hash);
  headers.m.emplace("x-user", "alice");
  auto a = waypoint::HashRequest(lb, &view, ip, 0).hash;
  REQUIRE(a);
  headers.m.clear();
  headers.m.emplace("x-user", "bob");
  CHECK(waypoint::HashRequest(lb, &view, ip, 0).hash != a);

  lb.hash_key = LB::HashKey::kQueryParameter;
  lb.hash_name = "user";
  CHECK(waypoint::HashRequest(lb, &view, ip, 0).hash == waypoint::lb::Hash64("bob"));

  lb.hash_key = LB::HashKey::kSourceIp;
  CHECK(waypoint::HashRequest(lb, nullptr, ip, 0).hash == waypoint::lb::Hash64("10.1.2.3"));

  lb.hash_key = LB::HashKey::kCookie;
  lb.hash_name = "sticky";
  CHECK_FALSE(waypoint::HashRequest(lb, &view, ip, 7).hash);  // no ttl: no cookie issued
  lb.cookie_ttl = std::chrono::seconds(60);
  lb.cookie_path = "/";
  auto issued = waypoint::HashRequest(lb, &view, ip, 0xabc);
  CHECK(issued.set_cookie == "sticky=\"0000000000000abc\"; Max-Age=60; Path=/; HttpOnly");
  headers.m.emplace("cookie", "a=b; sticky=\"0000000000000abc\"");
  auto back = waypoint::HashRequest(lb, &view, ip, 0x999);
  CHECK(back.set_cookie.empty());
  CHECK(back.hash == issued.hash);  // the next request sticks
}
