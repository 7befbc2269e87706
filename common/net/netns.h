// Network namespaces: a handle on a pod's netns and running work inside it.
//
// A socket keeps the netns it was created in, so only socket creation needs
// setns(2). setns changes the calling *thread's* netns, so we never call it on
// a worker or the main thread: a one-shot helper thread (RunInNetns) or the
// long-lived NetnsRunner thread (DESIGN.md §4 "netns helper") does it.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/base/status.h"
#include "common/net/fd.h"

namespace ambit::net {

// An open netns (an nsfs file such as /var/run/netns/pod-a or
// /proc/<pid>/ns/net, or an fd received over ZDS). Identity is inode + dev of
// the nsfs file: two handles on the same namespace compare equal.
class NetnsHandle {
 public:
  struct Id {
    uint64_t dev = 0;
    uint64_t ino = 0;
    friend bool operator==(const Id&, const Id&) = default;
  };

  // Opens a path; a bare name ("pod-a") means /var/run/netns/<name>.
  static StatusOr<NetnsHandle> Open(std::string_view path_or_name);
  // Takes ownership of an fd (e.g. from SCM_RIGHTS); checks it is a netns.
  static StatusOr<NetnsHandle> FromFd(Fd fd);
  // The calling thread's current netns.
  static StatusOr<NetnsHandle> Current();

  int fd() const { return fd_.get(); }
  const Id& id() const { return id_; }
  const std::string& description() const { return description_; }
  StatusOr<NetnsHandle> Dup() const;
  bool SameAs(const NetnsHandle& other) const { return id_ == other.id_; }

 private:
  Fd fd_;
  Id id_;
  std::string description_;  // path or "fd N", for error messages
};

// Runs `fn` on a short-lived thread that first enters `ns`. The result and any
// sockets it created (which stay in `ns`) are handed back.
Status RunInNetns(const NetnsHandle& ns, const std::function<Status()>& fn);

// Creates a socket inside `target` on the calling thread: setns there, run
// `make`, setns back to `home` (the thread's own netns, NetnsHandle::Current()
// taken once at thread start). No thread hop, so it suits per-connection use
// on a worker (a few µs). A thread that cannot return home would create its
// later sockets in the wrong namespace, so that failure aborts the process.
StatusOr<Fd> CreateSocketOnThisThread(const NetnsHandle& home, const NetnsHandle& target,
                                      const std::function<StatusOr<Fd>()>& make);

// One-shot: creates a socket inside `ns` with `make` and returns it.
StatusOr<Fd> CreateSocketInNetns(const NetnsHandle& ns, const std::function<StatusOr<Fd>()>& make);
StatusOr<Fd> CreateSocketInNetns(std::string_view netns_path,
                                 const std::function<StatusOr<Fd>()>& make);

// The long-lived netns helper thread: serves requests from a queue, entering
// each request's netns and returning to its own netns afterwards. `done` runs
// on the helper thread (callers post the result to their own loop).
class NetnsRunner {
 public:
  using MakeFn = std::function<StatusOr<Fd>()>;
  using DoneFn = std::function<void(StatusOr<Fd>)>;

  NetnsRunner();
  ~NetnsRunner();  // finishes queued requests, then joins
  NetnsRunner(const NetnsRunner&) = delete;
  NetnsRunner& operator=(const NetnsRunner&) = delete;

  // Queues a request. The handle is duplicated, so the caller may drop it.
  void Post(const NetnsHandle& ns, MakeFn make, DoneFn done);
  // Convenience: Post and wait for the result.
  StatusOr<Fd> Run(const NetnsHandle& ns, MakeFn make);

  uint64_t completed() const;

 private:
  struct Request {
    StatusOr<NetnsHandle> ns;
    MakeFn make;
    DoneFn done;
  };
  void Loop();
  StatusOr<Fd> Serve(Request& r);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  uint64_t completed_ = 0;
  StatusOr<NetnsHandle> home_;  // the netns to return to after each request
  std::thread thread_;
};

}  // namespace ambit::net
