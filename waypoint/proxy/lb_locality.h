// localityLbSetting as istiod turns it into Envoy priorities and locality
// weights, applied to one cluster's endpoints against the waypoint's own
// workload: failover (priority by region/zone/subzone match, `failover`
// region pairs, `failoverPriority` labels) or `distribute` (a share per
// locality). Pure; the picker rebuilds it with the endpoint list.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/mesh/types.h"
#include "waypoint/route/traffic_policy.h"

namespace ambit::waypoint::lb {

// Endpoints that share a locality weight (one group per level unless
// `distribute` splits them by locality).
struct Group {
  uint32_t weight = 1;
  // istiod's priority of the level before renumbering (0: the waypoint's
  // own locality; more: failover), so a level that is first only because
  // the better ones have no endpoint still counts as failover.
  uint32_t priority = 0;
  std::vector<uint32_t> members;  // indexes into the endpoint list
};
// One priority level; levels[0] is preferred, a later level is used only
// when no endpoint of the earlier ones can be picked.
using Level = std::vector<Group>;

// Istio's locality match: `pattern` "region[/zone[/subzone]]", a "*"
// segment matches anything, a shorter pattern matches as a prefix.
bool LocalityMatch(const mesh::Locality& l, std::string_view pattern);

// The levels for `endpoints` (workloads in endpoint-list order).
// `setting` null: the mesh default (locality LB enabled, no distribute);
// `failover`: outlierDetection is configured (istiod applies failover
// priorities only then).
std::vector<Level> Arrange(const mesh::Workload& self,
                           const std::vector<const mesh::Workload*>& endpoints,
                           const route::LocalitySetting* setting, bool failover);

}  // namespace ambit::waypoint::lb
