// Table-driven rejections: each bad certificate yields its own TlsFailure on
// the verifying side, the other side sees the alert, and the counter moves.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "tests/unit/tls/tls_fixture.h"

namespace ambit::tls::testing {
namespace {

constexpr const char* kTd = "spiffe://cluster.local";
const std::string kClientId = std::string(kTd) + "/ns/app/sa/client";
const std::string kServerId = std::string(kTd) + "/ns/app/sa/server";

struct Pki {
  BuiltinCa ca = NewCa();
  BuiltinCa other = NewCa();
};

enum class Side { kServerRejects, kClientRejects };

struct Case {
  const char* name;
  Side side;
  // Builds the certificate of the side being checked.
  std::function<CertBundle(const Pki&)> bad_cert;
  TlsFailure want;
  const char* want_text;  // substring of the error
};

CertSpec Shifted(std::vector<std::string> uris, std::chrono::hours nb, std::chrono::hours na) {
  CertSpec s = LeafSpec(std::move(uris));
  const auto now = std::chrono::system_clock::now();
  s.not_before = now + nb;
  s.not_after = now + na;
  return s;
}

const Case kCases[] = {
    {"wrong trust domain", Side::kServerRejects,
     [](const Pki& p) { return Issue(p.ca, "spiffe://other.td/ns/app/sa/client"); },
     TlsFailure::kTrustDomainMismatch, "trust domain 'other.td'"},
    {"SAN not in expected list", Side::kClientRejects,
     [](const Pki& p) { return Issue(p.ca, "spiffe://cluster.local/ns/app/sa/impostor"); },
     TlsFailure::kIdentityNotExpected, "presented spiffe://cluster.local/ns/app/sa/impostor"},
    {"expired", Side::kClientRejects,
     [](const Pki& p) {
       return MakeBundle(Shifted({kServerId}, std::chrono::hours(-48), std::chrono::hours(-24)),
                         &p.ca, p.ca);
     },
     TlsFailure::kExpired, "expired"},
    {"not yet valid", Side::kServerRejects,
     [](const Pki& p) {
       return MakeBundle(Shifted({kClientId}, std::chrono::hours(24), std::chrono::hours(48)),
                         &p.ca, p.ca);
     },
     TlsFailure::kNotYetValid, "not yet valid"},
    {"cert from another root", Side::kServerRejects,
     [](const Pki& p) { return MakeBundle(LeafSpec({kClientId}), &p.other, p.ca); },
     TlsFailure::kUntrustedRoot, "unable to get local issuer"},
    {"self-signed leaf", Side::kClientRejects,
     [](const Pki& p) { return MakeBundle(LeafSpec({kServerId}), nullptr, p.ca); },
     TlsFailure::kSelfSigned, "self_signed"},
    {"malformed SPIFFE URI", Side::kServerRejects,
     [](const Pki& p) {
       return MakeBundle(LeafSpec({"spiffe://cluster.local/ns/app"}), &p.ca, p.ca);
     },
     TlsFailure::kMalformedSpiffeSan, "too few path segments"},
    {"no SPIFFE SAN", Side::kClientRejects,
     [](const Pki& p) { return MakeBundle(LeafSpec({"https://example.com/x"}), &p.ca, p.ca); },
     TlsFailure::kNoSpiffeSan, "https://example.com/x"},
    {"wrong EKU on client cert", Side::kServerRejects,
     [](const Pki& p) {
       CertSpec s = LeafSpec({kClientId});
       s.client_auth = false;
       return MakeBundle(s, &p.ca, p.ca);
     },
     TlsFailure::kWrongEku, "unsuitable certificate purpose"},
    {"wrong EKU on server cert", Side::kClientRejects,
     [](const Pki& p) {
       CertSpec s = LeafSpec({kServerId});
       s.server_auth = false;
       return MakeBundle(s, &p.ca, p.ca);
     },
     TlsFailure::kWrongEku, "unsuitable certificate purpose"},
};

TEST_CASE("rejections: one distinct reason per bad certificate") {
  Pki pki;
  for (const Case& c : kCases) {
    const std::string name = c.name;
    CAPTURE(name);
    const bool server_checks = c.side == Side::kServerRejects;
    const CertBundle bad = c.bad_cert(pki);
    auto server_ctx = ServerCtx(Issue(pki.ca, kServerId));
    auto client_ctx = ClientCtx(Issue(pki.ca, kClientId));
    SwapCert(server_checks ? *client_ctx : *server_ctx, bad);
    auto server = TlsEngine::NewServer(server_ctx);
    auto client = TlsEngine::NewClient(client_ctx, {Id(kServerId)});
    REQUIRE(server.ok());
    REQUIRE(client.ok());
    const PumpResult r = Pump(**client, **server);
    TlsEngine& checker = server_checks ? **server : **client;
    TlsEngine& peer = server_checks ? **client : **server;
    CHECK((server_checks ? r.server : r.client) == HandshakeState::kFailed);
    CHECK(checker.failure() == c.want);
    CHECK(checker.error().code() == absl::StatusCode::kPermissionDenied);
    const std::string text(checker.error().message());
    CHECK_MESSAGE(text.find(c.want_text) != std::string::npos, text);
    CHECK(text.find(TlsFailureName(c.want)) != std::string::npos);
    CHECK(checker.peer_identity() == std::nullopt);
    const RejectionCounters& counters =
        server_checks ? server_ctx->counters() : client_ctx->counters();
    CHECK(counters.Get(c.want) == 1);

    // The peer learns of the rejection by alert: during its handshake or, for a
    // TLS 1.3 client whose own certificate was refused, on its first read.
    if (peer.handshake_done()) {
      std::byte buf[16];
      CHECK(peer.ReadPlaintext(buf).state == ReadState::kFailed);
    }
    CHECK(peer.failure() == TlsFailure::kPeerAlert);
  }
}

TEST_CASE("two URI SANs, only the second SPIFFE: accepted with the second as identity") {
  Pki pki;
  const CertBundle client_cert =
      MakeBundle(LeafSpec({"https://example.com/not-spiffe", kClientId}), &pki.ca, pki.ca);
  const CertBundle server_cert =
      MakeBundle(LeafSpec({"urn:example:x", kServerId}), &pki.ca, pki.ca);
  auto server = TlsEngine::NewServer(ServerCtx(server_cert));
  auto client = TlsEngine::NewClient(ClientCtx(client_cert), {Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  const PumpResult r = Pump(**client, **server);
  REQUIRE(r.server == HandshakeState::kDone);
  REQUIRE(r.client == HandshakeState::kDone);
  CHECK((*server)->peer_identity()->ToString() == kClientId);
  CHECK((*client)->peer_identity()->ToString() == kServerId);
}

TEST_CASE("client without a certificate is rejected as no_peer_cert") {
  Pki pki;
  auto server_ctx = ServerCtx(Issue(pki.ca, kServerId));
  // A bare client context: ALPN h2, no certificate, no verification.
  identity::SslCtxPtr raw(SSL_CTX_new(TLS_client_method()));
  static constexpr unsigned char kH2[] = {2, 'h', '2'};
  REQUIRE(SSL_CTX_set_alpn_protos(raw.get(), kH2, sizeof(kH2)) == 0);
  auto bare = std::make_shared<const TlsContext>(TlsRole::kClient, std::move(raw), Id(kClientId),
                                                 std::make_shared<RejectionCounters>());
  auto server = TlsEngine::NewServer(server_ctx);
  auto client = TlsEngine::NewClient(bare, {Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  const PumpResult r = Pump(**client, **server);
  CHECK(r.server == HandshakeState::kFailed);
  CHECK((*server)->failure() == TlsFailure::kNoPeerCert);
  CHECK(server_ctx->counters().Get(TlsFailure::kNoPeerCert) == 1);
}

TEST_CASE("a client expecting several identities accepts any of them") {
  Pki pki;
  auto server = TlsEngine::NewServer(ServerCtx(Issue(pki.ca, kServerId)));
  auto client =
      TlsEngine::NewClient(ClientCtx(Issue(pki.ca, kClientId)),
                           {Id("spiffe://cluster.local/ns/x/sa/waypoint"), Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  CHECK(Pump(**client, **server).client == HandshakeState::kDone);
  CHECK(TlsEngine::NewClient(ClientCtx(Issue(pki.ca, kClientId)), {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambit::tls::testing
