#include <doctest/doctest.h>

#include <thread>

#include "common/metrics/process.h"
#include "common/metrics/registry.h"

using namespace ambit::metrics;

TEST_CASE("counters merge across shards and render with _total") {
  Registry reg(3);
  auto& fam = reg.AddCounter("istio_tcp_connections_opened", "Opened connections.",
                             {"reporter", "source_workload"});
  fam.Get(0, {"source", "sleep"})->Inc();
  fam.Get(1, {"source", "sleep"})->Inc(2);
  fam.Get(2, {"destination", "httpbin"})->Inc(5);
  std::string text = reg.Render();
  CHECK(text.find("# TYPE istio_tcp_connections_opened_total counter\n") != std::string::npos);
  CHECK(text.find("istio_tcp_connections_opened_total{reporter=\"source\",source_workload=\"sleep\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"httpbin\"} 5\n") !=
        std::string::npos);
}

TEST_CASE("label values are escaped and missing ones are unknown") {
  Registry reg(1);
  auto& fam = reg.AddGauge("g", "A gauge.", {"a", "b"});
  fam.Get(0, {"x\"y\\z\n"})->Set(-4);
  std::string text = reg.Render();
  CHECK(text.find("g{a=\"x\\\"y\\\\z\\n\",b=\"unknown\"} -4\n") != std::string::npos);
}

TEST_CASE("a family that omits empty labels leaves them out (histograms keep le)") {
  Registry reg(1);
  auto& c = reg.AddCounter("c", "C.", {"a", "b", "z"});
  c.set_omit_empty_labels(true);
  c.Get(0, {"1", "", "3"})->Inc();
  c.Get(0, {"", "", ""})->Inc(2);
  auto& h = reg.AddHistogram("h", "H.", {"a", "b"}, {1});
  h.set_omit_empty_labels(true);
  h.Get(0, {"", "x"})->Observe(0.5);
  auto& keep = reg.AddCounter("k", "K.", {"a"});
  keep.Get(0, {""})->Inc();
  std::string text = reg.Render();
  CHECK(text.find("c_total{a=\"1\",z=\"3\"} 1\n") != std::string::npos);
  CHECK(text.find("c_total 2\n") != std::string::npos);
  CHECK(text.find("h_bucket{b=\"x\",le=\"1\"} 1\n") != std::string::npos);
  CHECK(text.find("h_count{b=\"x\"} 1\n") != std::string::npos);
  CHECK(text.find("k_total{a=\"\"} 1\n") != std::string::npos);  // default: kept
}

TEST_CASE("cardinality cap sends extra label sets to overflow") {
  Registry reg(2);
  reg.set_max_series(2);
  auto& fam = reg.AddCounter("c", "C.", {"k"});
  fam.Get(0, {"1"})->Inc();
  fam.Get(1, {"2"})->Inc();
  fam.Get(0, {"3"})->Inc();
  fam.Get(1, {"4"})->Inc();
  CHECK(reg.overflowed() == 2);
  std::string text = reg.Render();
  CHECK(text.find("c_total{k=\"overflow\"} 2\n") != std::string::npos);
  CHECK(text.find("ambit_metrics_series_overflow_total 2\n") != std::string::npos);
}

TEST_CASE("histogram buckets are cumulative") {
  Registry reg(2);
  auto& fam = reg.AddHistogram("d", "D.", {}, {1, 5, 10});
  fam.Get(0, {})->Observe(0.5);
  fam.Get(1, {})->Observe(3);
  fam.Get(1, {})->Observe(100);
  std::string text = reg.Render(/*openmetrics=*/true);
  CHECK(text.find("d_bucket{le=\"1\"} 1\nd_bucket{le=\"5\"} 2\nd_bucket{le=\"10\"} 2\n"
                  "d_bucket{le=\"+Inf\"} 3\nd_sum 103.5\nd_count 3\n") != std::string::npos);
  CHECK(text.size() > 6);
  CHECK(text.substr(text.size() - 6) == "# EOF\n");
}

TEST_CASE("concurrent increments on separate shards are all counted") {
  Registry reg(4);
  auto& fam = reg.AddCounter("n", "N.", {});
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&fam, t] {
      Counter* c = fam.Get(t, {});
      for (int i = 0; i < 100000; ++i) c->Inc();
    });
  }
  for (auto& th : threads) th.join();
  CHECK(reg.Render().find("n_total 400000\n") != std::string::npos);
}

TEST_CASE("process metrics are present") {
  Registry reg(1);
  RegisterProcessMetrics(reg);
  std::string text = reg.Render();
  CHECK(text.find("process_open_fds ") != std::string::npos);
  CHECK(text.find("process_cpu_seconds_total ") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes 0\n") == std::string::npos);
  // The heap gauge follows allocations: 8 MiB held shows up, and goes away.
  auto heap = [&reg] {
    std::string t = reg.Render();
    size_t at = t.find("\nambit_heap_in_use_bytes ");
    REQUIRE(at != std::string::npos);
    return std::stod(t.substr(at + 25));
  };
  const double before = heap();
  if (before == 0) {
    // ASan/TSan replace malloc; their mallinfo2 keeps no statistics.
    MESSAGE("allocator reports no statistics (sanitizer build): heap gauge not checked");
    return;
  }
  auto* block = new char[8u << 20];
  block[0] = 1;
  const double held = heap();
  delete[] block;
  CHECK(held - before >= 8.0 * (1u << 20));
  CHECK(heap() < held);
}

TEST_CASE("accept header negotiation") {
  CHECK(WantsOpenMetrics("application/openmetrics-text; version=1.0.0,text/plain;q=0.5"));
  CHECK_FALSE(WantsOpenMetrics("text/plain"));
}

TEST_CASE("HELP text escapes backslash and line feed") {
  Registry reg(1);
  reg.AddGauge("h", "a\\b\nc");
  CHECK(reg.Render().find("# HELP h a\\\\b\\nc\n# TYPE h gauge\n") != std::string::npos);
}

TEST_CASE("the cap counts distinct label sets, not per-shard cells") {
  Registry reg(4);
  reg.set_max_series(3);
  auto& fam = reg.AddCounter("c", "C.", {"k"});
  for (size_t shard = 0; shard < 4; ++shard) {
    for (const char* k : {"a", "b", "c"}) fam.Get(shard, {k})->Inc();
  }
  CHECK(reg.overflowed() == 0);
  fam.Get(2, {"d"})->Inc();
  CHECK(reg.overflowed() == 1);
  std::string text = reg.Render();
  CHECK(text.find("c_total{k=\"a\"} 4\n") != std::string::npos);
  CHECK(text.find("c_total{k=\"overflow\"} 1\n") != std::string::npos);
}
