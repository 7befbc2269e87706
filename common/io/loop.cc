#include "common/io/loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/assertions.h"
#include "common/base/log.h"
#include "common/io/cancel.h"

namespace ambit::io {

namespace {
constexpr int kInlineBudget = 16;  // inline completions per resumption before yielding
constexpr int kDrainRounds = 4;
}  // namespace

namespace detail {

struct DetachedRoutine;

struct DetachedPromise {
  Loop* loop = nullptr;
  DetachedRoutine get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  std::suspend_never final_suspend() const noexcept { return {}; }  // frees the frame
  void return_void() const noexcept {}
  [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
  ~DetachedPromise() {
    if (loop != nullptr) loop->detached_.erase(this);
  }
};

struct DetachedRoutine {
  using promise_type = DetachedPromise;
  std::coroutine_handle<DetachedPromise> handle;
};

DetachedRoutine DetachedPromise::get_return_object() noexcept {
  return {std::coroutine_handle<DetachedPromise>::from_promise(*this)};
}

DetachedRoutine RunDetached(Task<void> task) { co_await std::move(task); }

}  // namespace detail

StatusOr<std::unique_ptr<Loop>> Loop::Create(LoopOptions options) {
  std::unique_ptr<Backend> backend;
  std::string why;
  const bool uring = options.backend != BackendKind::kEpoll;
  // io_uring reads a blocking eventfd asynchronously; epoll needs a non-blocking one.
  int wake_fd = -1;
  std::unique_ptr<Loop> loop;
  auto make_loop = [&](bool nonblock) -> Status {
    wake_fd = ::eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
    if (wake_fd < 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "eventfd for loop ", options.name, ": ", strerror(errno), " (check RLIMIT_NOFILE)"));
    }
    loop.reset(new Loop(options, wake_fd));
    return absl::OkStatus();
  };
  if (uring) {
    RETURN_IF_ERROR(make_loop(false));
    UringConfig config{.entries = options.uring_entries,
                       .fail_setup_for_test = options.fail_uring_setup_for_test};
    auto b = MakeUringBackend(loop.get(), config);
    if (b.ok()) {
      backend = std::move(*b);
    } else if (options.backend == BackendKind::kUring) {
      return b.status();
    } else {
      why = std::string(b.status().message());
      loop.reset();
    }
  }
  if (backend == nullptr) {
    RETURN_IF_ERROR(make_loop(true));
    ASSIGN_OR_RETURN(backend, MakeEpollBackend(loop.get()));
  }
  loop->backend_ = std::move(backend);
  if (why.empty()) {
    AMBIT_LOG(kInfo, "io", "loop {}: using {} backend", loop->name_, loop->backend_name());
  } else {
    AMBIT_LOG(kInfo, "io", "loop {}: using epoll backend (io_uring unavailable: {})",
              loop->name_, why);
  }
  loop->ArmWake();
  return loop;
}

Loop::Loop(const LoopOptions& options, int wake_fd)
    : name_(options.name),
      clock_(options.clock != nullptr ? options.clock : &base::RealClock::Instance()),
      real_clock_(dynamic_cast<base::RealClock*>(clock_) != nullptr),
      wake_fd_(wake_fd) {}

Loop::~Loop() {
  if (backend_ != nullptr) Teardown();
  backend_.reset();
  ::close(wake_fd_);
}

void Loop::Teardown() {
  shutting_down_ = true;
  for (Operation* op = all_head_; op != nullptr; op = op->all_next) CancelOp(op, false);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < give_up) {
    RunOnce(std::chrono::milliseconds(10));
  }
  if (in_flight_ > 0) {
    // Freeing frames the kernel may still write to would be worse than leaking them.
    AMBIT_LOG(kError, "io", "loop {}: {} operations still in flight at shutdown; leaking {} tasks",
              name_, in_flight_, detached_.size());
    return;
  }
  spawned_.clear();
  std::vector<detail::DetachedPromise*> left(detached_.begin(), detached_.end());
  if (!left.empty()) {
    AMBIT_LOG(kDebug, "io", "loop {}: destroying {} unfinished tasks", name_, left.size());
  }
  for (detail::DetachedPromise* p : left) {
    std::coroutine_handle<detail::DetachedPromise>::from_promise(*p).destroy();
  }
}

// ---- tasks ------------------------------------------------------------------

void Loop::Spawn(Task<void> task) {
  if (!task.valid()) return;
  detail::DetachedRoutine r = detail::RunDetached(std::move(task));
  r.handle.promise().loop = this;
  detached_.insert(&r.handle.promise());
  spawned_.push_back(r.handle);
}

void Loop::StartSpawned() {
  if (spawned_.empty()) return;
  std::vector<std::coroutine_handle<>> start;
  start.swap(spawned_);
  for (auto h : start) {
    inline_budget_ = kInlineBudget;
    h.resume();
  }
}

// ---- driving ----------------------------------------------------------------

void Loop::Run() {
  while (!stop_.load(std::memory_order_acquire)) RunOnce(std::nullopt);
  stop_.store(false, std::memory_order_release);
}

void Loop::Stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

std::optional<base::Duration> Loop::ComputeWait(std::optional<base::Duration> max_wait) const {
  if (!completed_.empty() || !spawned_.empty() || stop_.load(std::memory_order_relaxed)) {
    return base::Duration(0);
  }
  if (timers_.empty()) return max_wait;
  base::Duration due = timers_.begin()->first - Now();
  if (due <= base::Duration(0)) return base::Duration(0);
  if (!real_clock_) return max_wait;  // simulated time moves only when told to
  return max_wait.has_value() ? std::min(due, *max_wait) : due;
}

void Loop::RunOnce(std::optional<base::Duration> max_wait) {
  backend_->Poll(ComputeWait(max_wait));
  FireTimers();
  DrainCompleted();
  StartSpawned();
  DrainCompleted();
}

bool Loop::RunUntil(const std::function<bool()>& pred, base::Duration timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    auto left = end - std::chrono::steady_clock::now();
    if (left <= decltype(left)::zero()) return pred();
    RunOnce(std::min<base::Duration>(left, std::chrono::milliseconds(50)));
  }
  return true;
}

// ---- operations -------------------------------------------------------------

bool Loop::Start(Operation* op) {
  if (shutting_down_ && op != &wake_op_) {
    op->result = -ECANCELED;
    op->cancel_requested = true;
    return true;
  }
  op->loop = this;
  op->state = OpState::kPending;
  op->result = 0;
  if (op->scope != nullptr) op->scope->Link(op);
  LinkAll(op);
  ++in_flight_;
  if (op->kind == OpKind::kSleep) {
    ArmTimer(op, op->deadline);
    return false;
  }
  if (op->kind == OpKind::kWait) {
    if (op->timeout > base::Duration(0)) ArmTimer(op, Now() + op->timeout);
    return false;
  }
  if (op->timeout > base::Duration(0)) {
    if (real_clock_ && backend_->KernelTimeouts(op->kind)) {
      op->linked_timeout = true;
      op->ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(op->timeout).count();
      op->ts.tv_nsec = (op->timeout % std::chrono::seconds(1)).count();
    } else {
      ArmTimer(op, Now() + op->timeout);
    }
  }
  if (backend_->Submit(op, inline_budget_ > 0)) {
    --inline_budget_;
    Finish(op);
    return true;
  }
  return false;
}

void Loop::CancelOp(Operation* op, bool timed_out) {
  if (op->state != OpState::kPending || op->cancel_requested) return;
  op->cancel_requested = true;
  op->timed_out = timed_out;
  if (op->kind == OpKind::kSleep || op->kind == OpKind::kWait) {
    DisarmTimer(op);
    op->result = -ECANCELED;
    Completed(op);
    return;
  }
  backend_->Cancel(op);
}

void Loop::Notify(Operation* op, int32_t result) {
  if (op->kind != OpKind::kWait || op->state != OpState::kPending || op->cancel_requested) {
    return;
  }
  DisarmTimer(op);
  op->result = result;
  Completed(op);
}

void Loop::Completed(Operation* op) {
  op->state = OpState::kDone;
  completed_.push_back(op);
}

void Loop::Finish(Operation* op) {
  if (op->scope != nullptr) op->scope->Unlink(op);
  DisarmTimer(op);
  UnlinkAll(op);
  --in_flight_;
  op->state = OpState::kDone;
}

void Loop::Dispatch(Operation* op) {
  Finish(op);
  if (op->on_complete != nullptr) {
    op->on_complete(op);
  } else {
    inline_budget_ = kInlineBudget;
    op->waiter.resume();
  }
}

void Loop::DrainCompleted() {
  for (int round = 0; round < kDrainRounds && !completed_.empty(); ++round) {
    completed_scratch_.swap(completed_);
    for (Operation* op : completed_scratch_) Dispatch(op);
    completed_scratch_.clear();
  }
}

void Loop::LinkAll(Operation* op) {
  op->all_prev = nullptr;
  op->all_next = all_head_;
  if (all_head_ != nullptr) all_head_->all_prev = op;
  all_head_ = op;
}

void Loop::UnlinkAll(Operation* op) {
  if (op->all_prev != nullptr) {
    op->all_prev->all_next = op->all_next;
  } else {
    all_head_ = op->all_next;
  }
  if (op->all_next != nullptr) op->all_next->all_prev = op->all_prev;
  op->all_prev = op->all_next = nullptr;
}

// ---- timers -----------------------------------------------------------------

void Loop::ArmTimer(Operation* op, base::MonoTime when) {
  op->timer_it = timers_.emplace(when, op);  // equal times keep insertion order
  op->timer_armed = true;
}

void Loop::DisarmTimer(Operation* op) {
  if (!op->timer_armed) return;
  timers_.erase(op->timer_it);
  op->timer_armed = false;
}

void Loop::FireTimers() {
  const base::MonoTime now = Now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Operation* op = timers_.begin()->second;
    timers_.erase(timers_.begin());
    op->timer_armed = false;
    if (op->kind == OpKind::kSleep) {
      op->result = 0;
      Completed(op);
    } else {
      CancelOp(op, /*timed_out=*/true);
    }
  }
}

// ---- cross-thread -----------------------------------------------------------

void Loop::Post(absl::AnyInvocable<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(fn));
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
}

void Loop::ArmWake() {
  wake_op_ = Operation{};
  wake_op_.kind = OpKind::kRead;
  wake_op_.fd = wake_fd_;
  wake_op_.buf = &wake_buf_;
  wake_op_.len = sizeof(wake_buf_);
  wake_op_.on_complete = &Loop::OnWake;
  wake_op_.context = this;
  const int saved = inline_budget_;
  inline_budget_ = 0;  // never inline: OnWake would recurse
  wake_armed_ = true;
  Start(&wake_op_);
  inline_budget_ = saved;
}

void Loop::OnWake(Operation* op) {
  Loop* loop = static_cast<Loop*>(op->context);
  loop->wake_armed_ = false;
  if (op->result < 0 && op->result != -EAGAIN && op->result != -EINTR &&
      op->result != -ECANCELED) {
    AMBIT_LOG(kError, "io", "loop {}: wake-up read failed: {}", loop->name_,
              std::string(OpStatus(*op).message()));
  }
  loop->wake_pending_.store(false, std::memory_order_seq_cst);
  loop->RunPosted();
  if (!loop->shutting_down_) loop->ArmWake();
}

void Loop::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_scratch_.swap(posted_);
  }
  for (auto& fn : posted_scratch_) {
    inline_budget_ = kInlineBudget;
    fn();
  }
  posted_scratch_.clear();
}

// ---- operation factories ----------------------------------------------------

ConnectOp Loop::Connect(int fd, const sockaddr* addr, socklen_t len, OpOptions o) {
  return ConnectOp(*this, addr, len, fd, o);
}
SizeOp Loop::Recv(int fd, std::span<std::byte> buf, OpOptions o) {
  return SizeOp(*this, OpKind::kRecv, fd, buf.data(), buf.size(), o);
}
SizeOp Loop::Send(int fd, std::span<const std::byte> buf, OpOptions o) {
  return SizeOp(*this, OpKind::kSend, fd, const_cast<std::byte*>(buf.data()), buf.size(), o);
}
SizeOp Loop::Read(int fd, std::span<std::byte> buf, OpOptions o) {
  return SizeOp(*this, OpKind::kRead, fd, buf.data(), buf.size(), o);
}
SizeOp Loop::Write(int fd, std::span<const std::byte> buf, OpOptions o) {
  return SizeOp(*this, OpKind::kWrite, fd, const_cast<std::byte*>(buf.data()), buf.size(), o);
}
VoidOp Loop::Shutdown(int fd, int how, OpOptions o) {
  return VoidOp(*this, OpKind::kShutdown, fd, o, how);
}
VoidOp Loop::WaitReadable(int fd, OpOptions o) {
  return VoidOp(*this, OpKind::kPollIn, fd, o);
}
VoidOp Loop::Close(int fd) { return VoidOp(*this, OpKind::kClose, fd, {}); }
VoidOp Loop::Sleep(base::Duration d, OpOptions o) { return VoidOp(*this, Now() + d, o); }
VoidOp Loop::SleepUntil(base::MonoTime when, OpOptions o) { return VoidOp(*this, when, o); }

}  // namespace ambit::io
