// Inbound HBONE (15008 inside the pod netns): mTLS with the pod's identity,
// then per CONNECT stream the checks of ISTIO-COMPAT §2.4 in order — method
// and authority (400), local workload (503), authority/arrival IP (400),
// target port (503), authorization (401), upstream connect (503) — then 200
// and the relay to the local app from the client's own IP — or, for a
// workload with a PROXY application tunnel (a waypoint), to its tunnel port
// on the pod's loopback behind a PROXY v2 header (§2.7, "sandwich").
#include <fmt/format.h>

#include "common/telemetry/peer_labels.h"
#include "agent/proxy/loop_fd.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"
#include "common/mesh/inbound.h"
#include "common/base/log.h"
#include "common/hbone/connect_codec.h"
#include "common/hbone/relay.h"
#include "common/hbone/stream.h"
#include "common/net/proxy_protocol.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

void Refuse(hbone::HboneStream& stream, int status, const net::SocketAddress& src,
            const net::SocketAddress& dst, const std::string& reason) {
  (void)hbone::RespondConnect(stream, status);
  LogConnectionFailed(Direction::kInbound, src, dst,
                      absl::Status(status == 401 ? absl::StatusCode::kPermissionDenied
                                   : status == 400 ? absl::StatusCode::kInvalidArgument
                                                   : absl::StatusCode::kUnavailable,
                                   fmt::format("{} {}", status, reason)));
}

// What an inbound stream keeps while its bytes flow; the request headers,
// snapshot, labels and authorization input die with SetupInbound's frame.
struct InboundCarried {
  std::unique_ptr<ConnectionRecorder> rec;
  net::Fd upstream;
};

ConnPeers InboundPeers(const PodContext& pod, const mesh::Workload& local,
                       const mesh::Workload* src_wl, const mesh::Service* svc,
                       const std::optional<identity::Identity>& peer_id,
                       const std::string& authority, const std::optional<hbone::Baggage>& baggage) {
  ConnPeers p = InboundPeersBase(pod, local, src_wl);
  // Source unknown by IP (or behind a gateway): its baggage labels it.
  if (src_wl == nullptr && baggage.has_value()) p.labels.source = LabelsFromBaggage(*baggage);
  p.hbone_addr = authority;
  p.mtls = true;
  if (peer_id.has_value()) p.src_identity = peer_id->ToString();
  p.dst_identity = p.labels.destination.principal;
  if (svc != nullptr) p.dst_service = svc->hostname;
  p.peer_identity = peer_id;
  p.labels.source.principal = p.src_identity;
  SetServiceLabels(svc, &p.labels);
  p.labels.mutual_tls = true;
  return p;
}

// The recorder of an accepted CONNECT (identity fields and labels of ISTIO-COMPAT §8).
std::unique_ptr<ConnectionRecorder> RecordInbound(Worker& w,
                                                  const std::shared_ptr<const PodContext>& pod,
                                                  const mesh::Snapshot& snap,
                                                  const mesh::Workload& local,
                                                  const hbone::HboneStream& stream,
                                                  const mesh::InboundTarget& target,
                                                  const hbone::ConnectRequest& req,
                                                  io::CancelScope* scope) {
  const net::SocketAddress src = stream.conn().peer_address();
  const auto& peer_id = stream.conn().peer_identity();
  // Through an east-west gateway the TCP peer is the gateway: no IP lookup.
  const mesh::Workload* src_wl = mesh::FromOtherNetwork(req.forwarded_network, local.network)
                                     ? nullptr
                                     : snap.FindWorkloadByIp(local.network, src.ip());
  const mesh::Service* svc =
      mesh::GuessInboundService(snap, local, target.upstream.port(), req.forwarded.host);
  std::string authority = req.target.ToString();
  std::string key_text = peer_id.has_value() ? peer_id->ToString() : std::string();
  key_text.append("|").append(authority);
  if (src_wl == nullptr && req.baggage) key_text.append("|").append(hbone::FormatBaggage(*req.baggage));
  PeersCache::Key key{3, pod.get(), &local, src_wl, svc, std::move(key_text)};
  auto peers = w.peers().Get(key, [&] {
    ConnPeers p = InboundPeers(*pod, local, src_wl, svc, peer_id, authority, req.baggage);
    p.pod_pin = pod;
    return p;
  });
  auto rec = std::make_unique<ConnectionRecorder>(w.metrics(), w.index(), w.tracker(),
                                                  std::move(peers), src,
                                                  stream.conn().local_address(), scope);
  rec->set_authz(AuthzRequest{&local, src, target.upstream, nullptr});
  return rec;
}

// Authorization (ISTIO-COMPAT §7): src = TCP peer, dst = pod IP:target port.
// False when denied (answered 401, logged and recorded).
bool Authorize(const AgentState& st, hbone::HboneStream& stream, ConnectionRecorder& rec) {
  if (!st.authorize) return true;
  const ConnPeers& info = rec.peers();
  AuthzRequest areq = *rec.authz();
  areq.peer = info.peer_identity.has_value() ? &*info.peer_identity : nullptr;
  AuthzDecision d = st.authorize(areq);
  if (d.allow) return true;
  (void)hbone::RespondConnect(stream, 401);
  AMBIT_LOG(kInfo, "authz", "denied {} -> {} ({}): {}{}", rec.src().ToString(),
            areq.destination_addr.ToString(),
            info.src_identity.empty() ? "no identity" : info.src_identity, d.reason,
            d.policy.empty() ? "" : fmt::format(" [{}]", d.policy));
  rec.Finish(kFlagDeny, absl::PermissionDeniedError(d.reason));
  return false;
}

// Sandwich (ISTIO-COMPAT §2.7): the PROXY v2 header that goes first toward a
// PROXY application tunnel: source = the HBONE client, destination = the
// HBONE target, TLV 0xD0 = the client's SPIFFE identity.
io::Task<Status> WriteProxyHeader(Worker& w, int fd, const ConnectionRecorder& rec,
                                  const mesh::InboundTarget& target, io::CancelScope& scope) {
  net::ProxyHeader h;
  h.source = rec.src();
  h.destination = target.proxy_destination;
  if (!rec.peers().src_identity.empty()) {
    h.tlvs.push_back({net::kProxyTlvPeerIdentity, rec.peers().src_identity});
  }
  auto bytes = net::EncodeProxyV2(h);
  if (!bytes.ok()) co_return bytes.status();
  io::OpOptions o;
  o.scope = &scope;
  o.timeout = w.options().connect_timeout;
  Status st = co_await io::SendAll(
      w.loop(), fd, std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes->data()),
                                               bytes->size()),
      o);
  if (!st.ok()) {
    co_return Status(st.code(), "writing the PROXY header: " + std::string(st.message()));
  }
  AMBIT_LOG(kDebug, "inbound", "app tunnel: PROXY v2 to {} src={} dst={} identity={}",
            target.upstream.ToString(), h.source.ToString(), h.destination.ToString(),
            rec.peers().src_identity);
  co_return absl::OkStatus();
}

// The checks of §2.4 in order, the upstream connect and the 200. Returns no
// recorder when the stream already ended (refused, denied or failed).
io::Task<InboundCarried> SetupInbound(Worker& w, std::shared_ptr<const PodContext> pod,
                                      hbone::HboneStream& stream, http2::H2Headers headers,
                                      io::CancelScope& scope) {
  const net::SocketAddress src = stream.conn().peer_address();
  const net::SocketAddress arrival = stream.conn().local_address();
  auto req = hbone::ParseConnectRequest(headers);
  if (!req.ok()) {
    Refuse(stream, hbone::HttpStatusFor(req.status()), src, arrival, req.status().ToString());
    co_return InboundCarried{};
  }
  std::shared_ptr<const AgentState> st = w.state();
  const mesh::Workload* local = st->snapshot->FindWorkload(pod->workload.uid);
  if (local == nullptr) {
    Refuse(stream, 503, src, arrival, "destination workload unknown");
    co_return InboundCarried{};
  }
  mesh::InboundTarget target =
      mesh::MapInboundAuthority(*st->snapshot, *local, arrival.ip(), req->target.ToString());
  if (target.status != 200) {
    Refuse(stream, target.status, src, arrival, target.reason);
    co_return InboundCarried{};
  }
  InboundCarried c;
  c.rec = RecordInbound(w, pod, *st->snapshot, *local, stream, target, *req, &scope);
  if (!Authorize(*st, stream, *c.rec)) co_return InboundCarried{};
  UpstreamOptions uo;
  uo.target = target.upstream;
  uo.mark = w.options().packet_mark;
  uo.keepalive = w.options().keepalive;
  uo.timeout = w.options().connect_timeout;
  uo.scope = &scope;
  if (target.app_tunnel_proxy) {
    // The header carries the client; the tunnel is reached from the pod's
    // own address, by default over its loopback (LOCALHOST_APP_TUNNEL).
    if (w.options().localhost_app_tunnel) {
      uo.target = {target.upstream.ip().is_v4() ? net::IpAddress::LoopbackV4()
                                                : net::IpAddress::LoopbackV6(),
                   target.upstream.port()};
    }
  } else if (w.options().spoof_source && !(src.ip() == target.upstream.ip())) {
    // Original source: connect from the client's IP unless it is our own
    // (or ENABLE_ORIG_SRC=false).
    uo.spoof_source = net::SocketAddress(src.ip(), 0);
  }
  auto up = co_await ConnectUpstream(w.loop(), w.runner(), w.home_netns(), pod->netns, uo);
  if (!up.ok()) {
    (void)hbone::RespondConnect(stream, 503);
    c.rec->Finish(kFlagConnect, up.status());
    co_return InboundCarried{};
  }
  if (target.app_tunnel_proxy) {
    if (Status s = co_await WriteProxyHeader(w, up->get(), *c.rec, target, scope); !s.ok()) {
      (void)hbone::RespondConnect(stream, 503);
      c.rec->Finish(kFlagConnect, s);
      co_return InboundCarried{};
    }
  }
  c.upstream = std::move(*up);
  http2::H2Headers resp = hbone::BuildConnectResponseHeaders(BaggageFor(*local));
  if (Status s = hbone::RespondConnect(stream, 200, resp); !s.ok()) {
    c.rec->Finish(kFlagConnect, s);
    co_return InboundCarried{};
  }
  co_return c;
}

// Only the stream, the scope and what InboundCarried holds stay for the
// connection's lifetime (memory per idle connection).
io::Task<void> HandleInboundStream(Worker& w, std::shared_ptr<const PodContext> pod,
                                   std::unique_ptr<hbone::HboneStream> stream,
                                   http2::H2Headers headers) {
  io::CancelScope scope;
  InboundCarried c = co_await SetupInbound(w, std::move(pod), *stream, std::move(headers), scope);
  if (c.rec == nullptr) co_return;
  LoopFd upstream(w.loop(), std::move(c.upstream));
  hbone::RelayResult r =
      co_await hbone::RelayTcpStream(w.loop(), upstream.get(), *stream, scope, c.rec.get());
  if (!c.rec->late_rejection().empty()) {
    hbone::AbortOnClose(upstream.get());
    stream->Reset(http2::kH2ConnectError);
    c.rec->Finish(kFlagDeny, absl::PermissionDeniedError(c.rec->late_rejection()));
  } else {
    c.rec->Finish(r.status.ok() || absl::IsCancelled(r.status) ? std::string(kFlagNone)
                                                                 : std::string(kFlagConnect),
                  r.status);
  }
}

}  // namespace

io::Task<void> HandleHboneInbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                                  net::SocketAddress peer) {
  // TCP_NODELAY and keepalive come from the listener (Worker::AddPod).
  auto local = net::LocalAddress(fd.get());  // for the failure log (our 15008 address)
  hbone::ConnOptions opts = w.options().conn;
  Worker* wp = &w;
  hbone::HboneConn::StreamHandler handler =
      [wp, pod](std::unique_ptr<hbone::HboneStream> s, const http2::H2Headers& h) {
        wp->SpawnCounted(HandleInboundStream(*wp, pod, std::move(s), h));
      };
  auto conn = co_await hbone::Accept(w.loop(), std::move(fd), pod->server_tls, opts, handler);
  if (!conn.ok()) {
    LogConnectionFailed(Direction::kInbound, peer, local.ok() ? *local : net::SocketAddress(),
                        conn.status());
    co_return;
  }
  w.TrackInbound(*conn);
}

}  // namespace ambit::agent
