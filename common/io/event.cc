#include "common/io/event.h"

#include <algorithm>

#include "common/base/assertions.h"
#include "common/io/loop.h"

namespace ambit::io {

Event::~Event() { AMBIT_ASSERT(waiters_.empty()); }

void Event::Set() {
  if (set_) return;
  set_ = true;
  for (Operation* op : waiters_) loop_.Notify(op, 0);
  waiters_.clear();
}

Event::WaitOp::WaitOp(Event& event, const OpOptions& o)
    : OpBase(event.loop_, OpKind::kWait, -1, o), event_(event) {}

bool Event::WaitOp::await_suspend(std::coroutine_handle<> h) {
  op_.waiter = h;
  event_.waiters_.push_back(&op_);
  loop_.Start(&op_);  // kWait never completes inline
  return true;
}

Status Event::WaitOp::await_resume() {
  if (early_ || op_.state == OpState::kIdle) return OpStatus(op_);  // ready without waiting
  auto& w = event_.waiters_;
  w.erase(std::remove(w.begin(), w.end(), &op_), w.end());  // cancelled or timed out
  return OpStatus(op_);
}

}  // namespace ambit::io
