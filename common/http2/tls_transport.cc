#include "common/http2/tls_transport.h"

#include <fmt/format.h>

#include "common/base/error.h"
#include "common/net/socket.h"

namespace ambit::http2 {

namespace {

using base::ErrorReason;
using base::WithReason;

io::Task<void> CloseFdTask(io::Loop& loop, int fd) { (void)co_await loop.Close(fd); }

}  // namespace

TlsTransport::TlsTransport(io::Loop& loop, net::Fd fd, std::unique_ptr<tls::TlsEngine> engine,
                           size_t read_buffer)
    : loop_(loop),
      fd_(std::move(fd)),
      engine_(std::move(engine)),
      read_buffer_(read_buffer),
      pbuf_(std::make_unique_for_overwrite<std::byte[]>(read_buffer)) {
  if (auto p = net::PeerAddress(fd_.get()); p.ok()) peer_ = *p;
  if (auto l = net::LocalAddress(fd_.get()); l.ok()) local_ = *l;
}

TlsTransport::~TlsTransport() { Release(); }

void TlsTransport::Release() {
  if (fd_.valid()) loop_.Spawn(CloseFdTask(loop_, fd_.Release()));
}

io::Task<Status> TlsTransport::Handshake(base::Duration timeout, io::CancelScope& scope) {
  const base::MonoTime deadline = loop_.Now() + timeout;
  const std::string peer = peer_.ToString();
  for (;;) {
    tls::HandshakeState hs = engine_->Handshake();
    // Alerts and handshake records go out before we judge the result.
    while (!engine_->PendingCiphertext().empty()) {
      tls::ByteQueue out;
      engine_->TakeCiphertext(out);
      Status sent = co_await io::SendAll(loop_, fd_.get(), out.Readable(), {.scope = &scope});
      if (!sent.ok()) co_return WithReason(sent, ErrorReason::kTlsHandshake);
    }
    if (hs == tls::HandshakeState::kDone) break;
    if (hs == tls::HandshakeState::kFailed) {
      co_return WithReason(engine_->error(), ErrorReason::kTlsHandshake);
    }
    base::Duration left = deadline - loop_.Now();
    if (left <= base::Duration(0)) {
      co_return WithReason(
          absl::DeadlineExceededError(fmt::format(
              "TLS handshake with {} timed out after {}s", peer,
              std::chrono::duration_cast<std::chrono::seconds>(timeout).count())),
          ErrorReason::kTlsTimeout);
    }
    auto n = co_await loop_.Recv(fd_.get(), engine_->CiphertextInputBuffer(read_buffer_),
                                 {.scope = &scope, .timeout = left});
    if (!n.ok()) {
      if (absl::IsDeadlineExceeded(n.status())) {
        co_return WithReason(
            absl::DeadlineExceededError(fmt::format("TLS handshake with {} timed out", peer)),
            ErrorReason::kTlsTimeout);
      }
      co_return WithReason(n.status(), ErrorReason::kTlsHandshake);
    }
    if (*n == 0) {
      co_return WithReason(
          absl::UnavailableError(fmt::format(
              "{} closed the connection during the TLS handshake (did it reject our certificate?)",
              peer)),
          ErrorReason::kTlsHandshake);
    }
    engine_->CommitCiphertextInput(*n);
  }
  if (engine_->alpn() != "h2") {
    co_return WithReason(absl::FailedPreconditionError(fmt::format(
                             "{} did not negotiate ALPN h2 (got '{}')", peer, engine_->alpn())),
                         ErrorReason::kTlsHandshake);
  }
  co_return absl::OkStatus();
}

io::Task<StatusOr<std::span<const std::byte>>> TlsTransport::Read(io::CancelScope& scope) {
  for (;;) {
    tls::ReadResult r = engine_->ReadPlaintext(pspan());
    switch (r.state) {
      case tls::ReadState::kData:
        co_return std::span<const std::byte>(pbuf_.get(), r.bytes);
      case tls::ReadState::kClosed:
        co_return std::span<const std::byte>();  // close_notify
      case tls::ReadState::kFailed:
        co_return WithReason(
            engine_->error().ok() ? absl::DataLossError("TLS read failed") : engine_->error(),
            ErrorReason::kConnClosed);
      case tls::ReadState::kNeedMore:
        break;
    }
    // Straight into the engine's input queue (no copy): nothing else touches
    // that queue while this read is outstanding (one Read at a time).
    auto n = co_await loop_.Recv(fd_.get(), engine_->CiphertextInputBuffer(read_buffer_),
                                 {.scope = &scope});
    if (!n.ok()) co_return WithReason(n.status(), ErrorReason::kConnClosed);
    if (*n == 0) co_return std::span<const std::byte>();
    engine_->CommitCiphertextInput(*n);
  }
}

Status TlsTransport::Stage(std::span<const std::byte> bytes) {
  return engine_->WritePlaintext(bytes);
}

size_t TlsTransport::staged() const { return engine_->PendingCiphertext().size(); }

io::Task<Status> TlsTransport::Flush(io::CancelScope& scope) {
  while (!engine_->PendingCiphertext().empty()) {
    // The kernel reads from wq_ until the send completes while the engine may
    // append records: swap buffers instead of copying.
    engine_->TakeCiphertext(wq_);
    Status sent = co_await io::SendAll(loop_, fd_.get(), wq_.Readable(), {.scope = &scope});
    wq_.Consume(wq_.size());
    if (!sent.ok()) co_return WithReason(sent, ErrorReason::kConnClosed);
  }
  co_return absl::OkStatus();
}

void TlsTransport::Shutdown() { engine_->Shutdown(); }

}  // namespace ambit::http2
