// Environment → xDS client options (ISTIO-COMPAT §5.1, §9.3), for the agent's
// composition root:
//   XDS_ADDRESS   unset: https://istiod.istio-system.svc:15012 when
//                 KUBERNETES_SERVICE_HOST is set, else https://localhost:15012;
//                 set but empty: xDS disabled
//   XDS_ROOT_CA   default ./var/run/secrets/istio/root-cert.pem (file | SYSTEM | PEM)
//   ALT_XDS_HOSTNAME, XDS_HEADER_<name>=<value>
//   AUTH_TOKEN    a file (re-read per request) if it exists, else the token
//                 itself; unset: the projected token file if it exists, else
//                 no authorization header (ztunnel's AuthSource::None)
//   CLUSTER_ID / ISTIO_META_CLUSTER_ID, node fields: see node.h
//   XDS_ON_DEMAND true|false: recorded in `on_demand`; the client still
//                 subscribes to every Address (a superset of what on-demand
//                 lookups would fetch), see agent/app/README.md.
#pragma once

#include <map>
#include <string>

#include "common/base/status.h"
#include "common/xds/client.h"

namespace ambit::xds {

struct XdsEnvConfig {
  bool enabled = true;
  bool on_demand = false;  // XDS_ON_DEMAND=true
  XdsClientOptions client;
  GrpcTransportOptions grpc;
};

inline constexpr const char* kDefaultAuthTokenPath = "./var/run/secrets/tokens/istio-token";

// env[key], or `def` when unset (an empty value counts as set).
std::string GetOr(const std::map<std::string, std::string>& env, const std::string& key,
                  std::string def = {});
// "https://host:port" / "http://host:port" -> "host:port" (CA_ADDRESS, XDS_ADDRESS).
std::string StripScheme(std::string addr);

// The AUTH_TOKEN setting for the xDS and CA clients: a path or a literal
// token; empty (no header) when unset and the default file is missing.
std::string AuthTokenFromEnv(const std::map<std::string, std::string>& env);

StatusOr<XdsEnvConfig> XdsConfigFromEnv(const std::map<std::string, std::string>& env);

}  // namespace ambit::xds
