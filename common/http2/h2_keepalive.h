// PING keepalive bookkeeping for one HTTP/2 connection (ISTIO-COMPAT §1.4):
// a PING after `interval` without received frames, dead when a PING stays
// unanswered for `timeout`. Pure logic over caller-supplied times.
#pragma once

#include "common/base/clock.h"

namespace ambit::http2 {

class H2Keepalive {
 public:
  enum class Action { kNone, kSendPing, kDead };

  H2Keepalive(base::Duration interval, base::Duration timeout, base::MonoTime now)
      : interval_(interval), timeout_(timeout), last_recv_(now) {}

  // Any frame received from the peer.
  void OnFrameReceived(base::MonoTime now) { last_recv_ = now; }
  void OnPingSent(base::MonoTime now);
  void OnPingAck() { ping_outstanding_ = false; }
  // What the connection should do at `now`.
  Action Evaluate(base::MonoTime now) const;
  // The next time Evaluate() may return something other than kNone.
  base::MonoTime NextDeadline() const;
  bool ping_outstanding() const { return ping_outstanding_; }

 private:
  base::Duration interval_;
  base::Duration timeout_;
  base::MonoTime last_recv_;
  base::MonoTime ping_sent_{};
  bool ping_outstanding_ = false;
};

}  // namespace ambit::http2
