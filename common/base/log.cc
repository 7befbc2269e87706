#include "common/base/log.h"

#include "common/base/json.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <time.h>
#include <thread>

namespace ambit::base {

namespace {

// RFC 3339 UTC with microseconds. The "YYYY-MM-DDTHH:MM:SS." prefix is
// formatted once per second per thread; only the microseconds change.
void AppendTimestamp(std::string& out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  thread_local time_t cached_sec = -1;
  thread_local char prefix[32];
  thread_local size_t prefix_len = 0;
  if (ts.tv_sec != cached_sec) {
    std::tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    auto r = fmt::format_to_n(prefix, sizeof(prefix) - 1, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
    prefix_len = r.size;
    cached_sec = ts.tv_sec;
  }
  out.append(prefix, prefix_len);
  char micros[7];
  unsigned v = static_cast<unsigned>(ts.tv_nsec / 1000);
  for (int i = 5; i >= 0; --i) {
    micros[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(micros, 6);
  out.push_back('Z');
}

// Field values that need quoting in text format.
bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "unknown";
}

StatusOr<LogLevel> ParseLevel(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(LogLevel::kOff); ++i) {
    auto level = static_cast<LogLevel>(i);
    if (name == LevelName(level)) return level;
  }
  if (name == "warning") return LogLevel::kWarn;
  return absl::InvalidArgumentError(
      fmt::format("unknown log level '{}': use trace|debug|info|warn|error|off", name));
}

namespace {
std::atomic<uint64_t> g_level_generation{0};
}  // namespace

uint64_t Logger::NextLevelGeneration() { return g_level_generation.fetch_add(1) + 1; }

Logger::Logger(int fd) : fd_(fd), levels_gen_(NextLevelGeneration()) {}

Status Logger::SetLevels(std::string_view spec) {
  LogLevel new_default;
  std::vector<std::pair<std::string, LogLevel>> new_modules;
  {
    std::lock_guard lock(mu_);
    new_default = default_level_;
    new_modules = modules_;
  }
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t sep = item.find_first_of("=:");
    if (sep == std::string_view::npos) {
      ASSIGN_OR_RETURN(new_default, ParseLevel(item));
      continue;
    }
    std::string module(item.substr(0, sep));
    ASSIGN_OR_RETURN(LogLevel level, ParseLevel(item.substr(sep + 1)));
    bool found = false;
    for (auto& [name, lvl] : new_modules) {
      if (name == module) {
        lvl = level;
        found = true;
      }
    }
    if (!found) new_modules.emplace_back(std::move(module), level);
  }
  std::lock_guard lock(mu_);
  default_level_ = new_default;
  modules_ = std::move(new_modules);
  uint8_t min = static_cast<uint8_t>(default_level_);
  for (auto& [name, lvl] : modules_) min = std::min(min, static_cast<uint8_t>(lvl));
  min_level_.store(min, std::memory_order_relaxed);
  levels_gen_.store(NextLevelGeneration(), std::memory_order_release);
  return absl::OkStatus();
}

void Logger::Reset(LogLevel level) {
  std::lock_guard lock(mu_);
  default_level_ = level;
  modules_.clear();
  min_level_.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
  levels_gen_.store(NextLevelGeneration(), std::memory_order_release);
}

std::string Logger::DescribeLevels() const {
  std::lock_guard lock(mu_);
  std::string out = fmt::format("default={}", LevelName(default_level_));
  for (auto& [name, lvl] : modules_) out += fmt::format(",{}={}", name, LevelName(lvl));
  return out;
}

bool Logger::Enabled(LogLevel level, std::string_view module) const {
  if (static_cast<uint8_t>(level) < min_level_.load(std::memory_order_relaxed)) return false;
  if (level == LogLevel::kOff) return false;
  // Hot path (every access-log line of every worker): a per-thread copy of
  // the level table, refreshed under the lock only when the levels changed.
  // Generations are unique across Logger instances, so one cache serves all.
  struct Cache {
    uint64_t gen = 0;
    LogLevel default_level = LogLevel::kInfo;
    std::vector<std::pair<std::string, LogLevel>> modules;
  };
  thread_local Cache cache;
  const uint64_t gen = levels_gen_.load(std::memory_order_acquire);
  if (cache.gen != gen) {
    std::lock_guard lock(mu_);
    cache.gen = levels_gen_.load(std::memory_order_relaxed);
    cache.default_level = default_level_;
    cache.modules = modules_;
  }
  for (const auto& [name, lvl] : cache.modules) {
    if (name == module) return level >= lvl;
  }
  return level >= cache.default_level;
}

void Logger::Emit(LogLevel level, std::string_view module, std::string_view message,
                  std::span<const LogField> fields) {
  // Formatted into a per-thread buffer that keeps its capacity: a line costs
  // no allocation on the hot path (access logs on every connection).
  thread_local std::string line;
  line.clear();
  if (format() == LogFormat::kJson) {
    line += "{\"time\":\"";
    AppendTimestamp(line);
    line += "\",\"level\":";
    AppendJsonString(line, LevelName(level));
    line += ",\"scope\":";
    AppendJsonString(line, module);
    line += ",\"message\":";
    AppendJsonString(line, message);
    for (const auto& f : fields) {
      line.push_back(',');
      AppendJsonString(line, f.key);
      line.push_back(':');
      AppendJsonString(line, f.value);
    }
    line += "}\n";
  } else {
    AppendTimestamp(line);
    line.push_back('\t');
    line += LevelName(level);
    line.push_back('\t');
    line += module;
    line.push_back('\t');
    line += message;
    for (const auto& f : fields) {
      line.push_back(' ');
      line += f.key;
      line.push_back('=');
      if (NeedsQuotes(f.value)) {
        AppendJsonString(line, f.value);
      } else {
        line += f.value;
      }
    }
    line.push_back('\n');
  }
  lines_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    if (capture_) {
      captured_.push_back(line);
      return;
    }
    if (async_) {
      if (queue_.size() + line.size() > max_queued_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // The writer only sleeps on an empty queue: wake it for the first line.
      const bool was_empty = queue_.empty();
      queue_ += line;
      if (was_empty) cv_.notify_one();
      return;
    }
  }
  // One write per line keeps lines whole across threads. stderr is never
  // made non-blocking by us; a short or failed write counts as a drop.
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Logger::StartAsync(size_t max_queued_bytes) {
  {
    std::lock_guard lock(mu_);
    if (async_) return;
    async_ = true;
    max_queued_ = max_queued_bytes;
  }
  std::thread([this] { WriterLoop(); }).detach();  // lives as long as the process
}

void Logger::WriterLoop() {
  std::string out;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty(); });
      out.swap(queue_);  // queue_ gets the (empty) buffer written last time
      writing_ = true;
    }
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
      if (n <= 0) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      off += static_cast<size_t>(n);
    }
    out.clear();
    if (out.capacity() > (1u << 20)) out.shrink_to_fit();  // after a burst, give it back
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (queue_.empty()) drained_cv_.notify_all();
    }
    // Let lines accumulate briefly: one write(2) and one wake-up per batch
    // instead of per line under load (adds at most this much log latency).
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Logger::Flush(int timeout_ms) {
  std::unique_lock lock(mu_);
  if (!async_) return;
  drained_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return queue_.empty() && !writing_; });
}

void Logger::CaptureForTest(bool on) {
  std::lock_guard lock(mu_);
  capture_ = on;
  captured_.clear();
}

std::vector<std::string> Logger::CapturedForTest() const {
  std::lock_guard lock(mu_);
  return captured_;
}

Logger& ProcessLogger() {
  static Logger* logger = new Logger(2);  // never destroyed: usable during exit
  return *logger;
}

}  // namespace ambit::base
