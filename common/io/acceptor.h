// Acceptor: accepts connections on a listening fd. On io_uring one multishot accept SQE
// stays armed and queues new fds; on epoll each Next() is a plain accept. The listener
// fd stays the caller's. Close() must be awaited before destruction if Next() was used.
#pragma once

#include <deque>

#include "common/io/loop.h"

namespace ambit::io {

class Acceptor {
 public:
  Acceptor(Loop& loop, int listen_fd);
  ~Acceptor();  // closes queued fds; asserts the multishot is not armed
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  bool multishot() const { return multishot_; }
  // Next accepted connection (peer filled by getpeername on the multishot path).
  Task<StatusOr<Accepted>> Next(OpOptions o = {});
  // Cancels the multishot accept, waits for the kernel's last completion, closes
  // connections accepted but not taken. The listener fd is not closed.
  Task<void> Close();

 private:
  class ItemWait;
  static void OnItem(Operation* op, int32_t fd);
  static void OnEnd(Operation* op);
  void Arm();
  void Wake();

  Loop& loop_;
  int fd_;
  bool multishot_;
  Operation multi_;
  bool armed_ = false;
  std::deque<int> ready_;
  Status error_;
  Operation* waiter_ = nullptr;
};

}  // namespace ambit::io
