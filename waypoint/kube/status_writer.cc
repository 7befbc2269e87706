#include "waypoint/kube/status_writer.h"

#include <fmt/format.h>

#include "common/base/log.h"
#include "waypoint/kube/watch_decoder.h"

namespace ambit::waypoint::kube {

StatusWriter::StatusWriter(ApiServerOptions api, metrics::CounterFamily* writes, size_t shard)
    : client_(std::move(api)), writes_(writes), shard_(shard) {}

StatusWriter::~StatusWriter() { Stop(); }

void StatusWriter::Start() {
  thread_ = std::thread([this] {
    BlockSigpipeOnThisThread();
    Run();
  });
}

void StatusWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  client_.Interrupt();
  if (thread_.joinable()) thread_.join();
}

void StatusWriter::Submit(const std::string& kind, const std::string& path, std::string patch) {
  {
    std::lock_guard lock(mu_);
    auto w = written_.find(path);
    if (w != written_.end() && w->second == patch) {
      pending_.erase(path);
      return;
    }
    auto p = pending_.find(path);
    if (p != pending_.end() && p->second.patch == patch) return;
    pending_[path] = Pending{kind, std::move(patch)};
  }
  cv_.notify_all();
}

StatusWriter::Stats StatusWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void StatusWriter::Run() {
  std::chrono::milliseconds backoff{200};
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (stop_) return;
    auto it = pending_.begin();
    const std::string path = it->first;
    Pending p = it->second;
    lock.unlock();
    StatusOr<ApiResponse> r = client_.Request("PATCH", path + "/status",
                                              "application/merge-patch+json", p.patch, nullptr,
                                              1 << 20);
    std::string error;
    std::string result = "ok";
    if (!r.ok()) {
      error = std::string(r.status().message());
      result = "error";
    } else if (r->status < 200 || r->status >= 300) {
      WatchEvent st = DecodeStatus(r->body);
      error = fmt::format("HTTP {}: {}", r->status, st.message);
      result = r->status == 403 ? "forbidden" : r->status == 404 ? "not_found" : "error";
    }
    if (writes_ != nullptr) writes_->Get(shard_, {p.kind, result})->Inc();
    lock.lock();
    if (error.empty()) {
      ++stats_.ok;
      written_[path] = p.patch;
      auto cur = pending_.find(path);
      if (cur != pending_.end() && cur->second.patch == p.patch) pending_.erase(cur);
      backoff = std::chrono::milliseconds(200);
      continue;
    }
    ++stats_.failed;
    const bool log = stats_.last_error != error;
    stats_.last_error = error;
    if (result == "not_found") pending_.erase(path);  // the object is gone
    if (log) AMBIT_LOG(kWarn, "kube", "status write {} failed: {}", path, error);
    cv_.wait_for(lock, backoff, [this] { return stop_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
  }
}

}  // namespace ambit::waypoint::kube
