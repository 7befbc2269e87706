#include "common/hbone/conn.h"

#include <fmt/format.h>

#include "common/base/log.h"
#include "common/hbone/authority.h"
#include "common/hbone/connect_codec.h"
#include "common/hbone/stream.h"
#include "common/net/socket.h"

namespace ambit::hbone {

namespace {

io::Task<void> CloseFdTask(io::Loop& loop, int fd) { (void)co_await loop.Close(fd); }

std::string PeerText(int fd) {
  auto peer = net::PeerAddress(fd);
  return peer.ok() ? peer->ToString() : std::string("peer");
}

}  // namespace

HboneConn::HboneConn(io::Loop& loop, net::Fd fd, std::unique_ptr<tls::TlsEngine> tls,
                     ConnOptions options)
    : loop_(loop),
      fd_(std::move(fd)),
      tls_(std::move(tls)),
      options_(options),
      writer_wake_(loop),
      rbuf_(std::make_unique_for_overwrite<std::byte[]>(options.read_buffer)),
      pbuf_(std::make_unique_for_overwrite<std::byte[]>(options.read_buffer)) {
  if (auto p = net::PeerAddress(fd_.get()); p.ok()) peer_ = *p;
  if (auto l = net::LocalAddress(fd_.get()); l.ok()) local_ = *l;
  last_used_ = loop_.Now();
}

HboneConn::~HboneConn() {
  // Tasks hold a reference while they run, so none is left here; the fd was
  // handed to a close task (or never had tasks).
  if (fd_.valid()) loop_.Spawn(CloseFdTask(loop_, fd_.Release()));
}

io::Task<StatusOr<std::shared_ptr<HboneConn>>> HboneConn::Handshake(
    io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx,
    std::vector<identity::Identity> expected, ConnOptions options) {
  auto engine = tls::TlsEngine::NewClient(std::move(ctx), std::move(expected));
  if (!engine.ok()) co_return engine.status();
  std::shared_ptr<HboneConn> conn(new HboneConn(loop, std::move(fd), std::move(*engine), options));
  Status st = co_await conn->DoHandshake();
  if (st.ok()) st = conn->StartH2(http2::H2Role::kClient);
  if (!st.ok()) co_return st;
  conn->StartTasks();
  co_return conn;
}

io::Task<StatusOr<std::shared_ptr<HboneConn>>> HboneConn::Accept(
    io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx, ConnOptions options,
    StreamHandler handler) {
  auto engine = tls::TlsEngine::NewServer(std::move(ctx));
  if (!engine.ok()) co_return engine.status();
  std::shared_ptr<HboneConn> conn(new HboneConn(loop, std::move(fd), std::move(*engine), options));
  conn->handler_ = std::move(handler);
  Status st = co_await conn->DoHandshake();
  if (st.ok()) st = conn->StartH2(http2::H2Role::kServer);
  if (!st.ok()) co_return st;
  conn->StartTasks();
  co_return conn;
}

io::Task<Status> HboneConn::DoHandshake() {
  const base::MonoTime deadline = loop_.Now() + options_.handshake_timeout;
  const int fd = fd_.get();
  for (;;) {
    tls::HandshakeState hs = tls_->Handshake();
    // Alerts and handshake records go out before we judge the result.
    while (!tls_->PendingCiphertext().empty()) {
      tls::ByteQueue out;
      tls_->TakeCiphertext(out);
      Status sent = co_await io::SendAll(loop_, fd, out.Readable(), {.scope = &scope_});
      if (!sent.ok()) co_return sent;
    }
    if (hs == tls::HandshakeState::kDone) break;
    if (hs == tls::HandshakeState::kFailed) co_return tls_->error();
    base::Duration left = deadline - loop_.Now();
    if (left <= base::Duration(0)) {
      co_return absl::DeadlineExceededError(fmt::format(
          "TLS handshake with {} timed out after {}s", PeerText(fd),
          std::chrono::duration_cast<std::chrono::seconds>(options_.handshake_timeout).count()));
    }
    auto n = co_await loop_.Recv(fd, rspan(), {.scope = &scope_, .timeout = left});
    if (!n.ok()) {
      if (absl::IsDeadlineExceeded(n.status())) {
        co_return absl::DeadlineExceededError(
            fmt::format("TLS handshake with {} timed out", PeerText(fd)));
      }
      co_return n.status();
    }
    if (*n == 0) {
      co_return absl::UnavailableError(fmt::format(
          "{} closed the connection during the TLS handshake (did it reject our certificate?)",
          PeerText(fd)));
    }
    tls_->FeedCiphertext(std::span<const std::byte>(rbuf_.get(), *n));
  }
  if (tls_->alpn() != "h2") {
    co_return absl::FailedPreconditionError(
        fmt::format("{} did not negotiate ALPN h2 (got '{}')", PeerText(fd), tls_->alpn()));
  }
  co_return absl::OkStatus();
}

Status HboneConn::StartH2(http2::H2Role role) {
  auto h2 = http2::H2Conn::Create(role, options_.h2, *this, loop_.clock());
  if (!h2.ok()) return h2.status();
  h2_ = std::move(*h2);
  return absl::OkStatus();
}

void HboneConn::StartTasks() {
  tasks_running_ = 3;
  auto self = shared_from_this();
  loop_.Spawn(ReaderLoop(self));
  loop_.Spawn(WriterLoop(self));
  loop_.Spawn(TickLoop(self));
}

Status HboneConn::DrainPlaintext() {
  for (;;) {
    tls::ReadResult r = tls_->ReadPlaintext(pspan());
    switch (r.state) {
      case tls::ReadState::kData:
        RETURN_IF_ERROR(h2_->Feed(std::span<const std::byte>(pbuf_.get(), r.bytes)));
        continue;
      case tls::ReadState::kNeedMore:
        return absl::OkStatus();
      case tls::ReadState::kClosed:
        return absl::CancelledError("peer closed the TLS session (close_notify)");
      case tls::ReadState::kFailed:
        return tls_->error().ok() ? absl::DataLossError("TLS read failed") : tls_->error();
    }
  }
}

Status HboneConn::PumpOutput() {
  constexpr size_t kBatch = 256 << 10;
  while (tls_->PendingCiphertext().size() < kBatch) {
    auto out = h2_->PendingOutput();
    if (out.empty()) break;
    RETURN_IF_ERROR(tls_->WritePlaintext(out));
    h2_->ConsumeOutput(out.size());
  }
  return absl::OkStatus();
}

io::Task<void> HboneConn::ReaderLoop(std::shared_ptr<HboneConn> self) {
  Status st = self->DrainPlaintext();
  self->KickWriter();
  while (st.ok() && !self->closed_) {
    auto n = co_await self->loop_.Recv(self->fd_.get(), self->rspan(), {.scope = &self->scope_});
    if (!n.ok()) {
      st = n.status();
      break;
    }
    if (*n == 0) {
      st = absl::CancelledError("peer closed the connection");
      break;
    }
    self->tls_->FeedCiphertext(std::span<const std::byte>(self->rbuf_.get(), *n));
    st = self->DrainPlaintext();
    self->KickWriter();
  }
  if (!self->closed_) self->Close(st);
  self->TaskEnded();
}

io::Task<void> HboneConn::WriterLoop(std::shared_ptr<HboneConn> self) {
  tls::ByteQueue wq;  // ciphertext being sent; the engine fills the other buffer meanwhile
  for (;;) {
    Status st = self->PumpOutput();
    if (!st.ok()) {
      self->Close(st);
      break;
    }
    if (!self->tls_->PendingCiphertext().empty()) {
      // The kernel reads from wq until the send completes while the engine
      // may append records: swap buffers instead of copying.
      self->tls_->TakeCiphertext(wq);
      Status sent =
          co_await io::SendAll(self->loop_, self->fd_.get(), wq.Readable(), {.scope = &self->scope_});
      wq.Consume(wq.size());
      if (!sent.ok()) {
        self->Close(sent);
        break;
      }
      continue;
    }
    if (self->closed_) break;
    if (self->draining_ && self->streams_.empty() && !self->h2_->WantsWrite()) {
      if (!self->close_notify_sent_) {
        // Graceful end: GOAWAY went out; finish the TLS session properly.
        self->close_notify_sent_ = true;
        self->tls_->Shutdown();
        continue;
      }
      self->Close(absl::OkStatus());
      break;
    }
    Status w = co_await self->writer_wake_.Wait({.scope = &self->scope_});
    if (!w.ok()) break;
  }
  self->TaskEnded();
}

io::Task<void> HboneConn::TickLoop(std::shared_ptr<HboneConn> self) {
  while (!self->closed_) {
    Status st = co_await self->loop_.SleepUntil(self->h2_->NextTickDeadline(), {.scope = &self->scope_});
    if (!st.ok() || self->closed_) break;
    st = self->h2_->OnTick(self->loop_.Now());
    self->KickWriter();
    if (!st.ok()) {
      AMBIT_LOG(kWarn, "hbone", "HBONE connection to {} is dead: {}", self->peer_.ToString(),
                st.ToString());
      self->Close(st);
      break;
    }
  }
  self->TaskEnded();
}

void HboneConn::TaskEnded() {
  if (--tasks_running_ == 0 && fd_.valid()) {
    loop_.Spawn(CloseFdTask(loop_, fd_.Release()));
  }
}

void HboneConn::Close(Status reason) {
  if (closed_) return;
  closed_ = true;
  if (reason.ok()) reason = absl::CancelledError("HBONE connection closed");
  close_reason_ = reason;
  std::vector<HboneStream*> streams;
  streams.reserve(streams_.size());
  for (auto& [id, s] : streams_) streams.push_back(s);
  streams_.clear();
  for (HboneStream* s : streams) s->OnConnClosed(reason);
  scope_.Cancel();
  writer_wake_.Notify();
  if (on_closed_) {
    auto fn = std::move(on_closed_);
    on_closed_ = nullptr;
    fn(this);
  }
}

void HboneConn::Drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  if (h2_) (void)h2_->GoAway();
  KickWriter();
}

bool HboneConn::Usable(size_t max_streams) const {
  if (closed_ || draining_ || !h2_ || !h2_->AcceptsNewStreams()) return false;
  size_t limit = std::min<size_t>(max_streams, h2_->PeerMaxConcurrentStreams());
  return h2_->ActiveStreams() < limit;
}

void HboneConn::Detach(http2::H2StreamId id) {
  // Idle time counts from the end of the last stream, not from its start.
  if (streams_.erase(id) != 0) last_used_ = loop_.Now();
  KickWriter();
}

HboneStream* HboneConn::Find(http2::H2StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

io::Task<StatusOr<std::unique_ptr<HboneStream>>> HboneConn::Open(std::string authority,
                                                                  http2::H2Headers headers,
                                                                  base::Duration timeout) {
  if (closed_) co_return absl::UnavailableError("HBONE connection is closed");
  auto target = ParseAuthority(authority);
  if (!target.ok()) co_return target.status();
  auto id = h2_->SubmitConnect(authority, headers);
  if (!id.ok()) co_return id.status();
  auto stream = std::make_unique<HboneStream>(shared_from_this(), *id);
  streams_[*id] = stream.get();
  last_used_ = loop_.Now();
  KickWriter();
  auto response = co_await stream->AwaitResponse({.timeout = timeout});
  if (!response.ok()) co_return response.status();
  Status st = CheckConnectResponse(*response, *target);
  if (!st.ok()) co_return st;
  co_return stream;
}

// ---- H2 events ------------------------------------------------------------

void HboneConn::OnStreamHeaders(http2::H2StreamId id, const http2::H2Headers& headers) {
  if (h2_->role() == http2::H2Role::kClient) {
    if (HboneStream* s = Find(id)) s->OnHeaders(headers);
    return;
  }
  if (closed_ || draining_ || !handler_) {
    (void)h2_->Reset(id, http2::kH2RefusedStream);
    return;
  }
  auto stream = std::make_unique<HboneStream>(shared_from_this(), id);
  streams_[id] = stream.get();
  last_used_ = loop_.Now();
  handler_(std::move(stream), headers);
}

void HboneConn::OnStreamData(http2::H2StreamId id, std::span<const std::byte> data) {
  if (HboneStream* s = Find(id)) {
    s->OnData(data);
  } else {
    // Nobody reads this stream any more: return the credit, drop the bytes.
    (void)h2_->Consume(id, data.size());
  }
}

void HboneConn::OnStreamEnd(http2::H2StreamId id) {
  if (HboneStream* s = Find(id)) s->OnEnd();
}

void HboneConn::OnStreamReset(http2::H2StreamId id, uint32_t error_code) {
  if (HboneStream* s = Find(id)) s->OnReset(error_code);
}

void HboneConn::OnStreamClosed(http2::H2StreamId id, uint32_t error_code) {
  if (HboneStream* s = Find(id)) {
    streams_.erase(id);
    last_used_ = loop_.Now();
    s->OnClosed(error_code);
  }
  MaybeFinishDrain();
}

void HboneConn::OnStreamDrained(http2::H2StreamId id, size_t queued) {
  if (HboneStream* s = Find(id)) s->OnDrained(queued);
}

void HboneConn::OnGoAway(uint32_t error_code, http2::H2StreamId last_stream_id) {
  AMBIT_LOG(kDebug, "hbone", "GOAWAY from {} (error {}, last stream {})", peer_.ToString(),
            error_code, last_stream_id);
  if (h2_->role() == http2::H2Role::kClient) draining_ = true;
  MaybeFinishDrain();
}

void HboneConn::MaybeFinishDrain() {
  if (draining_ && streams_.empty()) KickWriter();
}

}  // namespace ambit::hbone
