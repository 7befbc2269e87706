// FileWatcher: picks up rewrites, keeps the last good config on a bad write.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "common/config/file_watcher.h"

using namespace ambit::config;
using namespace std::chrono_literals;

namespace {

struct Events {
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, failed = 0;
  std::string last_error;

  void On(const ambit::StatusOr<std::shared_ptr<const LocalConfig>>& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.ok()) {
      ++ok;
    } else {
      ++failed;
      last_error = std::string(r.status().message());
    }
    cv.notify_all();
  }
  bool WaitFor(int want_ok, int want_failed, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return ok >= want_ok && failed >= want_failed; });
  }
};

void WriteFile(const std::string& path, const std::string& text) {
  // Write-then-rename, the way editors and ConfigMap updates replace files.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

std::string Workload(const std::string& name) {
  return "workloads:\n- name: " + name + "\n  namespace: ns\n  workloadIps: [\"10.0.0.1\"]\n";
}

}  // namespace

TEST_CASE("watcher reloads within 1s and keeps the last good config") {
  char dir_tmpl[] = "/tmp/ambit-config-test-XXXXXX";
  REQUIRE(mkdtemp(dir_tmpl) != nullptr);
  std::string dir = dir_tmpl;
  std::string path = dir + "/config.yaml";
  WriteFile(path, Workload("first"));

  Events ev;
  FileWatcher watcher(path, [&](const auto& r) { ev.On(r); }, {.poll_interval = 2000ms});
  REQUIRE(watcher.Start().ok());
  REQUIRE(ev.WaitFor(1, 0, 100ms));
  CHECK(watcher.last_good()->workloads.at(0).name == "first");

  // The poll interval is 2 s, so seeing this within 1 s proves inotify works.
  WriteFile(path, Workload("second"));
  REQUIRE(ev.WaitFor(2, 0, 1000ms));
  CHECK(watcher.last_good()->workloads.at(0).name == "second");

  WriteFile(path, "workloads:\n- name: x\n  namespace: ns\n  workloadIps: [\"bad\"]\n");
  REQUIRE(ev.WaitFor(2, 1, 1000ms));
  CHECK(ev.last_error == path + ":4: workloads[0].workloadIps[0]: 'bad' is not an IP address");
  CHECK(watcher.last_good()->workloads.at(0).name == "second");
  CHECK(watcher.reloads_ok() == 2);
  CHECK(watcher.reloads_failed() == 1);

  WriteFile(path, Workload("third"));
  REQUIRE(ev.WaitFor(3, 1, 1000ms));
  CHECK(watcher.last_good()->workloads.at(0).name == "third");
  watcher.Stop();
  std::filesystem::remove_all(dir);
}

TEST_CASE("CheckNow without Start detects content changes only") {
  char dir_tmpl[] = "/tmp/ambit-config-test-XXXXXX";
  REQUIRE(mkdtemp(dir_tmpl) != nullptr);
  std::string path = std::string(dir_tmpl) + "/c.yaml";
  WriteFile(path, Workload("a"));
  Events ev;
  FileWatcher watcher(path, [&](const auto& r) { ev.On(r); });
  watcher.CheckNow();
  watcher.CheckNow();  // unchanged: no second callback
  CHECK(ev.ok == 1);
  WriteFile(path, Workload("b"));
  watcher.CheckNow();
  CHECK(ev.ok == 2);
  CHECK(watcher.last_good()->workloads.at(0).name == "b");
  std::filesystem::remove_all(dir_tmpl);
}
