// Codec of the agent's own address lookups (on-demand resolution of
// hostname-only workloads, on_demand.h): an A or AAAA query for a name, and
// what an upstream answer says about it — addresses with the smallest TTL of
// the answer chain, or a negative answer with its RFC 2308 TTL (SOA of the
// authority section: min(SOA TTL, SOA MINIMUM)). Sans-I/O; the answer is
// untrusted (typed error, never a crash; fuzzed with the message codec).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/address.h"

namespace ambit::dns {

// A recursion-desired query for (name, A|AAAA) with message id `id`.
// InvalidArgument for a name that is not a valid DNS name.
StatusOr<std::vector<uint8_t>> BuildAddressQuery(std::string_view name, bool aaaa, uint16_t id);

enum class LookupOutcome : uint8_t {
  kAddresses,  // NOERROR with at least one address of the asked family
  kNoData,     // NOERROR without one (RFC 2308 NODATA)
  kNxDomain,   // NXDOMAIN
  kServerFailure,  // another rcode (SERVFAIL, REFUSED, ...)
  kMalformed,  // not a usable response to the query
};

struct AddressAnswer {
  LookupOutcome outcome = LookupOutcome::kMalformed;
  std::vector<net::IpAddress> addresses;  // A or AAAA records of the answer section
  uint32_t ttl = 0;  // addresses: min TTL of the answer section's records
  // Negative answers: min(SOA TTL, SOA MINIMUM) when the authority section
  // has a SOA (RFC 2308 §5), else nullopt (RFC 2308: do not cache).
  std::optional<uint32_t> negative_ttl;
  Status status;  // kMalformed: why
};

// Reads the answer to an address query for `aaaa` (A when false).
AddressAnswer ParseAddressAnswer(std::span<const uint8_t> msg, bool aaaa);

}  // namespace ambit::dns
