#include "agent/dns/on_demand.h"

#include <fmt/format.h>

#include <algorithm>

#include "agent/dns/address_lookup.h"
#include "agent/dns/message.h"
#include "common/base/error.h"
#include "common/base/log.h"

namespace ambit::dns {
namespace {

constexpr size_t kShard = 0;  // counters are atomics; any thread may write

std::string OrUnknown(const std::string& v) { return v.empty() ? "unknown" : v; }

OnDemandError FromUpstream(UpstreamError e) {
  switch (e) {
    case UpstreamError::kNone: return OnDemandError::kNone;
    case UpstreamError::kTimeout: return OnDemandError::kTimeout;
    case UpstreamError::kRefused: return OnDemandError::kUnreachable;
    case UpstreamError::kServerFailed: return OnDemandError::kServerFailure;
    case UpstreamError::kBadAnswer: return OnDemandError::kBadAnswer;
    case UpstreamError::kCancelled: return OnDemandError::kCancelled;
    case UpstreamError::kOther: return OnDemandError::kUnreachable;
  }
  return OnDemandError::kUnreachable;
}

base::Duration Seconds(uint32_t s) { return std::chrono::seconds(s); }

}  // namespace

std::string_view OnDemandErrorName(OnDemandError e) {
  switch (e) {
    case OnDemandError::kNone: return "none";
    case OnDemandError::kNxDomain: return "nxdomain";
    case OnDemandError::kNoAddresses: return "no_addresses";
    case OnDemandError::kTimeout: return "timeout";
    case OnDemandError::kUnreachable: return "unreachable";
    case OnDemandError::kServerFailure: return "server_failure";
    case OnDemandError::kBadAnswer: return "bad_answer";
    case OnDemandError::kBadName: return "bad_name";
    case OnDemandError::kOverload: return "overload";
    case OnDemandError::kCancelled: return "cancelled";
  }
  return "unknown";
}

// One name being looked up: the A and the AAAA answers as they come back.
struct OnDemandResolver::Lookup {
  std::mutex mu;
  int outstanding = 0;
  AddressAnswer a, aaaa;
  bool have_a = false, have_aaaa = false;
  OnDemandError a_error = OnDemandError::kNone, aaaa_error = OnDemandError::kNone;
  Status a_status, aaaa_status;
};

OnDemandResolver::OnDemandResolver(Transport transport, base::Clock& clock,
                                   OnDemandOptions options, metrics::Registry* registry)
    : transport_(std::move(transport)), clock_(clock), options_(options),
      cache_(options.capacity) {
  if (registry == nullptr) return;
  hits_ = registry->AddCounter("ambit_dns_on_demand_cache_hits",
                               "On-demand lookups of hostname-only workloads answered from the "
                               "cache (positive or negative)")
              .Get(kShard, {});
  misses_ = registry->AddCounter("ambit_dns_on_demand_cache_misses",
                                 "On-demand lookups of hostname-only workloads that went upstream "
                                 "(or joined a lookup in flight)")
                .Get(kShard, {});
  queries_ = registry->AddCounter("ambit_dns_on_demand_queries",
                                  "A/AAAA queries sent upstream for hostname-only workloads")
                 .Get(kShard, {});
  failures_ = &registry->AddCounter(
      "ambit_dns_on_demand_failures",
      "Connections to hostname-only workloads refused because the name did not resolve",
      {"reason"});
  requests_ = &registry->AddCounter(
      "istio_on_demand_dns", "The total number of requests that used on-demand DNS (unstable)",
      {"source_workload", "source_canonical_service", "source_canonical_revision",
       "source_workload_namespace", "source_principal", "source_app", "source_version",
       "source_cluster", "hostname"});
  registry->AddCallbackGauge("ambit_dns_on_demand_cache_entries",
                             "Names in the on-demand DNS cache (expired ones included until "
                             "pruned)",
                             [this] {
                               std::lock_guard lock(mu_);
                               return static_cast<double>(cache_.size());
                             });
}

std::unique_ptr<OnDemandResolver> OnDemandResolver::ForUpstream(Upstream& upstream,
                                                                base::Clock& clock,
                                                                OnDemandOptions options,
                                                                metrics::Registry* registry) {
  Upstream* up = &upstream;
  Transport t = [up](std::vector<uint8_t> query, Upstream::Done done) {
    // UDP first; a truncated answer is asked again over TCP.
    auto retry_query = std::make_shared<std::vector<uint8_t>>(query);
    auto shared_done = std::make_shared<Upstream::Done>(std::move(done));
    up->Forward("<on-demand>", nullptr, /*tcp=*/false, std::move(query),
                [up, retry_query, shared_done](UpstreamResult r) {
                  if (r.ok() && MessageTruncated(r.answer)) {
                    up->Forward("<on-demand>", nullptr, /*tcp=*/true, std::move(*retry_query),
                                std::move(*shared_done));
                    return;
                  }
                  (*shared_done)(std::move(r));
                });
  };
  return std::make_unique<OnDemandResolver>(std::move(t), clock, options, registry);
}

void OnDemandResolver::Fail(OnDemandError e, Status st, Done& done) {
  if (failures_ != nullptr) failures_->Get(kShard, {std::string(OnDemandErrorName(e))})->Inc();
  {
    std::lock_guard lock(mu_);
    ++stats_.failures;
  }
  OnDemandResult r;
  r.error = e;
  r.status = std::move(st);
  done(std::move(r));
}

void OnDemandResolver::Resolve(const std::string& hostname, const OnDemandSource& source,
                               Done done) {
  if (requests_ != nullptr) {
    requests_
        ->Get(kShard, {OrUnknown(source.workload), OrUnknown(source.canonical_service),
                       OrUnknown(source.canonical_revision), OrUnknown(source.ns),
                       OrUnknown(source.principal), OrUnknown(source.app),
                       OrUnknown(source.version), OrUnknown(source.cluster), hostname})
        ->Inc();
  }
  std::vector<std::vector<uint8_t>> queries;
  {
    std::unique_lock lock(mu_);
    if (const HostEntry* e = cache_.Find(hostname, clock_.Now())) {
      ++stats_.hits;
      if (hits_ != nullptr) hits_->Inc();
      OnDemandResult r;
      r.cached = true;
      if (e->addresses.empty()) {
        const OnDemandError err = e->negative_reason == OnDemandErrorName(OnDemandError::kNxDomain)
                                      ? OnDemandError::kNxDomain
                                      : OnDemandError::kNoAddresses;
        lock.unlock();
        Fail(err, absl::NotFoundError(fmt::format("{}: {} (cached negative answer)", hostname,
                                                  OnDemandErrorName(err))),
             done);
        return;
      }
      r.addresses = e->addresses;
      lock.unlock();
      done(std::move(r));
      return;
    }
    ++stats_.misses;
    if (misses_ != nullptr) misses_->Inc();
    if (auto it = waiting_.find(hostname); it != waiting_.end()) {
      it->second.push_back(std::move(done));  // joins the lookup in flight
      return;
    }
    if (waiting_.size() >= options_.max_in_flight) {
      lock.unlock();
      Fail(OnDemandError::kOverload,
           absl::ResourceExhaustedError(fmt::format("{}: {} names already being resolved",
                                                    hostname, options_.max_in_flight)),
           done);
      return;
    }
    for (bool aaaa : {false, true}) {
      if (aaaa && !options_.ipv6) continue;
      auto q = BuildAddressQuery(hostname, aaaa, next_id_++);
      if (!q.ok()) {
        lock.unlock();
        Fail(OnDemandError::kBadName, q.status(), done);
        return;
      }
      queries.push_back(std::move(*q));
    }
    waiting_[hostname].push_back(std::move(done));
    stats_.queries += queries.size();
  }
  if (queries_ != nullptr) queries_->Inc(queries.size());
  auto l = std::make_shared<Lookup>();
  l->outstanding = static_cast<int>(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    const bool aaaa = i == 1;
    transport_(std::move(queries[i]), [this, hostname, l, aaaa](UpstreamResult r) {
      AddressAnswer ans;
      OnDemandError err = FromUpstream(r.error);
      Status st = r.status;
      if (r.ok()) {
        ans = ParseAddressAnswer(r.answer, aaaa);
        if (ans.outcome == LookupOutcome::kMalformed) {
          err = OnDemandError::kBadAnswer;
          st = ans.status;
        } else if (ans.outcome == LookupOutcome::kServerFailure) {
          err = OnDemandError::kServerFailure;
          st = ans.status;
        }
      } else if (st.ok()) {
        st = absl::UnavailableError(std::string(UpstreamErrorName(r.error)));
      }
      bool last = false;
      {
        std::lock_guard lock(l->mu);
        (aaaa ? l->aaaa : l->a) = std::move(ans);
        (aaaa ? l->have_aaaa : l->have_a) = err == OnDemandError::kNone;
        (aaaa ? l->aaaa_error : l->a_error) = err;
        (aaaa ? l->aaaa_status : l->a_status) = std::move(st);
        last = --l->outstanding == 0;
      }
      if (last) Finish(hostname, l);
    });
  }
}

// Both answers are in: combine, cache, and answer everyone who waited.
void OnDemandResolver::Finish(const std::string& hostname, std::shared_ptr<Lookup> l) {
  const base::MonoTime now = clock_.Now();
  OnDemandResult r;
  std::optional<HostEntry> entry;
  std::optional<uint32_t> ttl;
  for (const AddressAnswer* a : {&l->a, &l->aaaa}) {
    if (a->outcome != LookupOutcome::kAddresses) continue;
    r.addresses.insert(r.addresses.end(), a->addresses.begin(), a->addresses.end());
    ttl = ttl ? std::min(*ttl, a->ttl) : a->ttl;
  }
  const bool asked_aaaa = options_.ipv6;
  if (!r.addresses.empty()) {
    entry = HostEntry{r.addresses, {}, now + std::min(Seconds(*ttl), options_.max_ttl)};
  } else if (l->have_a && (l->have_aaaa || !asked_aaaa)) {
    // Both families answered negatively.
    const bool nx = l->a.outcome == LookupOutcome::kNxDomain ||
                    (asked_aaaa && l->aaaa.outcome == LookupOutcome::kNxDomain);
    r.error = nx ? OnDemandError::kNxDomain : OnDemandError::kNoAddresses;
    r.status = absl::NotFoundError(
        fmt::format("{}: {}", hostname,
                    nx ? "NXDOMAIN" : "the answer has no A/AAAA record (NODATA)"));
    std::optional<uint32_t> neg = l->a.negative_ttl;
    if (asked_aaaa) {
      neg = neg && l->aaaa.negative_ttl ? std::optional(std::min(*neg, *l->aaaa.negative_ttl))
                                        : std::nullopt;
    }
    if (neg) {
      entry = HostEntry{{}, OnDemandErrorName(r.error),
                        now + std::min(Seconds(*neg), options_.max_negative_ttl)};
    }
  } else {
    // A transport or server failure: not cached, the next connection retries.
    const bool a_failed = !l->have_a;
    r.error = a_failed ? l->a_error : l->aaaa_error;
    r.status = base::WithContext(a_failed ? l->a_status : l->aaaa_status,
                                 fmt::format("resolving {}", hostname));
  }
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mu_);
    if (entry) cache_.Put(hostname, std::move(*entry), now);
    auto it = waiting_.find(hostname);
    if (it != waiting_.end()) {
      waiters = std::move(it->second);
      waiting_.erase(it);
    }
  }
  for (Done& d : waiters) {
    if (r.ok()) {
      d(r);
    } else {
      Fail(r.error, r.status, d);
    }
  }
}

OnDemandResolver::Stats OnDemandResolver::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::vector<HostCache::Row> OnDemandResolver::CacheRows() const {
  std::lock_guard lock(mu_);
  return cache_.Live(clock_.Now());
}

}  // namespace ambit::dns
