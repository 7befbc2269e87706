// Logging over fmt: levels, per-module levels changeable at runtime (admin
// /logging), text or JSON lines, structured fields for access logs.
//
// The composition root (Runtime / main) configures the process logger once;
// libraries log through AMBIT_LOG(level, "module", "fmt {}", args...).
// Thread-safe; a line is written with one write(2) so lines never interleave.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace ambit::base {

enum class LogLevel : uint8_t { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };
enum class LogFormat : uint8_t { kText, kJson };

std::string_view LevelName(LogLevel level);
StatusOr<LogLevel> ParseLevel(std::string_view name);

// A structured field. Both views must stay valid for the Emit() call only
// (callers format values into locals; nothing is copied until the line is).
struct LogField {
  std::string_view key;
  std::string_view value;
};

class Logger {
 public:
  // Writes to `fd` (stderr by default).
  explicit Logger(int fd = 2);

  // Spec like RUST_LOG: "info" or "warn,access=debug,hbone=trace".
  Status SetLevels(std::string_view spec);
  // Resets every module to the default level `level`.
  void Reset(LogLevel level);
  // "default=info,access=debug" — what /logging lists.
  std::string DescribeLevels() const;
  void SetFormat(LogFormat format) { format_.store(format, std::memory_order_relaxed); }
  LogFormat format() const { return format_.load(std::memory_order_relaxed); }

  bool Enabled(LogLevel level, std::string_view module) const;
  void Emit(LogLevel level, std::string_view module, std::string_view message,
            std::span<const LogField> fields = {});

  // Switches to asynchronous output: Emit() only queues the line (bounded by
  // `max_queued_bytes`; beyond that lines are dropped and counted) and a
  // writer thread does the write(2), so a slow stderr never blocks a worker.
  // Call once, from the composition root, after blocking the signals other
  // code waits for (the writer thread inherits the signal mask).
  void StartAsync(size_t max_queued_bytes = 8u << 20);
  // Waits until queued lines are written (or `timeout_ms` passed).
  void Flush(int timeout_ms = 1000);

  uint64_t lines_written() const { return lines_.load(std::memory_order_relaxed); }
  uint64_t lines_dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // Captures lines in memory instead of writing them (tests).
  void CaptureForTest(bool on);
  std::vector<std::string> CapturedForTest() const;

 private:
  static uint64_t NextLevelGeneration();

  int fd_;
  std::atomic<LogFormat> format_{LogFormat::kText};
  // Lowest level enabled for any module: the fast "is anything on" check.
  std::atomic<uint8_t> min_level_{static_cast<uint8_t>(LogLevel::kInfo)};
  // Changes with every SetLevels/Reset (unique across loggers): per-thread
  // level caches in Enabled() refresh when it moves.
  std::atomic<uint64_t> levels_gen_;
  mutable std::mutex mu_;
  LogLevel default_level_ = LogLevel::kInfo;
  std::vector<std::pair<std::string, LogLevel>> modules_;
  bool capture_ = false;
  // Async mode.
  bool async_ = false;
  size_t max_queued_ = 0;
  // Lines waiting for the writer thread, back to back (the writer swaps the
  // buffer out, so both keep their capacity and no line is allocated).
  std::string queue_;
  bool writing_ = false;  // the writer holds a swapped-out batch
  std::condition_variable cv_;
  std::condition_variable drained_cv_;
  void WriterLoop();
  std::vector<std::string> captured_;
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
};

// The process logger. The Runtime configures it; tests may too.
Logger& ProcessLogger();

}  // namespace ambit::base

#define AMBIT_LOG(level, module, ...)                                               \
  do {                                                                             \
    auto& ambit_logger_ = ::ambit::base::ProcessLogger();                          \
    if (ambit_logger_.Enabled(::ambit::base::LogLevel::level, (module)))           \
      ambit_logger_.Emit(::ambit::base::LogLevel::level, (module),                 \
                         ::fmt::format(__VA_ARGS__));                              \
  } while (0)
