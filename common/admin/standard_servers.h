// The three HTTP servers every Ambit proxy binary runs, set up one way:
// admin (config_dump, logging, quitquitquit, index) and Prometheus metrics
// on the control loop, readiness on worker 0 so that a stuck data path
// answers nothing (ISTIO-COMPAT §3.2–3.3).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/admin/handlers.h"
#include "common/admin/server.h"
#include "common/lifecycle/runtime.h"
#include "common/metrics/registry.h"

namespace ambit::admin {

struct StandardServerConfig {
  std::string admin_addr;
  // A second admin listener with the same handlers (ztunnel's localhost is
  // 127.0.0.1 and [::1]); empty: none.
  std::string admin_addr_v6;
  std::string stats_addr, readiness_addr;
  std::function<std::string()> config_dump;
  std::function<void()> quit;  // /quitquitquit: start draining
  PendingFn not_ready;         // readiness: what is still pending (empty = ready)
  const metrics::Registry* registry = nullptr;
};

struct StandardServers {
  std::unique_ptr<HttpServer> admin, admin_v6, stats, readiness;  // admin_v6 may be null
};

// Creates and starts the servers (readiness on worker 0, waiting for it).
// Errors name the address that could not be bound.
StatusOr<StandardServers> StartStandardServers(lifecycle::Runtime& runtime,
                                               const StandardServerConfig& config);

}  // namespace ambit::admin
