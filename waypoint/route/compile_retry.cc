#include "waypoint/route/compile_retry.h"

#include <fmt/format.h>

#include <charconv>

#include "common/base/ascii.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr uint32_t kMaxRetries = 1000;  // beyond any sane policy; bounds the loop

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<int> StatusCode(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "5xx,gateway-error,503" → bits + codes, as istiod splits it (numeric
// tokens become retriable status codes).
bool ParseRetryOn(const Doc& doc, const YAML::Node& n, const std::string& field,
                  const std::string& text, Sink& sink, RetryPolicy* out) {
  out->retry_on = 0;
  size_t start = 0;
  bool ok = true;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string_view token = Trim(std::string_view(text).substr(start, comma - start));
    start = comma + 1;
    if (token.empty()) continue;
    if (const uint32_t bit = RetryOnBit(token); bit != 0) {
      out->retry_on |= bit;
    } else if (auto code = StatusCode(token)) {
      if (*code < 100 || *code > 599) {
        sink.Invalid(doc, n, fmt::format("{}: status code {} is out of range 100..599", field,
                                         *code));
        ok = false;
        continue;
      }
      out->status_codes.push_back(*code);
      out->retry_on |= kRetryRetriableStatusCodes;
    } else {
      sink.Invalid(doc, n, fmt::format("{}: '{}' is not a valid retryOn policy", field, token));
      ok = false;
    }
  }
  return ok;
}

bool PositiveDuration(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                      std::chrono::nanoseconds* out) {
  auto d = Duration(doc, n, field, sink);
  if (!d) return false;
  if (*d < std::chrono::milliseconds(1)) {
    sink.Invalid(doc, n, fmt::format("{}: must be at least 1ms", field));
    return false;
  }
  *out = *d;
  return true;
}

}  // namespace

std::optional<RetryPolicy> CompileIstioRetries(const Doc& doc, const YAML::Node& n,
                                               const std::string& field, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field,
                    {"attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities", "backoff"},
                    sink, "unknown field; ignored");
  RetryPolicy p = IstioDefaultRetry();  // retryOn unset keeps the default conditions
  p.is_default = false;
  p.source = sink.Location(doc, n);
  p.num_retries = 0;  // attempts unset: 0 (proto default), retries off
  bool ok = true;
  if (const YAML::Node a = Child(n, "attempts"); Present(a)) {
    int64_t v = 0;
    const std::string s = a.IsScalar() ? a.Scalar() : "";
    auto [p2, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p2 != s.data() + s.size()) {
      sink.Invalid(doc, a, fmt::format("{}.attempts: '{}' is not an integer", field, s));
      return std::nullopt;
    }
    if (v < 0) {
      sink.Invalid(doc, a, fmt::format("{}.attempts: cannot be negative", field));
      return std::nullopt;
    }
    if (v > kMaxRetries) {
      sink.Invalid(doc, a, fmt::format("{}.attempts: {} is more than {}", field, v, kMaxRetries));
      return std::nullopt;
    }
    p.num_retries = static_cast<uint32_t>(v);
  }
  if (const YAML::Node t = Child(n, "perTryTimeout"); Present(t)) {
    ok = PositiveDuration(doc, t, Field(field, "perTryTimeout"), sink, &p.per_try_timeout) && ok;
  }
  if (const YAML::Node b = Child(n, "backoff"); Present(b)) {
    ok = PositiveDuration(doc, b, Field(field, "backoff"), sink, &p.backoff_base) && ok;
  }
  if (const YAML::Node r = Child(n, "retryOn"); Present(r)) {
    if (!r.IsScalar()) {
      sink.Invalid(doc, r, fmt::format("{}.retryOn: expected a string", field));
      return std::nullopt;
    }
    if (!r.Scalar().empty()) {
      ok = ParseRetryOn(doc, r, Field(field, "retryOn"), r.Scalar(), sink, &p) && ok;
    }
  }
  if (const YAML::Node l = Child(n, "retryRemoteLocalities"); Present(l)) {
    if (!l.IsScalar() || (l.Scalar() != "true" && l.Scalar() != "false")) {
      sink.Invalid(doc, l, fmt::format("{}.retryRemoteLocalities: expected true or false",
                                       field));
      return std::nullopt;
    }
    p.retry_remote_localities = l.Scalar() == "true";
  }
  if (!ok) return std::nullopt;
  if (p.num_retries == 0 &&
      (Present(Child(n, "perTryTimeout")) || Present(Child(n, "retryOn")) ||
       Present(Child(n, "retryRemoteLocalities")))) {
    // istiod refuses a policy configured while disabled.
    sink.Invalid(doc, n, fmt::format("{}: retry policy configured when attempts are 0 "
                                     "(disabled)", field));
    return std::nullopt;
  }
  return p;
}

std::optional<RetryPolicy> CompileGatewayRetry(const Doc& doc, const YAML::Node& n,
                                               const std::string& field, Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field, {"attempts", "codes", "backoff"}, sink);
  RetryPolicy p = IstioDefaultRetry();
  p.is_default = false;
  p.source = sink.Location(doc, n);
  if (const YAML::Node a = Child(n, "attempts"); Present(a)) {
    auto v = Uint(doc, a, Field(field, "attempts"), kMaxRetries, sink);
    if (!v) {
      sink.Invalid(doc, a, fmt::format("{}.attempts: expected 0..{}", field, kMaxRetries));
      return std::nullopt;
    }
    p.num_retries = static_cast<uint32_t>(*v);
  }
  if (const YAML::Node c = Child(n, "codes"); Present(c)) {
    if (!c.IsSequence()) {
      sink.Invalid(doc, c, fmt::format("{}.codes: expected a list of status codes", field));
      return std::nullopt;
    }
    for (size_t i = 0; i < c.size(); ++i) {
      const std::string s = c[i].IsScalar() ? c[i].Scalar() : "";
      auto code = StatusCode(s);
      // The CRD allows 400..599.
      if (!code || *code < 400 || *code > 599) {
        sink.Invalid(doc, c[i], fmt::format("{}: '{}' is not a status code in 400..599",
                                            Field(Field(field, "codes"), i), s));
        return std::nullopt;
      }
      p.status_codes.push_back(*code);
      p.retry_on |= kRetryRetriableStatusCodes;
    }
  }
  if (const YAML::Node b = Child(n, "backoff"); Present(b)) {
    if (!PositiveDuration(doc, b, Field(field, "backoff"), sink, &p.backoff_base)) {
      return std::nullopt;
    }
  }
  if (p.num_retries == 0) {
    p.retry_on = 0;  // as istiod: no conditions on a disabled policy
    p.status_codes.clear();
  }
  return p;
}

}  // namespace ambit::waypoint::route::internal
