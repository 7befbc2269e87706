// Test-only PKI and in-memory plumbing for TLS tests.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/identity/builtin_ca.h"
#include "common/identity/cert_builder.h"
#include "common/identity/x509_util.h"
#include "common/tls/context.h"
#include "common/tls/engine.h"

namespace ambit::tls::testing {

using identity::BuiltinCa;
using identity::CertBundle;
using identity::CertSpec;
using identity::Identity;

inline Identity Id(const std::string& s) {
  auto id = Identity::Parse(s);
  REQUIRE(id.ok());
  return *id;
}

inline BuiltinCa NewCa() {
  auto ca = BuiltinCa::Generate();
  REQUIRE(ca.ok());
  return std::move(*ca);
}

// A valid 1-hour leaf spec for `uris`.
inline CertSpec LeafSpec(std::vector<std::string> uris) {
  CertSpec spec;
  spec.uri_sans = std::move(uris);
  spec.not_before = std::chrono::system_clock::now() - std::chrono::minutes(1);
  spec.not_after = std::chrono::system_clock::now() + std::chrono::hours(1);
  return spec;
}

// Signs `spec` with `ca` (or self-signs when `ca == nullptr`); the trust
// bundle is always `trust`'s root.
inline CertBundle MakeBundle(const CertSpec& spec, const BuiltinCa* ca, const BuiltinCa& trust) {
  auto key = identity::GenerateP256Key();
  REQUIRE(key.ok());
  auto cert = ca != nullptr ? identity::BuildCert(spec, key->get(), ca->root_cert(), ca->root_key())
                            : identity::BuildCert(spec, key->get(), nullptr, key->get());
  REQUIRE(cert.ok());
  auto leaf_pem = identity::CertToPem(cert->get());
  auto key_pem = identity::PrivateKeyToPem(key->get());
  REQUIRE(leaf_pem.ok());
  REQUIRE(key_pem.ok());
  auto bundle = identity::MakeCertBundle(*leaf_pem, trust.root_pem(), *key_pem);
  REQUIRE(bundle.ok());
  return *bundle;
}

inline CertBundle Issue(const BuiltinCa& ca, const std::string& id) {
  auto b = ca.Issue(Id(id));
  REQUIRE(b.ok());
  return *b;
}

inline std::shared_ptr<const TlsContext> ServerCtx(const CertBundle& b, TlsOptions o = {}) {
  auto ctx = MakeServerContext(b, o);
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return *ctx;
}

inline std::shared_ptr<const TlsContext> ClientCtx(const CertBundle& b, TlsOptions o = {}) {
  auto ctx = MakeClientContext(b, o);
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return *ctx;
}

// Makes `ctx` present `b`'s certificate and key (contexts refuse to be built
// from a leaf without a SPIFFE identity; tests need such peers).
inline void SwapCert(const TlsContext& ctx, const CertBundle& b) {
  auto leaf = identity::ParseCertPem(b.leaf_pem, "leaf");
  auto key = identity::ParsePrivateKeyPem(b.private_key_pem, "key");
  REQUIRE(leaf.ok());
  REQUIRE(key.ok());
  REQUIRE(SSL_CTX_use_certificate(ctx.ssl_ctx(), leaf->get()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.ssl_ctx(), key->get()) == 1);
}

inline void Transfer(TlsEngine& from, TlsEngine& to) {
  auto bytes = from.PendingCiphertext();
  to.FeedCiphertext(bytes);
  from.ConsumeCiphertext(bytes.size());
}

struct PumpResult {
  HandshakeState client;
  HandshakeState server;
};

// Runs both handshakes to completion over in-memory "wires".
inline PumpResult Pump(TlsEngine& client, TlsEngine& server) {
  PumpResult r{HandshakeState::kNeedMore, HandshakeState::kNeedMore};
  for (int i = 0; i < 10; ++i) {
    r.client = client.Handshake();
    Transfer(client, server);
    r.server = server.Handshake();
    Transfer(server, client);
    const bool client_settled = r.client != HandshakeState::kNeedMore;
    const bool server_settled = r.server != HandshakeState::kNeedMore;
    if (client_settled && server_settled) break;
    if (r.client == HandshakeState::kFailed || r.server == HandshakeState::kFailed) {
      // Let the other side see the alert.
      r.client = client.Handshake();
      r.server = server.Handshake();
      break;
    }
  }
  return r;
}

inline std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace ambit::tls::testing
