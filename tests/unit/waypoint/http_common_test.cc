// Hop-by-hop rules, the headers a proxy adds, local replies.
#include <doctest/doctest.h>

#include "waypoint/proxy/http_common.h"

using namespace ambit;
using namespace ambit::waypoint;

TEST_CASE("hop-by-hop headers and those Connection names are not forwarded") {
  http1::Headers h = {{"Host", "echo"},          {"Connection", "keep-alive, X-Secret"},
                      {"Keep-Alive", "timeout=5"}, {"x-secret", "1"},
                      {"Transfer-Encoding", "chunked"}, {"TE", "trailers"},
                      {"Upgrade", "websocket"},    {"x-kept", "yes"}};
  StripHopByHop(h);
  REQUIRE(h.size() == 2);
  CHECK(h[0].name == "Host");
  CHECK(h[1].name == "x-kept");
}

TEST_CASE("x-request-id kept when valid, else generated; XFF appended; proto set once") {
  http1::Headers h = {{"X-Request-Id", "abc-123"}, {"X-Forwarded-For", "1.2.3.4"},
                      {"x-request-id", "second"}};
  CHECK(AddProxyHeaders(h, "10.0.0.1") == "abc-123");
  REQUIRE(h.size() == 3);
  CHECK(h[0].value == "1.2.3.4, 10.0.0.1");
  CHECK(h[1].name == "x-request-id");  // exactly one, the client's first
  CHECK(h[1].value == "abc-123");
  CHECK(h[2].name == "x-forwarded-proto");
  http1::Headers bad = {{"x-request-id", "has space"}};
  std::string id = AddProxyHeaders(bad, "10.0.0.1");
  CHECK(id.size() == 36);
  CHECK(id[14] == '4');  // UUID v4
  CHECK(bad.size() == 3);
  CHECK(bad[0].value == id);
  CHECK(NewRequestId() != NewRequestId());
  http2::H2Headers h2 = {{":method", "GET"}};
  std::string id2 = AddProxyHeaders(h2, "");
  CHECK(h2.size() == 3);  // x-request-id, x-forwarded-proto; no XFF without a client IP
  CHECK(*http2::FindHeader(h2, "x-request-id") == id2);
}

TEST_CASE("local replies say what Envoy says and close when asked") {
  LocalReply r = NoHealthyUpstream();
  CHECK(r.status == 503);
  CHECK(r.flag == "UH");
  std::string bytes = SerializeLocalReply(r, true, "rid");
  CHECK(bytes.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(bytes.find("content-length: 19\r\n") != std::string::npos);
  CHECK(bytes.find("connection: close\r\n") != std::string::npos);
  CHECK(bytes.find("x-request-id: rid\r\n") != std::string::npos);
  CHECK(bytes.substr(bytes.size() - 19) == "no healthy upstream");
  CHECK(UpstreamConnectFailure(absl::UnavailableError("refused")).flag == "UF");
}
