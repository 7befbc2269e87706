// /config_dump section for DestinationRule connectionPool and
// outlierDetection (resilience_dump.cc): per cluster, the limits in force,
// what is in flight against them, and each endpoint's ejection state.
#pragma once

#include <nlohmann/json.hpp>

#include "common/base/clock.h"
#include "waypoint/proxy/circuit_breaker.h"

namespace ambit::waypoint {

nlohmann::json ResilienceJson(const ResilienceTable& table, base::MonoTime now);

}  // namespace ambit::waypoint
