// The waypoint's access logging and metrics customization (WAYPOINT.md §7,
// ISTIO-COMPAT §8), compiled from MeshConfig (accessLogFile,
// accessLogEncoding, accessLogFormat, defaultProviders.accessLogging,
// extensionProviders[].envoyFileAccessLog) and Telemetry `accessLogging` /
// `metrics` bound to this waypoint (compile_observability.cc). Immutable
// once compiled; workers read it per request through WaypointState.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/config/local_config.h"
#include "common/mesh/snapshot.h"
#include "waypoint/route/access_log_format.h"
#include "waypoint/route/cel_expr.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

// A file access-log provider: MeshConfig's built-in "envoy" (accessLogFile
// and the mesh format) or an extensionProviders[].envoyFileAccessLog.
struct AccessLogProvider {
  std::string name;
  std::string path;  // "/dev/stdout", "/dev/stderr" or a file
  AccessLogFormat format;
};

// One provider as a request's effective policy uses it.
struct AccessLogSink {
  std::shared_ptr<const AccessLogProvider> provider;
  std::shared_ptr<const cel::Expr> filter;  // null: every request
};

struct AccessLogPolicy {
  // False: nothing configured access logging (the waypoint keeps its own
  // "access request complete" line in the process log).
  bool configured = false;
  std::vector<AccessLogSink> sinks;  // configured and empty: logging off
  std::vector<std::string> sources;  // "meshConfig", "Telemetry ns/name", ...
};

// Istio's metric names in Telemetry metrics overrides.
enum class Metric : uint8_t {
  kRequestCount, kRequestDuration, kRequestSize, kResponseSize,
  kTcpOpened, kTcpClosed, kTcpSent, kTcpReceived, kCount
};
std::string_view MetricName(Metric m);

struct TagOverride {
  std::string tag;
  bool remove = false;                      // REMOVE: the label is dropped
  std::shared_ptr<const cel::Expr> value;   // UPSERT: its value per request
};

struct MetricsPolicy {
  std::array<bool, static_cast<size_t>(Metric::kCount)> disabled{};
  std::array<std::vector<TagOverride>, static_cast<size_t>(Metric::kCount)> tags;
  std::vector<std::string> sources;
  bool Disabled(Metric m) const { return disabled[static_cast<size_t>(m)]; }
  const std::vector<TagOverride>& Tags(Metric m) const { return tags[static_cast<size_t>(m)]; }
  bool Customized() const {
    for (size_t i = 0; i < disabled.size(); ++i) {
      if (disabled[i] || !tags[i].empty()) return true;
    }
    return false;
  }
};

struct ObservabilityConfig {
  AccessLogPolicy waypoint_log;
  std::map<std::string, AccessLogPolicy, std::less<>> log_by_service;  // "ns/hostname"
  MetricsPolicy waypoint_metrics;
  std::map<std::string, MetricsPolicy, std::less<>> metrics_by_service;
  std::map<std::string, std::shared_ptr<const AccessLogProvider>> providers;
  // MeshConfig as read.
  std::string access_log_file, access_log_encoding = "TEXT", access_log_format;
  std::vector<std::string> default_providers;  // defaultProviders.accessLogging
  // Headers any format / filter / tag expression reads (lower case): only
  // these are kept from a request.
  std::vector<std::string> request_headers, response_headers;
  const AccessLogPolicy& LogFor(std::string_view service_key) const {
    auto it = log_by_service.find(service_key);
    return it != log_by_service.end() ? it->second : waypoint_log;
  }
  const MetricsPolicy& MetricsFor(std::string_view service_key) const {
    auto it = metrics_by_service.find(service_key);
    return it != metrics_by_service.end() ? it->second : waypoint_metrics;
  }
};

struct ObservabilityCompileResult {
  std::shared_ptr<const ObservabilityConfig> config;  // never null
  std::vector<Finding> findings;
};

ObservabilityCompileResult CompileObservability(std::span<const config::ResourceConfig> resources,
                                                const mesh::Snapshot& snapshot,
                                                const mesh::Workload& self);

}  // namespace ambit::waypoint::route
