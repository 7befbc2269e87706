#include "agent/capture/zds_session.h"

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/net/cat.h"

namespace ambit::agent::capture {

using net::Cat;

// Locking: only the I/O thread mutates; it reads without the lock and takes
// mu_ for writes. The handler is never called with mu_ held, so a handler may
// post to a loop whose thread reads Pods() meanwhile.

std::string_view ZdsPodStateName(ZdsPodState s) { return s == ZdsPodState::kUp ? "Up" : "Pending"; }

ZdsSession::ZdsSession(ZdsHandler& handler, base::Clock& clock, base::Duration retry_interval)
    : handler_(handler), clock_(clock), retry_interval_(retry_interval) {}

void ZdsSession::OnConnected() {
  std::lock_guard lock(mu_);
  snapshot_uids_.clear();
  snapshot_done_ = false;
}

ZdsReply ZdsSession::Nack(std::string error, bool protocol_error) {
  std::lock_guard lock(mu_);
  ++counters_.nacks;
  if (protocol_error) ++counters_.protocol_errors;
  return {std::move(error), protocol_error};
}

ZdsReply ZdsSession::TransportError(const Status& s) {
  AMBIT_LOG(kWarn, "zds", "ZDS protocol error: {}", std::string(s.message()));
  return Nack(std::string(s.message()), true);
}

ZdsReply ZdsSession::HandleDatagram(std::string_view bytes, std::vector<net::Fd> fds) {
  StatusOr<ZdsRequest> req = DecodeZdsRequest(bytes, fds.size());
  if (!req.ok()) {
    // `fds` are closed when this returns: an invalid message never leaks one.
    AMBIT_LOG(kWarn, "zds", "{} (closing {} fds; reconnecting)",
              std::string(req.status().message()), fds.size());
    return Nack(std::string(req.status().message()), true);
  }
  AMBIT_LOG(kDebug, "zds", "received {} uid={}", ZdsRequestKindName(req->kind), req->uid);
  return Dispatch(*req, std::move(fds));
}

ZdsReply ZdsSession::Dispatch(const ZdsRequest& r, std::vector<net::Fd> fds) {
  switch (r.kind) {
    case ZdsRequestKind::kAdd:
      return OnAdd(r, std::move(fds.at(0)));
    case ZdsRequestKind::kKeep:
      return OnKeep(r);
    case ZdsRequestKind::kDel:
      return OnDel(r);
    case ZdsRequestKind::kSnapshotSent:
      return OnSnapshotSent();
  }
  return Nack("unknown ZDS request", true);
}

Status ZdsSession::TryAdd(const std::string& uid, Pod& pod) {
  PodAdded ev{uid, pod.info.name, pod.info.namespace_, pod.info.service_account, *pod.netns};
  Status s = handler_.OnPodAdded(ev);
  std::lock_guard lock(mu_);
  if (s.ok()) {
    pod.state = ZdsPodState::kUp;
    ++counters_.pods_added;
  } else {
    pod.state = ZdsPodState::kPending;
    pod.next_retry = clock_.Now() + retry_interval_;
    ++counters_.add_failures;
  }
  return s;
}

Status ZdsSession::Remove(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return absl::OkStatus();
  bool was_up = it->second.state == ZdsPodState::kUp;
  {
    std::lock_guard lock(mu_);
    pods_.erase(it);
  }
  if (!was_up) return absl::OkStatus();  // the handler never accepted it
  Status s = handler_.OnPodRemoved(PodRemoved{uid});
  std::lock_guard lock(mu_);
  ++counters_.pods_removed;
  return s;
}

ZdsReply ZdsSession::OnAdd(const ZdsRequest& r, net::Fd fd) {
  if (!snapshot_done_) {
    std::lock_guard lock(mu_);
    snapshot_uids_.insert(r.uid);
  }
  StatusOr<net::NetnsHandle> ns = net::NetnsHandle::FromFd(std::move(fd));
  if (!ns.ok()) {
    std::string err = Cat("AddWorkload for pod ", r.uid, ": ", ns.status().message());
    AMBIT_LOG(kWarn, "zds", "{}", err);
    return Nack(std::move(err), false);
  }
  auto it = pods_.find(r.uid);
  if (it != pods_.end() && it->second.state == ZdsPodState::kUp) {
    if (it->second.netns->SameAs(*ns)) {
      AMBIT_LOG(kDebug, "zds", "pod {} already running in the same netns: no-op", r.uid);
      return {};
    }
    AMBIT_LOG(kInfo, "zds", "pod {} came back with a new netns: replacing its proxy", r.uid);
    Status removed = Remove(r.uid);
    if (!removed.ok()) {
      AMBIT_LOG(kWarn, "zds", "removing old proxy of pod {}: {}", r.uid,
                std::string(removed.message()));
    }
  }
  Pod* pod;
  {
    std::lock_guard lock(mu_);
    pod = &pods_[r.uid];
    pod->state = ZdsPodState::kPending;
    pod->info = r.info;
    pod->netns = std::move(*ns);
  }
  Status s = TryAdd(r.uid, *pod);
  if (!s.ok()) {
    std::string err =
        Cat("adding pod ", r.info.namespace_, "/", r.info.name, " (", r.uid, "): ", s.message(),
            " (retrying every ",
            std::chrono::duration_cast<std::chrono::milliseconds>(retry_interval_).count(), " ms)");
    AMBIT_LOG(kWarn, "zds", "{}", err);
    return Nack(std::move(err), false);
  }
  AMBIT_LOG(kInfo, "zds", "pod {}/{} ({}) is up", r.info.namespace_, r.info.name, r.uid);
  return {};
}

ZdsReply ZdsSession::OnKeep(const ZdsRequest& r) {
  if (snapshot_done_) {
    std::string err = Cat("ZDS protocol error: KeepWorkload for pod ", r.uid,
                          " after SnapshotSent (Keep is only valid in a snapshot)");
    AMBIT_LOG(kWarn, "zds", "{}", err);
    return Nack(std::move(err), true);
  }
  std::lock_guard lock(mu_);
  snapshot_uids_.insert(r.uid);
  return {};
}

ZdsReply ZdsSession::OnDel(const ZdsRequest& r) {
  if (!snapshot_done_) {
    std::lock_guard lock(mu_);
    snapshot_uids_.erase(r.uid);
  }
  if (pods_.find(r.uid) == pods_.end()) {
    AMBIT_LOG(kDebug, "zds", "DelWorkload for unknown pod {}: nothing to do", r.uid);
    return {};
  }
  Status s = Remove(r.uid);
  if (!s.ok()) {
    std::string err = Cat("removing pod ", r.uid, ": ", s.message());
    AMBIT_LOG(kWarn, "zds", "{}", err);
    return Nack(std::move(err), false);
  }
  AMBIT_LOG(kInfo, "zds", "pod {} removed", r.uid);
  return {};
}

ZdsReply ZdsSession::OnSnapshotSent() {
  if (snapshot_done_) {
    std::string err = "ZDS protocol error: second SnapshotSent on one connection";
    AMBIT_LOG(kWarn, "zds", "{}", err);
    return Nack(std::move(err), true);
  }
  std::vector<std::string> stale;
  for (const auto& [uid, pod] : pods_) {
    if (!snapshot_uids_.contains(uid)) stale.push_back(uid);
  }
  for (const auto& uid : stale) {
    AMBIT_LOG(kInfo, "zds", "pod {} not in the node agent's snapshot: tearing it down", uid);
    Status s = Remove(uid);
    if (!s.ok()) {
      AMBIT_LOG(kWarn, "zds", "removing pod {}: {}", uid, std::string(s.message()));
    }
  }
  size_t known;
  {
    std::lock_guard lock(mu_);
    snapshot_done_ = true;
    ever_snapshot_ = true;
    snapshot_uids_.clear();
    known = pods_.size();
  }
  AMBIT_LOG(kInfo, "zds", "ZDS snapshot received: {} pods ({} torn down)", known, stale.size());
  handler_.OnSnapshotDone(SnapshotDone{known});
  return {};
}

std::optional<base::MonoTime> ZdsSession::RetryDue() {
  std::optional<base::MonoTime> next;
  for (auto& [uid, pod] : pods_) {
    if (pod.state != ZdsPodState::kPending) continue;
    if (pod.next_retry <= clock_.Now()) {
      Status s = TryAdd(uid, pod);
      if (s.ok()) {
        AMBIT_LOG(kInfo, "zds", "pod {} is up after a retry", uid);
        continue;
      }
      AMBIT_LOG(kWarn, "zds", "retrying pod {} failed: {}", uid, std::string(s.message()));
    }
    if (!next || pod.next_retry < *next) next = pod.next_retry;
  }
  return next;
}

bool ZdsSession::snapshot_done() const {
  std::lock_guard lock(mu_);
  return snapshot_done_;
}

bool ZdsSession::ready() const {
  std::lock_guard lock(mu_);
  if (!ever_snapshot_) return false;
  for (const auto& [uid, pod] : pods_) {
    if (pod.state == ZdsPodState::kPending) return false;
  }
  return true;
}

ZdsCounters ZdsSession::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::vector<ZdsPodEntry> ZdsSession::Pods() const {
  std::lock_guard lock(mu_);
  std::vector<ZdsPodEntry> out;
  for (const auto& [uid, pod] : pods_) {
    out.push_back({uid, pod.state, pod.info, pod.netns ? pod.netns->id() : net::NetnsHandle::Id{}});
  }
  return out;
}

std::string ZdsSession::WorkloadStateJson() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const ZdsPodEntry& p : Pods()) {
    out[p.uid] = {{"state", std::string(ZdsPodStateName(p.state))},
                  {"info",
                   {{"name", p.info.name},
                    {"namespace", p.info.namespace_},
                    {"serviceAccount", p.info.service_account}}}};
  }
  return out.dump();
}

}  // namespace ambit::agent::capture
