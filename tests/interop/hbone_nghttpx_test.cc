// Our HBONE client (HboneConn: TLS 1.3 + nghttp2) through nghttpx, a
// third-party HTTP/2 server, running as an HTTP/2 forward proxy:
//
//   HboneConn --TLS 1.3, mTLS, ALPN h2, CONNECT--> nghttpx --http2-proxy
//     --HTTP/1.1 CONNECT--> http1_connect_proxy.py --TCP--> echo (this test)
//
// nghttpx does not open CONNECT tunnels itself: in proxy mode it forwards
// the CONNECT to its backend, which in the documented deployment is an
// HTTP/1.1 proxy such as Squid; http1_connect_proxy.py plays that part.
// nghttpx gets a server certificate from our built-in CA and verifies our
// client certificate against our root (--verify-client-cacert). 1 MiB goes
// each way, checksummed; the echo's FIN must come back to us as END_STREAM
// (our END_STREAM goes out too, but nghttpx does not forward it: see
// EchoServer).
//
// h2spec (the HTTP/2 conformance suite) is not packaged in Debian 12, so it is
// not run; h2_garbage_test and fuzz_h2_server cover malformed input instead.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/hbone/conn.h"
#include "common/hbone/stream.h"
#include "common/identity/builtin_ca.h"
#include "common/identity/cert_files.h"
#include "common/io/loop.h"
#include "common/net/socket.h"
#include "common/tls/context.h"
#include "tests/support/hbone_dial.h"

using namespace ambit;
using namespace std::chrono_literals;

namespace {

constexpr size_t kBytes = 1 << 20;

uint8_t Pattern(size_t i) { return static_cast<uint8_t>((i * 31 + 7) ^ (i >> 9)); }

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void Add(std::span<const std::byte> b) {
    for (std::byte x : b) h = (h ^ static_cast<uint8_t>(x)) * 1099511628211ull;
  }
};

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int st = 0;
      waitpid(pid, &st, 0);
    }
    if (out) fclose(out);
  }
};

// Starts argv[0] with stdout on a pipe (when `out`) and stderr in `log`.
void Start(Child* c, const std::vector<std::string>& argv, bool out, const std::string& log) {
  int fds[2] = {-1, -1};
  if (out) REQUIRE(pipe(fds) == 0);
  c->pid = fork();
  REQUIRE(c->pid >= 0);
  if (c->pid == 0) {
    if (out) {
      dup2(fds[1], 1);
      close(fds[0]);
    }
    FILE* err = fopen(log.c_str(), "w");
    if (err) dup2(fileno(err), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (out) {
    close(fds[1]);
    c->out = fdopen(fds[0], "r");
  }
}

uint16_t FreePort() {
  auto lst = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0")});
  REQUIRE(lst.ok());
  return net::LocalAddress(lst->get())->port();
}

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool WaitListening(uint16_t port, std::chrono::milliseconds timeout) {
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto fd = net::CreateTcpClient({});
    if (fd.ok() && net::ConnectWithTimeout(fd->get(), addr, 200ms).ok()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The destination: a TCP echo. nghttpx 1.52 does not pass the END_STREAM of
// a CONNECT tunnel on to an HTTP/1.1 backend as a FIN (it keeps the backend
// connection open until the stream is gone), so the echo cannot wait for our
// FIN: it reads the known length, gives our FIN `fin_wait` to arrive
// (recorded, not required), then half-closes; that FIN must reach us as
// END_STREAM.
struct EchoResult {
  uint64_t bytes = 0;
  Fnv sum;
  bool saw_eof = false;
  Status status;
};

io::Task<void> EchoServer(io::Loop& loop, int listen_fd, size_t expect, base::Duration fin_wait,
                          EchoResult* r) {
  auto a = co_await loop.Accept(listen_fd, {.timeout = 20s});
  if (!a.ok()) {
    r->status = a.status();
    co_return;
  }
  net::Fd fd(a->fd);
  std::vector<std::byte> buf(64 << 10);
  while (r->bytes < expect) {
    auto n = co_await loop.Recv(fd.get(), buf, {.timeout = 20s});
    if (!n.ok()) {
      r->status = n.status();
      co_return;
    }
    if (*n == 0) {
      r->saw_eof = true;
      break;
    }
    std::span<const std::byte> got(buf.data(), *n);
    r->bytes += *n;
    r->sum.Add(got);
    Status st = co_await io::SendAll(loop, fd.get(), got);
    if (!st.ok()) {
      r->status = st;
      co_return;
    }
  }
  if (!r->saw_eof) {
    auto n = co_await loop.Recv(fd.get(), buf, {.timeout = fin_wait});
    if (n.ok() && *n == 0) r->saw_eof = true;
    if (n.ok() && *n > 0) r->status = absl::DataLossError("bytes beyond the expected length");
  }
  Status st = co_await loop.Shutdown(fd.get(), SHUT_WR);
  if (!st.ok()) r->status = st;
  // Keep the socket until the proxy closed its side, then close.
  auto n = co_await loop.Recv(fd.get(), buf, {.timeout = 10s});
  (void)n;
}

using ambit::testing::DialLoopbackHbone;

io::Task<Status> WriteAll(hbone::HboneStream& s, Fnv* sum) {
  std::vector<std::byte> buf(kBytes);
  for (size_t i = 0; i < kBytes; ++i) buf[i] = std::byte{Pattern(i)};
  sum->Add(buf);
  Status st = co_await s.Write(buf, {.timeout = 20s});
  s.CloseWrite();
  co_return st;
}

struct ReadResult {
  uint64_t bytes = 0;
  Fnv sum;
  bool intact = true;
  bool eof = false;
};

io::Task<Status> ReadAll(hbone::HboneStream& s, ReadResult* r) {
  for (;;) {
    auto chunk = co_await s.Peek({.timeout = 20s});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) {
      r->eof = true;
      break;
    }
    for (size_t i = 0; i < chunk->size(); ++i) {
      if ((*chunk)[i] != std::byte{Pattern(r->bytes + i)}) r->intact = false;
    }
    r->sum.Add(*chunk);
    r->bytes += chunk->size();
    s.Consume(chunk->size());
  }
  co_return absl::OkStatus();
}

}  // namespace

TEST_CASE("our HBONE client through nghttpx --http2-proxy (TLS 1.3, mTLS with our CA)") {
  const char* nghttpx = std::getenv("NGHTTPX");
  const char* proxy_script = std::getenv("HTTP1_CONNECT_PROXY");
  REQUIRE(nghttpx != nullptr);
  REQUIRE(proxy_script != nullptr);

  auto ca = identity::BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto sid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/nghttpx");
  auto cid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/ambit");
  auto sb = ca->Issue(sid);
  auto cb = ca->Issue(cid);
  REQUIRE((sb.ok() && cb.ok()));
  auto dir = std::filesystem::temp_directory_path() / ("ambit-nghttpx-" + std::to_string(getpid()));
  REQUIRE(identity::WriteBundleToDir(*sb, dir).ok());
  const std::string log = (dir / "nghttpx.log").string();

  // Backend: the HTTP/1.1 CONNECT proxy.
  Child proxy;
  Start(&proxy, {"/usr/bin/python3", proxy_script}, true, (dir / "proxy.log").string());
  char line[2048] = {};
  REQUIRE(fgets(line, sizeof(line), proxy.out) != nullptr);
  uint16_t proxy_port = 0;
  REQUIRE(std::sscanf(line, "port %hu", &proxy_port) == 1);

  // Frontend: nghttpx, TLS 1.3 only, ALPN h2 only, client certificate required.
  // The port is picked free and then handed over, so retry if it was taken.
  uint16_t port = 0;
  Child ngx;
  for (int attempt = 0; attempt < 3 && port == 0; ++attempt) {
    const uint16_t p = FreePort();
    Start(&ngx,
          {nghttpx, "--conf=/dev/null", "--http2-proxy", "--single-thread", "--workers=1", "--no-ocsp",
           "--frontend=127.0.0.1," + std::to_string(p),
           "--backend=127.0.0.1," + std::to_string(proxy_port),
           "--tls-min-proto-version=TLSv1.3", "--tls-max-proto-version=TLSv1.3", "--npn-list=h2",
           "--verify-client", "--verify-client-cacert=" + (dir / "root-cert.pem").string(),
           "--log-level=INFO", "--errorlog-file=" + log, (dir / "key.pem").string(),
           (dir / "cert-chain.pem").string()},
          false, log + ".stderr");
    if (WaitListening(p, 10s)) {
      port = p;
      break;
    }
    MESSAGE("nghttpx did not start on port " << p << ": " << ReadFile(log) << ReadFile(log + ".stderr"));
    kill(ngx.pid, SIGTERM);
    waitpid(ngx.pid, nullptr, 0);
    ngx.pid = -1;
  }
  REQUIRE(port != 0);

  auto loop = io::Loop::Create({.name = "nghttpx-interop"});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  auto echo_lst = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0")});
  REQUIRE(echo_lst.ok());
  const uint16_t echo_port = net::LocalAddress(echo_lst->get())->port();
  EchoResult echo;
  bool echo_done = false;
  l.Spawn([](io::Loop& loop, int fd, EchoResult* r, bool* done) -> io::Task<void> {
    co_await EchoServer(loop, fd, kBytes, 2s, r);
    *done = true;
  }(l, echo_lst->get(), &echo, &echo_done));

  auto cctx = tls::MakeClientContext(*cb);
  REQUIRE(cctx.ok());
  auto conn = l.BlockOn(DialLoopbackHbone(l, port, *cctx, sid));
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString() << "\nnghttpx log:\n" << ReadFile(log));
  REQUIRE((*conn)->peer_identity().has_value());
  CHECK((*conn)->peer_identity()->ToString() == sid.ToString());
  CHECK((*conn)->h2().PeerMaxConcurrentStreams() > 0);

  const std::string authority = "127.0.0.1:" + std::to_string(echo_port);
  http2::H2Headers headers;
  auto stream = l.BlockOn(hbone::OpenConnect(**conn, authority, headers, 10s));
  REQUIRE_MESSAGE(stream.ok(), stream.status().ToString() << "\nnghttpx log:\n" << ReadFile(log));

  Fnv sent;
  ReadResult got;
  auto [w, r] = l.BlockOn(io::WhenAll(WriteAll(**stream, &sent), ReadAll(**stream, &got)));
  CHECK_MESSAGE(w.ok(), w.ToString());
  CHECK_MESSAGE(r.ok(), r.ToString() << "\nnghttpx log:\n" << ReadFile(log));
  CHECK(l.RunUntil([&] { return echo_done; }, 10s));
  // Up: every byte reached the echo.
  CHECK_MESSAGE(echo.status.ok(), echo.status.ToString());
  CHECK(echo.bytes == kBytes);
  CHECK(echo.sum.h == sent.h);
  // Down: every byte came back, then the echo's FIN as END_STREAM.
  CHECK(got.bytes == kBytes);
  CHECK(got.intact);
  CHECK(got.sum.h == sent.h);
  CHECK(got.eof);
  std::ostringstream summary;
  summary << "through nghttpx: sent " << kBytes << " B + END_STREAM (fnv " << std::hex << sent.h << std::dec
          << "), echo got " << echo.bytes << " B"
          << (echo.saw_eof ? " + FIN" : " and no FIN within 2 s (nghttpx keeps the backend open)")
          << ", we got back " << got.bytes << " B (fnv " << std::hex << got.sum.h << std::dec << ")"
          << (got.eof ? " + END_STREAM" : " without END_STREAM");
  MESSAGE(summary.str());
  (void)l.BlockOn((*stream)->AwaitClosed({.timeout = 5s}));
  stream->reset();

  // The proxy saw nghttpx's HTTP/1.1 CONNECT for our authority.
  REQUIRE(fgets(line, sizeof(line), proxy.out) != nullptr);
  std::string seen(line);
  CHECK(seen.find("\"target\": \"" + authority + "\"") != std::string::npos);
  MESSAGE("backend saw: " << seen);

  // nghttpx refuses a client whose certificate is not from our CA (the
  // client still trusts our root, so only nghttpx's check can stop it).
  auto stranger_ca = identity::BuiltinCa::Generate();
  REQUIRE(stranger_ca.ok());
  auto stranger = stranger_ca->Issue(cid);
  REQUIRE(stranger.ok());
  stranger->root_pem = cb->root_pem;
  auto sctx = tls::MakeClientContext(*stranger);
  REQUIRE(sctx.ok());
  auto refused = l.BlockOn([](io::Loop& loop, uint16_t port, std::shared_ptr<const tls::TlsContext> ctx,
                              identity::Identity id) -> io::Task<Status> {
    auto c = co_await DialLoopbackHbone(loop, port, ctx, id);
    if (!c.ok()) co_return c.status();
    http2::H2Headers h;
    auto s = co_await hbone::OpenConnect(**c, "127.0.0.1:1", h, 5s);
    co_return s.status();
  }(l, port, *sctx, sid));
  CHECK_FALSE(refused.ok());
  MESSAGE("client with a foreign CA: " << refused.ToString());

  (*conn)->Close(absl::CancelledError("test over"));
  conn->reset();
  l.RunUntil([&] { return l.live_tasks() == 0; }, 5s);
  std::filesystem::remove_all(dir);
}
