// LoopFd: an owned fd that is closed through its Loop (so the epoll backend
// forgets it) when the guard goes away — early returns included.
#pragma once

#include <utility>

#include "common/io/loop.h"
#include "common/net/fd.h"

namespace ambit::agent {

class LoopFd {
 public:
  LoopFd(io::Loop& loop, net::Fd fd) : loop_(&loop), fd_(fd.Release()) {}
  ~LoopFd() { Reset(); }
  LoopFd(const LoopFd&) = delete;
  LoopFd& operator=(const LoopFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) loop_->Spawn(CloseTask(*loop_, std::exchange(fd_, -1)));
  }

 private:
  static io::Task<void> CloseTask(io::Loop& loop, int fd) { (void)co_await loop.Close(fd); }
  io::Loop* loop_;
  int fd_;
};

}  // namespace ambit::agent
