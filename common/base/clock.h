// Time sources. Code that schedules or measures time takes a Clock& so tests
// can substitute SimulatedClock and advance time exactly.
#pragma once

#include <chrono>
#include <cstdint>

namespace ambit::base {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, Duration>;
using WallTime = std::chrono::time_point<std::chrono::system_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;       // monotonic: timers, timeouts
  virtual WallTime WallNow() const = 0;   // wall: certificates, logs
};

class RealClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  static RealClock& Instance() {
    static RealClock clock;  // stateless
    return clock;
  }
};

// Starts at an arbitrary fixed point; moves only when told to.
class SimulatedClock final : public Clock {
 public:
  SimulatedClock()
      : mono_(MonoTime(std::chrono::hours(1))),
        wall_(WallTime(std::chrono::seconds(1'767'225'600))) {}  // 2026-01-01
  MonoTime Now() const override { return mono_; }
  WallTime WallNow() const override { return wall_; }
  void Advance(Duration d) {
    mono_ += d;
    wall_ += d;
  }
  void SetWall(WallTime t) { wall_ = t; }

 private:
  MonoTime mono_;
  WallTime wall_;
};

}  // namespace ambit::base
