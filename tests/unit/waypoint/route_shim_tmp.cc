// TEMPORARY: stands in for waypoint/route/route_table.cc (the lead's, not on
// main yet) so the Gateway compiler tests link. Removed once it lands.
#include <fmt/format.h>

#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

std::string RouteConfig::TableKey(std::string_view service, uint16_t port) {
  return fmt::format("{}|{}", service, port);
}

const RouteTable* RouteConfig::Find(std::string_view service, uint16_t port) const {
  auto it = tables.find(TableKey(service, port));
  return it == tables.end() ? nullptr : &it->second;
}

std::string Finding::ToString() const {
  return fmt::format("{}: {} {}: {}", location, kind, resource, message);
}

}  // namespace ambit::waypoint::route
