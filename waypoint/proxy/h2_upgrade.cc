#include "waypoint/proxy/h2_upgrade.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "common/base/ascii.h"
#include "common/base/error.h"
#include "common/http2/session.h"
#include "waypoint/proxy/http_common.h"

namespace ambit::waypoint {

namespace {

using Event = http1::Parser::Event;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

http2::H2Headers LowerTrailers(const http1::Headers& in) {
  http2::H2Headers out;
  for (const auto& h : in) out.push_back({Lower(h.name), h.value});
  return out;
}

}  // namespace

http2::H2Headers UpgradeRequestHeaders(const http1::RequestHead& head) {
  http2::H2Headers out;
  out.push_back({":method", head.method});
  out.push_back({":scheme", "http"});
  if (auto host = http1::FindHeader(head.headers, "host")) {
    out.push_back({":authority", std::string(*host)});
  }
  out.push_back({":path", head.target});
  // Names the Connection header lists are connection-specific too.
  std::vector<std::string> listed;
  for (const auto& h : head.headers) {
    if (!base::EqualsIgnoreCase(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = std::min(v.find(','), v.size());
      std::string_view tok = v.substr(0, comma);
      while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
      while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
      if (!tok.empty()) listed.push_back(Lower(tok));
      v.remove_prefix(std::min(comma + 1, v.size()));
    }
  }
  for (const auto& h : head.headers) {
    std::string name = Lower(h.name);
    if (name == "host" || name == "expect" || name == "transfer-encoding") continue;
    if (std::find(listed.begin(), listed.end(), name) != listed.end()) continue;
    if (IsHopByHop(name) && !(name == "te" && base::EqualsIgnoreCase(h.value, "trailers"))) {
      continue;
    }
    out.push_back({std::move(name), h.value});
  }
  return out;
}

bool AppendDowngradedHead(std::string& out, const http2::H2Headers& h2, bool ended,
                          bool head_request) {
  int status = 0;
  http1::Headers headers;
  bool has_length = false;
  for (const auto& h : h2) {
    if (h.name == ":status") {
      status = std::atoi(h.value.c_str());
      continue;
    }
    if (h.name.empty() || h.name[0] == ':' || IsHopByHop(h.name)) continue;
    if (h.name == "content-length") has_length = true;
    headers.push_back({h.name, h.value});
  }
  const bool no_body = head_request || status == 204 || status == 304 ||
                       (status >= 100 && status < 200);
  bool chunked = false;
  if (!no_body && !has_length) {
    if (ended) {
      headers.push_back({"content-length", "0"});
    } else {
      headers.push_back({"transfer-encoding", "chunked"});
      chunked = true;
    }
  }
  http1::AppendResponseHead(out, status, "", headers);
  return chunked;
}

H2UpgradeStream::H2UpgradeStream(io::Loop& loop, Opener open)
    : open_(std::move(open)), opened_(loop) {}

// (A stream not finished is reset by SessionStream's destructor.)
H2UpgradeStream::~H2UpgradeStream() = default;

io::Task<Status> H2UpgradeStream::Write(std::span<const std::byte> bytes, io::OpOptions o) {
  if (!open_error_.ok()) co_return open_error_;
  for (;;) {
    http1::Parser::Result r = request_.Next(bytes);
    bytes = bytes.subspan(r.consumed);
    switch (r.event) {
      case Event::kNeedMore:
        co_return absl::OkStatus();
      case Event::kHead: {
        const http1::RequestHead& head = request_.request();
        method_ = head.method;
        const bool end = head.framing == http1::Framing::kNone;
        auto s = co_await open_(UpgradeRequestHeaders(head), end);
        if (!s.ok()) {
          open_error_ = s.status();
          opened_.Set();
          co_return open_error_;
        }
        stream_ = std::move(*s);
        request_ended_ = end;
        opened_.Set();
        break;
      }
      case Event::kBody: {
        if (stream_ == nullptr) co_return absl::InternalError("h2 upgrade: body before head");
        Status st = co_await stream_->Write(r.body, o);
        if (!st.ok()) co_return st;
        break;
      }
      case Event::kTrailers: {
        if (stream_ == nullptr) co_return absl::InternalError("h2 upgrade: trailers before head");
        Status st = stream_->SendTrailers(LowerTrailers(request_.TakeTrailers()));
        request_ended_ = true;
        if (!st.ok()) co_return st;
        break;
      }
      case Event::kComplete:
        if (stream_ != nullptr && !request_ended_) {
          stream_->CloseWrite();
          request_ended_ = true;
        }
        break;
      case Event::kUpgrade:
      case Event::kError:
        co_return base::WithReason(absl::InvalidArgumentError("h2 upgrade: bad request bytes"),
                                   base::ErrorReason::kMalformed);
    }
  }
}

io::Task<Status> H2UpgradeStream::ReadHead(io::OpOptions o) {
  auto h = co_await stream_->AwaitHeaders(o);
  if (!h.ok()) co_return h.status();
  const bool ended =
      stream_->end_received() && stream_->bytes_received() == 0 && !stream_->trailers();
  chunked_ = AppendDowngradedHead(out_, *h, ended, method_ == "HEAD");
  phase_ = Phase::kBody;
  co_return absl::OkStatus();
}

io::Task<Status> H2UpgradeStream::ReadBody(io::OpOptions o) {
  auto chunk = co_await stream_->Peek(o);
  if (!chunk.ok()) co_return chunk.status();
  if (chunk->empty()) {
    if (chunked_) {
      http1::Headers trailers;
      if (const auto& t = stream_->trailers(); t.has_value()) {
        for (const auto& x : *t) trailers.push_back({x.name, x.value});
      }
      http1::AppendLastChunk(out_, trailers);
    }
    phase_ = Phase::kDone;
    co_return absl::OkStatus();
  }
  if (chunked_) {
    http1::AppendChunk(out_, *chunk);
  } else {
    out_.append(reinterpret_cast<const char*>(chunk->data()), chunk->size());
  }
  stream_->Consume(chunk->size());
  co_return absl::OkStatus();
}

io::Task<StatusOr<std::span<const std::byte>>> H2UpgradeStream::Peek(io::OpOptions o) {
  for (;;) {
    if (out_pos_ < out_.size()) {
      co_return std::as_bytes(std::span(out_.data() + out_pos_, out_.size() - out_pos_));
    }
    if (phase_ == Phase::kDone) co_return std::span<const std::byte>();
    if (stream_ == nullptr) {
      Status st = co_await opened_.Wait(o);
      if (!st.ok()) co_return st;
      if (!open_error_.ok()) co_return open_error_;
      if (stream_ == nullptr) co_return absl::CancelledError("h2 upgrade: aborted");
    }
    Status st = phase_ == Phase::kHead ? co_await ReadHead(o) : co_await ReadBody(o);
    if (!st.ok()) co_return st;
  }
}

void H2UpgradeStream::Consume(size_t n) {
  out_pos_ += n;
  if (out_pos_ >= out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
}

void H2UpgradeStream::CloseWrite() {
  if (stream_ != nullptr && !request_ended_) {
    stream_->CloseWrite();
    request_ended_ = true;
  }
}

void H2UpgradeStream::Abort() {
  if (stream_ != nullptr) stream_->Reset(http2::kH2Cancel);
  if (open_error_.ok()) open_error_ = absl::CancelledError("h2 upgrade: aborted");
  opened_.Set();
  phase_ = Phase::kDone;
  out_.clear();
  out_pos_ = 0;
}

}  // namespace ambit::waypoint
