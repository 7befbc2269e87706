#include "common/http2/session_stream.h"

#include <fmt/format.h>

#include "common/base/error.h"
#include "common/http2/session.h"

namespace ambit::http2 {

namespace {
using base::ErrorReason;
using base::WithReason;
}  // namespace

SessionStream::SessionStream(std::shared_ptr<Session> session, H2StreamId id)
    : session_(std::move(session)),
      id_(id),
      readable_(session_->loop()),
      writable_(session_->loop()),
      headers_ready_(session_->loop()),
      closed_notifier_(session_->loop()) {}

SessionStream::~SessionStream() {
  if (!closed_ && !session_->closed()) {
    if (ended_by_us_) {
      // Our END_STREAM (a final response, or trailers) is queued: the stream
      // ends once it is out; a peer still sending is told to stop then
      // (RFC 9113 §8.1) instead of losing our response to a reset now.
      session_->h2().ResetAfterEnd(id_);
    } else {
      (void)session_->h2().Reset(id_, kH2Cancel);
    }
    session_->KickWriter();
  }
  session_->Detach(id_);
}

void SessionStream::WakeAll() {
  readable_.Notify();
  writable_.Notify();
  headers_ready_.Notify();
  closed_notifier_.Notify();
}

Status SessionStream::Respond(int status, const H2Headers& headers, bool end_stream) {
  if (closed_) return error_.ok() ? absl::UnavailableError("stream closed") : error_;
  Status st = session_->h2().SubmitResponse(id_, status, headers, end_stream);
  if (end_stream && st.ok()) {
    write_closed_ = true;
    ended_by_us_ = true;
  }
  session_->KickWriter();
  return st;
}

io::Task<StatusOr<H2Headers>> SessionStream::AwaitHeaders(io::OpOptions o) {
  for (;;) {
    if (response_.has_value() && !response_taken_) {
      response_taken_ = true;
      co_return std::move(*response_);  // awaited once
    }
    if (!error_.ok()) co_return error_;
    if (closed_ || end_received_) {
      co_return WithReason(absl::UnavailableError("stream ended before a response arrived"),
                           ErrorReason::kStreamRefused);
    }
    Status st = co_await headers_ready_.Wait(o);
    if (!st.ok()) {
      if (absl::IsDeadlineExceeded(st)) {
        co_return WithReason(absl::DeadlineExceededError("no response from the peer in time"),
                             ErrorReason::kResponseTimeout);
      }
      co_return st;
    }
  }
}

io::Task<StatusOr<std::span<const std::byte>>> SessionStream::Peek(io::OpOptions o) {
  for (;;) {
    // The first contiguous run (at most one 64 KiB block): bytes that arrive
    // meanwhile go behind it, so the span stays valid while the caller's send
    // is in flight.
    if (!inbox_.empty()) co_return inbox_.Front();
    if (!error_.ok()) co_return error_;
    if (end_received_) co_return std::span<const std::byte>();
    Status st = co_await readable_.Wait(o);
    if (!st.ok()) co_return st;
  }
}

void SessionStream::Consume(size_t n) {
  inbox_.Consume(n);  // drained blocks go back to the worker's pool
  if (!closed_ && !session_->closed()) {
    (void)session_->h2().Consume(id_, n);
    session_->KickWriter();
  }
}

io::Task<Status> SessionStream::Write(std::span<const std::byte> bytes, io::OpOptions o) {
  if (!error_.ok()) co_return error_;
  if (closed_ || write_closed_) {
    co_return absl::FailedPreconditionError("HTTP/2 stream not writable");
  }
  Status st = session_->h2().Write(id_, bytes);
  if (!st.ok()) co_return st;
  bytes_sent_ += bytes.size();
  session_->KickWriter();
  const size_t high = session_->options().stream_high_water;
  while (!closed_ && error_.ok() && session_->h2().QueuedBytes(id_) > high) {
    Status w = co_await writable_.Wait(o);
    if (!w.ok()) co_return w;
  }
  co_return error_;
}

io::Task<Status> SessionStream::AwaitClosed(io::OpOptions o) {
  while (!closed_) {
    Status st = co_await closed_notifier_.Wait(o);
    if (!st.ok()) co_return st;
  }
  co_return error_;
}

void SessionStream::CloseWrite() {
  if (write_closed_ || closed_ || session_->closed()) return;
  write_closed_ = true;
  ended_by_us_ = true;
  (void)session_->h2().CloseWrite(id_);
  session_->KickWriter();
}

Status SessionStream::SendTrailers(const H2Headers& trailers) {
  if (write_closed_ || closed_ || session_->closed()) {
    return absl::FailedPreconditionError("HTTP/2 stream not writable");
  }
  Status st = session_->h2().SubmitTrailers(id_, trailers);
  if (st.ok()) {
    write_closed_ = true;
    ended_by_us_ = true;
  }
  session_->KickWriter();
  return st;
}

void SessionStream::Reset(uint32_t error_code) {
  if (closed_) return;
  if (!session_->closed()) {
    (void)session_->h2().Reset(id_, error_code);
    session_->KickWriter();
  }
  if (error_.ok()) {
    error_ = WithReason(absl::AbortedError("HTTP/2 stream reset locally"), ErrorReason::kCancelled);
  }
  closed_ = true;
  WakeAll();
}

void SessionStream::OnHeaders(const H2Headers& headers) {
  response_ = headers;
  headers_ready_.Notify();
}

void SessionStream::OnTrailers(const H2Headers& trailers) {
  trailers_ = trailers;
  readable_.Notify();
}

void SessionStream::OnData(std::span<const std::byte> data) {
  inbox_.Append(data);
  bytes_received_ += data.size();
  readable_.Notify();
}

void SessionStream::OnEnd() {
  end_received_ = true;
  readable_.Notify();
  headers_ready_.Notify();
}

void SessionStream::OnReset(uint32_t error_code) {
  // ISTIO-COMPAT §2.5: NO_ERROR and CANCEL read as a clean EOF; anything
  // else (e.g. CONNECT_ERROR after the peer's TCP was reset) is an error
  // that the relay turns into a TCP RST. REFUSED_STREAM means the peer never
  // processed the stream: safe to retry (RFC 9113 §8.7); so is a stream it
  // ended without answering (AwaitHeaders reports kStreamRefused).
  if (error_code == kH2NoError || error_code == kH2Cancel) {
    end_received_ = true;
  } else if (error_.ok()) {
    error_ = WithReason(
        absl::UnavailableError(fmt::format("stream reset by peer (HTTP/2 error code {:#x})",
                                           error_code)),
        error_code == kH2RefusedStream ? ErrorReason::kStreamRefused : ErrorReason::kStreamReset);
  }
  WakeAll();
}

void SessionStream::OnClosed(uint32_t error_code) {
  closed_ = true;
  if (error_code != kH2NoError && error_code != kH2Cancel && error_.ok() && !end_received_) {
    error_ = WithReason(
        absl::UnavailableError(
            fmt::format("stream closed with HTTP/2 error code {:#x}", error_code)),
        error_code == kH2RefusedStream ? ErrorReason::kStreamRefused : ErrorReason::kStreamReset);
  }
  end_received_ = true;
  WakeAll();
}

void SessionStream::OnDrained(size_t queued) {
  if (queued <= session_->options().stream_low_water) writable_.Notify();
}

void SessionStream::OnConnClosed(const Status& reason) {
  if (error_.ok() && !(closed_ && end_received_)) {
    Status r = reason.ok() ? absl::UnavailableError("HTTP/2 connection closed") : reason;
    // A stream the peer never answered, on a connection that ended: safe to
    // retry elsewhere (the peer processed nothing of it, or went away).
    const bool unanswered = !response_.has_value() && !bytes_received_;
    error_ = WithReason(r, unanswered && session_->h2().role() == H2Role::kClient
                               ? ErrorReason::kStreamRefused
                               : base::ReasonOf(r) == ErrorReason::kNone ? ErrorReason::kConnClosed
                                                                         : base::ReasonOf(r));
  }
  closed_ = true;
  WakeAll();
}

}  // namespace ambit::http2
