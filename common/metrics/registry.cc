#include "common/metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <variant>

namespace ambit::metrics {

namespace {

const Labels kOverflowMarker = {"\x01overflow"};

void AppendEscaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
}

// HELP text escaping of the text format: backslash and line feed.
std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string LabelBlock(const Labels& names, const Labels& values, std::string_view extra = {},
                       bool omit_empty = false) {
  if (names.empty() && extra.empty()) return {};
  std::string out = "{";
  bool any = false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (omit_empty && i < values.size() && values[i].empty()) continue;
    if (any) out.push_back(',');
    any = true;
    out += names[i];
    out += "=\"";
    AppendEscaped(out, i < values.size() ? values[i] : std::string_view("unknown"));
    out.push_back('"');
  }
  if (!extra.empty()) {
    if (any) out.push_back(',');
    out += extra;
  } else if (!any) {
    return {};
  }
  out.push_back('}');
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

}  // namespace

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micros_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

struct Registry::Entry {
  std::string name;
  std::string help;
  Type type;
  std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>,
               std::unique_ptr<HistogramFamily>, std::function<double()>>
      impl;
};

template <typename Cell>
Family<Cell>::Family(Registry* reg, std::string name, std::string help, Labels label_names,
                     size_t shards, std::vector<double> bounds)
    : reg_(reg),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)),
      shards_(shards) {}

template <typename Cell>
std::unique_ptr<Cell> Family<Cell>::NewCell() {
  if constexpr (std::is_same_v<Cell, Histogram>) {
    return std::make_unique<Histogram>(&bounds_);
  } else {
    return std::make_unique<Cell>();
  }
}

template <typename Cell>
Cell* Family<Cell>::Get(size_t shard, const Labels& values) {
  Shard& s = shards_[shard % shards_.size()];
  std::lock_guard lock(s.mu);
  auto it = s.series.find(values);
  if (it != s.series.end()) return it->second.get();
  const Labels* key = &values;
  bool admit;
  {
    std::lock_guard admitted_lock(admitted_mu_);
    admit = admitted_.count(values) != 0;  // already a series on another shard
    if (!admit && admitted_.size() < reg_->max_series()) {
      admitted_.insert(values);
      admit = true;
    }
  }
  if (!admit) {
    reg_->overflow_.Inc();
    key = &kOverflowMarker;
    it = s.series.find(*key);
    if (it != s.series.end()) return it->second.get();
  }
  auto [ins, ok] = s.series.emplace(*key, NewCell());
  return ins->second.get();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry(size_t shards) : shards_(std::max<size_t>(shards, 1)) {}
Registry::~Registry() = default;

CounterFamily& Registry::AddCounter(std::string name, std::string help, Labels label_names) {
  std::lock_guard lock(mu_);
  auto fam = std::unique_ptr<CounterFamily>(
      new CounterFamily(this, name, help, std::move(label_names), shards_));
  auto* raw = fam.get();
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), Type::kCounter, std::move(fam)}));
  return *raw;
}

GaugeFamily& Registry::AddGauge(std::string name, std::string help, Labels label_names) {
  std::lock_guard lock(mu_);
  auto fam = std::unique_ptr<GaugeFamily>(
      new GaugeFamily(this, name, help, std::move(label_names), shards_));
  auto* raw = fam.get();
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), Type::kGauge, std::move(fam)}));
  return *raw;
}

HistogramFamily& Registry::AddHistogram(std::string name, std::string help, Labels label_names,
                                        std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mu_);
  auto fam = std::unique_ptr<HistogramFamily>(new HistogramFamily(
      this, name, help, std::move(label_names), shards_, std::move(bounds)));
  auto* raw = fam.get();
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), Type::kHistogram, std::move(fam)}));
  return *raw;
}

void Registry::AddCallbackGauge(std::string name, std::string help, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), Type::kGauge, std::move(fn)}));
}

void Registry::AddCallbackCounter(std::string name, std::string help, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), Type::kCounter, std::move(fn)}));
}

namespace {

struct HistSnap {
  std::vector<uint64_t> buckets;
  uint64_t count = 0;
  double sum = 0;
};

}  // namespace

std::string Registry::Render(bool openmetrics) const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mu_);
  auto header = [&](const std::string& name, const std::string& help, std::string_view type) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(help), name, type);
  };
  auto labels_of = [](const Labels& names, const Labels& values) {
    if (values == kOverflowMarker) {
      Labels v(names.size(), "overflow");
      return v;
    }
    return values;
  };
  for (auto& e : entries_) {
    if (auto* c = std::get_if<std::unique_ptr<CounterFamily>>(&e->impl)) {
      const auto& fam = **c;
      // Prometheus text names the counter family with its _total suffix;
      // OpenMetrics names the family without it.
      header(openmetrics ? e->name : e->name + "_total", e->help, "counter");
      auto merged = fam.Merge<uint64_t>(
                                             [](uint64_t& acc, const Counter& x) { acc += x.value(); });
      for (auto& [labels, v] : merged) {
        out += fmt::format("{}_total{} {}\n", e->name,
                           LabelBlock(fam.label_names_, labels_of(fam.label_names_, labels), {},
                                      fam.omit_empty_labels_),
                           v);
      }
    } else if (auto* g = std::get_if<std::unique_ptr<GaugeFamily>>(&e->impl)) {
      const auto& fam = **g;
      header(e->name, e->help, "gauge");
      auto merged = fam.Merge<int64_t>(
                                          [](int64_t& acc, const Gauge& x) { acc += x.value(); });
      for (auto& [labels, v] : merged) {
        out += fmt::format("{}{} {}\n", e->name,
                           LabelBlock(fam.label_names_, labels_of(fam.label_names_, labels), {},
                                      fam.omit_empty_labels_),
                           v);
      }
    } else if (auto* h = std::get_if<std::unique_ptr<HistogramFamily>>(&e->impl)) {
      const auto& fam = **h;
      header(e->name, e->help, "histogram");
      size_t nb = fam.bounds_.size() + 1;
      auto merged = fam.Merge<HistSnap>([nb](HistSnap& acc, const Histogram& x) {
        acc.buckets.resize(nb);
        for (size_t i = 0; i < nb; ++i) acc.buckets[i] += x.bucket(i);
        acc.count += x.count();
        acc.sum += x.sum();
      });
      for (auto& [labels, snap] : merged) {
        Labels lv = labels_of(fam.label_names_, labels);
        uint64_t cum = 0;
        for (size_t i = 0; i < nb; ++i) {
          cum += snap.buckets[i];
          std::string le = fmt::format("le=\"{}\"", i < fam.bounds_.size()
                                                        ? FormatDouble(fam.bounds_[i])
                                                        : std::string("+Inf"));
          out += fmt::format("{}_bucket{} {}\n", e->name, LabelBlock(fam.label_names_, lv, le, fam.omit_empty_labels_), cum);
        }
        out += fmt::format("{}_sum{} {}\n", e->name, LabelBlock(fam.label_names_, lv, {}, fam.omit_empty_labels_),
                           FormatDouble(snap.sum));
        out += fmt::format("{}_count{} {}\n", e->name, LabelBlock(fam.label_names_, lv, {}, fam.omit_empty_labels_), snap.count);
      }
    } else if (auto* fn = std::get_if<std::function<double()>>(&e->impl)) {
      bool counter = e->type == Type::kCounter;
      header(counter && !openmetrics ? e->name + "_total" : e->name, e->help,
             counter ? "counter" : "gauge");
      out += fmt::format("{}{} {}\n", e->name, counter ? "_total" : "", FormatDouble((*fn)()));
    }
  }
  header(openmetrics ? "ambit_metrics_series_overflow" : "ambit_metrics_series_overflow_total", "Label sets dropped into the overflow series because a family reached its series cap.", "counter");
  out += fmt::format("ambit_metrics_series_overflow_total {}\n", overflow_.value());
  if (openmetrics) out += "# EOF\n";
  return out;
}

bool WantsOpenMetrics(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos;
}

const std::vector<double>& IstioDurationBucketsMs() {
  static const std::vector<double> kBuckets = {0.5,  1,    5,    10,    25,    50,    100,
                                               250,  500,  1000, 2500,  5000,  10000, 30000,
                                               60000, 300000, 600000, 1800000, 3600000};
  return kBuckets;
}

}  // namespace ambit::metrics
