// Runtime: the main (control) loop on the calling thread plus N worker threads, each with
// its own Loop for life (DESIGN.md §4). Signals: the first SIGTERM/SIGINT triggers the
// drain (DrainTrigger + drain handler); a second SIGINT stops at once (immediate handler).
#pragma once

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/signals.h"
#include "common/lifecycle/drain.h"

namespace ambit::lifecycle {

struct RuntimeOptions {
  size_t workers = 2;
  io::BackendKind backend = io::BackendKind::kAuto;
  // Watch SIGTERM/SIGINT (blocks them in the calling thread and so in all workers).
  bool handle_signals = true;
  bool fail_uring_setup_for_test = false;
};

class Runtime {
 public:
  // Creates the main loop, then starts the workers and waits until each has its loop.
  static StatusOr<std::unique_ptr<Runtime>> Create(RuntimeOptions options = {});
  ~Runtime();  // Shutdown(), then the main loop is torn down on this thread
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  io::Loop& main_loop() { return *main_; }
  size_t worker_count() const { return workers_.size(); }
  io::BackendKind worker_backend(size_t i) const { return workers_[i]->backend; }

  // Thread-safe. fn runs on worker i's thread with its loop. Dropped after Shutdown().
  void PostToWorker(size_t i, absl::AnyInvocable<void(io::Loop&)> fn);
  void PostToMain(absl::AnyInvocable<void()> fn) { main_->Post(std::move(fn)); }

  DrainTrigger& drain() { return drain_; }
  // Main thread. Default for both: Stop().
  void SetDrainHandler(absl::AnyInvocable<void()> fn) { on_drain_ = std::move(fn); }
  void SetImmediateHandler(absl::AnyInvocable<void()> fn) { on_immediate_ = std::move(fn); }

  void Run();       // runs the main loop on the calling thread until Stop()
  void Stop();      // thread-safe: Run() returns
  void Shutdown();  // stops and joins the workers; idempotent

  // What a received signal does (also used by tests). Main thread.
  void HandleSignal(int sig);

 private:
  struct Worker {
    std::thread thread;
    io::Loop* loop = nullptr;  // owned by the worker thread
    io::BackendKind backend = io::BackendKind::kAuto;
  };
  explicit Runtime(RuntimeOptions options) : options_(std::move(options)) {}
  Status StartWorkers();
  io::Task<void> WatchSignals(io::Loop& loop);

  RuntimeOptions options_;
  std::unique_ptr<io::Loop> main_;
  std::unique_ptr<io::SignalWatcher> signals_;
  io::CancelScope signal_scope_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex workers_mu_;
  bool workers_stopped_ = false;
  DrainTrigger drain_;
  int signals_seen_ = 0;
  absl::AnyInvocable<void()> on_drain_;
  absl::AnyInvocable<void()> on_immediate_;
};

}  // namespace ambit::lifecycle
