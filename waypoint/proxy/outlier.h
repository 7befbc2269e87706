// Outlier detection (DestinationRule outlierDetection) for one cluster,
// shared by every worker. Each endpoint (by ip:port) counts consecutive
// 5xx answers, consecutive gateway errors (502, 503, 504) and, with
// splitExternalLocalOriginErrors, consecutive local-origin failures
// (connect failure, reset, timeout; otherwise those count as 503/504). At
// a threshold the endpoint is ejected at once — it gets no new requests —
// for baseEjectionTime × the times it was ejected (capped at Envoy's
// max_ejection_time, 300s); each interval it spends back in service takes
// one off that multiplier. An ejection that would put more than
// maxEjectionPercent of the cluster's endpoints out is not made; below
// minHealthPercent non-ejected endpoints the picker ignores ejection
// (Envoy's panic mode).
//
// Unlike Envoy, an ejected endpoint returns the moment its time is up
// (checked on each pick) rather than on the next interval tick. Time is
// passed in, so tests drive it exactly. Thread-safe: the pick path takes
// the mutex only while some endpoint is ejected.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base/clock.h"
#include "common/metrics/registry.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/route/traffic_policy.h"

namespace ambit::waypoint {

class OutlierDetector {
 public:
  enum class Result : uint8_t {
    kSuccess,       // a response below 500, or a local-origin success
    kServerError,   // an upstream 5xx answer (status given)
    kLocalConnect,  // connect failure or reset before a response
    kLocalTimeout,  // the route's timeout fired
  };
  struct Metrics {
    metrics::Counter* ejections = nullptr;  // ejections made
    metrics::Gauge* ejected = nullptr;      // endpoints out now
    std::string cluster;                    // for log lines
  };
  OutlierDetector() = default;
  explicit OutlierDetector(Metrics m) : metrics_(m) {}

  // One result for `host` (ip:port). `status` for kServerError.
  void Report(const route::OutlierPolicy& p, const std::string& host, Result r, int status,
              base::MonoTime now);
  // The pick path: the cluster has `endpoints`; false when no filtering is
  // needed (nothing ejected, or panic below minHealthPercent).
  bool Filtering(const route::OutlierPolicy& p, size_t endpoints, base::MonoTime now);
  bool Ejected(const std::string& host, base::MonoTime now);

  // For /config_dump.
  struct HostView {
    std::string host;
    bool ejected = false;
    int64_t ejected_for_ms = 0;  // left, when ejected
    uint32_t times_ejected = 0;  // the current multiplier
    uint32_t consecutive_5xx = 0, consecutive_gateway = 0, consecutive_local = 0;
  };
  std::vector<HostView> View(const route::OutlierPolicy& p, base::MonoTime now);
  size_t ejected_count() const { return ejected_.load(std::memory_order_relaxed); }
  uint64_t ejections_total() const { return ejections_total_.load(std::memory_order_relaxed); }

 private:
  struct Host {
    std::string key;  // ip:port
    uint32_t c5xx = 0, cgw = 0, clocal = 0;
    bool ejected = false;
    base::MonoTime until{};          // end of the current ejection
    uint32_t multiplier = 0;         // times ejected, less the intervals since
    base::MonoTime decay_from{};     // when the multiplier last decayed
  };
  // Returns expired ejections to service and decays multipliers (mu_ held).
  void Refresh(const route::OutlierPolicy& p, Host& h, base::MonoTime now);
  void Return(Host& h);  // an ejection ended
  void RefreshAll(const route::OutlierPolicy& p, base::MonoTime now);
  void MaybeEject(const route::OutlierPolicy& p, Host& h, base::MonoTime now);
  void Publish();

  Metrics metrics_;
  std::mutex mu_;
  std::unordered_map<std::string, Host> hosts_;
  std::atomic<size_t> endpoints_{0};  // as the picker last saw the cluster
  std::atomic<size_t> ejected_{0};
  std::atomic<uint64_t> ejections_total_{0};
};

// EndpointFilter over a detector for one pick.
class OutlierFilter final : public EndpointFilter {
 public:
  OutlierFilter(OutlierDetector& d, const route::OutlierPolicy& p, base::MonoTime now)
      : d_(d), p_(p), now_(now) {}
  bool Begin(size_t endpoints) const override { return d_.Filtering(p_, endpoints, now_); }
  bool Excluded(const UpstreamEndpoint& e) const override {
    return d_.Ejected(e.address.ToString(), now_);
  }

 private:
  OutlierDetector& d_;
  const route::OutlierPolicy& p_;
  base::MonoTime now_;
};

}  // namespace ambit::waypoint
