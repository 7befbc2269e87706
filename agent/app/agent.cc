#include "agent/app/agent.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <malloc.h>

#include <filesystem>
#include <latch>

#include "agent/app/config_dump.h"
#include "agent/app/istio_mode.h"
#include "common/admin/standard_servers.h"
#include "common/base/log.h"
#include "common/metrics/process.h"
#include "common/xds/node.h"

namespace ambit::agent {

namespace {

constexpr const char* kVersion = kAgentVersion;

void RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

io::BackendKind BackendFromFlag(const std::string& io) {
  if (io == "uring") return io::BackendKind::kUring;
  if (io == "epoll") return io::BackendKind::kEpoll;
  return io::BackendKind::kAuto;
}

}  // namespace

Agent::Agent(AgentFlags flags) : flags_(std::move(flags)) {}

Agent::~Agent() {
  if (watcher_) watcher_->Stop();
}

StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentFlags flags) {
  std::unique_ptr<Agent> agent(new Agent(std::move(flags)));
  RETURN_IF_ERROR(agent->Init());
  return agent;
}

Status Agent::Init() {
  auto& logger = base::ProcessLogger();
  RETURN_IF_ERROR(logger.SetLevels(flags_.log_level));
  logger.SetFormat(flags_.log_format == "json" ? base::LogFormat::kJson : base::LogFormat::kText);
  RaiseFdLimit();
  if (flags_.node.empty()) {
    return absl::InvalidArgumentError("--node (or NODE_NAME) is required: the agent captures "
                                      "the workloads of its node");
  }

  lifecycle::RuntimeOptions ro;
  ro.workers = static_cast<size_t>(flags_.workers);
  ro.backend = BackendFromFlag(flags_.io);
  ASSIGN_OR_RETURN(runtime_, lifecycle::Runtime::Create(ro));
  // Workers never block on stderr: lines are queued (8 MiB) and written by a
  // logger thread; overflow is dropped and counted. Started after the Runtime
  // blocked SIGTERM/SIGINT, so the thread inherits the mask and signals reach
  // the Runtime's watcher instead of killing the process.
  logger.StartAsync();
  const bool istio = flags_.config_path.empty();
  AMBIT_LOG(kInfo, "agent", "ambit-agent {} node={} workers={} io={} mode={}{}", kVersion,
            flags_.node, runtime_->worker_count(), io::BackendName(runtime_->worker_backend(0)),
            istio ? "istio (xDS + ZDS + Istio CA)" : "standalone (local config + built-in CA)",
            flags_.mode_args.empty() ? "" : fmt::format(" args='{}'", flags_.mode_args));

  registry_ = std::make_unique<metrics::Registry>(runtime_->worker_count() + 1);
  tcp_metrics_ = std::make_unique<TcpMetrics>(*registry_);
  metrics::RegisterProcessMetrics(*registry_);
  const size_t control_shard = runtime_->worker_count();
  // ztunnel's labels: tag is the Istio release (ISTIO_META_ISTIO_VERSION, else
  // the one ISTIO-COMPAT is written against), never the proxy's own version,
  // which gets a label of its own.
  registry_->AddGauge("istio_build", "Istio component build info",
                      {"component", "tag", "ambit_version"})
      .Get(control_shard, {"ztunnel", flags_.ztunnel.istio_version, kVersion})
      ->Set(1);
  registry_->AddCallbackCounter("ambit_log_lines_dropped",
                                 "Log lines dropped because the log queue was full",
                                 [] { return static_cast<double>(base::ProcessLogger().lines_dropped()); });
  auto& reloads = registry_->AddCounter("ambit_config_reloads", "Local config (re)loads by result",
                                        {"result"});
  reloads_ok_ = reloads.Get(control_shard, {"ok"});
  reloads_failed_ = reloads.Get(control_shard, {"error"});
  policy_findings_ = registry_->AddGauge("ambit_policy_findings",
                                        "Parts of Istio policy resources the agent could not "
                                        "enforce as written (see the log / config_dump)")
                        .Get(control_shard, {});
  // Not "ambit_policy_findings_total": in OpenMetrics that counter family would
  // be named like the gauge above, and strict parsers reject the exposition.
  policy_findings_reported_ =
      registry_->AddCounter("ambit_policy_findings_reported",
                            "Findings on Istio policy resources, counted once when a (re)load "
                            "first reports them")
          .Get(control_shard, {});
  config_findings_gauge_ = registry_->AddGauge("ambit_config_findings",
                                              "Standalone config entries applied differently "
                                              "than written (waypoint binding, appProtocol; see "
                                              "the log / config_dump)")
                               .Get(control_shard, {});
  config_findings_reported_ =
      registry_->AddCounter("ambit_config_findings_reported",
                            "Standalone config findings, counted once when a (re)load first "
                            "reports them")
          .Get(control_shard, {});
  pod_errors_ = registry_->AddCounter("ambit_pod_setup_errors",
                                      "Captured pods whose listeners, redirection or certificate failed")
                    .Get(control_shard, {});
  // ztunnel's in-pod manager metrics (ISTIO-COMPAT §8.2).
  pods_active_ = registry_->AddGauge("workload_manager_active_proxy_count",
                                     "Captured pods whose listeners are serving")
                     .Get(control_shard, {});
  pods_pending_gauge_ = registry_->AddGauge("workload_manager_pending_proxy_count",
                                            "Captured pods waiting for their certificate")
                            .Get(control_shard, {});
  pods_started_ = registry_->AddCounter("workload_manager_proxies_started",
                                        "Pod proxies started")
                      .Get(control_shard, {});
  pods_stopped_ = registry_->AddCounter("workload_manager_proxies_stopped",
                                        "Pod proxies stopped")
                      .Get(control_shard, {});

  netns_runner_ = std::make_unique<net::NetnsRunner>();
  RETURN_IF_ERROR(StartCrls());
  RETURN_IF_ERROR(StartWorkers());
  RETURN_IF_ERROR(StartDns());
  RETURN_IF_ERROR(istio ? StartIstio() : StartStandalone());
  secrets_->Subscribe([this](const identity::Identity& id, const identity::CertPtr& cert) {
    OnCertificate(id, cert);
  });
  return StartAdmin();
}

std::vector<std::string> Agent::NotReadyReasons() const {
  std::vector<std::string> pending;
  if (!started_.load()) pending.push_back("startup");
  if (!config_ready_.load()) pending.push_back(istio_ ? "xds" : "config");
  if (istio_ && !istio_->pods_ready()) pending.push_back("zds");
  if (int n = pods_pending_.load(); n > 0) pending.push_back(fmt::format("certificates({})", n));
  if (draining_flag_.load()) pending.push_back("draining");
  return pending;
}

Status Agent::StartIstio() {
  std::map<std::string, std::string> env = xds::ProcessEnvironment();
  for (const auto& [k, v] : flags_.env_overrides) env[k] = v;
  ASSIGN_OR_RETURN(istio_, IstioControl::Create(*this, env));
  istio_->Start();
  return absl::OkStatus();
}

io::Task<void> Agent::ReadinessWatcher(Agent* agent) {
  // Readiness inputs also change on other threads (the ZDS and xDS clients):
  // poll until the first "ready", so operators see when the agent serves.
  while (!agent->ready_logged_) {
    agent->CheckReady();
    Status st = co_await agent->runtime_->main_loop().Sleep(std::chrono::milliseconds(100),
                                                            {.scope = &agent->control_scope_});
    if (!st.ok()) co_return;
  }
}

io::Task<void> Agent::MemoryHousekeeping(Agent* agent) {
  // Connection bursts leave freed memory spread over the workers' malloc
  // arenas; glibc keeps it resident. Hand free pages back to the kernel every
  // 30 s (a few ms on the control thread) so RSS follows the live load.
  for (;;) {
    Status st = co_await agent->runtime_->main_loop().Sleep(std::chrono::seconds(30),
                                                            {.scope = &agent->control_scope_});
    if (!st.ok()) co_return;
    auto t0 = std::chrono::steady_clock::now();
    malloc_trim(0);
    AMBIT_LOG(kDebug, "agent", "malloc_trim took {} us",
              std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
                  .count());
  }
}

void Agent::CheckReady() {
  if (ready_logged_) return;
  std::string what;
  for (const auto& p : NotReadyReasons()) what += (what.empty() ? "" : ", ") + p;
  if (what.empty()) {
    ready_logged_ = true;
    AMBIT_LOG(kInfo, "agent", "ready");
  } else if (what != last_not_ready_ && started_.load()) {
    AMBIT_LOG(kInfo, "agent", "not ready yet: waiting for {}", what);
  }
  last_not_ready_ = what;
}

Status Agent::StartAdmin() {
  ASSIGN_OR_RETURN(admin::StandardServers servers,
                   admin::StartStandardServers(
                       *runtime_, {.admin_addr = flags_.admin_addr,
                                   .admin_addr_v6 = flags_.admin_addr_v6,
                                   .stats_addr = flags_.stats_addr,
                                   .readiness_addr = flags_.readiness_addr,
                                   .config_dump = [this] { return ConfigDump(); },
                                   .quit = [this] { StartDrain(); },
                                   .not_ready = [this] { return NotReadyReasons(); },
                                   .registry = registry_.get()}));
  admin_server_ = std::move(servers.admin);
  AddProfilingAnswers(*admin_server_);
  admin_v6_server_ = std::move(servers.admin_v6);
  if (admin_v6_server_) AddProfilingAnswers(*admin_v6_server_);
  stats_server_ = std::move(servers.stats);
  readiness_server_ = std::move(servers.readiness);
  AMBIT_LOG(kInfo, "agent", "admin on {}{}, metrics on {}, readiness on {}", flags_.admin_addr,
            flags_.admin_addr_v6.empty() ? "" : " and " + flags_.admin_addr_v6, flags_.stats_addr,
            flags_.readiness_addr);
  return absl::OkStatus();
}

std::string Agent::ConfigDump() {
  DumpInputs in;
  in.snapshot = snapshot_.get();
  std::vector<identity::CertStatusDump> certs = secrets_->Dump();
  for (const auto& c : certs) {
    in.certificates.push_back({c.identity.ToString(), std::string(identity::CertStateName(c.state)),
                               c.cert.get(), c.last_error});
  }
  for (const auto& [uid, rec] : pods_) {
    in.pods.push_back({uid, rec.spec.name, rec.spec.ns, rec.spec.service_account,
                       rec.spec.netns_label, rec.ctx != nullptr && !rec.listeners});
  }
  for (const auto& w : workers_) {
    auto conns = w->tracker().Summaries();
    in.connections.insert(in.connections.end(), conns.begin(), conns.end());
  }
  in.findings = &findings_;
  in.config_findings = &config_findings_;
  in.version = fmt::format("ambit-{}", kVersion);
  in.config = {{"proxyMode", "Shared"},
               {"node", flags_.node},
               {"adminAddr", flags_.admin_addr},
               {"statsAddr", flags_.stats_addr},
               {"readinessAddr", flags_.readiness_addr},
               {"workers", std::to_string(flags_.workers)},
               {"packetMark", std::to_string(flags_.packet_mark)},
               {"redirect", flags_.redirect},
               {"localhostAppTunnel", flags_.localhost_app_tunnel ? "true" : "false"},
               {"ioBackend", io::BackendName(runtime_->worker_backend(0))},
               {"network", flags_.ztunnel.network},
               {"trustDomain", flags_.ztunnel.trust_domain},
               {"istioVersion", flags_.ztunnel.istio_version},
               {"ipv6Enabled", flags_.ztunnel.ipv6_enabled ? "true" : "false"},
               {"enableOrigSrc", OrigSrcName(flags_.ztunnel.orig_src)},
               {"keepalive", KeepaliveText(flags_.keepalive)},
               {"xdsOnDemand", flags_.ztunnel.xds_on_demand ? "true" : "false"},
               {"crlPath", flags_.ztunnel.crl_path}};
  AddDnsDumpConfig(in.config);
  if (on_demand_dns_) {
    const base::MonoTime now = on_demand_dns_->now();
    for (const auto& row : on_demand_dns_->CacheRows()) {
      DumpInputs::DnsEntry e;
      e.hostname = row.hostname;
      for (const auto& ip : row.entry.addresses) e.addresses.push_back(ip.ToString());
      e.negative = std::string(row.entry.negative_reason);
      e.expires_in_seconds =
          std::chrono::duration<double>(row.entry.expires - now).count();
      in.on_demand_dns.push_back(std::move(e));
    }
    auto st = on_demand_dns_->stats();
    in.on_demand_dns_stats = {st.hits, st.misses, st.queries, st.failures,
                              on_demand_dns_->options().capacity};
  }
  if (istio_) {
    istio_->AddDumpConfig(in.config);
  } else {
    in.config["localXdsPath"] = flags_.config_path;
  }
  return BuildConfigDump(in);
}

Status Agent::StartWorkers() {
  const size_t n = runtime_->worker_count();
  workers_.resize(n);
  WorkerOptions wo;
  wo.packet_mark = flags_.packet_mark;
  wo.connect_timeout = flags_.connect_timeout;
  wo.localhost_app_tunnel = flags_.localhost_app_tunnel;
  wo.spoof_source = flags_.ztunnel.orig_src != OrigSrc::kOff;
  wo.keepalive = SocketKeepalive(flags_.keepalive);
  wo.conn.handshake_timeout = flags_.handshake_timeout;
  wo.pool.max_streams_per_conn = static_cast<size_t>(flags_.pool_max_streams);
  wo.pool.idle_timeout = flags_.pool_idle_timeout;
  std::latch ready(static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i) {
    runtime_->PostToWorker(i, [this, i, wo, &ready](io::Loop& loop) {
      workers_[i] = std::make_unique<Worker>(loop, i, wo, *tcp_metrics_, *registry_, *netns_runner_);
      workers_[i]->Start();
      ready.count_down();
    });
  }
  ready.wait();
  return absl::OkStatus();
}

void Agent::Publish(bool policies_changed) {
  auto st = std::make_shared<AgentState>();
  st->snapshot = snapshot_;
  for (const auto& [uid, rec] : pods_) {
    if (rec.ctx) st->pods[uid] = rec.ctx;
  }
  st->generation = ++generation_;
  if (authz_index_) {
    std::shared_ptr<const authz::AuthzIndex> index = authz_index_;
    st->authorize = [index](const AuthzRequest& r) {
      authz::ConnectionInfo c{r.source.ip(), r.destination_addr.ip(), r.destination_addr.port(),
                              r.peer};
      authz::Decision d = index->Evaluate(*r.destination, c);
      return AuthzDecision{d.allow, std::string(d.policy), std::string(d.reason)};
    };
  }
  st->resolve_host = OnDemandHostResolver();
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, st, policies_changed](io::Loop&) {
      workers_[i]->SetState(st, policies_changed);
    });
  }
  PublishDns();
}

void Agent::StartDrain() {
  if (draining_) return;
  draining_ = true;
  draining_flag_.store(true);
  AMBIT_LOG(kInfo, "agent", "draining: no new connections; open ones get {}s to finish",
            std::chrono::duration_cast<std::chrono::seconds>(flags_.termination_deadline).count());
  if (watcher_) watcher_->Stop();
  if (istio_) istio_->Stop();
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i](io::Loop&) { workers_[i]->Drain(); });
  }
  DrainDns();
  runtime_->main_loop().Spawn(DrainWaiter(this));
}

io::Task<void> Agent::DrainWaiter(Agent* agent) {
  io::Loop& loop = agent->runtime_->main_loop();
  const base::MonoTime deadline = loop.Now() + agent->flags_.termination_deadline;
  for (;;) {
    size_t live = 0;
    for (const auto& w : agent->workers_) live += w->live_connections_approx();
    if (live == 0) break;
    if (loop.Now() >= deadline) {
      AMBIT_LOG(kWarn, "agent", "drain deadline reached with {} connection(s) open; closing them",
                live);
      break;
    }
    (void)co_await loop.Sleep(std::chrono::milliseconds(100));
  }
  agent->control_scope_.Cancel();
  agent->runtime_->Stop();
}

int Agent::Run() {
  runtime_->SetDrainHandler([this] { StartDrain(); });
  started_.store(true);
  runtime_->main_loop().Spawn(ReadinessWatcher(this));
  runtime_->main_loop().Spawn(MemoryHousekeeping(this));
  if (crls_) runtime_->main_loop().Spawn(CrlWatcher(this));
  runtime_->Run();
  AMBIT_LOG(kInfo, "agent", "drained, exiting");
  return 0;
}

}  // namespace ambit::agent
