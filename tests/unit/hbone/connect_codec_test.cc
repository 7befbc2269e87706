#include <doctest/doctest.h>

#include <string>

#include "common/hbone/connect_codec.h"
#include "tests/unit/http2/h2_pair.h"

namespace ambit::hbone {
namespace {

using http2::FindHeader;
using http2::H2Headers;

OutboundConnect SampleRequest() {
  OutboundConnect req;
  req.target = *ParseAuthority("10.244.1.7:9080");
  req.source = Baggage{.cluster_id = "c1", .namespace_name = "default",
                       .workload_type = "deployment", .workload_name = "sleep",
                       .service_name = "sleep", .service_version = "v1"};
  req.client_ip = "10.244.0.5";
  req.client_port = 41234;
  req.service_host = "reviews.default.svc.cluster.local";
  req.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  return req;
}

TEST_CASE("client CONNECT request headers") {
  auto h = BuildConnectRequest(SampleRequest());
  REQUIRE(h.ok());
  H2Headers expected = {
      {":method", "CONNECT"},
      {":authority", "10.244.1.7:9080"},
      {"baggage",
       "k8s.cluster.name=c1,k8s.namespace.name=default,k8s.deployment.name=sleep,"
       "service.name=sleep,service.version=v1"},
      {"forwarded", "for=\"10.244.0.5:41234\";host=reviews.default.svc.cluster.local"},
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
  };
  CHECK(*h == expected);

  OutboundConnect minimal;
  minimal.target = *ParseAuthority("[fd00::7]:80");
  minimal.forwarded_network = "network-a";
  auto m = BuildConnectRequest(minimal);
  REQUIRE(m.ok());
  REQUIRE(m->size() == 4);
  CHECK((*m)[1].value == "[fd00::7]:80");
  CHECK((*m)[2].name == "traceparent");
  CHECK(IsValidTraceparent((*m)[2].value));
  CHECK((*m)[3] == http2::H2Header{"x-forwarded-network", "network-a"});

  OutboundConnect bad = minimal;
  bad.traceparent = "00-short";
  CHECK(BuildConnectRequest(bad).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(BuildConnectRequest(OutboundConnect{}).ok());
}

TEST_CASE("server parse: full request") {
  auto h = BuildConnectRequest(SampleRequest());
  REQUIRE(h.ok());
  h->push_back({"x-forwarded-network", "net2"});
  auto req = ParseConnectRequest(*h);
  REQUIRE(req.ok());
  CHECK(req->target.ToString() == "10.244.1.7:9080");
  CHECK(req->traceparent == SampleRequest().traceparent);
  CHECK_FALSE(req->traceparent_generated);
  CHECK(req->forwarded.for_value == "10.244.0.5:41234");
  CHECK(req->forwarded.host == "reviews.default.svc.cluster.local");
  REQUIRE(req->baggage.has_value());
  CHECK(*req->baggage == SampleRequest().source);
  CHECK(req->forwarded_network == "net2");
}

TEST_CASE("server parse: 400 cases and tolerated headers") {
  struct Case {
    H2Headers headers;
    const char* why;
  };
  const Case rejects[] = {
      {{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "a:1"}},
       "got \"GET\""},
      {{{":authority", "a:1"}}, "got none"},
      {{{":method", "CONNECT"}}, "without :authority"},
      {{{":method", "CONNECT"}, {":authority", "10.0.0.1"}}, "missing ':port'"},
      {{{":method", "CONNECT"}, {":authority", "bad_host:80"}}, "neither an IPv4"},
  };
  for (const Case& c : rejects) {
    CAPTURE(c.why);
    auto r = ParseConnectRequest(c.headers);
    REQUIRE_FALSE(r.ok());
    CHECK(HttpStatusFor(r.status()) == 400);
    CHECK(std::string(r.status().message()).find(c.why) != std::string::npos);
  }
  // Malformed optional headers never reject the tunnel.
  auto r = ParseConnectRequest({{":method", "CONNECT"},
                                {":authority", "svc.ns:80"},
                                {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa"},
                                {"forwarded", "for=\"broken"},
                                {"baggage", "garbage"}});
  REQUIRE(r.ok());
  CHECK(r->target.kind == Authority::Kind::kHostname);
  CHECK(r->traceparent_generated);
  CHECK(IsValidTraceparent(r->traceparent));
  CHECK_FALSE(r->forwarded.for_value.has_value());
  CHECK(r->baggage == Baggage{});
  CHECK_FALSE(r->forwarded_network.has_value());
}

TEST_CASE("status mapping") {
  CHECK(HttpStatusFor(absl::OkStatus()) == 200);
  CHECK(HttpStatusFor(absl::InvalidArgumentError("x")) == 400);
  CHECK(HttpStatusFor(absl::FailedPreconditionError("ip mismatch")) == 400);
  CHECK(HttpStatusFor(absl::PermissionDeniedError("deny")) == 401);
  CHECK(HttpStatusFor(absl::UnauthenticatedError("x")) == 401);
  CHECK(HttpStatusFor(absl::NotFoundError("no workload")) == 503);
  CHECK(HttpStatusFor(absl::UnavailableError("dial")) == 503);
  CHECK(HttpStatusFor(absl::DeadlineExceededError("t")) == 503);
  CHECK(HttpStatusFor(absl::InternalError("t")) == 503);

  Authority t = *ParseAuthority("10.0.0.1:80");
  CHECK(CheckConnectResponse({{":status", "200"}}, t).ok());
  Status s503 = CheckConnectResponse({{":status", "503"}}, t);
  CHECK(s503.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(s503.message()).find("10.0.0.1:80 failed with status 503") !=
        std::string::npos);
  Status s401 = CheckConnectResponse({{":status", "401"}}, t);
  CHECK(s401.code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(s401.message()).find("status 401") != std::string::npos);
  CHECK(std::string(CheckConnectResponse({{":status", "400"}}, t).message()).find("400") !=
        std::string::npos);
  CHECK(std::string(CheckConnectResponse({}, t).message()).find("status none") !=
        std::string::npos);
  CHECK_FALSE(CheckConnectResponse({{":status", "204"}}, t).ok());
}

TEST_CASE("RST_STREAM meaning for the relay") {
  CHECK(ClassifyReset(0x0) == ResetMeaning::kCleanEof);
  CHECK(ClassifyReset(0x8) == ResetMeaning::kCleanEof);
  CHECK(ClassifyReset(0x5) == ResetMeaning::kBrokenPipe);
  CHECK(ClassifyReset(0x1) == ResetMeaning::kError);
  CHECK(ClassifyReset(0xa) == ResetMeaning::kError);
}

TEST_CASE("response baggage for the destination") {
  Baggage dest{.namespace_name = "bookinfo", .workload_type = "pod", .workload_name = "r-1",
               .service_name = "reviews"};
  H2Headers h = BuildConnectResponseHeaders(dest);
  REQUIRE(h.size() == 1);
  CHECK(h[0].value == "k8s.namespace.name=bookinfo,k8s.pod.name=r-1,service.name=reviews");
  h.insert(h.begin(), {":status", "200"});
  CHECK(ResponseBaggage(h) == dest);
  CHECK(BuildConnectResponseHeaders(std::nullopt).empty());
  CHECK(BuildConnectResponseHeaders(Baggage{}).empty());
  CHECK_FALSE(ResponseBaggage({{":status", "200"}}).has_value());
}

TEST_CASE("CONNECT end to end over back-to-back H2Conns") {
  http2::testing::H2Pair p;
  OutboundConnect out = SampleRequest();
  auto extra = BuildConnectHeaders(out);
  REQUIRE(extra.ok());
  auto id = p.client->SubmitConnect(out.target.ToString(), *extra);
  REQUIRE(id.ok());
  REQUIRE(p.Pump().ok());
  auto req = ParseConnectRequest(p.server_events.headers[*id]);
  REQUIRE(req.ok());
  CHECK(req->target == out.target);
  CHECK(req->forwarded.host == out.service_host);
  Baggage dest{.namespace_name = "default", .service_name = "reviews"};
  REQUIRE(p.server->SubmitResponse(*id, 200, BuildConnectResponseHeaders(dest)).ok());
  REQUIRE(p.Pump().ok());
  CHECK(CheckConnectResponse(p.client_events.headers[*id], out.target).ok());
  CHECK(ResponseBaggage(p.client_events.headers[*id]) == dest);

  // A GET is answered 400 and the client reports the status.
  auto get = p.client->SubmitRequest(
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x:1"}}, true);
  REQUIRE(get.ok());
  REQUIRE(p.Pump().ok());
  auto bad = ParseConnectRequest(p.server_events.headers[*get]);
  REQUIRE_FALSE(bad.ok());
  REQUIRE(p.server->SubmitResponse(*get, HttpStatusFor(bad.status()), {}, true).ok());
  REQUIRE(p.Pump().ok());
  Status st = CheckConnectResponse(p.client_events.headers[*get], out.target);
  CHECK(std::string(st.message()).find("status 400") != std::string::npos);
  CHECK(p.client_events.ended.count(*get) == 1);
}

}  // namespace
}  // namespace ambit::hbone
