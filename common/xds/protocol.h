// Pure message builders of the delta ADS exchange (ISTIO-COMPAT §5.1): the
// initial subscription per type, ACK and NACK. No I/O; unit-tested directly.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/xds/transport.h"
#include "common/xds/types.h"
#include "proto/envoy_core.pb.h"

namespace ambit::xds {

using VersionMap = std::map<std::string, std::string>;  // resource name → version

// Wildcard subscription (no names) with `node`; `known` becomes
// initial_resource_versions (what we hold from a previous stream).
DeltaRequest InitialRequest(std::string_view type_url, const ::envoy::config::core::v3::Node& node,
                            const VersionMap& known);
// ACK (no errors) or NACK: error_detail{code INVALID_ARGUMENT, message
// NackMessage(errors)}; both carry the response's nonce.
DeltaRequest AckRequest(std::string_view type_url, std::string_view nonce,
                        const std::vector<ResourceError>& errors);
// "<name>: <reason>; <name>: <reason>"
std::string NackMessage(const std::vector<ResourceError>& errors);

}  // namespace ambit::xds
