// The DNS proxy of the captured pods (agent/dns): one DnsWorker per worker
// loop, each with its own SO_REUSEPORT sockets on 15053 in every pod netns,
// and one Upstream (c-ares thread) for the queries the mesh cannot answer.
// The sockets are opened with the pod's other listeners (a pod whose DNS
// port cannot be bound is not started, as in ztunnel) and serve at once:
// name resolution does not wait for the pod's certificate.
#include <fmt/format.h>

#include <latch>

#include "agent/app/agent.h"
#include "common/base/log.h"

namespace ambit::agent {

// Hostname-only workloads (ServiceEntry resolution: DNS) are resolved on
// demand through the same upstream (the agent's resolv.conf), from the
// agent's own netns as ztunnel does, whether or not the DNS proxy is on.
Status Agent::StartOnDemandDns() {
  ASSIGN_OR_RETURN(dns::UpstreamConfig up, dns::ReadResolvConf(flags_.dns_resolv_conf));
  up.mark = flags_.packet_mark;
  ASSIGN_OR_RETURN(dns_upstream_, dns::Upstream::Start(up));
  dns::Upstream* upstream = dns_upstream_.get();
  registry_->AddCallbackCounter("ambit_dns_upstream_sockets_opened",
                                "Sockets the DNS proxy opened toward its upstream nameservers",
                                [upstream] { return static_cast<double>(upstream->sockets_opened()); });
  dns::OnDemandOptions o;
  o.ipv6 = flags_.ipv6_enabled;
  on_demand_dns_ = dns::OnDemandResolver::ForUpstream(*dns_upstream_, base::RealClock::Instance(),
                                                      o, registry_.get());
  return absl::OkStatus();
}

HostResolver Agent::OnDemandHostResolver() const {
  dns::OnDemandResolver* r = on_demand_dns_.get();
  if (r == nullptr) return nullptr;
  return [r](const std::string& host, const mesh::Workload& src,
             absl::AnyInvocable<void(HostLookup)> done) {
    dns::OnDemandSource s{src.workload_name.empty() ? src.name : src.workload_name,
                          src.canonical_name, src.canonical_revision, src.ns, src.Identity(),
                          {}, {}, src.cluster_id};
    if (auto it = src.labels.find("app"); it != src.labels.end()) s.app = it->second;
    if (auto it = src.labels.find("version"); it != src.labels.end()) s.version = it->second;
    r->Resolve(host, s, [done = std::move(done)](dns::OnDemandResult res) mutable {
      HostLookup l;
      l.addresses = std::move(res.addresses);
      if (!res.ok()) {
        l.status = res.status.ok() ? absl::UnavailableError(std::string(
                                         dns::OnDemandErrorName(res.error)))
                                   : res.status;
      }
      done(std::move(l));
    });
  };
}

Status Agent::StartDns() {
  RETURN_IF_ERROR(StartOnDemandDns());
  if (!flags_.dns_proxy) {
    AMBIT_LOG(kInfo, "dns", "DNS proxy off (--dns-proxy=false or DNS_CAPTURE metadata)");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(dns::ListenAddress listen, dns::ListenAddress::Parse(flags_.dns_proxy_addr));
  const dns::UpstreamConfig& up = dns_upstream_->config();
  dns_listen_ = listen;
  dns_metrics_ = std::make_unique<dns::DnsMetrics>(*registry_);
  const size_t n = runtime_->worker_count();
  dns_workers_.resize(n);
  dns::DnsWorkerOptions o;
  o.names.cluster_domain = flags_.cluster_domain;
  o.names.ipv6_enabled = flags_.ipv6_enabled;
  std::latch ready(static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i) {
    runtime_->PostToWorker(i, [this, i, o, &ready](io::Loop& loop) {
      dns_workers_[i] = std::make_unique<dns::DnsWorker>(loop, i, o, *dns_metrics_, *dns_upstream_);
      ready.count_down();
    });
  }
  ready.wait();
  AMBIT_LOG(kInfo, "dns", "DNS proxy on {} (UDP+TCP) in every captured pod; cluster domain {}; "
            "forwarding to {} (from {})", listen.ToString(), flags_.cluster_domain,
            dns::DescribeServers(up), up.source);
  return absl::OkStatus();
}

Status Agent::OpenDnsSockets(PodRecord& rec) {
  rec.dns_sockets.clear();
  if (!dns_listen_) return absl::OkStatus();
  std::vector<std::pair<net::IpAddress, bool>> addrs;  // (address, required)
  if (dns_listen_->ip) {
    addrs.emplace_back(*dns_listen_->ip, true);
  } else {
    addrs.emplace_back(net::IpAddress::LoopbackV4(), true);
    addrs.emplace_back(net::IpAddress::LoopbackV6(), false);
  }
  std::vector<dns::DnsSockets> per_worker(workers_.size());
  const uint32_t mark = flags_.packet_mark;
  for (auto& s : per_worker) {
    for (const auto& [ip, required] : addrs) {
      net::SocketAddress sa(ip, dns_listen_->port);
      auto udp = netns_runner_->Run(*rec.spec.netns, [sa, mark] { return dns::OpenDnsSocket(sa, false, mark); });
      auto tcp = udp.ok() ? netns_runner_->Run(*rec.spec.netns, [sa, mark] { return dns::OpenDnsSocket(sa, true, mark); })
                          : StatusOr<net::Fd>(udp.status());
      if (!udp.ok() || !tcp.ok()) {
        const Status& st = udp.ok() ? tcp.status() : udp.status();
        if (required) {
          return absl::Status(st.code(), fmt::format("DNS proxy on {}: {}", sa.ToString(), st.ToString()));
        }
        if (!dns_no_ipv6_logged_) {
          dns_no_ipv6_logged_ = true;
          AMBIT_LOG(kInfo, "dns", "pod {}: no DNS proxy on {} ({}); IPv4 only", rec.spec.uid,
                    sa.ToString(), st.ToString());
        }
        continue;
      }
      (ip.is_v4() ? s.udp4 : s.udp6) = std::move(*udp);
      (ip.is_v4() ? s.tcp4 : s.tcp6) = std::move(*tcp);
    }
  }
  rec.dns_sockets = std::move(per_worker);
  return absl::OkStatus();
}

void Agent::HandDnsToWorkers(PodRecord& rec) {
  if (rec.dns_sockets.empty()) return;
  for (size_t i = 0; i < dns_workers_.size() && i < rec.dns_sockets.size(); ++i) {
    auto socks = std::make_shared<dns::DnsSockets>(std::move(rec.dns_sockets[i]));
    std::string uid = rec.spec.uid;
    runtime_->PostToWorker(i, [this, i, uid, socks](io::Loop&) {
      dns_workers_[i]->AddPod(uid, std::move(*socks));
    });
  }
  rec.dns_sockets.clear();
}

void Agent::PublishDns() {
  if (dns_workers_.empty()) return;
  auto st = std::make_shared<dns::DnsState>();
  st->snapshot = snapshot_;
  for (const auto& [uid, rec] : pods_) {
    dns::DnsPod p;
    p.client.ns = rec.spec.ns;
    p.client.network = rec.workload.network;
    p.client.canonical_service = rec.workload.canonical_name;
    p.client.canonical_revision = rec.workload.canonical_revision;
    p.netns = rec.spec.netns;
    st->pods.emplace(uid, std::move(p));
  }
  std::shared_ptr<const dns::DnsState> state = st;
  for (size_t i = 0; i < dns_workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, state](io::Loop&) { dns_workers_[i]->SetState(state); });
  }
}

void Agent::RemovePodDns(const std::string& uid) {
  if (dns_workers_.empty()) return;
  for (size_t i = 0; i < dns_workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, uid](io::Loop&) { dns_workers_[i]->RemovePod(uid); });
  }
  if (dns_upstream_) dns_upstream_->ForgetPod(uid);
}

void Agent::DrainDns() {
  for (size_t i = 0; i < dns_workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i](io::Loop&) { dns_workers_[i]->Drain(); });
  }
}

void Agent::AddDnsDumpConfig(std::map<std::string, std::string>& config) const {
  config["dnsProxy"] = dns_listen_ ? "true" : "false";
  config["clusterDomain"] = flags_.cluster_domain;
  if (dns_listen_) config["dnsProxyAddr"] = dns_listen_->ToString();
  if (dns_upstream_) {
    config["dnsUpstreams"] = dns::DescribeServers(dns_upstream_->config());
    config["dnsResolvConf"] = dns_upstream_->config().source;
  }
  if (!flags_.mode_args.empty()) config["proxyArgs"] = flags_.mode_args;
}

}  // namespace ambit::agent
