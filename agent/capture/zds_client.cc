#include "agent/capture/zds_client.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "agent/capture/zds_socket.h"
#include "common/base/log.h"
#include "common/net/cat.h"

namespace ambit::agent::capture {
namespace {

using std::chrono::milliseconds;

// Longest single wait, so a missed wake-up costs at most this much.
constexpr milliseconds kMaxPoll(1000);

milliseconds ToMs(base::Duration d) {
  auto ms = std::chrono::ceil<milliseconds>(d);
  return std::clamp(ms, milliseconds(0), kMaxPoll);
}

}  // namespace

// Runs each handler call on the control loop and waits for it (on the I/O
// thread). Gives up when the client stops, so Stop() never deadlocks against a
// loop that no longer runs; the posted work then skips the call.
class ZdsClient::LoopHandler final : public ZdsHandler {
 public:
  LoopHandler(io::Loop& loop, ZdsHandler& inner, const std::atomic<bool>& stopping)
      : loop_(loop), inner_(inner), stopping_(stopping) {}

  Status OnPodAdded(const PodAdded& pod) override {
    StatusOr<net::NetnsHandle> ns = pod.netns.Dup();
    if (!ns.ok()) return ns.status();
    auto owned = std::make_shared<net::NetnsHandle>(std::move(*ns));
    return Call([this, owned, uid = pod.uid, name = pod.name, ns_name = pod.namespace_,
                 sa = pod.service_account] {
      return inner_.OnPodAdded(PodAdded{uid, name, ns_name, sa, *owned});
    });
  }
  Status OnPodRemoved(const PodRemoved& pod) override {
    return Call([this, pod] { return inner_.OnPodRemoved(pod); });
  }
  void OnSnapshotDone(const SnapshotDone& done) override {
    (void)Call([this, done] {
      inner_.OnSnapshotDone(done);
      return absl::OkStatus();
    });
  }

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> result;
    bool abandoned = false;
  };

  template <typename Fn>
  Status Call(Fn fn) {
    auto slot = std::make_shared<Slot>();
    loop_.Post([slot, fn = std::move(fn)]() mutable {
      {
        std::lock_guard lock(slot->mu);
        if (slot->abandoned) return;
      }
      Status s = fn();
      std::lock_guard lock(slot->mu);
      slot->result = std::move(s);
      slot->cv.notify_all();
    });
    std::unique_lock lock(slot->mu);
    while (!slot->result) {
      if (stopping_.load()) {
        slot->abandoned = true;
        return absl::CancelledError("ZDS client stopping");
      }
      slot->cv.wait_for(lock, milliseconds(50));
    }
    return *slot->result;
  }

  io::Loop& loop_;
  ZdsHandler& inner_;
  const std::atomic<bool>& stopping_;
};

namespace {
ZdsHandler& PickHandler(std::unique_ptr<ZdsHandler>& loop_handler, ZdsHandler& direct) {
  return loop_handler ? *loop_handler : direct;
}
}  // namespace

ZdsClient::ZdsClient(ZdsClientOptions options, ZdsHandler& handler)
    : options_(std::move(options)),
      loop_handler_(options_.handler_loop
                        ? std::make_unique<LoopHandler>(*options_.handler_loop, handler, stopping_)
                        : nullptr),
      session_(PickHandler(loop_handler_, handler),
               options_.clock ? *options_.clock : base::RealClock::Instance(),
               options_.retry_interval),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  AMBIT_ASSERT(wake_fd_.valid());
}

ZdsClient::~ZdsClient() { Stop(); }

void ZdsClient::Start() {
  AMBIT_ASSERT(!thread_.joinable());
  thread_ = std::thread([this] { Run(); });
}

void ZdsClient::Stop() {
  stopping_.store(true);
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)n;
  if (thread_.joinable()) thread_.join();
}

ZdsClientStats ZdsClient::stats() const {
  return {session_.counters(), connects_.load(), connect_failures_.load()};
}

bool ZdsClient::SleepInterruptible(base::Duration d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (!stopping_.load()) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= base::Duration::zero()) return true;
    // The wake eventfd never becomes "unreadable" once written, so poll it
    // as the data fd too: readable = stop.
    Status s = ZdsWaitReadable(wake_fd_.get(), ToMs(left));
    if (s.ok()) return false;
  }
  return false;
}

void ZdsClient::Run() {
  base::Duration backoff = options_.backoff_initial;
  while (!stopping_.load()) {
    StatusOr<net::Fd> fd = ZdsConnect(options_.uds_path);
    if (fd.ok()) {
      // Before the hello, so whoever sees the hello also sees the counters.
      connects_.fetch_add(1);
      connected_.store(true);
      session_.OnConnected();
    }
    Status hello = fd.ok() ? ZdsSend(fd->get(), EncodeZdsHello()) : fd.status();
    if (!hello.ok()) {
      connected_.store(false);
      connect_failures_.fetch_add(1);
      AMBIT_LOG(kWarn, "zds",
                "cannot reach the node agent at {}: {}; retrying in {} ms "
                "(is the node agent healthy?)",
                options_.uds_path, std::string(hello.message()),
                std::chrono::duration_cast<milliseconds>(backoff).count());
      if (!SleepInterruptible(backoff)) break;
      backoff = std::min(backoff * 2, options_.backoff_max);
      continue;
    }
    AMBIT_LOG(kInfo, "zds", "connected to the node agent at {}", options_.uds_path);
    bool clean = Serve(fd->get());
    connected_.store(false);
    // A node agent that keeps sending bad messages is not hammered.
    backoff = clean ? options_.backoff_initial : std::min(backoff * 2, options_.backoff_max);
    if (!SleepInterruptible(backoff)) break;
  }
}

bool ZdsClient::Serve(int fd) {
  while (!stopping_.load()) {
    std::optional<base::MonoTime> next_retry = session_.RetryDue();
    base::Clock& clock = options_.clock ? *options_.clock : base::RealClock::Instance();
    milliseconds wait = next_retry ? ToMs(*next_retry - clock.Now()) : kMaxPoll;
    StatusOr<ZdsDatagram> dg = ZdsRecv(fd, wait, wake_fd_.get());
    if (absl::IsDeadlineExceeded(dg.status())) continue;
    if (absl::IsCancelled(dg.status())) return true;
    ZdsReply reply;
    if (absl::IsDataLoss(dg.status())) {
      reply = session_.TransportError(dg.status());
    } else if (!dg.ok()) {
      AMBIT_LOG(kWarn, "zds",
                "ZDS connection lost: {}; reconnecting (is the node agent "
                "healthy?)",
                std::string(dg.status().message()));
      return true;
    } else {
      reply = session_.HandleDatagram(dg->bytes, std::move(dg->fds));
    }
    Status sent = ZdsSend(fd, EncodeZdsAck(reply.ack_error));
    if (!sent.ok()) {
      AMBIT_LOG(kWarn, "zds", "sending ZDS ack: {}; reconnecting", std::string(sent.message()));
      return true;
    }
    if (reply.protocol_error) {
      AMBIT_LOG(kWarn, "zds", "dropping the ZDS connection after a protocol error; reconnecting");
      return false;
    }
  }
  return true;
}

}  // namespace ambit::agent::capture
