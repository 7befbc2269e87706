// Typed failure reasons on absl::Status (common/base/error.h).
#include <doctest/doctest.h>

#include <set>
#include <string_view>

#include "common/base/error.h"

using namespace ambit;
using base::ErrorReason;

TEST_CASE("a reason survives copies, StatusOr and WithContext") {
  Status st = base::WithReason(absl::UnavailableError("refused"), ErrorReason::kStreamRefused);
  CHECK(base::ReasonOf(st) == ErrorReason::kStreamRefused);
  Status copy = st;
  CHECK(base::ReasonOf(copy) == ErrorReason::kStreamRefused);
  StatusOr<int> v = st;
  CHECK(base::ReasonOf(v.status()) == ErrorReason::kStreamRefused);
  Status ctx = base::WithContext(st, "HBONE to 10.0.2.5:15008");
  CHECK(ctx.code() == absl::StatusCode::kUnavailable);
  CHECK(ctx.message() == "HBONE to 10.0.2.5:15008: refused");
  CHECK(base::ReasonOf(ctx) == ErrorReason::kStreamRefused);
}

TEST_CASE("no reason reads as none; OK stays OK; the last reason wins") {
  CHECK(base::ReasonOf(absl::InternalError("x")) == ErrorReason::kNone);
  CHECK(base::WithReason(absl::OkStatus(), ErrorReason::kDenied).ok());
  CHECK(base::ReasonOf(absl::OkStatus()) == ErrorReason::kNone);
  Status st = base::WithReason(absl::UnavailableError("x"), ErrorReason::kConnClosed);
  st = base::WithReason(st, ErrorReason::kConnectTimeout);
  CHECK(base::ReasonOf(st) == ErrorReason::kConnectTimeout);
}

TEST_CASE("every reason has a distinct stable name") {
  std::set<std::string_view> names;
  for (int r = 0; r <= static_cast<int>(ErrorReason::kCancelled); ++r) {
    auto n = base::ErrorReasonName(static_cast<ErrorReason>(r));
    CHECK(!n.empty());
    CHECK(names.insert(n).second);
  }
  CHECK(base::ErrorReasonName(ErrorReason::kStreamRefused) == "stream_refused");
}
