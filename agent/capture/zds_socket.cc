#include "agent/capture/zds_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/net/cat.h"

namespace ambit::agent::capture {
namespace {

using net::Cat;
using net::ErrnoError;
using net::Fd;

StatusOr<socklen_t> FillAddr(std::string_view path, sockaddr_un& sa) {
  std::memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.empty()) return absl::InvalidArgumentError("empty ZDS socket path (--inpod-uds)");
  if (path.size() >= sizeof(sa.sun_path)) {
    return absl::InvalidArgumentError(Cat("ZDS socket path too long (", path.size(), " bytes, max ",
                                          sizeof(sa.sun_path) - 1, "): ", path));
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract: the length, not a NUL, ends the name
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return static_cast<socklen_t>(sizeof(sa));
}

StatusOr<Fd> NewSocket() {
  Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  return fd;
}

// Moves every SCM_RIGHTS fd of `msg` into `out` (so none can leak).
void CollectFds(msghdr& msg, std::vector<Fd>& out) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (size_t i = 0; i < n; ++i) {
      int v;
      std::memcpy(&v, data + i * sizeof(int), sizeof(int));
      out.emplace_back(v);
    }
  }
}

}  // namespace

StatusOr<Fd> ZdsConnect(std::string_view path) {
  sockaddr_un sa;
  ASSIGN_OR_RETURN(socklen_t len, FillAddr(path, sa));
  ASSIGN_OR_RETURN(Fd fd, NewSocket());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    return ErrnoError(errno, Cat("connect to ZDS socket ", path));
  }
  return fd;
}

StatusOr<Fd> ZdsListen(std::string_view path) {
  sockaddr_un sa;
  ASSIGN_OR_RETURN(socklen_t len, FillAddr(path, sa));
  ASSIGN_OR_RETURN(Fd fd, NewSocket());
  if (path[0] != '@') ::unlink(std::string(path).c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    return ErrnoError(errno, Cat("bind ZDS socket ", path));
  }
  if (::listen(fd.get(), 8) != 0) return ErrnoError(errno, Cat("listen on ZDS socket ", path));
  return fd;
}

Status ZdsWaitReadable(int fd, std::chrono::milliseconds timeout, int wake_fd) {
  pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  nfds_t n = wake_fd >= 0 ? 2 : 1;
  for (;;) {
    int r = ::poll(p, n, static_cast<int>(timeout.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "poll on ZDS socket");
    if (r == 0) return absl::DeadlineExceededError("no ZDS message within the timeout");
    if (n == 2 && p[1].revents != 0) return absl::CancelledError("ZDS wait interrupted");
    return absl::OkStatus();  // readable, hung up or error: recv tells which
  }
}

StatusOr<Fd> ZdsAccept(int listen_fd, std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(ZdsWaitReadable(listen_fd, timeout));
  Fd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "accept on ZDS socket");
  return fd;
}

Status ZdsSend(int fd, std::string_view bytes, std::span<const int> fds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(fds.size() * sizeof(int)), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "send on ZDS socket");
    if (static_cast<size_t>(n) != bytes.size()) {
      return absl::InternalError(Cat("short ZDS send: ", n, " of ", bytes.size(), " bytes"));
    }
    return absl::OkStatus();
  }
}

StatusOr<ZdsDatagram> ZdsRecv(int fd, std::chrono::milliseconds timeout, int wake_fd) {
  RETURN_IF_ERROR(ZdsWaitReadable(fd, timeout, wake_fd));
  ZdsDatagram out;
  out.bytes.resize(kZdsRecvBufferBytes);
  alignas(cmsghdr) char control[CMSG_SPACE(kZdsMaxFdsPerDatagram * sizeof(int))];
  iovec iov{out.bytes.data(), out.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::DeadlineExceededError("no ZDS message within the timeout");
  }
  if (n < 0) return ErrnoError(errno, "recvmsg on ZDS socket");
  CollectFds(msg, out.fds);
  if (n == 0 && out.fds.empty()) return absl::UnavailableError("ZDS peer closed the connection");
  if (msg.msg_flags & MSG_TRUNC) {
    return absl::DataLossError(Cat("ZDS message larger than ", kZdsRecvBufferBytes,
                                   " bytes (MSG_TRUNC): is the node agent speaking ZDS V1?"));
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return absl::DataLossError(
        Cat("ZDS message carried more than ", kZdsMaxFdsPerDatagram, " fds (MSG_CTRUNC)"));
  }
  out.bytes.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace ambit::agent::capture
