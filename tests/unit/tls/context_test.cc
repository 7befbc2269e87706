#include "common/tls/context.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "common/tls/spiffe_verify.h"
#include "tests/unit/tls/tls_fixture.h"

namespace ambit::tls::testing {
namespace {

TEST_CASE("contexts: TLS 1.3 only by default, 1.2 on request, no tickets") {
  BuiltinCa ca = NewCa();
  const CertBundle b = Issue(ca, "spiffe://td/ns/a/sa/b");
  auto strict = ServerCtx(b);
  CHECK(SSL_CTX_get_min_proto_version(strict->ssl_ctx()) == TLS1_3_VERSION);
  CHECK(SSL_CTX_get_max_proto_version(strict->ssl_ctx()) == TLS1_3_VERSION);
  CHECK(SSL_CTX_get_num_tickets(strict->ssl_ctx()) == 0);
  CHECK((SSL_CTX_get_verify_mode(strict->ssl_ctx()) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) != 0);
  CHECK(strict->local_identity().trust_domain() == "td");
  TlsOptions o;
  o.allow_tls12 = true;
  auto lax = ClientCtx(b, o);
  CHECK(SSL_CTX_get_min_proto_version(lax->ssl_ctx()) == TLS1_2_VERSION);
}

TEST_CASE("contexts: a key that does not match the leaf is refused") {
  BuiltinCa ca = NewCa();
  CertBundle a = Issue(ca, "spiffe://td/ns/a/sa/a");
  const CertBundle b = Issue(ca, "spiffe://td/ns/a/sa/b");
  a.private_key_pem = b.private_key_pem;
  auto ctx = MakeServerContext(a);
  REQUIRE_FALSE(ctx.ok());
  CHECK(std::string(ctx.status().message()).find("does not match") != std::string::npos);
}

TEST_CASE("TLS 1.2 client against a 1.3-only server fails as a protocol error") {
  BuiltinCa ca = NewCa();
  TlsOptions o;
  o.allow_tls12 = true;
  auto client_ctx = ClientCtx(Issue(ca, "spiffe://td/ns/a/sa/c"), o);
  SSL_CTX_set_max_proto_version(client_ctx->ssl_ctx(), TLS1_2_VERSION);
  auto server = TlsEngine::NewServer(ServerCtx(Issue(ca, "spiffe://td/ns/a/sa/s")));
  auto client = TlsEngine::NewClient(client_ctx, {Id("spiffe://td/ns/a/sa/s")});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  const PumpResult r = Pump(**client, **server);
  CHECK(r.server == HandshakeState::kFailed);
  CHECK((*server)->failure() == TlsFailure::kProtocol);
  CHECK(std::string((*server)->error().message()).find("protocol") != std::string::npos);
}

TEST_CASE("CheckPeerIdentity applies the server and client rules") {
  BuiltinCa ca = NewCa();
  const CertBundle b = MakeBundle(
      LeafSpec({"spiffe://bad", "spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"}), &ca, ca);
  auto leaf = identity::ParseCertPem(b.leaf_pem, "leaf");
  REQUIRE(leaf.ok());
  PeerVerdict v = CheckPeerIdentity(leaf->get(), TlsRole::kServer, "td", {});
  CHECK(v.failure == TlsFailure::kNone);
  CHECK(v.peer->ToString() == "spiffe://td/ns/a/sa/b");
  CHECK(CheckPeerIdentity(leaf->get(), TlsRole::kServer, "other", {}).failure ==
        TlsFailure::kTrustDomainMismatch);
  // Client side: any URI SAN may match, not only the first identity.
  const Identity want[] = {Id("spiffe://td/ns/a/sa/c")};
  v = CheckPeerIdentity(leaf->get(), TlsRole::kClient, "td", want);
  CHECK(v.failure == TlsFailure::kNone);
  const Identity other[] = {Id("spiffe://td/ns/a/sa/d")};
  CHECK(CheckPeerIdentity(leaf->get(), TlsRole::kClient, "td", other).failure ==
        TlsFailure::kIdentityNotExpected);
}

}  // namespace
}  // namespace ambit::tls::testing

namespace ambit::tls::testing {
namespace {

TEST_CASE("ALPN: a client not offering h2 is refused as alpn_mismatch") {
  BuiltinCa ca = NewCa();
  const std::string sid = "spiffe://td/ns/a/sa/s";
  struct AlpnCase {
    const char* name;
    std::string protos;  // wire format; empty = no ALPN extension
    TlsFailure client_sees;
  };
  const AlpnCase cases[] = {
      {"no ALPN", "", TlsFailure::kAlpnMismatch},
      {"http/1.1 only", std::string("\x08http/1.1", 9), TlsFailure::kPeerAlert},
  };
  for (const AlpnCase& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    auto server_ctx = ServerCtx(Issue(ca, sid));
    auto client_ctx = ClientCtx(Issue(ca, "spiffe://td/ns/a/sa/c"));
    REQUIRE(SSL_CTX_set_alpn_protos(client_ctx->ssl_ctx(),
                                    reinterpret_cast<const unsigned char*>(c.protos.data()),
                                    static_cast<unsigned>(c.protos.size())) == 0);
    auto server = TlsEngine::NewServer(server_ctx);
    auto client = TlsEngine::NewClient(client_ctx, {Id(sid)});
    REQUIRE(server.ok());
    REQUIRE(client.ok());
    const PumpResult r = Pump(**client, **server);
    CHECK(r.server == HandshakeState::kFailed);
    CHECK((*server)->failure() == TlsFailure::kAlpnMismatch);
    CHECK(server_ctx->counters().Get(TlsFailure::kAlpnMismatch) == 1);
    CHECK(r.client == HandshakeState::kFailed);
    CHECK((*client)->failure() == c.client_sees);
  }
}

TEST_CASE("zero-copy input: receiving into the engine's buffer completes a handshake") {
  BuiltinCa ca = NewCa();
  const std::string sid = "spiffe://td/ns/a/sa/s";
  auto server = TlsEngine::NewServer(ServerCtx(Issue(ca, sid)));
  auto client = TlsEngine::NewClient(ClientCtx(Issue(ca, "spiffe://td/ns/a/sa/c")), {Id(sid)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  auto move = [](TlsEngine& from, TlsEngine& to) {
    auto bytes = from.PendingCiphertext();
    auto buf = to.CiphertextInputBuffer(bytes.size());
    std::memcpy(buf.data(), bytes.data(), bytes.size());  // stands in for recv()
    to.CommitCiphertextInput(bytes.size());
    from.ConsumeCiphertext(bytes.size());
  };
  HandshakeState cs = HandshakeState::kNeedMore, ss = HandshakeState::kNeedMore;
  for (int i = 0; i < 4; ++i) {
    cs = (*client)->Handshake();
    move(**client, **server);
    ss = (*server)->Handshake();
    move(**server, **client);
  }
  CHECK(cs == HandshakeState::kDone);
  CHECK(ss == HandshakeState::kDone);
}

}  // namespace
}  // namespace ambit::tls::testing

namespace ambit::tls::testing {
namespace {

TEST_CASE("TLS 1.2 when both sides allow it: verified, h2, ECDHE-ECDSA-AES-GCM") {
  BuiltinCa ca = NewCa();
  TlsOptions o;
  o.allow_tls12 = true;
  const std::string sid = "spiffe://td/ns/a/sa/s";
  auto client_ctx = ClientCtx(Issue(ca, "spiffe://td/ns/a/sa/c"), o);
  SSL_CTX_set_max_proto_version(client_ctx->ssl_ctx(), TLS1_2_VERSION);
  auto server = TlsEngine::NewServer(ServerCtx(Issue(ca, sid), o));
  auto client = TlsEngine::NewClient(client_ctx, {Id(sid)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  const PumpResult r = Pump(**client, **server);
  REQUIRE(r.client == HandshakeState::kDone);
  REQUIRE(r.server == HandshakeState::kDone);
  CHECK((*server)->protocol_version() == "TLSv1.2");
  CHECK((*server)->cipher().substr(0, 11) == "ECDHE-ECDSA");
  CHECK((*server)->alpn() == "h2");
  CHECK((*server)->peer_identity()->ToString() == "spiffe://td/ns/a/sa/c");
  CHECK((*client)->peer_identity()->ToString() == sid);
}

TEST_CASE("TLS 1.3 default negotiates an AES-GCM suite") {
  BuiltinCa ca = NewCa();
  const std::string sid = "spiffe://td/ns/a/sa/s";
  auto server = TlsEngine::NewServer(ServerCtx(Issue(ca, sid)));
  auto client = TlsEngine::NewClient(ClientCtx(Issue(ca, "spiffe://td/ns/a/sa/c")), {Id(sid)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  REQUIRE(Pump(**client, **server).server == HandshakeState::kDone);
  CHECK((*client)->protocol_version() == "TLSv1.3");
  CHECK((*client)->cipher() == "TLS_AES_256_GCM_SHA384");
}

}  // namespace
}  // namespace ambit::tls::testing

namespace ambit::tls::testing {
namespace {

TEST_CASE("server trust domain can come from the workload record instead of the cert") {
  BuiltinCa ca = NewCa();
  const std::string sid = "spiffe://cluster.local/ns/a/sa/s";
  TlsOptions o;
  o.trust_domain = "mesh.example";
  auto server_ctx = ServerCtx(Issue(ca, sid), o);
  CHECK(server_ctx->trust_domain() == "mesh.example");
  CHECK(ServerCtx(Issue(ca, sid))->trust_domain() == "cluster.local");
  for (const char* client_id :
       {"spiffe://cluster.local/ns/a/sa/c", "spiffe://mesh.example/ns/a/sa/c"}) {
    auto server = TlsEngine::NewServer(server_ctx);
    auto client = TlsEngine::NewClient(ClientCtx(Issue(ca, client_id)), {Id(sid)});
    REQUIRE(server.ok());
    REQUIRE(client.ok());
    const PumpResult r = Pump(**client, **server);
    const bool same_td = std::string(client_id).find("mesh.example") != std::string::npos;
    CHECK(r.server == (same_td ? HandshakeState::kDone : HandshakeState::kFailed));
  }
  CHECK(server_ctx->counters().Get(TlsFailure::kTrustDomainMismatch) == 1);
}

}  // namespace
}  // namespace ambit::tls::testing
