// ambit-waypoint command line. Standalone mode only for now: the watched
// YAML file (the agent's format), the built-in CA directory, and which
// workload of the file this process is.
#pragma once

#include <string>

#include "common/base/clock.h"
#include "common/base/status.h"

namespace ambit::waypoint {

struct WaypointFlags {
  std::string config_path;   // --config / LOCAL_XDS_PATH
  std::string ca_dir;        // --ca-dir / AMBIT_CA_DIR
  std::string workload_uid;  // --workload / AMBIT_WORKLOAD_UID
  int workers = 2;           // --workers
  std::string io = "auto";   // --io
  std::string log_level = "info";   // --log-level (e.g. info,access=debug)
  std::string log_format = "text";  // --log-format text|json
  std::string admin_addr = "127.0.0.1:15000";
  std::string stats_addr = "0.0.0.0:15020";
  std::string readiness_addr = "0.0.0.0:15021";
  std::string hbone_addr = "0.0.0.0:15008";
  base::Duration connect_timeout = std::chrono::seconds(10);
  base::Duration handshake_timeout = std::chrono::seconds(10);
  base::Duration cert_ttl = std::chrono::hours(24);
  base::Duration termination_deadline = std::chrono::seconds(5);
  base::Duration sniff_timeout = std::chrono::seconds(1);
  base::Duration idle_timeout = std::chrono::hours(1);
  int pool_max_streams = 100;
};

// Parses argv and the environment. --help prints every flag and sets
// `exit_now`.
StatusOr<WaypointFlags> ParseWaypointFlags(int argc, char** argv, bool* exit_now);

}  // namespace ambit::waypoint
