// DestinationRule trafficPolicy.loadBalancer → LoadBalancerPolicy. Values
// Istio's validation refuses (unknown `simple`, a non-prime Maglev table,
// bad durations, distribute weights not summing to 100, ...) are
// Sink::Invalid, so the config change is refused and the last good one
// stays; fields the waypoint does not act on are findings.
#include <fmt/format.h>

#include "common/base/ascii.h"
#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route {

const char* KindName(LoadBalancerPolicy::Kind k) {
  using K = LoadBalancerPolicy::Kind;
  switch (k) {
    case K::kLeastRequest: return "LEAST_REQUEST";
    case K::kRoundRobin: return "ROUND_ROBIN";
    case K::kRandom: return "RANDOM";
    case K::kPassthrough: return "PASSTHROUGH";
    case K::kRingHash: return "RING_HASH";
    case K::kMaglev: return "MAGLEV";
  }
  return "?";
}

const char* HashKeyName(LoadBalancerPolicy::HashKey k) {
  using H = LoadBalancerPolicy::HashKey;
  switch (k) {
    case H::kNone: return "none";
    case H::kHeader: return "httpHeaderName";
    case H::kCookie: return "httpCookie";
    case H::kSourceIp: return "useSourceIp";
    case H::kQueryParameter: return "httpQueryParameterName";
  }
  return "?";
}

}  // namespace ambit::waypoint::route

namespace ambit::waypoint::route::internal {

namespace {

using LB = LoadBalancerPolicy;

// Envoy's bound on Maglev table size (and ring size).
constexpr uint64_t kMaxMaglevTable = 5000011;
constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;

bool IsPrime(uint64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// Runs a reader whose own findings are plain; each is re-issued as Invalid
// (a value Istio's validation rejects must refuse the change).
template <typename F>
auto Strict(const Doc& doc, const YAML::Node& at, Sink& sink, F read) {
  std::vector<Finding> local;
  Sink tmp(&local);
  auto v = read(tmp);
  for (Finding& f : local) sink.Invalid(doc, at, std::move(f.message));
  return v;
}

std::optional<std::chrono::nanoseconds> StrictDuration(const Doc& doc, const YAML::Node& n,
                                                       const std::string& field, Sink& sink) {
  return Strict(doc, n, sink, [&](Sink& s) { return Duration(doc, n, field, s); });
}

std::optional<uint64_t> StrictUint(const Doc& doc, const YAML::Node& n, const std::string& field,
                                   uint64_t max, Sink& sink) {
  return Strict(doc, n, sink, [&](Sink& s) { return Uint(doc, n, field, max, s); });
}

std::optional<bool> Bool(const Doc& doc, const YAML::Node& n, const std::string& field,
                         Sink& sink) {
  if (n.IsScalar()) {
    if (n.Scalar() == "true") return true;
    if (n.Scalar() == "false") return false;
  }
  sink.Invalid(doc, n, fmt::format("{}: expected true or false", field));
  return std::nullopt;
}

// "region/zone/subzone" with "*" allowed only as a whole, last segment.
bool ValidLocality(std::string_view l) {
  if (l.empty()) return false;
  size_t parts = 0;
  while (true) {
    const size_t slash = l.find('/');
    const std::string_view seg = l.substr(0, slash);
    ++parts;
    if (seg.empty() || parts > 3) return false;
    if (seg.find('*') != std::string_view::npos && (seg != "*" || slash != std::string_view::npos)) {
      return false;
    }
    if (slash == std::string_view::npos) return true;
    l = l.substr(slash + 1);
  }
}

bool ReadSimple(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                LB* out) {
  auto v = Scalar(doc, n, Field(field, "simple"), sink);
  if (!v) return false;
  if (*v == "UNSPECIFIED" || *v == "LEAST_REQUEST") {
    out->kind = LB::Kind::kLeastRequest;
  } else if (*v == "LEAST_CONN") {  // deprecated alias
    out->kind = LB::Kind::kLeastRequest;
  } else if (*v == "ROUND_ROBIN") {
    out->kind = LB::Kind::kRoundRobin;
  } else if (*v == "RANDOM") {
    out->kind = LB::Kind::kRandom;
  } else if (*v == "PASSTHROUGH") {
    // Envoy's ORIGINAL_DST: the waypoint forwards to the CONNECT authority
    // when it is a pod address; a service VIP is not an endpoint, so those
    // requests fall back to LEAST_REQUEST (counted: route outcome
    // lb_passthrough_fallback).
    out->kind = LB::Kind::kPassthrough;
    sink.Add(doc, n, fmt::format("{}.simple: PASSTHROUGH forwards pod-addressed requests to the "
                                 "original destination; service-addressed ones (the original "
                                 "destination is the service VIP) fall back to LEAST_REQUEST",
                                 field));
  } else {
    sink.Invalid(doc, n, fmt::format("{}.simple: unknown value '{}' (UNSPECIFIED, LEAST_CONN, "
                                     "RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST)",
                                     field, *v));
    return false;
  }
  return true;
}

bool ReadCookie(const Doc& doc, const YAML::Node& c, const std::string& f, Sink& sink, LB* out) {
  if (!c.IsMap()) {
    sink.Invalid(doc, c, fmt::format("{}: expected a map", f));
    return false;
  }
  ReportUnknownKeys(doc, c, f, {"name", "path", "ttl"}, sink);
  const YAML::Node name = Child(c, "name");
  auto nm = Present(name) ? Scalar(doc, name, Field(f, "name"), sink) : std::nullopt;
  if (!nm || nm->empty()) {
    sink.Invalid(doc, Present(name) ? name : c, fmt::format("{}.name: required", f));
    return false;
  }
  out->hash_key = LB::HashKey::kCookie;
  out->hash_name = *nm;
  if (const YAML::Node p = Child(c, "path"); Present(p)) {
    if (auto v = Scalar(doc, p, Field(f, "path"), sink)) out->cookie_path = *v;
  }
  const YAML::Node ttl = Child(c, "ttl");
  if (!Present(ttl)) {
    sink.Invalid(doc, c, fmt::format("{}.ttl: required (0s issues a session cookie)", f));
    return false;
  }
  auto d = StrictDuration(doc, ttl, Field(f, "ttl"), sink);
  if (!d) return false;
  out->cookie_ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
  return true;
}

bool ReadConsistentHash(const Doc& doc, const YAML::Node& n, const std::string& f, Sink& sink,
                        LB* out) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", f));
    return false;
  }
  ReportUnknownKeys(doc, n, f,
                    {"httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName",
                     "ringHash", "maglev", "minimumRingSize"},
                    sink);
  int keys = 0;
  bool ok = true;
  if (const YAML::Node h = Child(n, "httpHeaderName"); Present(h)) {
    ++keys;
    auto v = Scalar(doc, h, Field(f, "httpHeaderName"), sink);
    if (!v || v->empty()) {
      sink.Invalid(doc, h, fmt::format("{}.httpHeaderName: must not be empty", f));
      ok = false;
    } else {
      out->hash_key = LB::HashKey::kHeader;
      out->hash_name = base::ToLower(*v);
    }
  }
  if (const YAML::Node c = Child(n, "httpCookie"); Present(c)) {
    ++keys;
    ok = ReadCookie(doc, c, Field(f, "httpCookie"), sink, out) && ok;
  }
  if (const YAML::Node s = Child(n, "useSourceIp"); Present(s)) {
    auto b = Bool(doc, s, Field(f, "useSourceIp"), sink);
    if (!b) ok = false;
    if (b && *b) {
      ++keys;
      out->hash_key = LB::HashKey::kSourceIp;
    }
  }
  if (const YAML::Node q = Child(n, "httpQueryParameterName"); Present(q)) {
    ++keys;
    auto v = Scalar(doc, q, Field(f, "httpQueryParameterName"), sink);
    if (!v || v->empty()) {
      sink.Invalid(doc, q, fmt::format("{}.httpQueryParameterName: must not be empty", f));
      ok = false;
    } else {
      out->hash_key = LB::HashKey::kQueryParameter;
      out->hash_name = *v;
    }
  }
  if (keys > 1) {  // a oneof in the proto
    sink.Invalid(doc, n, fmt::format("{}: only one of httpHeaderName, httpCookie, useSourceIp, "
                                     "httpQueryParameterName may be set",
                                     f));
    ok = false;
  }
  if (keys == 0 && ok) {
    // Envoy without a hash key falls back to a random endpoint per request.
    sink.Add(doc, n, fmt::format("{}: no hash key set; every request gets a random endpoint", f));
  }
  const YAML::Node ring = Child(n, "ringHash");
  const YAML::Node maglev = Child(n, "maglev");
  if (Present(ring) && Present(maglev)) {
    sink.Invalid(doc, n, fmt::format("{}: only one of ringHash, maglev may be set", f));
    return false;
  }
  for (const auto& [node, name] : {std::pair{ring, "ringHash"}, std::pair{maglev, "maglev"}}) {
    if (Present(node) && !node.IsMap()) {
      sink.Invalid(doc, node, fmt::format("{}.{}: expected a map", f, name));
      return false;
    }
  }
  out->kind = Present(maglev) ? LB::Kind::kMaglev : LB::Kind::kRingHash;
  if (const YAML::Node m = Child(n, "minimumRingSize"); Present(m)) {  // deprecated top level
    auto v = StrictUint(doc, m, Field(f, "minimumRingSize"), kMaxRingSize, sink);
    if (!v) return false;
    if (*v > 0) out->ring_size = *v;
  }
  if (Present(ring)) {
    ReportUnknownKeys(doc, ring, Field(f, "ringHash"), {"minimumRingSize"}, sink);
    if (const YAML::Node m = Child(ring, "minimumRingSize"); Present(m)) {
      auto v = StrictUint(doc, m, Field(f, "ringHash.minimumRingSize"), kMaxRingSize, sink);
      if (!v) return false;
      if (*v > 0) out->ring_size = *v;
    }
  }
  if (Present(maglev)) {
    ReportUnknownKeys(doc, maglev, Field(f, "maglev"), {"tableSize"}, sink);
    if (const YAML::Node t = Child(maglev, "tableSize"); Present(t)) {
      auto v = StrictUint(doc, t, Field(f, "maglev.tableSize"), kMaxMaglevTable, sink);
      if (!v) return false;
      if (*v != 0) {
        if (!IsPrime(*v)) {
          sink.Invalid(doc, t, fmt::format("{}.maglev.tableSize: {} is not a prime number", f,
                                           *v));
          return false;
        }
        out->table_size = *v;
      }
    }
  }
  return ok;
}

// Walks a list of {from, to} maps (distribute, failover), reporting other
// keys; `each(field, entry)` reads one entry and returns false to stop.
template <typename Each>
bool ForEachFromTo(const Doc& doc, const YAML::Node& list, const std::string& f, Sink& sink,
                   Each each) {
  if (!list.IsSequence()) {
    sink.Invalid(doc, list, fmt::format("{}: expected a list", f));
    return false;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string fi = Field(f, i);
    const YAML::Node e = list[i];
    if (!e.IsMap()) {
      sink.Invalid(doc, e, fmt::format("{}: expected a map", fi));
      return false;
    }
    ReportUnknownKeys(doc, e, fi, {"from", "to"}, sink);
    if (!each(fi, e)) return false;
  }
  return true;
}

bool ReadDistribute(const Doc& doc, const YAML::Node& list, const std::string& f, Sink& sink,
                    LocalitySetting* out) {
  return ForEachFromTo(doc, list, f, sink, [&](const std::string& fi, const YAML::Node& e) {
    LocalitySetting::Distribute d;
    auto from = Scalar(doc, Child(e, "from"), Field(fi, "from"), sink);
    if (!from || !ValidLocality(*from)) {
      sink.Invalid(doc, e, fmt::format("{}.from: '{}' is not a locality (region/zone/subzone, "
                                       "'*' as a whole last segment)",
                                       fi, from.value_or("")));
      return false;
    }
    d.from = *from;
    const YAML::Node to = Child(e, "to");
    if (!to.IsMap() || to.size() == 0) {
      sink.Invalid(doc, Present(to) ? to : e, fmt::format("{}.to: expected a map of locality to "
                                                          "weight", fi));
      return false;
    }
    uint64_t total = 0;
    for (const auto& kv : to) {
      const std::string loc = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (!ValidLocality(loc)) {
        sink.Invalid(doc, kv.first, fmt::format("{}.to: '{}' is not a locality", fi, loc));
        return false;
      }
      auto w = StrictUint(doc, kv.second, Field(Field(fi, "to"), loc), 100, sink);
      if (!w) return false;
      if (*w == 0) {
        sink.Invalid(doc, kv.second, fmt::format("{}.to.{}: weight must be 1-100", fi, loc));
        return false;
      }
      total += *w;
      d.to.emplace_back(loc, static_cast<uint32_t>(*w));
    }
    if (total != 100) {
      sink.Invalid(doc, to, fmt::format("{}.to: weights sum to {}, not 100", fi, total));
      return false;
    }
    out->distribute.push_back(std::move(d));
    return true;
  });
}

bool ReadFailover(const Doc& doc, const YAML::Node& list, const std::string& f, Sink& sink,
                  LocalitySetting* out) {
  return ForEachFromTo(doc, list, f, sink, [&](const std::string& fi, const YAML::Node& e) {
    auto from = Scalar(doc, Child(e, "from"), Field(fi, "from"), sink);
    auto to = Scalar(doc, Child(e, "to"), Field(fi, "to"), sink);
    auto region = [](const std::optional<std::string>& r) {
      return r && !r->empty() && r->find_first_of("/*") == std::string::npos;
    };
    if (!region(from) || !region(to)) {
      sink.Invalid(doc, e, fmt::format("{}: from and to must be regions (no '/' or '*')", fi));
      return false;
    }
    if (*from == *to) {
      sink.Invalid(doc, e, fmt::format("{}: from and to must be different regions", fi));
      return false;
    }
    out->failover.push_back({*from, *to});
    return true;
  });
}

bool ReadLocality(const Doc& doc, const YAML::Node& n, const std::string& f, Sink& sink,
                  LocalitySetting* out) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", f));
    return false;
  }
  ReportUnknownKeys(doc, n, f, {"distribute", "failover", "failoverPriority", "enabled"}, sink);
  if (const YAML::Node e = Child(n, "enabled"); Present(e)) {
    auto b = Bool(doc, e, Field(f, "enabled"), sink);
    if (!b) return false;
    out->enabled = *b;
  }
  const YAML::Node dist = Child(n, "distribute");
  const YAML::Node fail = Child(n, "failover");
  const YAML::Node prio = Child(n, "failoverPriority");
  if (Present(dist) && (Present(fail) || Present(prio))) {
    sink.Invalid(doc, n, fmt::format("{}: distribute cannot be set together with failover or "
                                     "failoverPriority",
                                     f));
    return false;
  }
  if (Present(dist) && !ReadDistribute(doc, dist, Field(f, "distribute"), sink, out)) {
    return false;
  }
  if (Present(fail) && !ReadFailover(doc, fail, Field(f, "failover"), sink, out)) return false;
  if (Present(prio)) {
    if (!prio.IsSequence()) {
      sink.Invalid(doc, prio, fmt::format("{}.failoverPriority: expected a list", f));
      return false;
    }
    for (size_t i = 0; i < prio.size(); ++i) {
      auto v = Scalar(doc, prio[i], Field(Field(f, "failoverPriority"), i), sink);
      if (!v || v->empty() || v->front() == '=') {
        sink.Invalid(doc, prio[i], fmt::format("{}: expected a label name (or name=value)",
                                               Field(Field(f, "failoverPriority"), i)));
        return false;
      }
      out->failover_priority.push_back(*v);
    }
  }
  return true;
}

}  // namespace

std::optional<LoadBalancerPolicy> CompileLoadBalancer(const Doc& doc, const YAML::Node& n,
                                                      const std::string& field, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field,
                    {"simple", "consistentHash", "localityLbSetting", "warmupDurationSecs"},
                    sink);
  LB out;
  const YAML::Node simple = Child(n, "simple");
  const YAML::Node hash = Child(n, "consistentHash");
  if (Present(simple) && Present(hash)) {
    sink.Invalid(doc, n, fmt::format("{}: only one of simple, consistentHash may be set", field));
    return std::nullopt;
  }
  if (Present(simple) && !ReadSimple(doc, simple, field, sink, &out)) return std::nullopt;
  if (Present(hash) &&
      !ReadConsistentHash(doc, hash, Field(field, "consistentHash"), sink, &out)) {
    return std::nullopt;
  }
  if (const YAML::Node l = Child(n, "localityLbSetting"); Present(l)) {
    LocalitySetting loc;
    if (!ReadLocality(doc, l, Field(field, "localityLbSetting"), sink, &loc)) return std::nullopt;
    out.locality = std::move(loc);
  }
  if (const YAML::Node w = Child(n, "warmupDurationSecs"); Present(w)) {
    auto d = StrictDuration(doc, w, Field(field, "warmupDurationSecs"), sink);
    if (!d) return std::nullopt;
    out.warmup = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    if (out.warmup.count() > 0 && out.kind != LB::Kind::kRoundRobin &&
        out.kind != LB::Kind::kLeastRequest) {
      // Envoy's slow start exists for ROUND_ROBIN and LEAST_REQUEST only.
      sink.Add(doc, w, fmt::format("{}.warmupDurationSecs: applies to ROUND_ROBIN and "
                                   "LEAST_REQUEST only; ignored for {}",
                                   field, KindName(out.kind)));
      out.warmup = std::chrono::milliseconds(0);
    }
  }
  return out;
}

}  // namespace ambit::waypoint::route::internal
