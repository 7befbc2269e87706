// Test-only: drives one TlsEngine over a non-blocking socket with poll(),
// every wait bounded by a deadline. Used by the socketpair and interop tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>

#include "common/tls/engine.h"

namespace ambit::tls::testing {

class FdDriver {
 public:
  using Clock = std::chrono::steady_clock;

  FdDriver(TlsEngine& engine, int fd) : engine_(engine), fd_(fd) {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  bool eof() const { return eof_; }

  // One poll round: send pending ciphertext, feed what arrived. False on
  // timeout, socket error or EOF with nothing pending.
  bool Step(Clock::time_point deadline) {
    const auto pending = engine_.PendingCiphertext();
    pollfd p{fd_, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || (eof_ && pending.empty())) return false;
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    if ((p.revents & POLLOUT) != 0) {
      const ssize_t n = ::write(fd_, pending.data(), pending.size());
      if (n > 0) engine_.ConsumeCiphertext(static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN) return false;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      std::byte buf[64 * 1024];
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n > 0) engine_.FeedCiphertext({buf, static_cast<size_t>(n)});
      if (n == 0) eof_ = true;
      if (n < 0 && errno != EAGAIN) return false;
    }
    return true;
  }

  HandshakeState Handshake(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      const HandshakeState s = engine_.Handshake();
      if (s != HandshakeState::kNeedMore) {
        Flush(deadline);  // finished flight or alert
        return s;
      }
      if (!Step(deadline)) return HandshakeState::kNeedMore;
    }
  }

  bool Flush(Clock::time_point deadline) {
    while (!engine_.PendingCiphertext().empty()) {
      if (!Step(deadline)) return false;
    }
    return true;
  }

  bool Write(const std::string& data, Clock::duration timeout) {
    if (!engine_.WritePlaintext({reinterpret_cast<const std::byte*>(data.data()), data.size()})
             .ok()) {
      return false;
    }
    return Flush(Clock::now() + timeout);
  }

  // Reads until `want` bytes arrived, close_notify, failure or timeout.
  ReadState ReadN(std::string& out, size_t want, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (out.size() < want) {
      std::byte buf[16 * 1024];
      const ReadResult r = engine_.ReadPlaintext(buf);
      if (r.state == ReadState::kData) {
        out.append(reinterpret_cast<const char*>(buf), r.bytes);
        continue;
      }
      if (r.state != ReadState::kNeedMore) return r.state;
      if (!Step(deadline)) return ReadState::kNeedMore;
    }
    return ReadState::kData;
  }

 private:
  TlsEngine& engine_;
  int fd_;
  bool eof_ = false;
};

}  // namespace ambit::tls::testing
