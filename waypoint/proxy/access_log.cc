#include "waypoint/proxy/access_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>

#include "common/base/log.h"

namespace ambit::waypoint {

namespace {
constexpr auto kFlushInterval = std::chrono::milliseconds(20);
constexpr size_t kFlushBytes = 64 * 1024;
}  // namespace

namespace {

using route::LogOp;
using route::LogSegment;

// One operator's value: unset (text "-", JSON null), a number, or a string.
struct OpValue {
  enum Kind : uint8_t { kUnset, kNumber, kString } kind = kUnset;
  std::string text;
};

OpValue Str(std::string_view s) {
  if (s.empty()) return {};
  return {OpValue::kString, std::string(s)};
}
OpValue Num(uint64_t v) { return {OpValue::kNumber, std::to_string(v)}; }

std::optional<std::string_view> Captured(const RequestInfo& info, std::string_view name) {
  for (const auto& [k, v] : info.log_headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> RequestHeader(const RequestInfo& info, std::string_view name) {
  auto opt = [](const std::string& s) -> std::optional<std::string_view> {
    if (s.empty()) return std::nullopt;
    return std::string_view(s);
  };
  if (name == ":method") return opt(info.method);
  if (name == ":path") return opt(info.path);
  if (name == ":authority" || name == "host") return opt(info.authority);
  if (name == ":scheme") return std::string_view("http");
  if (name == "user-agent") return opt(info.user_agent);
  if (name == "x-request-id" && !info.request_id.empty()) return std::string_view(info.request_id);
  return Captured(info, name);
}

std::string Addr(const net::SocketAddress& a) {
  return a.port() == 0 ? std::string() : a.ToString();
}

OpValue Evaluate(const LogSegment& s, const RequestInfo& info, base::MonoTime now,
                 int64_t start_unix_ms) {
  switch (s.op) {
    case LogOp::kLiteral: return Str(s.text);
    case LogOp::kStartTime: return Str(FormatStartTime(start_unix_ms, s.text));
    case LogOp::kReq: case LogOp::kReqWithoutQuery: {
      auto v = RequestHeader(info, s.text);
      if (!v && !s.alt.empty()) v = RequestHeader(info, s.alt);
      if (!v) return {};
      std::string_view out = *v;
      if (s.op == LogOp::kReqWithoutQuery) out = out.substr(0, out.find('?'));
      return Str(out);
    }
    case LogOp::kResp: return {};  // response headers are not kept (README)
    case LogOp::kResponseCode: return Num(static_cast<uint64_t>(std::max(info.response_code, 0)));
    case LogOp::kResponseFlags:
      return Str(info.response_flags.empty() ? std::string_view("-") : info.response_flags);
    case LogOp::kResponseCodeDetails: {
      if (info.details.empty()) {
        return info.response_code > 0 && !info.upstream_host.empty() ? Str("via_upstream")
                                                                      : OpValue{};
      }
      std::string d = info.details;  // Envoy's details have no spaces
      for (char& c : d) {
        if (c == ' ' || c == '\t') c = '_';
      }
      return Str(d);
    }
    case LogOp::kConnectionTerminationDetails: return {};
    case LogOp::kUpstreamTransportFailureReason: return {};
    case LogOp::kBytesReceived: return Num(info.bytes_received);
    case LogOp::kBytesSent: return Num(info.bytes_sent);
    case LogOp::kDuration:
      return Num(static_cast<uint64_t>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(now - info.start).count())));
    case LogOp::kProtocol: return Str(info.protocol);
    case LogOp::kUpstreamHost: return Str(info.upstream_host);
    case LogOp::kUpstreamCluster: return Str(RequestCluster(info));
    case LogOp::kUpstreamLocalAddress: return {};
    case LogOp::kDownstreamLocalAddress: return Str(Addr(info.downstream_local));
    case LogOp::kDownstreamLocalAddressWithoutPort:
      return info.downstream_local.port() == 0 ? OpValue{}
                                               : Str(info.downstream_local.ip().ToString());
    case LogOp::kDownstreamLocalPort:
      return info.downstream_local.port() == 0 ? OpValue{} : Num(info.downstream_local.port());
    case LogOp::kDownstreamRemoteAddress: return Str(Addr(info.downstream_remote));
    case LogOp::kDownstreamRemoteAddressWithoutPort:
      return info.downstream_remote.port() == 0 ? OpValue{}
                                                : Str(info.downstream_remote.ip().ToString());
    case LogOp::kDownstreamPeerUriSan: return Str(info.source_principal);
    case LogOp::kRequestedServerName: return {};
    case LogOp::kRouteName: return Str(info.route_name);
    case LogOp::kUpstreamRequestAttemptCount:
      return info.attempts > 0 ? Num(info.attempts) : OpValue{};
    case LogOp::kGrpcStatus: return Str(info.grpc_status);
    case LogOp::kHostname: {
      static const std::string host = [] {
        char buf[256] = {};
        return gethostname(buf, sizeof(buf) - 1) == 0 ? std::string(buf) : std::string();
      }();
      return Str(host);
    }
    case LogOp::kUnknown: return {};
  }
  return {};
}

void Truncate(OpValue& v, size_t max_len) {
  if (max_len > 0 && v.kind == OpValue::kString && v.text.size() > max_len) v.text.resize(max_len);
}

void AppendText(std::string& out, const route::LogFormat& f, const RequestInfo& info,
                base::MonoTime now, int64_t start_ms) {
  for (const LogSegment& s : f.segments) {
    if (s.op == LogOp::kLiteral) {
      out += s.text;
      continue;
    }
    OpValue v = Evaluate(s, info, now, start_ms);
    Truncate(v, s.max_len);
    out += v.kind == OpValue::kUnset ? std::string_view("-") : std::string_view(v.text);
  }
}

}  // namespace

std::string FormatStartTime(int64_t unix_ms, std::string_view fmt_in) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  const int ms = static_cast<int>(unix_ms % 1000);
  if (fmt_in.empty() && unix_ms >= 0 && secs < 253402300800) {  // years 1970..9999
    // The default form on every line: "YYYY-MM-DDTHH:MM:SS." is formatted
    // once per second per thread; only the milliseconds change.
    thread_local std::time_t cached = -1;
    thread_local char prefix[24];
    if (secs != cached) {
      std::tm tm{};
      gmtime_r(&secs, &tm);
      fmt::format_to_n(prefix, sizeof(prefix), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec);
      cached = secs;
    }
    std::string out(prefix, 20);
    out.push_back(static_cast<char>('0' + ms / 100));
    out.push_back(static_cast<char>('0' + ms / 10 % 10));
    out.push_back(static_cast<char>('0' + ms % 10));
    out.push_back('Z');
    return out;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  if (fmt_in.empty()) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, std::abs(ms));
  }
  // Envoy's extensions first (%s, %3f/%6f/%9f), then strftime.
  std::string f;
  for (size_t i = 0; i < fmt_in.size(); ++i) {
    if (fmt_in[i] == '%' && i + 1 < fmt_in.size() && fmt_in[i + 1] == 's') {
      f += std::to_string(secs);
      ++i;
    } else if (fmt_in[i] == '%' && i + 2 < fmt_in.size() && fmt_in[i + 2] == 'f' &&
               fmt_in[i + 1] >= '1' && fmt_in[i + 1] <= '9') {
      const int digits = fmt_in[i + 1] - '0';
      std::string frac = fmt::format("{:03}000000", ms);
      f += frac.substr(0, static_cast<size_t>(digits));
      i += 2;
    } else {
      f.push_back(fmt_in[i]);
    }
  }
  char buf[256];
  const size_t n = std::strftime(buf, sizeof(buf), f.c_str(), &tm);
  return std::string(buf, n);
}

std::string RenderAccessLog(const route::AccessLogFormat& format, const RequestInfo& info,
                            base::MonoTime now, int64_t start_ms) {
  std::string out;
  out.reserve(512);
  if (!format.json) {
    AppendText(out, format.text, info, now, start_ms);
    if (out.empty() || out.back() != '\n') out.push_back('\n');
    return out;
  }
  out.push_back('{');
  bool first = true;
  auto key = [&](std::string_view k) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, k);
    out.push_back(':');
  };
  for (const auto& [k, f] : format.labels) {
    key(k);
    if (f.SingleOperator()) {
      OpValue v = Evaluate(f.segments[0], info, now, start_ms);
      Truncate(v, f.segments[0].max_len);
      if (v.kind == OpValue::kUnset) out += "null";
      else if (v.kind == OpValue::kNumber) out += v.text;
      else AppendJsonString(out, v.text);
    } else {
      std::string text;
      AppendText(text, f, info, now, start_ms);
      AppendJsonString(out, text);
    }
  }
  for (const auto& [k, raw] : format.raw_labels) {
    key(k);
    out += raw;
  }
  out += "}\n";
  return out;
}

route::cel::Value RequestAttributes::Get(route::cel::Attr attr, std::string_view key) const {
  using route::cel::Attr;
  using route::cel::Value;
  const RequestInfo& i = info_;
  auto s = [](std::string_view v) { return Value{std::string(v)}; };
  auto n = [](int64_t v) { return Value{v}; };
  switch (attr) {
    case Attr::kResponseCode: return n(i.response_code);
    case Attr::kResponseFlags: return s(i.response_flags.empty() ? "-" : i.response_flags);
    case Attr::kResponseGrpcStatus: return s(i.grpc_status);
    case Attr::kResponseSize: return n(static_cast<int64_t>(i.bytes_sent));
    case Attr::kResponseCodeDetails: return s(i.details);
    case Attr::kRequestMethod: return s(i.method);
    case Attr::kRequestPath: return s(i.path);
    case Attr::kRequestUrlPath: return s(std::string_view(i.path).substr(0, i.path.find('?')));
    case Attr::kRequestHost: return s(i.authority);
    case Attr::kRequestScheme: return s("http");
    case Attr::kRequestProtocol: return s(i.protocol);
    case Attr::kRequestId: return s(i.request_id);
    case Attr::kRequestUserAgent: return s(i.user_agent);
    case Attr::kRequestSize: return n(static_cast<int64_t>(i.bytes_received));
    case Attr::kRequestHeader: {
      auto v = RequestHeader(i, key);
      if (!v) return Value{route::cel::Error{}};  // CEL: no such key
      return s(*v);
    }
    case Attr::kConnectionMtls: return Value{i.mutual_tls};
    case Attr::kConnectionSni: return s("");
    case Attr::kSourceAddress: return s(i.downstream_remote.ip().ToString());
    case Attr::kSourcePort: return n(i.downstream_remote.port());
    case Attr::kSourcePrincipal: return s(i.source_principal);
    case Attr::kSourceNamespace: return s(i.source != nullptr ? i.source->ns : "");
    case Attr::kSourceWorkload: return s(i.source != nullptr ? i.source->name : "");
    case Attr::kDestinationAddress: return s(i.downstream_local.ip().ToString());
    case Attr::kDestinationPort: return n(i.downstream_local.port());
    case Attr::kDestinationService: return s(i.service != nullptr ? i.service->hostname : "");
    case Attr::kDestinationNamespace: return s(i.service != nullptr ? i.service->ns : "");
    case Attr::kUpstreamAddress:
      return s(std::string_view(i.upstream_host).substr(0, i.upstream_host.rfind(':')));
    case Attr::kUpstreamPort: {
      const size_t c = i.upstream_host.rfind(':');
      if (c == std::string::npos) return Value{route::cel::Error{}};
      return n(std::strtol(i.upstream_host.c_str() + c + 1, nullptr, 10));
    }
    case Attr::kRouteName: return s(i.route_name);
    case Attr::kClusterName: return s(RequestCluster(i));
  }
  return Value{route::cel::Error{}};
}

AccessLogFiles::~AccessLogFiles() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const auto& f : files_) {
    if (f->fd > 2) close(f->fd);
  }
}

void AccessLogFiles::Write(std::string_view path, std::string_view line) {
  bool was_empty = false, full = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_ + line.size() > max_queued_ || stop_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    was_empty = queued_ == 0;
    File* file = nullptr;
    for (const auto& f : files_) {
      if (f->path == path) file = f.get();
    }
    if (file == nullptr) {
      files_.push_back(std::make_unique<File>());
      file = files_.back().get();
      file->path = std::string(path);
    }
    file->pending.append(line);
    ++file->pending_lines;
    queued_ += line.size();
    full = queued_ >= kFlushBytes && queued_ - line.size() < kFlushBytes;
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  // Wake the writer only to start a batch or when one is full, never once
  // per line (a futex wake and a context switch per request otherwise).
  if (was_empty || full) cv_.notify_one();
}

void AccessLogFiles::Flush(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  flush_now_ = true;
  cv_.notify_one();
  drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [this] { return queued_ == 0 && !writing_; });
}

void AccessLogFiles::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || queued_ > 0; });
    if (queued_ == 0 && stop_) break;
    // Let the lines of a burst gather: one write per interval (Envoy's file
    // flush interval is 1 s; ours is short so that tails stay current).
    cv_.wait_for(lock, kFlushInterval,
                 [this] { return stop_ || flush_now_ || queued_ >= kFlushBytes; });
    flush_now_ = false;
    // Take every file's batch, write it without the lock.
    std::vector<std::pair<File*, std::string>> batch;
    std::vector<uint64_t> lines;
    for (const auto& f : files_) {
      if (f->pending.empty()) continue;
      batch.emplace_back(f.get(), std::string());
      batch.back().second.swap(f->pending);
      lines.push_back(f->pending_lines);
      f->pending_lines = 0;
    }
    queued_ = 0;
    writing_ = true;
    lock.unlock();
    for (size_t k = 0; k < batch.size(); ++k) {
      File* f = batch[k].first;  // fd and failed are only touched by this thread
      if (f->fd < 0 && !f->failed) {
        if (f->path == "/dev/stdout") f->fd = 1;
        else if (f->path == "/dev/stderr") f->fd = 2;
        else f->fd = open(f->path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (f->fd < 0) {
          f->failed = true;
          AMBIT_LOG(kError, "access", "access log {}: cannot open: {}; its lines are dropped",
                    f->path, std::strerror(errno));
        }
      }
      const std::string& data = batch[k].second;
      size_t off = 0;
      while (!f->failed && off < data.size()) {
        const ssize_t n = ::write(f->fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      if (!f->failed && off == data.size()) written_.fetch_add(lines[k], std::memory_order_relaxed);
      else dropped_.fetch_add(lines[k], std::memory_order_relaxed);
    }
    lock.lock();
    writing_ = false;
    if (queued_ == 0) drained_.notify_all();
  }
  writing_ = false;
  drained_.notify_all();
}

}  // namespace ambit::waypoint
