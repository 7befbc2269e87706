// StatusWriter: writes status subresources back to the API server (a JSON
// merge patch on .../status), like a Gateway API controller. The owner
// submits the wanted status per object; a thread sends what changed since
// the last successful write (newest wins), retrying failures with backoff.
// Submit/Stop on the owner's thread; the sending thread is private.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics/registry.h"
#include "waypoint/kube/api_client.h"

namespace ambit::waypoint::kube {

class StatusWriter {
 public:
  // `writes`: {kind, result} (ok, error, forbidden).
  StatusWriter(ApiServerOptions api, metrics::CounterFamily* writes, size_t shard);
  ~StatusWriter();
  void Start();
  void Stop();

  // `path` is the object path (KindInfo::ObjectPath); `patch` the merge
  // patch body ({"status":{...}}). A patch equal to the last one written for
  // the path is dropped.
  void Submit(const std::string& kind, const std::string& path, std::string patch);

  struct Stats {
    uint64_t ok = 0, failed = 0;
    std::string last_error;
  };
  Stats stats() const;

 private:
  void Run();

  ApiClient client_;
  metrics::CounterFamily* writes_;
  size_t shard_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    std::string kind, patch;
  };
  std::map<std::string, Pending> pending_;     // path → wanted
  std::map<std::string, std::string> written_;  // path → last written patch
  Stats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ambit::waypoint::kube
