#include "common/base/error.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ambit::base {

namespace {
constexpr absl::string_view kReasonUrl = "type.ambit.dev/ErrorReason";
constexpr uint8_t kLastReason = static_cast<uint8_t>(ErrorReason::kCancelled);
}  // namespace

std::string_view ErrorReasonName(ErrorReason r) {
  switch (r) {
    case ErrorReason::kNone: return "none";
    case ErrorReason::kConnectFailed: return "connect_failed";
    case ErrorReason::kConnectTimeout: return "connect_timeout";
    case ErrorReason::kTlsHandshake: return "tls_handshake";
    case ErrorReason::kTlsTimeout: return "tls_timeout";
    case ErrorReason::kH2Setup: return "h2_setup";
    case ErrorReason::kH2Protocol: return "h2_protocol";
    case ErrorReason::kStreamRefused: return "stream_refused";
    case ErrorReason::kStreamReset: return "stream_reset";
    case ErrorReason::kConnClosed: return "connection_closed";
    case ErrorReason::kConnectRejected: return "connect_rejected";
    case ErrorReason::kDenied: return "denied";
    case ErrorReason::kResponseTimeout: return "response_timeout";
    case ErrorReason::kPeerClosed: return "peer_closed";
    case ErrorReason::kMalformed: return "malformed";
    case ErrorReason::kOverflow: return "overflow";
    case ErrorReason::kCancelled: return "cancelled";
  }
  return "none";
}

Status WithReason(Status st, ErrorReason r) {
  if (st.ok()) return st;
  st.SetPayload(kReasonUrl, absl::Cord(std::string(1, static_cast<char>(r))));
  return st;
}

ErrorReason ReasonOf(const Status& st) {
  if (st.ok()) return ErrorReason::kNone;
  auto p = st.GetPayload(kReasonUrl);
  if (!p.has_value() || p->size() != 1) return ErrorReason::kNone;
  const auto v = static_cast<uint8_t>((*p)[0]);
  return v <= kLastReason ? static_cast<ErrorReason>(v) : ErrorReason::kNone;
}

Status WithContext(const Status& st, std::string_view context) {
  if (st.ok()) return st;
  Status out(st.code(), absl::StrCat(absl::string_view(context.data(), context.size()), ": ",
                                   st.message()));
  st.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace ambit::base
