// Environment → xDS client options (ISTIO-COMPAT §5.1, §9.3), for the agent's
// composition root:
//   XDS_ADDRESS   unset: https://istiod.istio-system.svc:15012 when
//                 KUBERNETES_SERVICE_HOST is set, else https://localhost:15012;
//                 set but empty: xDS disabled
//   XDS_ROOT_CA   default ./var/run/secrets/istio/root-cert.pem (file | SYSTEM | PEM)
//   ALT_XDS_HOSTNAME, XDS_HEADER_<name>=<value>
//   AUTH_TOKEN    default ./var/run/secrets/tokens/istio-token
//   CLUSTER_ID / ISTIO_META_CLUSTER_ID, node fields: see node.h
//   XDS_ON_DEMAND=true is refused (not implemented).
#pragma once

#include <map>
#include <string>

#include "common/base/status.h"
#include "common/xds/client.h"

namespace ambit::xds {

struct XdsEnvConfig {
  bool enabled = true;
  XdsClientOptions client;
  GrpcTransportOptions grpc;
};

StatusOr<XdsEnvConfig> XdsConfigFromEnv(const std::map<std::string, std::string>& env);

}  // namespace ambit::xds
