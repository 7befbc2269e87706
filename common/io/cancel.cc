#include "common/io/cancel.h"

#include "common/base/assertions.h"
#include "common/io/loop.h"

namespace ambit::io {

CancelScope::~CancelScope() {
  // An op still registered here lives in a suspended frame the kernel may write to.
  AMBIT_ASSERT(count_ == 0);
}

void CancelScope::Cancel() {
  cancelled_ = true;
  // CancelOp never completes synchronously, so the list is stable while we walk it.
  for (Operation* op = head_; op != nullptr; op = op->scope_next) {
    op->loop->CancelOp(op, /*timed_out=*/false);
  }
}

void CancelScope::Link(Operation* op) {
  op->scope = this;
  op->scope_prev = nullptr;
  op->scope_next = head_;
  if (head_ != nullptr) head_->scope_prev = op;
  head_ = op;
  ++count_;
}

void CancelScope::Unlink(Operation* op) {
  if (op->scope_prev != nullptr) {
    op->scope_prev->scope_next = op->scope_next;
  } else {
    head_ = op->scope_next;
  }
  if (op->scope_next != nullptr) op->scope_next->scope_prev = op->scope_prev;
  op->scope = nullptr;
  op->scope_prev = op->scope_next = nullptr;
  --count_;
}

}  // namespace ambit::io
