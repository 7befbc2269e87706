#include "common/net/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "common/net/cat.h"

namespace ambit::net {
namespace {

// <linux/netfilter_ipv4.h> SO_ORIGINAL_DST and
// <linux/netfilter_ipv6/ip6_tables.h> IP6T_SO_ORIGINAL_DST (both 80).
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;

Status SetIntOpt(int fd, int level, int name, int value, std::string_view what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return ErrnoError(errno, Cat("setsockopt(", what, ")"));
  }
  return absl::OkStatus();
}

int SocketFamily(int fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return -1;
  return domain;
}

StatusOr<Fd> NewTcpSocket(Family family, bool nonblocking) {
  int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  int fd = ::socket(family == Family::kV4 ? AF_INET : AF_INET6, type, IPPROTO_TCP);
  if (fd < 0) return ErrnoError(errno, "socket(TCP)");
  return Fd(fd);
}

Status ApplyTransparent(int fd, Transparent mode, const SocketAddress& where) {
  if (mode == Transparent::kOff) return absl::OkStatus();
  Status s = SetTransparent(fd, true);
  if (s.ok() || mode == Transparent::kBestEffort) return absl::OkStatus();
  return Status(s.code(), Cat("listener ", where.ToString(), ": IP_TRANSPARENT required: ",
                                       s.message(), " (needs CAP_NET_ADMIN)"));
}

}  // namespace

StatusOr<Fd> CreateTcpListener(const ListenerOptions& o) {
  ASSIGN_OR_RETURN(Fd fd, NewTcpSocket(o.address.family(), o.nonblocking));
  RETURN_IF_ERROR(SetIntOpt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
  if (o.reuse_port) RETURN_IF_ERROR(SetReusePort(fd.get(), true));
  if (o.address.ip().is_v6() && o.address.ip().IsUnspecified()) {
    RETURN_IF_ERROR(SetIntOpt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY"));
  }
  RETURN_IF_ERROR(ApplyTransparent(fd.get(), o.transparent, o.address));
  if (o.mark) {
    Status s = SetMark(fd.get(), *o.mark);
    if (!s.ok()) {
      return Status(s.code(), Cat("listener ", o.address.ToString(), ": ", s.message(),
                                           " (needs CAP_NET_ADMIN)"));
    }
  }
  sockaddr_storage ss;
  socklen_t len = o.address.ToSockaddr(&ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    std::string hint = err == EADDRINUSE      ? " (another process listens there; reuse_port?)"
                       : err == EADDRNOTAVAIL ? " (address not configured in this netns)"
                                              : "";
    return ErrnoError(err, Cat("bind ", o.address.ToString(), hint));
  }
  if (::listen(fd.get(), o.backlog) != 0) {
    return ErrnoError(errno, Cat("listen ", o.address.ToString()));
  }
  return fd;
}

StatusOr<Fd> CreateTcpClient(const ClientOptions& o) {
  ASSIGN_OR_RETURN(Fd fd, NewTcpSocket(o.family, o.nonblocking));
  if (o.mark) RETURN_IF_ERROR(SetMark(fd.get(), *o.mark));
  if (o.transparent) {
    RETURN_IF_ERROR(SetTransparent(fd.get(), true));
    RETURN_IF_ERROR(SetFreebind(fd.get(), true));
  }
  if (o.source) {
    sockaddr_storage ss;
    socklen_t len = o.family == Family::kV6 ? o.source->ToSockaddrV6(&ss)
                                            : o.source->ToSockaddr(&ss);
    if (o.family == Family::kV4 && o.source->ip().is_v6()) {
      return absl::InvalidArgumentError(
          Cat("source ", o.source->ToString(), " is IPv6 but the socket is IPv4"));
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return ErrnoError(errno, Cat("bind source ", o.source->ToString(),
                                            o.transparent ? " (transparent)" : ""));
    }
  }
  return fd;
}

Status ConnectWithTimeout(int fd, const SocketAddress& to, std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(SetNonBlocking(fd, true));
  sockaddr_storage ss;
  socklen_t len = SocketFamily(fd) == AF_INET6 ? to.ToSockaddrV6(&ss) : to.ToSockaddr(&ss);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    return ErrnoError(errno, Cat("connect ", to.ToString()));
  }
  pollfd p{fd, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) return absl::DeadlineExceededError(Cat("connect ", to.ToString(), " timed out"));
  if (n < 0) return ErrnoError(errno, "poll");
  int err = 0;
  socklen_t elen = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return ErrnoError(err, Cat("connect ", to.ToString()));
  return SetNonBlocking(fd, false);
}

StatusOr<Fd> AcceptWithTimeout(int listen_fd, std::chrono::milliseconds timeout) {
  pollfd p{listen_fd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) return absl::DeadlineExceededError("accept timed out");
  if (n < 0) return ErrnoError(errno, "poll");
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "accept");
  return Fd(fd);
}

Status SetNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0) return ErrnoError(errno, "fcntl(F_GETFL)");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return ErrnoError(errno, "fcntl(F_SETFL)");
  return absl::OkStatus();
}

Status SetTcpNoDelay(int fd, bool on) {
  return SetIntOpt(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
}

Status SetKeepalive(int fd, const KeepaliveOptions& o) {
  if (o.user_timeout.has_value()) {
    RETURN_IF_ERROR(SetIntOpt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
                              static_cast<int>(std::min<int64_t>(o.user_timeout->count(), INT32_MAX)),
                              "TCP_USER_TIMEOUT"));
  }
  if (!o.enabled) return absl::OkStatus();
  RETURN_IF_ERROR(SetIntOpt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"));
  RETURN_IF_ERROR(
      SetIntOpt(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(o.time.count()), "TCP_KEEPIDLE"));
  RETURN_IF_ERROR(SetIntOpt(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(o.interval.count()),
                            "TCP_KEEPINTVL"));
  return SetIntOpt(fd, IPPROTO_TCP, TCP_KEEPCNT, o.probes, "TCP_KEEPCNT");
}

Status SetReusePort(int fd, bool on) {
  return SetIntOpt(fd, SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0, "SO_REUSEPORT");
}

Status SetMark(int fd, uint32_t mark) {
  return SetIntOpt(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark), "SO_MARK");
}

StatusOr<uint32_t> GetMark(int fd) {
  uint32_t mark = 0;
  socklen_t len = sizeof(mark);
  if (::getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) != 0) {
    return ErrnoError(errno, "getsockopt(SO_MARK)");
  }
  return mark;
}

Status SetTransparent(int fd, bool on) {
  if (SocketFamily(fd) == AF_INET6) {
    return SetIntOpt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, on ? 1 : 0, "IPV6_TRANSPARENT");
  }
  return SetIntOpt(fd, IPPROTO_IP, IP_TRANSPARENT, on ? 1 : 0, "IP_TRANSPARENT");
}

Status SetFreebind(int fd, bool on) {
  if (SocketFamily(fd) == AF_INET6) {
    return SetIntOpt(fd, IPPROTO_IPV6, IPV6_FREEBIND, on ? 1 : 0, "IPV6_FREEBIND");
  }
  return SetIntOpt(fd, IPPROTO_IP, IP_FREEBIND, on ? 1 : 0, "IP_FREEBIND");
}

StatusOr<SocketAddress> LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoError(errno, "getsockname");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

StatusOr<SocketAddress> PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoError(errno, "getpeername");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

StatusOr<OriginalDestination> OriginalDst(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(sockaddr_in);
  if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &ss, &len) == 0) {
    auto a = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (a.ok()) return OriginalDestination{*a, true};
  }
  ss = {};
  len = sizeof(sockaddr_in6);
  if (::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &ss, &len) == 0) {
    auto a = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (a.ok()) return OriginalDestination{*a, true};
  }
  ASSIGN_OR_RETURN(SocketAddress local, LocalAddress(fd));
  return OriginalDestination{local, false};
}

}  // namespace ambit::net
