#include "common/tls/context.h"

#include "common/identity/cat.h"
#include "common/tls/peer_state.h"

namespace ambit::tls {
using identity::Cat;
namespace {

using identity::OpensslError;

constexpr const char* kCipherSuites13 = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kGroups = "X25519:P-256";
constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnH2, sizeof(kAlpnH2), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Replaces OpenSSL's chain verification: verify the chain (OpenSSL already
// set the ssl_client/ssl_server purpose), then the SPIFFE rules.
int VerifyPeer(X509_STORE_CTX* sctx, void* arg) {
  const auto* ctx = static_cast<const TlsContext*>(arg);
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  PeerState* state = ssl != nullptr ? PeerState::From(ssl) : nullptr;
  if (state == nullptr) return 0;
  X509* leaf = X509_STORE_CTX_get0_cert(sctx);
  if (X509_verify_cert(sctx) != 1) {
    const int err = X509_STORE_CTX_get_error(sctx);
    state->verdict.failure = MapChainError(err, leaf);
    state->verdict.detail = Cat("peer chain verification: ", X509_verify_cert_error_string(err));
    return 0;
  }
  if (CrlStore* crls = ctx->crls()) {
    if (std::shared_ptr<const CrlSet> set = crls->current()) {
      if (std::optional<std::string> revoked = set->FindRevoked(X509_STORE_CTX_get0_chain(sctx))) {
        state->verdict.failure = TlsFailure::kRevoked;
        state->verdict.detail = Cat("peer certificate revoked (CRL ", crls->path(), "): ", *revoked);
        crls->CountRejection(ctx->role());
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REVOKED);
        return 0;
      }
    }
  }
  state->verdict = CheckPeerIdentity(leaf, ctx->role(), ctx->trust_domain(), state->expected);
  if (state->verdict.failure != TlsFailure::kNone) {
    X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

Status ConfigureProtocol(SSL_CTX* ctx, const TlsOptions& options) {
  const int min_version = options.allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kCipherSuites13) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return OpensslError("configuring TLS versions, suites and groups");
  }
  if (options.allow_tls12 && SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1) {
    return OpensslError("configuring TLS 1.2 ciphers");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  // Our own chain is exactly leaf + intermediates; never add the root.
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  return absl::OkStatus();
}

Status ConfigureCredentials(SSL_CTX* ctx, identity::LoadedBundle& loaded) {
  if (SSL_CTX_use_certificate(ctx, loaded.leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, loaded.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return OpensslError("installing workload certificate and key");
  }
  for (identity::X509Ptr& c : loaded.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
      return OpensslError("installing intermediate certificate");
    }
  }
  SSL_CTX_set_cert_store(ctx, loaded.roots.release());  // ctx takes ownership
  return absl::OkStatus();
}

StatusOr<std::shared_ptr<const TlsContext>> MakeContext(TlsRole role,
                                                        const identity::CertBundle& bundle,
                                                        const TlsOptions& options) {
  ASSIGN_OR_RETURN(identity::LoadedBundle loaded, identity::LoadBundle(bundle));
  const bool server = role == TlsRole::kServer;
  identity::SslCtxPtr ssl_ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ssl_ctx) return OpensslError("creating SSL_CTX");
  RETURN_IF_ERROR(ConfigureProtocol(ssl_ctx.get(), options));
  RETURN_IF_ERROR(ConfigureCredentials(ssl_ctx.get(), loaded));
  if (server) {
    SSL_CTX_set_verify(ssl_ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_alpn_select_cb(ssl_ctx.get(), SelectAlpn, nullptr);
  } else {
    SSL_CTX_set_verify(ssl_ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_set_alpn_protos(ssl_ctx.get(), kAlpnH2, sizeof(kAlpnH2)) != 0) {
      return OpensslError("setting ALPN");
    }
  }
  auto counters = options.counters ? options.counters : std::make_shared<RejectionCounters>();
  auto ctx =
      std::make_shared<const TlsContext>(role, std::move(ssl_ctx), std::move(loaded.identity),
                                         std::move(counters), options.trust_domain, options.crls);
  SSL_CTX_set_cert_verify_callback(ctx->ssl_ctx(), VerifyPeer, const_cast<TlsContext*>(ctx.get()));
  return ctx;
}

}  // namespace

TlsContext::TlsContext(TlsRole role, identity::SslCtxPtr ctx, identity::Identity local,
                       std::shared_ptr<RejectionCounters> counters, std::string trust_domain,
                       std::shared_ptr<CrlStore> crls)
    : role_(role),
      ctx_(std::move(ctx)),
      local_(std::move(local)),
      counters_(std::move(counters)),
      trust_domain_(std::move(trust_domain)),
      crls_(std::move(crls)) {
  if (trust_domain_.empty()) trust_domain_ = local_.trust_domain();
}

StatusOr<std::shared_ptr<const TlsContext>> MakeServerContext(const identity::CertBundle& bundle,
                                                              const TlsOptions& options) {
  return MakeContext(TlsRole::kServer, bundle, options);
}

StatusOr<std::shared_ptr<const TlsContext>> MakeClientContext(const identity::CertBundle& bundle,
                                                              const TlsOptions& options) {
  return MakeContext(TlsRole::kClient, bundle, options);
}

}  // namespace ambit::tls
