#include "waypoint/app/span_exporter.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include "common/base/log.h"
#include "common/net/address.h"
#include "waypoint/app/span_json.h"

namespace ambit::waypoint {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd until `deadline`; false on timeout or error.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Status PostJson(const std::string& address, const std::string& path, const std::string& body,
                std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(net::SocketAddress addr, net::SocketAddress::Parse(address));
  const auto deadline = Clock::now() + timeout;
  sockaddr_storage ss{};
  const socklen_t len = addr.ToSockaddr(&ss);
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(fmt::format("socket: {}", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    return absl::UnavailableError(fmt::format("connect {}: {}", address, std::strerror(errno)));
  }
  if (!WaitFd(fd, POLLOUT, deadline)) {
    return absl::DeadlineExceededError(fmt::format("connect {}: timed out", address));
  }
  int err = 0;
  socklen_t elen = sizeof(err);
  (void)::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) {
    return absl::UnavailableError(fmt::format("connect {}: {}", address, std::strerror(err)));
  }
  const std::string req = fmt::format(
      "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n"
      "connection: close\r\nuser-agent: ambit-waypoint\r\n\r\n{}",
      path, address, body.size(), body);
  size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFd(fd, POLLOUT, deadline)) return absl::DeadlineExceededError("write timed out");
    } else {
      return absl::UnavailableError(fmt::format("write: {}", std::strerror(errno)));
    }
  }
  // The status line is all we need ("HTTP/1.1 200 ...").
  std::string resp;
  char buf[512];
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    if (!WaitFd(fd, POLLIN, deadline)) return absl::DeadlineExceededError("response timed out");
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError(fmt::format("read: {}", std::strerror(errno)));
    }
    resp.append(buf, static_cast<size_t>(n));
  }
  if (resp.size() < 12 || !resp.starts_with("HTTP/1.") || resp[9] != '2') {
    return absl::UnavailableError(
        fmt::format("collector answered '{}'", resp.substr(0, resp.find("\r\n"))));
  }
  return absl::OkStatus();
}

SpanExporter::SpanExporter(metrics::Registry& registry, size_t shard, SpanExporterOptions options)
    : options_(options) {
  exported_ = registry
                  .AddCounter("ambit_waypoint_spans_exported",
                              "Spans the collector accepted (2xx to the POST)")
                  .Get(shard, {});
  auto& dropped = registry.AddCounter(
      "ambit_waypoint_spans_dropped",
      "Spans not exported, by reason: queue_full (the exporter fell behind), export_failed (the "
      "collector could not be reached or refused the batch), no_collector (the provider's "
      "service did not resolve to an address)",
      {"reason"});
  dropped_queue_full_ = dropped.Get(shard, {"queue_full"});
  dropped_export_failed_ = dropped.Get(shard, {"export_failed"});
  dropped_no_collector_ = dropped.Get(shard, {"no_collector"});
  thread_ = std::thread([this] { Run(); });
}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void SpanExporter::Submit(std::vector<SpanRecord> spans) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() + spans.size() > options_.max_queued) {
      dropped_queue_full_->Inc(spans.size());
      return;
    }
    for (auto& s : spans) queue_.push_back(std::move(s));
    wake = queue_.size() >= options_.max_batch;
  }
  if (wake) cv_.notify_one();
}

void SpanExporter::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.flush_interval,
                 [this] { return stop_ || queue_.size() >= options_.max_batch; });
    if (stop_) break;
    while (!queue_.empty()) {
      std::vector<SpanRecord> batch;
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      Export(batch);
      lock.lock();
      if (stop_) break;
    }
  }
}

void SpanExporter::Export(std::vector<SpanRecord>& batch) {
  // One POST per collector (spans of one batch may name different providers
  // across a config change).
  std::map<const route::TracingProvider*, std::vector<SpanRecord>> by_provider;
  for (auto& s : batch) by_provider[s.provider.get()].push_back(std::move(s));
  for (auto& [p, spans] : by_provider) {
    if (p == nullptr || p->address.empty()) {
      dropped_no_collector_->Inc(spans.size());
      continue;
    }
    const bool zipkin = p->kind == route::TracingProvider::Kind::kZipkin;
    const std::string body = zipkin ? EncodeZipkinJson(spans) : EncodeOtlpJson(spans);
    Status st = PostJson(p->address, p->path, body, options_.timeout);
    if (st.ok()) {
      exported_->Inc(spans.size());
      if (failing_) {
        AMBIT_LOG(kInfo, "tracing", "span export to {} ({}) works again", p->name, p->address);
      }
      failing_ = false;
    } else {
      dropped_export_failed_->Inc(spans.size());
      // Once per failure streak at WARN (the counter has the rest).
      if (!failing_) {
        AMBIT_LOG(kWarn, "tracing", "span export to {} ({}) failed, {} span(s) dropped: {}",
                  p->name, p->address, spans.size(), st.ToString());
      } else {
        AMBIT_LOG(kDebug, "tracing", "span export to {} ({}) failed, {} span(s) dropped: {}",
                  p->name, p->address, spans.size(), st.ToString());
      }
      failing_ = true;
    }
  }
}

}  // namespace ambit::waypoint
