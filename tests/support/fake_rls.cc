// ambit-fake-rls: a RateLimitService (envoy.service.ratelimit.v3,
// ShouldRateLimit) for the waypoint's global rate limit tests, speaking the
// real proto. It answers OVER_LIMIT when a request carries a descriptor
// entry named by --over-limit key=value, else OK, with one descriptor status
// (limit --limit per second, remaining) so x-ratelimit-* can be checked.
// --delay-ms makes every answer late (timeout tests). Prints "ready <addr>"
// on stdout once serving; SIGTERM/SIGINT stop it.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "proto/rls.grpc.pb.h"

namespace {

namespace pb = ::envoy::service::ratelimit::v3;

std::atomic<bool> g_stop{false};

class Service final : public pb::RateLimitService::Service {
 public:
  Service(std::vector<std::pair<std::string, std::string>> over, int delay_ms, uint32_t limit)
      : over_(std::move(over)), delay_ms_(delay_ms), limit_(limit) {}

  grpc::Status ShouldRateLimit(grpc::ServerContext*, const pb::RateLimitRequest* req,
                               pb::RateLimitResponse* resp) override {
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    bool over = false;
    for (const auto& d : req->descriptors()) {
      for (const auto& e : d.entries()) {
        for (const auto& [k, v] : over_) over = over || (e.key() == k && e.value() == v);
      }
    }
    resp->set_overall_code(over ? pb::RateLimitResponse::OVER_LIMIT : pb::RateLimitResponse::OK);
    auto* st = resp->add_statuses();
    st->set_code(over ? pb::RateLimitResponse::OVER_LIMIT : pb::RateLimitResponse::OK);
    st->mutable_current_limit()->set_requests_per_unit(limit_);
    st->mutable_current_limit()->set_unit(pb::RateLimitResponse::RateLimit::SECOND);
    st->set_limit_remaining(over ? 0 : limit_ - 1);
    st->mutable_duration_until_reset()->set_seconds(1);
    auto* h = resp->add_response_headers_to_add();
    h->set_key("x-fake-rls");
    h->set_value(req->domain());
    return grpc::Status::OK;
  }

 private:
  std::vector<std::pair<std::string, std::string>> over_;
  int delay_ms_;
  uint32_t limit_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:18081";
  std::vector<std::pair<std::string, std::string>> over;
  int delay_ms = 0;
  uint32_t limit = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--listen") {
      listen = value;
    } else if (flag == "--over-limit") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "--over-limit wants key=value\n");
        return 2;
      }
      over.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (flag == "--delay-ms") {
      delay_ms = std::stoi(value);
    } else if (flag == "--limit") {
      limit = static_cast<uint32_t>(std::stoul(value));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  Service service(over, delay_ms, limit);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::printf("ready %s\n", listen.c_str());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
