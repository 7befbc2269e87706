// HbonePool rules (ISTIO-COMPAT §1.4) against a loopback HBONE server with
// built-in-CA certificates, on both io backends:
//   - a connection without streams for idle_timeout is closed by the sweeper,
//     one with a stream is not; the next checkout dials again;
//   - a connection that received GOAWAY is never handed out again, while its
//     open stream still finishes;
//   - the stream limit is min(max_streams_per_conn, peer's
//     SETTINGS_MAX_CONCURRENT_STREAMS);
//   - keys that differ in a single field never share a connection.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/hbone/conn.h"
#include "common/hbone/pool.h"
#include "common/hbone/stream.h"
#include "common/identity/builtin_ca.h"
#include "common/io/loop.h"
#include "common/net/socket.h"
#include "common/tls/context.h"

using namespace ambit;
using namespace std::chrono_literals;

namespace {

constexpr size_t kEchoBytes = 64 << 10;

struct Pki {
  std::shared_ptr<const tls::TlsContext> client;
  std::shared_ptr<const tls::TlsContext> client_b;  // another source identity
  std::shared_ptr<const tls::TlsContext> server;
  identity::Identity client_id;
  identity::Identity client_b_id;
  identity::Identity server_id;
};

Pki MakePki() {
  auto ca = identity::BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto cid = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/client");
  auto bid = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/other-client");
  auto sid = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/server");
  REQUIRE((cid.ok() && bid.ok() && sid.ok()));
  auto cb = ca->Issue(*cid);
  auto bb = ca->Issue(*bid);
  auto sb = ca->Issue(*sid);
  REQUIRE((cb.ok() && bb.ok() && sb.ok()));
  auto cctx = tls::MakeClientContext(*cb);
  auto bctx = tls::MakeClientContext(*bb);
  auto sctx = tls::MakeServerContext(*sb);
  REQUIRE((cctx.ok() && bctx.ok() && sctx.ok()));
  return {*cctx, *bctx, *sctx, *cid, *bid, *sid};
}

uint8_t Pattern(size_t i, size_t seed) { return static_cast<uint8_t>((i * 131 + seed * 7) & 0xff); }

// ---- server ---------------------------------------------------------------

struct Server {
  net::Fd listener;
  uint16_t port = 0;
  io::CancelScope scope;
  hbone::ConnOptions opts;
  std::vector<std::shared_ptr<hbone::HboneConn>> conns;  // in accept order
  std::vector<std::string> peer_ids;                     // client identity per conn
  std::vector<std::string> peer_addrs;                   // client ip per conn
  int streams = 0;
};

io::Task<void> EchoStream(std::unique_ptr<hbone::HboneStream> stream) {
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
  (void)co_await stream->AwaitClosed();
}

io::Task<void> ServeConn(io::Loop& loop, int fd, std::shared_ptr<const tls::TlsContext> ctx,
                         Server* server) {
  hbone::HboneConn::StreamHandler handler = [&loop, server](std::unique_ptr<hbone::HboneStream> s,
                                                            const http2::H2Headers&) {
    ++server->streams;
    loop.Spawn(EchoStream(std::move(s)));
  };
  auto conn = co_await hbone::Accept(loop, net::Fd(fd), ctx, server->opts, handler);
  if (!conn.ok()) {
    MESSAGE("server handshake failed: " << conn.status().ToString());
    co_return;
  }
  const auto& id = (*conn)->peer_identity();
  server->peer_ids.push_back(id ? id->ToString() : std::string("(none)"));
  server->peer_addrs.push_back((*conn)->peer_address().ip().ToString());
  server->conns.push_back(*conn);
}

io::Task<void> AcceptLoop(io::Loop& loop, Server* server, std::shared_ptr<const tls::TlsContext> ctx) {
  for (;;) {
    auto a = co_await loop.Accept(server->listener.get(), {.scope = &server->scope});
    if (!a.ok()) co_return;
    loop.Spawn(ServeConn(loop, a->fd, ctx, server));
  }
}

// ---- client ---------------------------------------------------------------

struct Env {
  std::unique_ptr<io::Loop> loop;
  Pki pki;
  Server server;
  std::unique_ptr<hbone::HbonePool> pool;

  Env(io::BackendKind backend, hbone::PoolOptions pool_opts, uint32_t server_max_streams = 200)
      : pki(MakePki()) {
    auto l = io::Loop::Create({.backend = backend, .name = "pool-test"});
    REQUIRE(l.ok());
    loop = std::move(*l);
    auto lst = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0"), .backlog = 128});
    REQUIRE(lst.ok());
    server.listener = std::move(*lst);
    server.port = net::LocalAddress(server.listener.get())->port();
    server.opts.h2.max_concurrent_streams = server_max_streams;
    loop->Spawn(AcceptLoop(*loop, &server, pki.server));
    pool = std::make_unique<hbone::HbonePool>(*loop, pool_opts);
  }
  ~Env() {
    server.scope.Cancel();
    pool->Shutdown();
    for (auto& c : server.conns) c->Close(absl::CancelledError("test over"));
    server.conns.clear();
    loop->RunUntil([&] { return loop->live_tasks() == 0; }, 10s);
    pool.reset();
  }
  std::string name() const { return std::string(loop->backend_name()); }
};

// The dial a pool runs for `key`: TCP from key.source_ip, TLS with the
// client certificate of key.source_identity, the server verified against
// key.destination_identities.
io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> Dial(io::Loop& loop, uint16_t port,
                                                            std::shared_ptr<const tls::TlsContext> ctx,
                                                            std::vector<std::string> expected,
                                                            std::string source_ip) {
  auto source = net::SocketAddress::Parse(source_ip + ":0");
  if (!source.ok()) co_return source.status();
  auto fd = net::CreateTcpClient({.source = *source});
  if (!fd.ok()) co_return fd.status();
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len, {.timeout = 5s});
  if (!st.ok()) co_return st;
  std::vector<identity::Identity> ids;
  for (const auto& e : expected) {
    auto id = identity::Identity::Parse(e);
    if (!id.ok()) co_return id.status();
    ids.push_back(*id);
  }
  hbone::ConnOptions opts;
  auto conn = co_await hbone::Handshake(loop, std::move(*fd), ctx, std::move(ids), opts);
  co_return conn;
}

hbone::PoolKey BaseKey(const Env& env) {
  return {env.pki.client_id.ToString(),
          {env.pki.server_id.ToString()},
          "127.0.0.1:" + std::to_string(env.server.port),
          "127.0.0.1"};
}

io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> Checkout(Env* env, hbone::PoolKey key) {
  auto ctx = key.source_identity == env->pki.client_b_id.ToString() ? env->pki.client_b : env->pki.client;
  io::Loop* loop = env->loop.get();
  uint16_t port = env->server.port;
  std::vector<std::string> expected = key.destination_identities;
  std::string source_ip = key.source_ip;
  hbone::HbonePool::DialFn dial = [loop, port, ctx, expected, source_ip]() {
    return Dial(*loop, port, ctx, expected, source_ip);
  };
  auto conn = co_await env->pool->Checkout(std::move(key), dial);
  co_return conn;
}

struct Tunnel {
  std::shared_ptr<hbone::HboneConn> conn;
  std::unique_ptr<hbone::HboneStream> stream;
};

io::Task<StatusOr<Tunnel>> OpenTunnel(Env* env, hbone::PoolKey key) {
  auto conn = co_await Checkout(env, std::move(key));
  if (!conn.ok()) co_return conn.status();
  http2::H2Headers headers;
  auto stream = co_await hbone::OpenConnect(**conn, "127.0.0.1:8080", headers, 10s);
  if (!stream.ok()) co_return stream.status();
  co_return Tunnel{*conn, std::move(*stream)};
}

io::Task<Status> Writer(hbone::HboneStream& s, size_t seed) {
  std::vector<std::byte> buf(16 << 10);
  size_t sent = 0;
  while (sent < kEchoBytes) {
    size_t n = std::min(buf.size(), kEchoBytes - sent);
    for (size_t i = 0; i < n; ++i) buf[i] = std::byte{Pattern(sent + i, seed)};
    Status st = co_await s.Write(std::span<const std::byte>(buf.data(), n));
    if (!st.ok()) co_return st;
    sent += n;
  }
  s.CloseWrite();
  co_return absl::OkStatus();
}

io::Task<Status> Reader(hbone::HboneStream& s, size_t seed) {
  size_t got = 0;
  for (;;) {
    auto chunk = co_await s.Peek({.timeout = 10s});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) break;
    for (size_t i = 0; i < chunk->size(); ++i) {
      if ((*chunk)[i] != std::byte{Pattern(got + i, seed)}) co_return absl::DataLossError("echo mismatch");
    }
    got += chunk->size();
    s.Consume(chunk->size());
  }
  if (got != kEchoBytes) co_return absl::DataLossError("short echo: " + std::to_string(got));
  co_return absl::OkStatus();
}

// 64 KiB each way, checked, half-closed both ways; the stream is then done.
io::Task<Status> Echo(hbone::HboneStream& s, size_t seed) {
  auto [w, r] = co_await io::WhenAll(Writer(s, seed), Reader(s, seed));
  if (!w.ok()) co_return w;
  if (!r.ok()) co_return r;
  co_return co_await s.AwaitClosed({.timeout = 10s});
}

// One tunnel end to end: checkout, CONNECT, echo, close.
io::Task<Status> RoundTrip(Env* env, hbone::PoolKey key, size_t seed) {
  auto t = co_await OpenTunnel(env, std::move(key));
  if (!t.ok()) co_return t.status();
  co_return co_await Echo(*t->stream, seed);
}

// ---- the rules ------------------------------------------------------------

void IdleEviction(io::BackendKind backend) {
  Env env(backend, {.max_streams_per_conn = 100, .idle_timeout = 200ms, .sweep_interval = 50ms});
  io::Loop& l = *env.loop;
  env.pool->Start();
  auto t = l.BlockOn(OpenTunnel(&env, BaseKey(env)));
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  // A connection with an open stream is not idle, however long it lasts.
  CHECK_FALSE(l.RunUntil([&] { return env.pool->stats().evicted_idle > 0; }, 500ms));
  Status st = l.BlockOn(Echo(*t->stream, 1));
  CHECK_MESSAGE(st.ok(), st.ToString());
  t->stream.reset();
  t->conn.reset();
  CHECK(env.pool->stats().dials == 1);
  CHECK(env.pool->stats().evicted_idle == 0);
  // Now without streams: the sweeper closes it after idle_timeout.
  base::MonoTime idle_since = l.Now();
  CHECK(l.RunUntil([&] { return env.pool->stats().evicted_idle == 1 && env.pool->connections() == 0; }, 5s));
  double after = std::chrono::duration<double>(l.Now() - idle_since).count();
  CHECK(after >= 0.15);
  CHECK(env.pool->stats().evicted_idle == 1);
  // The server sees the connection go away too.
  REQUIRE(env.server.conns.size() == 1);
  CHECK(l.RunUntil([&] { return env.server.conns[0]->closed(); }, 5s));
  // The next checkout dials a new connection, and it works.
  st = l.BlockOn(RoundTrip(&env, BaseKey(env), 2));
  CHECK_MESSAGE(st.ok(), st.ToString());
  CHECK(env.pool->stats().dials == 2);
  CHECK(env.server.conns.size() == 2);
  MESSAGE("backend " << env.name() << ": idle connection evicted " << after
                     << " s after its last stream (idle_timeout 0.2 s, sweep 0.05 s); dials "
                     << env.pool->stats().dials << ", evicted_idle " << env.pool->stats().evicted_idle);
}

void GoAwayNotReused(io::BackendKind backend) {
  Env env(backend, {.max_streams_per_conn = 100});
  io::Loop& l = *env.loop;
  // Tunnel A stays open across the GOAWAY.
  auto a = l.BlockOn(OpenTunnel(&env, BaseKey(env)));
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  // Before the GOAWAY the connection is reused.
  Status st = l.BlockOn(RoundTrip(&env, BaseKey(env), 10));
  CHECK_MESSAGE(st.ok(), st.ToString());
  CHECK(env.pool->stats().dials == 1);
  CHECK(env.pool->stats().reused == 1);
  REQUIRE(env.server.conns.size() == 1);
  env.server.conns[0]->Drain();  // server sends GOAWAY (NO_ERROR, last stream = A's)
  CHECK(l.RunUntil([&] { return !a->conn->Usable(100); }, 5s));
  CHECK_FALSE(a->conn->closed());  // still open: stream A is in flight
  // The next checkout must not get the GOAWAY'd connection.
  auto b = l.BlockOn(OpenTunnel(&env, BaseKey(env)));
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK(b->conn.get() != a->conn.get());
  CHECK(env.pool->stats().dials == 2);
  CHECK(env.server.conns.size() == 2);
  st = l.BlockOn(Echo(*b->stream, 11));
  CHECK_MESSAGE(st.ok(), st.ToString());
  // The stream opened before the GOAWAY still completes intact...
  st = l.BlockOn(Echo(*a->stream, 12));
  CHECK_MESSAGE(st.ok(), st.ToString());
  a->stream.reset();
  // ...and then the drained connection closes and leaves the pool.
  CHECK(l.RunUntil([&] { return a->conn->closed() && env.pool->connections() == 1; }, 5s));
  // Later checkouts keep using the new connection.
  st = l.BlockOn(RoundTrip(&env, BaseKey(env), 13));
  CHECK_MESSAGE(st.ok(), st.ToString());
  CHECK(env.pool->stats().dials == 2);
  MESSAGE("backend " << env.name() << ": after GOAWAY dials " << env.pool->stats().dials << ", reused "
                     << env.pool->stats().reused << ", open " << env.pool->connections());
}

void PeerStreamLimit(io::BackendKind backend) {
  constexpr int kTunnels = 25;
  Env env(backend, {.max_streams_per_conn = 100}, /*server_max_streams=*/10);
  io::Loop& l = *env.loop;
  // Opened one after another (each waits for its 200, so the peer's SETTINGS
  // of a new connection are known) and all held open at the same time.
  std::vector<Tunnel> tunnels;
  for (int i = 0; i < kTunnels; ++i) {
    auto t = l.BlockOn(OpenTunnel(&env, BaseKey(env)));
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    tunnels.push_back(std::move(*t));
  }
  CHECK(env.pool->stats().dials == 3);
  CHECK(env.pool->connections() == 3);
  std::vector<size_t> per_conn;
  for (auto& c : env.server.conns) per_conn.push_back(c->active_streams());
  REQUIRE(per_conn.size() == 3);
  CHECK(per_conn[0] == 10);
  CHECK(per_conn[1] == 10);
  CHECK(per_conn[2] == 5);
  CHECK(tunnels[0].conn->h2().PeerMaxConcurrentStreams() == 10);
  // All 25 carry their bytes concurrently.
  int ok = 0;
  int finished = 0;
  for (size_t i = 0; i < tunnels.size(); ++i) {
    l.Spawn([](hbone::HboneStream* s, size_t seed, int* ok, int* finished) -> io::Task<void> {
      Status st = co_await Echo(*s, seed);
      if (st.ok()) ++*ok;
      else MESSAGE("tunnel failed: " << st.ToString());
      ++*finished;
    }(tunnels[i].stream.get(), 100 + i, &ok, &finished));
  }
  CHECK(l.RunUntil([&] { return finished == kTunnels; }, 30s));
  CHECK(ok == kTunnels);
  CHECK(env.server.streams == kTunnels);
  MESSAGE("backend " << env.name() << ": " << kTunnels << " concurrent tunnels, peer MAX_CONCURRENT_STREAMS 10 -> "
                     << env.pool->stats().dials << " connections (" << per_conn[0] << "/" << per_conn[1] << "/"
                     << per_conn[2] << " streams)");
  tunnels.clear();
}

void KeysDoNotShare(io::BackendKind backend) {
  Env env(backend, {.max_streams_per_conn = 100});
  io::Loop& l = *env.loop;
  hbone::PoolKey base = BaseKey(env);
  hbone::PoolKey other_ip = base;
  other_ip.source_ip = "127.0.0.2";
  hbone::PoolKey other_dst = base;
  // The same server, but accepted under a second identity too: a different
  // set of acceptable identities is a different key.
  other_dst.destination_identities.push_back("spiffe://cluster.local/ns/demo/sa/server-canary");
  hbone::PoolKey other_src = base;
  other_src.source_identity = env.pki.client_b_id.ToString();
  const std::vector<std::pair<const char*, hbone::PoolKey>> keys = {
      {"base", base}, {"source ip", other_ip}, {"destination identities", other_dst},
      {"source identity", other_src}};
  for (size_t i = 0; i < keys.size(); ++i) {
    Status st = l.BlockOn(RoundTrip(&env, keys[i].second, 20 + i));
    CHECK_MESSAGE(st.ok(), keys[i].first << ": " << st.ToString());
    CHECK_MESSAGE(env.pool->stats().dials == i + 1, keys[i].first << " shared a connection");
  }
  CHECK(env.pool->connections() == 4);
  REQUIRE(env.server.conns.size() == 4);
  // What the server saw confirms each dial used its key's fields.
  CHECK(env.server.peer_addrs[0] == "127.0.0.1");
  CHECK(env.server.peer_addrs[1] == "127.0.0.2");
  CHECK(env.server.peer_ids[0] == env.pki.client_id.ToString());
  CHECK(env.server.peer_ids[3] == env.pki.client_b_id.ToString());
  // Each key again: every one reuses its own connection.
  for (size_t i = 0; i < keys.size(); ++i) {
    Status st = l.BlockOn(RoundTrip(&env, keys[i].second, 30 + i));
    CHECK_MESSAGE(st.ok(), keys[i].first << ": " << st.ToString());
  }
  CHECK(env.pool->stats().dials == 4);
  CHECK(env.pool->stats().reused == 4);
  CHECK(env.server.conns.size() == 4);
  MESSAGE("backend " << env.name() << ": 4 keys differing in one field -> " << env.pool->stats().dials
                     << " connections; second round reused " << env.pool->stats().reused);
}

}  // namespace

TEST_CASE("pool: idle connections are evicted, busy ones are not; uring") { IdleEviction(io::BackendKind::kUring); }
TEST_CASE("pool: idle connections are evicted, busy ones are not; epoll") { IdleEviction(io::BackendKind::kEpoll); }
TEST_CASE("pool: a connection that received GOAWAY is never reused; uring") { GoAwayNotReused(io::BackendKind::kUring); }
TEST_CASE("pool: a connection that received GOAWAY is never reused; epoll") { GoAwayNotReused(io::BackendKind::kEpoll); }
TEST_CASE("pool: the peer's MAX_CONCURRENT_STREAMS 10 caps each connection; uring") {
  PeerStreamLimit(io::BackendKind::kUring);
}
TEST_CASE("pool: the peer's MAX_CONCURRENT_STREAMS 10 caps each connection; epoll") {
  PeerStreamLimit(io::BackendKind::kEpoll);
}
TEST_CASE("pool: keys differing in one field get separate connections; uring") { KeysDoNotShare(io::BackendKind::kUring); }
TEST_CASE("pool: keys differing in one field get separate connections; epoll") { KeysDoNotShare(io::BackendKind::kEpoll); }
