// Our HBONE client (HboneConn over TLS 1.3 + nghttp2) against a server
// nobody here wrote: Python's ssl + python3-h2 (tests/interop/hbone_py_server.py),
// with built-in-CA certificates. 1 MiB each way must round-trip intact, and
// a server whose identity is not the expected one must be refused.
// And the other way round: our HBONE server (hbone::Accept) against the
// python3-h2 client of tests/interop/h2_peer.py over Python's ssl, 1 MiB
// each way checked on both ends, half-closed both ways.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

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

struct PyServer {
  pid_t pid = -1;
  uint16_t port = 0;
  FILE* out = nullptr;
  ~PyServer() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      int st = 0;
      waitpid(pid, &st, 0);
    }
    if (out) fclose(out);
  }
};

void StartPy(PyServer* s, const std::string& certs) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  s->pid = fork();
  REQUIRE(s->pid >= 0);
  if (s->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    const char* script = std::getenv("HBONE_PY_SERVER");
    execl("/usr/bin/python3", "python3", script, "--certs", certs.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  s->out = fdopen(fds[0], "r");
  char line[256] = {};
  REQUIRE(fgets(line, sizeof(line), s->out) != nullptr);
  REQUIRE(std::sscanf(line, "port %hu", &s->port) == 1);
}

using ambit::testing::DialLoopbackHbone;

io::Task<Status> WriteAll(hbone::HboneStream& s, size_t n) {
  std::vector<std::byte> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = std::byte(static_cast<uint8_t>(i * 31 + 7));
  Status st = co_await s.Write(buf);
  s.CloseWrite();
  co_return st;
}

io::Task<StatusOr<size_t>> ReadAll(hbone::HboneStream& s, size_t expect) {
  size_t got = 0;
  for (;;) {
    auto chunk = co_await s.Peek({.timeout = 10s});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) break;
    for (size_t i = 0; i < chunk->size(); ++i) {
      if ((*chunk)[i] != std::byte(static_cast<uint8_t>((got + i) * 31 + 7))) {
        co_return absl::DataLossError("echo mismatch");
      }
    }
    got += chunk->size();
    s.Consume(chunk->size());
  }
  if (got != expect) co_return absl::DataLossError("short echo");
  co_return got;
}

}  // namespace

TEST_CASE("our HBONE client against a python3-h2 HBONE server over TLS 1.3") {
  REQUIRE(std::getenv("HBONE_PY_SERVER") != nullptr);
  auto ca = identity::BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto sid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/python");
  auto cid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/ambit");
  auto sb = ca->Issue(sid);
  auto cb = ca->Issue(cid);
  REQUIRE((sb.ok() && cb.ok()));
  auto dir = std::filesystem::temp_directory_path() / ("ambit-interop-" + std::to_string(getpid()));
  REQUIRE(identity::WriteBundleToDir(*sb, dir).ok());
  PyServer py;
  StartPy(&py, dir.string());
  auto cctx = tls::MakeClientContext(*cb);
  REQUIRE(cctx.ok());

  auto loop = io::Loop::Create({.name = "interop"});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  auto conn = l.BlockOn(DialLoopbackHbone(l, py.port, *cctx, sid));
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  CHECK((*conn)->peer_identity().has_value());
  http2::H2Headers headers = {{"baggage", "k8s.namespace.name=interop"}};
  auto stream = l.BlockOn(hbone::OpenConnect(**conn, "10.0.0.1:8080", headers, 5s));
  REQUIRE_MESSAGE(stream.ok(), stream.status().ToString());
  constexpr size_t kBytes = 1 << 20;
  auto [w, r] = l.BlockOn(io::WhenAll(WriteAll(**stream, kBytes), ReadAll(**stream, kBytes)));
  CHECK(w.ok());
  CHECK_MESSAGE(r.ok(), r.status().ToString());
  char line[1024] = {};
  REQUIRE(fgets(line, sizeof(line), py.out) != nullptr);
  std::string seen(line);
  CHECK(seen.find("\":method\": \"CONNECT\"") != std::string::npos);
  CHECK(seen.find("\":authority\": \"10.0.0.1:8080\"") != std::string::npos);
  CHECK(seen.find(":scheme") == std::string::npos);
  CHECK(seen.find("\"peer_cert\": true") != std::string::npos);
  stream->reset();

  // Expecting another identity: our client refuses the python server.
  auto other = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/someone-else");
  auto refused = l.BlockOn(DialLoopbackHbone(l, py.port, *cctx, other));
  CHECK_FALSE(refused.ok());
  if (!refused.ok()) MESSAGE("refused as expected: " << refused.status().ToString());
  std::filesystem::remove_all(dir);
}

namespace {

// h2_peer.py's payload: bytes of a 32-bit LCG, seeded 0x12345678.
struct PeerPattern {
  uint32_t x = 0x12345678;
  uint8_t Next() {
    x = x * 1103515245u + 12345u;
    return static_cast<uint8_t>((x >> 16) & 0xff);
  }
};

struct ServerSeen {
  std::string peer_identity;
  std::string authority;
  uint64_t bytes = 0;
  bool intact = true;
  bool eof = false;
  bool done = false;
  Status accept_status;
};

// Answers 200, checks every byte against h2_peer's pattern and echoes it;
// END_STREAM after the client's END_STREAM.
io::Task<void> CheckedEcho(std::unique_ptr<hbone::HboneStream> stream, ServerSeen* seen) {
  PeerPattern expect;
  if (hbone::RespondConnect(*stream, 200).ok()) {
    for (;;) {
      auto chunk = co_await stream->Peek({.timeout = 20s});
      if (!chunk.ok()) break;
      if (chunk->empty()) {
        seen->eof = true;
        stream->CloseWrite();
        (void)co_await stream->AwaitClosed({.timeout = 10s});
        break;
      }
      for (std::byte b : *chunk) {
        if (b != std::byte{expect.Next()}) seen->intact = false;
      }
      seen->bytes += chunk->size();
      std::vector<std::byte> copy(chunk->begin(), chunk->end());
      stream->Consume(copy.size());
      if (!(co_await stream->Write(copy)).ok()) break;
    }
  }
  seen->done = true;
}

io::Task<void> ServeOne(io::Loop& loop, int listen_fd, std::shared_ptr<const tls::TlsContext> ctx,
                        ServerSeen* seen, std::shared_ptr<hbone::HboneConn>* keep) {
  auto a = co_await loop.Accept(listen_fd, {.timeout = 20s});
  if (!a.ok()) {
    seen->accept_status = a.status();
    seen->done = true;
    co_return;
  }
  hbone::HboneConn::StreamHandler handler = [&loop, seen](std::unique_ptr<hbone::HboneStream> s,
                                                          const http2::H2Headers& h) {
    const auto& id = s->conn().peer_identity();
    seen->peer_identity = id ? id->ToString() : "(none)";
    if (const std::string* auth = http2::FindHeader(h, ":authority")) seen->authority = *auth;
    loop.Spawn(CheckedEcho(std::move(s), seen));
  };
  hbone::ConnOptions opts;
  auto conn = co_await hbone::Accept(loop, net::Fd(a->fd), ctx, opts, handler);
  if (!conn.ok()) {
    seen->accept_status = conn.status();
    seen->done = true;
    co_return;
  }
  *keep = *conn;
}

bool Readable(FILE* f) {
  pollfd p{fileno(f), POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

}  // namespace

TEST_CASE("the python3-h2 HBONE client over TLS 1.3 against our HBONE server") {
  const char* peer = std::getenv("H2_PEER");
  REQUIRE(peer != nullptr);
  auto ca = identity::BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto sid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/ambit-server");
  auto cid = *identity::Identity::Parse("spiffe://cluster.local/ns/interop/sa/python-client");
  auto sb = ca->Issue(sid);
  auto cb = ca->Issue(cid);
  REQUIRE((sb.ok() && cb.ok()));
  auto dir = std::filesystem::temp_directory_path() / ("ambit-interop-c-" + std::to_string(getpid()));
  REQUIRE(identity::WriteBundleToDir(*cb, dir).ok());  // the python client's certificate
  auto sctx = tls::MakeServerContext(*sb);
  REQUIRE(sctx.ok());

  auto loop = io::Loop::Create({.name = "interop-server"});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  auto lst = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0")});
  REQUIRE(lst.ok());
  const uint16_t port = net::LocalAddress(lst->get())->port();
  ServerSeen seen;
  std::shared_ptr<hbone::HboneConn> server_conn;
  l.Spawn(ServeOne(l, lst->get(), *sctx, &seen, &server_conn));

  constexpr size_t kBytes = 1 << 20;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    const std::string connect = "127.0.0.1:" + std::to_string(port);
    const std::string bytes = std::to_string(kBytes);
    execl("/usr/bin/python3", "python3", peer, "client", "--connect", connect.c_str(), "--tls-certs",
          dir.c_str(), "--tls-expect-id", sid.ToString().c_str(), "--authority", "10.0.0.7:9090",
          "--bytes", bytes.c_str(), "--header", "baggage:k8s.namespace.name=interop", nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  // The loop serves until our side is done and python printed its verdict.
  bool finished = l.RunUntil([&] { return seen.done && Readable(out); }, 60s);
  CHECK(finished);
  char line[2048] = {};
  bool got_line = fgets(line, sizeof(line), out) != nullptr;
  fclose(out);
  int st = 0;
  waitpid(pid, &st, 0);
  REQUIRE(got_line);
  std::string result(line);
  MESSAGE("python client: " << result);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  // Python's view: 200, 1 MiB echoed (sha256 equal), END_STREAM, TLS 1.3 + h2,
  // our server's SPIFFE identity.
  CHECK(result.find("\"status\": \"200\"") != std::string::npos);
  CHECK(result.find("\"received\": " + std::to_string(kBytes)) != std::string::npos);
  CHECK(result.find("\"ended\": true") != std::string::npos);
  CHECK(result.find("\"echo_ok\": true") != std::string::npos);
  CHECK(result.find("\"tls_version\": \"TLSv1.3\"") != std::string::npos);
  CHECK(result.find("\"alpn\": \"h2\"") != std::string::npos);
  CHECK(result.find(sid.ToString()) != std::string::npos);
  // Our server's view: the client's identity from its certificate, every
  // byte as sent, then END_STREAM.
  CHECK_MESSAGE(seen.accept_status.ok(), seen.accept_status.ToString());
  CHECK(seen.peer_identity == cid.ToString());
  CHECK(seen.authority == "10.0.0.7:9090");
  CHECK(seen.bytes == kBytes);
  CHECK(seen.intact);
  CHECK(seen.eof);
  MESSAGE("our server saw identity " << seen.peer_identity << ", " << seen.bytes << " B intact="
                                     << seen.intact << " then END_STREAM=" << seen.eof);
  if (server_conn) server_conn->Close(absl::CancelledError("test over"));
  server_conn.reset();
  l.RunUntil([&] { return l.live_tasks() == 0; }, 5s);
  std::filesystem::remove_all(dir);
}
