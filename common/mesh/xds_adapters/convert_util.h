// Helpers shared by the convert_*.cc files (not part of the public API).
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <cstdint>
#include <string_view>

#include "common/mesh/types.h"
#include "common/base/status.h"
#include "proto/workload.pb.h"

namespace ambit::xds_adapters::internal {

// InvalidArgument "<what>: <why>".
Status Invalid(std::string_view what, std::string_view why);
StatusOr<uint16_t> Port(uint32_t value, std::string_view what);
StatusOr<mesh::NetworkAddress> ConvertNetworkAddress(const ::istio::workload::NetworkAddress& a,
                                                      std::string_view what);
StatusOr<mesh::GatewayAddress> ConvertGateway(const ::istio::workload::GatewayAddress& g,
                                               std::string_view what);
StatusOr<mesh::PortMap> ConvertPorts(
    const google::protobuf::RepeatedPtrField<::istio::workload::Port>& ports,
    std::string_view what);

}  // namespace ambit::xds_adapters::internal
