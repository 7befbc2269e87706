// AcceptErrors: what a worker's accept loops do when accept(2) fails.
//
// Out of file descriptors (EMFILE/ENFILE) is the one that matters: the
// listener stays readable with connections queued that we cannot take, so a
// naive loop either spins or leaves clients hanging in the accept queue. We
// keep one reserve fd per worker; on EMFILE we give it up, accept one queued
// connection, reset it (the client sees a clean refusal instead of a hang),
// and take the reserve back. Each error is counted in
// ambit_accept_errors_total{reason} and logged at most every few seconds.
// Loop thread only.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/metrics/registry.h"

namespace ambit::agent {

class AcceptErrors {
 public:
  AcceptErrors(metrics::Registry& registry, size_t shard);
  ~AcceptErrors();
  AcceptErrors(const AcceptErrors&) = delete;
  AcceptErrors& operator=(const AcceptErrors&) = delete;

  // After a failed accept on `listen_fd` of pod `uid`. Returns true when the
  // caller should back off before accepting again (nothing could be shed).
  bool OnError(int listen_fd, const std::string& uid, const Status& error, base::MonoTime now);

  // "emfile", "enfile", "nomem" or "other" (the metric's reason label).
  static const char* Reason(const Status& error);
  uint64_t shed() const { return shed_; }

 private:
  // Gives up the reserve fd, accepts and resets one queued connection, then
  // takes the reserve back. True if a connection was shed.
  bool ShedOne(int listen_fd);
  void Report(const std::string& uid, const Status& error, base::MonoTime now);

  int reserve_ = -1;
  metrics::Counter* emfile_;
  metrics::Counter* enfile_;
  metrics::Counter* nomem_;
  metrics::Counter* other_;
  metrics::Counter* shed_counter_;
  uint64_t shed_ = 0;
  uint64_t unreported_ = 0;
  uint64_t unreported_shed_ = 0;
  bool reported_once_ = false;
  base::MonoTime last_report_{};
};

}  // namespace ambit::agent
