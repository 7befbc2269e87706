// ZdsClient: connects to the node agent's ZDS socket (istio-cni → agent pod
// handoff, ISTIO-COMPAT §4.1), says hello, then answers every WorkloadRequest
// in strict lockstep. Runs its own blocking I/O thread; with `handler_loop`
// set, handler calls are posted to that loop (the agent's control loop) and
// the I/O thread waits for them, so the loop thread never blocks on ZDS.
//
//   MyHandler h;                                  // implements ZdsHandler
//   ZdsClient zds({.uds_path = flags.inpod_uds, .handler_loop = &control}, h);
//   zds.Start();  ...  zds.ready();  zds.WorkloadStateJson();  zds.Stop();
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/capture/zds_session.h"
#include "common/base/clock.h"
#include "common/io/loop.h"
#include "common/net/fd.h"

namespace ambit::agent::capture {

inline constexpr char kDefaultInpodUds[] = "/var/run/ztunnel/ztunnel.sock";

struct ZdsClientOptions {
  std::string uds_path = kDefaultInpodUds;  // "@name" = abstract socket
  base::Duration backoff_initial = std::chrono::milliseconds(10);
  base::Duration backoff_max = std::chrono::seconds(15);
  base::Duration retry_interval = std::chrono::seconds(5);  // failed adds
  io::Loop* handler_loop = nullptr;  // nullptr: handler runs on the I/O thread
  base::Clock* clock = nullptr;      // nullptr: RealClock (retry scheduling)
};

struct ZdsClientStats {
  ZdsCounters session;
  uint64_t connects = 0;          // successful connects
  uint64_t connect_failures = 0;  // connect or hello failed
};

class ZdsClient {
 public:
  // `handler` must outlive the client (and, with handler_loop, the loop's
  // posted work).
  ZdsClient(ZdsClientOptions options, ZdsHandler& handler);
  ~ZdsClient();  // Stop()
  ZdsClient(const ZdsClient&) = delete;
  ZdsClient& operator=(const ZdsClient&) = delete;

  void Start();  // starts the I/O thread; returns at once
  void Stop();   // thread-safe, idempotent; joins the I/O thread

  bool connected() const { return connected_.load(); }
  bool ready() const { return session_.ready(); }  // readiness (§3.3)
  ZdsClientStats stats() const;
  std::vector<ZdsPodEntry> Pods() const { return session_.Pods(); }
  std::string WorkloadStateJson() const { return session_.WorkloadStateJson(); }

 private:
  class LoopHandler;
  void Run();
  bool Serve(int fd);                         // false: ended by a protocol error
  bool SleepInterruptible(base::Duration d);  // false when stopping

  ZdsClientOptions options_;
  std::unique_ptr<ZdsHandler> loop_handler_;  // set when handler_loop is used
  ZdsSession session_;
  net::Fd wake_fd_;  // eventfd: Stop() wakes the I/O thread
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> connect_failures_{0};
  std::thread thread_;
};

}  // namespace ambit::agent::capture
