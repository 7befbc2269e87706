#include "common/io/signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace ambit::io {

StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Create(
    std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    if (sigaddset(&set, s) < 0) {
      return absl::InvalidArgumentError(absl::StrCat("signal ", s, " is not a valid signal"));
    }
  }
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0) {
    return absl::InternalError(absl::StrCat("pthread_sigmask: ", strerror(rc)));
  }
  // Blocking fd: io_uring reads it asynchronously; the epoll backend makes it non-blocking.
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("signalfd: ", strerror(errno)));
  }
  return std::unique_ptr<SignalWatcher>(new SignalWatcher(fd));
}

SignalWatcher::~SignalWatcher() { ::close(fd_); }

Task<StatusOr<int>> SignalWatcher::Next(Loop& loop, OpOptions o) {
  signalfd_siginfo info{};
  auto bytes = std::as_writable_bytes(std::span<signalfd_siginfo, 1>(&info, 1));
  StatusOr<size_t> n = co_await loop.Read(fd_, bytes, o);
  if (!n.ok()) co_return n.status();
  if (*n != sizeof(info)) {
    co_return absl::InternalError(absl::StrCat("signalfd: short read of ", *n, " bytes"));
  }
  co_return static_cast<int>(info.ssi_signo);
}

}  // namespace ambit::io
