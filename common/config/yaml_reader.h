// Small helpers over yaml-cpp for strict config parsing: every error carries
// "file:line: path: message". Never throws; yaml-cpp is only asked for
// structure and raw scalars (we do our own number parsing).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace ambit::config {

inline constexpr int kMaxYamlDepth = 32;

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  static int Line(const YAML::Node& n) { return n.Mark().line + 1; }

  Status Error(const YAML::Node& at, std::string_view path, std::string_view msg) const;

  // Fails if `n` nests deeper than kMaxYamlDepth.
  Status CheckDepth(const YAML::Node& n, std::string_view path, int depth = 0) const;

  Status ExpectMap(const YAML::Node& n, std::string_view path) const;
  Status ExpectSeq(const YAML::Node& n, std::string_view path) const;
  // Rejects keys not in `allowed`, pointing at the offending key.
  Status CheckKeys(const YAML::Node& map, std::string_view path,
                   std::initializer_list<std::string_view> allowed) const;

  // Scalar conversions; `n` must be defined and not null.
  Status ToString(const YAML::Node& n, std::string_view path, std::string* out) const;
  Status ToBool(const YAML::Node& n, std::string_view path, bool* out) const;
  Status ToUint(const YAML::Node& n, std::string_view path, uint64_t max,
                uint64_t* out) const;
  Status ToPort(const YAML::Node& n, std::string_view path, uint16_t* out) const;
  // Textual IPv4/IPv6 address, returned normalised as written.
  Status ToIp(const YAML::Node& n, std::string_view path, std::string* out) const;
  Status ToStringList(const YAML::Node& n, std::string_view path,
                      std::vector<std::string>* out) const;

  // Optional-field accessors on a map: absent or null keeps *out.
  Status OptString(const YAML::Node& map, std::string_view path, const char* key,
                   std::string* out) const;
  Status OptBool(const YAML::Node& map, std::string_view path, const char* key,
                 bool* out) const;
  Status ReqString(const YAML::Node& map, std::string_view path, const char* key,
                   std::string* out) const;

  // Matches `n`'s scalar case-insensitively against `names`; index in *out.
  Status ToEnum(const YAML::Node& n, std::string_view path,
                std::initializer_list<std::string_view> names, int* out) const;

 private:
  std::string file_;
};

// Present and non-null.
inline bool Has(const YAML::Node& map, const char* key) {
  const YAML::Node v = map[key];
  return v.IsDefined() && !v.IsNull();
}

std::string Sub(std::string_view path, std::string_view key);  // "a.b"
std::string Idx(std::string_view path, size_t i);              // "a[3]"

}  // namespace ambit::config
