// XdsTransport: how DeltaXdsClient reaches the control plane. The production
// implementation is GrpcXdsTransport (grpc_transport.h); tests may inject
// their own. All methods are blocking and called from the client's stream
// thread, except XdsStream::Cancel which may be called from any thread.
#pragma once

#include <memory>

#include "common/base/status.h"
#include "proto/discovery.pb.h"

namespace ambit::xds {

using DeltaRequest = ::envoy::service::discovery::v3::DeltaDiscoveryRequest;
using DeltaResponse = ::envoy::service::discovery::v3::DeltaDiscoveryResponse;

// One DeltaAggregatedResources stream.
class XdsStream {
 public:
  virtual ~XdsStream() = default;
  // False when the stream is broken (Finish() tells why).
  virtual bool Write(const DeltaRequest& request) = 0;
  // Blocks for the next response; false when the stream ended.
  virtual bool Read(DeltaResponse* response) = 0;
  // After Read() returned false: the final status of the stream.
  virtual Status Finish() = 0;
  // Thread-safe: makes a blocked Read()/Write() return false.
  virtual void Cancel() = 0;
};

class XdsTransport {
 public:
  virtual ~XdsTransport() = default;
  // Opens a new stream (headers and credentials are the transport's business).
  virtual StatusOr<std::unique_ptr<XdsStream>> Open() = 0;
};

}  // namespace ambit::xds
