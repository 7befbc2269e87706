#include "agent/proxy/upstream.h"

#include <fmt/format.h>

#include "agent/proxy/conn_record.h"
#include "common/base/error.h"
#include "common/io/event.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

struct PendingSocket {
  explicit PendingSocket(io::Loop& loop) : done(loop) {}
  io::Event done;
  StatusOr<net::Fd> result = absl::UnknownError("socket not created");
};

StatusOr<net::Fd> MakeSocket(const UpstreamOptions& o) {
  net::ClientOptions co;
  co.family = o.target.family();
  co.mark = o.mark;
  if (o.spoof_source.has_value()) {
    co.source = *o.spoof_source;
    co.transparent = true;
  }
  co.nonblocking = true;
  ASSIGN_OR_RETURN(net::Fd fd, net::CreateTcpClient(co));
  RETURN_IF_ERROR(net::SetTcpNoDelay(fd.get(), true));
  RETURN_IF_ERROR(net::SetKeepalive(fd.get(), o.keepalive));
  return fd;
}

}  // namespace

io::Task<StatusOr<net::Fd>> ConnectUpstream(io::Loop& loop, net::NetnsRunner& runner,
                                            const net::NetnsHandle* home,
                                            std::shared_ptr<const net::NetnsHandle> netns,
                                            UpstreamOptions options) {
  StatusOr<net::Fd> fd = absl::UnknownError("socket not created");
  if (netns == nullptr) {
    fd = MakeSocket(options);
  } else if (home != nullptr) {
    fd = net::CreateSocketOnThisThread(*home, *netns, [&options]() { return MakeSocket(options); });
  } else {
    auto pending = std::make_shared<PendingSocket>(loop);
    io::Loop* lp = &loop;
    runner.Post(
        *netns, [options]() { return MakeSocket(options); },
        [pending, lp](StatusOr<net::Fd> r) {
          auto holder = std::make_shared<StatusOr<net::Fd>>(std::move(r));
          lp->Post([pending, holder]() {
            pending->result = std::move(*holder);
            pending->done.Set();
          });
        });
    Status waited = co_await pending->done.Wait({.scope = options.scope});
    if (!waited.ok()) co_return waited;
    fd = std::move(pending->result);
  }
  if (!fd.ok()) {
    co_return base::WithReason(
        absl::Status(fd.status().code(), fmt::format("creating a socket toward {}: {}",
                                                     options.target.ToString(),
                                                     fd.status().ToString())),
        base::ErrorReason::kConnectFailed);
  }
  sockaddr_storage ss{};
  socklen_t len = options.target.ToSockaddr(&ss);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len,
                                    {.scope = options.scope, .timeout = options.timeout});
  if (!st.ok()) {
    (void)co_await loop.Close(fd->Release());
    if (absl::IsDeadlineExceeded(st)) {
      co_return base::WithReason(
          absl::DeadlineExceededError(fmt::format(
              "connect to {} timed out after {}s: is the destination up, and does a "
              "NetworkPolicy allow it?",
              options.target.ToString(),
              std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count())),
          base::ErrorReason::kConnectTimeout);
    }
    co_return base::WithReason(
        absl::Status(st.code(),
                     fmt::format("connect to {}: {}", options.target.ToString(), st.ToString())),
        absl::IsCancelled(st) ? base::ErrorReason::kCancelled : base::ErrorReason::kConnectFailed);
  }
  co_return std::move(*fd);
}

StatusOr<net::SocketAddress> PrepareCaptured(int fd, bool outbound, const net::SocketAddress& peer) {
  // TCP_NODELAY and keepalive come from the listener (Worker::AddPod).
  auto od = net::OriginalDst(fd);
  if (!od.ok()) {
    LogConnectionFailed(outbound ? Direction::kOutbound : Direction::kInbound, peer, {}, od.status());
    return od.status();
  }
  return od->address;
}

}  // namespace ambit::agent
