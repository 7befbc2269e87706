#include "common/io/ops.h"

#include <errno.h>
#include <string.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"

namespace ambit::io {

const char* OpName(OpKind kind) {
  switch (kind) {
    case OpKind::kAccept: return "accept";
    case OpKind::kConnect: return "connect";
    case OpKind::kRecv: return "recv";
    case OpKind::kSend: return "send";
    case OpKind::kSendMsg: return "sendmsg";
    case OpKind::kRead: return "read";
    case OpKind::kWrite: return "write";
    case OpKind::kShutdown: return "shutdown";
    case OpKind::kClose: return "close";
    case OpKind::kSleep: return "sleep";
    case OpKind::kWait: return "wait";
    case OpKind::kAcceptMulti: return "accept";
    case OpKind::kPollIn: return "poll";
  }
  return "op";
}

const char* BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kAuto: return "auto";
    case BackendKind::kUring: return "io_uring";
    case BackendKind::kEpoll: return "epoll";
  }
  return "?";
}

Status OpStatus(const Operation& op) {
  if (op.result >= 0) return absl::OkStatus();
  const int err = -op.result;
  std::string what = op.fd < 0 ? std::string(OpName(op.kind))
                                               : absl::StrCat(OpName(op.kind), " fd ", op.fd);
  if (err == ECANCELED && op.timed_out) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(op.timeout).count();
    return absl::DeadlineExceededError(absl::StrCat(what, " timed out after ", ms, "ms"));
  }
  if (err == ECANCELED && op.cancel_requested) {
    return absl::CancelledError(absl::StrCat(what, " cancelled"));
  }
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", text));
}

OpBase::OpBase(Loop& loop, OpKind kind, int fd, const OpOptions& o) : loop_(loop) {
  op_.kind = kind;
  op_.fd = fd;
  op_.scope = o.scope;
  if (o.timeout.has_value()) op_.timeout = *o.timeout;
  if (kind != OpKind::kSleep && kind != OpKind::kWait && fd < 0) {
    op_.result = -EBADF;
    early_ = true;
  } else if (o.scope != nullptr && o.scope->cancelled()) {
    op_.result = -ECANCELED;
    op_.cancel_requested = true;
    early_ = true;
  }
}

bool OpBase::await_suspend(std::coroutine_handle<> h) {
  op_.waiter = h;
  return !loop_.Start(&op_);  // completed inline: don't suspend
}

SizeOp::SizeOp(Loop& loop, OpKind kind, int fd, void* buf, size_t len, const OpOptions& o)
    : OpBase(loop, kind, fd, o) {
  op_.buf = buf;
  op_.len = len;
}

StatusOr<size_t> SizeOp::await_resume() {
  if (op_.result < 0) return OpStatus(op_);
  return static_cast<size_t>(op_.result);
}

VoidOp::VoidOp(Loop& loop, OpKind kind, int fd, const OpOptions& o, int how)
    : OpBase(loop, kind, fd, o) {
  op_.how = how;
}

ConnectOp::ConnectOp(Loop& loop, const sockaddr* addr, socklen_t len, int fd,
                     const OpOptions& o)
    : OpBase(loop, OpKind::kConnect, fd, o) {
  if (len > sizeof(addr_) || addr == nullptr) {
    op_.result = -EINVAL;
    early_ = true;
    return;
  }
  std::memcpy(&addr_, addr, len);
  op_.addr = reinterpret_cast<sockaddr*>(&addr_);
  op_.addrlen = len;
}

VoidOp::VoidOp(Loop& loop, base::MonoTime deadline, const OpOptions& o)
    : OpBase(loop, OpKind::kSleep, -1, o) {
  op_.deadline = deadline;
  op_.timeout = base::Duration(0);  // a sleep is its own timer
}

Status VoidOp::await_resume() { return OpStatus(op_); }
Status ConnectOp::await_resume() { return OpStatus(op_); }

AcceptOp::AcceptOp(Loop& loop, int fd, const OpOptions& o)
    : OpBase(loop, OpKind::kAccept, fd, o) {
  op_.addr = reinterpret_cast<sockaddr*>(&peer_);
  op_.addrlen = sizeof(peer_);
}

StatusOr<Accepted> AcceptOp::await_resume() {
  if (op_.result < 0) return OpStatus(op_);
  Accepted a;
  a.fd = op_.result;
  a.peer = peer_;
  a.peer_len = op_.addrlen;
  return a;
}

WritevOp::WritevOp(Loop& loop, int fd, std::span<const iovec> iov, const OpOptions& o)
    : SizeOp(loop, OpKind::kSendMsg, fd, nullptr, 0, o) {
  msg_.msg_iov = const_cast<iovec*>(iov.data());
  msg_.msg_iovlen = iov.size();
  op_.msg = &msg_;
}

Task<Status> SendAll(Loop& loop, int fd, std::span<const std::byte> data, OpOptions o) {
  while (!data.empty()) {
    StatusOr<size_t> n = co_await loop.Send(fd, data, o);
    if (!n.ok()) co_return n.status();
    data = data.subspan(*n);
  }
  co_return absl::OkStatus();
}

Task<Status> RecvExact(Loop& loop, int fd, std::span<std::byte> data, OpOptions o) {
  size_t want = data.size();
  while (!data.empty()) {
    StatusOr<size_t> n = co_await loop.Recv(fd, data, o);
    if (!n.ok()) co_return n.status();
    if (*n == 0) {
      co_return absl::OutOfRangeError(absl::StrCat("recv fd ", fd, ": peer closed after ",
                                                   want - data.size(), " of ", want, " bytes"));
    }
    data = data.subspan(*n);
  }
  co_return absl::OkStatus();
}

}  // namespace ambit::io
