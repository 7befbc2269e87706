// Status write-back of cluster mode, as a Gateway API implementation: the
// waypoint's Gateway gets Accepted and Programmed; each HTTPRoute/GRPCRoute
// with a parentRef bound to this waypoint (the Gateway itself, or a Service
// whose waypoint is this pod) gets a status.parents entry with Accepted and
// ResolvedRefs. Other controllers' parents entries are kept. A condition
// whose status did not change keeps its lastTransitionTime, so an unchanged
// world yields byte-identical patches (the writer drops those). Pure.
#pragma once

#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/mesh/snapshot.h"
#include "waypoint/kube/watch_decoder.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

inline constexpr const char* kIstioMeshController = "istio.io/mesh-controller";
inline constexpr const char* kAmbitController = "ambit.dev/waypoint-controller";

struct StatusInputs {
  const std::vector<kube::KubeObject>* objects = nullptr;
  const mesh::Snapshot* snapshot = nullptr;
  const mesh::Workload* self = nullptr;
  std::string gateway_name, gateway_namespace;
  const std::vector<route::Finding>* findings = nullptr;  // of the last compile
  Status applied;   // the last change: applied, or why it was rejected
  std::string now;  // RFC 3339, for conditions that change
};

struct StatusPatch {
  std::string kind, path;  // path of the object (status is PATCHed at path + "/status")
  std::string body;        // {"status":{...}} merge patch
};

std::vector<StatusPatch> ComputeStatusPatches(const StatusInputs& in);

// RFC 3339 UTC with seconds ("2026-12-08T02:03:04Z").
std::string Rfc3339Now();

}  // namespace ambit::waypoint
