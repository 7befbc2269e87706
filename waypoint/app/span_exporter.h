// The span exporter: a thread of its own that takes finished spans from the
// workers (SpanSink::Submit: a short lock, never I/O), batches them per
// collector and POSTs them (OTLP/HTTP JSON to /v1/traces, Zipkin v2 JSON to
// /api/v2/spans) over plain HTTP/1.1. Bounded: a full queue drops the new
// spans; a failed POST drops its batch (no retries). Every span is counted
// once: ambit_waypoint_spans_exported_total or
// ambit_waypoint_spans_dropped_total{reason=queue_full|export_failed|no_collector}.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/metrics/registry.h"
#include "waypoint/proxy/tracing.h"

namespace ambit::waypoint {

struct SpanExporterOptions {
  size_t max_queued = 8192;  // spans waiting for the exporter
  size_t max_batch = 512;    // spans per POST
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds timeout{2000};  // connect + write + response
};

class SpanExporter final : public SpanSink {
 public:
  // `shard` is the registry shard this thread's counters use.
  SpanExporter(metrics::Registry& registry, size_t shard, SpanExporterOptions options = {});
  ~SpanExporter() override;  // stops the thread (queued spans are dropped uncounted)
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  void Submit(std::vector<SpanRecord> spans) override;

 private:
  void Run();
  void Export(std::vector<SpanRecord>& batch);

  SpanExporterOptions options_;
  metrics::Counter* exported_;
  metrics::Counter* dropped_queue_full_;
  metrics::Counter* dropped_export_failed_;
  metrics::Counter* dropped_no_collector_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SpanRecord> queue_;
  bool stop_ = false;
  bool failing_ = false;  // exporter thread only: to log a change once
  std::thread thread_;
};

// One POST with a JSON body to ip:port (blocking, bounded by `timeout`);
// OK when the collector answered 2xx.
Status PostJson(const std::string& address, const std::string& path, const std::string& body,
                std::chrono::milliseconds timeout);

}  // namespace ambit::waypoint
