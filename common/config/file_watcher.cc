#include "common/config/file_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>

#include "common/base/log.h"
#include "common/config/loader.h"

namespace ambit::config {

FileWatcher::FileWatcher(std::string path, Callback cb, Options opts)
    : path_(std::move(path)), cb_(std::move(cb)), opts_(opts) {}

FileWatcher::~FileWatcher() { Stop(); }

Status FileWatcher::Start() {
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return absl::InternalError("config watcher: eventfd failed");
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir.push_back('.');
  // No IN_MODIFY: every write(2) to any file of the directory raises it (a
  // log written beside the config woke this thread ~1,000 times a second);
  // an edit of the config ends with IN_CLOSE_WRITE, a swap with IN_MOVED_TO
  // or IN_CREATE, and the poll interval catches a writer that never closes.
  if (inotify_fd_ >= 0 &&
      inotify_add_watch(inotify_fd_, dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
    AMBIT_LOG(kWarn, "config", "inotify on {} failed; polling every {} ms", dir,
              opts_.poll_interval.count());
    close(inotify_fd_);
    inotify_fd_ = -1;
  }
  StatusOr<std::string> content = ReadConfigFile(path_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempted_ = true;
    last_content_ = content.ok() ? *content : std::string();
  }
  Status initial;
  if (content.ok()) {
    initial = LoadAndNotify(*content);
  } else {
    failed_.fetch_add(1);
    initial = content.status();
    cb_(initial);
  }
  thread_ = std::thread([this] { Run(); });
  return initial;
}

void FileWatcher::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

bool FileWatcher::EventsNameFile(const char* buf, size_t len) const {
  const std::string base = std::filesystem::path(path_).filename().string();
  for (size_t off = 0; off + sizeof(inotify_event) <= len;) {
    const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
    std::string_view name = ev->len > 0 ? std::string_view(ev->name) : std::string_view();
    // Our file, the directory itself (overflow, unnamed), or Kubernetes'
    // atomic ConfigMap swap of the "..data" symlink.
    if (name.empty() || name == base || name.starts_with("..") || (ev->mask & IN_Q_OVERFLOW)) {
      return true;
    }
    off += sizeof(inotify_event) + ev->len;
  }
  return false;
}

void FileWatcher::Run() {
  alignas(inotify_event) char buf[4096];
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int n = poll(fds, inotify_fd_ >= 0 ? 2 : 1, static_cast<int>(opts_.poll_interval.count()));
    if (n > 0 && (fds[0].revents & POLLIN)) return;
    bool relevant = n == 0;  // timeout: poll the file anyway
    if (n > 0 && inotify_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      ssize_t len;
      while ((len = read(inotify_fd_, buf, sizeof(buf))) > 0) {
        relevant = relevant || EventsNameFile(buf, static_cast<size_t>(len));
      }
    }
    // Events for other files of the directory (e.g. a log written beside the
    // config) are ignored; for ours the content comparison decides.
    if (relevant) CheckNow();
  }
}

void FileWatcher::CheckNow() {
  StatusOr<std::string> content = ReadConfigFile(path_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string now = content.ok() ? *content : std::string();
    if (attempted_ && now == last_content_) return;
    attempted_ = true;
    last_content_ = std::move(now);
  }
  if (!content.ok()) {
    failed_.fetch_add(1);
    AMBIT_LOG(kWarn, "config", "reload failed, keeping last good config: {}",
              content.status().ToString());
    cb_(content.status());
    return;
  }
  (void)LoadAndNotify(*content);
}

Status FileWatcher::LoadAndNotify(const std::string& content) {
  StatusOr<LocalConfig> parsed = ParseLocalConfig(content, path_);
  if (!parsed.ok()) {
    failed_.fetch_add(1);
    AMBIT_LOG(kWarn, "config", "reload failed, keeping last good config: {}",
              parsed.status().ToString());
    cb_(parsed.status());
    return parsed.status();
  }
  auto cfg = std::make_shared<const LocalConfig>(std::move(*parsed));
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_good_ = cfg;
  }
  ok_.fetch_add(1);
  AMBIT_LOG(kInfo, "config", "loaded {}: {} workloads, {} services, {} policies, {} resources",
            path_, cfg->workloads.size(), cfg->services.size(), cfg->policies.size(),
            cfg->resources.size());
  cb_(cfg);
  return absl::OkStatus();
}

std::shared_ptr<const LocalConfig> FileWatcher::last_good() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_good_;
}

}  // namespace ambit::config
