#include "common/net/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/net/cat.h"

namespace ambit::net {

void Fd::Reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

StatusOr<Fd> Fd::Dup() const {
  if (fd_ < 0) return absl::FailedPreconditionError("dup of an empty Fd");
  int d = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return ErrnoError(errno, "dup");
  return Fd(d);
}

Status ErrnoError(int err, std::string_view what) {
  std::string msg = Cat(what, ": ", std::strerror(err));
  switch (err) {
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
    case EADDRINUSE:
      return absl::AlreadyExistsError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case ENOPROTOOPT:
    case EOPNOTSUPP:
      return absl::UnimplementedError(msg);
    case ETIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case ECONNREFUSED:
    case ENETUNREACH:
    case EHOSTUNREACH:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace ambit::net
