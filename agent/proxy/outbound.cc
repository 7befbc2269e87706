// Outbound (15001): a captured connection from a local pod. Recover the
// original destination, decide the route (ISTIO-COMPAT §5.7), then carry the
// bytes in HBONE, plain TCP, or pass them through.
#include <fmt/format.h>

#include "common/telemetry/peer_labels.h"
#include "agent/proxy/loop_fd.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"
#include "common/mesh/decision.h"
#include "common/base/error.h"
#include "common/base/log.h"
#include "common/hbone/connect_codec.h"
#include "common/hbone/relay.h"
#include "common/hbone/stream.h"
#include "common/io/event.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

// Dials a pooled HBONE connection from inside the pod's netns.
io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> DialHbone(
    Worker* w, std::shared_ptr<const PodContext> pod, net::SocketAddress next_hop,
    std::vector<identity::Identity> expected) {
  UpstreamOptions uo;
  uo.target = next_hop;
  uo.mark = w->options().packet_mark;
  uo.keepalive = w->options().keepalive;
  uo.timeout = w->options().connect_timeout;
  auto fd = co_await ConnectUpstream(w->loop(), w->runner(), w->home_netns(), pod->netns, uo);
  if (!fd.ok()) co_return fd.status();
  hbone::ConnOptions opts = w->options().conn;
  co_return co_await hbone::Handshake(w->loop(), std::move(*fd), pod->client_tls,
                                      std::move(expected), opts);
}

// response_flags of a failed tunnel setup, from its typed reason.
std::string FlagFor(const Status& st) {
  switch (base::ReasonOf(st)) {
    case base::ErrorReason::kDenied: return std::string(kFlagDeny);
    case base::ErrorReason::kConnectTimeout: return std::string(kFlagNetworkPolicy);
    case base::ErrorReason::kTlsHandshake:
    case base::ErrorReason::kTlsTimeout: return std::string(kFlagTlsFailure);
    default: return std::string(kFlagConnect);
  }
}

// What a captured connection keeps while its bytes flow. The setup (decision,
// labels, pool key, dial closure, CONNECT headers, snapshot) lives in the
// frames of the Setup* coroutines and is freed once the stream is open.
struct Carried {
  std::unique_ptr<ConnectionRecorder> rec;
  std::unique_ptr<hbone::HboneStream> stream;  // HBONE
  net::Fd upstream;                            // plain TCP
};

ConnPeers HbonePeers(const PodContext& pod, const mesh::HboneRoute& route) {
  ConnPeers p;
  p.direction = Direction::kOutbound;
  p.pod_uid = pod.uid;
  p.hbone_addr = route.authority.ToString();
  p.mtls = true;
  p.src_identity = pod.identity.ToString();
  p.src_workload = pod.workload.name;
  p.src_namespace = pod.workload.ns;
  p.src_cluster = pod.workload.cluster_id;
  if (route.upstream != nullptr) {
    p.dst_workload = route.upstream->name;
    p.dst_namespace = route.upstream->ns;
    p.dst_cluster = route.upstream->cluster_id;
    p.dst_identity = route.upstream->Identity();
  }
  if (route.service != nullptr) p.dst_service = route.service->hostname;
  ConnectionLabels& labels = p.labels;
  labels.reporter_source = true;
  labels.source = LabelsFor(&pod.workload);
  labels.source.principal = p.src_identity;
  labels.destination = LabelsFor(route.upstream);
  labels.destination.principal = p.dst_identity;
  SetServiceLabels(route.service, &labels);
  labels.mutual_tls = true;
  return p;
}

std::unique_ptr<ConnectionRecorder> RecordHbone(Worker& w, const std::shared_ptr<const PodContext>& pod,
                                                const net::SocketAddress& peer,
                                                const mesh::HboneRoute& route,
                                                io::CancelScope* scope) {
  PeersCache::Key key{1, pod.get(), route.upstream, route.service, nullptr,
                      route.authority.ToString()};
  auto peers = w.peers().Get(key, [&] {
    ConnPeers p = HbonePeers(*pod, route);
    p.pod_pin = pod;
    return p;
  });
  return std::make_unique<ConnectionRecorder>(w.metrics(), w.index(), w.tracker(),
                                              std::move(peers), peer, route.next_hop, scope);
}

StatusOr<http2::H2Headers> ConnectHeaders(const PodContext& pod, const net::SocketAddress& peer,
                                          const mesh::HboneRoute& route, std::string* authority) {
  ASSIGN_OR_RETURN(auto auth,
                   hbone::AuthorityFromIp(route.authority.ip().ToString(), route.authority.port()));
  hbone::OutboundConnect req;
  req.target = auth;
  req.source = BaggageFor(pod.workload);
  req.client_ip = peer.ip().ToString();
  req.client_port = peer.port();
  if (route.service != nullptr) req.service_host = route.service->hostname;
  *authority = auth.ToString();
  return hbone::BuildConnectHeaders(req);
}

// `route` points into w.state()'s snapshot, which the caller's frame holds.
io::Task<Carried> SetupHbone(Worker& w, std::shared_ptr<const PodContext> pod, int client,
                             net::SocketAddress peer, const mesh::HboneRoute& route,
                             io::CancelScope& scope) {
  Carried c;
  c.rec = RecordHbone(w, pod, peer, route, &scope);
  std::string authority;
  auto headers = ConnectHeaders(*pod, peer, route, &authority);
  if (!headers.ok()) {
    c.rec->Finish(kFlagConnect, headers.status());
    co_return Carried{};
  }
  std::vector<identity::Identity> expected;
  for (const std::string& s : route.expected_identities) {
    if (auto id = identity::Identity::Parse(s); id.ok()) expected.push_back(*id);
  }
  hbone::PoolKey key{pod->identity.ToString(), route.expected_identities,
                     route.next_hop.ToString(), pod->workload.addresses.empty()
                                                    ? std::string()
                                                    : pod->workload.addresses[0].ToString()};
  Worker* wp = &w;
  hbone::HbonePool::DialFn dial = [wp, pod, next_hop = route.next_hop, expected]() {
    return DialHbone(wp, pod, next_hop, expected);
  };
  auto stream = co_await w.pool().Connect(std::move(key), std::move(dial), std::move(authority),
                                          std::move(*headers), w.options().connect_timeout);
  if (!stream.ok()) {
    c.rec->Finish(FlagFor(stream.status()), stream.status());
    hbone::AbortOnClose(client);
    co_return Carried{};
  }
  c.stream = std::move(*stream);
  co_return c;
}

ConnPeers TcpPeers(const PodContext& pod, const mesh::Workload* upstream,
                   const mesh::Service* service) {
  ConnPeers p;
  p.direction = Direction::kOutbound;
  p.pod_uid = pod.uid;
  p.src_workload = pod.workload.name;
  p.src_namespace = pod.workload.ns;
  p.src_cluster = pod.workload.cluster_id;
  if (upstream != nullptr) {
    p.dst_workload = upstream->name;
    p.dst_namespace = upstream->ns;
    p.dst_cluster = upstream->cluster_id;
  }
  if (service != nullptr) p.dst_service = service->hostname;
  ConnectionLabels& labels = p.labels;
  labels.reporter_source = true;
  labels.source = LabelsFor(&pod.workload);
  labels.source.principal = pod.identity.ToString();
  labels.destination = LabelsFor(upstream);
  SetServiceLabels(service, &labels);
  return p;
}

std::unique_ptr<ConnectionRecorder> RecordTcp(Worker& w, const std::shared_ptr<const PodContext>& pod,
                                              const net::SocketAddress& peer,
                                              const net::SocketAddress& target,
                                              const mesh::Workload* upstream,
                                              const mesh::Service* service,
                                              io::CancelScope* scope) {
  PeersCache::Key key{2, pod.get(), upstream, service, nullptr, {}};
  auto peers = w.peers().Get(key, [&] {
    ConnPeers p = TcpPeers(*pod, upstream, service);
    p.pod_pin = pod;
    return p;
  });
  return std::make_unique<ConnectionRecorder>(w.metrics(), w.index(), w.tracker(),
                                              std::move(peers), peer, target, scope);
}

// `upstream`/`service` point into w.state()'s snapshot, which the caller's frame holds.
io::Task<Carried> SetupTcp(Worker& w, std::shared_ptr<const PodContext> pod, int client,
                           net::SocketAddress peer, net::SocketAddress target,
                           const mesh::Workload* upstream, const mesh::Service* service,
                           io::CancelScope& scope) {
  Carried c;
  c.rec = RecordTcp(w, pod, peer, target, upstream, service, &scope);
  UpstreamOptions uo;
  uo.target = target;
  uo.mark = w.options().packet_mark;
  uo.keepalive = w.options().keepalive;
  uo.timeout = w.options().connect_timeout;
  uo.scope = &scope;
  auto up = co_await ConnectUpstream(w.loop(), w.runner(), w.home_netns(), pod->netns, uo);
  if (!up.ok()) {
    c.rec->Finish(kFlagConnect, up.status());
    hbone::AbortOnClose(client);
    co_return Carried{};
  }
  c.upstream = std::move(*up);
  co_return c;
}

struct PendingLookup {
  explicit PendingLookup(io::Loop& l) : done(l) {}
  io::Event done;
  HostLookup result;
};

// Resolves a hostname-only workload on demand (the connection waits, the
// worker goes on) and picks an address as ztunnel does.
io::Task<StatusOr<net::IpAddress>> ResolveWorkload(Worker& w, const AgentState& st,
                                                   const mesh::Workload& source,
                                                   const mesh::ResolveRoute& r,
                                                   io::CancelScope& scope) {
  const std::string& host = r.upstream->hostname;
  if (!st.resolve_host) {
    co_return absl::FailedPreconditionError(
        fmt::format("workload {} has only a hostname ({}) and on-demand DNS is off",
                    r.upstream->uid, host));
  }
  auto pending = std::make_shared<PendingLookup>(w.loop());
  io::Loop* loop = &w.loop();
  st.resolve_host(host, source, [pending, loop](HostLookup l) {
    auto holder = std::make_shared<HostLookup>(std::move(l));
    loop->Post([pending, holder] {
      pending->result = std::move(*holder);
      pending->done.Set();
    });
  });
  Status waited = co_await pending->done.Wait({.scope = &scope});
  if (!waited.ok()) co_return waited;
  if (!pending->result.status.ok()) co_return pending->result.status;
  auto ip = mesh::PickResolvedIp(pending->result.addresses, r.original.ip(), w.rng());
  if (!ip) co_return absl::NotFoundError(fmt::format("{} resolved to no address", host));
  co_return *ip;
}

// Original destination, route decision and the upstream side. Returns no
// recorder when the connection already ended (failures are logged).
io::Task<Carried> SetupOutbound(Worker& w, std::shared_ptr<const PodContext> pod, int client,
                                net::SocketAddress peer, io::CancelScope& scope) {
  auto od = PrepareCaptured(client, /*outbound=*/true, peer);
  if (!od.ok()) co_return Carried{};
  const net::SocketAddress target = *od;
  std::shared_ptr<const AgentState> st = w.state();
  const mesh::Workload* source = st->snapshot->FindWorkload(pod->workload.uid);
  if (source == nullptr) source = &pod->workload;
  mesh::Decision d = mesh::Decide(*st->snapshot, *source, target, w.rng());
  AMBIT_LOG(kDebug, "outbound", "{} -> {}: {}", peer.ToString(), target.ToString(),
            mesh::DescribeDecision(d));
  if (auto* r = std::get_if<mesh::ResolveRoute>(&d)) {
    const mesh::ResolveRoute route = *r;
    auto ip = co_await ResolveWorkload(w, *st, *source, route, scope);
    if (!ip.ok()) {
      LogConnectionFailed(Direction::kOutbound, peer, target,
                          base::WithContext(ip.status(), "on-demand DNS for workload " +
                                                             route.upstream->uid));
      hbone::AbortOnClose(client);
      co_return Carried{};
    }
    d = mesh::CompleteResolved(route, *ip);
    AMBIT_LOG(kDebug, "outbound", "{} -> {}: {} resolved to {}: {}", peer.ToString(),
              target.ToString(), route.upstream->hostname, ip->ToString(),
              mesh::DescribeDecision(d));
  }
  if (auto* h = std::get_if<mesh::HboneRoute>(&d)) {
    co_return co_await SetupHbone(w, std::move(pod), client, peer, *h, scope);
  }
  if (auto* t = std::get_if<mesh::TcpRoute>(&d)) {
    co_return co_await SetupTcp(w, std::move(pod), client, peer, t->target, t->upstream,
                                t->service, scope);
  }
  if (auto* p = std::get_if<mesh::PassthroughRoute>(&d)) {
    co_return co_await SetupTcp(w, std::move(pod), client, peer, p->target, nullptr, nullptr,
                                scope);
  }
  const auto& e = std::get<mesh::DecisionError>(d);
  LogConnectionFailed(Direction::kOutbound, peer, target, absl::UnavailableError(e.reason));
  hbone::AbortOnClose(client);
  co_return Carried{};
}

std::string FinishFlag(const Status& st) {
  return st.ok() || absl::IsCancelled(st) ? std::string(kFlagNone) : std::string(kFlagConnect);
}

}  // namespace

// Only the client fd, the scope and what Carried holds stay for the
// connection's lifetime (memory per idle connection).
io::Task<void> HandleOutbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                              net::SocketAddress peer) {
  LoopFd client(w.loop(), std::move(fd));
  io::CancelScope scope;
  Carried c = co_await SetupOutbound(w, std::move(pod), client.get(), peer, scope);
  if (c.rec == nullptr) co_return;
  if (c.stream != nullptr) {
    hbone::RelayResult r =
        co_await hbone::RelayTcpStream(w.loop(), client.get(), *c.stream, scope, c.rec.get());
    c.rec->Finish(FinishFlag(r.status), r.status);
    co_return;
  }
  LoopFd upstream(w.loop(), std::move(c.upstream));
  hbone::RelayResult r =
      co_await hbone::RelayTcpTcp(w.loop(), client.get(), upstream.get(), scope, c.rec.get());
  c.rec->Finish(FinishFlag(r.status), r.status);
}

}  // namespace ambit::agent
