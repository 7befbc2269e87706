// Shared by compile_observability.cc (MeshConfig, accessLogging) and
// compile_metrics_overrides.cc (Telemetry metrics).
#pragma once

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "waypoint/route/compile_util.h"
#include "waypoint/route/observability.h"
#include "waypoint/route/telemetry_binding.h"

namespace ambit::waypoint::route::internal {

// One Telemetry's accessLogging, per provider it names.
struct LogOverlay {
  struct Entry {
    bool disabled = false;
    std::shared_ptr<const cel::Expr> filter;
  };
  std::map<std::string, Entry> per_provider;
  std::string source;
};

// One Telemetry's metrics overrides (unset fields do not override).
struct MetricsOverlay {
  std::array<std::optional<bool>, static_cast<size_t>(Metric::kCount)> disabled{};
  std::array<std::vector<TagOverride>, static_cast<size_t>(Metric::kCount)> tags;
  std::string source;
};

template <typename Overlay>
struct Levels {
  std::optional<Overlay> mesh, ns, workload;
  std::map<std::string, Overlay> services;
};
using LogLevels = Levels<LogOverlay>;
using MetricLevels = Levels<MetricsOverlay>;

class ObservabilityCompiler {
 public:
  ObservabilityCompiler(std::span<const config::ResourceConfig> resources,
                        const mesh::Snapshot& snap, const mesh::Workload& self,
                        ObservabilityConfig* out, Sink& sink)
      : resources_(resources), snap_(snap), self_(self), out_(out), sink_(sink) {}
  void Run();

 private:
  void MeshConfig(const config::ResourceConfig& rc);
  void Provider(const Doc& doc, const YAML::Node& at, const YAML::Node& n, size_t i);
  void ReportUnknown(const Doc& doc, const YAML::Node& at, std::string_view field,
                     const std::vector<std::string>& unknown);
  std::optional<LogOverlay> AccessLogging(const Doc& doc);
  AccessLogPolicy Effective(const std::vector<const LogOverlay*>& chain) const;
  std::optional<MetricsOverlay> Metrics(const Doc& doc);  // compile_metrics_overrides.cc
  void Override(const Doc& doc, const YAML::Node& n, const std::string& f, MetricsOverlay& o);
  MetricsPolicy EffectiveMetrics(const std::vector<const MetricsOverlay*>& chain) const;
  void CollectAllHeaders();

  // Istio keeps the oldest Telemetry at a level; later ones are reported.
  template <typename Overlay>
  void Place(const Doc& doc, const TelemetryBinding& b, const Overlay& o,
             std::optional<Overlay>& mesh, std::optional<Overlay>& ns,
             std::optional<Overlay>& workload, std::map<std::string, Overlay>& services) {
    for (auto [on, level] : {std::pair{b.mesh, &mesh}, std::pair{b.ns, &ns},
                             std::pair{b.workload, &workload}}) {
      if (!on) continue;
      if (*level) {
        sink_.Add(doc, fmt::format("conflicts with {} at the same level; ignored as istiod "
                                   "keeps the oldest", (*level)->source));
        continue;
      }
      *level = o;
    }
    for (const auto& key : b.services) {
      if (!services.emplace(key, o).second) {
        sink_.Add(doc, fmt::format("a second Telemetry for service {}; ignored", key));
      }
    }
  }

  std::span<const config::ResourceConfig> resources_;
  const mesh::Snapshot& snap_;
  const mesh::Workload& self_;
  ObservabilityConfig* out_;
  Sink& sink_;
  std::string root_ns_ = "istio-system";
  AccessLogFormat mesh_format_ = DefaultTextFormat();
};

}  // namespace ambit::waypoint::route::internal
