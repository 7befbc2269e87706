// The waypoint's cluster mode state (no --config): istiod's workload xDS
// (common/xds + common/mesh/xds_adapters, as the agent), the waypoint's own
// certificate from the Istio CA (no impersonation), and the L7 resources from
// the Kubernetes API (waypoint/kube). Owned by Waypoint; control thread
// except the watcher/status threads inside waypoint/kube.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mesh/snapshot.h"
#include "common/mesh/xds_adapters/sink.h"
#include "common/xds/client.h"
#include "common/xds/env.h"
#include "waypoint/kube/status_writer.h"
#include "waypoint/kube/to_config.h"
#include "waypoint/kube/watcher.h"

namespace ambit::waypoint {

struct ClusterMode {
  std::map<std::string, std::string> env;  // the process environment, flags applied
  xds::XdsEnvConfig xds_config;
  std::string ca_description;
  std::string pod_name, pod_namespace, service_account, gateway_name;
  std::unique_ptr<mesh::WorkloadStore> store;
  std::unique_ptr<xds_adapters::XdsStateSink> sink;
  std::unique_ptr<xds::DeltaXdsClient> xds;
  std::unique_ptr<kube::KubeWatcher> watcher;
  std::unique_ptr<kube::StatusWriter> status;
  kube::ObjectConverter converter;
  std::shared_ptr<const mesh::Snapshot> snapshot;  // latest from xDS
  std::atomic<bool> change_posted{false};
  std::vector<std::string> object_errors;  // objects that could not be parsed
  std::string apply_error;                 // last rejected change ("" = applied)
  bool self_synthesized = false;
  bool waiting_logged = false;
  bool stopped = false;
};

}  // namespace ambit::waypoint
