// Envoy-style access logs of the waypoint (ISTIO-COMPAT §8): a request's
// line rendered from a route::AccessLogFormat (TEXT, or JSON with typed
// numbers and null for unset values), the per-request attributes the CEL
// filters and tag overrides read, and the asynchronous file writer (one
// thread for every log file; bounded queue, drops counted, never blocks a
// worker).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/base/ascii.h"
#include "common/base/clock.h"
#include "common/base/json.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/route/observability.h"

namespace ambit::waypoint {

// JSON strings (quotes, escapes; invalid UTF-8 → U+FFFD): common/base/json.h.
using base::AppendJsonString;

// The rendered line, newline-terminated. `start_unix_ms`: the request's
// start in wall-clock milliseconds.
std::string RenderAccessLog(const route::AccessLogFormat& format, const RequestInfo& info,
                            base::MonoTime now, int64_t start_unix_ms);

// Envoy's default START_TIME text: 2026-12-08T02:04:05.123Z (UTC).
std::string FormatStartTime(int64_t unix_ms, std::string_view strftime_format);

// A request's attributes for cel::Expr (filters, tag override values).
class RequestAttributes : public route::cel::AttributeSource {
 public:
  explicit RequestAttributes(const RequestInfo& info) : info_(info) {}
  route::cel::Value Get(route::cel::Attr attr, std::string_view key) const override;

 private:
  const RequestInfo& info_;
};

// Keeps the request headers the observability config reads (its formats,
// filters and tag overrides); nothing when no config reads any.
template <typename Headers>
void CaptureLogHeaders(RequestInfo& info, const Headers& headers) {
  if (info.observability == nullptr || info.observability->request_headers.empty()) return;
  for (const auto& h : headers) {
    for (const std::string& want : info.observability->request_headers) {
      if (base::EqualsIgnoreCase(h.name, want)) {
        info.log_headers.emplace_back(want, std::string(h.value).substr(0, 4096));
        break;
      }
    }
  }
}

// The access-log files, written by one background thread.
class AccessLogFiles {
 public:
  explicit AccessLogFiles(size_t max_queued_bytes = 8u << 20) : max_queued_(max_queued_bytes) {}
  ~AccessLogFiles();
  // Queues `line` for `path` ("/dev/stdout", "/dev/stderr" or a file opened
  // for append, created 0644). Never blocks on I/O; over the bound the line
  // is dropped and counted.
  void Write(std::string_view path, std::string_view line);
  // Waits until queued lines are written (tests, shutdown); bounded.
  void Flush(int timeout_ms = 1000);
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct File {
    std::string path;
    int fd = -1;
    bool failed = false;  // open failed: every line to it is dropped
    std::string pending;
    uint64_t pending_lines = 0;
  };
  void Loop();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_, drained_;
  std::vector<std::unique_ptr<File>> files_;
  size_t queued_ = 0;
  bool writing_ = false, stop_ = false, flush_now_ = false;
  std::thread thread_;  // started with the first line (after signal masks are set)
  std::atomic<uint64_t> written_{0}, dropped_{0};
};

}  // namespace ambit::waypoint
