#include "common/http2/h2_keepalive.h"

namespace ambit::http2 {

void H2Keepalive::OnPingSent(base::MonoTime now) {
  if (ping_outstanding_) return;  // the oldest unanswered PING counts
  ping_outstanding_ = true;
  ping_sent_ = now;
}

H2Keepalive::Action H2Keepalive::Evaluate(base::MonoTime now) const {
  if (ping_outstanding_) {
    return now - ping_sent_ >= timeout_ ? Action::kDead : Action::kNone;
  }
  return now - last_recv_ >= interval_ ? Action::kSendPing : Action::kNone;
}

base::MonoTime H2Keepalive::NextDeadline() const {
  return ping_outstanding_ ? ping_sent_ + timeout_ : last_recv_ + interval_;
}

}  // namespace ambit::http2
