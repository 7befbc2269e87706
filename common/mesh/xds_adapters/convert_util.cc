#include "common/mesh/xds_adapters/convert_util.h"

#include <array>
#include <cstring>
#include <string>

#include "common/mesh/xds_adapters/convert.h"

namespace ambit::xds_adapters {
namespace internal {

namespace pb = ::istio::workload;

Status Invalid(std::string_view what, std::string_view why) {
  return absl::InvalidArgumentError(std::string(what) + ": " + std::string(why));
}

StatusOr<uint16_t> Port(uint32_t value, std::string_view what) {
  if (value > 65535) return Invalid(what, "port " + std::to_string(value) + " is above 65535");
  return static_cast<uint16_t>(value);
}

StatusOr<mesh::NetworkAddress> ConvertNetworkAddress(const pb::NetworkAddress& a,
                                                      std::string_view what) {
  mesh::NetworkAddress out;
  out.network = a.network();
  ASSIGN_OR_RETURN(out.ip, IpFromBytes(a.address(), what));
  const uint32_t full = out.ip.is_v4() ? 32 : 128;
  if (a.has_length() && a.length() > full) {
    return Invalid(
        what, "prefix length " + std::to_string(a.length()) + " is above " + std::to_string(full));
  }
  out.prefix_len = static_cast<uint8_t>(a.has_length() ? a.length() : full);
  return out;
}

StatusOr<mesh::GatewayAddress> ConvertGateway(const pb::GatewayAddress& g, std::string_view what) {
  mesh::GatewayAddress out;
  switch (g.destination_case()) {
    case pb::GatewayAddress::kHostname:
      out.destination =
          mesh::NamespacedHostname{g.hostname().namespace_(), g.hostname().hostname()};
      break;
    case pb::GatewayAddress::kAddress: {
      ASSIGN_OR_RETURN(out.destination, ConvertNetworkAddress(g.address(), what));
      break;
    }
    default:
      return Invalid(what, "has neither hostname nor address");
  }
  if (g.hbone_mtls_port() != 0) {
    ASSIGN_OR_RETURN(out.hbone_mtls_port, Port(g.hbone_mtls_port(), what));
  }
  return out;
}

StatusOr<mesh::PortMap> ConvertPorts(const google::protobuf::RepeatedPtrField<pb::Port>& ports,
                                      std::string_view what) {
  mesh::PortMap out;
  for (const pb::Port& p : ports) {
    ASSIGN_OR_RETURN(uint16_t service_port, Port(p.service_port(), what));
    ASSIGN_OR_RETURN(uint16_t target_port, Port(p.target_port(), what));
    out[service_port] = target_port;
  }
  return out;
}

}  // namespace internal

StatusOr<net::IpAddress> IpFromBytes(std::string_view bytes, std::string_view what) {
  if (bytes.size() == 4) {
    uint32_t host = 0;
    for (char c : bytes) host = (host << 8) | static_cast<uint8_t>(c);
    return net::IpAddress::V4(host);
  }
  if (bytes.size() == 16) {
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), bytes.data(), 16);
    return net::IpAddress::V6(b);
  }
  return internal::Invalid(
      what, "address has " + std::to_string(bytes.size()) + " bytes; want 4 (IPv4) or 16 (IPv6)");
}

}  // namespace ambit::xds_adapters
