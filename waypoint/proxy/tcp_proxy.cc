// TCP fallback: a connection whose port is declared TCP (or TLS, or that did
// not look like HTTP) is relayed to one endpoint as bytes, like the agent
// does (L4), with the istio_tcp_* metrics under reporter="waypoint".
#include <fmt/format.h>

#include "common/base/log.h"
#include "common/telemetry/peer_labels.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/rbac_filter.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

telemetry::ConnectionLabels TcpLabels(const Downstream& d, const UpstreamEndpoint* ep,
                                      std::string_view flags) {
  telemetry::ConnectionLabels l;
  l.reporter = "waypoint";
  l.source = telemetry::LabelsFor(d.source);
  if (!d.principal.empty()) l.source.principal = d.principal;
  l.destination = telemetry::LabelsFor(ep != nullptr ? ep->workload : nullptr);
  telemetry::SetServiceLabels(d.target.service, &l);
  l.mutual_tls = d.mtls;
  l.response_flags = std::string(flags);
  return l;
}

// tcp.idleTimeout of the connection's cluster; Envoy's tcp_proxy default
// (1h) without one.
base::Duration TcpIdleTimeout(const Downstream& d, const std::string& cluster) {
  const ResilienceTable* t = d.state->resilience.get();
  const ClusterRuntime* rt = t != nullptr ? t->Find(cluster) : nullptr;
  if (rt != nullptr && rt->pool.tcp_idle_timeout) {
    return std::chrono::duration_cast<base::Duration>(*rt->pool.tcp_idle_timeout);
  }
  return std::chrono::hours(1);
}

}  // namespace

io::Task<void> ServeTcp(const Downstream& d, io::ByteStream& stream) {
  Worker& w = d.worker;
  const base::MonoTime start = w.loop().Now();
  if (!AuthorizeConnection(d)) {  // Envoy's RBAC network filter closes the connection
    metrics::Labels l = TcpLabels(d, nullptr, kRbacFlag).Values();
    w.tcp().opened.Get(w.index(), l)->Inc();
    w.tcp().closed.Get(w.index(), l)->Inc();
    AMBIT_LOG(kInfo, "access", "tcp {} -> {}: denied by authorization (RBAC)", d.peer.ToString(),
              d.target.Describe());
    stream.Abort();
    co_return;
  }
  auto ep = d.PickEndpoint();
  if (!ep) {
    metrics::Labels l = TcpLabels(d, nullptr, flags::kNoHealthyUpstream).Values();
    w.tcp().opened.Get(w.index(), l)->Inc();
    w.tcp().failed.Get(w.index(), l)->Inc();
    w.tcp().closed.Get(w.index(), l)->Inc();
    AMBIT_LOG(kWarn, "access", "tcp {} -> {}: no healthy upstream", d.peer.ToString(),
              d.target.Describe());
    stream.Abort();
    co_return;
  }
  auto up = co_await OpenStream(w.loop(), w.pool(), *d.state, *ep, w.options().upstream, d.scope);
  const metrics::Labels ok_labels = TcpLabels(d, ep.get(), flags::kNone).Values();
  if (!up.ok()) {
    metrics::Labels l = TcpLabels(d, ep.get(), flags::kUpstreamConnectFailure).Values();
    w.tcp().opened.Get(w.index(), l)->Inc();
    w.tcp().failed.Get(w.index(), l)->Inc();
    w.tcp().closed.Get(w.index(), l)->Inc();
    AMBIT_LOG(kWarn, "access", "tcp {} -> {} via {}: {}", d.peer.ToString(), d.target.Describe(),
              ep->address.ToString(), up.status().ToString());
    stream.Abort();
    co_return;
  }
  w.tcp().opened.Get(w.index(), ok_labels)->Inc();
  const std::string cluster = d.ClusterName();
  const base::Duration idle = TcpIdleTimeout(d, cluster);
  RelayTotals t = co_await RelayStreamsIdle(w.loop(), stream, *up->stream, d.scope, idle);
  if (t.idle_timed_out) w.CountIdleTimeout(cluster, true);
  w.tcp().received_bytes.Get(w.index(), ok_labels)->Inc(t.up);
  w.tcp().sent_bytes.Get(w.index(), ok_labels)->Inc(t.down);
  w.tcp().closed.Get(w.index(), ok_labels)->Inc();
  if (up->tunnel != nullptr && t.status.ok()) {
    (void)co_await up->tunnel->AwaitClosed({.timeout = std::chrono::seconds(5)});
  }
  AMBIT_LOG(kInfo, "access",
            "tcp complete src.addr={} src.identity={} dst.service={} upstream.host={} "
            "bytes_recv={} bytes_sent={} duration={}ms{}",
            d.peer.ToString(), d.principal, d.target.Describe(), ep->address.ToString(), t.up,
            t.down,
            std::chrono::duration_cast<std::chrono::milliseconds>(w.loop().Now() - start).count(),
            t.status.ok() ? "" : fmt::format(" error=\"{}\"", std::string(t.status.message())));
}

}  // namespace ambit::waypoint
