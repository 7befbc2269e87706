// Loop: one per thread. Runs tasks, operations, timers and posted work.
// Everything except Post() and Stop() must be called on the loop's own thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/backend.h"
#include "common/io/ops.h"
#include "common/io/task.h"

namespace ambit::io {

struct LoopOptions {
  BackendKind backend = BackendKind::kAuto;
  base::Clock* clock = nullptr;  // nullptr: RealClock. Must outlive the loop.
  std::string name = "loop";     // used in logs
  unsigned uring_entries = 4096;
  // Makes io_uring setup fail as if seccomp blocked it (tests of the fallback).
  bool fail_uring_setup_for_test = false;
};

namespace detail {
struct DetachedPromise;
}

class Loop final : private CompletionSink {
 public:
  static StatusOr<std::unique_ptr<Loop>> Create(LoopOptions options = {});
  ~Loop();  // cancels what is in flight, waits for the kernel, frees leftover tasks
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  BackendKind backend_kind() const { return backend_->kind(); }
  const char* backend_name() const { return BackendName(backend_kind()); }
  const std::string& name() const { return name_; }
  base::Clock& clock() const { return *clock_; }
  base::MonoTime Now() const { return clock_->Now(); }

  // ---- tasks -------------------------------------------------------------
  // Starts a detached task on the next loop iteration; its frame is freed when it ends.
  void Spawn(Task<void> task);
  template <typename T>
  void Spawn(Task<T> task) {
    Spawn(DropResult(std::move(task)));
  }
  size_t live_tasks() const { return detached_.size(); }
  // Runs the loop until `task` finished and returns its result.
  template <typename T>
  T BlockOn(Task<T> task);

  // ---- driving -----------------------------------------------------------
  void Run();   // until Stop()
  void Stop();  // thread-safe
  // One iteration: waits at most `max_wait` (less if a timer is due), runs completions.
  void RunOnce(std::optional<base::Duration> max_wait);
  // Runs until pred() is true or `timeout` of real time passed; returns pred().
  bool RunUntil(const std::function<bool()>& pred, base::Duration timeout);

  // ---- cross-thread --------------------------------------------------------
  void Post(absl::AnyInvocable<void()> fn);  // thread-safe, FIFO

  // ---- operations (see ops.h for the awaitables) ------------------------
  AcceptOp Accept(int fd, OpOptions o = {}) { return AcceptOp(*this, fd, o); }
  ConnectOp Connect(int fd, const sockaddr* addr, socklen_t len, OpOptions o = {});
  SizeOp Recv(int fd, std::span<std::byte> buf, OpOptions o = {});
  SizeOp Send(int fd, std::span<const std::byte> buf, OpOptions o = {});
  WritevOp Writev(int fd, std::span<const iovec> iov, OpOptions o = {}) {
    return WritevOp(*this, fd, iov, o);
  }
  SizeOp Read(int fd, std::span<std::byte> buf, OpOptions o = {});
  SizeOp Write(int fd, std::span<const std::byte> buf, OpOptions o = {});
  // Waits until `fd` is readable (data, EOF or an error pending) without
  // holding a buffer: idle connections cost no receive memory.
  VoidOp WaitReadable(int fd, OpOptions o = {});
  VoidOp Shutdown(int fd, int how, OpOptions o = {});
  VoidOp Close(int fd);
  VoidOp Sleep(base::Duration d, OpOptions o = {});
  VoidOp SleepUntil(base::MonoTime when, OpOptions o = {});

  // ---- used by awaitables and CancelScope -------------------------------
  // Starts op; returns true if it completed inline (no suspension needed).
  bool Start(Operation* op);
  void CancelOp(Operation* op, bool timed_out);
  // Completes a pending kWait op with `result` (no-op if it is not pending).
  void Notify(Operation* op, int32_t result);
  Backend& backend() { return *backend_; }
  size_t ops_in_flight() const { return in_flight_ - (wake_armed_ ? 1 : 0); }

 private:
  friend struct detail::DetachedPromise;
  Loop(const LoopOptions& options, int wake_fd);
  template <typename T>
  static Task<void> DropResult(Task<T> t) {
    (void)co_await std::move(t);
  }

  void Completed(Operation* op) override;
  void Dispatch(Operation* op);
  void Finish(Operation* op);
  void DrainCompleted();
  void FireTimers();
  void StartSpawned();
  std::optional<base::Duration> ComputeWait(std::optional<base::Duration> max_wait) const;
  void ArmTimer(Operation* op, base::MonoTime when);
  void DisarmTimer(Operation* op);
  void LinkAll(Operation* op);
  void UnlinkAll(Operation* op);
  void ArmWake();
  static void OnWake(Operation* op);
  void RunPosted();
  void Teardown();

  std::string name_;
  base::Clock* clock_;
  bool real_clock_;
  std::unique_ptr<Backend> backend_;
  int wake_fd_;
  uint64_t wake_buf_ = 0;
  Operation wake_op_;
  bool wake_armed_ = false;
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> stop_{false};
  bool shutting_down_ = false;
  int inline_budget_ = 0;

  std::multimap<base::MonoTime, Operation*> timers_;
  std::vector<Operation*> completed_;
  std::vector<Operation*> completed_scratch_;
  std::vector<std::coroutine_handle<>> spawned_;
  std::unordered_set<detail::DetachedPromise*> detached_;
  Operation* all_head_ = nullptr;
  size_t in_flight_ = 0;

  std::mutex post_mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;
  std::vector<absl::AnyInvocable<void()>> posted_scratch_;
};

// Sends all of `data` (loops over partial sends).
Task<Status> SendAll(Loop& loop, int fd, std::span<const std::byte> data, OpOptions o = {});
// Receives exactly data.size() bytes; EOF before that is an error (OutOfRange).
Task<Status> RecvExact(Loop& loop, int fd, std::span<std::byte> data, OpOptions o = {});

template <typename T>
T Loop::BlockOn(Task<T> task) {
  std::optional<detail::NonVoid<T>> out;
  bool done = false;
  auto runner = [](Task<T> t, std::optional<detail::NonVoid<T>>* o, bool* d) -> Task<void> {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(t);
      o->emplace();
    } else {
      o->emplace(co_await std::move(t));
    }
    *d = true;
  };
  Spawn(runner(std::move(task), &out, &done));
  while (!done) RunOnce(std::nullopt);
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}

}  // namespace ambit::io
