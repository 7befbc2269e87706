#include "common/admin/standard_servers.h"

#include <latch>
#include <optional>

#include "common/base/log.h"

namespace ambit::admin {

StatusOr<StandardServers> StartStandardServers(lifecycle::Runtime& runtime,
                                               const StandardServerConfig& c) {
  ASSIGN_OR_RETURN(auto admin_addr, net::SocketAddress::Parse(c.admin_addr));
  std::optional<net::SocketAddress> admin_v6;
  if (!c.admin_addr_v6.empty()) {
    ASSIGN_OR_RETURN(admin_v6, net::SocketAddress::Parse(c.admin_addr_v6));
  }
  ASSIGN_OR_RETURN(auto stats_addr, net::SocketAddress::Parse(c.stats_addr));
  ASSIGN_OR_RETURN(auto ready_addr, net::SocketAddress::Parse(c.readiness_addr));
  StandardServers out;
  io::Loop& main = runtime.main_loop();
  auto admin_on = [&](const net::SocketAddress& a) -> StatusOr<std::unique_ptr<HttpServer>> {
    ASSIGN_OR_RETURN(auto s, HttpServer::Create(main, {.address = a, .name = "admin"}));
    AddConfigDumpHandler(*s, c.config_dump);
    AddLoggingHandler(*s, base::ProcessLogger());
    AddQuitHandler(*s, c.quit);
    AddIndexHandler(*s);
    s->Start();
    return s;
  };
  ASSIGN_OR_RETURN(out.admin, admin_on(admin_addr));
  if (admin_v6) {
    ASSIGN_OR_RETURN(out.admin_v6, admin_on(*admin_v6));
  }
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
