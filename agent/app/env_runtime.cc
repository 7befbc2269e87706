// The runtime side of ztunnel's environment in the agent: CRL_PATH (the
// CrlStore shared by every TLS context, its file watch, its metrics) and the
// answer on ztunnel's profiling paths.
#include <fmt/format.h>

#include <filesystem>

#include "agent/app/agent.h"
#include "common/base/log.h"

namespace ambit::agent {

// ztunnel serves pprof CPU and jemalloc heap profiles here (ISTIO-COMPAT
// §3.2); Ambit has no in-process profiler, so tooling that probes these paths
// gets a definite 501 with what to use instead rather than a 404 that reads
// like a wrong port.
void AddProfilingAnswers(admin::HttpServer& server) {
  static constexpr const char* kPaths[] = {"/debug/pprof", "/debug/pprof/", "/debug/pprof/profile",
                                           "/debug/pprof/heap", "/debug/pprof/heap/profiling"};
  for (const char* path : kPaths) {
    server.Handle(path, [](const admin::HttpRequest& req) {
      admin::HttpResponse r;
      r.status = 501;
      r.body = fmt::format(
          "{}: not served. ambit-agent has no in-process profiler (ztunnel's pprof CPU and "
          "jemalloc heap profiles do not apply). Profile CPU with `perf record -g -p <pid>`; "
          "memory: process_resident_memory_bytes on :15020/metrics, or run under heaptrack.\n",
          req.path);
      return r;
    });
  }
}

Status Agent::StartCrls() {
  if (flags_.ztunnel.crl_path.empty()) return absl::OkStatus();
  crls_ = std::make_shared<tls::CrlStore>(flags_.ztunnel.crl_path);
  auto& rejections = registry_->AddCounter(
      "istio_crl_policy_rejections",
      "The total number of connections rejected due to CRL certificate revocation", {"reporter"});
  const size_t shard = runtime_->worker_count();
  metrics::Counter* inbound = rejections.Get(shard, {"destination"});
  metrics::Counter* outbound = rejections.Get(shard, {"source"});
  crls_->set_on_rejection([inbound, outbound](tls::TlsRole role) {
    (role == tls::TlsRole::kServer ? inbound : outbound)->Inc();
  });
  tls::CrlStore* store = crls_.get();
  registry_->AddCallbackCounter("ambit_crl_loads", "CRL_PATH (re)loads that parsed",
                                [store] { return static_cast<double>(store->loads()); });
  registry_->AddCallbackGauge("ambit_crl_entries", "CRLs in the loaded CRL_PATH file", [store] {
    auto set = store->current();
    return set ? static_cast<double>(set->size()) : 0.0;
  });
  Status st = crls_->Reload();
  if (st.ok()) {
    AMBIT_LOG(kInfo, "identity", "CRL_PATH {}: {} CRL(s); revoked peer certificates are refused",
              crls_->path(), crls_->current()->size());
  } else {
    // As ztunnel: a missing or unparsable file does not stop start-up; until
    // a good file appears nothing is revoked.
    AMBIT_LOG(kWarn, "identity", "{}; checking again every second", std::string(st.message()));
  }
  return absl::OkStatus();
}

io::Task<void> Agent::CrlWatcher(Agent* agent) {
  namespace fs = std::filesystem;
  auto stamp = [agent] {
    std::error_code ec;
    // Kubernetes updates ConfigMap volumes by swapping a symlink: follow it.
    fs::path p = fs::canonical(agent->crls_->path(), ec);
    if (ec) return std::string();
    auto t = fs::last_write_time(p, ec);
    auto size = fs::file_size(p, ec);
    return fmt::format("{}|{}|{}", p.string(), t.time_since_epoch().count(), size);
  };
  std::string last = stamp();
  for (;;) {
    Status st = co_await agent->runtime_->main_loop().Sleep(std::chrono::seconds(1),
                                                            {.scope = &agent->control_scope_});
    if (!st.ok()) co_return;
    std::string now = stamp();
    if (now == last) continue;
    last = now;
    Status r = agent->crls_->Reload();
    if (r.ok()) {
      AMBIT_LOG(kInfo, "identity", "CRL_PATH {} reloaded: {} CRL(s) (new handshakes only)",
                agent->crls_->path(), agent->crls_->current()->size());
    } else {
      AMBIT_LOG(kWarn, "identity", "{}", std::string(r.message()));
    }
  }
}

}  // namespace ambit::agent
