// Scalar conversions for the Istio translators: wildcards, IPs, ports,
// service accounts, selectors.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>

#include "common/authz/translate_internal.h"

namespace ambit::authz::internal {

void FindingSink::Add(const Resource& r, std::string message) const {
  Add(*r.config, r.ns, std::move(message));
}

void FindingSink::Add(const config::ResourceConfig& r, std::string_view ns,
                      std::string message) const {
  Finding f;
  f.location = fmt::format("{}:{}", r.file, r.line);
  f.kind = r.kind;
  f.resource = fmt::format("{}/{}", ns, r.name);
  f.message = std::move(message);
  out_->push_back(std::move(f));
}

YAML::Node Child(const YAML::Node& n, std::string_view key) {
  if (!n.IsDefined() || !n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : n) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

mesh::StringMatch Wildcard(std::string_view v) {
  using K = mesh::StringMatch::Kind;
  if (v == "*") return {K::kPresence, {}};
  if (v.starts_with('*')) return {K::kSuffix, std::string(v.substr(1))};
  if (v.ends_with('*')) return {K::kPrefix, std::string(v.substr(0, v.size() - 1))};
  return {K::kExact, std::string(v)};
}

StatusOr<std::vector<std::string>> StringList(const YAML::Node& n, std::string_view field) {
  if (!n.IsSequence()) {
    return absl::InvalidArgumentError(fmt::format("{}: expected a list of strings", field));
  }
  std::vector<std::string> out;
  out.reserve(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      return absl::InvalidArgumentError(fmt::format("{}[{}]: expected a string", field, i));
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

StatusOr<net::Cidr> ParseCidr(std::string_view text, std::string_view field) {
  auto cidr = net::Cidr::Parse(text);
  if (!cidr.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not an IP address or CIDR", field, text));
  }
  return *cidr;
}

StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view field) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty() || value == 0 ||
      value > 65535) {
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not a port number (1-65535)", field, text));
  }
  return static_cast<uint16_t>(value);
}

StatusOr<mesh::ServiceAccountMatch> ParseServiceAccount(std::string_view text,
                                                         std::string_view default_ns,
                                                         std::string_view field) {
  const size_t slash = text.find('/');
  mesh::ServiceAccountMatch sa;
  if (slash == std::string_view::npos) {
    sa.ns = std::string(default_ns);
    sa.service_account = std::string(text);
  } else {
    sa.ns = std::string(text.substr(0, slash));
    sa.service_account = std::string(text.substr(slash + 1));
  }
  if (sa.ns.empty() || sa.service_account.empty() ||
      sa.service_account.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: '{}' is not a service account (expected 'namespace/name' or 'name')", field, text));
  }
  return sa;
}

StatusOr<std::optional<Labels>> ParseSelector(const YAML::Node& spec) {
  const YAML::Node sel = Child(spec, "selector");
  if (!sel.IsDefined() || sel.IsNull()) return std::optional<Labels>();
  if (!sel.IsMap()) return absl::InvalidArgumentError("spec.selector: expected a map");
  const YAML::Node ml = Child(sel, "matchLabels");
  if (!ml.IsDefined() || ml.IsNull()) return std::optional<Labels>();
  if (!ml.IsMap()) return absl::InvalidArgumentError("spec.selector.matchLabels: expected a map");
  Labels labels;
  for (const auto& kv : ml) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      return absl::InvalidArgumentError(
          "spec.selector.matchLabels: expected string keys and values");
    }
    labels[kv.first.Scalar()] = kv.second.Scalar();
  }
  if (labels.empty()) return std::optional<Labels>();
  return std::optional<Labels>(std::move(labels));
}

bool SelectorMatches(const Labels& selector, const Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string JoinNames(const std::vector<std::string>& names) {
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace ambit::authz::internal
