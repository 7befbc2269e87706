// The agent's istio_tcp_* families stay bounded under source churn (many
// distinct client workloads / identities): the registry's per-family cap
// holds, the rest is counted in one overflow series and in
// ambit_metrics_series_overflow_total; every byte is still counted.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <string>

#include "common/metrics/registry.h"
#include "common/telemetry/tcp_metrics.h"

using namespace ambit;

TEST_CASE("istio_tcp_* series are capped per family under source churn") {
  metrics::Registry reg(3);
  constexpr size_t kCap = 50;
  reg.set_max_series(kCap);
  telemetry::TcpMetrics m(reg);
  constexpr int kSources = 400;
  for (int i = 0; i < kSources; ++i) {
    telemetry::ConnectionLabels l;
    l.reporter_source = false;
    l.source.workload = fmt::format("client-{}", i);
    l.source.principal = fmt::format("spiffe://cluster.local/ns/churn/sa/c{}", i);
    l.destination.workload = "server";
    l.mutual_tls = true;
    metrics::Labels v = l.Values();
    size_t shard = static_cast<size_t>(i) % 3;
    m.opened.Get(shard, v)->Inc();
    m.received_bytes.Get(shard, v)->Inc(100);
  }
  std::string text = reg.Render();
  size_t series = 0, at = 0;
  uint64_t bytes = 0;
  while ((at = text.find("\nistio_tcp_received_bytes_total{", at)) != std::string::npos) {
    ++series;
    size_t sp = text.find("} ", at);
    bytes += std::stoull(text.substr(sp + 2));
    at = sp;
  }
  CHECK(series == kCap + 1);
  CHECK(bytes == 100u * kSources);
  CHECK(text.find("source_workload=\"overflow\"") != std::string::npos);
  CHECK(reg.overflowed() == 2 * (kSources - kCap));
  CHECK(text.find(fmt::format("ambit_metrics_series_overflow_total {}\n",
                              2 * (kSources - kCap))) != std::string::npos);
}
