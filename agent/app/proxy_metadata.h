// Istio proxy metadata as ztunnel reads it (ISTIO-COMPAT §9.3): the
// `proxyMetadata` of the mesh config file (./etc/istio/config/mesh,
// `defaultConfig`), then of the PROXY_CONFIG environment variable (YAML
// ProxyConfig), then every ISTIO_META_<K> variable; later sources win and an
// ISTIO_META_ prefix on a YAML key is dropped. The DNS proxy reads
// DNS_CAPTURE ("true" or absent = on) and DNS_PROXY_ADDR from it.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/base/status.h"

namespace ambit::agent {

inline constexpr const char* kMeshConfigPath = "./etc/istio/config/mesh";

// `env`: the process environment. Error: a mesh file or PROXY_CONFIG that is
// not YAML of the expected shape.
StatusOr<std::map<std::string, std::string>> ProxyMetadata(
    const std::map<std::string, std::string>& env, const std::string& mesh_config_path = kMeshConfigPath);

// ProxyConfig `concurrency` (mesh file defaultConfig, then PROXY_CONFIG;
// later wins): ztunnel's worker-thread default when set (0 = all cores).
StatusOr<std::optional<int>> ProxyConcurrency(const std::map<std::string, std::string>& env,
                                              const std::string& mesh_config_path = kMeshConfigPath);

// DNS_CAPTURE semantics: enabled unless set to something other than "true"
// (case-insensitive).
bool DnsCaptureEnabled(const std::map<std::string, std::string>& metadata);

}  // namespace ambit::agent
