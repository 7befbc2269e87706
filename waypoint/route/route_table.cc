#include "waypoint/route/route_table.h"

#include <fmt/format.h>

#include "common/base/ascii.h"

namespace ambit::waypoint::route {

namespace {

std::string_view PathOnly(std::string_view path) {
  const size_t q = path.find('?');
  return q == std::string_view::npos ? path : path.substr(0, q);
}

// Percent-decoding is not applied: Envoy matches the path as sent.
// The query of `target` as name/value pairs (values not decoded either:
// Envoy compares the raw text for exact query matches).
bool QueryValues(std::string_view target, std::string_view name,
                 std::vector<std::string_view>* out) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view rest = target.substr(q + 1);
  const size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  bool found = false;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    found = true;
    out->push_back(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
  }
  return found;
}

}  // namespace

bool StringMatcher::Matches(std::string_view s) const {
  switch (kind) {
    case Kind::kExact:
      return ignore_case ? base::EqualsIgnoreCase(s, value) : s == value;
    case Kind::kPrefix:
      return ignore_case ? base::StartsWithIgnoreCase(s, value) : s.starts_with(value);
    case Kind::kSuffix:
      return s.ends_with(value);
    case Kind::kRegex:
      return regex != nullptr && RE2::FullMatch(s, *regex);
    case Kind::kPresent:
      return true;
  }
  return false;
}

bool PathMatcher::Matches(std::string_view target) const {
  const std::string_view path = PathOnly(target);
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return ignore_case ? base::EqualsIgnoreCase(path, value) : path == value;
    case Kind::kPrefix:
      return ignore_case ? base::StartsWithIgnoreCase(path, value) : path.starts_with(value);
    case Kind::kPathPrefix: {
      if (value == "/") return path.starts_with('/');
      if (!path.starts_with(value)) return false;
      return path.size() == value.size() || path[value.size()] == '/';
    }
    case Kind::kRegex:
      return regex != nullptr && RE2::FullMatch(path, *regex);
  }
  return false;
}

bool Matches(const RouteMatch& m, const RequestView& r) {
  if (m.port && *m.port != r.port) return false;
  if (!m.path.Matches(r.path)) return false;
  if (m.method && !m.method->Matches(r.method)) return false;
  if (m.authority && !m.authority->Matches(r.authority)) return false;
  if (m.source_namespace && *m.source_namespace != r.source_namespace) return false;
  if (!m.source_labels.empty()) {
    if (r.source_labels == nullptr) return false;
    for (const auto& [k, v] : m.source_labels) {
      auto it = r.source_labels->find(k);
      if (it == r.source_labels->end() || it->second != v) return false;
    }
  }
  std::vector<std::string_view> values;
  for (const HeaderMatcher& h : m.headers) {
    values.clear();
    if (r.headers != nullptr) r.headers->Values(h.name, &values);
    bool hit = false;
    if (!values.empty()) {
      if (h.value.kind == StringMatcher::Kind::kPresent) {
        hit = true;
      } else if (values.size() == 1) {
        hit = h.value.Matches(values[0]);
      } else {
        // Several fields of one name are matched as one comma-joined value,
        // as Envoy's header matcher sees them.
        std::string joined;
        for (size_t i = 0; i < values.size(); ++i) {
          if (i > 0) joined += ',';
          joined += values[i];
        }
        hit = h.value.Matches(joined);
      }
    }
    if (hit == h.invert) return false;
  }
  for (const QueryMatcher& q : m.query) {
    values.clear();
    if (!QueryValues(r.path, q.name, &values)) return false;
    if (q.value.kind == StringMatcher::Kind::kPresent) continue;
    // The first occurrence decides (Envoy's query parameter matcher).
    if (!q.value.Matches(values[0])) return false;
  }
  return true;
}

const Route* MatchRoute(const RouteTable& table, const RequestView& r,
                        const RouteMatch** matched) {
  if (matched != nullptr) *matched = nullptr;
  for (const Route& route : table.routes) {
    if (route.matches.empty()) return &route;
    for (const RouteMatch& m : route.matches) {
      if (!Matches(m, r)) continue;
      if (matched != nullptr) *matched = &m;
      return &route;
    }
  }
  return nullptr;
}

const WeightedCluster* PickCluster(const Route& route, uint64_t random) {
  if (route.total_weight == 0) return nullptr;
  uint64_t point = random % route.total_weight;
  for (const WeightedCluster& c : route.clusters) {
    if (point < c.weight) return &c;
    point -= c.weight;
  }
  return nullptr;
}

std::string RouteConfig::TableKey(std::string_view service, uint16_t port) {
  return fmt::format("{}|{}", service, port);
}

const RouteTable* RouteConfig::Find(std::string_view service, uint16_t port) const {
  auto it = tables.find(TableKey(service, port));
  return it == tables.end() ? nullptr : &it->second;
}

const TrafficPolicy* RouteConfig::PolicyFor(std::string_view cluster_name) const {
  auto it = policies.find(cluster_name);
  return it == policies.end() ? nullptr : &it->second;
}

std::string Finding::ToString() const {
  return fmt::format("{}: {} {}: {}", location, kind, resource, message);
}

}  // namespace ambit::waypoint::route
