// Runs a program (iptables-restore, nft, ...) inside a network namespace:
// fork, setns(CLONE_NEWNET) in the child, exec. stdin is fed from a string;
// stdout/stderr are captured. For installing rules only — never on a worker.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/netns.h"

namespace ambit::capture {

struct ExecResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Finds `name` in PATH, /usr/sbin and /sbin. NotFound names the package.
StatusOr<std::string> FindProgram(std::string_view name, std::string_view package);

// `ns` may be null (run in the caller's netns). Fails only if the program
// could not be run; a non-zero exit is reported in ExecResult.
StatusOr<ExecResult> ExecInNetns(const net::NetnsHandle* ns, const std::vector<std::string>& argv,
                                 std::string_view input);

}  // namespace ambit::capture
