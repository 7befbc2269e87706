// common/http1 Parser: event sequences, exact consumption, framing, limits,
// smuggling shapes, byte-at-a-time equivalence.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/http1/codec.h"

using namespace ambit::http1;
using Event = Parser::Event;

namespace {

// Runs the parser over `in` in pieces of `chunk` bytes (0 = all at once) and
// records the events; body bytes are concatenated into *body.
std::vector<Event> Drive(Parser& p, std::string_view in, size_t chunk, std::string* body,
                         bool finish = false) {
  std::vector<Event> ev;
  std::string pending;
  size_t off = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    size_t take = chunk == 0 ? in.size() - off : std::min(chunk, in.size() - off);
    pending.append(in.substr(off, take));
    off += take;
    Parser::Result r = p.Next(pending);
    if (r.event == Event::kBody && body) {
      body->append(reinterpret_cast<const char*>(r.body.data()), r.body.size());
    }
    pending.erase(0, r.consumed);
    if (r.event != Event::kNeedMore) ev.push_back(r.event);
    if (r.event == Event::kError || r.event == Event::kUpgrade) break;
    if (r.event == Event::kNeedMore && off == in.size() && pending.empty()) break;
    if (r.event == Event::kNeedMore && off == in.size() && r.consumed == 0) break;
  }
  if (finish) {
    Parser::Result r = p.Finish();
    if (r.event != Event::kNeedMore) ev.push_back(r.event);
  }
  return ev;
}

}  // namespace

TEST_CASE("GET then a POST with a body, pipelined; any chunking gives the same events") {
  const std::string in =
      "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A:  1 \r\n\r\n"
      "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t chunk : {0, 1, 2, 7, 64}) {
    Parser p(Kind::kRequest);
    std::string body;
    auto ev = Drive(p, in, chunk, &body);
    std::vector<Event> want = {Event::kHead, Event::kComplete, Event::kHead};
    REQUIRE(ev.size() >= 4);
    CHECK(ev[0] == Event::kHead);
    CHECK(ev[1] == Event::kComplete);
    CHECK(ev[2] == Event::kHead);
    CHECK(ev.back() == Event::kComplete);
    CHECK(body == "hello");
  }
}

TEST_CASE("the kComplete of a bodyless request comes with empty input right after kHead") {
  Parser p(Kind::kRequest);
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  auto r = p.Next(in);
  CHECK(r.event == Event::kHead);
  CHECK(r.consumed == in.size());
  CHECK(p.request().method == "GET");
  CHECK(p.request().target == "/");
  CHECK(p.request().keep_alive);
  CHECK(p.request().framing == Framing::kNone);
  CHECK(*FindHeader(p.request().headers, "HOST") == "x");
  r = p.Next(std::string_view());
  CHECK(r.event == Event::kComplete);
  CHECK_FALSE(p.mid_message());
  CHECK(p.Next(std::string_view()).event == Event::kNeedMore);
  CHECK(p.Finish().event == Event::kNeedMore);  // clean close between messages
}

TEST_CASE("chunked request with extensions and trailers") {
  Parser p(Kind::kRequest);
  std::string body;
  auto ev = Drive(p,
                  "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: yes\r\n\r\n",
                  3, &body);
  CHECK(body == "hello world");
  REQUIRE(ev.size() >= 3);
  CHECK(ev[ev.size() - 2] == Event::kTrailers);
  CHECK(ev.back() == Event::kComplete);
  Headers t = p.TakeTrailers();
  REQUIRE(t.size() == 1);
  CHECK(t[0].value == "yes");
}

TEST_CASE("smuggling shapes and bad framing are errors with the right status") {
  struct Case {
    const char* in;
    ParseError err;
    int status;
  } cases[] = {
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       ParseError::kBadTransferEncoding, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
       ParseError::kBadContentLength, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
       ParseError::kBadTransferEncoding, 400},
      {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", ParseError::kBadContentLength, 400},
      {"GET / HTTP/2.0\r\n\r\n", ParseError::kUnsupportedVersion, 505},
      {"G@T / HTTP/1.1\r\n\r\n", ParseError::kBadMethod, 400},
      {"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", ParseError::kMalformed, 400},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    Parser p(Kind::kRequest);
    auto ev = Drive(p, c.in, 0, nullptr);
    REQUIRE_FALSE(ev.empty());
    CHECK(ev.back() == Event::kError);
    CHECK(p.error() == c.err);
    CHECK(StatusForError(p.error()) == c.status);
    CHECK(p.Next(std::string_view("GET")).event == Event::kError);  // sticky
  }
}

TEST_CASE("obs-fold is replaced by a space (RFC 9112 §5.2), never forwarded as a fold") {
  Parser p(Kind::kRequest);
  CHECK(p.Next(std::string_view("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n")).event ==
        Event::kHead);
  CHECK(*FindHeader(p.request().headers, "x") == "a folded");
}

TEST_CASE("limits: head bytes and header count, at the boundary and one over") {
  Limits l{.max_head_bytes = 1024, .max_headers = 3};
  auto req = [](int headers, size_t value) {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < headers; ++i) s += "h" + std::to_string(i) + ": " + std::string(value, 'v') + "\r\n";
    return s + "\r\n";
  };
  {
    Parser p(Kind::kRequest, l);
    CHECK(Drive(p, req(3, 10), 0, nullptr).front() == Event::kHead);
  }
  {
    Parser p(Kind::kRequest, l);
    Drive(p, req(4, 10), 0, nullptr);
    CHECK(p.error() == ParseError::kTooManyHeaders);
    CHECK(StatusForError(p.error()) == 431);
  }
  {
    Parser p(Kind::kRequest, l);
    Drive(p, req(1, 2000), 5, nullptr);
    CHECK(p.error() == ParseError::kHeadTooLarge);
  }
}

TEST_CASE("responses: HEAD, 204, 304, until-close, 100 then final, 101 upgrade") {
  {
    Parser p(Kind::kResponse);
    p.SetRequestMethod("HEAD");
    auto ev = Drive(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0, nullptr);
    REQUIRE(ev.size() == 2);
    CHECK(ev[1] == Event::kComplete);
    CHECK(p.response().framing == Framing::kNone);
  }
  {
    Parser p(Kind::kResponse);
    CHECK(Drive(p, "HTTP/1.1 204 No Content\r\n\r\n", 0, nullptr).back() == Event::kComplete);
  }
  {
    Parser p(Kind::kResponse);
    std::string body;
    auto ev = Drive(p, "HTTP/1.0 200 OK\r\n\r\nabc", 0, &body, /*finish=*/true);
    CHECK(ev.back() == Event::kComplete);
    CHECK(body == "abc");
    CHECK(p.response().framing == Framing::kUntilClose);
    CHECK_FALSE(p.response().keep_alive);
  }
  {
    Parser p(Kind::kResponse);
    std::string body;
    auto ev = Drive(p,
                    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    0, &body);
    REQUIRE(ev.size() >= 4);
    CHECK(ev[0] == Event::kHead);
    CHECK(ev[1] == Event::kComplete);
    CHECK(ev[2] == Event::kHead);
    CHECK(p.response().status == 200);
    CHECK(body == "ok");
  }
  {
    Parser p(Kind::kResponse);
    std::string in = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n\r\n\x81\x05hello";
    auto r = p.Next(in);
    CHECK(r.event == Event::kHead);
    CHECK(p.response().upgrade);
    auto u = p.Next(std::string_view(in).substr(r.consumed));
    CHECK(u.event == Event::kUpgrade);
    CHECK(r.consumed + u.consumed == in.size() - 7);  // the frame bytes stay
  }
  {
    Parser p(Kind::kResponse);
    Drive(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, nullptr);
    CHECK(p.Finish().event == Event::kError);
    CHECK(p.error() == ParseError::kPrematureEof);
  }
}

TEST_CASE("WebSocket request: head, then upgrade; keep_alive and expect flags") {
  Parser p(Kind::kRequest);
  std::string in = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nXY";
  auto r = p.Next(in);
  CHECK(r.event == Event::kHead);
  CHECK(p.request().upgrade);
  auto u = p.Next(std::string_view(in).substr(r.consumed));
  CHECK(u.event == Event::kUpgrade);
  CHECK(r.consumed + u.consumed == in.size() - 2);
  Parser q(Kind::kRequest);
  q.Next(std::string_view("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"));
  CHECK(q.request().expect_continue);
  CHECK_FALSE(q.request().keep_alive);
  CHECK(q.request().version_minor == 0);
}

TEST_CASE("serializers round-trip through the parser; header helpers") {
  std::string out;
  AppendRequestHead(out, "POST", "/x", {{"Host", "h"}, {"Transfer-Encoding", "chunked"}});
  std::string data = "abc";
  AppendChunk(out, std::as_bytes(std::span(data.data(), data.size())));
  AppendLastChunk(out, {{"x-t", "1"}});
  Parser p(Kind::kRequest);
  std::string body;
  auto ev = Drive(p, out, 0, &body);
  CHECK(ev.back() == Event::kComplete);
  CHECK(body == "abc");
  std::string resp;
  AppendResponseHead(resp, 404, "", {{"content-length", "0"}});
  CHECK(resp == "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
  Headers h = {{"Connection", "keep-alive, Upgrade"}, {"A", "1"}, {"a", "2"}};
  CHECK(HeaderHasToken(h, "connection", "upgrade"));
  CHECK_FALSE(HeaderHasToken(h, "connection", "close"));
  SetHeader(h, "A", "3");
  CHECK(h.size() == 2);
  CHECK(*FindHeader(h, "a") == "3");
  CHECK(RemoveHeader(h, "CONNECTION") == 1);
  CHECK(IsValidHeaderName("x-ok"));
  CHECK_FALSE(IsValidHeaderName("bad name"));
  CHECK_FALSE(IsValidHeaderValue("a\r\nb"));
  CHECK(ReasonPhrase(503) == "Service Unavailable");
}
