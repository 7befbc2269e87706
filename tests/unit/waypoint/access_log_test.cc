// Envoy access-log formats at the waypoint (route/access_log_format.h,
// proxy/access_log.h): operator parsing, Istio's default TEXT line and JSON
// labels rendered from a request, JSON escaping, and the file writer.
#include <doctest/doctest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>

#include "waypoint/proxy/access_log.h"
#include "waypoint/route/access_log_format.h"

namespace ambit::waypoint {
namespace {

using route::LogOp;

// 2026-12-08T02:04:05.123Z
constexpr int64_t kStartMs = 1796695445123;

struct Req {
  RequestInfo info;
  base::MonoTime now;
  Req() {
    info.start = base::MonoTime(std::chrono::seconds(100));
    now = info.start + std::chrono::milliseconds(42);
    info.method = "GET";
    info.path = "/api/v1/users?limit=2";
    info.protocol = "HTTP/1.1";
    info.authority = "echo.demo.svc.cluster.local";
    info.user_agent = "curl/8.0";
    info.request_id = "3f2c-aa";
    info.response_code = 503;
    info.response_flags = "UF,URX";
    info.details = "upstream connect error";
    info.bytes_received = 12;
    info.bytes_sent = 91;
    info.upstream_host = "10.0.0.1:8080";
    info.upstream_cluster = "inbound-vip|80|http|echo.demo.svc.cluster.local";
    info.route_name = "demo/echo-route";
    info.downstream_remote = *net::SocketAddress::Parse("10.0.0.5:41000");
    info.downstream_local = *net::SocketAddress::Parse("10.96.0.1:80");
    info.attempts = 3;
    info.log_headers = {{"x-forwarded-for", "192.0.2.1"}, {"x-user", "al\"ice"}};
  }
  std::string Render(const route::AccessLogFormat& f) const {
    return RenderAccessLog(f, info, now, kStartMs);
  }
};

route::AccessLogFormat Text(std::string_view s, std::vector<std::string>* unknown = nullptr) {
  route::AccessLogFormat f;
  f.text = route::ParseLogFormat(s, unknown);
  return f;
}

TEST_CASE("access log: Istio's default TEXT line from a request") {
  Req r;
  CHECK(r.Render(route::DefaultTextFormat()) ==
        "[2026-12-08T02:04:05.123Z] \"GET /api/v1/users?limit=2 HTTP/1.1\" 503 UF,URX "
        "upstream_connect_error - \"-\" 12 91 42 - \"192.0.2.1\" \"curl/8.0\" \"3f2c-aa\" "
        "\"echo.demo.svc.cluster.local\" \"10.0.0.1:8080\" "
        "inbound-vip|80|http|echo.demo.svc.cluster.local - 10.96.0.1:80 10.0.0.5:41000 - "
        "demo/echo-route\n");
}

TEST_CASE("access log: Istio's default JSON labels, typed values, null for unset") {
  Req r;
  r.info.details.clear();  // proxied response → via_upstream
  r.info.response_code = 200;
  r.info.response_flags = "-";
  const std::string line = r.Render(route::DefaultJsonFormat());
  REQUIRE(line.ends_with("}\n"));
  const auto j = nlohmann::json::parse(line);
  const std::vector<std::string> keys = {
      "start_time", "route_name", "method", "path", "protocol", "response_code",
      "response_flags", "response_code_details", "connection_termination_details",
      "bytes_received", "bytes_sent", "duration", "upstream_service_time", "x_forwarded_for",
      "user_agent", "request_id", "authority", "upstream_host", "upstream_cluster",
      "upstream_local_address", "downstream_local_address", "downstream_remote_address",
      "requested_server_name", "upstream_transport_failure_reason"};
  CHECK(j.size() == keys.size());
  for (const auto& k : keys) CHECK_MESSAGE(j.contains(k), k);
  CHECK(j["start_time"] == "2026-12-08T02:04:05.123Z");
  CHECK(j["method"] == "GET");
  CHECK(j["path"] == "/api/v1/users?limit=2");
  CHECK(j["response_code"] == 200);  // a number, as Envoy's typed JSON
  CHECK(j["bytes_received"] == 12);
  CHECK(j["bytes_sent"] == 91);
  CHECK(j["duration"] == 42);
  CHECK(j["response_flags"] == "-");
  CHECK(j["response_code_details"] == "via_upstream");
  CHECK(j["upstream_service_time"].is_null());
  CHECK(j["upstream_local_address"].is_null());
  CHECK(j["x_forwarded_for"] == "192.0.2.1");
  CHECK(j["request_id"] == "3f2c-aa");
  CHECK(j["upstream_cluster"] == "inbound-vip|80|http|echo.demo.svc.cluster.local");
  CHECK(j["downstream_remote_address"] == "10.0.0.5:41000");
  CHECK(j["route_name"] == "demo/echo-route");
}

TEST_CASE("access log: operators with arguments, fallbacks, truncation, literals") {
  Req r;
  std::vector<std::string> unknown;
  auto f = Text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):8% %REQ(x-user)% %REQ(x-none)% "
                "%REQ_WITHOUT_QUERY(:PATH)% 100% %UPSTREAM_REQUEST_ATTEMPT_COUNT% "
                "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% "
                "%START_TIME(%Y/%m/%d %H:%M:%S.%3f)% %START_TIME(%s)% %FILTER_STATE(x)% "
                "%NOT_AN_OPERATOR% %RESP(x-envoy-upstream-service-time)%",
                &unknown);
  CHECK(r.Render(f) ==
        "/api/v1/ al\"ice - /api/v1/users 100% 3 10.0.0.5 80 2026/12/08 02:04:05.123 "
        "1796695445 - - -\n");
  CHECK(unknown == std::vector<std::string>{"%FILTER_STATE(x)%", "%NOT_AN_OPERATOR%"});
  // Lone and unterminated percent signs stay text.
  CHECK(r.Render(Text("50% of %REQ(:METHOD")) == "50% of %REQ(:METHOD\n");
  CHECK(r.Render(Text("%%")) == "%%\n");
}

TEST_CASE("access log: the headers a format reads are collected for capture") {
  std::vector<std::string> req, resp;
  route::CollectHeaders(route::DefaultTextFormat(), &req, &resp);
  // (user-agent and x-request-id are kept by every request anyway)
  CHECK(req == std::vector<std::string>{"x-envoy-original-path", "x-forwarded-for"});
  CHECK(resp == std::vector<std::string>{"x-envoy-upstream-service-time"});
}

TEST_CASE("access log: JSON escaping") {
  std::string out;
  AppendJsonString(out, "a\"b\\c\nd\te\x01\x7f");
  CHECK(out == R"("a\"b\\c\nd\te\u0001\u007f")");
  out.clear();
  AppendJsonString(out, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");  // valid UTF-8 kept
  CHECK(out == "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  out.clear();
  AppendJsonString(out, "bad\xff\xc3(\xe2\x82 \xed\xa0\x80 \xc0\xaf");  // invalid → U+FFFD
  CHECK(out == R"("bad\ufffd\ufffd(\ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd")");
  CHECK(nlohmann::json::parse(out).is_string());
  // A header value with quotes and control bytes still yields one JSON line.
  Req r;
  r.info.user_agent = "evil\"}\n{\"x\":1";
  const std::string line = r.Render(route::DefaultJsonFormat());
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(nlohmann::json::parse(line)["user_agent"] == "evil\"}\n{\"x\":1");
}

TEST_CASE("access log: custom JSON labels mix text and operators") {
  Req r;
  route::AccessLogFormat f;
  f.json = true;
  f.labels.emplace_back("code", route::ParseLogFormat("%RESPONSE_CODE%", nullptr));
  f.labels.emplace_back("summary", route::ParseLogFormat("%REQ(:METHOD)% -> %RESPONSE_CODE%",
                                                         nullptr));
  f.raw_labels.emplace_back("static", "7");
  const auto j = nlohmann::json::parse(r.Render(f));
  CHECK(j["code"] == 503);
  CHECK(j["summary"] == "GET -> 503");
  CHECK(j["static"] == 7);
}

TEST_CASE("access log: request attributes for filters") {
  Req r;
  RequestAttributes a(r.info);
  using route::cel::Attr;
  CHECK(a.Get(Attr::kResponseCode, "").AsTag() == "503");
  CHECK(a.Get(Attr::kRequestUrlPath, "").AsTag() == "/api/v1/users");
  CHECK(a.Get(Attr::kRequestHeader, "x-user").AsTag() == "al\"ice");
  CHECK(a.Get(Attr::kRequestHeader, "user-agent").AsTag() == "curl/8.0");
  CHECK(a.Get(Attr::kRequestHeader, "x-none").is_error());
  CHECK(a.Get(Attr::kUpstreamPort, "").AsTag() == "8080");
  CHECK(a.Get(Attr::kUpstreamAddress, "").AsTag() == "10.0.0.1");
  auto e = route::cel::Expr::Parse("response.code >= 400 && request.headers['x-user'] != ''");
  REQUIRE(e.ok());
  CHECK(e->Matches(a));
}

TEST_CASE("RequestMetrics: filtered lines, overrides (disabled, REMOVE, UPSERT), counters") {
  char dir[] = "/tmp/ambit-accesslog-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/errors.log";
  auto cfg = std::make_shared<route::ObservabilityConfig>();
  auto provider = std::make_shared<route::AccessLogProvider>();
  provider->name = "errors";
  provider->path = path;
  provider->format = route::DefaultJsonFormat();
  auto filter = route::cel::Expr::Parse("response.code >= 400");
  REQUIRE(filter.ok());
  cfg->waypoint_log.configured = true;
  cfg->waypoint_log.sinks.push_back(
      {provider, std::make_shared<const route::cel::Expr>(std::move(*filter))});
  cfg->waypoint_metrics.disabled[static_cast<size_t>(route::Metric::kRequestCount)] = true;
  auto host = route::cel::Expr::Parse("request.headers['x-user']");
  REQUIRE(host.ok());
  auto& tags = cfg->waypoint_metrics.tags[static_cast<size_t>(route::Metric::kResponseSize)];
  tags.push_back({"request_protocol", true, nullptr});
  tags.push_back({"destination_service_name", false,
                  std::make_shared<const route::cel::Expr>(std::move(*host))});
  metrics::Registry registry(1);
  {
    RequestMetrics m(registry);
    Req r;
    r.info.observability = cfg.get();
    for (int code : {200, 503, 404, 200}) {
      r.info.response_code = code;
      m.Record(0, r.info, r.now);
    }
    const std::string text = registry.Render();
    CHECK(text.find("istio_requests_total{") == std::string::npos);  // REQUEST_COUNT disabled
    CHECK(text.find("istio_request_bytes_count{reporter=\"waypoint\"") != std::string::npos);
    const size_t at = text.find("istio_response_bytes_count{");
    REQUIRE(at != std::string::npos);
    const std::string line = text.substr(at, text.find('\n', at) - at);
    CHECK(line.find("request_protocol") == std::string::npos);  // removed
    CHECK(line.find("destination_service_name=\"al\\\"ice\"") != std::string::npos);
    CHECK(text.find("ambit_waypoint_access_log_lines_filtered_total 2") != std::string::npos);
  }  // the writer drains on destruction
  std::ifstream in(path);
  std::vector<int> codes;
  for (std::string l; std::getline(in, l);) codes.push_back(nlohmann::json::parse(l)["response_code"]);
  CHECK(codes == std::vector<int>{503, 404});
  std::remove(path.c_str());
  rmdir(dir);
}

TEST_CASE("access log files: written in order, counted; unwritable paths dropped") {
  char dir[] = "/tmp/ambit-accesslog-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/access.log";
  {
    AccessLogFiles files;
    for (int i = 0; i < 100; ++i) files.Write(path, "line " + std::to_string(i) + "\n");
    files.Write(std::string(dir) + "/no/such/dir/x.log", "lost\n");
    files.Flush(2000);
    CHECK(files.written() == 100);
    CHECK(files.dropped() == 1);
  }
  std::ifstream in(path);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) {
    CHECK(l == "line " + std::to_string(n));
    ++n;
  }
  CHECK(n == 100);
  {
    AccessLogFiles small(64);  // a full queue drops instead of blocking
    for (int i = 0; i < 1000; ++i) small.Write(path, std::string(40, 'x') + "\n");
    small.Flush(2000);
    CHECK(small.dropped() > 0);
    CHECK(small.written() + small.dropped() == 1000);
  }
  std::remove(path.c_str());
  rmdir(dir);
}


TEST_CASE("access log: default START_TIME, cached per second, exact to the millisecond") {
  CHECK(FormatStartTime(1'700'000'000'123, "") == "2023-11-14T22:13:20.123Z");
  CHECK(FormatStartTime(1'700'000'000'007, "") == "2023-11-14T22:13:20.007Z");  // same second
  CHECK(FormatStartTime(1'700'000'001'450, "") == "2023-11-14T22:13:21.450Z");  // next one
  CHECK(FormatStartTime(0, "") == "1970-01-01T00:00:00.000Z");
  CHECK(FormatStartTime(1'700'000'000'123, "%Y/%m/%d %3f") == "2023/11/14 123");
}

}  // namespace
}  // namespace ambit::waypoint
