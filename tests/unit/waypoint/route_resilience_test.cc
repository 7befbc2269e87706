// DestinationRule connectionPool / outlierDetection compilation: values,
// Istio's "0 = unset", unsupported fields reported, invalid values refused
// with the field's line.
#include <doctest/doctest.h>

#include "tests/unit/waypoint/route_fixture.h"

using namespace ambit::waypoint::route;
using namespace ambit::waypoint::route::testing;

namespace {

std::string Dr(const std::string& traffic_policy) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
         "metadata: {name: reviews-destination, namespace: demo}\nspec:\n"
         "  host: reviews.demo.svc.cluster.local\n  trafficPolicy:\n" +
         traffic_policy;
}

constexpr const char* kCluster = "inbound-vip|9080|http|reviews.demo.svc.cluster.local";

bool AnyInvalid(const Compiled& c) {
  for (const auto& f : c.result.findings) {
    if (f.invalid) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("connectionPool limits compile; 0 and unset stay unlimited") {
  Compiled c = CompileWorld(Dr(R"(    connectionPool:
      tcp: {maxConnections: 3, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 1, http2MaxRequests: 0, maxRequestsPerConnection: 10,
             maxRetries: 2, h2UpgradePolicy: DEFAULT, useClientProtocol: true}
)"));
  CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
  const TrafficPolicy* p = c.result.config->PolicyFor(kCluster);
  REQUIRE(p != nullptr);
  REQUIRE(p->connection_pool);
  const ConnectionPoolPolicy& cp = *p->connection_pool;
  CHECK(cp.max_connections == 3);
  CHECK(cp.connect_timeout == std::chrono::milliseconds(250));
  CHECK(cp.max_pending_requests == 1);
  CHECK(cp.max_requests == kUnlimited);  // 0: Istio leaves Envoy's default
  CHECK(cp.max_requests_per_connection == 10);
  CHECK(cp.max_retries == 2);
  CHECK_FALSE(p->outlier_detection);
}

TEST_CASE("unsupported connectionPool fields are reported, not dropped silently") {
  Compiled c = CompileWorld(Dr(R"(    connectionPool:
      tcp:
        maxConnections: 1
        tcpKeepalive: {time: 7200s}
        maxConnectionDuration: 1h
      http: {idleTimeout: 30s, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 10}
)"));
  CHECK_FALSE(AnyInvalid(c));
  CHECK(c.FindingsWith("connectionPool.tcp.tcpKeepalive").size() == 1);
  CHECK(c.FindingsWith("connectionPool.tcp.maxConnectionDuration").size() == 1);
  // Applied now: no finding.
  CHECK(c.FindingsWith("connectionPool.http.idleTimeout").empty());
  CHECK(c.FindingsWith("connectionPool.http.maxConcurrentStreams").empty());
  CHECK(c.FindingsWith("h2UpgradePolicy").empty());
  const TrafficPolicy* p = c.result.config->PolicyFor(kCluster);
  REQUIRE(p != nullptr);
  CHECK(p->connection_pool->max_connections == 1);  // the rest still applies
}

TEST_CASE("idleTimeout, maxConcurrentStreams, h2UpgradePolicy and useClientProtocol compile") {
  Compiled c = CompileWorld(Dr(R"(    connectionPool:
      tcp: {idleTimeout: 90s}
      http: {idleTimeout: 2s, maxConcurrentStreams: 4, h2UpgradePolicy: UPGRADE}
)"));
  CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
  const TrafficPolicy* p = c.result.config->PolicyFor(kCluster);
  REQUIRE(p != nullptr);
  REQUIRE(p->connection_pool);
  const ConnectionPoolPolicy& cp = *p->connection_pool;
  CHECK(cp.tcp_idle_timeout == std::chrono::seconds(90));
  CHECK(cp.http_idle_timeout == std::chrono::seconds(2));
  CHECK(cp.max_concurrent_streams == 4);
  CHECK(cp.h2_upgrade == ConnectionPoolPolicy::H2Upgrade::kUpgrade);
  CHECK(cp.UpgradeHttp1());
  Compiled keep = CompileWorld(Dr(R"(    connectionPool:
      http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}
)"));
  const TrafficPolicy* kp = keep.result.config->PolicyFor(kCluster);
  REQUIRE(kp != nullptr);
  CHECK(kp->connection_pool->use_client_protocol);
  CHECK_FALSE(kp->connection_pool->UpgradeHttp1());  // the client's protocol stays
  Compiled no = CompileWorld(Dr("    connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}\n"));
  const TrafficPolicy* np = no.result.config->PolicyFor(kCluster);
  REQUIRE(np != nullptr);
  CHECK(np->connection_pool->h2_upgrade == ConnectionPoolPolicy::H2Upgrade::kDoNotUpgrade);
  CHECK_FALSE(np->connection_pool->UpgradeHttp1());
  // Bad values are refused.
  Compiled bad = CompileWorld(Dr("    connectionPool: {http: {idleTimeout: soon}}\n"));
  CHECK(AnyInvalid(bad));
  Compiled neg = CompileWorld(Dr("    connectionPool: {http: {maxConcurrentStreams: -1}}\n"));
  CHECK(AnyInvalid(neg));
}

TEST_CASE("outlierDetection compiles with Istio's defaults for unset fields") {
  Compiled c = CompileWorld(Dr(R"(    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
)"));
  CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
  const TrafficPolicy* p = c.result.config->PolicyFor(kCluster);
  REQUIRE(p != nullptr);
  REQUIRE(p->outlier_detection);
  const OutlierPolicy& o = *p->outlier_detection;
  CHECK(o.consecutive_5xx == 5);
  CHECK(o.consecutive_gateway_errors == 0);
  CHECK(o.interval == std::chrono::seconds(10));
  CHECK(o.base_ejection_time == std::chrono::seconds(30));
  CHECK(o.max_ejection_percent == 50);
  CHECK(o.min_health_percent == 0);
  CHECK_FALSE(o.split_local_origin);
}

TEST_CASE("the deprecated consecutiveErrors counts gateway errors") {
  Compiled c = CompileWorld(Dr("    outlierDetection: {consecutiveErrors: 3}\n"));
  const TrafficPolicy* p = c.result.config->PolicyFor(kCluster);
  REQUIRE(p != nullptr);
  CHECK(p->outlier_detection->consecutive_gateway_errors == 3);
}

TEST_CASE("invalid values are refused at the field's line") {
  struct Case {
    const char* policy;
    const char* needle;
  };
  const Case cases[] = {
      {"    connectionPool: {tcp: {maxConnections: -1}}\n", "tcp.maxConnections: -1 is out of range"},
      {"    connectionPool: {tcp: {connectTimeout: soon}}\n", "tcp.connectTimeout: 'soon'"},
      {"    connectionPool: {tcp: {connectTimeout: 0s}}\n", "at least 1ms"},
      {"    connectionPool: {http: {http1MaxPendingRequests: many}}\n", "is not a number"},
      {"    connectionPool: {http: {maxRetries: -3}}\n", "http.maxRetries: -3"},
      {"    connectionPool: {http: {h2UpgradePolicy: SOMETIMES}}\n", "unknown value 'SOMETIMES'"},
      {"    outlierDetection: {maxEjectionPercent: 150}\n", "maxEjectionPercent: 150 is out of range 0..100"},
      {"    outlierDetection: {minHealthPercent: 101}\n", "minHealthPercent: 101"},
      {"    outlierDetection: {interval: -5s}\n", "interval: '-5s' is not a duration"},
      {"    outlierDetection: {baseEjectionTime: 30}\n", "baseEjectionTime: '30'"},
      {"    outlierDetection: {consecutive5xxErrors: -1}\n", "consecutive5xxErrors: -1"},
      {"    outlierDetection: {splitExternalLocalOriginErrors: maybe}\n", "not true or false"},
  };
  for (const Case& k : cases) {
    CAPTURE(k.policy);
    Compiled c = CompileWorld(Dr(k.policy));
    auto found = c.FindingsWith(k.needle);
    REQUIRE_MESSAGE(found.size() == 1, c.AllFindings());
    CHECK(AnyInvalid(c));
    // Line 7 of the document is the policy's line.
    CHECK(found[0].find("routes.yaml:" + std::to_string(DocLine(7)) + ":") == 0);
  }
}

TEST_CASE("subset and port-level connectionPool replace the top level") {
  Compiled c = CompileWorld(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-destination, namespace: demo}
spec:
  host: reviews.demo.svc.cluster.local
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 100}}
    portLevelSettings:
    - port: {number: 80}
      connectionPool: {tcp: {maxConnections: 7}}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {http: {http2MaxRequests: 2}}
)");
  CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
  const auto* p9080 = c.result.config->PolicyFor(kCluster);
  const auto* p80 = c.result.config->PolicyFor("inbound-vip|80|http|reviews.demo.svc.cluster.local");
  const auto* v2 =
      c.result.config->PolicyFor("inbound-vip|9080|http/v2|reviews.demo.svc.cluster.local");
  REQUIRE(p9080 != nullptr);
  REQUIRE(p80 != nullptr);
  REQUIRE(v2 != nullptr);
  CHECK(p9080->connection_pool->max_connections == 100);
  CHECK(p80->connection_pool->max_connections == 7);
  CHECK(v2->connection_pool->max_connections == kUnlimited);  // the subset's pool replaces it
  CHECK(v2->connection_pool->max_requests == 2);
}
