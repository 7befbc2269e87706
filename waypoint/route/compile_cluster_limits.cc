// DestinationRule trafficPolicy.connectionPool → ConnectionPoolPolicy and
// trafficPolicy.outlierDetection → OutlierPolicy.
#include <fmt/format.h>

#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route::internal {

std::optional<ConnectionPoolPolicy> CompileConnectionPool(const Doc& doc, const YAML::Node& n,
                                                          const std::string& field, Sink& sink) {
  sink.Add(doc, n, fmt::format("{}: not supported yet; ignored", field));
  return std::nullopt;
}

std::optional<OutlierPolicy> CompileOutlierDetection(const Doc& doc, const YAML::Node& n,
                                                     const std::string& field, Sink& sink) {
  sink.Add(doc, n, fmt::format("{}: not supported yet; ignored", field));
  return std::nullopt;
}

}  // namespace ambit::waypoint::route::internal
