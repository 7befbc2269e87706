// xDS resource naming (ISTIO-COMPAT §5.1): Workload = uid, Service =
// "namespace/hostname", Authorization = "namespace/name".
#pragma once

#include <optional>
#include <string_view>

#include "common/mesh/types.h"

namespace ambit::xds_adapters {

// "ns/host" with both parts non-empty and no '/' in the host; else nullopt.
// A removed Address name that is not a known workload uid is a service key
// when this parses it.
std::optional<mesh::NamespacedHostname> ParseServiceKey(std::string_view name);

}  // namespace ambit::xds_adapters
