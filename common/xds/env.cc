#include "common/xds/env.h"

#include <filesystem>
#include <string_view>

namespace ambit::xds {
namespace {

constexpr std::string_view kHeaderPrefix = "XDS_HEADER_";

const std::string* Find(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? nullptr : &it->second;
}

}  // namespace

std::string GetOr(const std::map<std::string, std::string>& env, const std::string& key,
                  std::string def) {
  const std::string* v = Find(env, key);
  return v == nullptr ? std::move(def) : *v;
}

std::string StripScheme(std::string addr) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (addr.starts_with(scheme)) return addr.substr(scheme.size());
  }
  return addr;
}

std::string AuthTokenFromEnv(const std::map<std::string, std::string>& env) {
  if (const std::string* v = Find(env, "AUTH_TOKEN"); v != nullptr) return *v;
  std::error_code ec;
  return std::filesystem::exists(kDefaultAuthTokenPath, ec) ? std::string(kDefaultAuthTokenPath)
                                                            : std::string();
}

StatusOr<XdsEnvConfig> XdsConfigFromEnv(const std::map<std::string, std::string>& env) {
  XdsEnvConfig cfg;
  if (const std::string* od = Find(env, "XDS_ON_DEMAND"); od != nullptr) {
    if (*od != "true" && *od != "false") {
      return absl::InvalidArgumentError("XDS_ON_DEMAND='" + *od + "': expected true or false");
    }
    cfg.on_demand = *od == "true";
  }
  if (const std::string* addr = Find(env, "XDS_ADDRESS"); addr != nullptr) {
    if (addr->empty()) {
      cfg.enabled = false;
      return cfg;
    }
    cfg.grpc.address = *addr;
  } else {
    cfg.grpc.address = Find(env, "KUBERNETES_SERVICE_HOST") != nullptr
                           ? "https://istiod.istio-system.svc:15012"
                           : "https://localhost:15012";
  }
  cfg.client.node = NodeInfoFromEnv(env);
  cfg.grpc.root_ca = GetOr(env, "XDS_ROOT_CA", "./var/run/secrets/istio/root-cert.pem");
  cfg.grpc.alt_hostname = GetOr(env, "ALT_XDS_HOSTNAME", "");
  cfg.grpc.auth_token = AuthTokenFromEnv(env);
  cfg.grpc.cluster_id = cfg.client.node.cluster_id;
  for (const auto& [key, value] : env) {
    if (key.starts_with(kHeaderPrefix) && key.size() > kHeaderPrefix.size()) {
      cfg.grpc.extra_headers.emplace_back(key.substr(kHeaderPrefix.size()), value);
    }
  }
  return cfg;
}

}  // namespace ambit::xds
