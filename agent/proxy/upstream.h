// Upstream sockets of the data path. Sockets that must live in a pod's
// network namespace are created by the netns helper thread (NetnsRunner) and
// connected from the worker's loop; the worker never enters a namespace.
#pragma once

#include <memory>
#include <optional>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "common/net/address.h"
#include "common/net/fd.h"
#include "common/net/netns.h"
#include "common/net/socket.h"

namespace ambit::agent {

struct UpstreamOptions {
  net::SocketAddress target;
  // Bind to this (possibly foreign) source first: IP_TRANSPARENT + IP_FREEBIND.
  std::optional<net::SocketAddress> spoof_source;
  std::optional<uint32_t> mark;
  net::KeepaliveOptions keepalive;
  base::Duration timeout = std::chrono::seconds(10);
  io::CancelScope* scope = nullptr;
};

// A socket created inside `netns` (nullptr: the agent's own netns) and
// connected to options.target. Errors name the target and the likely cause.
// The socket is made on this thread (setns there and back) when the worker
// knows its own netns (`home`), else on the NetnsRunner thread.
io::Task<StatusOr<net::Fd>> ConnectUpstream(io::Loop& loop, net::NetnsRunner& runner,
                                            const net::NetnsHandle* home,
                                            std::shared_ptr<const net::NetnsHandle> netns,
                                            UpstreamOptions options);

// A captured connection just accepted on 15001/15006: its original
// destination (TCP_NODELAY and keepalive, ISTIO-COMPAT §3.1, are inherited
// from the listener: Worker::AddPod). On error the connection is logged as
// failed (direction as given).
StatusOr<net::SocketAddress> PrepareCaptured(int fd, bool outbound, const net::SocketAddress& peer);

}  // namespace ambit::agent
