// Netns liveness: whether a pod's configured netns path still names the
// namespace we captured (`ip netns del` under a running agent).
#pragma once

#include <string>

#include "common/base/status.h"
#include "common/net/netns.h"

namespace ambit::agent {

// "" if `path` (a path or a bare /var/run/netns name) still names `ns`;
// otherwise why not ("no such file", "names another namespace").
std::string NetnsPathProblem(const std::string& path, const net::NetnsHandle& ns);

}  // namespace ambit::agent
