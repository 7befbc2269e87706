// SSL_CTX builders for HBONE: TLS 1.3 (optionally 1.2), AES-GCM suites,
// X25519/P-256, ALPN h2, mutual TLS with SPIFFE verification, no SNI, no
// session resumption. Build one context per local identity and reuse it for
// every connection; engines share it through the shared_ptr.
#pragma once

#include <memory>
#include <string>

#include "common/base/status.h"
#include "common/identity/cert_bundle.h"
#include "common/identity/identity.h"
#include "common/identity/ossl_ptr.h"
#include "common/tls/crl.h"
#include "common/tls/failure.h"
#include "common/tls/spiffe_verify.h"

namespace ambit::tls {

struct TlsOptions {
  bool allow_tls12 = false;  // TLS12_ENABLED: adds TLS 1.2 ECDHE-*-AES-GCM
  // Where rejections are counted; one is created per context when null.
  std::shared_ptr<RejectionCounters> counters;
  // Server side: the trust domain inbound peers must belong to (the local
  // workload's Workload.trust_domain). Empty: our certificate's trust domain.
  std::string trust_domain;
  // CRL_PATH: revoked peer certificates fail the handshake (null: no CRLs).
  std::shared_ptr<CrlStore> crls;
};

class TlsContext {
 public:
  TlsContext(TlsRole role, identity::SslCtxPtr ctx, identity::Identity local,
             std::shared_ptr<RejectionCounters> counters, std::string trust_domain = "",
             std::shared_ptr<CrlStore> crls = nullptr);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  TlsRole role() const { return role_; }
  SSL_CTX* ssl_ctx() const { return ctx_.get(); }
  // The identity of our own certificate; its trust domain is what inbound
  // peers must match.
  const identity::Identity& local_identity() const { return local_; }
  // What inbound peers' identities must be in (server side).
  const std::string& trust_domain() const { return trust_domain_; }
  RejectionCounters& counters() const { return *counters_; }
  CrlStore* crls() const { return crls_.get(); }

 private:
  TlsRole role_;
  identity::SslCtxPtr ctx_;
  identity::Identity local_;
  std::shared_ptr<RejectionCounters> counters_;
  std::string trust_domain_;
  std::shared_ptr<CrlStore> crls_;
};

StatusOr<std::shared_ptr<const TlsContext>> MakeServerContext(const identity::CertBundle& bundle,
                                                              const TlsOptions& options = {});
StatusOr<std::shared_ptr<const TlsContext>> MakeClientContext(const identity::CertBundle& bundle,
                                                              const TlsOptions& options = {});

}  // namespace ambit::tls
