// Inbound plaintext (15006): traffic to a captured pod from a peer that did
// not use HBONE (uncaptured pod, node). Authorized without a peer identity
// (so PeerAuthentication STRICT refuses it), then relayed to the app from the
// client's own IP.
#include <fmt/format.h>

#include "common/telemetry/peer_labels.h"
#include "common/mesh/inbound.h"
#include "agent/proxy/loop_fd.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"
#include "common/base/log.h"
#include "common/hbone/relay.h"
#include "common/net/socket.h"

namespace ambit::agent {

io::Task<void> HandlePlainInbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                                  net::SocketAddress peer) {
  LoopFd client(w.loop(), std::move(fd));
  auto od = PrepareCaptured(client.get(), /*outbound=*/false, peer);
  if (!od.ok()) co_return;
  const net::SocketAddress target = *od;
  if (mesh::IsIllegalTargetPort(target.port())) {
    LogConnectionFailed(Direction::kInbound, peer, target,
                        absl::InvalidArgumentError("refusing a call to the agent's own port"));
    hbone::AbortOnClose(client.get());
    co_return;
  }
  std::shared_ptr<const AgentState> st = w.state();
  const mesh::Workload* local = st->snapshot->FindWorkload(pod->workload.uid);
  if (local == nullptr) local = &pod->workload;
  const mesh::Workload* src_wl = st->snapshot->FindWorkloadByIp(local->network, peer.ip());

  // destination_service as for HBONE, by target port (no forwarded host).
  const mesh::Service* svc =
      mesh::GuessInboundService(*st->snapshot, *local, target.port(), std::nullopt);

  io::CancelScope scope;
  PeersCache::Key key{4, pod.get(), local, src_wl, svc, {}};
  auto peers = w.peers().Get(key, [&] {
    ConnPeers p = InboundPeersBase(*pod, *local, src_wl);  // no identity, mTLS off
    if (svc != nullptr) p.dst_service = svc->hostname;
    SetServiceLabels(svc, &p.labels);
    p.pod_pin = pod;
    return p;
  });
  AuthzRequest areq{local, peer, target, nullptr};

  if (st->authorize) {
    AuthzDecision d = st->authorize(areq);
    if (!d.allow) {
      ConnectionRecorder rec(w.metrics(), w.index(), w.tracker(), peers, peer, target, nullptr);
      AMBIT_LOG(kInfo, "authz", "denied plaintext {} -> {}: {}{}", peer.ToString(),
                target.ToString(), d.reason, d.policy.empty() ? "" : fmt::format(" [{}]", d.policy));
      hbone::AbortOnClose(client.get());
      rec.Finish(kFlagDeny, absl::PermissionDeniedError(d.reason));
      co_return;
    }
  }

  ConnectionRecorder rec(w.metrics(), w.index(), w.tracker(), std::move(peers), peer, target,
                         &scope);
  rec.set_authz(areq);
  UpstreamOptions uo;
  uo.target = target;
  uo.mark = w.options().packet_mark;
  uo.keepalive = w.options().keepalive;
  uo.timeout = w.options().connect_timeout;
  uo.scope = &scope;
  if (w.options().spoof_source && !(peer.ip() == target.ip())) uo.spoof_source = net::SocketAddress(peer.ip(), 0);
  auto up = co_await ConnectUpstream(w.loop(), w.runner(), w.home_netns(), pod->netns, uo);
  if (!up.ok()) {
    hbone::AbortOnClose(client.get());
    rec.Finish(kFlagConnect, up.status());
    co_return;
  }
  LoopFd upstream(w.loop(), std::move(*up));
  // Relay "up" = from the downstream client; the recorder's inbound mapping
  // expects "up" = from the local app, so relay with the app side first.
  hbone::RelayResult r =
      co_await hbone::RelayTcpTcp(w.loop(), upstream.get(), client.get(), scope, &rec);
  if (!rec.late_rejection().empty()) {
    hbone::AbortOnClose(client.get());
    rec.Finish(kFlagDeny, absl::PermissionDeniedError(rec.late_rejection()));
  } else {
    rec.Finish(r.status.ok() || absl::IsCancelled(r.status) ? std::string(kFlagNone)
                                                              : std::string(kFlagConnect),
               r.status);
  }
}

}  // namespace ambit::agent
