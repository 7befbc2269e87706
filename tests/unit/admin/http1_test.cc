#include <doctest/doctest.h>

#include "common/admin/http1.h"

using namespace ambit::admin;

TEST_CASE("parses pipelined requests split at any byte") {
  std::string wire =
      "GET /config_dump HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
      "POST /logging?level=access%3Adebug&reset HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t split = 1; split < wire.size(); split += 7) {
    Http1RequestParser parser;
    REQUIRE(parser.Feed(std::string_view(wire).substr(0, split)).ok());
    REQUIRE(parser.Feed(std::string_view(wire).substr(split)).ok());
    REQUIRE(parser.HasRequest());
    HttpRequest a = parser.TakeRequest();
    CHECK(a.method == "GET");
    CHECK(a.path == "/config_dump");
    CHECK(a.Header("accept") == "application/json");
    REQUIRE(parser.HasRequest());
    HttpRequest b = parser.TakeRequest();
    CHECK(b.method == "POST");
    CHECK(b.path == "/logging");
    CHECK(b.QueryParam("level") == "access:debug");
    CHECK(b.HasQueryParam("reset"));
    CHECK_FALSE(b.HasQueryParam("nope"));
    CHECK(b.body == "abc");
    CHECK_FALSE(parser.HasRequest());
  }
}

TEST_CASE("malformed and oversized requests are errors") {
  Http1RequestParser bad;
  CHECK_FALSE(bad.Feed("GARBAGE\r\n\r\n").ok());
  Http1RequestParser big;
  std::string head = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  auto st = big.Feed(head);
  CHECK(st.code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("response formatting") {
  HttpResponse r;
  r.status = 405;
  r.body = "method not allowed";
  std::string out = FormatResponse(r, false);
  CHECK(out == "HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain; charset=utf-8\r\n"
               "content-length: 18\r\nconnection: close\r\n\r\nmethod not allowed");
}
