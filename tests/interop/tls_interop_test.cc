// Interop with a TLS stack nobody here wrote: openssl s_server / s_client as
// subprocesses on 127.0.0.1, using certificates from our built-in CA.
// Env: OPENSSL (path to the openssl binary), AMBITCTL (path to ambitctl).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/identity/cert_files.h"
#include "tests/interop/tls_subprocess.h"
#include "tests/unit/tls/fd_driver.h"
#include "tests/unit/tls/tls_fixture.h"

namespace ambit::tls::testing {
namespace {

namespace fs = std::filesystem;
constexpr auto kTimeout = std::chrono::seconds(15);
const std::string kServerId = "spiffe://cluster.local/ns/echo/sa/server";
const std::string kClientId = "spiffe://cluster.local/ns/app/sa/client";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  REQUIRE_MESSAGE(v != nullptr, name, " must be set by meson");
  return v;
}

struct Workdir {
  fs::path dir = fs::temp_directory_path() /
                 ("ambit-tls-interop-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  Workdir() { fs::create_directories(dir); }
  ~Workdir() { fs::remove_all(dir); }
  fs::path Write(const std::string& name, const CertBundle& b) {
    REQUIRE(identity::WriteBundleToDir(b, dir / name).ok());
    return dir / name;
  }
  static inline int n = 0;
};

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

int Listen(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

int AcceptWithTimeout(int lfd) {
  pollfd p{lfd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 15000) == 1);
  return ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
}

// openssl s_server -rev on an ephemeral port; returns the port.
int StartServer(Subprocess& s) {
  REQUIRE(s.started());
  REQUIRE_MESSAGE(s.WaitForOutput("\n", kTimeout), s.output());
  REQUIRE_MESSAGE(s.WaitForOutput("ACCEPT", kTimeout), s.output());
  REQUIRE(s.WaitForOutput("\n", std::chrono::seconds(1)));
  const size_t colon = s.output().find(':', s.output().find("ACCEPT"));
  return std::atoi(s.output().c_str() + colon + 1);
}

std::vector<std::string> ServerArgv(const fs::path& d) {
  return {Env("OPENSSL"),
          "s_server",
          "-accept",
          "127.0.0.1:0",
          "-naccept",
          "1",
          "-tls1_3",
          "-alpn",
          "h2",
          "-cert",
          (d / "cert-chain.pem").string(),
          "-key",
          (d / "key.pem").string(),
          "-CAfile",
          (d / "root-cert.pem").string(),
          "-Verify",
          "1",
          "-verify_return_error",
          "-rev"};
}

std::vector<std::string> ClientArgv(const fs::path& d, int port) {
  return {Env("OPENSSL"),
          "s_client",
          "-connect",
          "127.0.0.1:" + std::to_string(port),
          "-tls1_3",
          "-alpn",
          "h2",
          "-cert",
          (d / "cert-chain.pem").string(),
          "-key",
          (d / "key.pem").string(),
          "-CAfile",
          (d / "root-cert.pem").string(),
          "-verify_return_error",
          "-quiet"};
}

TEST_CASE("our client engine <-> openssl s_server: mTLS, h2, bytes both ways") {
  BuiltinCa ca = NewCa();
  Workdir w;
  Subprocess server(ServerArgv(w.Write("server", Issue(ca, kServerId))));
  const int port = StartServer(server);
  auto engine = TlsEngine::NewClient(ClientCtx(Issue(ca, kClientId)), {Id(kServerId)});
  REQUIRE(engine.ok());
  const int fd = Connect(port);
  FdDriver d(**engine, fd);
  REQUIRE_MESSAGE(d.Handshake(kTimeout) == HandshakeState::kDone, (*engine)->error().ToString());
  CHECK((*engine)->alpn() == "h2");
  CHECK((*engine)->peer_identity()->ToString() == kServerId);
  REQUIRE(d.Write("hello ambit\n", kTimeout));
  std::string got;
  CHECK(d.ReadN(got, 12, kTimeout) == ReadState::kData);
  CHECK(got == "tibma olleh\n");
  ::close(fd);
  CHECK_MESSAGE(server.WaitForOutput("ALPN protocols selected: h2", kTimeout), server.output());
}

TEST_CASE("our client engine refuses an openssl s_server with an unexpected identity") {
  BuiltinCa ca = NewCa();
  Workdir w;
  Subprocess server(ServerArgv(w.Write("server", Issue(ca, kServerId))));
  const int port = StartServer(server);
  auto engine = TlsEngine::NewClient(ClientCtx(Issue(ca, kClientId)),
                                     {Id("spiffe://cluster.local/ns/echo/sa/other")});
  REQUIRE(engine.ok());
  const int fd = Connect(port);
  FdDriver d(**engine, fd);
  CHECK(d.Handshake(kTimeout) == HandshakeState::kFailed);
  CHECK((*engine)->failure() == TlsFailure::kIdentityNotExpected);
  ::close(fd);
  // s_server saw our alert instead of a finished handshake.
  CHECK(server.Wait(kTimeout) >= 0);
  CHECK(server.output().find("CONNECTION ESTABLISHED") == std::string::npos);
}

TEST_CASE("openssl s_client <-> our server engine: mTLS, h2, client identity") {
  BuiltinCa ca = NewCa();
  Workdir w;
  int port = 0;
  const int lfd = Listen(&port);
  Subprocess client(ClientArgv(w.Write("client", Issue(ca, kClientId)), port));
  REQUIRE(client.started());
  const int fd = AcceptWithTimeout(lfd);
  auto engine = TlsEngine::NewServer(ServerCtx(Issue(ca, kServerId)));
  REQUIRE(engine.ok());
  FdDriver d(**engine, fd);
  REQUIRE_MESSAGE(d.Handshake(kTimeout) == HandshakeState::kDone, (*engine)->error().ToString());
  CHECK((*engine)->alpn() == "h2");
  CHECK((*engine)->peer_identity()->ToString() == kClientId);
  REQUIRE(client.WriteStdin("ping\n"));
  std::string got;
  CHECK(d.ReadN(got, 5, kTimeout) == ReadState::kData);
  CHECK(got == "ping\n");
  REQUIRE(d.Write("pong from ambit\n", kTimeout));
  CHECK_MESSAGE(client.WaitForOutput("pong from ambit\n", kTimeout), client.output());
  ::close(fd);
  ::close(lfd);
}

TEST_CASE("our server engine refuses an openssl s_client from another trust domain") {
  BuiltinCa ca = NewCa();
  Workdir w;
  int port = 0;
  const int lfd = Listen(&port);
  Subprocess client(
      ClientArgv(w.Write("client", Issue(ca, "spiffe://other.td/ns/app/sa/client")), port));
  REQUIRE(client.started());
  const int fd = AcceptWithTimeout(lfd);
  auto engine = TlsEngine::NewServer(ServerCtx(Issue(ca, kServerId)));
  REQUIRE(engine.ok());
  FdDriver d(**engine, fd);
  CHECK(d.Handshake(kTimeout) == HandshakeState::kFailed);
  CHECK((*engine)->failure() == TlsFailure::kTrustDomainMismatch);
  ::close(fd);
  client.CloseStdin();
  CHECK(client.Wait(kTimeout) != 0);
  CHECK_MESSAGE(client.output().find("alert") != std::string::npos, client.output());
  ::close(lfd);
}

unsigned Mode(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("ambitctl ca init/issue: openssl verify accepts the chain; keys are 0600") {
  Workdir w;
  const std::string ambitctl = Env("AMBITCTL");
  const fs::path ca = w.dir / "ca";
  const fs::path out = w.dir / "out";
  Subprocess init({ambitctl, "ca", "init", ca.string()});
  REQUIRE(init.Wait(kTimeout) == 0);
  CHECK(Mode(ca / "ca.key") == 0600);
  Subprocess issue({ambitctl, "ca", "issue", "--ca", ca.string(), "--identity", kServerId, "--out",
                    out.string(), "--ttl", "2h"});
  REQUIRE_MESSAGE(issue.Wait(kTimeout) == 0, issue.output());
  CHECK(Mode(out / "key.pem") == 0600);
  Subprocess verify({Env("OPENSSL"), "verify", "-CAfile", (ca / "ca.crt").string(), "-purpose",
                     "sslserver", (out / "cert-chain.pem").string()});
  CHECK(verify.Wait(kTimeout) == 0);
  CHECK_MESSAGE(verify.output().find(": OK") != std::string::npos, verify.output());
  Subprocess text({Env("OPENSSL"), "x509", "-noout", "-ext", "subjectAltName", "-in",
                   (out / "cert-chain.pem").string()});
  CHECK(text.Wait(kTimeout) == 0);
  CHECK(text.output().find("URI:" + kServerId) != std::string::npos);

  Subprocess bad_id({ambitctl, "ca", "issue", "--ca", ca.string(), "--identity", "spiffe://td/ns/a",
                     "--out", out.string()});
  CHECK(bad_id.Wait(kTimeout) == 1);
  CHECK(bad_id.output().find("too few path segments") != std::string::npos);
  Subprocess no_ca({ambitctl, "ca", "issue", "--ca", (w.dir / "missing").string(), "--identity",
                    kServerId, "--out", out.string()});
  CHECK(no_ca.Wait(kTimeout) == 1);
  CHECK(no_ca.output().find("ambitctl ca init") != std::string::npos);
}

}  // namespace
}  // namespace ambit::tls::testing
