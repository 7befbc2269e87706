#include "agent/app/proxy_metadata.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fmt/format.h>

namespace ambit::agent {
namespace {

constexpr std::string_view kMetaPrefix = "ISTIO_META_";

std::string StripPrefix(const std::string& key) {
  return key.starts_with(kMetaPrefix) ? key.substr(kMetaPrefix.size()) : key;
}

// Adds `node["proxyMetadata"]` (a map of strings) to `out`.
Status AddFromYaml(const YAML::Node& pc, std::string_view what, std::map<std::string, std::string>& out) {
  if (!pc || pc.IsNull()) return absl::OkStatus();
  if (!pc.IsMap()) return absl::InvalidArgumentError(fmt::format("{}: expected a ProxyConfig map", what));
  YAML::Node md = pc["proxyMetadata"];
  if (!md || md.IsNull()) return absl::OkStatus();
  if (!md.IsMap()) return absl::InvalidArgumentError(fmt::format("{}: proxyMetadata must be a map", what));
  for (const auto& kv : md) {
    if (!kv.second.IsScalar()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: proxyMetadata.{} must be a string", what, kv.first.as<std::string>()));
    }
    out[StripPrefix(kv.first.as<std::string>())] = kv.second.as<std::string>();
  }
  return absl::OkStatus();
}

StatusOr<YAML::Node> Load(const std::string& text, std::string_view what, bool file) {
  try {
    return file ? YAML::LoadFile(text) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace

StatusOr<std::map<std::string, std::string>> ProxyMetadata(const std::map<std::string, std::string>& env,
                                                           const std::string& mesh_config_path) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!mesh_config_path.empty() && std::filesystem::exists(mesh_config_path, ec)) {
    ASSIGN_OR_RETURN(YAML::Node mesh, Load(mesh_config_path, mesh_config_path, true));
    if (mesh.IsMap()) RETURN_IF_ERROR(AddFromYaml(mesh["defaultConfig"], mesh_config_path, out));
  }
  if (auto it = env.find("PROXY_CONFIG"); it != env.end() && !it->second.empty()) {
    ASSIGN_OR_RETURN(YAML::Node pc, Load(it->second, "PROXY_CONFIG", false));
    RETURN_IF_ERROR(AddFromYaml(pc, "PROXY_CONFIG", out));
  }
  for (const auto& [key, value] : env) {
    if (key.starts_with(kMetaPrefix)) out[StripPrefix(key)] = value;
  }
  return out;
}

namespace {

Status ReadConcurrency(const YAML::Node& pc, std::string_view what, std::optional<int>& out) {
  if (!pc || !pc.IsMap()) return absl::OkStatus();
  YAML::Node c = pc["concurrency"];
  if (!c || c.IsNull()) return absl::OkStatus();
  try {
    int n = c.as<int>();
    if (n < 0 || n > 1024) throw YAML::Exception(YAML::Mark::null_mark(), "range");
    out = n;
  } catch (const YAML::Exception&) {
    return absl::InvalidArgumentError(
        fmt::format("{}: concurrency must be a whole number 0..1024 (0 = all cores)", what));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::optional<int>> ProxyConcurrency(const std::map<std::string, std::string>& env,
                                              const std::string& mesh_config_path) {
  std::optional<int> out;
  std::error_code ec;
  if (!mesh_config_path.empty() && std::filesystem::exists(mesh_config_path, ec)) {
    ASSIGN_OR_RETURN(YAML::Node mesh, Load(mesh_config_path, mesh_config_path, true));
    if (mesh.IsMap()) RETURN_IF_ERROR(ReadConcurrency(mesh["defaultConfig"], mesh_config_path, out));
  }
  if (auto it = env.find("PROXY_CONFIG"); it != env.end() && !it->second.empty()) {
    ASSIGN_OR_RETURN(YAML::Node pc, Load(it->second, "PROXY_CONFIG", false));
    RETURN_IF_ERROR(ReadConcurrency(pc, "PROXY_CONFIG", out));
  }
  return out;
}

bool DnsCaptureEnabled(const std::map<std::string, std::string>& metadata) {
  auto it = metadata.find("DNS_CAPTURE");
  if (it == metadata.end()) return true;
  std::string v = it->second;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true";
}

}  // namespace ambit::agent
