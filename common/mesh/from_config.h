// Standalone mode: local config structs (common/config) → domain model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/mesh/snapshot.h"
#include "common/base/status.h"
#include "common/config/local_config.h"

namespace ambit::mesh {

// Replaces the store's content with the config. An empty workload uid becomes
// "<clusterId>//Pod/<namespace>/<name>". Errors name the config entry.
// Waypoint labels are resolved as istiod does (waypoint_binding.h); non-fatal
// findings (unknown waypoint, unknown appProtocol, ...) go to `findings`.
Status ApplyLocalConfig(const config::LocalConfig& cfg, WorkloadStore* store,
                        std::vector<std::string>* findings = nullptr);

// Convenience: a fresh store for `node_name` → snapshot.
StatusOr<std::shared_ptr<const Snapshot>> FromLocalConfig(const config::LocalConfig& cfg,
                                                          const std::string& node_name = {});

StatusOr<Workload> ConvertWorkload(const config::WorkloadConfig& c);
StatusOr<Service> ConvertService(const config::ServiceConfig& c);
StatusOr<Policy> ConvertPolicy(const config::PolicyConfig& c);

}  // namespace ambit::mesh
