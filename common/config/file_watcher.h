// Watches a local config file and re-parses it when it changes. inotify on
// the parent directory (catches editors' rename-into-place and ConfigMap
// symlink swaps) with a stat poll as fallback. The last good config stays in
// force when a new version fails to parse; the callback is told either way.
//
// Thread: runs its own small thread; the callback runs on it, so hand the
// result to the control loop (e.g. post) rather than doing work inline.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/base/status.h"
#include "common/config/local_config.h"

namespace ambit::config {

class FileWatcher {
 public:
  using Callback = std::function<void(const StatusOr<std::shared_ptr<const LocalConfig>>&)>;

  struct Options {
    std::chrono::milliseconds poll_interval{250};
  };

  FileWatcher(std::string path, Callback cb, Options opts);
  FileWatcher(std::string path, Callback cb) : FileWatcher(std::move(path), std::move(cb), {}) {}
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Loads the file once (calling the callback) and starts watching. Returns
  // the initial load result; watching continues even if it failed.
  Status Start();
  void Stop();

  // Re-reads the file if its content changed since the last attempt. Called
  // by the watch thread; public so a loop-driven owner (or a test) can use it
  // without Start().
  void CheckNow();

  std::shared_ptr<const LocalConfig> last_good() const;
  uint64_t reloads_ok() const { return ok_.load(); }
  uint64_t reloads_failed() const { return failed_.load(); }

 private:
  Status LoadAndNotify(const std::string& content);
  // True if the inotify events in buf name the config file (or may concern it).
  bool EventsNameFile(const char* buf, size_t len) const;
  void Run();

  const std::string path_;
  const Callback cb_;
  const Options opts_;
  mutable std::mutex mu_;
  std::shared_ptr<const LocalConfig> last_good_;
  std::string last_content_;
  bool attempted_ = false;
  std::atomic<uint64_t> ok_{0}, failed_{0};
  int inotify_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace ambit::config
