#include "common/tls/context.h"

#include <doctest/doctest.h>

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
  const CertBundle b =
      MakeBundle(LeafSpec({"spiffe://bad", "spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"}),
                 &ca, ca);
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
