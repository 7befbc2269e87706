// Inbound HBONE (15008 inside the pod netns): mTLS with the pod's identity,
// then per CONNECT stream the checks of ISTIO-COMPAT §2.4 in order — method
// and authority (400), local workload (503), authority/arrival IP (400),
// target port (503), authorization (401), upstream connect (503) — then 200
// and the relay to the local app from the client's own IP.
#include <fmt/format.h>

#include "agent/proxy/labels.h"
#include "agent/proxy/loop_fd.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"
#include "agent/state/inbound.h"
#include "common/base/log.h"
#include "common/hbone/connect_codec.h"
#include "common/hbone/relay.h"
#include "common/hbone/stream.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

// Inbound destination_service guess (ISTIO-COMPAT §8.1): forwarded host=, the
// service the authority named, or the first service targeting the port.
const state::Service* GuessService(const state::Snapshot& snap, const state::Workload& local,
                                   const state::InboundTarget& target,
                                   const hbone::ConnectRequest& req) {
  if (req.forwarded.host.has_value()) {
    if (const auto* s = snap.FindServiceByHostname(*req.forwarded.host, local.ns)) return s;
  }
  if (target.service != nullptr) return target.service;
  for (const auto& [key, ports] : local.services) {
    for (const auto& [svc_port, tgt_port] : ports) {
      if (tgt_port == target.upstream.port() || svc_port == target.upstream.port()) {
        if (const auto* s = snap.FindServiceByKey(key)) return s;
      }
    }
  }
  return nullptr;
}

void Refuse(hbone::HboneStream& stream, int status, const net::SocketAddress& src,
            const net::SocketAddress& dst, const std::string& reason) {
  (void)stream.Respond(status);
  LogConnectionFailed(Direction::kInbound, src, dst,
                      absl::Status(status == 401 ? absl::StatusCode::kPermissionDenied
                                   : status == 400 ? absl::StatusCode::kInvalidArgument
                                                   : absl::StatusCode::kUnavailable,
                                   fmt::format("{} {}", status, reason)));
}

io::Task<void> HandleInboundStream(Worker& w, std::shared_ptr<const PodContext> pod,
                                   std::unique_ptr<hbone::HboneStream> stream,
                                   http2::H2Headers headers) {
  const net::SocketAddress src = stream->conn().peer_address();
  const net::SocketAddress arrival = stream->conn().local_address();
  auto req = hbone::ParseConnectRequest(headers);
  if (!req.ok()) {
    Refuse(*stream, hbone::HttpStatusFor(req.status()), src, arrival, req.status().ToString());
    co_return;
  }
  std::shared_ptr<const AgentState> st = w.state();
  const state::Workload* local = st->snapshot->FindWorkload(pod->workload.uid);
  if (local == nullptr) {
    Refuse(*stream, 503, src, arrival, "destination workload unknown");
    co_return;
  }
  state::InboundTarget target =
      state::MapInboundAuthority(*st->snapshot, *local, arrival.ip(), req->target.ToString());
  if (target.status != 200) {
    Refuse(*stream, target.status, src, arrival, target.reason);
    co_return;
  }
  const auto& peer_id = stream->conn().peer_identity();
  const state::Workload* src_wl = st->snapshot->FindWorkloadByIp(local->network, src.ip());

  io::CancelScope scope;
  ConnInfo info;
  info.direction = Direction::kInbound;
  info.pod_uid = pod->uid;
  info.src = src;
  info.dst = arrival;
  info.hbone_addr = req->target.ToString();
  info.mtls = true;
  if (peer_id.has_value()) info.src_identity = peer_id->ToString();
  if (src_wl != nullptr) {
    info.src_workload = src_wl->name;
    info.src_namespace = src_wl->ns;
    info.src_cluster = src_wl->cluster_id;
  }
  info.dst_workload = local->name;
  info.dst_namespace = local->ns;
  info.dst_cluster = local->cluster_id;
  info.dst_identity = pod->identity.ToString();
  info.dst_workload_uid = local->uid;
  const state::Service* svc = GuessService(*st->snapshot, *local, target, *req);
  if (svc != nullptr) info.dst_service = svc->hostname;
  AuthzRequest areq{local, src, target.upstream, nullptr};
  info.authz = areq;
  info.peer_identity = peer_id;

  ConnectionLabels labels;
  labels.reporter_source = false;
  labels.source = LabelsFor(src_wl);
  if (peer_id.has_value()) labels.source.principal = peer_id->ToString();
  labels.destination = LabelsFor(local);
  labels.destination.principal = pod->identity.ToString();
  SetServiceLabels(svc, &labels);
  labels.mutual_tls = true;

  // Authorization (ISTIO-COMPAT §7): src = TCP peer, dst = pod IP:target port.
  if (st->authorize) {
    areq.peer = peer_id.has_value() ? &*peer_id : nullptr;
    AuthzDecision d = st->authorize(areq);
    if (!d.allow) {
      ConnectionRecorder rec(w.metrics(), w.index(), w.tracker(), info, labels, nullptr);
      (void)stream->Respond(401);
      AMBIT_LOG(kInfo, "authz", "denied {} -> {} ({}): {}{}", src.ToString(),
                target.upstream.ToString(), info.src_identity.empty() ? "no identity" : info.src_identity,
                d.reason, d.policy.empty() ? "" : fmt::format(" [{}]", d.policy));
      rec.Finish(kFlagDeny, absl::PermissionDeniedError(d.reason));
      co_return;
    }
  }

  ConnectionRecorder rec(w.metrics(), w.index(), w.tracker(), info, labels, &scope);
  UpstreamOptions uo;
  uo.target = target.upstream;
  uo.mark = w.options().packet_mark;
  uo.timeout = w.options().connect_timeout;
  uo.scope = &scope;
  // Original source: connect from the client's IP unless it is our own.
  if (!(src.ip() == target.upstream.ip())) uo.spoof_source = net::SocketAddress(src.ip(), 0);
  auto up = co_await ConnectUpstream(w.loop(), w.runner(), w.home_netns(), pod->netns, uo);
  if (!up.ok()) {
    (void)stream->Respond(503);
    rec.Finish(kFlagConnect, up.status());
    co_return;
  }
  LoopFd upstream(w.loop(), std::move(*up));
  hbone::Baggage dest = BaggageFor(*local);
  http2::H2Headers resp = hbone::BuildConnectResponseHeaders(dest);
  if (Status s = stream->Respond(200, resp); !s.ok()) {
    rec.Finish(kFlagConnect, s);
    co_return;
  }
  hbone::RelayResult r = co_await hbone::RelayTcpStream(w.loop(), upstream.get(), *stream, scope, &rec);
  if (!rec.late_rejection().empty()) {
    hbone::AbortOnClose(upstream.get());
    stream->Reset(http2::kH2ConnectError);
    rec.Finish(kFlagDeny, absl::PermissionDeniedError(rec.late_rejection()));
  } else {
    rec.Finish(r.status.ok() || absl::IsCancelled(r.status) ? std::string(kFlagNone)
                                                              : std::string(kFlagConnect),
               r.status);
  }
}

}  // namespace

io::Task<void> HandleHboneInbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                                  net::SocketAddress peer) {
  (void)net::SetTcpNoDelay(fd.get(), true);
  (void)net::SetKeepalive(fd.get(), {});
  auto local = net::LocalAddress(fd.get());  // for the failure log (our 15008 address)
  hbone::ConnOptions opts = w.options().conn;
  Worker* wp = &w;
  hbone::HboneConn::StreamHandler handler =
      [wp, pod](std::unique_ptr<hbone::HboneStream> s, const http2::H2Headers& h) {
        wp->SpawnCounted(HandleInboundStream(*wp, pod, std::move(s), h));
      };
  auto conn = co_await hbone::HboneConn::Accept(w.loop(), std::move(fd), pod->server_tls, opts, handler);
  if (!conn.ok()) {
    LogConnectionFailed(Direction::kInbound, peer, local.ok() ? *local : net::SocketAddress(),
                        conn.status());
    co_return;
  }
  w.TrackInbound(*conn);
}

}  // namespace ambit::agent
