// GrpcRlsTransport: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
// over plaintext gRPC to one service (host:port), for the waypoint's global
// rate limits (waypoint/proxy/ratelimit_filter.h). Workers call
// ShouldRateLimit from their loops; calls are async on one CompletionQueue
// drained by this transport's own thread, which runs each `done` (the filter
// posts the answer back to the request's worker). Each call has its own
// deadline; nothing is retried (fail-open or deny is the filter's choice).
//
// RlsClients keeps one transport per target across config changes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "waypoint/proxy/ratelimit_filter.h"

namespace ambit::waypoint {

std::shared_ptr<RlsTransport> MakeGrpcRlsTransport(const std::string& target);

class RlsClients {
 public:
  // Shared transport for `target`; made on first use.
  std::shared_ptr<RlsTransport> Get(const std::string& target);
  // Drops transports no policy uses any more (states in flight keep theirs).
  void Retain(const std::vector<std::string>& targets);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RlsTransport>> by_target_;
};

}  // namespace ambit::waypoint
