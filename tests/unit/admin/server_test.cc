#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/admin/client.h"
#include "common/admin/server.h"
#include "common/io/test_loop.h"
#include "tests/unit/admin/admin_test_util.h"

using namespace ambit;
using namespace ambit::admin;
using namespace ambit::admin::testing;
using namespace std::chrono_literals;

namespace {

void Routes(HttpServer& s) {
  s.Handle("/ping", [](const HttpRequest&) {
    HttpResponse r;
    r.body = "pong";
    return r;
  });
  s.Handle("/echo", {"POST", "PUT"}, [](const HttpRequest& req) {
    HttpResponse r;
    r.body = req.method + " " + req.target + " " + req.body;
    return r;
  });
}

StatusOr<ClientResponse> Get(uint16_t port, std::string target, std::string method = "GET",
                             std::string body = "") {
  ClientRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.body = std::move(body);
  return Fetch(HttpUrl{.host = "127.0.0.1", .port = port}, req);
}

}  // namespace

TEST_CASE("routes GET/POST, 404, 405 with allow header") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  auto ping = Get(st.port(), "/ping");
  REQUIRE_MESSAGE(ping.ok(), ping.status().ToString());
  CHECK(ping->status == 200);
  CHECK(ping->body == "pong");
  CHECK(ping->Header("content-type") == "text/plain; charset=utf-8");

  auto echo = Get(st.port(), "/echo?x=1", "POST", "hello");
  REQUIRE(echo.ok());
  CHECK(echo->status == 200);
  CHECK(echo->body == "POST /echo?x=1 hello");

  auto missing = Get(st.port(), "/nope");
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body == "not found: /nope (see / for the endpoints)\n");

  auto wrong = Get(st.port(), "/echo");
  REQUIRE(wrong.ok());
  CHECK(wrong->status == 405);
  CHECK(wrong->Header("allow") == "POST, PUT");
  CHECK(wrong->body == "method GET not allowed on /echo: use POST, PUT\n");

  REQUIRE(st.Stop());
  CHECK(st.stats().requests.at("/ping") == 1);
  CHECK(st.stats().requests.at("/echo") == 2);
  CHECK(st.stats().requests.at("unknown") == 1);
  CHECK(st.stats().not_found == 1);
  CHECK(st.stats().method_not_allowed == 1);
  CHECK(st.left_tasks() == 0);
  CHECK(st.left_ops() == 0);
}

TEST_CASE("malformed request gets 400 and close; oversized gets 413") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  {
    RawClient c(st.port());
    c.Send("GET /ping HTTP/1.1\r\n\r\nBLAH /x\r\n\r\n");
    auto first = c.ReadResponse();
    REQUIRE(first.has_value());
    CHECK(first->starts_with("HTTP/1.1 200 OK\r\n"));
    auto second = c.ReadResponse();
    REQUIRE(second.has_value());
    CHECK(second->starts_with("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(second->find("connection: close\r\n") != std::string::npos);
    CHECK(second->find("malformed HTTP/1.1 request") != std::string::npos);
    CHECK(c.WaitClosed());
  }
  {
    RawClient c(st.port());
    c.Send("GET /ping HTTP/1.1\r\nx: " + std::string(20000, 'a') + "\r\n\r\n");
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    CHECK(r->starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    CHECK(c.WaitClosed());
  }
  REQUIRE(st.Stop());
  CHECK(st.stats().bad_requests == 2);
}

TEST_CASE("pipelined requests are answered in order; HTTP/1.0 closes") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  RawClient c(st.port());
  std::string burst;
  for (int i = 0; i < 50; ++i) {
    burst += "POST /echo?i=" + std::to_string(i) + " HTTP/1.1\r\ncontent-length: 1\r\n\r\nx";
  }
  burst += "GET /ping HTTP/1.0\r\n\r\n";
  c.Send(burst);
  for (int i = 0; i < 50; ++i) {
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    const std::string want = "POST /echo?i=" + std::to_string(i) + " x";
    CHECK(r->ends_with("\r\n\r\n" + want));
  }
  auto last = c.ReadResponse();
  REQUIRE(last.has_value());
  CHECK(last->find("connection: close\r\n") != std::string::npos);
  CHECK(last->ends_with("pong"));
  CHECK(c.WaitClosed());
}

TEST_CASE("1000 sequential requests on one keep-alive connection") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  RawClient c(st.port());
  for (int i = 0; i < 1000; ++i) {
    c.Send("GET /ping HTTP/1.1\r\nhost: x\r\n\r\n");
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    REQUIRE(r->ends_with("\r\n\r\npong"));
  }
  REQUIRE(st.Stop());
  CHECK(st.stats().requests.at("/ping") == 1000);
  CHECK(st.stats().accepted_connections == 1);
}

TEST_CASE("100 concurrent connections") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(std::make_unique<RawClient>(st.port()));
  for (auto& c : clients) c->Send("GET /ping HTTP/1.1\r\n\r\n");
  for (auto& c : clients) {
    auto r = c->ReadResponse();
    REQUIRE(r.has_value());
    CHECK(r->ends_with("pong"));
  }
  CHECK(st.ActiveConnections() == 100);
  REQUIRE(st.Stop());
  CHECK(st.stats().accepted_connections == 100);
  CHECK(st.left_tasks() == 0);
  CHECK(st.left_ops() == 0);
  for (auto& c : clients) CHECK(c->WaitClosed());
}

TEST_CASE("Stop() with open, idle and half-sent connections") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, Routes);
  RawClient idle(st.port());
  RawClient partial(st.port());
  partial.Send("GET /ping HTTP/1.1\r\nhost:");
  RawClient served(st.port());
  served.Send("GET /ping HTTP/1.1\r\n\r\n");
  REQUIRE(served.ReadResponse().has_value());
  // Wait until the server holds all three.
  for (int i = 0; i < 500 && st.ActiveConnections() < 3; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(st.ActiveConnections() == 3);
  REQUIRE(st.Stop());
  CHECK(st.left_tasks() == 0);
  CHECK(st.left_ops() == 0);
  CHECK(idle.WaitClosed());
  CHECK(partial.WaitClosed());
  CHECK(served.WaitClosed());
}

TEST_CASE("Stop() while a response is blocked on a client that does not read") {
  ADMIN_FOR_EACH_BACKEND(kind);
  ServerThread st(kind, [](HttpServer& s) {
    s.Handle("/big", [](const HttpRequest&) {
      HttpResponse r;
      r.body = std::string(16 * 1024 * 1024, 'x');
      return r;
    });
  });
  RawClient c(st.port());
  c.Send("GET /big HTTP/1.1\r\n\r\n");
  REQUIRE(c.ReadMore());  // the response started; the rest stays stuck in socket buffers
  REQUIRE(st.Stop());
  CHECK(st.left_tasks() == 0);
  CHECK(st.left_ops() == 0);
}

TEST_CASE("connections over max_connections are closed at once") {
  ADMIN_FOR_EACH_BACKEND(kind);
  io::TestLoop t(kind);
  auto server = HttpServer::Create(
      t.loop(), {.address = *net::SocketAddress::Parse("127.0.0.1:0"), .max_connections = 2});
  REQUIRE(server.ok());
  Routes(**server);
  (*server)->Start();
  RawClient a((*server)->port()), b((*server)->port()), c((*server)->port());
  REQUIRE(t.RunUntil([&] { return (*server)->stats().rejected_connections == 1; }));
  CHECK((*server)->active_connections() == 2);
  CHECK(c.WaitClosed());
  t.loop().BlockOn((*server)->Stop());
  CHECK(t.loop().live_tasks() == 0);
}

TEST_CASE("idle connections are closed after the idle timeout (simulated time)") {
  ADMIN_FOR_EACH_BACKEND(kind);
  io::TestLoop t(kind);
  auto server = HttpServer::Create(t.loop(), {.address = *net::SocketAddress::Parse("127.0.0.1:0")});
  REQUIRE(server.ok());
  Routes(**server);
  (*server)->Start();
  RawClient c((*server)->port());
  REQUIRE(t.RunUntil([&] { return (*server)->active_connections() == 1; }));
  t.RunUntilIdle();  // the connection task started and waits in recv
  t.Advance(29s);
  CHECK((*server)->active_connections() == 1);
  t.Advance(2s);
  REQUIRE(t.RunUntil([&] { return (*server)->active_connections() == 0; }));
  CHECK(c.WaitClosed());
  CHECK((*server)->stats().idle_timeouts == 1);
  t.loop().BlockOn((*server)->Stop());
  CHECK(t.loop().live_tasks() == 0);
}

TEST_CASE("listens on IPv6 loopback and reports the bound port") {
  io::TestLoop t(io::BackendKind::kEpoll);
  auto server = HttpServer::Create(t.loop(), {.address = *net::SocketAddress::Parse("[::1]:0")});
  REQUIRE_MESSAGE(server.ok(), server.status().ToString());
  CHECK((*server)->port() != 0);
  CHECK((*server)->address().ToString() == "[::1]:" + std::to_string((*server)->port()));
  t.loop().BlockOn((*server)->Stop());  // never started: just closes the listener
}

TEST_CASE("client reports an unreachable server clearly") {
  // Bind a port and close it so nothing listens there.
  io::TestLoop t(io::BackendKind::kEpoll);
  auto server = HttpServer::Create(t.loop(), {.address = *net::SocketAddress::Parse("127.0.0.1:0")});
  REQUIRE(server.ok());
  uint16_t port = (*server)->port();
  t.loop().BlockOn((*server)->Stop());
  auto r = Get(port, "/");
  REQUIRE_FALSE(r.ok());
  CHECK(absl::IsUnavailable(r.status()));
  CHECK(r.status().message() ==
        "connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_CASE("URL parsing") {
  auto a = ParseHttpUrl("http://127.0.0.1:15000");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 15000);
  CHECK(a->ToString() == "http://127.0.0.1:15000");
  auto b = ParseHttpUrl("http://[::1]:9/base/");
  REQUIRE(b.ok());
  CHECK(b->host == "::1");
  CHECK(b->path == "/base");
  CHECK(b->ToString() == "http://[::1]:9/base");
  CHECK_FALSE(ParseHttpUrl("https://x:1").ok());
  CHECK_FALSE(ParseHttpUrl("http://x:99999").ok());
  CHECK_FALSE(ParseHttpUrl("http://:80").ok());
}
