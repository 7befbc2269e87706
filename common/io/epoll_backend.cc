// epoll backend: the same operations emulated on readiness. An operation is tried at once
// (non-blocking); on EAGAIN it waits in its fd's reader or writer list and is retried when
// the fd becomes ready (edge-triggered, registered once per fd, after the first EAGAIN).
// Cancel removes the waiter and reports -ECANCELED on the next loop iteration.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/io/backend.h"

namespace ambit::io {
namespace {

struct WaitList {
  Operation* head = nullptr;
  Operation* tail = nullptr;
  bool empty() const { return head == nullptr; }
  void PushBack(Operation* op) {
    op->wait_list = this;
    op->wait_next = nullptr;
    op->wait_prev = tail;
    if (tail != nullptr) {
      tail->wait_next = op;
    } else {
      head = op;
    }
    tail = op;
  }
  void Remove(Operation* op) {
    if (op->wait_prev != nullptr) {
      op->wait_prev->wait_next = op->wait_next;
    } else {
      head = op->wait_next;
    }
    if (op->wait_next != nullptr) {
      op->wait_next->wait_prev = op->wait_prev;
    } else {
      tail = op->wait_prev;
    }
    op->wait_list = nullptr;
    op->wait_prev = op->wait_next = nullptr;
  }
};

struct FdState {
  bool known = false;       // O_NONBLOCK ensured
  bool registered = false;  // in the epoll set
  WaitList readers;
  WaitList writers;
};

bool IsWrite(OpKind kind) {
  return kind == OpKind::kConnect || kind == OpKind::kSend || kind == OpKind::kSendMsg ||
         kind == OpKind::kWrite;
}

int Errno() { return errno == EWOULDBLOCK ? -EAGAIN : -errno; }

// One non-blocking attempt: result, or -EAGAIN to wait for readiness.
int TryOp(Operation* op) {
  for (;;) {
    ssize_t r = 0;
    switch (op->kind) {
      case OpKind::kAccept:
      case OpKind::kAcceptMulti:
        r = ::accept4(op->fd, op->addr, op->addr ? &op->addrlen : nullptr,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
      case OpKind::kConnect:
        if (!op->connect_started) {
          op->connect_started = true;
          r = ::connect(op->fd, op->addr, op->addrlen);
          if (r < 0 && errno == EINPROGRESS) return -EAGAIN;
        } else {
          int err = 0;
          socklen_t len = sizeof(err);
          if (::getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
          if (err != 0) return -err;
          sockaddr_storage peer;
          socklen_t plen = sizeof(peer);
          if (::getpeername(op->fd, reinterpret_cast<sockaddr*>(&peer), &plen) < 0) {
            return errno == ENOTCONN ? -EAGAIN : -errno;
          }
          return 0;
        }
        break;
      case OpKind::kRecv:
        r = ::recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
        break;
      case OpKind::kSend:
        r = ::send(op->fd, op->buf, op->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      case OpKind::kSendMsg:
        r = ::sendmsg(op->fd, op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      case OpKind::kRead:
        r = ::read(op->fd, op->buf, op->len);
        break;
      case OpKind::kWrite:
        r = ::write(op->fd, op->buf, op->len);
        break;
      case OpKind::kShutdown:
        r = ::shutdown(op->fd, op->how);
        break;
      case OpKind::kPollIn: {
        pollfd p{op->fd, POLLIN | POLLRDHUP, 0};
        r = ::poll(&p, 1, 0);
        if (r == 0) return -EAGAIN;
        if (r > 0) return p.revents;
        break;
      }
      default:
        return -EINVAL;
    }
    if (r >= 0) return static_cast<int>(r);
    if (errno == EINTR) continue;
    return Errno();
  }
}

class EpollBackend final : public Backend {
 public:
  explicit EpollBackend(CompletionSink* sink) : sink_(sink) {}
  ~EpollBackend() override {
    if (epfd_ >= 0) ::close(epfd_);
  }
  Status Init();

  BackendKind kind() const override { return BackendKind::kEpoll; }
  bool KernelTimeouts(OpKind) const override { return false; }
  bool Submit(Operation* op, bool allow_inline) override;
  void Cancel(Operation* op) override;
  void Poll(std::optional<base::Duration> wait) override;
  void ForgetFd(int fd) override;

 private:
  FdState& State(int fd) {
    if (static_cast<size_t>(fd) >= fds_.size()) fds_.resize(static_cast<size_t>(fd) * 2 + 64);
    return fds_[static_cast<size_t>(fd)];
  }
  void Wait(FdState& st, Operation* op);
  void Retry(WaitList& list);
  void Report(Operation* op, int result) {
    op->result = result;
    sink_->Completed(op);
  }

  CompletionSink* sink_;
  int epfd_ = -1;
  std::deque<FdState> fds_;  // deque: growing never moves the WaitLists ops point to
  std::vector<epoll_event> events_ = std::vector<epoll_event>(512);
  // epoll_pwait2 (Linux 5.11+) takes a nanosecond timeout; older kernels
  // (and valgrind) answer ENOSYS, and then epoll_wait's milliseconds do.
  bool have_pwait2_ = true;
};

Status EpollBackend::Init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("epoll_create1: ", strerror(errno)));
  }
  return absl::OkStatus();
}

bool EpollBackend::Submit(Operation* op, bool allow_inline) {
  int result = 0;
  if (op->kind == OpKind::kClose) {
    ForgetFd(op->fd);
    result = ::close(op->fd) < 0 ? -errno : 0;
  } else if (op->kind == OpKind::kShutdown) {
    // Never waits for readiness, so never queues behind a pending recv on
    // the same fd (that recv may be waiting for the very EOF this sends).
    result = ::shutdown(op->fd, op->how) < 0 ? -errno : 0;
  } else {
    FdState& st = State(op->fd);
    if (!st.known) {
      int flags = ::fcntl(op->fd, F_GETFL);
      if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(op->fd, F_SETFL, flags | O_NONBLOCK);
      st.known = true;
    }
    WaitList& list = IsWrite(op->kind) ? st.writers : st.readers;
    if (!list.empty()) {  // keep order behind earlier waiters
      list.PushBack(op);
      return false;
    }
    result = TryOp(op);
    if (result == -EAGAIN) {
      Wait(st, op);
      return false;
    }
  }
  if (allow_inline) {
    op->result = result;
    return true;
  }
  Report(op, result);
  return false;
}

void EpollBackend::Wait(FdState& st, Operation* op) {
  (IsWrite(op->kind) ? st.writers : st.readers).PushBack(op);
  if (st.registered) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.fd = op->fd;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, op->fd, &ev) < 0 && errno != EEXIST) {
    int err = errno;
    (IsWrite(op->kind) ? st.writers : st.readers).Remove(op);
    Report(op, -err);
    return;
  }
  st.registered = true;
}

void EpollBackend::Cancel(Operation* op) {
  auto* list = static_cast<WaitList*>(op->wait_list);
  if (list == nullptr) return;  // already reported
  list->Remove(op);
  Report(op, -ECANCELED);
}

void EpollBackend::Retry(WaitList& list) {
  while (!list.empty()) {
    Operation* op = list.head;
    int result = TryOp(op);
    if (result == -EAGAIN) return;  // edge consumed; wait for the next one
    list.Remove(op);
    Report(op, result);
  }
}

void EpollBackend::Poll(std::optional<base::Duration> wait) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (wait.has_value()) {
    base::Duration w = std::max(*wait, base::Duration(0));
    ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(w).count();
    ts.tv_nsec = (w % std::chrono::seconds(1)).count();
    tsp = &ts;
  }
  const int cap = static_cast<int>(events_.size());
  int n = -1;
  if (have_pwait2_) {
    n = ::epoll_pwait2(epfd_, events_.data(), cap, tsp, nullptr);
    if (n < 0 && errno == ENOSYS) {
      have_pwait2_ = false;
      AMBIT_LOG(kInfo, "io", "epoll_pwait2 not available: waits use epoll_wait (ms timeouts)");
    }
  }
  if (!have_pwait2_) {
    int ms = -1;
    if (tsp != nullptr) {  // round up: never wake before the deadline
      const int64_t ns = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
      ms = static_cast<int>(std::min<int64_t>((ns + 999'999) / 1'000'000, INT32_MAX));
    }
    n = ::epoll_wait(epfd_, events_.data(), cap, ms);
  }
  if (n < 0) {
    if (errno != EINTR) AMBIT_LOG(kError, "io", "epoll wait: {}", strerror(errno));
    return;
  }
  for (int i = 0; i < n; ++i) {
    const uint32_t ev = events_[static_cast<size_t>(i)].events;
    FdState& st = State(events_[static_cast<size_t>(i)].data.fd);
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) Retry(st.readers);
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) Retry(st.writers);
  }
}

void EpollBackend::ForgetFd(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return;
  FdState& st = fds_[static_cast<size_t>(fd)];
  for (WaitList* list : {&st.readers, &st.writers}) {
    while (!list->empty()) {
      Operation* op = list->head;
      list->Remove(op);
      Report(op, -ECANCELED);
    }
  }
  if (st.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  st = FdState{};
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeEpollBackend(CompletionSink* sink) {
  auto backend = std::make_unique<EpollBackend>(sink);
  RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace ambit::io
