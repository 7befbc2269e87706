// Delta xDS vocabulary shared by the client, its transport and its handler:
// type URLs, a received resource, a per-resource rejection, and the handler
// interface that turns resources into state (agent/xds_adapters).
#pragma once

#include <google/protobuf/any.pb.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace ambit::xds {

inline constexpr std::string_view kAddressType = "type.googleapis.com/istio.workload.Address";
inline constexpr std::string_view kAuthorizationType =
    "type.googleapis.com/istio.security.Authorization";

// One resource of a DeltaDiscoveryResponse.
struct XdsResource {
  std::string name;
  std::string version;
  google::protobuf::Any resource;
};

// A resource the handler refused; it ends up in the NACK's error_detail.
struct ResourceError {
  std::string name;
  std::string reason;
};

// Receives what the control plane sends. Every method runs on the control
// loop (io::Loop passed to DeltaXdsClient::Create), never on the gRPC thread.
class XdsHandler {
 public:
  virtual ~XdsHandler() = default;
  // One call per DeltaDiscoveryResponse. Returns the rejected resources
  // (empty = ACK); the valid ones of the same response must still be applied.
  virtual std::vector<ResourceError> OnResources(std::string_view type_url,
                                                 std::vector<XdsResource> added,
                                                 std::vector<std::string> removed) = 0;
  // Every subscribed type has been received once (readiness). Called once.
  virtual void OnReady() {}
  // A stream ended (or could not be opened); the client reconnects by itself.
  virtual void OnStreamError(const Status& /*status*/) {}
};

}  // namespace ambit::xds
