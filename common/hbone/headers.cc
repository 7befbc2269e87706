#include "common/hbone/headers.h"

#include <array>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/hbone/authority.h"

namespace ambit::hbone {

namespace {

constexpr std::array<std::string_view, 4> kWorkloadTypes = {"deployment", "cronjob", "pod",
                                                            "job"};

bool IsKnownWorkloadType(std::string_view t) {
  for (auto k : kWorkloadTypes) {
    if (k == t) return true;
  }
  return false;
}

void Append(std::string& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  if (!out.empty()) out += ',';
  out.append(key).append("=").append(value);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on `sep` (no quoting awareness; callers validate the pieces).
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

bool ConsumeSuffix(std::string_view& s, std::string_view suffix) {
  if (!s.ends_with(suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::string RandomHex(std::mt19937_64& rng, size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  while (s.empty() || AllZero(s)) {
    s.clear();
    for (size_t i = 0; i < digits; ++i) s += kHex[rng() & 0xf];
  }
  return s;
}

// Parses a forwarded-pair value: token or quoted-string.
StatusOr<std::string> PairValue(std::string_view v) {
  if (v.empty()) return absl::InvalidArgumentError("empty value");
  if (v.front() != '"') {
    if (v.find('"') != std::string_view::npos) return absl::InvalidArgumentError("stray quote");
    return std::string(v);
  }
  if (v.size() < 2 || v.back() != '"') return absl::InvalidArgumentError("unterminated quote");
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    else if (v[i] == '"') return absl::InvalidArgumentError("unescaped quote");
    out += v[i];
  }
  return out;
}

}  // namespace

bool Baggage::empty() const { return *this == Baggage{}; }

std::string FormatBaggage(const Baggage& b) {
  std::string out;
  Append(out, "k8s.cluster.name", b.cluster_id);
  Append(out, "k8s.namespace.name", b.namespace_name);
  if (!b.workload_type.empty()) {
    Append(out, "k8s." + b.workload_type + ".name", b.workload_name);
  }
  Append(out, "service.name", b.service_name);
  Append(out, "service.version", b.service_version);
  Append(out, "cloud.region", b.region);
  Append(out, "cloud.availability_zone", b.zone);
  return out;
}

Baggage ParseBaggage(std::string_view value) {
  Baggage b;
  for (std::string_view member : Split(value, ',')) {
    member = Trim(member.substr(0, member.find(';')));  // drop properties
    size_t eq = member.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(member.substr(0, eq));
    std::string value_str(Trim(member.substr(eq + 1)));
    if (value_str.empty()) continue;
    if (key == "k8s.cluster.name") b.cluster_id = value_str;
    else if (key == "k8s.namespace.name") b.namespace_name = value_str;
    else if (key == "service.name") b.service_name = value_str;
    else if (key == "service.version") b.service_version = value_str;
    else if (key == "cloud.region") b.region = value_str;
    else if (key == "cloud.availability_zone") b.zone = value_str;
    else if (ConsumePrefix(key, "k8s.") && ConsumeSuffix(key, ".name") &&
             IsKnownWorkloadType(key)) {
      b.workload_type = std::string(key);
      b.workload_name = value_str;
    }
  }
  return b;
}

StatusOr<std::string> FormatForwarded(std::string_view client_ip, uint16_t client_port,
                                      std::string_view host) {
  ASSIGN_OR_RETURN(Authority a, AuthorityFromIp(client_ip, client_port));
  std::string out = "for=\"" + a.ToString() + "\"";
  if (!host.empty()) {
    if (!IsValidHostname(host)) {
      return absl::InvalidArgumentError("forwarded host is not a valid hostname: " +
                                        std::string(host.substr(0, 64)));
    }
    out.append(";host=").append(host);
  }
  return out;
}

StatusOr<Forwarded> ParseForwarded(std::string_view value) {
  Forwarded f;
  if (value.size() > 4096) return absl::InvalidArgumentError("forwarded header too long");
  for (std::string_view element : Split(value, ',')) {
    for (std::string_view pair : Split(element, ';')) {
      pair = Trim(pair);
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError("forwarded pair without '=': " +
                                          std::string(pair.substr(0, 64)));
      }
      std::string key = ToLower(Trim(pair.substr(0, eq)));
      auto v = PairValue(Trim(pair.substr(eq + 1)));
      if (!v.ok()) {
        return absl::InvalidArgumentError("forwarded " + key + ": " +
                                          std::string(v.status().message()));
      }
      if (key == "for" && !f.for_value) f.for_value = *std::move(v);
      if (key == "host" && !f.host) f.host = *std::move(v);
    }
  }
  return f;
}

std::string GenerateTraceparent() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return "00-" + RandomHex(rng, 32) + "-" + RandomHex(rng, 16) + "-00";
}

bool IsValidTraceparent(std::string_view v) {
  if (v.size() != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  std::string_view version = v.substr(0, 2);
  std::string_view trace = v.substr(3, 32);
  std::string_view parent = v.substr(36, 16);
  std::string_view flags = v.substr(53, 2);
  if (!IsLowerHex(version) || !IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return false;
  }
  return version != "ff" && !AllZero(trace) && !AllZero(parent);
}

}  // namespace ambit::hbone
