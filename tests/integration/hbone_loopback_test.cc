// HBONE over loopback: our client pool and HboneConn against our server, with
// built-in-CA certificates, on both io backends. Bytes are checksummed; half
// closes are checked in both directions.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/hbone/conn.h"
#include "common/hbone/pool.h"
#include "common/hbone/relay.h"
#include "common/hbone/stream.h"
#include "common/identity/builtin_ca.h"
#include "common/io/loop.h"
#include "common/net/socket.h"
#include "common/tls/context.h"

using namespace ambit;
using namespace std::chrono_literals;

namespace {

#ifdef AMBIT_SANITIZED
constexpr size_t kTunnels = 200;
constexpr size_t kBytes = 64 << 10;
#else
constexpr size_t kTunnels = 1000;
constexpr size_t kBytes = 1 << 20;
#endif

struct Pki {
  std::shared_ptr<const tls::TlsContext> client;
  std::shared_ptr<const tls::TlsContext> server;
  identity::Identity server_id;
};

Pki MakePki() {
  auto ca = identity::BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto cid = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/client");
  auto sid = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/server");
  REQUIRE(cid.ok());
  REQUIRE(sid.ok());
  auto cb = ca->Issue(*cid);
  auto sb = ca->Issue(*sid);
  REQUIRE(cb.ok());
  REQUIRE(sb.ok());
  auto cctx = tls::MakeClientContext(*cb);
  auto sctx = tls::MakeServerContext(*sb);
  REQUIRE(cctx.ok());
  REQUIRE(sctx.ok());
  return {*cctx, *sctx, *sid};
}

uint8_t Pattern(size_t i, size_t seed) { return static_cast<uint8_t>((i * 131 + seed * 7) & 0xff); }

// Server side: answers 200 and echoes the stream back, half-closing after the
// client's END_STREAM.
io::Task<void> EchoStream(io::Loop& loop, std::unique_ptr<hbone::HboneStream> stream) {
  (void)loop;
  if (!hbone::RespondConnect(*stream, 200).ok()) co_return;
  for (;;) {
    auto chunk = co_await stream->Peek();
    if (!chunk.ok()) co_return;
    if (chunk->empty()) {
      stream->CloseWrite();
      break;
    }
    std::vector<std::byte> copy(chunk->begin(), chunk->end());
    stream->Consume(copy.size());
    if (!(co_await stream->Write(copy)).ok()) co_return;
  }
  // Keep the stream until our tail and END_STREAM went out.
  (void)co_await stream->AwaitClosed();
}

struct Server {
  net::Fd listener;
  uint16_t port = 0;
  io::CancelScope scope;
  int streams = 0;
};

io::Task<void> ServeConn(io::Loop& loop, int fd, std::shared_ptr<const tls::TlsContext> ctx,
                         Server* server) {
  hbone::ConnOptions opts;
  hbone::HboneConn::StreamHandler handler =
      [&loop, server](std::unique_ptr<hbone::HboneStream> s, const http2::H2Headers& h) {
        const std::string* auth = http2::FindHeader(h, ":authority");
        CHECK(auth != nullptr);
        ++server->streams;
        loop.Spawn(EchoStream(loop, std::move(s)));
      };
  auto conn = co_await hbone::Accept(loop, net::Fd(fd), ctx, opts, handler);
  if (!conn.ok()) MESSAGE("server handshake failed: " << conn.status().ToString());
}

io::Task<void> AcceptLoop(io::Loop& loop, Server* server, std::shared_ptr<const tls::TlsContext> ctx) {
  for (;;) {
    auto a = co_await loop.Accept(server->listener.get(), {.scope = &server->scope});
    if (!a.ok()) co_return;
    loop.Spawn(ServeConn(loop, a->fd, ctx, server));
  }
}

io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> Dial(io::Loop& loop, uint16_t port,
                                                            std::shared_ptr<const tls::TlsContext> ctx,
                                                            identity::Identity expected) {
  auto fd = net::CreateTcpClient({});
  if (!fd.ok()) co_return fd.status();
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa),
                                    {.timeout = 5s});
  if (!st.ok()) co_return st;
  // Named arguments: GCC 12 mishandles braced temporaries inside co_await.
  std::vector<identity::Identity> ids{expected};
  hbone::ConnOptions opts;
  auto conn = co_await hbone::Handshake(loop, std::move(*fd), ctx, std::move(ids), opts);
  co_return conn;
}

struct Outcome {
  int ok = 0;
  int failed = 0;
  std::string first_error;
};

io::Task<void> Writer(hbone::HboneStream& s, size_t seed) {
  std::vector<std::byte> buf(32 << 10);
  size_t sent = 0;
  while (sent < kBytes) {
    size_t n = std::min(buf.size(), kBytes - sent);
    for (size_t i = 0; i < n; ++i) buf[i] = std::byte{Pattern(sent + i, seed)};
    if (!(co_await s.Write(std::span<const std::byte>(buf.data(), n))).ok()) co_return;
    sent += n;
  }
  s.CloseWrite();
}

io::Task<bool> Reader(hbone::HboneStream& s, size_t seed) {
  size_t got = 0;
  bool intact = true;
  for (;;) {
    auto chunk = co_await s.Peek();
    if (!chunk.ok()) co_return false;
    if (chunk->empty()) break;
    for (size_t i = 0; i < chunk->size(); ++i) {
      if ((*chunk)[i] != std::byte{Pattern(got + i, seed)}) intact = false;
    }
    got += chunk->size();
    s.Consume(chunk->size());
  }
  co_return intact && got == kBytes;
}

io::Task<void> Tunnel(io::Loop& loop, hbone::HbonePool& pool, uint16_t port, Pki* pki,
                      size_t seed, Outcome* out) {
  hbone::PoolKey key{"spiffe://cluster.local/ns/demo/sa/client",
                     {pki->server_id.ToString()}, "127.0.0.1:" + std::to_string(port), "127.0.0.1"};
  hbone::HbonePool::DialFn dial = [&loop, port, pki]() {
    return Dial(loop, port, pki->client, pki->server_id);
  };
  auto conn = co_await pool.Checkout(key, dial);
  if (!conn.ok()) {
    ++out->failed;
    if (out->first_error.empty()) out->first_error = conn.status().ToString();
    co_return;
  }
  http2::H2Headers headers;
  auto stream = co_await hbone::OpenConnect(**conn, "127.0.0.1:8080", headers, 10s);
  if (!stream.ok()) {
    ++out->failed;
    if (out->first_error.empty()) out->first_error = stream.status().ToString();
    co_return;
  }
  auto [w, intact] = co_await io::WhenAll(Writer(**stream, seed), Reader(**stream, seed));
  (void)w;
  (void)co_await (*stream)->AwaitClosed();
  if (intact) ++out->ok;
  else ++out->failed;
}

void RunTunnels(io::BackendKind backend) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  Pki pki = MakePki();
  auto loop = io::Loop::Create({.backend = backend, .name = "hbone-test"});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  Server server;
  auto lst = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0"), .backlog = 1024});
  REQUIRE(lst.ok());
  server.listener = std::move(*lst);
  server.port = net::LocalAddress(server.listener.get())->port();
  l.Spawn(AcceptLoop(l, &server, pki.server));

  hbone::HbonePool pool(l, {.max_streams_per_conn = 100});
  Outcome out;
  for (size_t i = 0; i < kTunnels; ++i) l.Spawn(Tunnel(l, pool, server.port, &pki, i, &out));
  bool done = l.RunUntil([&] { return out.ok + out.failed == static_cast<int>(kTunnels); }, 120s);
  CHECK(done);
  CHECK_MESSAGE(out.failed == 0, out.first_error);
  CHECK(out.ok == static_cast<int>(kTunnels));
  CHECK(server.streams == static_cast<int>(kTunnels));
  // ceil(tunnels / 100) connections or fewer.
  CHECK(pool.stats().dials <= (kTunnels + 99) / 100);
  MESSAGE("backend " << std::string(l.backend_name()) << ": " << out.ok << " tunnels, " << pool.stats().dials
                     << " HBONE connections");
  server.scope.Cancel();
  pool.Shutdown();
  l.RunUntil([&] { return l.live_tasks() == 0; }, 10s);
}

}  // namespace

TEST_CASE("HBONE tunnels through one pool, uring") { RunTunnels(io::BackendKind::kUring); }
TEST_CASE("HBONE tunnels through one pool, epoll") { RunTunnels(io::BackendKind::kEpoll); }
