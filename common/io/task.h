// Task<T>: a lazily started coroutine with exactly one awaiter.
//
// - Lazy: the body starts when the task is awaited (or spawned on a Loop).
// - Symmetric transfer: an asynchronous finish resumes the awaiter directly; a synchronous
//   finish returns to the awaiter without a nested resume, so loops don't grow the stack.
// - No exceptions: an escaping exception terminates (data paths return Status).
// - Parameters by value, or references to objects that outlive the task (the Loop).
// WhenAll(a, b) runs two tasks concurrently on the current thread and resumes the
// awaiter when both have finished (the two relay directions of a connection).
#pragma once

#include <coroutine>
#include <cstdlib>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/base/assertions.h"

namespace ambit::io {

template <typename T = void>
class Task;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  // Set while the awaiter runs the task's first part inside await_suspend; a task that
  // finishes then returns straight to it, so loops over synchronously completing tasks
  // never nest stack frames (even where the compiler emits no tail call, e.g. ASan).
  bool inline_phase = false;
  bool completed_inline = false;

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      PromiseBase& p = h.promise();
      if (p.inline_phase) {
        p.completed_inline = true;
        return std::noop_coroutine();  // back into the awaiter's await_suspend
      }
      return p.continuation ? p.continuation : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  void return_value(T v) { value.emplace(std::move(v)); }
  T TakeResult() { return std::move(*value); }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void TakeResult() const noexcept {}
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() = default;
  explicit Task(Handle h) : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Reset(); }

  bool valid() const { return static_cast<bool>(handle_); }
  bool done() const { return handle_ && handle_.done(); }

  // co_await std::move(task): starts it and resumes the caller when it finishes.
  auto operator co_await() && noexcept {
    struct Awaiter {
      Handle h;
      bool await_ready() const noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> caller) noexcept {
        auto& p = h.promise();
        AMBIT_ASSERT(h && !p.continuation);  // exactly one awaiter
        p.continuation = caller;
        p.inline_phase = true;
        h.resume();
        p.inline_phase = false;
        return !p.completed_inline;  // finished already: continue without suspending
      }
      T await_resume() { return h.promise().TakeResult(); }
    };
    return Awaiter{handle_};
  }

  // For the Loop's detached runner and WhenAll: hands over the frame.
  Handle Release() { return std::exchange(handle_, nullptr); }

 private:
  void Reset() {
    if (handle_) handle_.destroy();
    handle_ = nullptr;
  }
  Handle handle_;
};

namespace detail {

template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// void results become std::monostate so WhenAll can return a pair.
template <typename T>
using NonVoid = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

struct WhenAllCounter {
  int remaining = 0;
  std::coroutine_handle<> parent;
};

// A child frame that reports to the counter when it finishes.
class WhenAllChild {
 public:
  struct promise_type {
    WhenAllCounter* counter = nullptr;
    WhenAllChild get_return_object() noexcept {
      return WhenAllChild(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(
          std::coroutine_handle<promise_type> h) const noexcept {
        WhenAllCounter* c = h.promise().counter;
        if (--c->remaining == 0) return c->parent;
        return std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
  };

  explicit WhenAllChild(std::coroutine_handle<promise_type> h) : h_(h) {}
  WhenAllChild(WhenAllChild&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  WhenAllChild(const WhenAllChild&) = delete;
  WhenAllChild& operator=(const WhenAllChild&) = delete;
  WhenAllChild& operator=(WhenAllChild&&) = delete;
  ~WhenAllChild() {
    if (h_) h_.destroy();
  }
  void Start(WhenAllCounter* counter) {
    h_.promise().counter = counter;
    h_.resume();
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

template <typename T>
WhenAllChild RunChild(Task<T> task, std::optional<NonVoid<T>>* out) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    out->emplace();
  } else {
    out->emplace(co_await std::move(task));
  }
}

struct WhenAllAwaiter {
  WhenAllChild a;
  WhenAllChild b;
  WhenAllCounter counter;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> parent) {
    counter.parent = parent;
    counter.remaining = 3;  // two children + this call, so a synchronous finish can't resume
    a.Start(&counter);
    b.Start(&counter);
    return --counter.remaining != 0;  // both done already: continue without suspending
  }
  void await_resume() const noexcept {}
};

}  // namespace detail

// Runs both tasks concurrently; resumes when both finished. void results are monostate.
template <typename A, typename B>
Task<std::pair<detail::NonVoid<A>, detail::NonVoid<B>>> WhenAll(Task<A> a, Task<B> b) {
  std::optional<detail::NonVoid<A>> ra;
  std::optional<detail::NonVoid<B>> rb;
  // A named awaiter: GCC 12 mis-destroys braced temporaries inside co_await.
  detail::WhenAllAwaiter both{detail::RunChild(std::move(a), &ra),
                              detail::RunChild(std::move(b), &rb), {}};
  co_await both;
  co_return std::pair<detail::NonVoid<A>, detail::NonVoid<B>>(std::move(*ra), std::move(*rb));
}

}  // namespace ambit::io

// RETURN_IF_ERROR for coroutines returning Task<Status> / Task<StatusOr<T>>:
//   CO_RETURN_IF_ERROR(co_await loop.Shutdown(fd, SHUT_WR));
#define CO_RETURN_IF_ERROR(expr)                     \
  do {                                               \
    ::absl::Status ambit_co_status_ = (expr);        \
    if (!ambit_co_status_.ok()) co_return ambit_co_status_; \
  } while (0)
