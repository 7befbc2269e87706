// CancelScope: the set of outstanding operations of one connection (or any unit of work).
//
// Operations started with OpOptions{.scope = &scope} are registered until their completion
// arrived. Cancel() asks the backend to cancel each of them (io_uring ASYNC_CANCEL; epoll:
// waiter removed) and marks the scope so later operations fail at once with Cancelled.
// Every awaiting coroutine resumes only after the kernel's completion arrived, so buffers
// and frames are never freed while the kernel still owns them (STYLE.md rule 8).
// Loop-thread only. The scope must outlive the operations registered on it.
#pragma once

#include <cstddef>

#include "common/io/operation.h"

namespace ambit::io {

class CancelScope {
 public:
  CancelScope() = default;
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  void Cancel();
  bool cancelled() const { return cancelled_; }
  size_t outstanding() const { return count_; }

  // Loop bookkeeping.
  void Link(Operation* op);
  void Unlink(Operation* op);

 private:
  Operation* head_ = nullptr;
  size_t count_ = 0;
  bool cancelled_ = false;
};

}  // namespace ambit::io
