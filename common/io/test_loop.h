// TestLoop: a Loop on a SimulatedClock for tests. Timers (sleeps and op timeouts) fire
// exactly when time is advanced; I/O still runs for real.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "common/base/clock.h"
#include "common/io/loop.h"

namespace ambit::io {

class TestLoop {
 public:
  explicit TestLoop(BackendKind backend = BackendKind::kAuto);
  Loop& loop() { return *loop_; }
  base::SimulatedClock& clock() { return clock_; }
  // Advances simulated time by `d`, then runs everything that became ready.
  void Advance(base::Duration d);
  // Runs loop iterations without blocking until nothing is left to do right now.
  void RunUntilIdle();
  // Runs (waiting for real I/O) until pred() or `real_timeout` passed.
  bool RunUntil(const std::function<bool()>& pred,
                base::Duration real_timeout = std::chrono::seconds(5));

 private:
  base::SimulatedClock clock_;
  std::unique_ptr<Loop> loop_;
};

}  // namespace ambit::io
