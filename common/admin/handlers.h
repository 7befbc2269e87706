// Standard handlers of the admin (15000), metrics (15020) and readiness
// (15021) servers (ISTIO-COMPAT §3.2, §3.3). The agent composes them:
//
//   AddMetricsHandlers(*stats_server, registry);
//   AddReadinessHandler(*ready_server, [&] { return readiness.Pending(); });
//   AddLoggingHandler(*admin, base::ProcessLogger());
//   AddQuitHandler(*admin, [&] { runtime.BeginDrain(); });
//   AddConfigDumpHandler(*admin, [&] { return snapshot_dumper.Json(); });
//   AddIndexHandler(*admin);   // last: lists what is registered
//
// Callbacks run on the server's loop thread. Objects passed by reference
// (registry, logger, the server for the index) must outlive the server.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/admin/server.h"
#include "common/base/log.h"
#include "common/metrics/registry.h"

namespace ambit::admin {

// GET /metrics and GET /stats/prometheus: Prometheus text, or OpenMetrics when
// the Accept header asks for it.
void AddMetricsHandlers(HttpServer& server, const metrics::Registry& registry);

// GET /healthz/ready: 200 "ready" when `pending()` is empty, else 500
// "not ready: a, b". Other methods 405.
using PendingFn = std::function<std::vector<std::string>()>;
void AddReadinessHandler(HttpServer& server, PendingFn pending);

// POST /logging lists levels; ?level=<spec> sets them ("info",
// "access:debug,hbone:trace", "warn,access=debug"); ?reset resets to info.
// A bad spec answers 400 with the reason. Other methods 405.
void AddLoggingHandler(HttpServer& server, base::Logger& logger);

// POST /quitquitquit: calls `drain` (once per request) and answers 200.
void AddQuitHandler(HttpServer& server, std::function<void()> drain);

// GET /config_dump: the JSON document produced by `dump`.
void AddConfigDumpHandler(HttpServer& server, std::function<std::string()> dump);

// GET /: an HTML page linking the paths registered so far.
void AddIndexHandler(HttpServer& server);

// The /logging logic, exposed for tests and other transports.
HttpResponse HandleLogging(base::Logger& logger, const HttpRequest& request);

}  // namespace ambit::admin
