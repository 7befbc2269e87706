// /config_dump section for authorization (authz_dump.cc): the policies bound
// to this waypoint (where from, what they bind, their rules in Istio's
// terms) and the targetRef policies that bind nothing here, with why.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "waypoint/route/authz.h"

namespace ambit::waypoint {

nlohmann::json AuthzJson(const route::AuthzConfig& cfg, const std::vector<std::string>& unbound);

}  // namespace ambit::waypoint
