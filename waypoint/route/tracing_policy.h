// The waypoint's tracing model (WAYPOINT.md §7): which collector spans go to
// and how requests are sampled and tagged, compiled from Istio's MeshConfig
// (extensionProviders, defaultProviders.tracing, enableTracing — the
// istio-system/istio ConfigMap in standalone mode) and telemetry.istio.io
// Telemetry resources bound to this waypoint (compile_telemetry.cc).
// Immutable once compiled; workers read it per request through WaypointState.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/config/local_config.h"
#include "common/mesh/snapshot.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

// A MeshConfig extensionProviders entry the waypoint can export to.
struct TracingProvider {
  enum class Kind : uint8_t { kOpenTelemetry, kZipkin };
  std::string name;
  Kind kind = Kind::kOpenTelemetry;
  std::string service;  // as written (hostname or IP literal)
  uint16_t port = 0;
  std::string path;     // OTLP: /v1/traces; Zipkin: /api/v2/spans
  std::string address;  // "ip:port" the exporter connects to; "" = unresolved
  std::string resolved_from;  // how: "ip literal", "endpoint of <svc>", or why not
};

struct CustomTag {
  enum class Kind : uint8_t { kLiteral, kHeader };  // environment → literal at compile
  std::string tag;
  Kind kind = Kind::kLiteral;
  std::string value;          // literal value, or the (lower-case) header name
  std::string default_value;  // header absent
};

// The effective tracing of a request after Istio's merge (mesh → namespace
// → waypoint / service).
struct TracingPolicy {
  std::shared_ptr<const TracingProvider> provider;  // null: no tracing at all
  double sampling_percent = 1.0;  // meshConfig.defaultConfig.tracing.sampling default
  std::vector<CustomTag> tags;
  bool disable_span_reporting = false;
  std::vector<std::string> sources;  // "Telemetry ns/name" merged in, in order
  bool active() const { return provider != nullptr; }
};

struct TracingConfig {
  TracingPolicy waypoint;                           // every request through this waypoint
  std::map<std::string, TracingPolicy, std::less<>> by_service;  // "ns/hostname": targetRefs Service
  std::map<std::string, std::shared_ptr<const TracingProvider>> providers;
  bool enable_tracing = true;               // MeshConfig enableTracing
  std::vector<std::string> default_providers;  // MeshConfig defaultProviders.tracing
  std::vector<std::string> mesh_fields_read;   // MeshConfig keys that were read
  std::string mesh_config_source;              // "file:line" of the ConfigMap, if any
  const TracingPolicy& For(std::string_view service_key) const {
    auto it = by_service.find(service_key);
    return it != by_service.end() ? it->second : waypoint;
  }
  // The same per request without building a key string each time.
  const TracingPolicy& For(std::string_view ns, std::string_view hostname) const {
    if (by_service.empty()) return waypoint;
    thread_local std::string key;
    key.assign(ns);
    key.push_back('/');
    key.append(hostname);
    return For(key);
  }
};

struct TelemetryCompileResult {
  std::shared_ptr<const TracingConfig> config;  // never null
  std::vector<Finding> findings;
};

// `self` is the waypoint's own workload (its namespace and gateway name bind
// namespace-wide and targetRefs Telemetry).
TelemetryCompileResult CompileTelemetry(std::span<const config::ResourceConfig> resources,
                                        const mesh::Snapshot& snapshot,
                                        const mesh::Workload& self);

}  // namespace ambit::waypoint::route
