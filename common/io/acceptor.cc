#include "common/io/acceptor.h"

#include <unistd.h>

#include "common/base/assertions.h"

namespace ambit::io {

class Acceptor::ItemWait : public OpBase {
 public:
  ItemWait(Acceptor& acc, const OpOptions& o)
      : OpBase(acc.loop_, OpKind::kWait, -1, o), acc_(acc) {}
  bool await_ready() const noexcept {
    return early_ || !acc_.ready_.empty() || !acc_.error_.ok() || !acc_.armed_;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    op_.waiter = h;
    acc_.waiter_ = &op_;
    loop_.Start(&op_);
    return true;
  }
  Status await_resume() {
    if (acc_.waiter_ == &op_) acc_.waiter_ = nullptr;
    return OpStatus(op_);
  }

 private:
  Acceptor& acc_;
};

Acceptor::Acceptor(Loop& loop, int listen_fd)
    : loop_(loop), fd_(listen_fd), multishot_(loop.backend_kind() == BackendKind::kUring) {}

Acceptor::~Acceptor() {
  AMBIT_ASSERT(!armed_);  // the kernel still owns multi_: await Close() first
  for (int fd : ready_) ::close(fd);
}

void Acceptor::Arm() {
  multi_ = Operation{};
  multi_.kind = OpKind::kAcceptMulti;
  multi_.fd = fd_;
  multi_.on_item = &Acceptor::OnItem;
  multi_.on_complete = &Acceptor::OnEnd;
  multi_.context = this;
  armed_ = true;
  if (loop_.Start(&multi_)) {  // refused at once (loop shutting down)
    armed_ = false;
    error_ = OpStatus(multi_);
  }
}

void Acceptor::Wake() {
  if (waiter_ != nullptr) loop_.Notify(waiter_, 0);
}

void Acceptor::OnItem(Operation* op, int32_t fd) {
  auto* self = static_cast<Acceptor*>(op->context);
  self->ready_.push_back(fd);
  self->Wake();
}

void Acceptor::OnEnd(Operation* op) {
  auto* self = static_cast<Acceptor*>(op->context);
  self->armed_ = false;
  if (op->result < 0 && !op->cancel_requested) self->error_ = OpStatus(*op);
  self->Wake();
}

Task<StatusOr<Accepted>> Acceptor::Next(OpOptions o) {
  if (!multishot_) co_return co_await loop_.Accept(fd_, o);
  while (ready_.empty()) {
    if (!error_.ok()) {
      Status e = std::move(error_);
      error_ = absl::OkStatus();
      co_return e;  // reported once; the next call re-arms
    }
    if (!armed_) Arm();
    if (!armed_) continue;
    Status s = co_await ItemWait(*this, o);
    if (!s.ok()) co_return s;
  }
  Accepted a;
  a.fd = ready_.front();
  ready_.pop_front();
  a.peer_len = sizeof(a.peer);
  if (::getpeername(a.fd, reinterpret_cast<sockaddr*>(&a.peer), &a.peer_len) < 0) {
    a.peer_len = 0;
  }
  co_return a;
}

Task<void> Acceptor::Close() {
  if (armed_) {
    loop_.CancelOp(&multi_, false);
    while (armed_) (void)co_await ItemWait(*this, {});
  }
  for (int fd : ready_) ::close(fd);
  ready_.clear();
}

}  // namespace ambit::io
