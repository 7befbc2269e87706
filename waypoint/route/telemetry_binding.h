// Which requests of this waypoint a Telemetry resource applies to, as
// istiod binds them for a waypoint: no selector/targetRefs in the root
// namespace = mesh-wide, in the waypoint's namespace = namespace-wide;
// `selector` matching the waypoint's labels or `targetRefs` to its Gateway =
// this waypoint; `targetRefs` to a Service = that service's requests. Used by
// the tracing (compile_telemetry.cc) and the logging/metrics
// (compile_observability.cc) compilers.
#pragma once

#include <string>
#include <vector>

#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {

struct TelemetryBinding {
  bool mesh = false, ns = false, workload = false;
  std::vector<std::string> services;  // "ns/hostname"
};

// `sink` (may be null) gets the findings for unsupported targetRef kinds.
TelemetryBinding BindTelemetry(const Doc& doc, const mesh::Snapshot& snap,
                               const mesh::Workload& self, std::string_view root_ns, Sink* sink);

// The gateway name of this waypoint (what targetRefs kind Gateway names).
std::string WaypointGatewayName(const mesh::Workload& self);

}  // namespace ambit::waypoint::route::internal
