// Per-request telemetry of the waypoint (WAYPOINT.md §7): Istio's HTTP
// metrics with reporter="waypoint" and the access log line, both from one
// RequestInfo filled as the request moves through the pipeline. TCP fallback
// connections use the istio_tcp_* families (common/telemetry) instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/clock.h"
#include "common/mesh/types.h"
#include "common/metrics/registry.h"
#include "common/net/address.h"
#include "waypoint/proxy/trace_state.h"

namespace ambit::waypoint {

namespace route {
struct ObservabilityConfig;
struct MetricsPolicy;
}  // namespace route

// Envoy's %RESPONSE_FLAGS% vocabulary (the ones this waypoint sets so far).
namespace flags {
inline constexpr std::string_view kNone = "-";
inline constexpr std::string_view kNoHealthyUpstream = "UH";
inline constexpr std::string_view kUpstreamConnectFailure = "UF";
inline constexpr std::string_view kUpstreamReset = "UR";  // reset before/while responding
inline constexpr std::string_view kDownstreamReset = "DR"; // downstream went away
inline constexpr std::string_view kNoRoute = "NR";
inline constexpr std::string_view kNoCluster = "NC";
inline constexpr std::string_view kUpstreamTimeout = "UT";
inline constexpr std::string_view kDownstreamProtocolError = "DPE";
inline constexpr std::string_view kUpstreamProtocolError = "UPE";
inline constexpr std::string_view kRetryLimitExceeded = "URX";
}  // namespace flags

// What one request did; every field is optional until known.
struct RequestInfo {
  base::MonoTime start{};
  net::SocketAddress downstream_remote;  // the client (HBONE peer or PROXY source)
  net::SocketAddress downstream_local;   // the CONNECT authority (VIP:port)
  std::string source_principal;          // client SPIFFE id, if mTLS
  const mesh::Workload* source = nullptr;
  const mesh::Service* service = nullptr;
  const mesh::Workload* upstream_workload = nullptr;
  std::string upstream_host;     // endpoint ip:port
  std::string upstream_cluster;  // set when not the service port's (computed when logged)
  std::string route_name;        // the matched route, when a route table applied
  std::string protocol;          // "HTTP/1.1", "HTTP/2"; request_protocol "http"/"grpc"
  bool grpc = false;
  std::string method, path, authority, user_agent, request_id, forwarded_for;
  int response_code = 0;         // 0 = no response sent
  std::string grpc_status;       // grpc-status of the response, if any
  std::string response_flags = std::string(flags::kNone);
  std::string details;           // %RESPONSE_CODE_DETAILS%-like reason
  uint64_t bytes_received = 0;   // request body bytes from downstream
  uint64_t bytes_sent = 0;       // response body bytes to downstream
  bool mutual_tls = false;
  uint32_t attempts = 0;         // upstream tries (%UPSTREAM_REQUEST_ATTEMPT_COUNT%)
  uint64_t generation = 0;       // of the WaypointState the pointers above belong to
  RequestTrace trace;            // tracing.h
  // Access logging and metrics overrides (in the state the request pinned;
  // null: none published yet), and the request headers they read
  // (CaptureLogHeaders, access_log.h).
  const route::ObservabilityConfig* observability = nullptr;
  std::vector<std::pair<std::string, std::string>> log_headers;
};

// Adds a response flag the way Envoy prints several ("UF,URX").
void AddResponseFlag(RequestInfo& info, std::string_view flag);
// The upstream cluster of a request as logged (inbound-vip|PORT|http|HOST
// unless the route named another).
std::string RequestCluster(const RequestInfo& info);

class SpanSink;
class AccessLogFiles;

class RequestMetrics {
 public:
  // Where sampled requests' spans go (set once before workers start).
  void SetSpanSink(SpanSink* sink) { span_sink_ = sink; }
  // Series lookups are cached per shard (a worker only uses its own), keyed
  // by the request's label inputs and valid for one state generation.
  explicit RequestMetrics(metrics::Registry& registry);
  ~RequestMetrics();
  // Counts the request (istio_requests_total, duration, sizes) on `shard`
  // (with the Telemetry metrics overrides of its service) and writes its
  // access log lines: Envoy-formatted to the configured providers' files,
  // or, when nothing configures access logging, the "access" module line.
  void Record(size_t shard, const RequestInfo& info, base::MonoTime now) const;
  static constexpr std::string_view kReporter = "waypoint";
  static const metrics::Labels& LabelNames();
  static metrics::Labels LabelValues(const RequestInfo& info);

 private:
  metrics::CounterFamily& requests_;
  metrics::HistogramFamily& duration_;
  metrics::HistogramFamily& request_bytes_;
  metrics::HistogramFamily& response_bytes_;

  struct Cells {
    metrics::Counter* requests;
    metrics::Histogram* duration;
    metrics::Histogram* request_bytes;
    metrics::Histogram* response_bytes;
  };
  struct Key {
    const void* source;
    const void* upstream;
    const void* service;
    int code;
    bool grpc, mtls;
    std::string grpc_status, flags, principal;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct ShardCache {
    uint64_t generation = 0;
    std::unordered_map<Key, Cells, KeyHash> cells;
  };
  Cells Lookup(size_t shard, const RequestInfo& info) const;
  // The slow path when Telemetry overrides the metrics of the request.
  void RecordCustom(size_t shard, const RequestInfo& info, base::MonoTime now,
                    const route::MetricsPolicy& policy) const;
  void WriteAccessLogs(const RequestInfo& info, base::MonoTime now) const;
  mutable std::vector<ShardCache> caches_;
  std::unique_ptr<AccessLogFiles> files_;
  mutable std::atomic<uint64_t> filtered_{0};
  SpanSink* span_sink_ = nullptr;
};

// The access log line for a request (module "access", INFO; WARN for 5xx).
void LogRequest(const RequestInfo& info, base::MonoTime now);

}  // namespace ambit::waypoint
