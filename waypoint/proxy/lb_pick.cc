// EndpointPicker's load balancing: per cluster, the endpoint list is split
// into locality levels (lb_locality.h); a pick takes the first level with
// an endpoint the outlier filter lets through, a locality group in it by
// weight, then an endpoint by the DestinationRule policy:
//   LEAST_REQUEST  two random candidates, the one with fewer active
//                  requests on this worker (Envoy's power of two choices)
//   ROUND_ROBIN    a cursor per group
//   RANDOM         uniform
//   ring hash /    the request's hash key through a table built over the
//   Maglev         level's endpoints; without a key, random
// warmupDurationSecs (slow start) scales a new endpoint's weight from 10%
// to 100% over the window, for ROUND_ROBIN and LEAST_REQUEST.
#include <algorithm>

#include "waypoint/proxy/cluster.h"

namespace ambit::waypoint {

namespace {

using LB = route::LoadBalancerPolicy;

// Envoy's slow start: a new endpoint starts at 10% of its weight.
constexpr double kMinWarmupFactor = 0.1;

}  // namespace

void EndpointPicker::Build(Cluster& c, const mesh::Workload& self, const PickContext& ctx) {
  const route::TrafficPolicy* tp = ctx.policy;
  c.lb = tp != nullptr ? tp->load_balancer : std::nullopt;
  c.failover = tp != nullptr && tp->outlier_written;
  std::vector<const mesh::Workload*> workloads;
  for (const EndpointPtr& e : c.endpoints) workloads.push_back(e->workload);
  const route::LocalitySetting* loc = c.lb && c.lb->locality ? &*c.lb->locality : nullptr;
  c.levels.clear();
  for (lb::Level& groups : lb::Arrange(self, workloads, loc, c.failover)) {
    Level level;
    for (const lb::Group& g : groups) {
      level.members.insert(level.members.end(), g.members.begin(), g.members.end());
    }
    level.cursors.assign(groups.size(), 0);
    level.priority = groups.empty() ? 0 : groups.front().priority;
    level.groups = std::move(groups);
    c.levels.push_back(std::move(level));
  }
  const auto now = std::chrono::steady_clock::now();
  for (const EndpointPtr& e : c.endpoints) first_seen_.try_emplace(e->LiveKey(), now);
}

EndpointPtr EndpointPicker::PickFrom(Cluster& c, const std::shared_ptr<const mesh::Snapshot>& snap,
                                     const mesh::Service& svc, uint16_t port,
                                     const std::map<std::string, std::string>* subset_labels,
                                     const mesh::Workload& self, const PickContext& ctx) {
  const std::optional<LB> want =
      ctx.policy != nullptr ? ctx.policy->load_balancer : std::nullopt;
  const bool failover = ctx.policy != nullptr && ctx.policy->outlier_written;
  if (c.snapshot != snap) {
    c.endpoints.clear();
    for (auto& e : Endpoints(*snap, svc, port, self, subset_labels)) {
      c.endpoints.push_back(std::make_shared<const UpstreamEndpoint>(std::move(e)));
    }
    c.snapshot = snap;
    Build(c, self, ctx);
  } else if (c.lb != want || c.failover != failover) {
    Build(c, self, ctx);  // the DestinationRule changed under the same snapshot
  }
  if (c.endpoints.empty()) return nullptr;
  // The first level with an endpoint the filter allows (skipping the
  // excluded priorities while another level has one); in it, the endpoints
  // other than `avoid`, or `avoid` itself when it is the level's only one: a
  // retry stays in its locality priority, as Envoy's does (its priority
  // load does not move because one try failed). Endpoints the filter
  // excludes (outlier ejection, which bounds itself by maxEjectionPercent)
  // are never picked: all excluded is "no healthy upstream".
  const bool filtering = ctx.filter != nullptr && ctx.filter->Begin(c.endpoints.size());
  const std::vector<uint32_t>* skip = ctx.exclude_priorities;
  auto excluded = [&](uint32_t priority) {
    return skip != nullptr && std::find(skip->begin(), skip->end(), priority) != skip->end();
  };
  // (Scratch vectors are members: no allocation per pick once warm.)
  std::vector<uint32_t>& usable = usable_;
  last_priority_ = 0;
  const int passes = skip != nullptr && !skip->empty() ? 2 : 1;
  for (int pass = 0; pass < passes; ++pass) {  // pass 1: every priority was tried
    for (size_t li = 0; li < c.levels.size(); ++li) {
      Level& level = c.levels[li];
      if (pass == 0 && excluded(level.priority)) continue;
      usable.clear();
      std::optional<uint32_t> avoided;
      for (uint32_t i : level.members) {
        const UpstreamEndpoint& e = *c.endpoints[i];
        if (filtering && ctx.filter->Excluded(e)) continue;
        if (!ctx.avoid.empty() && e.Key() == ctx.avoid) {
          avoided = i;
          continue;
        }
        usable.push_back(i);
      }
      if (usable.empty() && avoided) usable.push_back(*avoided);
      if (!usable.empty()) {
        last_priority_ = level.priority;
        usable_mask_.assign(c.endpoints.size(), 0);
        for (uint32_t i : usable) usable_mask_[i] = 1;
        return Lease(Choose(c, level, usable, ctx));
      }
    }
  }
  return nullptr;
}

EndpointPtr EndpointPicker::Choose(Cluster& c, Level& level, const std::vector<uint32_t>& usable,
                                   const PickContext& ctx) {
  static const LB kDefault;  // LEAST_REQUEST
  const LB& lb = c.lb ? *c.lb : kDefault;
  auto ok = [&](uint32_t i) { return usable_mask_[i] != 0; };
  auto random_usable = [&] { return c.endpoints[usable[Random() % usable.size()]]; };

  if (lb.Hashed()) {
    if (!ctx.hash) return random_usable();
    std::vector<std::string> names;
    auto build_names = [&] {
      for (uint32_t i : level.members) names.push_back(c.endpoints[i]->address.ToString());
    };
    if (lb.kind == LB::Kind::kRingHash) {
      if (!level.ring) {
        build_names();
        level.ring = std::make_shared<const lb::RingHash>(names, lb.ring_size);
      }
      // Walk clockwise past endpoints that cannot take this request.
      for (size_t skip = 0; skip < level.members.size(); ++skip) {
        const uint32_t i = level.members[level.ring->Pick(*ctx.hash, skip)];
        if (ok(i)) return c.endpoints[i];
      }
    } else {
      if (!level.maglev) {
        build_names();
        level.maglev = std::make_shared<const lb::Maglev>(names, lb.table_size);
      }
      // Maglev has no neighbour order: re-hash the key a few times.
      uint64_t h = *ctx.hash;
      for (size_t n = 0; n < level.members.size() + 4; ++n) {
        const uint32_t i = level.members[level.maglev->Pick(h)];
        if (ok(i)) return c.endpoints[i];
        h = lb::Hash64(std::to_string(h), n + 1);
      }
    }
    return random_usable();
  }

  // A locality group by weight (only `distribute` makes several).
  size_t g = 0;
  if (level.groups.size() > 1) {
    uint64_t total = 0;
    for (const lb::Group& grp : level.groups) {
      if (std::any_of(grp.members.begin(), grp.members.end(), ok)) total += grp.weight;
    }
    uint64_t r = total > 0 ? Random() % total : 0;
    for (g = 0; g < level.groups.size(); ++g) {
      const lb::Group& grp = level.groups[g];
      if (!std::any_of(grp.members.begin(), grp.members.end(), ok)) continue;
      if (r < grp.weight) break;
      r -= grp.weight;
    }
    if (g == level.groups.size()) g = 0;
  }
  const std::vector<uint32_t>* candidates = &usable;
  if (level.groups.size() > 1 || usable.size() != level.members.size()) {
    in_group_.clear();
    for (uint32_t i : level.groups[g].members) {
      if (ok(i)) in_group_.push_back(i);
    }
    if (!in_group_.empty()) candidates = &in_group_;
  }
  const std::vector<uint32_t>& in_group = *candidates;
  auto weight = [&](uint32_t i) { return WarmupFactor(c.endpoints[i]->LiveKey(), lb.warmup); };
  auto chance = [&](double w) {
    return w >= 1.0 || static_cast<double>(Random() % 1'000'000) < w * 1'000'000;
  };

  switch (lb.kind) {
    case LB::Kind::kRoundRobin: {
      // Cursor over the whole group (so the order is stable while some
      // endpoints are skipped); an endpoint in slow start takes its turn
      // with probability equal to its weight.
      const auto& members = level.groups[g].members;
      uint64_t& cursor = level.cursors[g];
      for (size_t tries = 0; tries < 2 * members.size(); ++tries) {
        const uint32_t i = members[cursor++ % members.size()];
        if (!ok(i)) continue;
        if (lb.warmup.count() == 0 || chance(weight(i))) return c.endpoints[i];
      }
      return c.endpoints[in_group.front()];
    }
    case LB::Kind::kRandom:
      return c.endpoints[in_group[Random() % in_group.size()]];
    case LB::Kind::kPassthrough:  // a service VIP has no original endpoint: LEAST_REQUEST
    case LB::Kind::kLeastRequest: {
      if (in_group.size() == 1) return c.endpoints[in_group.front()];
      // Two candidates drawn with replacement, as Envoy does; the lower
      // active count (scaled by slow-start weight) wins.
      const uint32_t a = in_group[Random() % in_group.size()];
      const uint32_t b = in_group[Random() % in_group.size()];
      auto load = [&](uint32_t i) {
        return (Active(c.endpoints[i]->Key()) + 1.0) / std::max(weight(i), kMinWarmupFactor);
      };
      const double la = load(a), lb2 = load(b);
      if (la == lb2) return c.endpoints[Random() % 2 == 0 ? a : b];
      return c.endpoints[la < lb2 ? a : b];
    }
    case LB::Kind::kRingHash:
    case LB::Kind::kMaglev:
      break;
  }
  return c.endpoints[in_group.front()];
}

EndpointPtr EndpointPicker::Lease(const EndpointPtr& e) {
  // The returned pointer shares ownership with a holder that counts one
  // active request until the last copy is gone, so callers that keep the
  // endpoint for the request's life need no extra handle.
  std::shared_ptr<uint32_t>& count = active_[e->Key()];
  if (!count) count = std::make_shared<uint32_t>(0);
  struct Holder {
    EndpointPtr endpoint;
    std::shared_ptr<uint32_t> count;
    ~Holder() { --*count; }
  };
  ++*count;
  // (new, not make_shared: a copied Holder would count down twice.)
  std::shared_ptr<Holder> h(new Holder{e, count});
  return EndpointPtr(h, h->endpoint.get());
}

uint32_t EndpointPicker::Active(const std::string& key) const {
  auto it = active_.find(key);
  return it == active_.end() ? 0 : *it->second;
}

double EndpointPicker::WarmupFactor(const std::string& live_key,
                                    std::chrono::milliseconds window) const {
  if (window.count() <= 0) return 1.0;
  auto it = first_seen_.find(live_key);
  if (it == first_seen_.end()) return 1.0;
  const auto age = std::chrono::steady_clock::now() - it->second;
  if (age >= window) return 1.0;
  const double f = std::chrono::duration<double>(age) / std::chrono::duration<double>(window);
  return std::max(kMinWarmupFactor, f);
}

}  // namespace ambit::waypoint
