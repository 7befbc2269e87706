// Socket helpers: TCP listeners/clients and the socket options of
// ISTIO-COMPAT §3.1 and §4.1 (keepalive, SO_MARK, IP_TRANSPARENT, IP_FREEBIND,
// SO_ORIGINAL_DST). All take a borrowed fd and return Status/StatusOr.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/base/status.h"
#include "common/net/address.h"
#include "common/net/fd.h"

namespace ambit::net {

// The marks of ISTIO-COMPAT §4.1.
inline constexpr uint32_t kZtunnelMark = 0x539;   // on every agent socket in a pod netns
inline constexpr uint32_t kConnMark = 0x111;      // tproxy / connmark return path
inline constexpr uint32_t kMarkMask = 0xfff;
inline constexpr uint32_t kLocalRouteTable = 100;

enum class Transparent : uint8_t { kOff, kBestEffort, kRequired };

// ztunnel's socket config (KEEPALIVE_*, USER_TIMEOUT_ENABLED). Set on
// listeners, accepted sockets inherit it.
struct KeepaliveOptions {
  bool enabled = true;  // false: SO_KEEPALIVE untouched (off)
  std::chrono::seconds time{180};
  std::chrono::seconds interval{180};
  int probes = 9;
  // TCP_USER_TIMEOUT (unset: the kernel's retransmission limits).
  std::optional<std::chrono::milliseconds> user_timeout;
};

struct ListenerOptions {
  SocketAddress address;  // [::]:port listens dual-stack
  int backlog = 128;
  bool reuse_port = false;
  Transparent transparent = Transparent::kOff;
  std::optional<uint32_t> mark;
  bool nonblocking = true;
};

// socket + options + bind + listen. Errors name the address and the likely
// cause ("address in use", "needs CAP_NET_ADMIN").
StatusOr<Fd> CreateTcpListener(const ListenerOptions& options);

struct ClientOptions {
  Family family = Family::kV4;
  // Bind before connect. With `transparent`, may be a foreign address
  // (source spoofing: IP_TRANSPARENT + IP_FREEBIND).
  std::optional<SocketAddress> source;
  bool transparent = false;
  std::optional<uint32_t> mark;
  bool nonblocking = true;
};

// An unconnected TCP socket ready for connect(2).
StatusOr<Fd> CreateTcpClient(const ClientOptions& options);

// Blocking connect with a deadline (for tools and tests; the data path
// connects through the io loop). Leaves the socket in blocking mode.
Status ConnectWithTimeout(int fd, const SocketAddress& to, std::chrono::milliseconds timeout);

// accept4 with a deadline (poll). For tools and tests.
StatusOr<Fd> AcceptWithTimeout(int listen_fd, std::chrono::milliseconds timeout);

Status SetNonBlocking(int fd, bool on);
Status SetTcpNoDelay(int fd, bool on);
Status SetKeepalive(int fd, const KeepaliveOptions& options);
Status SetReusePort(int fd, bool on);
Status SetMark(int fd, uint32_t mark);
StatusOr<uint32_t> GetMark(int fd);
// IP_TRANSPARENT for AF_INET sockets, IPV6_TRANSPARENT (+ IP_TRANSPARENT for
// the v4-mapped half) for AF_INET6 sockets.
Status SetTransparent(int fd, bool on);
Status SetFreebind(int fd, bool on);

StatusOr<SocketAddress> LocalAddress(int fd);
StatusOr<SocketAddress> PeerAddress(int fd);

struct OriginalDestination {
  SocketAddress address;
  // True when SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST answered; false when we
  // fell back to the local address (TPROXY, or no NAT happened).
  bool from_conntrack = false;
};
// ISTIO-COMPAT §4.1: SO_ORIGINAL_DST, then IP6T_SO_ORIGINAL_DST, then the
// socket's local address. IPv4-mapped results are canonicalised.
StatusOr<OriginalDestination> OriginalDst(int fd);

}  // namespace ambit::net
