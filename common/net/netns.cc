#include "common/net/netns.h"

#include <cstdlib>

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <string>

#include "common/net/cat.h"
#include "common/base/log.h"

namespace ambit::net {
namespace {

// <linux/nsfs.h>: NS_GET_NSTYPE = _IO(0xb7, 0x3).
constexpr unsigned long kNsGetNsType = _IO(0xb7, 0x3);
constexpr long kNsfsMagic = 0x6e736673;

Status CheckIsNetns(int fd, std::string_view what) {
  int type = ::ioctl(fd, kNsGetNsType);
  if (type >= 0) {
    if (type == CLONE_NEWNET) return absl::OkStatus();
    return absl::InvalidArgumentError(
        Cat(what, " is a namespace but not a network namespace"));
  }
  struct statfs fs {};
  if (::fstatfs(fd, &fs) == 0 &&
      (static_cast<long>(fs.f_type) == kNsfsMagic ||
       static_cast<long>(fs.f_type) == PROC_SUPER_MAGIC)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      Cat(what, " is not a network namespace (want /var/run/netns/<name> or "
                         "/proc/<pid>/ns/net)"));
}

Status EnterNetns(const NetnsHandle& ns) {
  if (::setns(ns.fd(), CLONE_NEWNET) != 0) {
    int err = errno;
    return ErrnoError(err, Cat("setns into ", ns.description(),
                                        err == EPERM ? " (needs CAP_SYS_ADMIN)" : ""));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<Fd> CreateSocketOnThisThread(const NetnsHandle& home, const NetnsHandle& target,
                                      const std::function<StatusOr<Fd>()>& make) {
  if (target.SameAs(home)) return make();
  RETURN_IF_ERROR(EnterNetns(target));
  StatusOr<Fd> fd = make();
  Status back = EnterNetns(home);
  if (!back.ok()) {
    AMBIT_LOG(kError, "netns", "cannot return to the thread's own netns: {}", back.ToString());
    base::ProcessLogger().Flush();
    std::abort();
  }
  return fd;
}

StatusOr<NetnsHandle> NetnsHandle::Open(std::string_view path_or_name) {
  if (path_or_name.empty()) return absl::InvalidArgumentError("empty netns path");
  std::string path(path_or_name);
  if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return ErrnoError(err, Cat("open netns ", path,
                                        err == ENOENT ? " (no such netns: check `ip netns list`)"
                                                      : ""));
  }
  ASSIGN_OR_RETURN(NetnsHandle h, FromFd(Fd(fd)));
  h.description_ = path;
  return h;
}

StatusOr<NetnsHandle> NetnsHandle::FromFd(Fd fd) {
  if (!fd.valid()) return absl::InvalidArgumentError("netns fd is empty");
  std::string what = Cat("fd ", fd.get());
  RETURN_IF_ERROR(CheckIsNetns(fd.get(), what));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, Cat("fstat netns ", what));
  NetnsHandle h;
  h.fd_ = std::move(fd);
  h.id_ = Id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  h.description_ = std::move(what);
  return h;
}

StatusOr<NetnsHandle> NetnsHandle::Current() {
  return Open("/proc/thread-self/ns/net");
}

StatusOr<NetnsHandle> NetnsHandle::Dup() const {
  ASSIGN_OR_RETURN(Fd d, fd_.Dup());
  NetnsHandle h;
  h.fd_ = std::move(d);
  h.id_ = id_;
  h.description_ = description_;
  return h;
}

Status RunInNetns(const NetnsHandle& ns, const std::function<Status()>& fn) {
  Status result;
  std::thread t([&] {
    result = EnterNetns(ns);
    if (result.ok()) result = fn();
  });
  t.join();
  return result;
}

StatusOr<Fd> CreateSocketInNetns(const NetnsHandle& ns,
                                 const std::function<StatusOr<Fd>()>& make) {
  Fd out;
  RETURN_IF_ERROR(RunInNetns(ns, [&]() -> Status {
    ASSIGN_OR_RETURN(out, make());
    return absl::OkStatus();
  }));
  return out;
}

StatusOr<Fd> CreateSocketInNetns(std::string_view netns_path,
                                 const std::function<StatusOr<Fd>()>& make) {
  ASSIGN_OR_RETURN(NetnsHandle ns, NetnsHandle::Open(netns_path));
  return CreateSocketInNetns(ns, make);
}

NetnsRunner::NetnsRunner() : home_(NetnsHandle::Current()) {
  if (!home_.ok()) {
    AMBIT_LOG(kWarn, "netns", "netns helper cannot open its own netns: {}",
              home_.status().ToString());
  }
  thread_ = std::thread([this] { Loop(); });
}

NetnsRunner::~NetnsRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void NetnsRunner::Post(const NetnsHandle& ns, MakeFn make, DoneFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Request{ns.Dup(), std::move(make), std::move(done)});
  }
  cv_.notify_one();
}

StatusOr<Fd> NetnsRunner::Run(const NetnsHandle& ns, MakeFn make) {
  std::promise<StatusOr<Fd>> promise;
  auto future = promise.get_future();
  Post(ns, std::move(make), [&promise](StatusOr<Fd> r) { promise.set_value(std::move(r)); });
  return future.get();
}

uint64_t NetnsRunner::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

StatusOr<Fd> NetnsRunner::Serve(Request& r) {
  if (!r.ns.ok()) return r.ns.status();
  RETURN_IF_ERROR(EnterNetns(*r.ns));
  StatusOr<Fd> result = r.make();
  // Go home so this thread does not pin the pod's netns after it is deleted.
  if (home_.ok()) {
    Status back = EnterNetns(*home_);
    if (!back.ok()) AMBIT_LOG(kError, "netns", "netns helper: {}", back.ToString());
  }
  return result;
}

void NetnsRunner::Loop() {
  for (;;) {
    Request r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    StatusOr<Fd> result = Serve(r);
    {
      // Counted before `done` runs: a caller woken by it sees its request
      // among the completed ones.
      std::lock_guard<std::mutex> lock(mu_);
      ++completed_;
    }
    if (r.done) r.done(std::move(result));
  }
}

}  // namespace ambit::net
