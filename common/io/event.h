// Event: a one-shot, loop-thread flag that coroutines can await (barriers, "drain
// started", "connection closed"). Waiting honours OpOptions (scope, timeout).
#pragma once

#include <coroutine>
#include <vector>

#include "common/io/ops.h"

namespace ambit::io {

class Event {
 public:
  explicit Event(Loop& loop) : loop_(loop) {}
  ~Event();  // no waiter may remain
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void Set();  // wakes all waiters (on the next loop iteration); later waits return at once
  bool is_set() const { return set_; }

  class WaitOp : public OpBase {
   public:
    WaitOp(Event& event, const OpOptions& o);
    bool await_ready() const noexcept { return early_ || event_.set_; }
    bool await_suspend(std::coroutine_handle<> h);
    Status await_resume();

   private:
    Event& event_;
  };
  // OK once set; Cancelled / DeadlineExceeded per the options.
  WaitOp Wait(OpOptions o = {}) { return WaitOp(*this, o); }

 private:
  Loop& loop_;
  bool set_ = false;
  std::vector<Operation*> waiters_;
};

}  // namespace ambit::io
