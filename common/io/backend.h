// Backend: how a Loop talks to the kernel. UringBackend submits operations to io_uring;
// EpollBackend emulates them on readiness with non-blocking fds.
//
// Contract: after Submit(op) the backend reports op exactly once through the sink (unless
// Submit returned true: completed inline, result already in op->result). Cancel(op) asks
// for early completion with -ECANCELED; the report still comes later, never inside Cancel.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/operation.h"

namespace ambit::io {

enum class BackendKind : uint8_t { kAuto, kUring, kEpoll };

const char* BackendName(BackendKind kind);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;

  // Starts op. May complete it inline (returns true) only if allow_inline.
  virtual bool Submit(Operation* op, bool allow_inline) = 0;
  // Requests cancellation of a pending op (kernel ASYNC_CANCEL / waiter removal).
  virtual void Cancel(Operation* op) = 0;
  // Waits up to `wait` (nullopt: until something happens) and reports completions.
  virtual void Poll(std::optional<base::Duration> wait) = 0;
  // Whether per-op timeouts are done by the kernel (linked timeouts) for this kind.
  virtual bool KernelTimeouts(OpKind kind) const = 0;
  // Called before an fd is closed: drop any per-fd state.
  virtual void ForgetFd(int fd) = 0;
};

struct UringConfig {
  unsigned entries = 4096;
  bool fail_setup_for_test = false;
};

StatusOr<std::unique_ptr<Backend>> MakeUringBackend(CompletionSink* sink,
                                                     const UringConfig& config);
StatusOr<std::unique_ptr<Backend>> MakeEpollBackend(CompletionSink* sink);

}  // namespace ambit::io
