// Metrics: counters, gauges and histograms declared once per component,
// sharded per worker (each worker thread writes only its shard, relaxed
// atomics, no locks on the hot path once a series handle is held), merged at
// scrape into Prometheus text or OpenMetrics.
//
//   Registry reg(/*shards=*/workers + 1);
//   auto& opened = reg.AddCounter("istio_tcp_connections_opened", "...", {"reporter", ...});
//   Counter* c = opened.Get(shard, {"source", ...});   // once per connection
//   c->Inc();                                           // hot path
//
// Counter family names are given without `_total`; exposition appends it.
// Label cardinality is capped per family (set_max_series: distinct label sets
// across all shards); label sets beyond the cap land in one overflow series
// and each such lookup is counted in ambit_metrics_series_overflow_total.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ambit::metrics {

using Labels = std::vector<std::string>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  void Set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds)
      : bounds_(bounds), buckets_(bounds->size() + 1) {}
  void Observe(double v);
  // Cumulative view for exposition.
  const std::vector<double>& bounds() const { return *bounds_; }
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

 private:
  const std::vector<double>* bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // per-bucket (not cumulative)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};  // sum in 1e-6 units, kept integral for atomics
};

enum class Type { kCounter, kGauge, kHistogram };

class Registry;

// A family of series of one type with fixed label names.
template <typename Cell>
class Family {
 public:
  // Returns the series for `values` in `shard` (creating it). Thread-safe;
  // intended to be called once per connection/object and the pointer kept.
  Cell* Get(size_t shard, const Labels& values);
  const std::string& name() const { return name_; }
  const Labels& label_names() const { return label_names_; }
  const std::vector<double>& bounds() const { return bounds_; }
  // Exposition leaves out labels whose value is empty (Prometheus treats
  // `l=""` as no label): how a removed label looks (Telemetry tagOverrides
  // REMOVE). Set before the family is used.
  void set_omit_empty_labels(bool on) { omit_empty_labels_ = on; }
  bool omit_empty_labels() const { return omit_empty_labels_; }

  // Scrape path: folds every shard's series into one value per label set.
  template <typename Value, typename Read>
  std::map<Labels, Value> Merge(Read read) const {
    std::map<Labels, Value> out;
    for (auto& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto& [labels, cell] : s.series) read(out[labels], *cell);
    }
    return out;
  }

 private:
  friend class Registry;
  struct Shard {
    mutable std::mutex mu;
    std::map<Labels, std::unique_ptr<Cell>> series;
  };
  Family(Registry* reg, std::string name, std::string help, Labels label_names, size_t shards,
         std::vector<double> bounds = {});
  std::unique_ptr<Cell> NewCell();

  Registry* reg_;
  std::string name_;
  std::string help_;
  Labels label_names_;
  std::vector<double> bounds_;
  std::vector<Shard> shards_;
  std::atomic<size_t> series_count_{0};
  bool omit_empty_labels_ = false;
  // Distinct label sets admitted across all shards (the cardinality cap
  // counts label sets, not per-shard cells). Locked after a shard's mutex,
  // only when a shard misses.
  std::mutex admitted_mu_;
  std::set<Labels> admitted_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  explicit Registry(size_t shards);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily& AddCounter(std::string name, std::string help, Labels label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help, Labels label_names = {});
  HistogramFamily& AddHistogram(std::string name, std::string help, Labels label_names,
                                std::vector<double> bounds);
  // Value computed at scrape time (process metrics, queue depths).
  void AddCallbackGauge(std::string name, std::string help, std::function<double()> fn);
  // Monotonic value read at scrape time; rendered as `<name>_total`.
  void AddCallbackCounter(std::string name, std::string help, std::function<double()> fn);

  void set_max_series(size_t n) { max_series_ = n; }
  size_t max_series() const { return max_series_; }
  size_t shards() const { return shards_; }
  uint64_t overflowed() const { return overflow_.value(); }

  // Prometheus text format 0.0.4, or OpenMetrics 1.0 text (ends with # EOF).
  std::string Render(bool openmetrics = false) const;

 private:
  template <typename Cell>
  friend class Family;
  struct Entry;

  size_t shards_;
  size_t max_series_ = 10000;
  Counter overflow_;
  std::vector<std::unique_ptr<Entry>> entries_;
  mutable std::mutex mu_;
};

// Content type to answer with, from a request's Accept header.
bool WantsOpenMetrics(std::string_view accept_header);
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// Istio's default request-duration buckets (milliseconds).
const std::vector<double>& IstioDurationBucketsMs();

}  // namespace ambit::metrics
