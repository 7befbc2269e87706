#include "waypoint/kube/watcher.h"

#include <fmt/format.h>

#include "common/base/log.h"

namespace ambit::waypoint::kube {

namespace {

std::string UrlEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string BodyMessage(const ApiResponse& r) {
  WatchEvent st = DecodeStatus(r.body);
  return st.message.empty() ? fmt::format("HTTP {}", r.status)
                            : fmt::format("HTTP {}: {}", r.status, st.message);
}

}  // namespace

std::string KindInfo::CollectionPath() const {
  return group.empty() ? fmt::format("/api/{}/{}", version, plural)
                       : fmt::format("/apis/{}/{}/{}", group, version, plural);
}

std::string KindInfo::ObjectPath(const std::string& ns, const std::string& name) const {
  const std::string base = group.empty() ? fmt::format("/api/{}", version)
                                         : fmt::format("/apis/{}/{}", group, version);
  return fmt::format("{}/namespaces/{}/{}/{}", base, UrlEscape(ns), plural, UrlEscape(name));
}

const std::vector<KindInfo>& DefaultKinds() {
  static const std::vector<KindInfo> kinds = {
      {"gateway.networking.k8s.io", "v1", "gateways", "Gateway"},
      {"gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"},
      {"gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute"},
      {"gateway.networking.k8s.io", "v1beta1", "referencegrants", "ReferenceGrant"},
      {"networking.istio.io", "v1", "virtualservices", "VirtualService"},
      {"networking.istio.io", "v1", "destinationrules", "DestinationRule"},
      {"networking.istio.io", "v1", "serviceentries", "ServiceEntry"},
      {"networking.istio.io", "v1alpha3", "envoyfilters", "EnvoyFilter"},
      {"security.istio.io", "v1", "authorizationpolicies", "AuthorizationPolicy"},
      {"telemetry.istio.io", "v1", "telemetries", "Telemetry"},
  };
  return kinds;
}

const KindInfo* FindKind(std::string_view kind) {
  for (const KindInfo& k : DefaultKinds()) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

std::string_view KindStateName(KindState s) {
  switch (s) {
    case KindState::kListing: return "listing";
    case KindState::kWatching: return "watching";
    case KindState::kBackoff: return "backoff";
    case KindState::kForbidden: return "forbidden";
    case KindState::kNotServed: return "not_served";
  }
  return "?";
}

KubeWatcher::KubeWatcher(ApiServerOptions api, std::vector<KindInfo> kinds,
                         WatcherOptions options, WatcherCounters counters,
                         std::function<void()> on_change)
    : api_(std::move(api)),
      options_(options),
      counters_(counters),
      on_change_(std::move(on_change)) {
  for (KindInfo& info : kinds) {
    auto k = std::make_unique<Kind>();
    k->status.kind = info.kind;
    k->status.api_version = info.ApiVersion();
    k->info = std::move(info);
    k->client = std::make_unique<ApiClient>(api_);
    kinds_.push_back(std::move(k));
  }
}

KubeWatcher::~KubeWatcher() { Stop(); }

void KubeWatcher::Start() {
  for (auto& k : kinds_) {
    Kind* kp = k.get();
    k->thread = std::thread([this, kp] {
      BlockSigpipeOnThisThread();
      Run(*kp);
    });
  }
}

void KubeWatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& k : kinds_) k->client->Interrupt();
  for (auto& k : kinds_) {
    if (k->thread.joinable()) k->thread.join();
  }
}

std::vector<KubeObject> KubeWatcher::Objects() const {
  std::lock_guard lock(mu_);
  std::vector<KubeObject> out;
  for (const auto& k : kinds_) {
    for (const auto& [key, obj] : k->objects) out.push_back(obj);
  }
  return out;
}

std::vector<KindStatus> KubeWatcher::Status() const {
  std::lock_guard lock(mu_);
  std::vector<KindStatus> out;
  for (const auto& k : kinds_) {
    out.push_back(k->status);
    out.back().objects = k->objects.size();
  }
  return out;
}

bool KubeWatcher::synced() const {
  std::lock_guard lock(mu_);
  for (const auto& k : kinds_) {
    if (!k->status.synced) return false;
  }
  return true;
}

void KubeWatcher::Count(metrics::CounterFamily* f, const Kind& k, std::string_view label) {
  if (f != nullptr) f->Get(counters_.shard, {k.info.kind, std::string(label)})->Inc();
}

void KubeWatcher::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
}

void KubeWatcher::Fail(Kind& k, KindState state, std::string_view reason, std::string message) {
  Count(counters_.errors, k, reason);
  bool log = false;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    if (stop_) return;  // Stop() ended the request: not an API server problem
    log = k.status.last_error != message;
    k.status.last_error = message;
    k.status.state = state;
    ++k.status.errors;
    if (state == KindState::kForbidden || state == KindState::kNotServed) {
      // Reported, not fatal: the waypoint runs without this kind.
      changed = !k.status.synced;
      k.status.synced = true;
    }
  }
  if (log && state == KindState::kBackoff) {
    AMBIT_LOG(kWarn, "kube", "{} ({}): {}", k.info.kind, reason, message);
  } else if (log) {
    AMBIT_LOG(kError, "kube", "{} ({}): {} (not fatal: serving without this kind)", k.info.kind,
              reason, message);
  }
  if (changed) on_change_();
}

bool KubeWatcher::List(Kind& k, std::string* rv) {
  std::map<std::string, KubeObject> objects;
  std::string token, list_rv;
  for (int page = 0;; ++page) {
    std::string target = k.info.CollectionPath() + "?limit=500";
    if (!token.empty()) target += "&continue=" + UrlEscape(token);
    StatusOr<ApiResponse> r = k.client->Request("GET", target, "", "", nullptr, kMaxListBytes);
    if (!r.ok()) {
      Fail(k, KindState::kBackoff, "connect", fmt::format("list: {}", std::string(r.status().message())));
      return false;
    }
    if (r->status == 403) {
      Fail(k, KindState::kForbidden, "forbidden", fmt::format("list: {}", BodyMessage(*r)));
      return false;
    }
    if (r->status == 404) {
      Fail(k, KindState::kNotServed, "not_served", fmt::format("list: {}", BodyMessage(*r)));
      return false;
    }
    if (r->status == 410 && !token.empty()) {  // the continue token expired: start over
      token.clear();
      objects.clear();
      continue;
    }
    if (r->status != 200) {
      Fail(k, KindState::kBackoff, "http", fmt::format("list: {}", BodyMessage(*r)));
      return false;
    }
    DecodedList d = DecodeList(r->body, {k.status.api_version, k.info.kind});
    if (!d.list) {
      Fail(k, KindState::kBackoff, DecodeReasonName(d.error.reason),
           fmt::format("list: {}", d.error.message));
      return false;
    }
    for (KubeObject& o : d.list->items) {
      std::string key = o.Key();
      objects[std::move(key)] = std::move(o);
    }
    if (objects.size() > kMaxListItems) {
      Fail(k, KindState::kBackoff, "too_large",
           fmt::format("list: over {} objects", kMaxListItems));
      return false;
    }
    list_rv = d.list->resource_version;
    token = d.list->continue_token;
    if (token.empty()) break;
  }
  *rv = list_rv;
  {
    std::lock_guard lock(mu_);
    k.objects = std::move(objects);
    k.status.resource_version = list_rv;
    k.status.state = KindState::kWatching;
    k.status.last_error.clear();
    k.status.synced = true;
    ++k.status.lists;
  }
  AMBIT_LOG(kInfo, "kube", "listed {}: {} object(s) at resourceVersion {}", k.info.kind,
            k.objects.size(), list_rv);
  on_change_();
  return true;
}

bool KubeWatcher::Watch(Kind& k, std::string* rv) {
  const std::string target = fmt::format(
      "{}?watch=1&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds={}",
      k.info.CollectionPath(), UrlEscape(*rv), options_.watch_timeout_seconds);
  LineSplitter lines;
  bool gone = false, drop = false, errored = false;
  const KindRef ref{k.status.api_version, k.info.kind};
  auto on_body = [&](std::string_view bytes) -> bool {
    if (!lines.Feed(bytes)) {
      Count(counters_.errors, k, "too_large");
      drop = true;
      return false;
    }
    bool changed = false;
    while (std::optional<std::string> line = lines.Next()) {
      DecodedEvent d = DecodeWatchEvent(*line, ref);
      if (!d.event) {
        Count(counters_.errors, k, DecodeReasonName(d.error.reason));
        std::lock_guard lock(mu_);
        ++k.status.errors;
        k.status.last_error = fmt::format("watch event skipped: {}", d.error.message);
        continue;
      }
      WatchEvent& ev = *d.event;
      k.backoff = options_.backoff_initial;  // the stream works
      Count(counters_.events, k, EventTypeName(ev.type));
      if (ev.type == EventType::kError) {
        gone = ev.code == 410;
        errored = !gone;
        std::lock_guard lock(mu_);
        k.status.last_error = fmt::format("watch ERROR {} {}: {}", ev.code, ev.reason, ev.message);
        return false;
      }
      std::lock_guard lock(mu_);
      ++k.status.events;
      if (!ev.object.resource_version.empty()) *rv = ev.object.resource_version;
      k.status.resource_version = *rv;
      if (ev.type == EventType::kAdded || ev.type == EventType::kModified) {
        std::string key = ev.object.Key();
        k.objects[std::move(key)] = std::move(ev.object);
        changed = true;
      } else if (ev.type == EventType::kDeleted) {
        changed |= k.objects.erase(ev.object.Key()) > 0;
      }
    }
    if (changed) on_change_();
    return true;
  };
  StatusOr<ApiResponse> r = k.client->Request("GET", target, "", "", on_body, 64 * 1024);
  if (gone) return true;
  if (drop) {
    Fail(k, KindState::kBackoff, "too_large", "watch event over the size limit; relisting");
    return true;
  }
  if (!r.ok()) {
    Fail(k, KindState::kBackoff, "watch", fmt::format("watch: {}", std::string(r.status().message())));
    Sleep(k.backoff);
    k.backoff = std::min(k.backoff * 2, options_.backoff_max);
    return false;
  }
  if (r->status == 410) return true;
  if (errored) {  // an ERROR event other than 410: back off, then resume from the RV
    Count(counters_.errors, k, "watch_error");
    Sleep(k.backoff);
    k.backoff = std::min(k.backoff * 2, options_.backoff_max);
    return false;
  }
  if (r->status == 403) {
    Fail(k, KindState::kForbidden, "forbidden", fmt::format("watch: {}", BodyMessage(*r)));
    Sleep(options_.forbidden_retry);
    return true;
  }
  if (r->status != 200) {
    Fail(k, KindState::kBackoff, "http", fmt::format("watch: {}", BodyMessage(*r)));
    Sleep(k.backoff);
    k.backoff = std::min(k.backoff * 2, options_.backoff_max);
    return false;
  }
  k.backoff = options_.backoff_initial;  // a clean end (timeoutSeconds): resume at once
  return false;
}

void KubeWatcher::Run(Kind& k) {
  k.backoff = options_.backoff_initial;
  std::string rv;
  bool need_list = true;
  bool first = true;
  std::string relist_reason;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (need_list) {
      if (!first) {
        Count(counters_.relists, k, relist_reason);
        std::lock_guard lock(mu_);
        ++k.status.relists;
      }
      if (!List(k, &rv)) {
        KindState st;
        {
          std::lock_guard lock(mu_);
          st = k.status.state;
        }
        const bool slow = st == KindState::kForbidden || st == KindState::kNotServed;
        Sleep(slow ? options_.forbidden_retry : k.backoff);
        if (!slow) k.backoff = std::min(k.backoff * 2, options_.backoff_max);
        first = false;
        relist_reason = "error";
        continue;
      }
      first = false;
      need_list = false;
      k.backoff = options_.backoff_initial;
    }
    if (Watch(k, &rv)) {
      need_list = true;
      relist_reason = "gone";
    }
  }
}

}  // namespace ambit::waypoint::kube
