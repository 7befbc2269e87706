// SignalWatcher: receive process signals (SIGTERM, SIGINT, ...) as loop operations via
// signalfd. Create() blocks the signals in the calling thread; create it on the main
// thread *before* starting other threads so they inherit the mask and the signals are
// only delivered through the signalfd.
#pragma once

#include <initializer_list>
#include <memory>

#include "common/io/loop.h"

namespace ambit::io {

class SignalWatcher {
 public:
  static StatusOr<std::unique_ptr<SignalWatcher>> Create(std::initializer_list<int> signals);
  ~SignalWatcher();  // closes the signalfd (the mask stays: restoring it races with delivery)
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  int fd() const { return fd_; }
  // Waits for the next signal; returns its number.
  Task<StatusOr<int>> Next(Loop& loop, OpOptions o = {});

 private:
  explicit SignalWatcher(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace ambit::io
