#include "agent/app/agent.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <filesystem>
#include <latch>

#include "agent/authz/apply_local.h"
#include "agent/authz/evaluate.h"
#include "agent/app/config_dump.h"
#include "agent/capture/redirect_installer.h"
#include "common/admin/handlers.h"
#include "agent/state/from_config.h"
#include "common/config/loader.h"
#include "common/base/log.h"
#include "common/metrics/process.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr uint16_t kPorts[3] = {15001, 15006, 15008};

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

// The local config format does not default these (ISTIO-COMPAT §9.2 note);
// identities need them, so the agent applies the xDS defaults.
config::LocalConfig WithIdentityDefaults(const config::LocalConfig& in) {
  config::LocalConfig out = in;
  for (auto& w : out.workloads) {
    if (w.trust_domain.empty()) w.trust_domain = "cluster.local";
    if (w.service_account.empty()) w.service_account = "default";
  }
  return out;
}

std::string PolicyFingerprint(const state::Snapshot& snap) {
  // Cheap change detector: keys plus rule counts plus workloads' policy refs.
  std::string fp;
  for (const auto& [key, p] : snap.policies()) {
    fp += fmt::format("{}:{}:{}:{};", key, static_cast<int>(p.action), p.rules.size(), p.dry_run);
  }
  for (const auto& [uid, w] : snap.workloads()) {
    for (const auto& ref : w.authorization_policies) fp += uid + "=" + ref + ";";
  }
  return fp;
}

bool PastHalfLife(const identity::CertBundle& b) {
  auto now = std::chrono::system_clock::now();
  return now >= b.not_before + (b.not_after - b.not_before) / 2;
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
  if (flags_.config_path.empty()) {
    return absl::InvalidArgumentError(
        "no configuration source: pass --config FILE (standalone mode; see tools/examples/)");
  }
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
  AMBIT_LOG(kInfo, "agent", "ambit-agent {} node={} workers={} io={}", kVersion, flags_.node,
            runtime_->worker_count(), io::BackendName(runtime_->worker_backend(0)));

  registry_ = std::make_unique<metrics::Registry>(runtime_->worker_count() + 1);
  tcp_metrics_ = std::make_unique<TcpMetrics>(*registry_);
  metrics::RegisterProcessMetrics(*registry_);
  const size_t control_shard = runtime_->worker_count();
  registry_->AddGauge("istio_build", "Istio component build info", {"component", "tag"})
      .Get(control_shard, {"ztunnel", fmt::format("ambit-{}", kVersion)})
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
  pod_errors_ = registry_->AddCounter("ambit_pod_setup_errors",
                                      "Captured pods whose listeners or certificate failed")
                    .Get(control_shard, {});

  // Built-in CA: load it, or create it on first start.
  std::string ca_dir = flags_.ca_dir.empty() ? "/var/lib/ambit/ca" : flags_.ca_dir;
  if (std::filesystem::exists(std::filesystem::path(ca_dir) / "ca.crt")) {
    ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::LoadFromDir(ca_dir));
    ca_.emplace(std::move(ca));
  } else {
    ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::CreateInDir(ca_dir));
    AMBIT_LOG(kInfo, "agent", "created a new built-in CA in {}", ca_dir);
    ca_.emplace(std::move(ca));
  }

  netns_runner_ = std::make_unique<net::NetnsRunner>();
  RETURN_IF_ERROR(StartWorkers());

  watcher_ = std::make_unique<config::FileWatcher>(
      flags_.config_path,
      [this](const StatusOr<std::shared_ptr<const config::LocalConfig>>& r) {
        runtime_->PostToMain([this, r]() { OnConfig(r); });
      });
  auto first = config::LoadLocalConfigFile(flags_.config_path);
  if (!first.ok()) return first.status();
  RETURN_IF_ERROR(Reconcile(*first));
  reloads_ok_->Inc();
  RETURN_IF_ERROR(StartAdmin());
  return watcher_->Start();
}

Status Agent::StartAdmin() {
  ASSIGN_OR_RETURN(auto admin_addr, net::SocketAddress::Parse(flags_.admin_addr));
  ASSIGN_OR_RETURN(auto stats_addr, net::SocketAddress::Parse(flags_.stats_addr));
  ASSIGN_OR_RETURN(auto ready_addr, net::SocketAddress::Parse(flags_.readiness_addr));
  io::Loop& main = runtime_->main_loop();
  ASSIGN_OR_RETURN(admin_server_, admin::HttpServer::Create(main, {.address = admin_addr,
                                                                   .name = "admin"}));
  admin::AddConfigDumpHandler(*admin_server_, [this] { return ConfigDump(); });
  admin::AddLoggingHandler(*admin_server_, base::ProcessLogger());
  admin::AddQuitHandler(*admin_server_, [this] { StartDrain(); });
  admin::AddIndexHandler(*admin_server_);
  admin_server_->Start();
  ASSIGN_OR_RETURN(stats_server_, admin::HttpServer::Create(main, {.address = stats_addr,
                                                                   .name = "stats"}));
  admin::AddMetricsHandlers(*stats_server_, *registry_);
  stats_server_->Start();
  // Readiness lives on a worker loop: a stuck data path answers nothing.
  std::latch done(1);
  Status st;
  runtime_->PostToWorker(0, [this, ready_addr, &done, &st](io::Loop& loop) {
    auto server = admin::HttpServer::Create(loop, {.address = ready_addr, .name = "readiness"});
    if (!server.ok()) {
      st = server.status();
    } else {
      readiness_server_ = std::move(*server);
      admin::AddReadinessHandler(*readiness_server_, [this] {
        std::vector<std::string> pending;
        if (!ready_.load()) pending.push_back("startup");
        if (draining_) pending.push_back("draining");
        return pending;
      });
      readiness_server_->Start();
    }
    done.count_down();
  });
  done.wait();
  RETURN_IF_ERROR(st);
  AMBIT_LOG(kInfo, "agent", "admin on {}, metrics on {}, readiness on {}", flags_.admin_addr,
            flags_.stats_addr, flags_.readiness_addr);
  return absl::OkStatus();
}

std::string Agent::ConfigDump() {
  DumpInputs in;
  in.snapshot = snapshot_.get();
  for (const auto& [id, e] : certs_) in.certificates[id] = &e.bundle;
  for (const auto& [uid, rec] : pods_) {
    in.pods.push_back({uid, rec.ctx->workload.name, rec.ctx->workload.ns,
                       rec.ctx->workload.service_account, rec.ctx->workload.netns, true});
  }
  for (const auto& w : workers_) {
    auto conns = w->tracker().Summaries();
    in.connections.insert(in.connections.end(), conns.begin(), conns.end());
  }
  in.findings = &findings_;
  in.version = fmt::format("ambit-{}", kVersion);
  in.config = {{"proxyMode", "Shared"},
               {"node", flags_.node},
               {"localXdsPath", flags_.config_path},
               {"adminAddr", flags_.admin_addr},
               {"statsAddr", flags_.stats_addr},
               {"readinessAddr", flags_.readiness_addr},
               {"workers", std::to_string(flags_.workers)},
               {"packetMark", std::to_string(flags_.packet_mark)},
               {"redirect", flags_.redirect},
               {"ioBackend", io::BackendName(runtime_->worker_backend(0))}};
  return BuildConfigDump(in);
}

Status Agent::StartWorkers() {
  const size_t n = runtime_->worker_count();
  workers_.resize(n);
  WorkerOptions wo;
  wo.packet_mark = flags_.packet_mark;
  wo.connect_timeout = flags_.connect_timeout;
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

void Agent::OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result) {
  if (draining_) return;
  if (!result.ok()) {
    reloads_failed_->Inc();
    AMBIT_LOG(kError, "config", "config reload failed, keeping the last good config: {}",
              result.status().ToString());
    return;
  }
  Status st = Reconcile(**result);
  if (!st.ok()) {
    reloads_failed_->Inc();
    AMBIT_LOG(kError, "config", "config rejected, keeping the last good config: {}", st.ToString());
    return;
  }
  reloads_ok_->Inc();
}

Status Agent::Reconcile(const config::LocalConfig& raw) {
  config::LocalConfig cfg = WithIdentityDefaults(raw);
  for (const auto& w : cfg.warnings) AMBIT_LOG(kWarn, "config", "{}", w);
  state::WorkloadStore store(flags_.node);
  RETURN_IF_ERROR(state::ApplyLocalConfig(cfg, &store));
  // Istio AuthorizationPolicy / PeerAuthentication documents of the file.
  ASSIGN_OR_RETURN(authz::TranslateResult tr, authz::ApplyIstioResources(cfg, &store));
  for (const auto& f : tr.findings) AMBIT_LOG(kWarn, "authz", "{}", f.ToString());
  policy_findings_->Set(static_cast<int64_t>(tr.findings.size()));
  findings_ = std::move(tr.findings);
  std::shared_ptr<const state::Snapshot> snap = store.Build();
  authz_index_ = authz::AuthzIndex::Build(snap->policies(), snap->workloads());

  std::map<std::string, const state::Workload*> desired;
  for (const auto& [uid, w] : snap->workloads()) {
    if (w.node == flags_.node && !w.netns.empty()) desired[uid] = &w;
  }
  // Pods that left (or moved to another netns): immediate teardown.
  for (auto it = pods_.begin(); it != pods_.end();) {
    auto d = desired.find(it->first);
    bool gone = d == desired.end() || d->second->netns != it->second.ctx->workload.netns;
    if (!gone) {
      ++it;
      continue;
    }
    std::string uid = it->first;
    for (size_t i = 0; i < workers_.size(); ++i) {
      runtime_->PostToWorker(i, [this, i, uid](io::Loop&) { workers_[i]->RemovePod(uid); });
    }
    if (it->second.redirect_installed) {
      auto backend = capture::ParseRuleBackend(flags_.redirect_backend);
      if (backend.ok()) {
        Status rs = capture::RemoveRedirection(*it->second.ctx->netns, *backend);
        if (!rs.ok()) AMBIT_LOG(kWarn, "capture", "removing rules of {}: {}", uid, rs.ToString());
      }
    }
    AMBIT_LOG(kInfo, "capture", "stopped capturing pod {}", uid);
    it = pods_.erase(it);
  }
  // New and updated pods.
  std::vector<std::string> added;
  for (const auto& [uid, w] : desired) {
    auto existing = pods_.find(uid);
    if (existing != pods_.end()) {
      auto ctx = std::make_shared<PodContext>(*existing->second.ctx);
      ctx->workload = *w;
      auto id = identity::Identity::Make(w->trust_domain, w->ns, w->service_account);
      if (id.ok() && !(*id == ctx->identity)) {
        auto cert = CertFor(*id);
        if (cert.ok()) {
          ctx->identity = *id;
          ctx->server_tls = (*cert)->server;
          ctx->client_tls = (*cert)->client;
        }
      }
      existing->second.ctx = ctx;
      continue;
    }
    auto pod = MakePod(*w);
    if (!pod.ok()) {
      pod_errors_->Inc();
      AMBIT_LOG(kError, "capture", "cannot capture pod {} ({}): {}", w->name, uid,
                pod.status().ToString());
      continue;
    }
    PodRecord rec{*pod, false};
    if (flags_.redirect == "auto") {
      auto backend = capture::ParseRuleBackend(flags_.redirect_backend);
      auto mode = capture::ParseRedirectMode(flags_.redirect_mode);
      capture::RedirectConfig rc;
      if (mode.ok()) rc.mode = *mode;
      rc.ztunnel_mark = flags_.packet_mark;
      Status rs = backend.ok() ? capture::InstallRedirection(*rec.ctx->netns, *backend, rc)
                               : backend.status();
      if (!rs.ok()) {
        pod_errors_->Inc();
        AMBIT_LOG(kError, "capture", "installing redirection for pod {}: {}", uid, rs.ToString());
      } else {
        rec.redirect_installed = true;
      }
    }
    pods_[uid] = std::move(rec);
    added.push_back(uid);
  }
  snapshot_ = snap;
  std::string fp = PolicyFingerprint(*snap);
  bool policies_changed = fp != policy_fingerprint_;
  policy_fingerprint_ = fp;
  Publish(policies_changed);
  for (const std::string& uid : added) {
    Status st = OpenListeners(*pods_[uid].ctx);
    if (!st.ok()) {
      pod_errors_->Inc();
      AMBIT_LOG(kError, "capture", "listeners for pod {}: {}", uid, st.ToString());
      continue;
    }
    AMBIT_LOG(kInfo, "capture", "capturing pod {}/{} ({}) in {} as {}", pods_[uid].ctx->workload.ns,
              pods_[uid].ctx->workload.name, uid, pods_[uid].ctx->workload.netns,
              pods_[uid].ctx->identity.ToString());
  }
  AMBIT_LOG(kInfo, "config", "config applied: {} workloads, {} services, {} policies; {} pods captured",
            snap->workloads().size(), snap->services().size(), snap->policies().size(), pods_.size());
  return absl::OkStatus();
}

StatusOr<std::shared_ptr<PodContext>> Agent::MakePod(const state::Workload& w) {
  ASSIGN_OR_RETURN(identity::Identity id,
                   identity::Identity::Make(w.trust_domain, w.ns, w.service_account));
  ASSIGN_OR_RETURN(net::NetnsHandle ns, net::NetnsHandle::Open(w.netns));
  auto ctx = std::make_shared<PodContext>(PodContext{
      w.uid, w, std::make_shared<const net::NetnsHandle>(std::move(ns)), id, nullptr, nullptr});
  ASSIGN_OR_RETURN(const CertEntry* cert, CertFor(ctx->identity));
  ctx->server_tls = cert->server;
  ctx->client_tls = cert->client;
  return ctx;
}

Status Agent::OpenListeners(const PodContext& pod) {
  std::vector<std::array<net::Fd, 3>> per_worker(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    for (size_t k = 0; k < 3; ++k) {
      net::ListenerOptions lo;
      lo.address = net::SocketAddress(*net::IpAddress::Parse("0.0.0.0"), kPorts[k]);
      lo.backlog = 128;
      lo.reuse_port = true;
      lo.transparent = net::Transparent::kBestEffort;
      lo.mark = flags_.packet_mark;
      ASSIGN_OR_RETURN(per_worker[i][k],
                       netns_runner_->Run(*pod.netns, [lo]() { return net::CreateTcpListener(lo); }));
    }
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto fds = std::make_shared<std::array<net::Fd, 3>>(std::move(per_worker[i]));
    std::string uid = pod.uid;
    runtime_->PostToWorker(i, [this, i, uid, fds](io::Loop&) {
      workers_[i]->AddPod(uid, std::move(*fds));
    });
  }
  return absl::OkStatus();
}

StatusOr<const Agent::CertEntry*> Agent::CertFor(const identity::Identity& id) {
  const std::string key = id.ToString();
  auto it = certs_.find(key);
  if (it != certs_.end() && !PastHalfLife(it->second.bundle)) return &it->second;
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(flags_.cert_ttl);
  ASSIGN_OR_RETURN(identity::CertBundle bundle, ca_->Issue(id, ttl));
  ASSIGN_OR_RETURN(auto server, tls::MakeServerContext(bundle));
  ASSIGN_OR_RETURN(auto client, tls::MakeClientContext(bundle));
  AMBIT_LOG(kInfo, "identity", "issued certificate for {} (serial {}, valid {}s)", key,
            bundle.serial_hex, ttl.count());
  CertEntry& e = certs_[key];
  e.bundle = std::move(bundle);
  e.server = std::move(server);
  e.client = std::move(client);
  return &e;
}

void Agent::RefreshCertificates() {
  bool changed = false;
  for (auto& [uid, rec] : pods_) {
    auto it = certs_.find(rec.ctx->identity.ToString());
    if (it != certs_.end() && !PastHalfLife(it->second.bundle)) continue;
    auto cert = CertFor(rec.ctx->identity);
    if (!cert.ok()) {
      AMBIT_LOG(kError, "identity", "rotating certificate for {}: {} (the current one stays in use)",
                rec.ctx->identity.ToString(), cert.status().ToString());
      continue;
    }
    auto ctx = std::make_shared<PodContext>(*rec.ctx);
    ctx->server_tls = (*cert)->server;
    ctx->client_tls = (*cert)->client;
    rec.ctx = ctx;
    changed = true;
  }
  if (changed) Publish(false);
}

void Agent::Publish(bool policies_changed) {
  auto st = std::make_shared<AgentState>();
  st->snapshot = snapshot_;
  for (const auto& [uid, rec] : pods_) st->pods[uid] = rec.ctx;
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
  published_ = st;
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, st, policies_changed](io::Loop&) {
      workers_[i]->SetState(st, policies_changed);
    });
  }
}

io::Task<void> Agent::CertRefresher(Agent* agent) {
  for (;;) {
    Status st = co_await agent->runtime_->main_loop().Sleep(std::chrono::seconds(30),
                                                            {.scope = &agent->control_scope_});
    if (!st.ok()) co_return;
    agent->RefreshCertificates();
  }
}

void Agent::StartDrain() {
  if (draining_) return;
  draining_ = true;
  AMBIT_LOG(kInfo, "agent", "draining: no new connections; open ones get {}s to finish",
            std::chrono::duration_cast<std::chrono::seconds>(flags_.termination_deadline).count());
  if (watcher_) watcher_->Stop();
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i](io::Loop&) { workers_[i]->Drain(); });
  }
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
  runtime_->main_loop().Spawn(CertRefresher(this));
  ready_.store(true);
  AMBIT_LOG(kInfo, "agent", "ready");
  runtime_->Run();
  AMBIT_LOG(kInfo, "agent", "drained, exiting");
  return 0;
}

}  // namespace ambit::agent
