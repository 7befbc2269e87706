#include "waypoint/app/resilience_dump.h"

#include <chrono>

namespace ambit::waypoint {

namespace {

using nlohmann::json;

int64_t Ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

json PoolJson(const route::ConnectionPoolPolicy& p, const BreakerCounters& c) {
  // Thresholds as Envoy's circuit breakers carry them (4294967295: unset).
  json j = {{"maxConnections", p.max_connections},
            {"http1MaxPendingRequests", p.max_pending_requests},
            {"http2MaxRequests", p.max_requests},
            {"maxRetries", p.max_retries},
            {"maxRequestsPerConnection", p.max_requests_per_connection}};
  if (p.connect_timeout) j["connectTimeoutMs"] = Ms(*p.connect_timeout);
  // Applied per cluster; unset ones show what the waypoint uses instead.
  j["maxConcurrentStreams"] = p.max_concurrent_streams > 0 ? p.max_concurrent_streams : 100;
  if (p.http_idle_timeout) j["httpIdleTimeoutMs"] = Ms(*p.http_idle_timeout);
  j["tcpIdleTimeoutMs"] = Ms(p.tcp_idle_timeout.value_or(std::chrono::hours(1)));
  using U = route::ConnectionPoolPolicy::H2Upgrade;
  j["h2UpgradePolicy"] = p.h2_upgrade == U::kUpgrade        ? "UPGRADE"
                         : p.h2_upgrade == U::kDoNotUpgrade ? "DO_NOT_UPGRADE"
                                                            : "DEFAULT";
  j["useClientProtocol"] = p.use_client_protocol;
  j["upstreamHttp2ForHttp1"] = p.UpgradeHttp1();
  j["inFlight"] = {{"requests", c.requests.load()},
                   {"connections", c.connections.load()},
                   {"pending", c.pending.load()},
                   {"retries", c.retries.load()}};
  j["overflows"] = c.pending_overflow != nullptr ? c.pending_overflow->value() : 0;
  return j;
}

json OutlierJson(const route::OutlierPolicy& p, OutlierDetector& d, base::MonoTime now) {
  json j = {{"consecutive5xxErrors", p.consecutive_5xx},
            {"consecutiveGatewayErrors", p.consecutive_gateway_errors},
            {"consecutiveLocalOriginFailures", p.consecutive_local_origin},
            {"splitExternalLocalOriginErrors", p.split_local_origin},
            {"intervalMs", Ms(p.interval)},
            {"baseEjectionTimeMs", Ms(p.base_ejection_time)},
            {"maxEjectionTimeMs", Ms(p.max_ejection_time)},
            {"maxEjectionPercent", p.max_ejection_percent},
            {"minHealthPercent", p.min_health_percent}};
  json eps = json::array();
  for (const OutlierDetector::HostView& h : d.View(p, now)) {
    json e = {{"address", h.host},
              {"ejected", h.ejected},
              {"timesEjected", h.times_ejected},
              {"consecutive5xx", h.consecutive_5xx},
              {"consecutiveGatewayErrors", h.consecutive_gateway},
              {"consecutiveLocalOriginFailures", h.consecutive_local}};
    if (h.ejected) e["ejectedForMs"] = h.ejected_for_ms;
    eps.push_back(std::move(e));
  }
  j["ejectedNow"] = d.ejected_count();
  j["ejectionsTotal"] = d.ejections_total();
  j["endpoints"] = eps;
  return j;
}

}  // namespace

json ResilienceJson(const ResilienceTable& table, base::MonoTime now) {
  json out = json::array();
  for (const auto& [name, rt] : table.clusters) {
    json c = {{"cluster", name}, {"connectionPool", PoolJson(rt.pool, *rt.counters)}};
    if (rt.outlier && rt.detector) {
      c["outlierDetection"] = OutlierJson(*rt.outlier, *rt.detector, now);
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ambit::waypoint
