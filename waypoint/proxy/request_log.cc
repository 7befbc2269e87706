#include "waypoint/proxy/request_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "common/base/log.h"
#include "common/telemetry/peer_labels.h"
#include "waypoint/proxy/access_log.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/tracing.h"
#include "waypoint/route/observability.h"

namespace ambit::waypoint {

namespace {

using telemetry::OrUnknown;

// Istio's default buckets (WAYPOINT.md §7), in ms.
std::vector<double> DurationBuckets() {
  return {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
          600000, 1800000, 3600000};
}

// Envoy's istio_request_bytes / istio_response_bytes buckets (powers of ten).
std::vector<double> SizeBuckets() { return {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000}; }

double Millis(base::Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// grpc_response_status as Envoy's Istio stats set it: the response's gRPC
// status code for gRPC requests, empty otherwise or when there is none. Only
// the defined codes 0..16 become label values, so an upstream cannot create
// series with arbitrary grpc-status strings (bounded label churn).
std::string GrpcStatusLabel(const RequestInfo& info) {
  const std::string& g = info.grpc_status;
  if (!info.grpc || g.empty() || g.size() > 2) return {};
  for (char c : g) {
    if (c < '0' || c > '9') return {};
  }
  if ((g.size() == 2 && g[0] == '0') || std::stoi(g) > 16) return {};
  return g;
}

}  // namespace

const metrics::Labels& RequestMetrics::LabelNames() {
  static const metrics::Labels kNames = {
      "reporter",
      "source_workload",
      "source_canonical_service",
      "source_canonical_revision",
      "source_workload_namespace",
      "source_principal",
      "source_app",
      "source_version",
      "source_cluster",
      "destination_workload",
      "destination_workload_namespace",
      "destination_principal",
      "destination_app",
      "destination_version",
      "destination_service",
      "destination_canonical_service",
      "destination_canonical_revision",
      "destination_service_name",
      "destination_service_namespace",
      "destination_cluster",
      "request_protocol",
      "response_code",
      "grpc_response_status",
      "response_flags",
      "connection_security_policy",
  };
  return kNames;
}

metrics::Labels RequestMetrics::LabelValues(const RequestInfo& info) {
  telemetry::PeerLabels src = telemetry::LabelsFor(info.source);
  telemetry::PeerLabels dst = telemetry::LabelsFor(info.upstream_workload);
  if (!info.source_principal.empty()) src.principal = info.source_principal;
  telemetry::ConnectionLabels svc;
  telemetry::SetServiceLabels(info.service, &svc);
  return {
      std::string(kReporter),
      OrUnknown(src.workload),
      OrUnknown(src.canonical_service),
      OrUnknown(src.canonical_revision),
      OrUnknown(src.namespace_),
      OrUnknown(src.principal),
      OrUnknown(src.app),
      OrUnknown(src.version),
      OrUnknown(src.cluster),
      OrUnknown(dst.workload),
      OrUnknown(dst.namespace_),
      OrUnknown(dst.principal),
      OrUnknown(dst.app),
      OrUnknown(dst.version),
      OrUnknown(svc.destination_service),
      OrUnknown(dst.canonical_service),
      OrUnknown(dst.canonical_revision),
      OrUnknown(svc.destination_service_name),
      OrUnknown(svc.destination_service_namespace),
      OrUnknown(dst.cluster),
      info.grpc ? "grpc" : "http",
      std::to_string(info.response_code),
      GrpcStatusLabel(info),
      info.response_flags.empty() ? std::string("-") : info.response_flags,
      info.mutual_tls ? "mutual_tls" : "none",
  };
}

RequestMetrics::RequestMetrics(metrics::Registry& r)
    : requests_(r.AddCounter("istio_requests", "Requests processed by the waypoint",
                             LabelNames())),
      duration_(r.AddHistogram("istio_request_duration_milliseconds",
                               "Request duration until the last response byte", LabelNames(),
                               DurationBuckets())),
      request_bytes_(r.AddHistogram("istio_request_bytes", "Request body sizes", LabelNames(),
                                    SizeBuckets())),
      response_bytes_(r.AddHistogram("istio_response_bytes", "Response body sizes",
                                     LabelNames(), SizeBuckets())),
      caches_(r.shards()),
      files_(std::make_unique<AccessLogFiles>()) {
  for (auto* f : {&duration_, &request_bytes_, &response_bytes_}) f->set_omit_empty_labels(true);
  requests_.set_omit_empty_labels(true);
  r.AddCallbackCounter("ambit_waypoint_access_log_lines_written",
                       "Access log lines written to their files",
                       [this] { return static_cast<double>(files_->written()); });
  r.AddCallbackCounter("ambit_waypoint_access_log_lines_dropped",
                       "Access log lines dropped (writer queue full, file not writable)",
                       [this] { return static_cast<double>(files_->dropped()); });
  r.AddCallbackCounter("ambit_waypoint_access_log_lines_filtered",
                       "Requests not logged by a provider because its filter.expression was "
                       "not true",
                       [this] { return static_cast<double>(filtered_.load()); });
}

RequestMetrics::~RequestMetrics() = default;

size_t RequestMetrics::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<const void*>()(k.source);
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
  mix(std::hash<const void*>()(k.upstream));
  mix(std::hash<const void*>()(k.service));
  mix(static_cast<size_t>(k.code) * 2 + (k.grpc ? 1 : 0) + (k.mtls ? 4096 : 0));
  mix(std::hash<std::string>()(k.flags));
  mix(std::hash<std::string>()(k.grpc_status));
  mix(std::hash<std::string>()(k.principal));
  return h;
}

RequestMetrics::Cells RequestMetrics::Lookup(size_t shard, const RequestInfo& info) const {
  auto fetch = [&] {
    metrics::Labels labels = LabelValues(info);
    return Cells{requests_.Get(shard, labels), duration_.Get(shard, labels),
                 request_bytes_.Get(shard, labels), response_bytes_.Get(shard, labels)};
  };
  if (shard >= caches_.size() || info.generation == 0) return fetch();
  ShardCache& c = caches_[shard];
  if (info.generation > c.generation) {  // pointers of older states may be reused
    c.cells.clear();
    c.generation = info.generation;
  }
  if (info.generation != c.generation) return fetch();  // a connection on an older state
  Key key{info.source,  info.upstream_workload, info.service,        info.response_code,
          info.grpc,    info.mutual_tls,        info.grpc_status,    info.response_flags,
          info.source_principal};
  auto it = c.cells.find(key);
  if (it != c.cells.end()) return it->second;
  if (c.cells.size() >= 4096) c.cells.clear();  // bounded; label sets are few in practice
  Cells cells = fetch();
  c.cells.emplace(std::move(key), cells);
  return cells;
}

namespace {

const route::MetricsPolicy* CustomMetrics(const RequestInfo& info) {
  const route::ObservabilityConfig* obs = info.observability;
  if (obs == nullptr) return nullptr;
  const route::MetricsPolicy* p = &obs->waypoint_metrics;
  if (info.service != nullptr && !obs->metrics_by_service.empty()) {
    p = &obs->MetricsFor(info.service->Key());
  }
  return p->Customized() ? p : nullptr;
}

}  // namespace

void RequestMetrics::Record(size_t shard, const RequestInfo& info, base::MonoTime now) const {
  if (const route::MetricsPolicy* custom = CustomMetrics(info)) {
    RecordCustom(shard, info, now, *custom);
  } else {
    Cells cells = Lookup(shard, info);
    cells.requests->Inc();
    cells.duration->Observe(Millis(now - info.start));
    cells.request_bytes->Observe(static_cast<double>(info.bytes_received));
    cells.response_bytes->Observe(static_cast<double>(info.bytes_sent));
  }
  WriteAccessLogs(info, now);
  if (info.trace.sampled && span_sink_ != nullptr) {
    std::vector<SpanRecord> spans = FinishTrace(info);
    if (!spans.empty()) span_sink_->Submit(std::move(spans));
  }
}

void RequestMetrics::RecordCustom(size_t shard, const RequestInfo& info, base::MonoTime now,
                                  const route::MetricsPolicy& policy) const {
  using route::Metric;
  const metrics::Labels base = LabelValues(info);
  const metrics::Labels& names = LabelNames();
  RequestAttributes attrs(info);
  auto labels = [&](Metric m) {
    metrics::Labels l = base;
    for (const route::TagOverride& t : policy.Tags(m)) {
      auto it = std::find(names.begin(), names.end(), t.tag);
      if (it == names.end()) continue;
      std::string& v = l[static_cast<size_t>(it - names.begin())];
      if (t.remove) {
        v.clear();  // the family leaves empty labels out
      } else {
        v = t.value->Eval(attrs).AsTag().value_or("unknown");
        if (v.empty()) v = "unknown";
      }
    }
    return l;
  };
  if (!policy.Disabled(Metric::kRequestCount)) {
    requests_.Get(shard, labels(Metric::kRequestCount))->Inc();
  }
  if (!policy.Disabled(Metric::kRequestDuration)) {
    duration_.Get(shard, labels(Metric::kRequestDuration))->Observe(Millis(now - info.start));
  }
  if (!policy.Disabled(Metric::kRequestSize)) {
    request_bytes_.Get(shard, labels(Metric::kRequestSize))
        ->Observe(static_cast<double>(info.bytes_received));
  }
  if (!policy.Disabled(Metric::kResponseSize)) {
    response_bytes_.Get(shard, labels(Metric::kResponseSize))
        ->Observe(static_cast<double>(info.bytes_sent));
  }
}

void RequestMetrics::WriteAccessLogs(const RequestInfo& info, base::MonoTime now) const {
  const route::ObservabilityConfig* obs = info.observability;
  const route::AccessLogPolicy* p = nullptr;
  if (obs != nullptr) {
    p = &obs->waypoint_log;
    if (info.service != nullptr && !obs->log_by_service.empty()) {
      p = &obs->LogFor(info.service->Key());
    }
  }
  if (p == nullptr || !p->configured) {
    LogRequest(info, now);
    return;
  }
  if (p->sinks.empty()) return;
  const auto wall = std::chrono::system_clock::now() -
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(now - info.start);
  const int64_t start_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
  RequestAttributes attrs(info);
  for (const route::AccessLogSink& sink : p->sinks) {
    if (sink.filter != nullptr && !sink.filter->Matches(attrs)) {
      filtered_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    files_->Write(sink.provider->path, RenderAccessLog(sink.provider->format, info, now, start_ms));
  }
}

void AddResponseFlag(RequestInfo& info, std::string_view flag) {
  if (info.response_flags.empty() || info.response_flags == flags::kNone) {
    info.response_flags = std::string(flag);
  } else if (info.response_flags.find(flag) == std::string::npos) {
    info.response_flags.append(",").append(flag);
  }
}

std::string RequestCluster(const RequestInfo& info) {
  return !info.upstream_cluster.empty() || info.service == nullptr
             ? info.upstream_cluster
             : ClusterName(*info.service, info.downstream_local.port());
}

void LogRequest(const RequestInfo& info, base::MonoTime now) {
  const base::LogLevel level =
      info.response_code >= 500 || info.response_code == 0 ? base::LogLevel::kWarn
                                                           : base::LogLevel::kInfo;
  auto& logger = base::ProcessLogger();
  if (!logger.Enabled(level, "access")) return;
  const std::string src = info.downstream_remote.ToString();
  const std::string dst = info.downstream_local.ToString();
  const std::string code = std::to_string(info.response_code);
  const std::string recv = std::to_string(info.bytes_received);
  const std::string sent = std::to_string(info.bytes_sent);
  const std::string cluster = RequestCluster(info);
  const std::string attempts = info.attempts > 0 ? std::to_string(info.attempts) : "";
  const std::string dur = fmt::format(
      "{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(now - info.start).count());
  std::array<base::LogField, 23> f;
  size_t n = 0;
  auto add = [&](std::string_view k, std::string_view v) {
    if (!v.empty()) f[n++] = {k, v};
  };
  add("src.addr", src);
  add("src.workload", info.source ? std::string_view(info.source->name) : "");
  add("src.namespace", info.source ? std::string_view(info.source->ns) : "");
  add("src.identity", info.source_principal);
  add("dst.addr", dst);
  add("dst.service", info.service ? std::string_view(info.service->hostname) : "");
  add("upstream.host", info.upstream_host);
  add("upstream.cluster", cluster);
  add("upstream.attempts", attempts);
  add("route", info.route_name);
  add("dst.workload", info.upstream_workload ? std::string_view(info.upstream_workload->name) : "");
  add("method", info.method);
  add("path", info.path);
  add("protocol", info.protocol);
  add("authority", info.authority);
  add("response_code", code);
  add("response_flags", info.response_flags);
  add("grpc_status", info.grpc_status);
  add("details", info.details);
  add("bytes_received", recv);
  add("bytes_sent", sent);
  add("duration", dur);
  add("request_id", info.request_id);  // last: what people grep for across hops
  logger.Emit(level, "access", "request complete", std::span(f.data(), n));
}

}  // namespace ambit::waypoint
