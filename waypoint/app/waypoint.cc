#include "waypoint/app/waypoint.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>

#include <filesystem>
#include <latch>

#include "common/admin/standard_servers.h"
#include "common/base/log.h"
#include "common/config/loader.h"
#include "common/identity/cert_source.h"
#include "common/mesh/from_config.h"
#include "common/metrics/process.h"
#include "common/net/socket.h"
#include "waypoint/app/cluster_mode.h"
#include "waypoint/route/endpoint_findings.h"

namespace ambit::waypoint {

namespace {

constexpr const char* kVersion = "0.1.0";

io::BackendKind BackendFromFlag(const std::string& io) {
  if (io == "uring") return io::BackendKind::kUring;
  if (io == "epoll") return io::BackendKind::kEpoll;
  return io::BackendKind::kAuto;
}

void RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

Waypoint::Waypoint(WaypointFlags flags) : flags_(std::move(flags)) {}

Waypoint::~Waypoint() {
  if (watcher_) watcher_->Stop();
  StopCluster();
}

StatusOr<std::unique_ptr<Waypoint>> Waypoint::Create(WaypointFlags flags) {
  std::unique_ptr<Waypoint> wp(new Waypoint(std::move(flags)));
  RETURN_IF_ERROR(wp->Init());
  return wp;
}

Status Waypoint::Init() {
  auto& logger = base::ProcessLogger();
  RETURN_IF_ERROR(logger.SetLevels(flags_.log_level));
  logger.SetFormat(flags_.log_format == "json" ? base::LogFormat::kJson : base::LogFormat::kText);
  RaiseFdLimit();
  lifecycle::RuntimeOptions ro;
  ro.workers = static_cast<size_t>(flags_.workers);
  ro.backend = BackendFromFlag(flags_.io);
  ASSIGN_OR_RETURN(runtime_, lifecycle::Runtime::Create(ro));
  logger.StartAsync();
  AMBIT_LOG(kInfo, "waypoint", "ambit-waypoint {} workload={} workers={} io={} config={}",
            kVersion, flags_.workload_uid, runtime_->worker_count(),
            io::BackendName(runtime_->worker_backend(0)), flags_.config_path);

  registry_ = std::make_unique<metrics::Registry>(runtime_->worker_count() + 1);
  tcp_metrics_ = std::make_unique<telemetry::TcpMetrics>(*registry_);
  request_metrics_ = std::make_unique<RequestMetrics>(*registry_);
  span_exporter_ = std::make_unique<SpanExporter>(*registry_, runtime_->worker_count());
  request_metrics_->SetSpanSink(span_exporter_.get());
  metrics::RegisterProcessMetrics(*registry_);
  const size_t control = runtime_->worker_count();
  registry_->AddGauge("istio_build", "Istio component build info", {"component", "tag"})
      .Get(control, {"proxy", fmt::format("ambit-{}", kVersion)})
      ->Set(1);
  auto& reloads = registry_->AddCounter("ambit_config_reloads",
                                        "Local config (re)loads by result", {"result"});
  reloads_ok_ = reloads.Get(control, {"ok"});
  reloads_failed_ = reloads.Get(control, {"error"});
  counters_.downstream_errors = &registry_->AddCounter(
      "ambit_waypoint_downstream_errors",
      "Downstream requests refused as malformed or timed out, by protocol and reason",
      {"protocol", "reason"});
  counters_.connect_rejected = &registry_->AddCounter(
      "ambit_waypoint_connect_rejected",
      "Downstream HBONE/sandwich connections refused before any request, by reason",
      {"reason"});
  counters_.route_outcomes = &registry_->AddCounter(
      "ambit_waypoint_route_outcomes",
      "Requests the route step answered or copied itself, by outcome (route_not_found, "
      "cluster_not_found, direct_response, redirect, mirror_sent, mirror_skipped_body, "
      "mirror_failed, fault_delay, fault_abort)",
      {"outcome"});
  counters_.rbac_allowed = &registry_->AddCounter(
      "ambit_waypoint_rbac_allowed",
      "Requests the waypoint's AuthorizationPolicies allowed, by the ALLOW policy that matched "
      "(empty: no ALLOW policy applies)", {"policy"});
  counters_.rbac_denied = &registry_->AddCounter(
      "ambit_waypoint_rbac_denied",
      "Requests denied by authorization (403 RBAC), by the DENY policy that matched (empty: no "
      "ALLOW policy matched)", {"policy"});
  counters_.rbac_shadow = &registry_->AddCounter(
      "ambit_waypoint_rbac_shadow",
      "Dry-run (istio.io/dry-run) authorization results, not enforced", {"result", "policy"});
  counters_.rbac_audit = &registry_->AddCounter(
      "ambit_waypoint_rbac_audit", "Requests an AUDIT AuthorizationPolicy matched (logged only)",
      {"policy"});
  counters_.retries = &registry_->AddCounter(
      "ambit_waypoint_retries",
      "Upstream retries by cluster and event: retry (a retry was sent), success (the request "
      "succeeded after retrying), limit_exceeded (retriable but no retries left, flag URX), "
      "body_too_large (retriable but the body was too large to replay), timeout (the route's "
      "timeout ended the retries)",
      {"cluster", "event"});
  counters_.upstream_idle_timeouts = &registry_->AddCounter(
      "ambit_waypoint_upstream_cx_idle_timeout",
      "Upstream HTTP/1.1 connections and HTTP/2 sessions the waypoint closed after no request "
      "for the cluster's connectionPool.http.idleTimeout (or the pool default), by cluster",
      {"cluster"});
  counters_.cx_rebalanced = &registry_->AddCounter(
      "ambit_waypoint_downstream_cx_rebalanced",
      "Downstream connections accepted by one worker and served by a less busy one "
      "(exact connection balance)");
  counters_.cx_active = &registry_->AddGauge(
      "ambit_waypoint_downstream_cx_active",
      "Downstream (HBONE or sandwich) connections being served, by worker", {"worker"});
  counters_.tcp_idle_timeouts = &registry_->AddCounter(
      "ambit_waypoint_tcp_idle_timeout",
      "TCP-relayed connections closed after no bytes either way for the cluster's "
      "connectionPool.tcp.idleTimeout (default 1h), by cluster",
      {"cluster"});
  rl_counters_.ok = &registry_->AddCounter(
      "ambit_waypoint_ratelimit_ok", "Requests a rate limit policy let through, by policy",
      {"policy"});
  rl_counters_.over_limit = &registry_->AddCounter(
      "ambit_waypoint_ratelimit_over_limit",
      "Requests answered 429 (flag RL) by a rate limit policy, by policy and source "
      "(local bucket or global RateLimitService)",
      {"policy", "source"});
  rl_counters_.not_enforced = &registry_->AddCounter(
      "ambit_waypoint_ratelimit_not_enforced",
      "Requests over a local limit but let through (filter_enforced below 100%), by policy",
      {"policy"});
  rl_counters_.rls_errors = &registry_->AddCounter(
      "ambit_waypoint_ratelimit_rls_errors",
      "RateLimitService calls that failed (timeout, unavailable, unknown_code); the request "
      "passed unless failureModeDeny",
      {"policy", "reason"});
  registry_->AddCallbackCounter(
      "ambit_waypoint_ratelimit_buckets_evicted",
      "Per-descriptor-value token buckets dropped because a policy reached its bucket bound",
      [this] {
        std::shared_ptr<const RateLimits> rl = std::atomic_load(&ratelimits_);
        double n = 0;
        if (rl) {
          for (const auto& l : rl->limiters) n += static_cast<double>(l->Evictions());
        }
        return n;
      });
  route_findings_ = &registry_->AddGauge(
      "ambit_config_findings",
      "Config findings of the last applied config (unsupported or invalid fields, conflicts), "
      "by kind", {"kind"});
  registry_->AddCallbackCounter("ambit_log_lines_dropped",
                                "Log lines dropped because the log queue was full",
                                [] { return static_cast<double>(base::ProcessLogger().lines_dropped()); });

  resilience_ = std::make_unique<ResilienceRegistry>(*registry_, control);

  RETURN_IF_ERROR(StartWorkers());
  RETURN_IF_ERROR(StartConfig());
  return StartAdmin();
}

Status Waypoint::StartWorkers() {
  const size_t n = runtime_->worker_count();
  workers_.resize(n);
  WorkerOptions wo;
  wo.upstream.connect_timeout = flags_.connect_timeout;
  wo.upstream.conn.handshake_timeout = flags_.handshake_timeout;
  wo.pool.max_streams_per_conn = static_cast<size_t>(flags_.pool_max_streams);
  wo.sniff_timeout = flags_.sniff_timeout;
  wo.idle_timeout = flags_.idle_timeout;
  std::latch ready(static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i) {
    runtime_->PostToWorker(i, [this, i, wo, &ready](io::Loop& loop) {
      workers_[i] = std::make_unique<Worker>(loop, i, wo, *request_metrics_, *tcp_metrics_,
                                             counters_);
      workers_[i]->Start();
      ready.count_down();
    });
  }
  ready.wait();
  std::vector<Worker*> all;
  for (auto& w : workers_) all.push_back(w.get());
  for (auto& w : workers_) w->SetSiblings(all);  // before any listener starts
  return absl::OkStatus();
}

Status Waypoint::StartConfig() {
  if (flags_.cluster_mode()) return StartCluster();
  const std::string ca_dir = flags_.ca_dir.empty() ? "/var/lib/ambit/ca" : flags_.ca_dir;
  bool created = false;
  ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::LoadOrCreateInDir(ca_dir, &created));
  if (created) AMBIT_LOG(kInfo, "waypoint", "created a new built-in CA in {}", ca_dir);
  ca_.emplace(std::move(ca));
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(flags_.cert_ttl);
  cert_source_ = std::make_unique<identity::BuiltinCertSource>(runtime_->main_loop(), *ca_, ttl);
  secrets_ = std::make_unique<identity::SecretManager>(runtime_->main_loop(), *cert_source_);
  secrets_->Subscribe([this](const identity::Identity& id, const identity::CertPtr& cert) {
    OnCertificate(id, cert);
  });
  watcher_ = std::make_unique<config::FileWatcher>(
      flags_.config_path, [this](const StatusOr<std::shared_ptr<const config::LocalConfig>>& r) {
        runtime_->PostToMain([this, r]() { OnConfig(r); });
      });
  auto first = config::LoadLocalConfigFile(flags_.config_path);
  if (!first.ok()) return first.status();
  RETURN_IF_ERROR(Reconcile(*first));
  reloads_ok_->Inc();
  config_ready_.store(true);
  return watcher_->Start();
}

void Waypoint::OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result) {
  if (draining_) return;
  Status st = result.ok() ? Reconcile(**result) : result.status();
  if (!st.ok()) {
    reloads_failed_->Inc();
    AMBIT_LOG(kError, "config", "config rejected, keeping the last good config: {}",
              st.ToString());
    return;
  }
  reloads_ok_->Inc();
}

Status Waypoint::Reconcile(const config::LocalConfig& raw) {
  config::LocalConfig cfg = raw;
  for (auto& w : cfg.workloads) {  // the xDS defaults, as the agent applies them
    if (w.trust_domain.empty()) w.trust_domain = "cluster.local";
    if (w.service_account.empty()) w.service_account = "default";
  }
  for (const auto& w : cfg.warnings) AMBIT_LOG(kWarn, "config", "{}", w);
  mesh::WorkloadStore store;
  RETURN_IF_ERROR(mesh::ApplyLocalConfig(cfg, &store));
  std::shared_ptr<const mesh::Snapshot> snap = store.Build();
  const mesh::Workload* self = snap->FindWorkload(flags_.workload_uid);
  if (self == nullptr) {
    return absl::NotFoundError(fmt::format(
        "workload {} (--workload) is not in {}: the waypoint needs its own workload entry",
        flags_.workload_uid, flags_.config_path));
  }
  return Apply(cfg, std::move(snap), *self);
}

Status Waypoint::Apply(const config::LocalConfig& cfg, std::shared_ptr<const mesh::Snapshot> snap,
                       const mesh::Workload& self_ref) {
  const mesh::Workload* self = &self_ref;
  ASSIGN_OR_RETURN(identity::Identity id,
                   identity::Identity::Make(self->trust_domain, self->ns, self->service_account));
  route::CompileResult routes = route::Compile(cfg.resources, *snap, generation_ + 1, self);
  route::AuthzCompileResult authz = route::CompileAuthz(cfg.resources, *snap, *self);
  routes.findings.insert(routes.findings.end(), authz.findings.begin(), authz.findings.end());
  route::TelemetryCompileResult telemetry = route::CompileTelemetry(cfg.resources, *snap, *self);
  for (auto& f : telemetry.findings) routes.findings.push_back(std::move(f));
  route::ObservabilityCompileResult observability =
      route::CompileObservability(cfg.resources, *snap, *self);
  for (auto& f : observability.findings) routes.findings.push_back(std::move(f));
  for (auto& f : route::UnreachableEndpointFindings(*snap, *self)) routes.findings.push_back(f);
  // Values Istio's validation refuses reject the whole change (the last
  // good config stays), like a YAML error would.
  std::vector<std::string> invalid;
  for (const route::Finding& f : routes.findings) {
    if (f.invalid) invalid.push_back(f.ToString());
  }
  if (!invalid.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{} invalid value{}: {}", invalid.size(), invalid.size() == 1 ? "" : "s",
        fmt::join(invalid, "; ")));
  }
  ReportRouteFindings(routes.findings);
  BuildRateLimits(*routes.config, *snap);
  warnings_ = cfg.warnings;
  snapshot_ = snap;
  routes_ = routes.config;
  resilience_table_ = resilience_->Build(*routes_);
  authz_ = authz.config;
  authz_unbound_ = std::move(authz.unbound);
  tracing_ = telemetry.config;
  observability_ = observability.config;
  self_ = *self;
  if (!identity_ || !(*identity_ == id)) {
    AMBIT_LOG(kInfo, "identity", "waypoint identity {}", id.ToString());
    identity_ = id;
    cert_ready_.store(false);
    if (identity::CertPtr c = secrets_->Lookup(id); c != nullptr) {
      runtime_->main_loop().Post([this, id, c] { OnCertificate(id, c); });
    } else {
      secrets_->Prefetch(id, identity::CertPriority::kRealTime);
    }
  }
  AMBIT_LOG(kInfo, "config",
            "config applied: {} workloads, {} services, {} route tables, {} authorization "
            "policies; serving as {}/{}",
            snap->workloads().size(), snap->services().size(), routes_->tables.size(),
            authz_->policies.size(), self->ns, self->name);
  Publish();
  return absl::OkStatus();
}

void Waypoint::OnCertificate(const identity::Identity& id, const identity::CertPtr& cert) {
  if (!identity_ || !(id == *identity_)) return;
  if (cert == cert_) return;
  auto server = tls::MakeServerContext(*cert);
  auto client = server.ok() ? tls::MakeClientContext(*cert) : server.status();
  if (!server.ok() || !client.ok()) {
    AMBIT_LOG(kError, "identity", "certificate for {} is unusable: {}", id.ToString(),
              (server.ok() ? client.status() : server.status()).ToString());
    return;
  }
  AMBIT_LOG(kInfo, "identity", "{} certificate for {} (serial {})",
            cert_ != nullptr ? "rotated" : "got", id.ToString(), cert->serial_hex);
  cert_ = cert;
  server_tls_ = *server;
  client_tls_ = *client;
  cert_ready_.store(true);
  Publish();
  if (!listeners_started_) {
    Status st = StartListeners();
    if (!st.ok()) {
      AMBIT_LOG(kError, "waypoint", "cannot open the listeners: {}", st.ToString());
      StartDrain();
    }
  }
}

// Each finding is logged once per distinct text (a reload that keeps a
// problem does not repeat it) and counted by kind in ambit_config_findings.
void Waypoint::ReportRouteFindings(const std::vector<route::Finding>& findings) {
  std::set<std::string> now;
  std::map<std::string, int64_t> by_kind;
  for (const route::Finding& f : findings) {
    std::string text = f.ToString();
    if (!route_findings_logged_.contains(text)) {
      AMBIT_LOG(kWarn, "config", "{}", text);
    }
    ++by_kind[f.kind];
    now.insert(std::move(text));
  }
  for (const auto& [kind, n] : route_finding_kinds_) {
    if (!by_kind.contains(kind)) route_findings_->Get(runtime_->worker_count(), {kind})->Set(0);
  }
  for (const auto& [kind, n] : by_kind) route_findings_->Get(runtime_->worker_count(), {kind})->Set(n);
  route_finding_kinds_ = by_kind;
  route_findings_logged_ = std::move(now);
  route_findings_list_ = findings;
}

// The rate limiters of a new config: buckets of unchanged policies carry
// over; a RateLimitService named by a mesh hostname is dialled at its VIP.
void Waypoint::BuildRateLimits(const route::RouteConfig& routes, const mesh::Snapshot& snap) {
  std::vector<std::string> targets;
  RlsFactory factory = [this, &snap, &targets](const std::string& service) {
    std::string target = service;
    const size_t colon = service.rfind(':');
    if (colon != std::string::npos) {
      const std::string host = service.substr(0, colon);
      for (const auto& [key, svc] : snap.services()) {
        if (svc.hostname == host && !svc.vips.empty()) {
          target = fmt::format("{}:{}", svc.vips.front().ip.ToString(),
                               service.substr(colon + 1));
          break;
        }
      }
    }
    targets.push_back(target);
    return rls_clients_.Get(target);
  };
  std::shared_ptr<const RateLimits> next = RateLimits::Build(
      routes.rate_limits, ratelimits_.get(), rl_counters_, factory, runtime_->main_loop().Now());
  rls_clients_.Retain(targets);
  std::atomic_store(&ratelimits_, next);
}

void Waypoint::Publish() {
  if (!snapshot_ || !self_ || !server_tls_) return;  // not servable yet
  auto st = std::make_shared<WaypointState>();
  st->snapshot = snapshot_;
  st->self = *self_;
  st->identity = identity_->ToString();
  st->server_tls = server_tls_;
  st->client_tls = client_tls_;
  st->routes = routes_;
  st->resilience = resilience_table_;
  st->authz = authz_;
  st->ratelimits = std::atomic_load(&ratelimits_);
  st->tracing = tracing_;
  st->observability = observability_;
  st->sandwich = self_->application_tunnel.has_value() &&
                 self_->application_tunnel->protocol == mesh::AppTunnelProtocol::kProxy;
  st->generation = ++generation_;
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, st](io::Loop&) { workers_[i]->SetState(st); });
  }
}

Status Waypoint::StartListeners() {
  listeners_started_ = true;
  ASSIGN_OR_RETURN(auto hbone_addr, net::SocketAddress::Parse(flags_.hbone_addr));
  std::optional<net::SocketAddress> sandwich;
  if (self_->application_tunnel.has_value() &&
      self_->application_tunnel->protocol == mesh::AppTunnelProtocol::kProxy) {
    sandwich = net::SocketAddress(net::IpAddress::LoopbackV4(),
                                  self_->application_tunnel->port != 0
                                      ? self_->application_tunnel->port
                                      : 15088);
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    // Sandwich form: this pod's agent owns 15008 and hands us the streams.
    std::optional<net::Fd> hbone;
    if (!sandwich) {
      net::ListenerOptions lo{.address = hbone_addr, .backlog = 1024, .reuse_port = true};
      ASSIGN_OR_RETURN(net::Fd fd, net::CreateTcpListener(lo));
      (void)net::SetTcpNoDelay(fd.get(), true);
      hbone = std::move(fd);
    }
    std::optional<net::Fd> tunnel;
    if (sandwich) {
      net::ListenerOptions so{.address = *sandwich, .backlog = 1024, .reuse_port = true};
      ASSIGN_OR_RETURN(net::Fd t, net::CreateTcpListener(so));
      (void)net::SetTcpNoDelay(t.get(), true);
      tunnel = std::move(t);
    }
    auto fds = std::make_shared<std::pair<std::optional<net::Fd>, std::optional<net::Fd>>>(
        std::move(hbone), std::move(tunnel));
    runtime_->PostToWorker(i, [this, i, fds](io::Loop&) {
      if (fds->first) workers_[i]->AddListener(ListenerKind::kHbone, std::move(*fds->first));
      if (fds->second) workers_[i]->AddListener(ListenerKind::kSandwich, std::move(*fds->second));
    });
  }
  if (sandwich) {
    AMBIT_LOG(kInfo, "waypoint", "serving HBONE through this pod's agent: PROXY tunnel on {}",
              sandwich->ToString());
  } else {
    AMBIT_LOG(kInfo, "waypoint", "serving HBONE on {}", flags_.hbone_addr);
  }
  return absl::OkStatus();
}

std::vector<std::string> Waypoint::NotReadyReasons() const {
  std::vector<std::string> pending;
  if (!started_.load()) pending.push_back("startup");
  if (!config_ready_.load()) pending.push_back("config");
  if (!cert_ready_.load()) pending.push_back("certificate");
  if (draining_flag_.load()) pending.push_back("draining");
  return pending;
}

Status Waypoint::StartAdmin() {
  ASSIGN_OR_RETURN(admin::StandardServers servers,
                   admin::StartStandardServers(
                       *runtime_, {.admin_addr = flags_.admin_addr,
                                   .stats_addr = flags_.stats_addr,
                                   .readiness_addr = flags_.readiness_addr,
                                   .config_dump = [this] { return ConfigDump(); },
                                   .quit = [this] { StartDrain(); },
                                   .not_ready = [this] { return NotReadyReasons(); },
                                   .registry = registry_.get()}));
  admin_server_ = std::move(servers.admin);
  stats_server_ = std::move(servers.stats);
  readiness_server_ = std::move(servers.readiness);
  AMBIT_LOG(kInfo, "waypoint", "admin on {}, metrics on {}, readiness on {}", flags_.admin_addr,
            flags_.stats_addr, flags_.readiness_addr);
  return absl::OkStatus();
}

void Waypoint::StartDrain() {
  if (draining_) return;
  draining_ = true;
  draining_flag_.store(true);
  AMBIT_LOG(kInfo, "waypoint", "draining: no new connections; open ones get {}s to finish",
            std::chrono::duration_cast<std::chrono::seconds>(flags_.termination_deadline).count());
  if (watcher_) watcher_->Stop();
  StopCluster();
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i](io::Loop&) { workers_[i]->Drain(); });
  }
  runtime_->main_loop().Spawn(DrainWaiter(this));
}

io::Task<void> Waypoint::DrainWaiter(Waypoint* wp) {
  io::Loop& loop = wp->runtime_->main_loop();
  const base::MonoTime deadline = loop.Now() + wp->flags_.termination_deadline;
  for (;;) {
    size_t live = 0;
    for (const auto& w : wp->workers_) live += w->live_approx();
    if (live == 0) break;
    if (loop.Now() >= deadline) {
      AMBIT_LOG(kWarn, "waypoint", "drain deadline reached with {} task(s) open; closing them",
                live);
      break;
    }
    (void)co_await loop.Sleep(std::chrono::milliseconds(100));
  }
  wp->control_scope_.Cancel();
  wp->runtime_->Stop();
}

int Waypoint::Run() {
  runtime_->SetDrainHandler([this] { StartDrain(); });
  started_.store(true);
  runtime_->Run();
  AMBIT_LOG(kInfo, "waypoint", "drained, exiting");
  return 0;
}

}  // namespace ambit::waypoint
