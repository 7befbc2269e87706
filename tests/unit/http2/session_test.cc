// http2::Session over StreamTransport: h2c over a socketpair (FdStream), and
// h2c nested inside a stream of another session (the waypoint's shape: HTTP/2
// inside an HBONE tunnel). Requests with bodies and trailers both ways,
// trailers-only responses, refused streams with their typed reason.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/http2/session.h"
#include "common/http2/session_stream.h"
#include "common/http2/stream_transport.h"
#include "common/io/fd_stream.h"
#include "common/io/loop.h"

using namespace ambit;
using namespace std::chrono_literals;
using http2::H2Headers;
using http2::Session;
using http2::SessionStream;

namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

io::Task<StatusOr<std::string>> ReadAll(SessionStream& s) {
  std::string out;
  for (;;) {
    auto chunk = co_await s.Peek({.timeout = 5s});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) co_return out;
    out.append(reinterpret_cast<const char*>(chunk->data()), chunk->size());
    s.Consume(chunk->size());
  }
}

// Echo server: answers 200 with the request body, and trailers naming the
// request's own trailer count; "/trailers-only" answers headers with END_STREAM.
io::Task<void> Serve(std::unique_ptr<SessionStream> s, H2Headers req) {
  const std::string* path = http2::FindHeader(req, ":path");
  if (path != nullptr && *path == "/trailers-only") {
    (void)s->Respond(200, {{"grpc-status", "5"}}, /*end_stream=*/true);
    co_return;
  }
  auto body = co_await ReadAll(*s);
  if (!body.ok()) co_return;
  if (!s->Respond(200, {{"content-type", "text/plain"}}, false).ok()) co_return;
  if (!(co_await s->Write(Bytes(*body))).ok()) co_return;
  std::string n = std::to_string(s->trailers() ? s->trailers()->size() : 0);
  (void)s->SendTrailers({{"x-request-trailers", n}, {"grpc-status", "0"}});
  (void)co_await s->AwaitClosed({.timeout = 5s});
}

Session::StreamHandler EchoHandler(io::Loop& loop) {
  return [&loop](std::unique_ptr<SessionStream> s, const H2Headers& h) {
    loop.Spawn(Serve(std::move(s), h));
  };
}

H2Headers Request(std::string path) {
  return {{":method", "POST"}, {":scheme", "http"}, {":path", std::move(path)},
          {":authority", "echo"}};
}

struct Exchange {
  int status = 0;
  std::string body;
  H2Headers trailers;
  Status error;
};

io::Task<Exchange> PostWithTrailers(Session& client, std::string path, std::string body) {
  Exchange ex;
  auto s = client.OpenRequest(Request(std::move(path)), false);
  if (!s.ok()) co_return Exchange{0, {}, {}, s.status()};
  if (!body.empty()) (void)co_await (*s)->Write(Bytes(body));
  (void)(*s)->SendTrailers({{"x-checksum", "abc"}});
  auto h = co_await (*s)->AwaitHeaders({.timeout = 5s});
  if (!h.ok()) co_return Exchange{0, {}, {}, h.status()};
  ex.status = std::stoi(*http2::FindHeader(*h, ":status"));
  auto got = co_await ReadAll(**s);
  if (!got.ok()) ex.error = got.status();
  else ex.body = *got;
  if ((*s)->trailers()) ex.trailers = *(*s)->trailers();
  co_return ex;
}

std::pair<std::shared_ptr<Session>, std::shared_ptr<Session>> SocketPairSessions(io::Loop& loop) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  auto server = Session::Start(
      loop, http2::StreamTransport::Owning(std::make_unique<io::FdStream>(loop, sv[0])),
      http2::H2Role::kServer, {}, EchoHandler(loop));
  auto client = Session::Start(
      loop, http2::StreamTransport::Owning(std::make_unique<io::FdStream>(loop, sv[1])),
      http2::H2Role::kClient, {});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  return {*server, *client};
}

}  // namespace

TEST_CASE("h2c over a socket: body and trailers both ways, trailers-only responses") {
  auto loop = io::Loop::Create({.backend = io::BackendKind::kEpoll});
  REQUIRE(loop.ok());
  auto [server, client] = SocketPairSessions(**loop);
  std::string big(300 << 10, 'x');  // several DATA frames, flow control
  Exchange ex = (*loop)->BlockOn(PostWithTrailers(*client, "/echo", big));
  CHECK(ex.error.ok());
  CHECK(ex.status == 200);
  CHECK(ex.body == big);
  REQUIRE(ex.trailers.size() == 2);
  CHECK(ex.trailers[0] == http2::H2Header{"x-request-trailers", "1"});
  CHECK(ex.trailers[1] == http2::H2Header{"grpc-status", "0"});

  Exchange only = (*loop)->BlockOn(PostWithTrailers(*client, "/trailers-only", ""));
  CHECK(only.status == 200);
  CHECK(only.body.empty());

  client->Close(absl::OkStatus());
  server->Close(absl::OkStatus());
  (*loop)->RunUntil([&] { return (*loop)->live_tasks() == 0; }, 5s);
}

TEST_CASE("a draining server refuses new streams with a retryable reason") {
  auto loop = io::Loop::Create({.backend = io::BackendKind::kEpoll});
  REQUIRE(loop.ok());
  auto [server, client] = SocketPairSessions(**loop);
  Exchange first = (*loop)->BlockOn(PostWithTrailers(*client, "/echo", "one"));
  CHECK(first.body == "one");
  server->Drain();
  (*loop)->RunUntil([&] { return client->draining(); }, 5s);
  CHECK_FALSE(client->Usable(100));
  auto refused = client->OpenRequest(Request("/late"), true);
  REQUIRE_FALSE(refused.ok());
  // GOAWAY seen (refused) or the drained session already closed: both are
  // the reasons HbonePool::Connect retries on another connection.
  const auto why = base::ReasonOf(refused.status());
  CHECK((why == base::ErrorReason::kStreamRefused || why == base::ErrorReason::kConnClosed));
  client->Close(absl::OkStatus());
  (*loop)->RunUntil([&] { return (*loop)->live_tasks() == 0; }, 5s);
}

// The outer session plays HBONE (a CONNECT-like tunnel stream); an h2c
// session runs inside that one stream.
TEST_CASE("h2c nested in a stream of another session") {
  auto loop = io::Loop::Create({.backend = io::BackendKind::kEpoll});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  std::shared_ptr<Session> inner_server;
  auto outer_server = Session::Start(
      l, http2::StreamTransport::Owning(std::make_unique<io::FdStream>(l, sv[0])),
      http2::H2Role::kServer, {},
      [&](std::unique_ptr<SessionStream> tunnel, const H2Headers&) {
        (void)tunnel->Respond(200, {}, false);
        auto s = Session::Start(l, http2::StreamTransport::Owning(std::move(tunnel)),
                                http2::H2Role::kServer, {}, EchoHandler(l));
        if (s.ok()) inner_server = *s;
      });
  auto outer_client = Session::Start(
      l, http2::StreamTransport::Owning(std::make_unique<io::FdStream>(l, sv[1])),
      http2::H2Role::kClient, {});
  REQUIRE(outer_server.ok());
  REQUIRE(outer_client.ok());
  auto tunnel = (*outer_client)->OpenConnect("10.0.0.1:80", {});
  REQUIRE(tunnel.ok());
  auto resp = l.BlockOn((*tunnel)->AwaitHeaders({.timeout = 5s}));
  REQUIRE(resp.ok());
  auto inner = Session::Start(l, http2::StreamTransport::Owning(std::move(*tunnel)),
                              http2::H2Role::kClient, {});
  REQUIRE(inner.ok());
  for (int i = 0; i < 20; ++i) {
    std::string body = "request-" + std::to_string(i);
    Exchange ex = l.BlockOn(PostWithTrailers(**inner, "/echo", body));
    CHECK(ex.status == 200);
    CHECK(ex.body == body);
    CHECK(ex.trailers.size() == 2);
  }
  (*inner)->Close(absl::OkStatus());
  (*outer_client)->Close(absl::OkStatus());
  (*outer_server)->Close(absl::OkStatus());
  if (inner_server) inner_server->Close(absl::OkStatus());
  l.RunUntil([&] { return l.live_tasks() == 0; }, 5s);
}
