// KubeWatcher: list + watch of the L7 kinds the waypoint compiles, one
// thread per kind (blocking ApiClient). Per kind: list (paged, limit=500),
// then watch from the list's resourceVersion with allowWatchBookmarks; a
// watch that ends is resumed from the last resourceVersion seen; 410 Gone
// (HTTP status or ERROR event) → relist, which replaces that kind's objects
// (nothing lost while the watch was down). Errors back off (200 ms doubling
// to 30 s); 403 / 404 for a kind are reported (state, last error, counter)
// and retried every 30 s, never fatal. Malformed events are counted by
// reason and skipped; a line over the limit drops the stream (relist).
//
// Threads: the watcher threads own the connections; objects and status live
// under one mutex; `on_change` is called from a watcher thread after a kind's
// objects changed (the owner posts to its loop). Start/Stop/destruction on
// the owner's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/registry.h"
#include "waypoint/kube/api_client.h"
#include "waypoint/kube/watch_decoder.h"

namespace ambit::waypoint::kube {

struct KindInfo {
  std::string group, version, plural, kind;
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string CollectionPath() const;           // /apis/G/V/PLURAL (every namespace)
  std::string ObjectPath(const std::string& ns, const std::string& name) const;
};

// VirtualService, DestinationRule, ServiceEntry, EnvoyFilter, Sidecar-free
// Istio kinds, AuthorizationPolicy, Telemetry, Gateway API HTTPRoute,
// GRPCRoute, Gateway, ReferenceGrant.
const std::vector<KindInfo>& DefaultKinds();
const KindInfo* FindKind(std::string_view kind);

enum class KindState : uint8_t { kListing, kWatching, kBackoff, kForbidden, kNotServed };
std::string_view KindStateName(KindState s);

struct KindStatus {
  std::string kind, api_version, resource_version, last_error;
  KindState state = KindState::kListing;
  bool synced = false;  // listed once, or given up on (403/404)
  size_t objects = 0;
  uint64_t events = 0, relists = 0, errors = 0, lists = 0;
};

struct WatcherCounters {
  metrics::CounterFamily* events = nullptr;   // {kind, type}
  metrics::CounterFamily* relists = nullptr;  // {kind, reason}
  metrics::CounterFamily* errors = nullptr;   // {kind, reason}
  size_t shard = 0;
};

struct WatcherOptions {
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds forbidden_retry{30000};
  int watch_timeout_seconds = 300;  // timeoutSeconds of a watch request
};

class KubeWatcher {
 public:
  KubeWatcher(ApiServerOptions api, std::vector<KindInfo> kinds, WatcherOptions options,
              WatcherCounters counters, std::function<void()> on_change);
  ~KubeWatcher();
  KubeWatcher(const KubeWatcher&) = delete;
  KubeWatcher& operator=(const KubeWatcher&) = delete;

  void Start();
  void Stop();  // joins the threads

  // Every object of every kind (copies), kinds in table order, keys sorted.
  std::vector<KubeObject> Objects() const;
  std::vector<KindStatus> Status() const;
  bool synced() const;  // every kind synced
  const ApiServerOptions& api() const { return api_; }

 private:
  struct Kind {
    KindInfo info;
    std::unique_ptr<ApiClient> client;
    std::map<std::string, KubeObject> objects;  // guarded by mu_
    KindStatus status;                          // guarded by mu_
    std::thread thread;
    std::chrono::milliseconds backoff{200};  // this thread only
  };
  void Run(Kind& k);
  // Returns false when the list failed (status set); fills rv.
  bool List(Kind& k, std::string* rv);
  // Watches until the stream ends; true when it ended with 410 (relist).
  bool Watch(Kind& k, std::string* rv);
  void Fail(Kind& k, KindState state, std::string_view reason, std::string message);
  void Sleep(std::chrono::milliseconds d);
  void Count(metrics::CounterFamily* f, const Kind& k, std::string_view label);

  ApiServerOptions api_;
  WatcherOptions options_;
  WatcherCounters counters_;
  std::function<void()> on_change_;
  std::vector<std::unique_ptr<Kind>> kinds_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
};

}  // namespace ambit::waypoint::kube
