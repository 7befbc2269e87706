// GrpcXdsTransport: DeltaAggregatedResources over grpc++ (ISTIO-COMPAT §5.1).
// TLS against XDS_ROOT_CA (file, SYSTEM or inline PEM), or plaintext for
// tests; on every Open(): `authorization: Bearer <token>` (AUTH_TOKEN file
// re-read, literal if no such file), `clusterid`, XDS_HEADER_* extras.
// gRPC reconnect backoff is aligned with the client's (10 ms doubling to 15 s);
// connect timeout 5 s, h2 keepalive 30 s / 10 s, max received message 200 MiB.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/xds/transport.h"

namespace grpc {
class Channel;
}

namespace ambit::xds {

struct GrpcTransportOptions {
  // XDS_ADDRESS: "host:port", an "https://" prefix is accepted and stripped.
  std::string address;
  // XDS_ROOT_CA: PEM file path, "SYSTEM" (gRPC's default roots) or inline PEM.
  std::string root_ca;
  bool insecure_for_test = false;  // plaintext gRPC, tests only
  std::string alt_hostname;        // ALT_XDS_HOSTNAME: TLS name to verify instead
  // AUTH_TOKEN: path of a token file if it exists (re-read per connect), else
  // the token itself. Empty: no authorization header.
  std::string auth_token;
  std::string cluster_id = "Kubernetes";                           // clusterid header
  std::vector<std::pair<std::string, std::string>> extra_headers;  // XDS_HEADER_*
  std::chrono::milliseconds reconnect_initial = std::chrono::milliseconds(10);
  std::chrono::milliseconds reconnect_max = std::chrono::seconds(15);
};

// The AUTH_TOKEN rule: trimmed file contents if `setting` names an existing
// file, else `setting` itself; error if the file is unreadable or empty.
StatusOr<std::string> ResolveXdsToken(const std::string& setting);

class GrpcXdsTransport final : public XdsTransport {
 public:
  static StatusOr<std::unique_ptr<GrpcXdsTransport>> Create(GrpcTransportOptions options);
  StatusOr<std::unique_ptr<XdsStream>> Open() override;

 private:
  GrpcXdsTransport(GrpcTransportOptions options, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(options)), channel_(std::move(channel)) {}
  GrpcTransportOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace ambit::xds
