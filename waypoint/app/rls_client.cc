#include "waypoint/app/rls_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <set>
#include <thread>

#include "common/base/log.h"
#include "proto/rls.grpc.pb.h"

namespace ambit::waypoint {

namespace {

namespace pb = ::envoy::service::ratelimit::v3;

uint64_t UnitSeconds(pb::RateLimitResponse::RateLimit::Unit u) {
  using U = pb::RateLimitResponse::RateLimit;
  switch (u) {
    case U::SECOND: return 1;
    case U::MINUTE: return 60;
    case U::HOUR: return 3600;
    case U::DAY: return 86400;
    case U::WEEK: return 7 * 86400;
    case U::MONTH: return 30 * 86400;
    case U::YEAR: return 365 * 86400;
    default: return 0;
  }
}

RlsResponse FromProto(const pb::RateLimitResponse& r) {
  RlsResponse out;
  switch (r.overall_code()) {
    case pb::RateLimitResponse::OK: out.code = RlsResponse::Code::kOk; break;
    case pb::RateLimitResponse::OVER_LIMIT: out.code = RlsResponse::Code::kOverLimit; break;
    default: out.code = RlsResponse::Code::kUnknown; break;
  }
  for (const auto& h : r.response_headers_to_add()) {
    std::string k = h.key();
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    out.response_headers.emplace_back(std::move(k), h.value());
  }
  // The status with the fewest requests left is the one a client must heed.
  for (const auto& s : r.statuses()) {
    if (!s.has_current_limit()) continue;
    if (out.has_limit && s.limit_remaining() >= out.remaining) continue;
    out.has_limit = true;
    out.limit = s.current_limit().requests_per_unit();
    out.remaining = s.limit_remaining();
    out.window_seconds = UnitSeconds(s.current_limit().unit());
    out.reset = std::chrono::seconds(s.duration_until_reset().seconds()) +
                std::chrono::nanoseconds(s.duration_until_reset().nanos());
  }
  return out;
}

class GrpcRlsTransport final : public RlsTransport {
 public:
  explicit GrpcRlsTransport(std::string target)
      : target_(std::move(target)),
        channel_(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials())),
        stub_(pb::RateLimitService::NewStub(channel_)),
        thread_([this] { Drain(); }) {}

  ~GrpcRlsTransport() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (Call* c : active_) c->ctx.TryCancel();
    }
    cq_.Shutdown();
    thread_.join();
  }

  const std::string& target() const override { return target_; }

  void ShouldRateLimit(RlsRequest request, base::Duration timeout, Done done) override {
    pb::RateLimitRequest req;
    req.set_domain(request.domain);
    req.set_hits_addend(1);
    for (const auto& d : request.descriptors) {
      auto* pd = req.add_descriptors();
      for (const auto& [k, v] : d) {
        auto* e = pd->add_entries();
        e->set_key(k);
        e->set_value(v);
      }
    }
    auto* c = new Call;
    c->done = std::move(done);
    c->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      delete c;  // the waiting request times out on its own bound
      return;
    }
    active_.insert(c);
    c->reader = stub_->PrepareAsyncShouldRateLimit(&c->ctx, req, &cq_);
    c->reader->StartCall();
    c->reader->Finish(&c->resp, &c->status, c);
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    pb::RateLimitResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<pb::RateLimitResponse>> reader;
    Done done;
  };

  void Drain() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      auto* c = static_cast<Call*>(tag);
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_.erase(c);
        stopping = stopping_;
      }
      if (!stopping) {
        if (ok && c->status.ok()) {
          c->done(FromProto(c->resp));
        } else {
          c->done(absl::Status(static_cast<absl::StatusCode>(c->status.error_code()),
                               "ShouldRateLimit to " + target_ + ": " +
                                   c->status.error_message()));
        }
      }
      delete c;
    }
  }

  const std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::RateLimitService::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::mutex mu_;
  bool stopping_ = false;
  std::set<Call*> active_;
  std::thread thread_;  // last: starts after everything it reads
};

}  // namespace

std::shared_ptr<RlsTransport> MakeGrpcRlsTransport(const std::string& target) {
  return std::make_shared<GrpcRlsTransport>(target);
}

std::shared_ptr<RlsTransport> RlsClients::Get(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& t = by_target_[target];
  if (!t) {
    AMBIT_LOG(kInfo, "ratelimit", "rate limit service client for {}", target);
    t = MakeGrpcRlsTransport(target);
  }
  return t;
}

void RlsClients::Retain(const std::vector<std::string>& targets) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_target_.begin(); it != by_target_.end();) {
    if (std::find(targets.begin(), targets.end(), it->first) == targets.end()) {
      it = by_target_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ambit::waypoint
