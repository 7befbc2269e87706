// Drain: the control thread triggers it once (first SIGTERM, admin /drain, ...); every
// DrainWatcher is then notified on its own loop's thread, where connections can await it
// (stop accepting, finish or migrate streams) or get a callback.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/io/event.h"
#include "common/io/loop.h"

namespace ambit::lifecycle {

class DrainWatcher;

class DrainTrigger {
 public:
  DrainTrigger() = default;
  DrainTrigger(const DrainTrigger&) = delete;
  DrainTrigger& operator=(const DrainTrigger&) = delete;

  // Starts the drain. Only the first call does anything; returns true for it. Thread-safe.
  bool Trigger();
  bool triggered() const { return triggered_.load(std::memory_order_acquire); }

  // A watcher living on `loop`'s thread (create, use and destroy it there).
  std::unique_ptr<DrainWatcher> Watch(io::Loop& loop);

  struct State;  // shared with posted notifications

 private:
  friend class DrainWatcher;
  void Forget(State* state);
  std::mutex mu_;
  std::atomic<bool> triggered_{false};
  std::vector<std::shared_ptr<State>> watchers_;
};

class DrainWatcher {
 public:
  ~DrainWatcher();
  DrainWatcher(const DrainWatcher&) = delete;
  DrainWatcher& operator=(const DrainWatcher&) = delete;

  // True once the drain reached this loop.
  bool draining() const;
  // co_await watcher.Wait(): OK when draining (scope/timeout as for any op).
  io::Event::WaitOp Wait(io::OpOptions o = {});
  // Runs `cb` on this loop's thread when the drain arrives (at once if it already did).
  void OnDrain(absl::AnyInvocable<void()> cb);

 private:
  friend class DrainTrigger;
  DrainWatcher(DrainTrigger& trigger, std::shared_ptr<DrainTrigger::State> state)
      : trigger_(trigger), state_(std::move(state)) {}
  DrainTrigger& trigger_;
  std::shared_ptr<DrainTrigger::State> state_;
};

}  // namespace ambit::lifecycle
