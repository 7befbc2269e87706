// io_uring backend. Operations become SQEs whose user_data is the Operation's address
// (tag bits in the low 3 bits). A per-op timeout is an IORING_OP_LINK_TIMEOUT linked to
// the operation; cancellation is IORING_OP_ASYNC_CANCEL by user_data. An Operation is
// reported done only when every CQE that names it has arrived.
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/io/backend.h"

namespace ambit::io {
namespace {

constexpr uint64_t kTagMask = 7;
constexpr uint64_t kTagOp = 0;       // the operation itself
constexpr uint64_t kTagTimeout = 1;  // its linked timeout
constexpr uint64_t kTagPoll = 2;     // readiness wait before retrying a read/write
constexpr uint64_t kIgnore = 0;      // cancel requests: their CQE carries nothing we need

uint64_t Tag(Operation* op, uint64_t tag) { return reinterpret_cast<uint64_t>(op) | tag; }

class UringBackend final : public Backend {
 public:
  explicit UringBackend(CompletionSink* sink) : sink_(sink) {}
  ~UringBackend() override {
    if (initialized_) io_uring_queue_exit(&ring_);
  }

  Status Init(const UringConfig& config);

  BackendKind kind() const override { return BackendKind::kUring; }
  bool KernelTimeouts(OpKind kind) const override {
    // Reads/writes may be retried after a poll, which would drop a linked timeout.
    return kind != OpKind::kRead && kind != OpKind::kWrite && kind != OpKind::kAcceptMulti;
  }
  void ForgetFd(int) override {}
  bool Submit(Operation* op, bool allow_inline) override;
  void Cancel(Operation* op) override;
  void Poll(std::optional<base::Duration> wait) override;

 private:
  io_uring_sqe* GetSqe();
  void Prep(io_uring_sqe* sqe, Operation* op);
  void PrepPoll(Operation* op);
  void Handle(uint64_t user_data, int32_t res, uint32_t flags);
  void Done(Operation* op) { sink_->Completed(op); }

  CompletionSink* sink_;
  io_uring ring_{};
  bool initialized_ = false;
  struct Cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };
  std::vector<Cqe> batch_;
};

Status UringBackend::Init(const UringConfig& config) {
  if (config.fail_setup_for_test) {
    return absl::PermissionDeniedError(
        "io_uring_queue_init: Operation not permitted (failure injected for test)");
  }
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = config.entries * 4;
  int rc = io_uring_queue_init_params(config.entries, &ring_, &p);
  if (rc == -EINVAL) {  // older kernel: drop the optional flags
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = config.entries * 4;
    rc = io_uring_queue_init_params(config.entries, &ring_, &p);
  }
  if (rc < 0) {
    return absl::Status(absl::ErrnoToStatusCode(-rc),
                        absl::StrCat("io_uring_queue_init: ", strerror(-rc),
                                     " (seccomp profile or kernel.io_uring_disabled?)"));
  }
  initialized_ = true;
  const unsigned need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
  if ((p.features & need) != need) {
    return absl::FailedPreconditionError(
        "io_uring lacks IORING_FEAT_NODROP/EXT_ARG (kernel older than 5.11)");
  }
  batch_.reserve(256);
  return absl::OkStatus();
}

io_uring_sqe* UringBackend::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void UringBackend::Prep(io_uring_sqe* sqe, Operation* op) {
  switch (op->kind) {
    case OpKind::kAccept:
      io_uring_prep_accept(sqe, op->fd, op->addr, &op->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OpKind::kAcceptMulti:
      io_uring_prep_multishot_accept(sqe, op->fd, nullptr, nullptr,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OpKind::kConnect:
      io_uring_prep_connect(sqe, op->fd, op->addr, op->addrlen);
      break;
    case OpKind::kRecv:
      io_uring_prep_recv(sqe, op->fd, op->buf, op->len, 0);
      break;
    case OpKind::kSend:
      io_uring_prep_send(sqe, op->fd, op->buf, op->len, MSG_NOSIGNAL);
      break;
    case OpKind::kSendMsg:
      io_uring_prep_sendmsg(sqe, op->fd, op->msg, MSG_NOSIGNAL);
      break;
    case OpKind::kRead:
      io_uring_prep_read(sqe, op->fd, op->buf, static_cast<unsigned>(op->len), -1);
      break;
    case OpKind::kWrite:
      io_uring_prep_write(sqe, op->fd, op->buf, static_cast<unsigned>(op->len), -1);
      break;
    case OpKind::kShutdown:
      io_uring_prep_shutdown(sqe, op->fd, op->how);
      break;
    case OpKind::kClose:
      io_uring_prep_close(sqe, op->fd);
      break;
    case OpKind::kPollIn:
      io_uring_prep_poll_add(sqe, op->fd, POLLIN | POLLRDHUP);
      break;
    case OpKind::kSleep:
    case OpKind::kWait:
      io_uring_prep_nop(sqe);  // never used: handled by the loop
      break;
  }
}

bool UringBackend::Submit(Operation* op, bool allow_inline) {
  // IORING_OP_SHUTDOWN is always punted to an io-wq thread (a wake-up and two
  // context switches per connection); shutdown(2) of a socket never blocks.
  if (op->kind == OpKind::kShutdown && allow_inline && !op->linked_timeout) {
    op->result = ::shutdown(op->fd, op->how) < 0 ? -errno : 0;
    return true;
  }
  if (op->linked_timeout && io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* sqe = GetSqe();
  Prep(sqe, op);
  io_uring_sqe_set_data64(sqe, Tag(op, kTagOp));
  op->pending_cqes = 1;
  if (op->linked_timeout) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = GetSqe();
    io_uring_prep_link_timeout(t, &op->ts, 0);
    io_uring_sqe_set_data64(t, Tag(op, kTagTimeout));
    op->pending_cqes = 2;
  }
  return false;  // completions always arrive through the ring
}

void UringBackend::PrepPoll(Operation* op) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_poll_add(sqe, op->fd, op->kind == OpKind::kWrite ? POLLOUT : POLLIN);
  io_uring_sqe_set_data64(sqe, Tag(op, kTagPoll));
}

void UringBackend::Cancel(Operation* op) {
  io_uring_sqe* sqe = GetSqe();
  // Matches the op's SQE, or the poll it is waiting on before a retry.
  io_uring_prep_cancel64(sqe, Tag(op, op->uring_polling ? kTagPoll : kTagOp), 0);
  io_uring_sqe_set_data64(sqe, kIgnore);
}

void UringBackend::Handle(uint64_t user_data, int32_t res, uint32_t flags) {
  if (user_data == kIgnore || user_data == LIBURING_UDATA_TIMEOUT) return;
  auto* op = reinterpret_cast<Operation*>(user_data & ~kTagMask);
  switch (user_data & kTagMask) {
    case kTagTimeout:
      if (res == -ETIME) op->timed_out = true;
      break;
    case kTagPoll:
      op->uring_polling = false;
      if (res < 0) {
        op->result = res;
        break;
      }
      {
        io_uring_sqe* sqe = GetSqe();
        Prep(sqe, op);
        io_uring_sqe_set_data64(sqe, Tag(op, kTagOp));
      }
      return;
    default:
      if (op->kind == OpKind::kAcceptMulti) {
        if (res >= 0 && op->on_item != nullptr) op->on_item(op, res);
        if (flags & IORING_CQE_F_MORE) return;  // still armed
        op->result = res < 0 ? res : 0;
        break;
      }
      if (res == -EAGAIN && (op->kind == OpKind::kRead || op->kind == OpKind::kWrite) &&
          !op->cancel_requested) {
        op->uring_polling = true;  // O_NONBLOCK file: wait for readiness, then retry
        PrepPoll(op);
        return;
      }
      op->result = res;
      break;
  }
  if (--op->pending_cqes == 0) Done(op);
}

void UringBackend::Poll(std::optional<base::Duration> wait) {
  io_uring_cqe* cqe = nullptr;
  if (wait.has_value() && *wait <= base::Duration(0)) {
    io_uring_submit(&ring_);
  } else if (!wait.has_value()) {
    io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(*wait).count();
    ts.tv_nsec = (*wait % std::chrono::seconds(1)).count();
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  for (int round = 0; round < 8; ++round) {
    batch_.clear();
    unsigned head = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      batch_.push_back({cqe->user_data, cqe->res, cqe->flags});
    }
    io_uring_cq_advance(&ring_, static_cast<unsigned>(batch_.size()));
    if (batch_.empty()) break;
    for (const Cqe& c : batch_) Handle(c.user_data, c.res, c.flags);
    // Overflowed completions are flushed into the CQ by the next enter.
    if (!io_uring_cq_has_overflow(&ring_)) break;
    io_uring_get_events(&ring_);
  }
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeUringBackend(CompletionSink* sink,
                                                     const UringConfig& config) {
  auto backend = std::make_unique<UringBackend>(sink);
  RETURN_IF_ERROR(backend->Init(config));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace ambit::io
