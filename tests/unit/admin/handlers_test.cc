#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "common/admin/client.h"
#include "common/admin/handlers.h"
#include "tests/unit/admin/admin_test_util.h"

using namespace ambit;
using namespace ambit::admin;
using namespace ambit::admin::testing;

namespace {

ClientResponse Call(uint16_t port, std::string method, std::string target,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  ClientRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.headers = std::move(headers);
  auto r = Fetch(HttpUrl{.host = "127.0.0.1", .port = port}, req);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

}  // namespace

TEST_CASE("metrics: Prometheus by default, OpenMetrics when asked") {
  metrics::Registry registry(1);
  registry.AddCounter("ambit_test_requests", "test counter").Get(0, {})->Inc(3);
  ServerThread st(io::BackendKind::kAuto, [&](HttpServer& s) { AddMetricsHandlers(s, registry); });

  auto prom = Call(st.port(), "GET", "/metrics");
  CHECK(prom.status == 200);
  CHECK(prom.Header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(prom.body.find("ambit_test_requests_total 3") != std::string::npos);
  CHECK(prom.body.find("# EOF") == std::string::npos);

  auto om = Call(st.port(), "GET", "/stats/prometheus",
                 {{"accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}});
  CHECK(om.status == 200);
  CHECK(om.Header("content-type") ==
        "application/openmetrics-text; version=1.0.0; charset=utf-8");
  CHECK(om.body.ends_with("# EOF\n"));

  CHECK(Call(st.port(), "POST", "/metrics").status == 405);
}

TEST_CASE("readiness: 500 with what is pending, then 200 ready; 405 for POST") {
  std::mutex mu;
  std::vector<std::string> pending = {"workload certificates", "pod proxies"};
  ServerThread st(io::BackendKind::kAuto, [&](HttpServer& s) {
    AddReadinessHandler(s, [&] {
      std::lock_guard lock(mu);
      return pending;
    });
  });
  auto r1 = Call(st.port(), "GET", "/healthz/ready");
  CHECK(r1.status == 500);
  CHECK(r1.body == "not ready: workload certificates, pod proxies\n");
  {
    std::lock_guard lock(mu);
    pending.clear();
  }
  auto r2 = Call(st.port(), "GET", "/healthz/ready");
  CHECK(r2.status == 200);
  CHECK(r2.body == "ready\n");
  CHECK(Call(st.port(), "POST", "/healthz/ready").status == 405);
}

TEST_CASE("/logging: list, set, module spec, bad level, reset, POST only") {
  base::Logger logger;
  ServerThread st(io::BackendKind::kAuto, [&](HttpServer& s) { AddLoggingHandler(s, logger); });

  auto list = Call(st.port(), "POST", "/logging");
  CHECK(list.status == 200);
  CHECK(list.body == "current log level is " + logger.DescribeLevels() + "\n");

  auto set = Call(st.port(), "POST", "/logging?level=access:debug,hbone:trace");
  CHECK(set.status == 200);
  CHECK(logger.Enabled(base::LogLevel::kDebug, "access"));
  CHECK(logger.Enabled(base::LogLevel::kTrace, "hbone"));
  CHECK_FALSE(logger.Enabled(base::LogLevel::kDebug, "xds"));
  CHECK(set.body.find("access=debug") != std::string::npos);

  auto global = Call(st.port(), "POST", "/logging?level=warn");
  CHECK(global.status == 200);
  CHECK_FALSE(logger.Enabled(base::LogLevel::kInfo, "xds"));

  auto bad = Call(st.port(), "POST", "/logging?level=access:loud");
  CHECK(bad.status == 400);
  CHECK(bad.body.starts_with("invalid level 'access:loud': "));
  CHECK(logger.Enabled(base::LogLevel::kDebug, "access"));  // unchanged

  auto reset = Call(st.port(), "POST", "/logging?reset");
  CHECK(reset.status == 200);
  CHECK_FALSE(logger.Enabled(base::LogLevel::kDebug, "access"));
  CHECK(logger.Enabled(base::LogLevel::kInfo, "xds"));

  CHECK(Call(st.port(), "GET", "/logging").status == 405);
}

TEST_CASE("/quitquitquit: POST drains, other methods 405") {
  std::atomic<int> drains{0};
  ServerThread st(io::BackendKind::kAuto,
                  [&](HttpServer& s) { AddQuitHandler(s, [&] { drains.fetch_add(1); }); });
  auto get = Call(st.port(), "GET", "/quitquitquit");
  CHECK(get.status == 405);
  CHECK(get.Header("allow") == "POST");
  CHECK(drains.load() == 0);
  auto post = Call(st.port(), "POST", "/quitquitquit");
  CHECK(post.status == 200);
  CHECK(drains.load() == 1);
}

TEST_CASE("/config_dump serves the callback's JSON; index lists endpoints") {
  ServerThread st(io::BackendKind::kAuto, [&](HttpServer& s) {
    AddConfigDumpHandler(s, [] { return std::string(R"({"workloads":[]})"); });
    AddQuitHandler(s, [] {});
    AddIndexHandler(s);
  });
  auto dump = Call(st.port(), "GET", "/config_dump");
  CHECK(dump.status == 200);
  CHECK(dump.Header("content-type") == "application/json");
  CHECK(dump.body == R"({"workloads":[]})");
  CHECK(Call(st.port(), "POST", "/config_dump").status == 405);

  auto index = Call(st.port(), "GET", "/");
  CHECK(index.status == 200);
  CHECK(index.Header("content-type") == "text/html; charset=utf-8");
  CHECK(index.body.find("<a href=\"/config_dump\">/config_dump</a>") != std::string::npos);
  CHECK(index.body.find("<a href=\"/quitquitquit\">/quitquitquit</a>") != std::string::npos);
}
