// DestinationRule trafficPolicy.connectionPool → ConnectionPoolPolicy and
// trafficPolicy.outlierDetection → OutlierPolicy, with Istio's validation:
// a negative or non-numeric count, a bad duration (or one under 1ms) and a
// percentage over 100 are Sink::Invalid (the change is refused). Istio
// writes a count of 0 as "unset" (Envoy's default, i.e. unlimited).
#include <fmt/format.h>

#include <charconv>

#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr int64_t kInt32Max = 2147483647;

// An int32 count as Istio's proto has it; Invalid when not one or negative.
std::optional<uint32_t> Count(const Doc& doc, const YAML::Node& n, const std::string& field,
                              int64_t max, Sink& sink) {
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    sink.Invalid(doc, n, fmt::format("{}: '{}' is not a number", field, s));
    return std::nullopt;
  }
  if (v < 0 || v > max) {
    sink.Invalid(doc, n, fmt::format("{}: {} is out of range 0..{}", field, v, max));
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

// Istio's ValidateDuration: a duration of at least 1ms.
std::optional<std::chrono::nanoseconds> Dur(const Doc& doc, const YAML::Node& n,
                                            const std::string& field, Sink& sink) {
  std::vector<Finding> scratch;
  Sink quiet(&scratch);
  auto d = Duration(doc, n, field, quiet);
  if (!d) {
    sink.Invalid(doc, n, fmt::format("{}: '{}' is not a duration (e.g. 5s, 250ms)", field,
                                     n.IsScalar() ? n.Scalar() : ""));
    return std::nullopt;
  }
  if (*d < std::chrono::milliseconds(1)) {
    sink.Invalid(doc, n, fmt::format("{}: must be at least 1ms", field));
    return std::nullopt;
  }
  return d;
}

std::optional<bool> Bool(const Doc& doc, const YAML::Node& n, const std::string& field,
                         Sink& sink) {
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true") return true;
  if (s == "false") return false;
  sink.Invalid(doc, n, fmt::format("{}: '{}' is not true or false", field, s));
  return std::nullopt;
}

// Reads key `k` of `n` as a count into *out when written and > 0 (Istio
// leaves 0 to Envoy's default). False when invalid.
bool ReadLimit(const Doc& doc, const YAML::Node& n, const std::string& field, const char* k,
               uint32_t* out, Sink& sink) {
  const YAML::Node v = Child(n, k);
  if (!Present(v)) return true;
  auto c = Count(doc, v, Field(field, k), kInt32Max, sink);
  if (!c) return false;
  if (*c > 0) *out = *c;
  return true;
}

bool ReadTcp(const Doc& doc, const YAML::Node& n, const std::string& field,
             ConnectionPoolPolicy* p, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"maxConnections", "connectTimeout", "idleTimeout"}, sink,
                    "not supported by the waypoint; ignored");
  bool ok = ReadLimit(doc, n, field, "maxConnections", &p->max_connections, sink);
  if (const YAML::Node ct = Child(n, "connectTimeout"); Present(ct)) {
    auto d = Dur(doc, ct, Field(field, "connectTimeout"), sink);
    ok = ok && d.has_value();
    p->connect_timeout = d;
  }
  if (const YAML::Node v = Child(n, "idleTimeout"); Present(v)) {
    auto d = Dur(doc, v, Field(field, "idleTimeout"), sink);
    ok = ok && d.has_value();
    p->tcp_idle_timeout = d;
  }
  if (const YAML::Node v = Child(n, "maxConnectionDuration"); Present(v)) {
    ok = Dur(doc, v, Field(field, "maxConnectionDuration"), sink).has_value() && ok;
  }
  return ok;
}

bool ReadHttp(const Doc& doc, const YAML::Node& n, const std::string& field,
              ConnectionPoolPolicy* p, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field,
                    {"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection",
                     "maxRetries", "h2UpgradePolicy", "useClientProtocol", "idleTimeout",
                     "maxConcurrentStreams"},
                    sink, "not supported by the waypoint; ignored");
  bool ok = ReadLimit(doc, n, field, "http1MaxPendingRequests", &p->max_pending_requests, sink);
  ok = ReadLimit(doc, n, field, "http2MaxRequests", &p->max_requests, sink) && ok;
  ok = ReadLimit(doc, n, field, "maxRequestsPerConnection", &p->max_requests_per_connection,
                 sink) && ok;
  ok = ReadLimit(doc, n, field, "maxRetries", &p->max_retries, sink) && ok;
  if (const YAML::Node v = Child(n, "idleTimeout"); Present(v)) {
    auto d = Dur(doc, v, Field(field, "idleTimeout"), sink);
    ok = ok && d.has_value();
    p->http_idle_timeout = d;
  }
  ok = ReadLimit(doc, n, field, "maxConcurrentStreams", &p->max_concurrent_streams, sink) && ok;
  using U = ConnectionPoolPolicy::H2Upgrade;
  if (const YAML::Node v = Child(n, "h2UpgradePolicy"); Present(v)) {
    const std::string s = v.IsScalar() ? v.Scalar() : "";
    if (s == "UPGRADE") {
      p->h2_upgrade = U::kUpgrade;
    } else if (s == "DO_NOT_UPGRADE") {
      p->h2_upgrade = U::kDoNotUpgrade;
    } else if (s != "DEFAULT") {
      sink.Invalid(doc, v, fmt::format("{}.h2UpgradePolicy: unknown value '{}' (DEFAULT, "
                                       "DO_NOT_UPGRADE, UPGRADE)",
                                       field, s));
      ok = false;
    }
  }
  // useClientProtocol: true keeps the client's protocol upstream and makes
  // h2UpgradePolicy ineffective (Istio's documented precedence).
  if (const YAML::Node v = Child(n, "useClientProtocol"); Present(v)) {
    auto b = Bool(doc, v, Field(field, "useClientProtocol"), sink);
    ok = ok && b.has_value();
    if (b) p->use_client_protocol = *b;
  }
  return ok;
}

}  // namespace

std::optional<ConnectionPoolPolicy> CompileConnectionPool(const Doc& doc, const YAML::Node& n,
                                                          const std::string& field, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field, {"tcp", "http"}, sink, "unknown field; ignored");
  ConnectionPoolPolicy p;
  bool ok = true;
  if (const YAML::Node tcp = Child(n, "tcp"); Present(tcp)) {
    ok = ReadTcp(doc, tcp, Field(field, "tcp"), &p, sink);
  }
  if (const YAML::Node http = Child(n, "http"); Present(http)) {
    ok = ReadHttp(doc, http, Field(field, "http"), &p, sink) && ok;
  }
  if (!ok) return std::nullopt;
  return p;
}

std::optional<OutlierPolicy> CompileOutlierDetection(const Doc& doc, const YAML::Node& n,
                                                     const std::string& field, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field,
                    {"consecutive5xxErrors", "consecutiveGatewayErrors",
                     "consecutiveLocalOriginFailures", "splitExternalLocalOriginErrors",
                     "consecutiveErrors", "interval", "baseEjectionTime", "maxEjectionPercent",
                     "minHealthPercent"},
                    sink, "unknown field; ignored");
  OutlierPolicy p;
  bool ok = true;
  auto count = [&](const char* k, int64_t max, uint32_t* out) {
    const YAML::Node v = Child(n, k);
    if (!Present(v)) return;
    auto c = Count(doc, v, Field(field, k), max, sink);
    if (c) *out = *c;
    ok = ok && c.has_value();
  };
  count("consecutive5xxErrors", kInt32Max, &p.consecutive_5xx);
  count("consecutiveGatewayErrors", kInt32Max, &p.consecutive_gateway_errors);
  count("consecutiveLocalOriginFailures", kInt32Max, &p.consecutive_local_origin);
  // The deprecated consecutiveErrors counted gateway errors (istiod maps it
  // there when consecutiveGatewayErrors is unset).
  if (const YAML::Node v = Child(n, "consecutiveErrors"); Present(v)) {
    auto c = Count(doc, v, Field(field, "consecutiveErrors"), kInt32Max, sink);
    ok = ok && c.has_value();
    if (c && !Present(Child(n, "consecutiveGatewayErrors"))) p.consecutive_gateway_errors = *c;
  }
  count("maxEjectionPercent", 100, &p.max_ejection_percent);
  count("minHealthPercent", 100, &p.min_health_percent);
  if (const YAML::Node v = Child(n, "splitExternalLocalOriginErrors"); Present(v)) {
    auto b = Bool(doc, v, Field(field, "splitExternalLocalOriginErrors"), sink);
    if (b) p.split_local_origin = *b;
    ok = ok && b.has_value();
  }
  if (const YAML::Node v = Child(n, "interval"); Present(v)) {
    auto d = Dur(doc, v, Field(field, "interval"), sink);
    if (d) p.interval = *d;
    ok = ok && d.has_value();
  }
  if (const YAML::Node v = Child(n, "baseEjectionTime"); Present(v)) {
    auto d = Dur(doc, v, Field(field, "baseEjectionTime"), sink);
    if (d) p.base_ejection_time = *d;
    ok = ok && d.has_value();
  }
  // Envoy caps the growth at max_ejection_time (300s), or at the base time
  // when that is longer.
  p.max_ejection_time = std::max<std::chrono::nanoseconds>(p.max_ejection_time,
                                                           p.base_ejection_time);
  if (!ok) return std::nullopt;
  return p;
}

}  // namespace ambit::waypoint::route::internal
