#include "common/tls/engine.h"

#include <openssl/err.h>

#include <climits>

#include "common/identity/cat.h"

namespace ambit::tls {
using identity::Cat;
namespace {

using identity::DrainOpensslErrors;

bool IsPeerAlert(unsigned long err) {  // NOLINT(runtime/int): OpenSSL's type
  // SSL_R_SSLV3_ALERT_* and SSL_R_TLSV1_ALERT_* reasons are 1000 + alert code.
  return ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) >= SSL_AD_REASON_OFFSET;
}

}  // namespace

TlsEngine::TlsEngine(std::shared_ptr<const TlsContext> ctx,
                     std::vector<identity::Identity> expected)
    : ctx_(std::move(ctx)) {
  state_.expected = std::move(expected);
}

StatusOr<std::unique_ptr<TlsEngine>> TlsEngine::NewServer(std::shared_ptr<const TlsContext> ctx) {
  if (!ctx || ctx->role() != TlsRole::kServer) {
    return absl::InvalidArgumentError("TlsEngine::NewServer needs a server TlsContext");
  }
  std::unique_ptr<TlsEngine> e(new TlsEngine(std::move(ctx), {}));
  RETURN_IF_ERROR(e->Init());
  return e;
}

StatusOr<std::unique_ptr<TlsEngine>> TlsEngine::NewClient(
    std::shared_ptr<const TlsContext> ctx, std::vector<identity::Identity> expected) {
  if (!ctx || ctx->role() != TlsRole::kClient) {
    return absl::InvalidArgumentError("TlsEngine::NewClient needs a client TlsContext");
  }
  if (expected.empty()) {
    return absl::InvalidArgumentError(
        "TlsEngine::NewClient: no expected server identity (destination has no identity?)");
  }
  std::unique_ptr<TlsEngine> e(new TlsEngine(std::move(ctx), std::move(expected)));
  RETURN_IF_ERROR(e->Init());
  return e;
}

Status TlsEngine::Init() {
  ssl_.reset(SSL_new(ctx_->ssl_ctx()));
  if (!ssl_) return identity::OpensslError("SSL_new");
  BIO* bio = NewQueueBio(&queues_);
  if (bio == nullptr) return identity::OpensslError("creating memory BIO");
  SSL_set_bio(ssl_.get(), bio, bio);  // one BIO for both directions; SSL owns it
  SSL_set_app_data(ssl_.get(), &state_);
  if (ctx_->role() == TlsRole::kServer) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
  return absl::OkStatus();
}

void TlsEngine::FeedCiphertext(std::span<const std::byte> data) {
  queues_.in.Append(data.data(), data.size());
}

HandshakeState TlsEngine::Fail(TlsFailure f, std::string_view detail) {
  if (failure_ == TlsFailure::kNone) {
    failure_ = f;
    ctx_->counters().Add(f);
    const char* side = ctx_->role() == TlsRole::kServer ? "inbound" : "outbound";
    error_ = absl::PermissionDeniedError(Cat(side, " TLS handshake rejected (", TlsFailureName(f),
                                             "): ", detail, "; ", TlsFailureHint(f)));
  }
  return HandshakeState::kFailed;
}

HandshakeState TlsEngine::FailFromSsl(int ret) {
  const int err = SSL_get_error(ssl_.get(), ret);
  const unsigned long first = ERR_peek_error();  // NOLINT(runtime/int)
  std::string detail = DrainOpensslErrors();
  if (state_.verdict.failure != TlsFailure::kNone) {
    return Fail(state_.verdict.failure, state_.verdict.detail);
  }
  if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
      ERR_GET_REASON(first) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    return Fail(TlsFailure::kNoPeerCert, detail);
  }
  if (ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_NO_APPLICATION_PROTOCOL) {
    return Fail(TlsFailure::kAlpnMismatch, detail);
  }
  if (IsPeerAlert(first)) return Fail(TlsFailure::kPeerAlert, detail);
  if (detail.empty()) detail = Cat("SSL error ", err);
  return Fail(TlsFailure::kProtocol, detail);
}

HandshakeState TlsEngine::FinishHandshake() {
  if (alpn() != "h2") {
    return Fail(TlsFailure::kAlpnMismatch,
                Cat("negotiated ALPN is '", alpn(), "', HBONE needs 'h2'"));
  }
  if (!state_.verdict.peer) {
    return Fail(TlsFailure::kNoPeerCert, "handshake finished without a verified peer");
  }
  peer_ = state_.verdict.peer;
  done_ = true;
  return HandshakeState::kDone;
}

HandshakeState TlsEngine::Handshake() {
  if (done_) return HandshakeState::kDone;
  if (failure_ != TlsFailure::kNone) return HandshakeState::kFailed;
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) return FinishHandshake();
  const int err = SSL_get_error(ssl_.get(), ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return HandshakeState::kNeedMore;
  }
  return FailFromSsl(ret);
}

ReadResult TlsEngine::ReadPlaintext(std::span<std::byte> out) {
  if (!done_) {
    if (failure_ == TlsFailure::kNone) {
      error_ = absl::FailedPreconditionError("ReadPlaintext before the handshake completed");
    }
    return {ReadState::kFailed, 0};
  }
  size_t total = 0;
  while (total < out.size()) {
    ERR_clear_error();
    size_t n = 0;
    const int ret = SSL_read_ex(ssl_.get(), out.data() + total, out.size() - total, &n);
    if (ret == 1) {
      total += n;
      continue;
    }
    if (total > 0) break;  // report data first; the condition repeats next call
    const int err = SSL_get_error(ssl_.get(), ret);
    if (err == SSL_ERROR_WANT_READ) return {ReadState::kNeedMore, 0};
    if (err == SSL_ERROR_ZERO_RETURN) return {ReadState::kClosed, 0};
    FailFromSsl(ret);
    return {ReadState::kFailed, 0};
  }
  return {ReadState::kData, total};
}

Status TlsEngine::WritePlaintext(std::span<const std::byte> data) {
  if (!done_) return absl::FailedPreconditionError("WritePlaintext before the handshake completed");
  if (data.empty()) return absl::OkStatus();
  ERR_clear_error();
  size_t written = 0;
  // The queue BIO never blocks, so one call encrypts everything.
  if (SSL_write_ex(ssl_.get(), data.data(), data.size(), &written) != 1 || written != data.size()) {
    return identity::OpensslError("TLS write failed");
  }
  return absl::OkStatus();
}

void TlsEngine::Shutdown() {
  ERR_clear_error();
  if (done_) SSL_shutdown(ssl_.get());  // queues close_notify; never waits
  ERR_clear_error();
}

std::string_view TlsEngine::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &len);
  return data == nullptr ? std::string_view()
                         : std::string_view(reinterpret_cast<const char*>(data), len);
}

}  // namespace ambit::tls

namespace ambit::tls {

std::string_view TlsEngine::protocol_version() const { return SSL_get_version(ssl_.get()); }

std::string_view TlsEngine::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_.get());
  return c != nullptr ? SSL_CIPHER_get_name(c) : "";
}

}  // namespace ambit::tls
