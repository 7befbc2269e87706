// Notifier: an auto-reset wake-up flag for one waiting coroutine on the loop
// thread (writer wake-ups, "stream has data", "stream drained"). Notify()
// before Wait() is remembered once; waiting honours OpOptions (scope cancel,
// timeout). Unlike io::Event it re-arms after every wake-up.
#pragma once

#include <coroutine>

#include "common/base/assertions.h"
#include "common/io/loop.h"

namespace ambit::io {

class Notifier {
 public:
  explicit Notifier(Loop& loop) : loop_(loop) {}
  ~Notifier() { AMBIT_ASSERT(waiter_ == nullptr); }
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void Notify() {
    if (waiter_ != nullptr) {
      Operation* op = waiter_;
      waiter_ = nullptr;
      loop_.Notify(op, 0);
    } else {
      pending_ = true;
    }
  }

  class WaitOp : public OpBase {
   public:
    WaitOp(Notifier& n, const OpOptions& o) : OpBase(n.loop_, OpKind::kWait, -1, o), n_(n) {
      if (!early_ && n_.pending_) {
        n_.pending_ = false;
        early_ = true;  // op_.result stays 0: OK
      }
    }
    bool await_suspend(std::coroutine_handle<> h) {
      AMBIT_ASSERT(n_.waiter_ == nullptr);  // one waiter at a time
      op_.waiter = h;
      n_.waiter_ = &op_;
      if (loop_.Start(&op_)) {  // only when the loop is shutting down
        n_.waiter_ = nullptr;
        return false;
      }
      return true;
    }
    Status await_resume() {
      if (n_.waiter_ == &op_) n_.waiter_ = nullptr;  // cancelled or timed out
      return OpStatus(op_);
    }

   private:
    Notifier& n_;
  };

  WaitOp Wait(OpOptions o = {}) { return WaitOp(*this, o); }

 private:
  Loop& loop_;
  Operation* waiter_ = nullptr;
  bool pending_ = false;
};

}  // namespace ambit::io
