// H2Conn: stream-side API (submit, write, consume, reset) and connection
// control (ping, keepalive, GOAWAY).
#include <nghttp2/nghttp2.h>

#include <string>
#include <utility>

#include "common/base/log.h"
#include "common/http2/h2_callbacks.h"
#include "common/http2/h2_conn.h"

namespace ambit::http2 {

namespace {

std::vector<nghttp2_nv> ToNv(const H2Headers& headers) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const auto& h : headers) {
    nva.push_back(nghttp2_nv{
        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(h.name.data())),
        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(h.value.data())), h.name.size(),
        h.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

Status ValidateHeaders(const H2Headers& headers) {
  for (const auto& h : headers) {
    if (h.name.empty()) return absl::InvalidArgumentError("HTTP/2 header with empty name");
    for (char c : h.name) {
      if (c >= 'A' && c <= 'Z') {
        return absl::InvalidArgumentError("HTTP/2 header name must be lower case: " + h.name);
      }
    }
  }
  return absl::OkStatus();
}

nghttp2_data_provider ProviderFor(H2Stream& stream) {
  nghttp2_data_provider prd;
  prd.source.ptr = &stream;
  prd.read_callback = &H2Callbacks::ReadStreamData;
  return prd;
}

Status NoStream(H2StreamId id) {
  return absl::NotFoundError("HTTP/2 stream " + std::to_string(id) + " is not open");
}

}  // namespace

H2Stream* H2Conn::FindStream(H2StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

H2Stream* H2Conn::CreateStream(H2StreamId id) {
  auto& slot = streams_[id];
  slot = std::make_unique<H2Stream>(id);
  return slot.get();
}

void H2Conn::EraseStream(H2StreamId id) { streams_.erase(id); }

StatusOr<H2StreamId> H2Conn::SubmitConnect(std::string_view authority, const H2Headers& extra) {
  H2Headers headers;
  headers.reserve(extra.size() + 2);
  headers.push_back({":method", "CONNECT"});
  headers.push_back({":authority", std::string(authority)});
  for (const auto& h : extra) {
    if (!h.name.empty() && h.name[0] == ':') {
      return absl::InvalidArgumentError("CONNECT extra headers must not be pseudo headers: " +
                                        h.name);
    }
    headers.push_back(h);
  }
  return SubmitHeadersInternal(headers, /*end_stream=*/false);
}

StatusOr<H2StreamId> H2Conn::SubmitRequest(const H2Headers& headers, bool end_stream) {
  return SubmitHeadersInternal(headers, end_stream);
}

StatusOr<H2StreamId> H2Conn::SubmitHeadersInternal(const H2Headers& headers, bool end_stream) {
  if (role_ != H2Role::kClient) {
    return absl::FailedPreconditionError("only an HTTP/2 client opens streams");
  }
  if (!failure_.ok()) return failure_;
  if (!nghttp2_session_check_request_allowed(session_)) {
    return absl::UnavailableError(
        "HTTP/2 connection does not accept new streams (GOAWAY sent or received)");
  }
  RETURN_IF_ERROR(ValidateHeaders(headers));
  auto stream = std::make_unique<H2Stream>(0);
  std::vector<nghttp2_nv> nva = ToNv(headers);
  nghttp2_data_provider prd = ProviderFor(*stream);
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      end_stream ? nullptr : &prd, nullptr);
  if (id < 0) {
    return absl::UnavailableError(std::string("HTTP/2 request not submitted: ") +
                                  nghttp2_strerror(id));
  }
  stream->id = id;
  stream->has_data_provider = !end_stream;
  stream->write_closed = end_stream;
  streams_[id] = std::move(stream);
  return id;
}

Status H2Conn::SubmitResponse(H2StreamId id, int status, const H2Headers& headers,
                              bool end_stream) {
  if (role_ != H2Role::kServer) {
    return absl::FailedPreconditionError("only an HTTP/2 server sends responses");
  }
  if (status < 100 || status > 999) {
    return absl::InvalidArgumentError("HTTP status out of range: " + std::to_string(status));
  }
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return NoStream(id);
  if (stream->has_data_provider) {
    return absl::FailedPreconditionError("response already sent on stream " + std::to_string(id));
  }
  H2Headers all;
  all.reserve(headers.size() + 1);
  all.push_back({":status", std::to_string(status)});
  all.insert(all.end(), headers.begin(), headers.end());
  RETURN_IF_ERROR(ValidateHeaders(all));
  std::vector<nghttp2_nv> nva = ToNv(all);
  nghttp2_data_provider prd = ProviderFor(*stream);
  int rv = nghttp2_submit_response(session_, id, nva.data(), nva.size(),
                                   end_stream ? nullptr : &prd);
  if (rv != 0) {
    return absl::FailedPreconditionError(std::string("HTTP/2 response not submitted: ") +
                                         nghttp2_strerror(rv));
  }
  stream->has_data_provider = !end_stream;
  if (end_stream) {
    stream->write_closed = true;
    stream->reset_after_end = status >= 300 && !stream->end_received;
  }
  return absl::OkStatus();
}

Status H2Conn::Reset(H2StreamId id, uint32_t error_code) {
  if (FindStream(id) == nullptr) return NoStream(id);
  int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
  if (rv != 0) return absl::InternalError(std::string("RST_STREAM: ") + nghttp2_strerror(rv));
  if (role_ == H2Role::kClient && nghttp2_session_find_stream(session_, id) == nullptr) {
    // Still queued behind the peer's stream limit: nghttp2 cancels the
    // request and will never report the stream, so forget it now.
    EraseStream(id);
  }
  return absl::OkStatus();
}

void H2Conn::ResumeIfDeferred(H2Stream& stream) {
  if (!stream.deferred || !stream.has_data_provider) return;
  stream.deferred = false;
  nghttp2_session_resume_data(session_, stream.id);
}

Status H2Conn::Write(H2StreamId id, std::span<const std::byte> bytes) {
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return NoStream(id);
  if (stream->write_closed) {
    return absl::FailedPreconditionError("write after end of stream " + std::to_string(id));
  }
  stream->send_queue.Append(bytes);
  ResumeIfDeferred(*stream);
  return absl::OkStatus();
}

Status H2Conn::Write(H2StreamId id, std::vector<std::byte>&& bytes) {
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return NoStream(id);
  if (stream->write_closed) {
    return absl::FailedPreconditionError("write after end of stream " + std::to_string(id));
  }
  stream->send_queue.Append(std::span<const std::byte>(bytes));
  ResumeIfDeferred(*stream);
  return absl::OkStatus();
}

Status H2Conn::CloseWrite(H2StreamId id) {
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return NoStream(id);
  if (stream->write_closed) return absl::OkStatus();
  stream->write_closed = true;
  ResumeIfDeferred(*stream);
  return absl::OkStatus();
}

Status H2Conn::SubmitTrailers(H2StreamId id, const H2Headers& trailers) {
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return NoStream(id);
  if (stream->write_closed || !stream->has_data_provider) {
    return absl::FailedPreconditionError("trailers after end of stream " + std::to_string(id));
  }
  for (const auto& h : trailers) {
    if (!h.name.empty() && h.name[0] == ':') {
      return absl::InvalidArgumentError("trailers must not carry pseudo headers: " + h.name);
    }
  }
  RETURN_IF_ERROR(ValidateHeaders(trailers));
  if (trailers.empty()) return CloseWrite(id);
  stream->trailers = trailers;
  stream->write_closed = true;
  ResumeIfDeferred(*stream);
  return absl::OkStatus();
}

void H2Conn::ResetAfterEnd(H2StreamId id) {
  H2Stream* stream = FindStream(id);
  if (stream == nullptr || stream->end_received) return;
  if (stream->end_sent && nghttp2_session_find_stream(session_, id) != nullptr) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
    return;
  }
  stream->reset_after_end = true;
}

Status H2Conn::SubmitTrailerFrame(H2Stream& stream) {
  std::vector<nghttp2_nv> nva = ToNv(*stream.trailers);
  int rv = nghttp2_submit_trailer(session_, stream.id, nva.data(), nva.size());
  stream.trailers.reset();
  if (rv != 0) return absl::InternalError(std::string("trailers: ") + nghttp2_strerror(rv));
  return absl::OkStatus();
}

Status H2Conn::Consume(H2StreamId id, size_t n) {
  if (n == 0) return absl::OkStatus();
  H2Stream* stream = FindStream(id);
  if (stream == nullptr) return absl::OkStatus();  // credit released at close
  if (n > stream->unconsumed) {
    return absl::InvalidArgumentError("Consume(" + std::to_string(n) + ") on stream " +
                                      std::to_string(id) + " exceeds the " +
                                      std::to_string(stream->unconsumed) + " bytes delivered");
  }
  stream->unconsumed -= n;
  int rv = nghttp2_session_consume(session_, id, n);
  if (rv != 0) return absl::InternalError(std::string("nghttp2 consume: ") + nghttp2_strerror(rv));
  return absl::OkStatus();
}

size_t H2Conn::QueuedBytes(H2StreamId id) const {
  H2Stream* stream = FindStream(id);
  return stream == nullptr ? 0 : stream->send_queue.size();
}

uint32_t H2Conn::PeerMaxConcurrentStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool H2Conn::AcceptsNewStreams() const {
  if (!failure_.ok() || dead_ || goaway_received_ || goaway_sent_) return false;
  if (role_ == H2Role::kServer) return true;
  return nghttp2_session_check_request_allowed(session_) != 0 &&
         ActiveStreams() < PeerMaxConcurrentStreams();
}

Status H2Conn::Ping() {
  if (!failure_.ok()) return failure_;
  int rv = nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  if (rv != 0) return absl::InternalError(std::string("PING: ") + nghttp2_strerror(rv));
  keepalive_.OnPingSent(clock_.Now());
  return absl::OkStatus();
}

Status H2Conn::OnTick(base::MonoTime now) {
  if (!failure_.ok()) return failure_;
  if (options_.ping_interval.count() <= 0) return absl::OkStatus();
  if (nghttp2_session_want_read(session_) == 0) return absl::OkStatus();  // finished
  switch (keepalive_.Evaluate(now)) {
    case H2Keepalive::Action::kNone:
      return absl::OkStatus();
    case H2Keepalive::Action::kSendPing: {
      int rv = nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
      if (rv != 0) return absl::InternalError(std::string("PING: ") + nghttp2_strerror(rv));
      keepalive_.OnPingSent(now);
      return absl::OkStatus();
    }
    case H2Keepalive::Action::kDead:
      break;
  }
  dead_ = true;
  local_terminate_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(options_.ping_timeout).count();
  failure_ = absl::UnavailableError("HTTP/2 peer did not answer PING within " +
                                    std::to_string(secs) +
                                    "s: connection considered dead; check the network path "
                                    "and the peer's load");
  AMBIT_LOG(kWarn, "http2", "{}", std::string(failure_.message()));
  return failure_;
}

Status H2Conn::GoAway() {
  if (!failure_.ok()) return failure_;
  int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  int rv = nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
  if (rv != 0) return absl::InternalError(std::string("GOAWAY: ") + nghttp2_strerror(rv));
  goaway_sent_ = true;
  return absl::OkStatus();
}

Status H2Conn::Terminate(uint32_t error_code) {
  local_terminate_ = true;
  int rv = nghttp2_session_terminate_session(session_, error_code);
  if (rv != 0) return absl::InternalError(std::string("GOAWAY: ") + nghttp2_strerror(rv));
  goaway_sent_ = true;
  return absl::OkStatus();
}

}  // namespace ambit::http2
