// Fd: an owned file descriptor (RAII, move-only). -1 means empty.
#pragma once

#include <string_view>
#include <utility>

#include "common/base/status.h"

namespace ambit::net {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  // Closes the current fd (if any) and takes `fd`.
  void Reset(int fd = -1);
  // dup(2) with O_CLOEXEC.
  StatusOr<Fd> Dup() const;

 private:
  int fd_ = -1;
};

// "what: strerror(errno)" as an absl error with a code matching errno.
Status ErrnoError(int err, std::string_view what);

}  // namespace ambit::net
