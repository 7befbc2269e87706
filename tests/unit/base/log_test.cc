#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/base/status.h"

using namespace ambit::base;
using ambit::Status;
using ambit::StatusOr;

TEST_CASE("log levels per module") {
  Logger logger(-1);
  CHECK(logger.SetLevels("warn,access=debug").ok());
  CHECK(logger.Enabled(LogLevel::kDebug, "access"));
  CHECK_FALSE(logger.Enabled(LogLevel::kInfo, "hbone"));
  CHECK(logger.Enabled(LogLevel::kError, "hbone"));
  CHECK(logger.DescribeLevels() == "default=warn,access=debug");
  CHECK_FALSE(logger.SetLevels("access=loud").ok());
  CHECK(logger.DescribeLevels() == "default=warn,access=debug");  // unchanged on error
  logger.Reset(LogLevel::kInfo);
  CHECK(logger.DescribeLevels() == "default=info");
}

TEST_CASE("log text and json formats carry fields") {
  Logger logger(-1);
  logger.CaptureForTest(true);
  LogField fields[] = {{"src.addr", "10.0.0.1:5000"}, {"error", "a \"quoted\" thing"}};
  logger.Emit(LogLevel::kInfo, "access", "connection complete", fields);
  logger.SetFormat(LogFormat::kJson);
  logger.Emit(LogLevel::kWarn, "access", "connection failed", fields);
  auto lines = logger.CapturedForTest();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("\tinfo\taccess\tconnection complete src.addr=10.0.0.1:5000 "
                      "error=\"a \\\"quoted\\\" thing\"\n") != std::string::npos);
  CHECK(lines[1].find("\"level\":\"warn\",\"scope\":\"access\",\"message\":\"connection failed\","
                      "\"src.addr\":\"10.0.0.1:5000\"") != std::string::npos);
}

TEST_CASE("simulated clock moves only when advanced") {
  SimulatedClock clock;
  auto t0 = clock.Now();
  CHECK(clock.Now() == t0);
  clock.Advance(std::chrono::milliseconds(1500));
  CHECK(clock.Now() - t0 == std::chrono::milliseconds(1500));
}

namespace {
StatusOr<int> Half(int v) {
  if (v % 2) return absl::InvalidArgumentError("odd");
  return v / 2;
}
Status UseHalf(int v, int* out) {
  ASSIGN_OR_RETURN(*out, Half(v));
  return absl::OkStatus();
}
}  // namespace

TEST_CASE("status macros") {
  int out = 0;
  CHECK(UseHalf(8, &out).ok());
  CHECK(out == 4);
  CHECK(UseHalf(3, &out).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("async logging writes every line and drops (counted) beyond the bound") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  auto* logger = new Logger(fds[1]);  // leaked on purpose: its writer thread outlives the test
  logger->StartAsync(/*max_queued_bytes=*/4096);
  // Fill far beyond the bound while nobody drains the pipe's reader side.
  for (int i = 0; i < 2000; ++i) logger->Emit(LogLevel::kInfo, "t", fmt::format("line {}", i));
  CHECK(logger->lines_dropped() > 0);
  std::string all;
  char buf[65536];
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  for (int spins = 0; spins < 200; ++spins) {
    logger->Flush(10);
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
  }
  size_t lines = static_cast<size_t>(std::count(all.begin(), all.end(), '\n'));
  CHECK(lines + logger->lines_dropped() == 2000);
  CHECK(all.find("line 0\n") != std::string::npos);
}
