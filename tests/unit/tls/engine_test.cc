#include "common/tls/engine.h"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <cstdint>
#include <random>
#include <string>
#include <thread>

#include "tests/unit/tls/fd_driver.h"
#include "tests/unit/tls/tls_fixture.h"

namespace ambit::tls::testing {
namespace {

constexpr const char* kClientId = "spiffe://cluster.local/ns/app/sa/client";
constexpr const char* kServerId = "spiffe://cluster.local/ns/app/sa/server";

std::string RandomPayload(size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

uint64_t Checksum(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct Pair {
  std::unique_ptr<TlsEngine> client;
  std::unique_ptr<TlsEngine> server;
};

Pair NewPair(const BuiltinCa& ca) {
  auto server = TlsEngine::NewServer(ServerCtx(Issue(ca, kServerId)));
  auto client = TlsEngine::NewClient(ClientCtx(Issue(ca, kClientId)), {Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  return {std::move(*client), std::move(*server)};
}

// Moves `data` from `from` to `to` through TLS, draining in bounded chunks.
std::string SendThrough(TlsEngine& from, TlsEngine& to, const std::string& data) {
  REQUIRE(from.WritePlaintext(Bytes(data)).ok());
  std::string got;
  std::byte buf[16 * 1024];
  while (!from.PendingCiphertext().empty()) {
    auto pending = from.PendingCiphertext();
    const size_t chunk = std::min<size_t>(pending.size(), 7000);  // split records
    to.FeedCiphertext(pending.first(chunk));
    from.ConsumeCiphertext(chunk);
    while (true) {
      const ReadResult r = to.ReadPlaintext(buf);
      if (r.state != ReadState::kData) {
        REQUIRE(r.state == ReadState::kNeedMore);
        break;
      }
      got.append(reinterpret_cast<const char*>(buf), r.bytes);
    }
  }
  return got;
}

TEST_CASE("mTLS handshake in memory: identities, ALPN h2, TLS 1.3") {
  BuiltinCa ca = NewCa();
  Pair p = NewPair(ca);
  const PumpResult r = Pump(*p.client, *p.server);
  REQUIRE(r.client == HandshakeState::kDone);
  REQUIRE(r.server == HandshakeState::kDone);
  REQUIRE(p.client->peer_identity().has_value());
  REQUIRE(p.server->peer_identity().has_value());
  CHECK(p.client->peer_identity()->ToString() == kServerId);
  CHECK(p.server->peer_identity()->ToString() == kClientId);
  CHECK(p.client->alpn() == "h2");
  CHECK(p.server->alpn() == "h2");
  CHECK(p.client->failure() == TlsFailure::kNone);
}

TEST_CASE("1 MiB each way round-trips with the same checksum; close_notify ends the stream") {
  BuiltinCa ca = NewCa();
  Pair p = NewPair(ca);
  REQUIRE(Pump(*p.client, *p.server).server == HandshakeState::kDone);
  const std::string payload = RandomPayload(1 << 20);
  const std::string at_server = SendThrough(*p.client, *p.server, payload);
  CHECK(at_server.size() == payload.size());
  CHECK(Checksum(at_server) == Checksum(payload));
  const std::string at_client = SendThrough(*p.server, *p.client, at_server);
  CHECK(Checksum(at_client) == Checksum(payload));

  p.client->Shutdown();
  Transfer(*p.client, *p.server);
  std::byte buf[64];
  CHECK(p.server->ReadPlaintext(buf).state == ReadState::kClosed);
}

TEST_CASE("reads and writes before the handshake are refused") {
  BuiltinCa ca = NewCa();
  Pair p = NewPair(ca);
  std::byte buf[16];
  CHECK(p.client->ReadPlaintext(buf).state == ReadState::kFailed);
  CHECK(p.client->WritePlaintext(Bytes("x")).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("mTLS over a real socketpair: 1 MiB echoed with the same checksum") {
  BuiltinCa ca = NewCa();
  Pair p = NewPair(ca);
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  const std::string payload = RandomPayload(1 << 20);
  constexpr auto kTimeout = std::chrono::seconds(20);

  std::string server_error;
  std::thread server([&] {
    FdDriver d(*p.server, fds[1]);
    if (d.Handshake(kTimeout) != HandshakeState::kDone) {
      server_error = "server handshake: " + p.server->error().ToString();
      return;
    }
    std::string got;
    if (d.ReadN(got, payload.size(), kTimeout) != ReadState::kData) {
      server_error = "server read";
      return;
    }
    if (!d.Write(got, kTimeout)) server_error = "server write";
  });
  FdDriver d(*p.client, fds[0]);
  REQUIRE(d.Handshake(kTimeout) == HandshakeState::kDone);
  // Write while reading: the echo starts before our write is fully sent.
  REQUIRE(p.client->WritePlaintext(Bytes(payload)).ok());
  std::string echoed;
  CHECK(d.ReadN(echoed, payload.size(), kTimeout) == ReadState::kData);
  server.join();
  CHECK(server_error.empty());
  CHECK(echoed.size() == payload.size());
  CHECK(Checksum(echoed) == Checksum(payload));
  CHECK(p.server->peer_identity()->ToString() == kClientId);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace ambit::tls::testing

namespace ambit::tls::testing {
namespace {

// leaf <- intermediate <- root: the bundle carries the intermediate in its chain.
CertBundle IssueViaIntermediate(const BuiltinCa& root, const std::string& id,
                                const std::string& extra_root_pem) {
  auto inter_key = identity::GenerateP256Key();
  REQUIRE(inter_key.ok());
  CertSpec inter_spec = LeafSpec({});
  inter_spec.is_ca = true;
  inter_spec.common_name = "intermediate";
  auto inter = identity::BuildCert(inter_spec, inter_key->get(), root.root_cert(), root.root_key());
  REQUIRE(inter.ok());
  auto leaf_key = identity::GenerateP256Key();
  REQUIRE(leaf_key.ok());
  auto leaf = identity::BuildCert(LeafSpec({id}), leaf_key->get(), inter->get(), inter_key->get());
  REQUIRE(leaf.ok());
  const std::string chain = *identity::CertToPem(leaf->get()) + *identity::CertToPem(inter->get());
  auto b = identity::MakeCertBundle(chain, extra_root_pem + root.root_pem(),
                                    *identity::PrivateKeyToPem(leaf_key->get()));
  REQUIRE(b.ok());
  return *b;
}

TEST_CASE("intermediate CAs in the chain and multi-root trust bundles verify") {
  BuiltinCa ca = NewCa();
  BuiltinCa unrelated = NewCa();
  const CertBundle server_cert = IssueViaIntermediate(ca, kServerId, unrelated.root_pem());
  const CertBundle client_cert = IssueViaIntermediate(ca, kClientId, "");
  CHECK(server_cert.chain_pems.size() == 1);
  CHECK(server_cert.CertChainPem() == server_cert.leaf_pem + server_cert.chain_pems[0]);
  auto server = TlsEngine::NewServer(ServerCtx(server_cert));
  auto client = TlsEngine::NewClient(ClientCtx(client_cert), {Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  const PumpResult r = Pump(**client, **server);
  CHECK_MESSAGE(r.client == HandshakeState::kDone, (*client)->error().ToString());
  CHECK_MESSAGE(r.server == HandshakeState::kDone, (*server)->error().ToString());
  CHECK((*server)->peer_identity()->ToString() == kClientId);
}

}  // namespace
}  // namespace ambit::tls::testing
