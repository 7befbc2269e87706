// A ZdsHandler that records every call (thread-safe) and can be told to fail.
#pragma once

#include <dirent.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/capture/zds_session.h"

namespace ambit::testing {

class RecordingHandler : public agent::capture::ZdsHandler {
 public:
  struct Added {
    std::string uid, name, ns, sa;
    net::NetnsHandle::Id netns;
  };

  Status OnPodAdded(const agent::capture::PodAdded& pod) override {
    std::lock_guard lock(mu_);
    threads_.push_back(std::this_thread::get_id());
    if (!fail_add_.empty()) return absl::UnavailableError(fail_add_);
    added_.push_back({pod.uid, pod.name, pod.namespace_, pod.service_account, pod.netns.id()});
    return absl::OkStatus();
  }
  Status OnPodRemoved(const agent::capture::PodRemoved& pod) override {
    std::lock_guard lock(mu_);
    threads_.push_back(std::this_thread::get_id());
    removed_.push_back(pod.uid);
    return absl::OkStatus();
  }
  void OnSnapshotDone(const agent::capture::SnapshotDone& done) override {
    std::lock_guard lock(mu_);
    threads_.push_back(std::this_thread::get_id());
    snapshots_.push_back(done.pods);
  }

  void FailAdds(std::string text) {
    std::lock_guard lock(mu_);
    fail_add_ = std::move(text);
  }
  std::vector<Added> added() const {
    std::lock_guard lock(mu_);
    return added_;
  }
  std::vector<std::string> removed() const {
    std::lock_guard lock(mu_);
    return removed_;
  }
  // The thread of every handler call, in order.
  std::vector<std::thread::id> threads() const {
    std::lock_guard lock(mu_);
    return threads_;
  }
  std::vector<size_t> snapshots() const {
    std::lock_guard lock(mu_);
    return snapshots_;
  }

 private:
  mutable std::mutex mu_;
  std::string fail_add_;
  std::vector<Added> added_;
  std::vector<std::string> removed_;
  std::vector<size_t> snapshots_;
  std::vector<std::thread::id> threads_;
};

// Open fds of this process (entries of /proc/self/fd, minus the dir's own).
inline int CountOpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

}  // namespace ambit::testing
