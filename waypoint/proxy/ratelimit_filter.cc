#include "waypoint/proxy/ratelimit_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

#include "common/base/log.h"
#include "common/io/notifier.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/filters.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

using route::DescriptorAction;

std::optional<std::string> Header(const route::RequestView::Headers* h, std::string_view name) {
  if (h == nullptr) return std::nullopt;
  std::vector<std::string_view> values;
  h->Values(name, &values);
  if (values.empty()) return std::nullopt;
  return std::string(values.front());
}

// A configured descriptor matches a generated one with the same keys in the
// same order and equal values (an empty configured value: any). The bucket
// key is the generated values joined.
bool MatchDescriptor(const route::Descriptor& want, const route::Descriptor& got,
                     std::string* key) {
  if (want.size() != got.size()) return false;
  key->clear();
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].first != got[i].first) return false;
    if (!want[i].second.empty() && want[i].second != got[i].second) return false;
    if (i > 0) key->push_back('\0');
    key->append(got[i].second);
  }
  return true;
}

uint64_t CeilSeconds(base::Duration d) {
  if (d.count() <= 0) return 0;
  return static_cast<uint64_t>((d + std::chrono::seconds(1) - base::Duration(1)) /
                               std::chrono::seconds(1));
}

void Count(metrics::CounterFamily* f, size_t shard, metrics::Labels labels) {
  if (f != nullptr) f->Get(shard, labels)->Inc();
}

LocalReply RateLimited(int status, std::string_view body, std::string_view details) {
  LocalReply r;
  r.status = status;
  r.body = std::string(body);
  r.flag = std::string(flags::kRateLimited);
  r.details = std::string(details);
  r.grpc_status = 14;  // UNAVAILABLE, Envoy's mapping of 429 unless resource-exhausted is asked
  r.headers.emplace_back("x-envoy-ratelimited", "true");
  return r;
}

void SetHeader(route::HeaderOps& ops, std::string name, std::string value) {
  for (auto& kv : ops.set) {
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  }
  ops.set.emplace_back(std::move(name), std::move(value));
}

// The RateLimitService answer, handed from the transport thread to the
// request's worker.
struct RlsWait {
  explicit RlsWait(io::Loop& loop) : notifier(loop) {}
  io::Notifier notifier;
  std::optional<StatusOr<RlsResponse>> result;
};

io::Task<StatusOr<RlsResponse>> AskRls(io::Loop& loop, RlsTransport& rls, RlsRequest req,
                                       base::Duration timeout, io::CancelScope* scope) {
  auto wait = std::make_shared<RlsWait>(loop);
  io::Loop* lp = &loop;
  rls.ShouldRateLimit(std::move(req), timeout, [wait, lp](StatusOr<RlsResponse> r) mutable {
    lp->Post([wait, r = std::move(r)]() mutable {
      wait->result = std::move(r);
      wait->notifier.Notify();
    });
  });
  // The transport's deadline is `timeout`; a little slack for the hand-off.
  Status st = co_await wait->notifier.Wait(
      {.scope = scope, .timeout = timeout + std::chrono::milliseconds(50)});
  if (!st.ok()) co_return st;
  if (!wait->result) co_return absl::InternalError("rate limit service: no answer");
  co_return std::move(*wait->result);
}

// RateLimitService failures are logged at most once a second per process
// (every one is counted): an outage must not flood the log.
bool LogAllowed(base::MonoTime now) {
  static std::atomic<int64_t> last{0};
  const int64_t t = now.time_since_epoch().count();
  int64_t prev = last.load(std::memory_order_relaxed);
  if (t - prev < std::chrono::nanoseconds(std::chrono::seconds(1)).count()) return false;
  return last.compare_exchange_strong(prev, t, std::memory_order_relaxed);
}

}  // namespace

std::vector<route::Descriptor> MakeDescriptors(
    const std::vector<std::vector<DescriptorAction>>& rules, const DescriptorInput& in) {
  std::vector<route::Descriptor> out;
  for (const auto& actions : rules) {
    route::Descriptor d;
    bool ok = true;
    for (const DescriptorAction& a : actions) {
      switch (a.kind) {
        case DescriptorAction::Kind::kRequestHeader: {
          auto v = Header(in.headers, a.header);
          if (v) {
            d.emplace_back(a.key, std::move(*v));
          } else if (!a.skip_if_absent) {
            ok = false;
          }
          break;
        }
        case DescriptorAction::Kind::kRemoteAddress:
          if (in.remote_address.empty()) ok = false;
          else d.emplace_back(a.key, std::string(in.remote_address));
          break;
        case DescriptorAction::Kind::kGenericKey:
          d.emplace_back(a.key, a.value);
          break;
        case DescriptorAction::Kind::kHeaderValueMatch: {
          bool all = true;
          for (const auto& [name, value] : a.match_headers) {
            auto v = Header(in.headers, name);
            if (!v || (!value.empty() && *v != value)) all = false;
          }
          if (all == a.expect_match) d.emplace_back(a.key, a.value);
          else ok = false;
          break;
        }
        case DescriptorAction::Kind::kSourcePrincipal:
          if (in.principal.empty()) ok = false;
          else d.emplace_back(a.key, std::string(in.principal));
          break;
        case DescriptorAction::Kind::kRouteName:
          d.emplace_back(a.key, in.route_name.empty() ? std::string("default")
                                                      : std::string(in.route_name));
          break;
      }
      if (!ok) break;
    }
    if (ok && !d.empty()) out.push_back(std::move(d));
  }
  return out;
}

RateLimiter::RateLimiter(const route::RateLimitPolicy& policy, base::MonoTime now,
                         const RateLimiter* previous, const RlsFactory& rls)
    : policy_(policy) {
  const bool same = previous != nullptr && previous->policy_.name == policy_.name;
  if (policy_.bucket) {
    if (same && previous->default_bucket_ && previous->default_bucket_->spec() == *policy_.bucket) {
      default_bucket_ = previous->default_bucket_;
    } else {
      default_bucket_ = std::make_shared<TokenBucket>(*policy_.bucket, now);
    }
  }
  for (size_t i = 0; i < policy_.descriptors.size(); ++i) {
    const route::LocalDescriptor& ld = policy_.descriptors[i];
    if (same && i < previous->descriptor_buckets_.size() &&
        previous->policy_.descriptors[i].entries == ld.entries &&
        previous->descriptor_buckets_[i]->spec() == ld.bucket) {
      descriptor_buckets_.push_back(previous->descriptor_buckets_[i]);
    } else {
      descriptor_buckets_.push_back(
          std::make_shared<BucketMap>(ld.bucket, kMaxBucketsPerDescriptor));
    }
  }
  if (policy_.global && rls) rls_ = rls(policy_.global->service);
}

RateLimiter::LocalDecision RateLimiter::CheckLocal(
    const std::vector<route::Descriptor>& descriptors, base::MonoTime now) const {
  LocalDecision out;
  auto take = [&](TokenBucket& b) {
    TokenBucket::Result r = b.Consume(now);
    if (!out.checked || !r.allowed || (out.shown.allowed && r.remaining < out.shown.remaining)) {
      if (!out.limited || !r.allowed) {
        out.shown = r;
        out.limit = b.spec().max_tokens;
      }
    }
    out.checked = true;
    if (!r.allowed) out.limited = true;
  };
  bool matched = false;
  std::string key;
  for (size_t i = 0; i < policy_.descriptors.size(); ++i) {
    for (const route::Descriptor& d : descriptors) {
      if (!MatchDescriptor(policy_.descriptors[i].entries, d, &key)) continue;
      matched = true;
      take(*descriptor_buckets_[i]->Get(key, now));
      break;
    }
  }
  if (default_bucket_ && (!matched || policy_.always_consume_default)) take(*default_bucket_);
  return out;
}

std::vector<size_t> RateLimiter::BucketCounts() const {
  std::vector<size_t> out;
  for (const auto& m : descriptor_buckets_) out.push_back(m->size());
  return out;
}

uint64_t RateLimiter::Evictions() const {
  uint64_t n = 0;
  for (const auto& m : descriptor_buckets_) n += m->evictions();
  return n;
}

std::shared_ptr<const RateLimits> RateLimits::Build(
    const std::vector<route::RateLimitPolicy>& policies, const RateLimits* previous,
    RateLimitCounters counters, const RlsFactory& rls, base::MonoTime now) {
  auto out = std::make_shared<RateLimits>();
  out->counters = counters;
  for (const route::RateLimitPolicy& p : policies) {
    const RateLimiter* prev = nullptr;
    if (previous != nullptr) {
      for (const auto& l : previous->limiters) {
        if (l->policy().name == p.name) prev = l.get();
      }
    }
    out->limiters.push_back(std::make_shared<const RateLimiter>(p, now, prev, rls));
  }
  return out;
}

io::Task<void> RunRateLimits(const Downstream& d, const RouteResult& rr,
                             const FilterRequest& req, RequestInfo& info,
                             io::CancelScope* scope, FilterVerdict& verdict) {
  const RateLimits* rl = d.state->ratelimits.get();
  if (rl == nullptr || rl->limiters.empty()) co_return;
  Worker& w = d.worker;
  const size_t shard = w.index();
  const std::string service = d.target.service != nullptr ? d.target.service->Key() : "";
  const std::string remote = d.peer.ip().ToString();
  const DescriptorInput in{.headers = req.headers,
                           .remote_address = remote,
                           .principal = d.principal,
                           .route_name = rr.route != nullptr ? std::string_view(rr.route->name)
                                                             : std::string_view()};
  for (const auto& limiter : rl->limiters) {
    const route::RateLimitPolicy& p = limiter->policy();
    if (!p.services.empty() &&
        std::find(p.services.begin(), p.services.end(), service) == p.services.end()) {
      continue;
    }
    if (p.enabled_per_million < 1'000'000 && w.Random() % 1'000'000 >= p.enabled_per_million) {
      continue;
    }
    const std::vector<route::Descriptor> descriptors = MakeDescriptors(p.rules, in);
    if (p.Local()) {
      const RateLimiter::LocalDecision ld = limiter->CheckLocal(descriptors, w.loop().Now());
      if (ld.checked && p.x_ratelimit_headers) {
        SetHeader(verdict.response_headers, "x-ratelimit-limit", std::to_string(ld.limit));
        SetHeader(verdict.response_headers, "x-ratelimit-remaining",
                  std::to_string(ld.shown.remaining));
        SetHeader(verdict.response_headers, "x-ratelimit-reset",
                  std::to_string(CeilSeconds(ld.shown.reset)));
      }
      if (ld.limited) {
        const bool enforce = p.enforced_per_million >= 1'000'000 ||
                             w.Random() % 1'000'000 < p.enforced_per_million;
        if (enforce) {
          Count(rl->counters.over_limit, shard, {p.name, "local"});
          LocalReply reply = RateLimited(p.status, "local_rate_limited", "local_rate_limited");
          for (const auto& kv : p.response_headers) reply.headers.push_back(kv);
          verdict.reply = std::move(reply);
          co_return;
        }
        Count(rl->counters.not_enforced, shard, {p.name});
      } else if (ld.checked) {
        Count(rl->counters.ok, shard, {p.name});
      }
    }
    if (!p.global || descriptors.empty() || limiter->rls() == nullptr) continue;
    RlsRequest rq{.domain = p.global->domain, .descriptors = descriptors};
    StatusOr<RlsResponse> resp =
        co_await AskRls(w.loop(), *limiter->rls(), std::move(rq), p.global->timeout, scope);
    if (scope != nullptr && scope->cancelled()) co_return;
    if (!resp.ok() || resp->code == RlsResponse::Code::kUnknown) {
      const std::string reason =
          !resp.ok() ? (absl::IsDeadlineExceeded(resp.status()) ? "timeout" : "unavailable")
                     : "unknown_code";
      Count(rl->counters.rls_errors, shard, {p.name, reason});
      if (LogAllowed(w.loop().Now())) {
        AMBIT_LOG(kWarn, "ratelimit", "{}: rate limit service {}: {}; {}", p.name,
                            limiter->rls()->target(),
                            resp.ok() ? std::string("overall_code UNKNOWN")
                                      : resp.status().ToString(),
                            p.global->failure_mode_deny ? "denying (failureModeDeny)"
                                                        : "allowing (fail open)");
      }
      if (p.global->failure_mode_deny) {
        LocalReply reply = RateLimited(500, "", "rate_limiter_error");
        reply.flag = std::string(flags::kRateLimitServiceError);
        reply.headers.clear();
        verdict.reply = std::move(reply);
        co_return;
      }
      continue;
    }
    for (const auto& kv : resp->response_headers) verdict.response_headers.add.push_back(kv);
    if (p.x_ratelimit_headers && resp->has_limit) {
      SetHeader(verdict.response_headers, "x-ratelimit-limit",
                resp->window_seconds > 0
                    ? fmt::format("{}, {};w={}", resp->limit, resp->limit, resp->window_seconds)
                    : std::to_string(resp->limit));
      SetHeader(verdict.response_headers, "x-ratelimit-remaining",
                std::to_string(resp->remaining));
      SetHeader(verdict.response_headers, "x-ratelimit-reset",
                std::to_string(CeilSeconds(resp->reset)));
    }
    if (resp->code == RlsResponse::Code::kOverLimit) {
      Count(rl->counters.over_limit, shard, {p.name, "global"});
      verdict.reply = RateLimited(429, "", "request_rate_limited");
      co_return;
    }
    Count(rl->counters.ok, shard, {p.name});
  }
  (void)info;
}

}  // namespace ambit::waypoint
