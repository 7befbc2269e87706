// Awaitables for Loop operations. Each embeds its Operation (and any kernel-visible
// argument such as a sockaddr or msghdr), so it lives in the awaiting coroutine's frame
// until the completion arrived. Not copyable or movable: use them as `co_await loop.X(...)`.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <coroutine>
#include <optional>
#include <span>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/operation.h"

namespace ambit::io {

class Loop;

struct OpOptions {
  CancelScope* scope = nullptr;            // registers the op; scope->Cancel() cancels it
  std::optional<base::Duration> timeout;   // DeadlineExceeded when it fires
};

struct Accepted {
  int fd = -1;  // SOCK_NONBLOCK | SOCK_CLOEXEC
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
};

// Turns a finished op into a Status: Cancelled, DeadlineExceeded or the errno text.
Status OpStatus(const Operation& op);

class OpBase {
 public:
  OpBase(const OpBase&) = delete;
  OpBase& operator=(const OpBase&) = delete;

  bool await_ready() const noexcept { return early_; }
  bool await_suspend(std::coroutine_handle<> h);

 protected:
  OpBase(Loop& loop, OpKind kind, int fd, const OpOptions& o);
  Loop& loop_;
  Operation op_;
  bool early_ = false;  // failed before submission (cancelled scope, bad fd, shutdown)
};

// recv / send / read / write / writev: bytes transferred (0 from recv = EOF).
class SizeOp : public OpBase {
 public:
  SizeOp(Loop& loop, OpKind kind, int fd, void* buf, size_t len, const OpOptions& o);
  StatusOr<size_t> await_resume();
};

// shutdown / close / sleep / wait-readable. No address inside: every co_await
// of one takes its size in the coroutine frame of a long-lived relay.
class VoidOp : public OpBase {
 public:
  VoidOp(Loop& loop, OpKind kind, int fd, const OpOptions& o, int how = 0);
  VoidOp(Loop& loop, base::MonoTime deadline, const OpOptions& o);  // sleep
  Status await_resume();
};

// connect: keeps its own copy of the address.
class ConnectOp : public OpBase {
 public:
  ConnectOp(Loop& loop, const sockaddr* addr, socklen_t len, int fd, const OpOptions& o);
  Status await_resume();

 private:
  sockaddr_storage addr_{};
};

class AcceptOp : public OpBase {
 public:
  AcceptOp(Loop& loop, int fd, const OpOptions& o);
  StatusOr<Accepted> await_resume();

 private:
  sockaddr_storage peer_{};
};

class WritevOp : public SizeOp {
 public:
  WritevOp(Loop& loop, int fd, std::span<const iovec> iov, const OpOptions& o);

 private:
  msghdr msg_{};
};

}  // namespace ambit::io
