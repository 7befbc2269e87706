#include "common/http2/h2_conn.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <string>
#include <utility>

#include "common/base/log.h"
#include "common/http2/h2_callbacks.h"

namespace ambit::http2 {

const std::string* FindHeader(const H2Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

namespace {

constexpr uint32_t kMaxWindow = (1u << 31) - 1;

Status ValidateOptions(const H2Options& o) {
  if (o.max_frame_size < (1u << 14) || o.max_frame_size > (1u << 24) - 1) {
    return absl::InvalidArgumentError("HTTP/2 max_frame_size must be in [16384, 16777215]");
  }
  if (o.initial_stream_window == 0 || o.initial_stream_window > kMaxWindow ||
      o.connection_window < (1u << 16) - 1 || o.connection_window > kMaxWindow) {
    return absl::InvalidArgumentError(
        "HTTP/2 windows must be in [1, 2^31-1] (stream) and [65535, 2^31-1] (connection)");
  }
  return absl::OkStatus();
}

std::string LibError(int rv) { return nghttp2_strerror(rv); }

}  // namespace

H2Conn::H2Conn(H2Role role, const H2Options& options, H2Events& events,
               const base::Clock& clock)
    : role_(role),
      options_(options),
      events_(events),
      clock_(clock),
      keepalive_(options.ping_interval, options.ping_timeout, clock.Now()) {}

H2Conn::~H2Conn() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

StatusOr<std::unique_ptr<H2Conn>> H2Conn::Create(H2Role role, const H2Options& options,
                                                 H2Events& events, const base::Clock& clock) {
  RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<H2Conn> conn(new H2Conn(role, options, events, clock));
  RETURN_IF_ERROR(conn->Init());
  return conn;
}

Status H2Conn::Init() {
  nghttp2_session_callbacks* cbs = H2Callbacks::Make();
  nghttp2_option* opt = nullptr;
  if (cbs == nullptr || nghttp2_option_new(&opt) != 0) {
    if (cbs != nullptr) nghttp2_session_callbacks_del(cbs);
    return absl::ResourceExhaustedError("nghttp2: out of memory creating session");
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  if (role_ == H2Role::kClient) {
    nghttp2_option_set_peer_max_concurrent_streams(opt, options_.initial_peer_max_streams);
  }
  int rv = role_ == H2Role::kClient ? nghttp2_session_client_new2(&session_, cbs, this, opt)
                                    : nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return absl::InternalError("nghttp2 session: " + LibError(rv));
  return SubmitSettings();
}

Status H2Conn::SubmitSettings() {
  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.EffectiveMaxHeaderList(role_)},
  };
  if (role_ == H2Role::kClient) {
    iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  } else if (options_.max_concurrent_streams != 0) {
    iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams});
  }
  int rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  if (rv != 0) return absl::InternalError("nghttp2 SETTINGS: " + LibError(rv));
  rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                             static_cast<int32_t>(options_.connection_window));
  if (rv != 0) return absl::InternalError("nghttp2 connection window: " + LibError(rv));
  return absl::OkStatus();
}

Status H2Conn::Fail(std::string message) {
  if (failure_.ok()) failure_ = absl::InvalidArgumentError(std::move(message));
  return failure_;
}

Status H2Conn::Feed(std::span<const std::byte> bytes) {
  if (!failure_.ok()) return failure_;
  ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) {
    if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    }
    return Fail("HTTP/2 protocol error from peer: " + LibError(static_cast<int>(rv)) +
                (last_error_.empty() ? "" : " (" + last_error_ + ")") +
                "; check that the peer speaks HTTP/2 (ALPN h2)");
  }
  // Serialize now so a GOAWAY nghttp2 queued for a protocol error is seen
  // (control frames go first); bounded even if the caller is not draining.
  Serialize(/*at_least_one=*/out_.size() - out_offset_ < 2 * options_.output_high_water);
  return failure_;
}

void H2Conn::Serialize(bool at_least_one) {
  if (session_ == nullptr) return;
  bool first = at_least_one;
  while (first || out_.size() - out_offset_ < options_.output_high_water) {
    first = false;
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      (void)Fail("HTTP/2 send failed: " + LibError(static_cast<int>(n)));
      return;
    }
    if (n == 0) return;
    const auto* b = reinterpret_cast<const std::byte*>(data);
    out_.insert(out_.end(), b, b + n);
  }
}

std::span<const std::byte> H2Conn::PendingOutput() {
  Serialize();
  return std::span<const std::byte>(out_).subspan(out_offset_);
}

void H2Conn::ConsumeOutput(size_t n) {
  out_offset_ += std::min(n, out_.size() - out_offset_);
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  } else if (out_offset_ >= (64u << 10) && out_offset_ * 2 >= out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_offset_));
    out_offset_ = 0;
  }
}

std::vector<std::byte> H2Conn::TakeOutput() {
  Serialize();
  if (out_offset_ > 0) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_offset_));
    out_offset_ = 0;
  }
  return std::exchange(out_, {});
}

bool H2Conn::WantsWrite() const {
  return out_.size() > out_offset_ || nghttp2_session_want_write(session_) != 0;
}

bool H2Conn::WantsRead() const {
  return failure_.ok() && nghttp2_session_want_read(session_) != 0;
}

bool H2Conn::Closed() const {
  if (out_.size() > out_offset_) return false;
  if (!failure_.ok()) return true;
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

}  // namespace ambit::http2
