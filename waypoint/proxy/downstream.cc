// Downstream connections: HBONE on 15008 (mTLS with the waypoint's identity,
// one CONNECT stream per client connection), and the sandwich form (plain
// TCP from this pod's agent on 127.0.0.1:P with a PROXY v2 header first).
// Both end in ServeDownstream once the destination is resolved.
#include "waypoint/proxy/downstream.h"

#include <fmt/format.h>

#include <cstring>

#include "common/base/log.h"
#include "common/hbone/conn.h"
#include "common/hbone/connect_codec.h"
#include "common/io/fd_stream.h"
#include "common/net/proxy_protocol.h"
#include "common/net/socket.h"
#include "common/telemetry/peer_labels.h"
#include "waypoint/proxy/lb_request.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Longest request method token we sniff for (RFC 9110 methods + WebDAV).
constexpr size_t kMaxMethod = 16;

bool IsTokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view AsText(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

std::string Target::Describe() const {
  if (service != nullptr) return fmt::format("{}:{}", service->hostname, port);
  if (workload != nullptr) return fmt::format("{}/{}:{}", workload->ns, workload->name, port);
  return authority.ToString();
}

StatusOr<Target> ResolveTarget(const WaypointState& state, const net::SocketAddress& authority) {
  Target t;
  t.authority = authority;
  t.port = authority.port();
  mesh::AddressMatch m = state.snapshot->FindAddress(state.self.network, authority.ip(), "");
  if (const auto* s = std::get_if<const mesh::Service*>(&m)) {
    t.service = *s;
    if (t.service->ports.count(t.port) == 0) {
      return absl::NotFoundError(
          fmt::format("service {} has no port {}", t.service->hostname, t.port));
    }
    t.protocol = t.service->PortProtocol(t.port);
  } else if (const auto* w = std::get_if<const mesh::Workload*>(&m)) {
    if ((*w)->uid == state.self.uid) {
      return absl::InvalidArgumentError("the waypoint's own address is not a destination");
    }
    t.workload = *w;
  } else {
    return absl::NotFoundError(fmt::format("no service or workload at {}", authority.ToString()));
  }
  return t;
}

RequestInfo Downstream::NewRequest(base::MonoTime now) const {
  RequestInfo r;
  r.start = now;
  r.downstream_remote = peer;
  r.downstream_local = target.authority;
  r.source_principal = principal;
  r.source = source;
  r.service = target.service;
  r.mutual_tls = mtls;
  r.generation = state->generation;
  r.observability = state->observability.get();
  return r;
}

std::string Downstream::ClusterName() const {
  if (target.service != nullptr) return waypoint::ClusterName(*target.service, target.port);
  return fmt::format("inbound-pod|{}||{}", target.port, target.authority.ip().ToString());
}

EndpointPtr Downstream::PickEndpoint(const std::string& avoid,
                                     std::optional<uint64_t> hash,
                                     const EndpointFilter* filter,
                                     const std::vector<uint32_t>* exclude_priorities) const {
  if (target.service != nullptr) {
    // (No DestinationRule policy at all: skip building the cluster name.)
    const route::TrafficPolicy* policy =
        state->routes != nullptr && !state->routes->policies.empty()
            ? state->routes->PolicyFor(ClusterName())
            : nullptr;
    if (!hash && policy != nullptr && policy->load_balancer &&
        policy->load_balancer->hash_key == route::LoadBalancerPolicy::HashKey::kSourceIp) {
      hash = HashRequest(*policy->load_balancer, nullptr, peer.ip(), 0).hash;  // TCP
    }
    return worker.picker().Pick(state->snapshot, *target.service, target.port, state->self,
                                {.policy = policy, .hash = hash, .avoid = avoid, .filter = filter,
                                 .exclude_priorities = exclude_priorities});
  }
  const mesh::Workload* w = target.workload;
  if (w == nullptr || w->status != mesh::WorkloadStatus::kHealthy) return nullptr;
  auto e = std::make_shared<UpstreamEndpoint>();
  e->workload = w;
  e->address = target.authority;
  e->identities = {w->Identity()};
  e->hbone = w->protocol == mesh::TunnelProtocol::kHbone;
  e->ComputeKeys();
  return e;
}

Sniffed SniffProtocol(std::span<const std::byte> first) {
  std::string_view s = AsText(first);
  if (s.empty()) return Sniffed::kNeedMore;
  const size_t n = std::min(s.size(), kH2Preface.size());
  if (s.substr(0, n) == kH2Preface.substr(0, n)) {
    return s.size() >= kH2Preface.size() ? Sniffed::kHttp2 : Sniffed::kNeedMore;
  }
  // HTTP/1.x: a method token, a space, then a request line.
  size_t i = 0;
  while (i < s.size() && i <= kMaxMethod && IsTokenChar(s[i])) ++i;
  if (i == s.size()) return i <= kMaxMethod ? Sniffed::kNeedMore : Sniffed::kOther;
  if (i == 0 || s[i] != ' ') return Sniffed::kOther;
  return Sniffed::kHttp1;
}

io::Task<void> ServeDownstream(Downstream d, io::ByteStream& stream) {
  mesh::AppProtocol proto = d.target.protocol;
  if (proto == mesh::AppProtocol::kHttp11) {
    // An `http` port takes HTTP/1.1 or HTTP/2 with prior knowledge (Envoy's
    // AUTO codec): only the h2 preface switches to HTTP/2; anything else is
    // parsed as HTTP/1.1 (and refused with a 400 if it is not).
    const base::MonoTime deadline =
        d.worker.loop().Now() + d.worker.options().request_headers_timeout;
    for (;;) {
      const base::Duration left = deadline - d.worker.loop().Now();
      if (left <= base::Duration::zero()) break;
      auto chunk = co_await stream.Peek({.scope = d.scope, .timeout = left});
      if (!chunk.ok() || chunk->empty()) break;  // the HTTP/1.1 codec sees the same
      Sniffed what = SniffProtocol(*chunk);
      if (what == Sniffed::kHttp2) proto = mesh::AppProtocol::kHttp2;
      const std::string_view preface = kH2Preface.substr(0, std::min(chunk->size(),
                                                                    kH2Preface.size()));
      if (what != Sniffed::kNeedMore || AsText(*chunk).substr(0, preface.size()) != preface) break;
      (void)co_await d.worker.loop().Sleep(std::chrono::milliseconds(5), {.scope = d.scope});
    }
  } else if (proto == mesh::AppProtocol::kUnknown) {
    // Not declared: look at the first bytes (client-first protocols); a
    // silent client past the timeout is treated as TCP (server-first).
    const base::MonoTime deadline = d.worker.loop().Now() + d.worker.options().sniff_timeout;
    Sniffed what = Sniffed::kNeedMore;
    while (what == Sniffed::kNeedMore) {
      const base::Duration left = deadline - d.worker.loop().Now();
      if (left <= base::Duration::zero()) break;
      auto chunk = co_await stream.Peek({.scope = d.scope, .timeout = left});
      if (!chunk.ok()) {
        if (absl::IsDeadlineExceeded(chunk.status())) break;
        co_return;  // reset / cancelled before a byte: nothing to serve
      }
      if (chunk->empty()) {  // clean EOF before any byte
        stream.CloseWrite();
        co_return;
      }
      what = SniffProtocol(*chunk);
      if (what == Sniffed::kNeedMore && chunk->size() >= 64) what = Sniffed::kOther;
      // Peek hands out the same bytes until they are consumed: give a
      // partial first segment a moment to grow.
      if (what == Sniffed::kNeedMore) {
        (void)co_await d.worker.loop().Sleep(std::chrono::milliseconds(5), {.scope = d.scope});
      }
    }
    proto = what == Sniffed::kHttp1   ? mesh::AppProtocol::kHttp11
            : what == Sniffed::kHttp2 ? mesh::AppProtocol::kHttp2
                                      : mesh::AppProtocol::kTcp;
  }
  switch (proto) {
    case mesh::AppProtocol::kHttp11:
      co_await ServeHttp1(d, stream);
      break;
    case mesh::AppProtocol::kHttp2:
    case mesh::AppProtocol::kGrpc:
      co_await ServeHttp2(d, stream);
      break;
    default:  // TCP, TLS, unknown: L4 relay to an endpoint
      co_await ServeTcp(d, stream);
      break;
  }
}

// ---- HBONE ------------------------------------------------------------------

namespace {

io::Task<void> HandleConnectStream(Worker& w, std::unique_ptr<hbone::HboneStream> stream,
                                   http2::H2Headers headers) {
  io::CancelScope scope;
  std::shared_ptr<const WaypointState> st = w.state();
  const net::SocketAddress peer = stream->conn().peer_address();
  auto req = hbone::ParseConnectRequest(headers);
  if (!req.ok()) {
    w.CountConnectRejected("bad_request");
    AMBIT_LOG(kWarn, "waypoint", "CONNECT from {} rejected: {}", peer.ToString(),
              req.status().ToString());
    (void)hbone::RespondConnect(*stream, 400);
    co_return;
  }
  auto authority = net::SocketAddress::Parse(req->target.ToString());
  if (!req->target.IsIp() || !authority.ok()) {
    w.CountConnectRejected("hostname_authority");
    (void)hbone::RespondConnect(*stream, 400);
    co_return;
  }
  auto target = ResolveTarget(*st, *authority);
  if (!target.ok()) {
    w.CountConnectRejected("unknown_destination");
    AMBIT_LOG(kWarn, "waypoint", "CONNECT from {} to {}: {}", peer.ToString(),
              authority->ToString(), std::string(target.status().message()));
    (void)hbone::RespondConnect(*stream, absl::IsInvalidArgument(target.status()) ? 400 : 503);
    co_return;
  }
  Downstream d{w, st, *target, peer};
  if (const auto& id = stream->conn().peer_identity(); id.has_value()) {
    d.principal = id->ToString();
  }
  d.source = st->snapshot->FindWorkloadByIp(st->self.network, peer.ip());
  d.mtls = true;
  d.scope = &scope;
  if (Status s = hbone::RespondConnect(*stream, 200,
                                       hbone::BuildConnectResponseHeaders(
                                           telemetry::BaggageFor(st->self)));
      !s.ok()) {
    co_return;
  }
  co_await ServeDownstream(std::move(d), *stream);
  // Let the tail we wrote (and our END_STREAM) reach the client before the
  // stream object goes (dropping it early would reset it).
  if (stream->write_closed() && !scope.cancelled()) {
    (void)co_await stream->AwaitClosed({.timeout = std::chrono::seconds(5)});
  }
}

}  // namespace

io::Task<void> HandleHboneConnection(Worker& w, net::Fd fd, net::SocketAddress peer) {
  std::shared_ptr<const WaypointState> st = w.state();
  hbone::ConnOptions opts = w.options().upstream.conn;
  Worker* wp = &w;
  hbone::HboneConn::StreamHandler handler = [wp](std::unique_ptr<hbone::HboneStream> s,
                                                 const http2::H2Headers& h) {
    wp->SpawnCounted(HandleConnectStream(*wp, std::move(s), h));
  };
  auto conn = co_await hbone::Accept(w.loop(), std::move(fd), st->server_tls, opts, handler);
  if (!conn.ok()) {
    w.CountConnectRejected("handshake");
    AMBIT_LOG(kWarn, "waypoint", "HBONE connection from {} failed: {}", peer.ToString(),
              conn.status().ToString());
    co_return;
  }
  w.TrackDownstream(*conn);
}

// ---- sandwich -----------------------------------------------------------------

io::Task<void> HandleSandwichConnection(Worker& w, net::Fd fd, net::SocketAddress peer) {
  io::CancelScope scope;
  std::shared_ptr<const WaypointState> st = w.state();
  auto stream = std::make_unique<io::FdStream>(w.loop(), fd.Release());
  // The PROXY v2 header comes first (ISTIO-COMPAT §2.7): source = client,
  // destination = the original target, TLV 0xD0 = the client's identity.
  std::optional<net::ProxyDecoded> header;
  for (;;) {
    auto chunk = co_await stream->Peek({.scope = &scope, .timeout = std::chrono::seconds(5)});
    if (!chunk.ok() || chunk->empty()) {
      w.CountConnectRejected("proxy_header_missing");
      co_return;
    }
    auto decoded = net::DecodeProxyV2(AsText(*chunk));
    if (!decoded.ok()) {
      w.CountConnectRejected("proxy_header_malformed");
      AMBIT_LOG(kWarn, "waypoint", "sandwich connection from {}: {}", peer.ToString(),
                decoded.status().ToString());
      stream->Abort();
      co_return;
    }
    if (decoded->has_value()) {
      header = std::move(**decoded);
      break;
    }
    if (chunk->size() > 4096) {
      w.CountConnectRejected("proxy_header_malformed");
      stream->Abort();
      co_return;
    }
    (void)co_await w.loop().Sleep(std::chrono::milliseconds(2), {.scope = &scope});
  }
  stream->Consume(header->size);
  if (header->header.local) {  // LOCAL: a health check from the agent
    stream->CloseWrite();
    co_return;
  }
  auto target = ResolveTarget(*st, header->header.destination);
  if (!target.ok()) {
    w.CountConnectRejected("unknown_destination");
    AMBIT_LOG(kWarn, "waypoint", "sandwich connection to {}: {}",
              header->header.destination.ToString(), std::string(target.status().message()));
    stream->Abort();
    co_return;
  }
  Downstream d{w, st, *target, header->header.source};
  if (auto id = header->header.Tlv(net::kProxyTlvPeerIdentity); id.has_value()) {
    d.principal = std::string(*id);
  }
  d.source = st->snapshot->FindWorkloadByIp(st->self.network, d.peer.ip());
  d.mtls = !d.principal.empty();  // the agent terminated mTLS for us
  d.scope = &scope;
  co_await ServeDownstream(std::move(d), *stream);
}

}  // namespace ambit::waypoint
