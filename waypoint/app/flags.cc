#include "waypoint/app/flags.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/base/duration.h"

namespace ambit::waypoint {

StatusOr<WaypointFlags> ParseWaypointFlags(int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  WaypointFlags f;
  CLI::App app{"ambit-waypoint: the Ambit waypoint (ambient-mode L7 proxy), one per waypoint pod"};
  app.allow_extras(false);
  std::string connect = "10s", handshake = "10s", ttl = "24h", deadline = "5s", sniff = "1s",
              idle = "1h";
  app.add_option("--config", f.config_path, "standalone config file (YAML), watched")
      ->envname("LOCAL_XDS_PATH")
      ->required();
  app.add_option("--ca-dir", f.ca_dir, "built-in CA directory (shared with the agents)")
      ->envname("AMBIT_CA_DIR");
  app.add_option("--workload", f.workload_uid,
                 "uid of this waypoint pod's workload in the config file")
      ->envname("AMBIT_WORKLOAD_UID")
      ->required();
  app.add_option("--workers", f.workers, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--io", f.io, "event loop backend: auto|uring|epoll")
      ->envname("AMBIT_IO")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  app.add_option("--log-level", f.log_level, "e.g. info or info,access=debug")
      ->envname("RUST_LOG");
  app.add_option("--log-format", f.log_format, "text|json")
      ->envname("LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--admin-addr", f.admin_addr, "admin server (localhost only): /config_dump ...");
  app.add_option("--stats-addr", f.stats_addr, "Prometheus metrics server (/metrics)");
  app.add_option("--readiness-addr", f.readiness_addr, "readiness server (/healthz/ready)");
  app.add_option("--hbone-addr", f.hbone_addr, "HBONE listener (mTLS, HTTP/2 CONNECT)");
  app.add_option("--connect-timeout", connect, "upstream connect timeout");
  app.add_option("--handshake-timeout", handshake, "TLS handshake timeout");
  app.add_option("--cert-ttl", ttl, "waypoint certificate lifetime")->envname("SECRET_TTL");
  app.add_option("--termination-deadline", deadline, "drain deadline on SIGTERM")
      ->envname("CONNECTION_TERMINATION_DEADLINE");
  app.add_option("--protocol-detection-timeout", sniff,
                 "how long to wait for a client's first bytes on ports without a declared "
                 "protocol before relaying as TCP");
  app.add_option("--idle-timeout", idle, "idle HTTP downstream connections are closed after this");
  app.add_option("--pool-max-streams", f.pool_max_streams, "HBONE streams per pooled connection")
      ->check(CLI::Range(1, 1000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *exit_now = true;
    return f;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  ASSIGN_OR_RETURN(f.connect_timeout, base::ParseDuration(connect));
  ASSIGN_OR_RETURN(f.handshake_timeout, base::ParseDuration(handshake));
  ASSIGN_OR_RETURN(f.cert_ttl, base::ParseDuration(ttl));
  ASSIGN_OR_RETURN(f.termination_deadline, base::ParseDuration(deadline));
  ASSIGN_OR_RETURN(f.sniff_timeout, base::ParseDuration(sniff));
  ASSIGN_OR_RETURN(f.idle_timeout, base::ParseDuration(idle));
  return f;
}

}  // namespace ambit::waypoint
