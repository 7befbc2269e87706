// Operation: one kernel operation in flight. A plain object with one completion entry
// point (STYLE.md rule 9). Awaitables embed it, so it lives in the coroutine frame that
// awaits it, and that frame stays suspended until the kernel's last completion arrived.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <map>

#include "common/base/clock.h"

namespace ambit::io {

class Loop;
class CancelScope;

enum class OpKind : uint8_t {
  kAccept,
  kConnect,
  kRecv,
  kSend,
  kSendMsg,
  kRead,
  kWrite,
  kShutdown,
  kClose,
  kSleep,        // loop timer only; never reaches a backend
  kWait,         // loop only: completed by Loop::Notify (acceptor queue, drain, ...)
  kAcceptMulti,  // uring multishot accept: items through on_item until it ends
  kPollIn,       // waits until the fd is readable (or has an error / EOF); no data moved
};

const char* OpName(OpKind kind);

enum class OpState : uint8_t { kIdle, kPending, kDone };

struct Operation {
  OpKind kind = OpKind::kRecv;
  OpState state = OpState::kIdle;
  int fd = -1;

  // Arguments; the memory belongs to the awaitable (or caller) until completion.
  void* buf = nullptr;
  size_t len = 0;
  msghdr* msg = nullptr;           // kSendMsg
  sockaddr* addr = nullptr;        // kAccept (out), kConnect (in)
  socklen_t addrlen = 0;           // in/out for kAccept
  int how = 0;                     // kShutdown
  base::Duration timeout{0};       // > 0: per-op timeout
  base::MonoTime deadline{};       // kSleep; op timeouts on loop timers

  // Result: >= 0 success, -errno failure (-ECANCELED for cancel and timeout).
  int32_t result = 0;
  bool cancel_requested = false;
  bool timed_out = false;

  // Completion entry point: `on_complete(this)` if set, else resume `waiter`.
  void (*on_complete)(Operation*) = nullptr;
  void* context = nullptr;
  void (*on_item)(Operation*, int32_t res) = nullptr;  // multishot results
  std::coroutine_handle<> waiter;

  // Loop bookkeeping.
  Loop* loop = nullptr;
  CancelScope* scope = nullptr;
  Operation* scope_prev = nullptr;
  Operation* scope_next = nullptr;
  Operation* all_prev = nullptr;
  Operation* all_next = nullptr;
  std::multimap<base::MonoTime, Operation*>::iterator timer_it;
  bool timer_armed = false;

  // Backend bookkeeping.
  bool linked_timeout = false;      // uring: IORING_OP_LINK_TIMEOUT attached
  bool uring_polling = false;       // uring: waiting for readiness before a retry
  uint8_t pending_cqes = 0;         // uring
  bool connect_started = false;     // epoll
  Operation* wait_prev = nullptr;   // epoll waiter list
  Operation* wait_next = nullptr;
  void* wait_list = nullptr;
  __kernel_timespec ts{};           // uring linked timeout
};

// Where backends report that an operation's final result is known.
class CompletionSink {
 public:
  virtual void Completed(Operation* op) = 0;

 protected:
  ~CompletionSink() = default;
};

}  // namespace ambit::io
