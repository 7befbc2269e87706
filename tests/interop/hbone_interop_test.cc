// Our HBONE client (HboneConn over TLS 1.3 + nghttp2) against a server
// nobody here wrote: Python's ssl + python3-h2 (tests/interop/hbone_py_server.py),
// with built-in-CA certificates. 1 MiB each way must round-trip intact, and
// a server whose identity is not the expected one must be refused.
#include <doctest/doctest.h>
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

io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> Dial(io::Loop& loop, uint16_t port,
                                                            std::shared_ptr<const tls::TlsContext> ctx,
                                                            identity::Identity expected) {
  auto fd = net::CreateTcpClient({});
  if (!fd.ok()) co_return fd.status();
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len, {.timeout = 5s});
  if (!st.ok()) co_return st;
  std::vector<identity::Identity> ids{expected};
  hbone::ConnOptions opts;
  auto conn = co_await hbone::HboneConn::Handshake(loop, std::move(*fd), ctx, std::move(ids), opts);
  co_return conn;
}

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
  auto conn = l.BlockOn(Dial(l, py.port, *cctx, sid));
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  CHECK((*conn)->peer_identity().has_value());
  http2::H2Headers headers = {{"baggage", "k8s.namespace.name=interop"}};
  auto stream = l.BlockOn((*conn)->Open("10.0.0.1:8080", headers, 5s));
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
  auto refused = l.BlockOn(Dial(l, py.port, *cctx, other));
  CHECK_FALSE(refused.ok());
  if (!refused.ok()) MESSAGE("refused as expected: " << refused.status().ToString());
  std::filesystem::remove_all(dir);
}
