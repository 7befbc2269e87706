#include "common/mesh/xds_adapters/names.h"

#include <string>

namespace ambit::xds_adapters {

std::optional<mesh::NamespacedHostname> ParseServiceKey(std::string_view name) {
  const size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size())
    return std::nullopt;
  std::string_view host = name.substr(slash + 1);
  if (host.find('/') != std::string_view::npos) return std::nullopt;
  return mesh::NamespacedHostname{std::string(name.substr(0, slash)), std::string(host)};
}

}  // namespace ambit::xds_adapters
