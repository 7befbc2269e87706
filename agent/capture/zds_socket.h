// ZDS transport: SOCK_SEQPACKET unix sockets carrying one protobuf per
// datagram, with netns fds in SCM_RIGHTS (ISTIO-COMPAT §4.1). Blocking
// helpers with poll timeouts; used by the ZdsClient thread and test fakes.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/fd.h"

namespace ambit::agent::capture {

// The node agent never sends more than this in one datagram (ztunnel's buffer).
inline constexpr size_t kZdsRecvBufferBytes = 1024;
// Room for this many fds in the control buffer, so that "too many fds" is
// received (and closed) and reported as such instead of as MSG_CTRUNC.
inline constexpr size_t kZdsMaxFdsPerDatagram = 8;

struct ZdsDatagram {
  std::string bytes;
  std::vector<net::Fd> fds;  // owned: closed when dropped
};

// Socket path: a filesystem path, or "@name" for the abstract namespace.
StatusOr<net::Fd> ZdsConnect(std::string_view path);
StatusOr<net::Fd> ZdsListen(std::string_view path);
// Accepts one connection (poll with timeout). DeadlineExceeded on timeout.
StatusOr<net::Fd> ZdsAccept(int listen_fd, std::chrono::milliseconds timeout);

// Sends one datagram, with `fds` (not owned) as SCM_RIGHTS when non-empty.
Status ZdsSend(int fd, std::string_view bytes, std::span<const int> fds = {});

// Waits up to `timeout` for one datagram. Errors: DeadlineExceeded (nothing
// arrived), Unavailable (peer closed), DataLoss (MSG_TRUNC / MSG_CTRUNC;
// any fds that did arrive are closed). `wake_fd` (optional, e.g. an eventfd)
// becoming readable ends the wait with Cancelled.
StatusOr<ZdsDatagram> ZdsRecv(int fd, std::chrono::milliseconds timeout, int wake_fd = -1);

// Waits until `fd` is readable or `wake_fd` fires. Ok = readable;
// DeadlineExceeded; Cancelled when woken.
Status ZdsWaitReadable(int fd, std::chrono::milliseconds timeout, int wake_fd = -1);

}  // namespace ambit::agent::capture
