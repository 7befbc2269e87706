#include "common/lifecycle/runtime.h"

#include <signal.h>
#include <string.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"

namespace ambit::lifecycle {

namespace {
// io_uring sizes (the CQ is 4x): the control loop runs a handful of admin and
// watch operations; a worker batches at most a few hundred submissions per
// turn (a full SQ is flushed and reused, and in-flight operations are not
// bounded by the ring). Rings are locked, resident memory: 4096 entries cost
// ~0.5 MB per loop, 1024 ~0.13 MB, 256 ~0.03 MB.
constexpr unsigned kControlRingEntries = 256;
constexpr unsigned kWorkerRingEntries = 1024;
}  // namespace

StatusOr<std::unique_ptr<Runtime>> Runtime::Create(RuntimeOptions options) {
  std::unique_ptr<Runtime> rt(new Runtime(std::move(options)));
  if (rt->options_.handle_signals) {
    // Before any worker starts, so every thread inherits the blocked mask.
    ASSIGN_OR_RETURN(rt->signals_, io::SignalWatcher::Create({SIGTERM, SIGINT}));
  }
  ASSIGN_OR_RETURN(rt->main_,
                   io::Loop::Create({.backend = rt->options_.backend, .name = "main",
                                     .uring_entries = kControlRingEntries,
                                     .fail_uring_setup_for_test =
                                         rt->options_.fail_uring_setup_for_test}));
  RETURN_IF_ERROR(rt->StartWorkers());
  if (rt->signals_ != nullptr) rt->main_->Spawn(rt->WatchSignals(*rt->main_));
  return rt;
}

Status Runtime::StartWorkers() {
  for (size_t i = 0; i < options_.workers; ++i) {
    auto w = std::make_unique<Worker>();
    std::promise<Status> ready;
    std::future<Status> started = ready.get_future();
    Worker* raw = w.get();
    io::LoopOptions lo{.backend = options_.backend, .name = absl::StrCat("worker-", i),
                       .uring_entries = kWorkerRingEntries,
                       .fail_uring_setup_for_test = options_.fail_uring_setup_for_test};
    w->thread = std::thread([this, raw, lo, &ready] {
      auto loop = io::Loop::Create(lo);  // created on its own thread, used only there
      if (!loop.ok()) {
        ready.set_value(loop.status());
        return;
      }
      raw->loop = loop->get();
      raw->backend = (*loop)->backend_kind();
      ready.set_value(absl::OkStatus());
      (*loop)->Run();
      // Unpublish before teardown: Shutdown() may still be inside Stop() on
      // this loop (it sets the flag, then writes the wake fd) and holds
      // workers_mu_ while it does, so the Loop is destroyed only after that.
      {
        std::lock_guard<std::mutex> lock(workers_mu_);
        raw->loop = nullptr;
      }
      // Teardown happens here, on the worker's thread.
    });
    Status s = started.get();
    workers_.push_back(std::move(w));
    if (!s.ok()) {
      Shutdown();
      return absl::Status(s.code(), absl::StrCat("starting worker ", i, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

Runtime::~Runtime() {
  Shutdown();
  signal_scope_.Cancel();
  main_.reset();  // cancels and finishes the signal task before the watcher goes
  signals_.reset();
}

void Runtime::PostToWorker(size_t i, absl::AnyInvocable<void(io::Loop&)> fn) {
  std::lock_guard<std::mutex> lock(workers_mu_);
  if (workers_stopped_ || i >= workers_.size() || workers_[i]->loop == nullptr) return;
  io::Loop* loop = workers_[i]->loop;
  loop->Post([loop, fn = std::move(fn)]() mutable { fn(*loop); });
}

void Runtime::Run() { main_->Run(); }

void Runtime::Stop() { main_->Stop(); }

void Runtime::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(workers_mu_);
    if (workers_stopped_) return;
    workers_stopped_ = true;
    for (auto& w : workers_) {
      if (w->loop != nullptr) w->loop->Stop();
    }
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
    w->loop = nullptr;
  }
}

void Runtime::HandleSignal(int sig) {
  ++signals_seen_;
  if (signals_seen_ == 1) {
    AMBIT_LOG(kInfo, "lifecycle", "received {}: draining", strsignal(sig));
    drain_.Trigger();
    if (on_drain_) {
      on_drain_();
    } else {
      Stop();
    }
    return;
  }
  if (sig == SIGINT) {
    AMBIT_LOG(kWarn, "lifecycle", "SIGINT while draining: stopping immediately");
    if (on_immediate_) {
      on_immediate_();
    } else {
      Stop();
    }
    return;
  }
  AMBIT_LOG(kInfo, "lifecycle", "received {} while draining; send SIGINT to stop at once",
            strsignal(sig));
}

io::Task<void> Runtime::WatchSignals(io::Loop& loop) {
  for (;;) {
    StatusOr<int> sig = co_await signals_->Next(loop, {.scope = &signal_scope_});
    if (!sig.ok()) {
      if (!absl::IsCancelled(sig.status())) {
        AMBIT_LOG(kError, "lifecycle", "signal watch stopped: {}",
                  std::string(sig.status().message()));
      }
      co_return;
    }
    HandleSignal(*sig);
  }
}

}  // namespace ambit::lifecycle
