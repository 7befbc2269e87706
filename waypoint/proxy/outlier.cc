#include "waypoint/proxy/outlier.h"

#include <algorithm>

#include "common/base/log.h"

namespace ambit::waypoint {

void OutlierDetector::Refresh(const route::OutlierPolicy& p, Host& h, base::MonoTime now) {
  if (h.ejected && now >= h.until) Return(h);
  // Each interval back in service takes one ejection off the multiplier.
  if (!h.ejected && h.multiplier > 0 && p.interval.count() > 0 && now > h.decay_from) {
    const auto k = static_cast<uint64_t>((now - h.decay_from) / p.interval);
    if (k > 0) {
      h.multiplier -= static_cast<uint32_t>(std::min<uint64_t>(k, h.multiplier));
      h.decay_from += p.interval * static_cast<int64_t>(k);
    }
  }
}

void OutlierDetector::Return(Host& h) {
  h.ejected = false;
  h.decay_from = h.until;
  ejected_.fetch_sub(1, std::memory_order_relaxed);
  Publish();
  AMBIT_LOG(kInfo, "outlier", "cluster {}: endpoint {} back in service", metrics_.cluster, h.key);
}

void OutlierDetector::RefreshAll(const route::OutlierPolicy& p, base::MonoTime now) {
  for (auto& [key, h] : hosts_) Refresh(p, h, now);
}

void OutlierDetector::Publish() {
  if (metrics_.ejected != nullptr) {
    metrics_.ejected->Set(static_cast<int64_t>(ejected_.load(std::memory_order_relaxed)));
  }
}

void OutlierDetector::MaybeEject(const route::OutlierPolicy& p, Host& h, base::MonoTime now) {
  h.c5xx = h.cgw = h.clocal = 0;  // the next ejection needs a new run of errors
  RefreshAll(p, now);
  const size_t seen = endpoints_.load(std::memory_order_relaxed);
  // The cluster's size as the picker saw it (the endpoints reported on, if
  // it never did).
  const size_t n = std::max<size_t>(seen > 0 ? seen : hosts_.size(), 1);
  const size_t out = ejected_.load(std::memory_order_relaxed);
  // Envoy's check: the share ejected after this one stays within the cap.
  if ((out + 1) * 100 > static_cast<size_t>(p.max_ejection_percent) * n) {
    AMBIT_LOG(kDebug, "outlier",
              "cluster {}: endpoint {} not ejected: {} of {} out already (maxEjectionPercent {})",
              metrics_.cluster, h.key, out, n, p.max_ejection_percent);
    return;
  }
  ++h.multiplier;
  const auto length = std::min<base::Duration>(p.base_ejection_time * h.multiplier,
                                               p.max_ejection_time);
  h.ejected = true;
  h.until = now + length;
  ejected_.fetch_add(1, std::memory_order_relaxed);
  ejections_total_.fetch_add(1, std::memory_order_relaxed);
  if (metrics_.ejections != nullptr) metrics_.ejections->Inc();
  Publish();
  AMBIT_LOG(kInfo, "outlier", "cluster {}: endpoint {} ejected for {}ms (ejection {})",
            metrics_.cluster, h.key,
            std::chrono::duration_cast<std::chrono::milliseconds>(length).count(), h.multiplier);
}

void OutlierDetector::Report(const route::OutlierPolicy& p, const std::string& host, Result r,
                             int status, base::MonoTime now) {
  std::lock_guard lock(mu_);
  Host& h = hosts_[host];
  if (h.key.empty()) h.key = host;
  Refresh(p, h, now);
  if (h.ejected) return;  // a request that was in flight when the endpoint went out
  switch (r) {
    case Result::kSuccess:
      h.c5xx = h.cgw = h.clocal = 0;
      return;
    case Result::kServerError:
      ++h.c5xx;
      if (status >= 502 && status <= 504) {
        ++h.cgw;
      } else {
        h.cgw = 0;
      }
      h.clocal = 0;  // it connected and answered
      break;
    case Result::kLocalConnect:
    case Result::kLocalTimeout:
      if (p.split_local_origin) {
        ++h.clocal;
      } else {
        // Envoy maps them to 503 / 504: both 5xx and gateway errors.
        ++h.c5xx;
        ++h.cgw;
      }
      break;
  }
  const bool trip = (p.consecutive_5xx > 0 && h.c5xx >= p.consecutive_5xx) ||
                    (p.consecutive_gateway_errors > 0 && h.cgw >= p.consecutive_gateway_errors) ||
                    (p.split_local_origin && p.consecutive_local_origin > 0 &&
                     h.clocal >= p.consecutive_local_origin);
  if (trip) MaybeEject(p, h, now);
}

bool OutlierDetector::Filtering(const route::OutlierPolicy& p, size_t endpoints,
                                base::MonoTime now) {
  if (endpoints_.load(std::memory_order_relaxed) != endpoints) {
    endpoints_.store(endpoints, std::memory_order_relaxed);
  }
  if (ejected_.load(std::memory_order_relaxed) == 0) return false;  // the common case
  std::lock_guard lock(mu_);
  RefreshAll(p, now);
  const size_t out = std::min(ejected_.load(std::memory_order_relaxed), endpoints);
  if (out == 0) return false;
  // Panic: too few endpoints left in service; Envoy then balances over all.
  if ((endpoints - out) * 100 < static_cast<size_t>(p.min_health_percent) * endpoints) {
    return false;
  }
  return true;
}

bool OutlierDetector::Ejected(const std::string& host, base::MonoTime now) {
  std::lock_guard lock(mu_);
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return false;
  // Refresh needs the policy only for the decay, which Ejected does not need.
  Host& h = it->second;
  if (h.ejected && now >= h.until) Return(h);
  return h.ejected;
}

std::vector<OutlierDetector::HostView> OutlierDetector::View(const route::OutlierPolicy& p,
                                                             base::MonoTime now) {
  std::lock_guard lock(mu_);
  RefreshAll(p, now);
  std::vector<HostView> out;
  for (const auto& [key, h] : hosts_) {
    HostView v;
    v.host = key;
    v.ejected = h.ejected;
    if (h.ejected) {
      v.ejected_for_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(h.until - now).count();
    }
    v.times_ejected = h.multiplier;
    v.consecutive_5xx = h.c5xx;
    v.consecutive_gateway = h.cgw;
    v.consecutive_local = h.clocal;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(),
            [](const HostView& a, const HostView& b) { return a.host < b.host; });
  return out;
}

}  // namespace ambit::waypoint
