// The manifests of one Ambit waypoint — Gateway, ServiceAccount, Role, RoleBinding,
// Service, Deployment — exactly as charts/ambit-waypoint renders them for the same
// settings (tests/charts checks the two agree; only Helm's own labels differ).
#pragma once

#include <string>

#include "common/base/status.h"

namespace ambit::ctl {

inline constexpr char kWaypointChartVersion[] = "0.1.0";  // charts/ambit-waypoint/Chart.yaml
inline constexpr char kDefaultWaypointImage[] = "ghcr.io/ambit-mesh/ambit-waypoint:0.1.0";

struct WaypointSpec {
  std::string name = "waypoint";
  std::string ns = "default";
  std::string waypoint_for = "service";  // istio.io/waypoint-for: service|workload|all|none
  std::string class_name = "ambit-waypoint";  // or istio-waypoint
  std::string revision;
  std::string image = kDefaultWaypointImage;
  std::string istio_namespace = "istio-system";
};

// Checks names (DNS-1123 labels), --for and the class.
Status ValidateWaypointSpec(const WaypointSpec& s);

// The Gateway alone (what the standalone config needs).
std::string WaypointGatewayYaml(const WaypointSpec& s);

// Every object, as `---`-separated YAML documents.
std::string WaypointManifestsYaml(const WaypointSpec& s);

}  // namespace ambit::ctl
