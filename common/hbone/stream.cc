#include "common/hbone/stream.h"

#include <fmt/format.h>

#include "common/hbone/conn.h"

namespace ambit::hbone {

HboneStream::HboneStream(std::shared_ptr<HboneConn> conn, http2::H2StreamId id)
    : conn_(std::move(conn)),
      id_(id),
      readable_(conn_->loop()),
      writable_(conn_->loop()),
      headers_ready_(conn_->loop()),
      closed_notifier_(conn_->loop()) {}

HboneStream::~HboneStream() {
  // A final non-200 response ends the stream by itself (H2Conn resets it
  // after the HEADERS went out); resetting here would discard the response.
  if (!closed_ && !final_response_ && !conn_->closed()) {
    (void)conn_->h2().Reset(id_, http2::kH2Cancel);
  }
  conn_->Detach(id_);
}

Status HboneStream::Respond(int status, const http2::H2Headers& headers) {
  if (closed_) return error_.ok() ? absl::UnavailableError("stream closed") : error_;
  Status st = conn_->h2().SubmitResponse(id_, status, headers, /*end_stream=*/status != 200);
  if (status != 200) final_response_ = true;
  conn_->KickWriter();
  return st;
}

io::Task<StatusOr<http2::H2Headers>> HboneStream::AwaitResponse(io::OpOptions o) {
  for (;;) {
    if (response_.has_value()) co_return std::move(*response_);  // awaited once, by Open()
    if (!error_.ok()) co_return error_;
    if (closed_ || end_received_) {
      co_return absl::UnavailableError("HBONE stream ended before a response arrived");
    }
    Status st = co_await headers_ready_.Wait(o);
    if (!st.ok()) {
      if (absl::IsDeadlineExceeded(st)) {
        co_return absl::DeadlineExceededError("no CONNECT response from the peer in time");
      }
      co_return st;
    }
  }
}

io::Task<StatusOr<std::span<const std::byte>>> HboneStream::Peek(io::OpOptions o) {
  for (;;) {
    if (ooff_ < out_.size()) {
      co_return std::span<const std::byte>(out_.data() + ooff_, out_.size() - ooff_);
    }
    if (!rbuf_.empty()) {
      // Hand out what was received; new bytes land in the other buffer, so
      // the span stays valid while the caller's send is in flight.
      out_.clear();
      ooff_ = 0;
      std::swap(out_, rbuf_);
      continue;
    }
    if (!error_.ok()) co_return error_;
    if (end_received_) co_return std::span<const std::byte>();
    // Nothing buffered: an idle stream keeps no receive memory.
    if (out_.capacity() != 0) std::vector<std::byte>().swap(out_);
    if (rbuf_.capacity() != 0) std::vector<std::byte>().swap(rbuf_);
    Status st = co_await readable_.Wait(o);
    if (!st.ok()) co_return st;
  }
}

void HboneStream::Consume(size_t n) {
  ooff_ += n;
  if (ooff_ >= out_.size()) {
    out_.clear();
    ooff_ = 0;
  }
  if (!closed_ && !conn_->closed()) {
    (void)conn_->h2().Consume(id_, n);
    conn_->KickWriter();
  }
}

io::Task<Status> HboneStream::Write(std::span<const std::byte> bytes, io::OpOptions o) {
  if (!error_.ok()) co_return error_;
  if (closed_ || write_closed_) co_return absl::FailedPreconditionError("HBONE stream not writable");
  Status st = conn_->h2().Write(id_, bytes);
  if (!st.ok()) co_return st;
  bytes_sent_ += bytes.size();
  conn_->KickWriter();
  const size_t high = conn_->options().stream_high_water;
  while (!closed_ && error_.ok() && conn_->h2().QueuedBytes(id_) > high) {
    Status w = co_await writable_.Wait(o);
    if (!w.ok()) co_return w;
  }
  co_return error_;
}

io::Task<Status> HboneStream::AwaitClosed(io::OpOptions o) {
  while (!closed_) {
    Status st = co_await closed_notifier_.Wait(o);
    if (!st.ok()) co_return st;
  }
  co_return error_;
}

void HboneStream::CloseWrite() {
  if (write_closed_ || closed_ || conn_->closed()) return;
  write_closed_ = true;
  (void)conn_->h2().CloseWrite(id_);
  conn_->KickWriter();
}

void HboneStream::Reset(uint32_t error_code) {
  if (closed_) return;
  if (!conn_->closed()) {
    (void)conn_->h2().Reset(id_, error_code);
    conn_->KickWriter();
  }
  if (error_.ok()) error_ = absl::AbortedError("HBONE stream reset locally");
  closed_ = true;
  readable_.Notify();
  writable_.Notify();
  headers_ready_.Notify();
  closed_notifier_.Notify();
}

void HboneStream::OnHeaders(const http2::H2Headers& headers) {
  response_ = headers;
  headers_ready_.Notify();
}

void HboneStream::OnData(std::span<const std::byte> data) {
  rbuf_.insert(rbuf_.end(), data.begin(), data.end());
  bytes_received_ += data.size();
  readable_.Notify();
}

void HboneStream::OnEnd() {
  end_received_ = true;
  readable_.Notify();
  headers_ready_.Notify();
}

void HboneStream::OnReset(uint32_t error_code) {
  // ISTIO-COMPAT §2.5: NO_ERROR and CANCEL read as a clean EOF; anything
  // else (e.g. CONNECT_ERROR after the peer's TCP was reset) is an error
  // that the relay turns into a TCP RST.
  if (error_code == http2::kH2NoError || error_code == http2::kH2Cancel) {
    end_received_ = true;
  } else if (error_.ok()) {
    error_ = absl::UnavailableError(
        fmt::format("HBONE stream reset by peer (HTTP/2 error code {:#x})", error_code));
  }
  readable_.Notify();
  writable_.Notify();
  headers_ready_.Notify();
  closed_notifier_.Notify();
}

void HboneStream::OnClosed(uint32_t error_code) {
  closed_ = true;
  if (error_code != http2::kH2NoError && error_code != http2::kH2Cancel && error_.ok() &&
      !end_received_) {
    error_ = absl::UnavailableError(
        fmt::format("HBONE stream closed with HTTP/2 error code {:#x}", error_code));
  }
  end_received_ = true;
  readable_.Notify();
  writable_.Notify();
  headers_ready_.Notify();
  closed_notifier_.Notify();
}

void HboneStream::OnDrained(size_t queued) {
  if (queued <= conn_->options().stream_low_water) writable_.Notify();
}

void HboneStream::OnConnClosed(const Status& reason) {
  if (error_.ok() && !(closed_ && end_received_)) {
    error_ = reason.ok() ? absl::UnavailableError("HBONE connection closed") : reason;
  }
  closed_ = true;
  readable_.Notify();
  writable_.Notify();
  headers_ready_.Notify();
  closed_notifier_.Notify();
}

}  // namespace ambit::hbone
