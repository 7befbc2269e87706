#include "common/http2/session.h"

#include "common/base/error.h"
#include "common/base/log.h"
#include "common/http2/session_stream.h"

namespace ambit::http2 {

namespace {
using base::ErrorReason;
using base::WithReason;
constexpr size_t kWriteBatch = 256 << 10;
}  // namespace

Session::Session(io::Loop& loop, std::unique_ptr<Transport> transport, SessionOptions options)
    : loop_(loop), transport_(std::move(transport)), options_(options), writer_wake_(loop) {
  last_used_ = loop_.Now();
}

Session::~Session() {
  // Tasks hold a reference while they run, so none is left here.
  if (transport_) transport_->Release();
}

StatusOr<std::shared_ptr<Session>> Session::Start(io::Loop& loop,
                                                  std::unique_ptr<Transport> transport,
                                                  H2Role role, SessionOptions options,
                                                  StreamHandler handler) {
  std::shared_ptr<Session> s(new Session(loop, std::move(transport), options));
  auto h2 = H2Conn::Create(role, s->options_.h2, *s, loop.clock());
  if (!h2.ok()) return WithReason(h2.status(), ErrorReason::kH2Setup);
  s->h2_ = std::move(*h2);
  s->handler_ = std::move(handler);
  s->StartTasks();
  return s;
}

void Session::StartTasks() {
  tasks_running_ = 3;
  auto self = shared_from_this();
  loop_.Spawn(ReaderLoop(self));
  loop_.Spawn(WriterLoop(self));
  loop_.Spawn(TickLoop(self));
}

Status Session::PumpOutput() {
  while (transport_->staged() < kWriteBatch) {
    auto out = h2_->PendingOutput();
    if (out.empty()) break;
    RETURN_IF_ERROR(transport_->Stage(out));
    h2_->ConsumeOutput(out.size());
  }
  return absl::OkStatus();
}

io::Task<void> Session::ReaderLoop(std::shared_ptr<Session> self) {
  Status st;
  while (!self->closed_) {
    auto chunk = co_await self->transport_->Read(self->scope_);
    if (!chunk.ok()) {
      st = chunk.status();
      break;
    }
    if (chunk->empty()) {
      st = WithReason(absl::CancelledError("peer closed the connection"), ErrorReason::kConnClosed);
      break;
    }
    st = self->h2_->Feed(*chunk);
    self->KickWriter();
    if (!st.ok()) {
      st = WithReason(st, ErrorReason::kH2Protocol);
      break;
    }
  }
  if (!self->closed_) self->Close(st);
  self->TaskEnded();
}

io::Task<void> Session::WriterLoop(std::shared_ptr<Session> self) {
  for (;;) {
    Status st = self->PumpOutput();
    if (!st.ok()) {
      self->Close(st);
      break;
    }
    if (self->transport_->staged() > 0) {
      Status sent = co_await self->transport_->Flush(self->scope_);
      if (!sent.ok()) {
        self->Close(sent);
        break;
      }
      continue;
    }
    if (self->closed_) break;
    if (self->draining_ && self->streams_.empty() && !self->h2_->WantsWrite()) {
      if (!self->shutdown_sent_) {
        // Graceful end: GOAWAY went out; finish the transport properly.
        self->shutdown_sent_ = true;
        self->transport_->Shutdown();
        Status sent = co_await self->transport_->Flush(self->scope_);
        if (!sent.ok()) {
          self->Close(sent);
          break;
        }
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

io::Task<void> Session::TickLoop(std::shared_ptr<Session> self) {
  while (!self->closed_) {
    Status st =
        co_await self->loop_.SleepUntil(self->h2_->NextTickDeadline(), {.scope = &self->scope_});
    if (!st.ok() || self->closed_) break;
    st = self->h2_->OnTick(self->loop_.Now());
    self->KickWriter();
    if (!st.ok()) {
      AMBIT_LOG(kWarn, "http2", "HTTP/2 connection to {} is dead: {}",
                self->peer_address().ToString(), st.ToString());
      self->Close(WithReason(st, ErrorReason::kConnClosed));
      break;
    }
  }
  self->TaskEnded();
}

void Session::TaskEnded() {
  if (--tasks_running_ == 0 && transport_) transport_->Release();
}

void Session::Close(Status reason) {
  if (closed_) return;
  closed_ = true;
  if (reason.ok()) reason = absl::CancelledError("HTTP/2 connection closed");
  if (base::ReasonOf(reason) == ErrorReason::kNone) {
    reason = WithReason(reason, ErrorReason::kConnClosed);
  }
  close_reason_ = reason;
  std::vector<SessionStream*> streams;
  streams.reserve(streams_.size());
  for (auto& [id, s] : streams_) streams.push_back(s);
  streams_.clear();
  for (SessionStream* s : streams) s->OnConnClosed(reason);
  scope_.Cancel();
  writer_wake_.Notify();
  if (on_closed_) {
    auto fn = std::move(on_closed_);
    on_closed_ = nullptr;
    fn(this);
  }
}

void Session::Drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  if (h2_) (void)h2_->GoAway();
  KickWriter();
}

bool Session::Usable(size_t max_streams) const {
  if (closed_ || draining_ || !h2_ || !h2_->AcceptsNewStreams()) return false;
  size_t limit = std::min<size_t>(max_streams, h2_->PeerMaxConcurrentStreams());
  return h2_->ActiveStreams() < limit;
}

void Session::Detach(H2StreamId id) {
  // Idle time counts from the end of the last stream, not from its start.
  if (streams_.erase(id) != 0) last_used_ = loop_.Now();
  KickWriter();
}

SessionStream* Session::Find(H2StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

StatusOr<std::unique_ptr<SessionStream>> Session::Register(StatusOr<H2StreamId> id) {
  if (!id.ok()) {
    return WithReason(id.status(), absl::IsUnavailable(id.status()) ? ErrorReason::kStreamRefused
                                                                    : ErrorReason::kH2Protocol);
  }
  auto stream = std::make_unique<SessionStream>(shared_from_this(), *id);
  streams_[*id] = stream.get();
  last_used_ = loop_.Now();
  KickWriter();
  return stream;
}

StatusOr<std::unique_ptr<SessionStream>> Session::OpenConnect(std::string_view authority,
                                                              const H2Headers& extra) {
  if (closed_) {
    return WithReason(absl::UnavailableError("HTTP/2 connection is closed"),
                      ErrorReason::kConnClosed);
  }
  return Register(h2_->SubmitConnect(authority, extra));
}

StatusOr<std::unique_ptr<SessionStream>> Session::OpenRequest(const H2Headers& headers,
                                                              bool end_stream) {
  if (closed_) {
    return WithReason(absl::UnavailableError("HTTP/2 connection is closed"),
                      ErrorReason::kConnClosed);
  }
  return Register(h2_->SubmitRequest(headers, end_stream));
}

// ---- H2 events ------------------------------------------------------------

void Session::OnStreamHeaders(H2StreamId id, const H2Headers& headers) {
  if (h2_->role() == H2Role::kClient) {
    if (SessionStream* s = Find(id)) s->OnHeaders(headers);
    return;
  }
  if (closed_ || draining_ || !handler_) {
    (void)h2_->Reset(id, kH2RefusedStream);
    return;
  }
  auto stream = std::make_unique<SessionStream>(shared_from_this(), id);
  streams_[id] = stream.get();
  last_used_ = loop_.Now();
  handler_(std::move(stream), headers);
}

void Session::OnStreamTrailers(H2StreamId id, const H2Headers& trailers) {
  if (SessionStream* s = Find(id)) s->OnTrailers(trailers);
}

void Session::OnStreamData(H2StreamId id, std::span<const std::byte> data) {
  if (SessionStream* s = Find(id)) {
    s->OnData(data);
  } else {
    // Nobody reads this stream any more: return the credit, drop the bytes.
    (void)h2_->Consume(id, data.size());
  }
}

void Session::OnStreamEnd(H2StreamId id) {
  if (SessionStream* s = Find(id)) s->OnEnd();
}

void Session::OnStreamReset(H2StreamId id, uint32_t error_code) {
  if (SessionStream* s = Find(id)) s->OnReset(error_code);
}

void Session::OnStreamClosed(H2StreamId id, uint32_t error_code) {
  if (SessionStream* s = Find(id)) {
    streams_.erase(id);
    last_used_ = loop_.Now();
    s->OnClosed(error_code);
  }
  MaybeFinishDrain();
}

void Session::OnStreamDrained(H2StreamId id, size_t queued) {
  if (SessionStream* s = Find(id)) s->OnDrained(queued);
}

void Session::OnGoAway(uint32_t error_code, H2StreamId last_stream_id) {
  AMBIT_LOG(kDebug, "http2", "GOAWAY from {} (error {}, last stream {})",
            peer_address().ToString(), error_code, last_stream_id);
  if (h2_->role() == H2Role::kClient) draining_ = true;
  MaybeFinishDrain();
}

void Session::MaybeFinishDrain() {
  if (draining_ && streams_.empty()) KickWriter();
}

}  // namespace ambit::http2
