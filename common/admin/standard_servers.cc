#include "common/admin/standard_servers.h"

#include <latch>

#include "common/base/log.h"

namespace ambit::admin {

StatusOr<StandardServers> StartStandardServers(lifecycle::Runtime& runtime,
                                               const StandardServerConfig& c) {
  ASSIGN_OR_RETURN(auto admin_addr, net::SocketAddress::Parse(c.admin_addr));
  ASSIGN_OR_RETURN(auto stats_addr, net::SocketAddress::Parse(c.stats_addr));
  ASSIGN_OR_RETURN(auto ready_addr, net::SocketAddress::Parse(c.readiness_addr));
  StandardServers out;
  io::Loop& main = runtime.main_loop();
  ASSIGN_OR_RETURN(out.admin, HttpServer::Create(main, {.address = admin_addr, .name = "admin"}));
  AddConfigDumpHandler(*out.admin, c.config_dump);
  AddLoggingHandler(*out.admin, base::ProcessLogger());
  AddQuitHandler(*out.admin, c.quit);
  AddIndexHandler(*out.admin);
  out.admin->Start();
  ASSIGN_OR_RETURN(out.stats, HttpServer::Create(main, {.address = stats_addr, .name = "stats"}));
  AddMetricsHandlers(*out.stats, *c.registry);
  out.stats->Start();
  std::latch done(1);
  Status st;
  runtime.PostToWorker(0, [&](io::Loop& loop) {
    auto server = HttpServer::Create(loop, {.address = ready_addr, .name = "readiness"});
    if (!server.ok()) {
      st = server.status();
    } else {
      out.readiness = std::move(*server);
      AddReadinessHandler(*out.readiness, c.not_ready);
      out.readiness->Start();
    }
    done.count_down();
  });
  done.wait();
  RETURN_IF_ERROR(st);
  return out;
}

}  // namespace ambit::admin
