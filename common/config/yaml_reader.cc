#include "common/config/yaml_reader.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <strings.h>

#include <charconv>

namespace ambit::config {

std::string Sub(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Idx(std::string_view path, size_t i) { return fmt::format("{}[{}]", path, i); }

Status YamlReader::Error(const YAML::Node& at, std::string_view path,
                         std::string_view msg) const {
  return absl::InvalidArgumentError(
      fmt::format("{}:{}: {}: {}", file_, Line(at), path.empty() ? "<top>" : path, msg));
}

Status YamlReader::CheckDepth(const YAML::Node& n, std::string_view path, int depth) const {
  if (depth > kMaxYamlDepth) {
    return Error(n, path, fmt::format("nesting deeper than {} levels", kMaxYamlDepth));
  }
  if (n.IsSequence()) {
    for (const auto& child : n) RETURN_IF_ERROR(CheckDepth(child, path, depth + 1));
  } else if (n.IsMap()) {
    for (const auto& kv : n) {
      RETURN_IF_ERROR(CheckDepth(kv.first, path, depth + 1));
      RETURN_IF_ERROR(CheckDepth(kv.second, path, depth + 1));
    }
  }
  return absl::OkStatus();
}

Status YamlReader::ExpectMap(const YAML::Node& n, std::string_view path) const {
  if (!n.IsMap()) return Error(n, path, "expected a mapping");
  return absl::OkStatus();
}

Status YamlReader::ExpectSeq(const YAML::Node& n, std::string_view path) const {
  if (!n.IsSequence()) return Error(n, path, "expected a list");
  return absl::OkStatus();
}

Status YamlReader::CheckKeys(const YAML::Node& map, std::string_view path,
                             std::initializer_list<std::string_view> allowed) const {
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return Error(kv.first, path, "keys must be plain strings");
    const std::string& key = kv.first.Scalar();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == key;
    if (!known) return Error(kv.first, Sub(path, key), "unknown field");
  }
  return absl::OkStatus();
}

Status YamlReader::ToString(const YAML::Node& n, std::string_view path,
                            std::string* out) const {
  if (!n.IsScalar()) return Error(n, path, "expected a string");
  *out = n.Scalar();
  return absl::OkStatus();
}

Status YamlReader::ToBool(const YAML::Node& n, std::string_view path, bool* out) const {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      *out = true;
      return absl::OkStatus();
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      *out = false;
      return absl::OkStatus();
    }
  }
  return Error(n, path, fmt::format("'{}' is not a boolean (true|false)",
                                    n.IsScalar() ? n.Scalar() : "<non-scalar>"));
}

Status YamlReader::ToUint(const YAML::Node& n, std::string_view path, uint64_t max,
                          uint64_t* out) const {
  if (!n.IsScalar()) return Error(n, path, "expected a number");
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return Error(n, path, fmt::format("'{}' is not a non-negative integer", s));
  }
  if (v > max) return Error(n, path, fmt::format("{} is out of range (max {})", v, max));
  *out = v;
  return absl::OkStatus();
}

Status YamlReader::ToPort(const YAML::Node& n, std::string_view path, uint16_t* out) const {
  uint64_t v = 0;
  if (!n.IsScalar()) return Error(n, path, "expected a port number");
  RETURN_IF_ERROR(ToUint(n, path, 65535, &v));
  if (v == 0) return Error(n, path, "port 0 is not allowed");
  *out = static_cast<uint16_t>(v);
  return absl::OkStatus();
}

Status YamlReader::ToIp(const YAML::Node& n, std::string_view path, std::string* out) const {
  if (!n.IsScalar()) return Error(n, path, "expected an IP address");
  const std::string& s = n.Scalar();
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) != 1 && inet_pton(AF_INET6, s.c_str(), buf) != 1) {
    return Error(n, path, fmt::format("'{}' is not an IP address", s));
  }
  *out = s;
  return absl::OkStatus();
}

Status YamlReader::ToStringList(const YAML::Node& n, std::string_view path,
                                std::vector<std::string>* out) const {
  RETURN_IF_ERROR(ExpectSeq(n, path));
  out->clear();
  for (size_t i = 0; i < n.size(); ++i) {
    std::string s;
    RETURN_IF_ERROR(ToString(n[i], Idx(path, i), &s));
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

Status YamlReader::OptString(const YAML::Node& map, std::string_view path, const char* key,
                             std::string* out) const {
  if (!Has(map, key)) return absl::OkStatus();
  return ToString(map[key], Sub(path, key), out);
}

Status YamlReader::OptBool(const YAML::Node& map, std::string_view path, const char* key,
                           bool* out) const {
  if (!Has(map, key)) return absl::OkStatus();
  return ToBool(map[key], Sub(path, key), out);
}

Status YamlReader::ReqString(const YAML::Node& map, std::string_view path, const char* key,
                             std::string* out) const {
  if (!Has(map, key)) return Error(map, Sub(path, key), "required field is missing");
  RETURN_IF_ERROR(ToString(map[key], Sub(path, key), out));
  if (out->empty()) return Error(map[key], Sub(path, key), "must not be empty");
  return absl::OkStatus();
}

Status YamlReader::ToEnum(const YAML::Node& n, std::string_view path,
                          std::initializer_list<std::string_view> names, int* out) const {
  if (n.IsScalar()) {
    int i = 0;
    for (std::string_view name : names) {
      if (name.size() == n.Scalar().size() &&
          strncasecmp(name.data(), n.Scalar().data(), name.size()) == 0) {
        *out = i;
        return absl::OkStatus();
      }
      ++i;
    }
  }
  std::string allowed;
  for (std::string_view name : names) {
    if (!allowed.empty()) allowed += "|";
    allowed += name;
  }
  return Error(n, path, fmt::format("'{}' is not one of {}",
                                    n.IsScalar() ? n.Scalar() : "<non-scalar>", allowed));
}

}  // namespace ambit::config
