#include "common/io/fd_stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace ambit::io {

namespace {
constexpr size_t kRecvBuffer = 16 << 10;

Task<void> CloseTask(Loop& loop, int fd) { (void)co_await loop.Close(fd); }
}  // namespace

FdStream::FdStream(Loop& loop, int fd) : loop_(loop), fd_(fd) {}

FdStream::~FdStream() {
  if (fd_ >= 0) loop_.Spawn(CloseTask(loop_, fd_));
}

Task<StatusOr<std::span<const std::byte>>> FdStream::Peek(OpOptions o) {
  for (;;) {
    if (begin_ < end_) co_return std::span<const std::byte>(buf_.data() + begin_, end_ - begin_);
    if (aborted_) co_return absl::AbortedError("stream aborted locally");
    if (eof_) co_return std::span<const std::byte>();
    if (buf_.empty()) {
      // Idle: wait without holding a buffer.
      Status ready = co_await loop_.WaitReadable(fd_, o);
      if (!ready.ok()) co_return ready;
      buf_ = PooledBuffer::Get(kRecvBuffer);
    }
    auto n = co_await loop_.Recv(fd_, buf_.span(), o);
    if (!n.ok()) co_return n.status();
    if (*n == 0) {
      eof_ = true;
      buf_.Release();
      continue;
    }
    begin_ = 0;
    end_ = *n;
  }
}

void FdStream::Consume(size_t n) {
  begin_ = std::min(end_, begin_ + n);
  if (begin_ == end_) {
    begin_ = end_ = 0;
    buf_.Release();
  }
}

Task<Status> FdStream::Write(std::span<const std::byte> bytes, OpOptions o) {
  if (aborted_) co_return absl::AbortedError("stream aborted locally");
  if (write_closed_) co_return absl::FailedPreconditionError("stream closed for writing");
  co_return co_await SendAll(loop_, fd_, bytes, o);
}

void FdStream::CloseWrite() {
  if (write_closed_ || aborted_) return;
  write_closed_ = true;
  (void)::shutdown(fd_, SHUT_WR);
}

void FdStream::Abort() {
  if (aborted_) return;
  aborted_ = true;
  linger lg{1, 0};  // close(2) sends RST
  (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  (void)::shutdown(fd_, SHUT_RD);  // wakes a pending receive
}

Task<StatusOr<std::span<const std::byte>>> PrefixedStream::Peek(OpOptions o) {
  if (off_ < prefix_.size()) {
    co_return std::span<const std::byte>(prefix_.data() + off_, prefix_.size() - off_);
  }
  co_return co_await inner_.Peek(o);
}

void PrefixedStream::Consume(size_t n) {
  if (off_ < prefix_.size()) {
    off_ += n;
    if (off_ >= prefix_.size()) {
      std::vector<std::byte>().swap(prefix_);
      off_ = 0;
    }
    return;
  }
  inner_.Consume(n);
}

}  // namespace ambit::io
