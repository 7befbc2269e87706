// DestinationRule loadBalancer compilation: every simple value, consistent
// hash keys and algorithms, locality settings, warmup; Istio's merge per
// port and subset; values Istio refuses are invalid findings at their line.
#include <doctest/doctest.h>

#include "tests/unit/waypoint/route_fixture.h"

using namespace ambit::waypoint::route;
using namespace ambit::waypoint::route::testing;
using LB = LoadBalancerPolicy;

namespace {

constexpr const char* kReviews = "inbound-vip|80|http|reviews.demo.svc.cluster.local";
constexpr const char* kReviews9080 = "inbound-vip|9080|http|reviews.demo.svc.cluster.local";
constexpr const char* kReviewsV1 = "inbound-vip|80|http/v1|reviews.demo.svc.cluster.local";
constexpr const char* kReviewsV2 = "inbound-vip|80|http/v2|reviews.demo.svc.cluster.local";

std::string Dr(const std::string& traffic_policy, const std::string& subsets = "") {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
         "metadata: {name: lb, namespace: demo}\nspec:\n  host: reviews\n"
         "  trafficPolicy:\n" + traffic_policy + subsets;
}

const LB* LbOf(const Compiled& c, const char* cluster) {
  const TrafficPolicy* p = c.result.config->PolicyFor(cluster);
  return p != nullptr && p->load_balancer ? &*p->load_balancer : nullptr;
}

bool AnyInvalid(const Compiled& c) {
  for (const auto& f : c.result.findings) {
    if (f.invalid) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("simple values: LEAST_CONN is LEAST_REQUEST; PASSTHROUGH is reported") {
  const std::pair<const char*, LB::Kind> cases[] = {
      {"ROUND_ROBIN", LB::Kind::kRoundRobin}, {"RANDOM", LB::Kind::kRandom},
      {"LEAST_REQUEST", LB::Kind::kLeastRequest}, {"LEAST_CONN", LB::Kind::kLeastRequest},
      {"UNSPECIFIED", LB::Kind::kLeastRequest}, {"PASSTHROUGH", LB::Kind::kPassthrough}};
  for (const auto& [name, kind] : cases) {
    CAPTURE(name);
    auto c = CompileWorld(Dr(std::string("    loadBalancer: {simple: ") + name + "}\n"));
    REQUIRE(LbOf(c, kReviews) != nullptr);
    CHECK(LbOf(c, kReviews)->kind == kind);
    CHECK(!AnyInvalid(c));
  }
  auto c = CompileWorld(Dr("    loadBalancer: {simple: PASSTHROUGH}\n"));
  CHECK(c.FindingsWith("fall back to LEAST_REQUEST").size() == 1);
}

TEST_CASE("consistentHash: keys, ringHash size, maglev table, the deprecated minimumRingSize") {
  auto c = CompileWorld(Dr("    loadBalancer:\n      consistentHash:\n"
                           "        httpHeaderName: X-User\n"
                           "        ringHash: {minimumRingSize: 4096}\n"));
  const LB* lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  CHECK(lb->kind == LB::Kind::kRingHash);
  CHECK(lb->hash_key == LB::HashKey::kHeader);
  CHECK(lb->hash_name == "x-user");
  CHECK(lb->ring_size == 4096);

  c = CompileWorld(Dr("    loadBalancer:\n      consistentHash:\n"
                      "        httpCookie: {name: sticky, path: /, ttl: 60s}\n"
                      "        maglev: {tableSize: 251}\n"));
  lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  CHECK(lb->kind == LB::Kind::kMaglev);
  CHECK(lb->table_size == 251);
  CHECK(lb->hash_key == LB::HashKey::kCookie);
  CHECK(lb->cookie_ttl == std::chrono::seconds(60));
  CHECK(lb->cookie_path == "/");

  c = CompileWorld(Dr("    loadBalancer:\n      consistentHash:\n"
                      "        useSourceIp: true\n        minimumRingSize: 2048\n"));
  lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  CHECK(lb->hash_key == LB::HashKey::kSourceIp);
  CHECK(lb->ring_size == 2048);
  CHECK(LbOf(c, kReviews9080) != nullptr);  // every port of the service

  c = CompileWorld(Dr("    loadBalancer:\n      consistentHash: {httpQueryParameterName: u, "
                      "maglev: {}}\n"));
  lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  CHECK(lb->hash_key == LB::HashKey::kQueryParameter);
  CHECK(lb->table_size == 65537);
}

TEST_CASE("bad loadBalancer input is invalid at its line: the change is refused") {
  const std::pair<std::string, const char*> cases[] = {
      {"    loadBalancer: {simple: FASTEST}\n", "unknown value 'FASTEST'"},
      {"    loadBalancer:\n      consistentHash: {httpHeaderName: x, maglev: {tableSize: 1000}}\n",
       "1000 is not a prime number"},
      {"    loadBalancer:\n      consistentHash: {httpCookie: {name: c, ttl: soon}}\n",
       "is not a duration"},
      {"    loadBalancer:\n      consistentHash: {httpCookie: {name: c}}\n", "ttl: required"},
      {"    loadBalancer:\n      consistentHash: {httpHeaderName: x, useSourceIp: true}\n",
       "only one of"},
      {"    loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}\n", "only one of"},
      {"    loadBalancer: {warmupDurationSecs: 10parsecs}\n", "is not a duration"},
      {"    loadBalancer:\n      localityLbSetting:\n        distribute:\n"
       "        - {from: r1/*, to: {r1/*: 60, r2/*: 30}}\n",
       "sum to 90"},
      {"    loadBalancer:\n      localityLbSetting:\n        failover: [{from: r1, to: r1}]\n",
       "different regions"},
      {"    loadBalancer:\n      localityLbSetting:\n        distribute: [{from: r1, to: {r1: 100}}]\n"
       "        failover: [{from: r1, to: r2}]\n",
       "distribute cannot be set together"},
  };
  for (const auto& [yaml, needle] : cases) {
    CAPTURE(yaml);
    auto c = CompileWorld(Dr(yaml));
    auto found = c.FindingsWith(needle);
    REQUIRE_MESSAGE(found.size() >= 1, c.AllFindings());
    CHECK(found.front().find("routes.yaml:") != std::string::npos);
    CHECK(AnyInvalid(c));
  }
  // The invalid finding points at the tableSize line.
  auto c = CompileWorld(Dr("    loadBalancer:\n      consistentHash:\n        httpHeaderName: x\n"
                           "        maglev:\n          tableSize: 65536\n"));
  auto found = c.FindingsWith("not a prime");
  REQUIRE(found.size() == 1);
  CHECK(found.front().find("routes.yaml:" + std::to_string(DocLine(11))) != std::string::npos);
}

TEST_CASE("merge: port settings replace the top level; subsets override, then their ports") {
  auto c = CompileWorld(Dr(
      "    loadBalancer: {simple: ROUND_ROBIN}\n"
      "    portLevelSettings:\n"
      "    - port: {number: 9080}\n"
      "      loadBalancer: {simple: RANDOM}\n",
      "  subsets:\n"
      "  - name: v1\n    labels: {version: v1}\n"
      "    trafficPolicy:\n"
      "      loadBalancer:\n        consistentHash: {httpHeaderName: x-user}\n"
      "  - name: v2\n    labels: {version: v2}\n"
      "    trafficPolicy:\n"
      "      portLevelSettings:\n"
      "      - port: {number: 80}\n"
      "        loadBalancer: {simple: LEAST_REQUEST}\n"));
  REQUIRE_MESSAGE(!AnyInvalid(c), c.AllFindings());
  CHECK(LbOf(c, kReviews)->kind == LB::Kind::kRoundRobin);
  CHECK(LbOf(c, kReviews9080)->kind == LB::Kind::kRandom);
  CHECK(LbOf(c, kReviewsV1)->kind == LB::Kind::kRingHash);
  CHECK(LbOf(c, kReviewsV2)->kind == LB::Kind::kLeastRequest);
}

TEST_CASE("localityLbSetting and warmupDurationSecs compile; outlierDetection enables failover") {
  auto c = CompileWorld(Dr("    loadBalancer:\n"
                           "      simple: ROUND_ROBIN\n"
                           "      warmupDurationSecs: 30s\n"
                           "      localityLbSetting:\n"
                           "        failover: [{from: r1, to: r2}]\n"
                           "        failoverPriority: [topology.kubernetes.io/region, tier=gold]\n"
                           "    outlierDetection: {consecutive5xxErrors: 3}\n"));
  const LB* lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  CHECK(lb->warmup == std::chrono::seconds(30));
  REQUIRE(lb->locality.has_value());
  CHECK(lb->locality->failover.size() == 1);
  CHECK(lb->locality->failover_priority.size() == 2);
  CHECK(c.result.config->PolicyFor(kReviews)->outlier_written);

  c = CompileWorld(Dr("    loadBalancer:\n"
                      "      localityLbSetting:\n"
                      "        distribute:\n"
                      "        - from: r1/z1/*\n"
                      "          to: {r1/z1/*: 70, r1/z2/*: 30}\n"
                      "        enabled: true\n"));
  lb = LbOf(c, kReviews);
  REQUIRE(lb != nullptr);
  REQUIRE(lb->locality.has_value());
  REQUIRE(lb->locality->distribute.size() == 1);
  CHECK(lb->locality->distribute[0].to.size() == 2);
  CHECK(!AnyInvalid(c));

  // Slow start exists for ROUND_ROBIN and LEAST_REQUEST only.
  c = CompileWorld(Dr("    loadBalancer: {simple: RANDOM, warmupDurationSecs: 5s}\n"));
  CHECK(c.FindingsWith("applies to ROUND_ROBIN and LEAST_REQUEST only").size() == 1);
}

TEST_CASE("malformed loadBalancer shapes never crash; each is a finding") {
  const char* cases[] = {
      "    loadBalancer: []\n",
      "    loadBalancer: {consistentHash: 5}\n",
      "    loadBalancer: {consistentHash: {ringHash: 7, httpHeaderName: x}}\n",
      "    loadBalancer: {consistentHash: {maglev: [1], httpHeaderName: x}}\n",
      "    loadBalancer: {consistentHash: {maglev: {tableSize: -1}, httpHeaderName: x}}\n",
      "    loadBalancer: {consistentHash: {httpCookie: x}}\n",
      "    loadBalancer: {consistentHash: {httpCookie: {name: [a], ttl: 1s}}}\n",
      "    loadBalancer: {consistentHash: {useSourceIp: maybe}}\n",
      "    loadBalancer: {simple: [ROUND_ROBIN]}\n",
      "    loadBalancer: {localityLbSetting: 3}\n",
      "    loadBalancer: {localityLbSetting: {distribute: [{to: {a: x}}]}}\n",
      "    loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {a/*/b: 100}}]}}\n",
      "    loadBalancer: {localityLbSetting: {distribute: {}}}\n",
      "    loadBalancer: {localityLbSetting: {failover: [{from: a}]}}\n",
      "    loadBalancer: {localityLbSetting: {failoverPriority: [[]]}}\n",
      "    loadBalancer: {localityLbSetting: {enabled: 3}}\n",
      "    loadBalancer: {warmupDurationSecs: {}}\n",
  };
  for (const std::string yaml : cases) {
    CAPTURE(yaml);
    auto c = CompileWorld(Dr(yaml));
    CHECK(!c.result.findings.empty());
  }
}
