// HBONE request/response header values (ISTIO-COMPAT §2.3): `baggage`,
// `forwarded` and `traceparent` — formatting and lenient-but-safe parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace ambit::hbone {

inline constexpr std::string_view kBaggageHeader = "baggage";
inline constexpr std::string_view kForwardedHeader = "forwarded";
inline constexpr std::string_view kTraceparentHeader = "traceparent";
inline constexpr std::string_view kForwardedNetworkHeader = "x-forwarded-network";

// Workload labels carried in `baggage`; empty fields are omitted.
struct Baggage {
  std::string cluster_id;        // k8s.cluster.name
  std::string namespace_name;    // k8s.namespace.name
  std::string workload_type;     // deployment | cronjob | pod | job
  std::string workload_name;     // k8s.<workload_type>.name
  std::string service_name;      // service.name
  std::string service_version;   // service.version
  std::string region;            // cloud.region
  std::string zone;              // cloud.availability_zone

  bool empty() const;
  bool operator==(const Baggage&) const = default;
};

// "k8s.cluster.name=c1,k8s.namespace.name=ns,..." (fixed key order).
std::string FormatBaggage(const Baggage& baggage);
// Unknown keys and malformed members are skipped: baggage only feeds
// metric labels and must not fail a connection.
Baggage ParseBaggage(std::string_view value);

// The parameters of a `forwarded` header we care about (first element).
struct Forwarded {
  std::optional<std::string> for_value;  // e.g. "10.0.0.1:3456", "[fd00::1]:80"
  std::optional<std::string> host;       // service hostname
  bool operator==(const Forwarded&) const = default;
};

// for="<ip:port>"[;host=<host>]; IPv6 clients are bracketed. `client_ip`
// must be an IP literal; `host` may be empty.
StatusOr<std::string> FormatForwarded(std::string_view client_ip, uint16_t client_port,
                                      std::string_view host);
// RFC 7239 syntax (token or quoted-string values, ';' pairs, ',' elements).
StatusOr<Forwarded> ParseForwarded(std::string_view value);

// W3C traceparent "00-<32 hex>-<16 hex>-00" with random ids.
std::string GenerateTraceparent();
// Exactly 55 chars, lower-case hex fields, non-zero ids, version != ff.
bool IsValidTraceparent(std::string_view value);

}  // namespace ambit::hbone
