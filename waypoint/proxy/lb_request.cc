#include "waypoint/proxy/lb_request.h"

#include <fmt/format.h>

#include <string_view>
#include <vector>

#include "common/base/ascii.h"
#include "waypoint/proxy/lb_hash.h"

namespace ambit::waypoint {

namespace {

using LB = route::LoadBalancerPolicy;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of cookie `name` in the request's Cookie headers.
std::optional<std::string_view> CookieValue(const route::RequestView& v, std::string_view name) {
  if (v.headers == nullptr) return std::nullopt;
  std::vector<std::string_view> values;
  v.headers->Values("cookie", &values);
  for (std::string_view header : values) {
    while (!header.empty()) {
      const size_t semi = header.find(';');
      std::string_view pair = Trim(header.substr(0, semi));
      header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
      std::string_view value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return std::nullopt;
}

// The raw value of query parameter `name` in a path ("/p?a=1&b=2").
std::optional<std::string_view> QueryValue(std::string_view path, std::string_view name) {
  const size_t q = path.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = path.substr(q + 1);
  if (const size_t hash = query.find('#'); hash != std::string_view::npos) {
    query = query.substr(0, hash);
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

}  // namespace

LbRequest HashRequest(const LB& lb, const route::RequestView* view, const net::IpAddress& client,
                      uint64_t random) {
  LbRequest out;
  if (!lb.Hashed()) return out;
  switch (lb.hash_key) {
    case LB::HashKey::kNone:
      break;
    case LB::HashKey::kSourceIp:
      out.hash = lb::Hash64(client.ToString());
      break;
    case LB::HashKey::kHeader: {
      if (view == nullptr || view->headers == nullptr) break;
      std::vector<std::string_view> values;
      view->headers->Values(lb.hash_name, &values);
      if (values.empty()) break;
      // Several values hash together, in order (Envoy joins them).
      std::string joined;
      for (std::string_view v : values) joined.append(v).push_back('\n');
      out.hash = lb::Hash64(joined);
      break;
    }
    case LB::HashKey::kQueryParameter: {
      if (view == nullptr) break;
      if (auto v = QueryValue(view->path, lb.hash_name)) out.hash = lb::Hash64(*v);
      break;
    }
    case LB::HashKey::kCookie: {
      if (view == nullptr) break;
      if (auto v = CookieValue(*view, lb.hash_name)) {
        out.hash = lb::Hash64(*v);
        break;
      }
      if (!lb.cookie_ttl) break;  // no ttl: no cookie is issued, a random endpoint
      // A fresh value per client; its hash picks the endpoint now, and the
      // client's next requests carry it.
      const std::string value = fmt::format("{:016x}", random);
      out.hash = lb::Hash64(value);
      out.set_cookie = fmt::format("{}=\"{}\"", lb.hash_name, value);
      if (lb.cookie_ttl->count() > 0) {
        out.set_cookie += fmt::format("; Max-Age={}", lb.cookie_ttl->count());
      }
      if (!lb.cookie_path.empty()) out.set_cookie += fmt::format("; Path={}", lb.cookie_path);
      out.set_cookie += "; HttpOnly";
      break;
    }
  }
  return out;
}

}  // namespace ambit::waypoint
