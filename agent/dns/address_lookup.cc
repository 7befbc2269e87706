#include "agent/dns/address_lookup.h"

#include <fmt/format.h>

#include <algorithm>

#include "agent/dns/message.h"

namespace ambit::dns {
namespace {

uint16_t Get16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}
uint32_t Get32(std::span<const uint8_t> m, size_t at) {
  return (static_cast<uint32_t>(Get16(m, at)) << 16) | Get16(m, at + 2);
}
void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

AddressAnswer Malformed(std::string why) {
  AddressAnswer a;
  a.outcome = LookupOutcome::kMalformed;
  a.status = absl::InvalidArgumentError("DNS answer: " + why);
  return a;
}

// TTLs above 2^31-1 are read as 0 (RFC 2181 §8).
uint32_t Ttl(uint32_t raw) { return raw > 0x7fffffffu ? 0 : raw; }

}  // namespace

StatusOr<std::vector<uint8_t>> BuildAddressQuery(std::string_view name, bool aaaa, uint16_t id) {
  if (name.ends_with('.')) name.remove_suffix(1);
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + name.size() + 6);
  Put16(out, id);
  Put16(out, 0x0100);  // standard query, RD
  Put16(out, 1);       // QDCOUNT
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, 0);
  if (name.empty() || !EncodeName(out, name)) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a valid DNS name", name));
  }
  Put16(out, static_cast<uint16_t>(aaaa ? RecordType::kAaaa : RecordType::kA));
  Put16(out, kClassIn);
  return out;
}

AddressAnswer ParseAddressAnswer(std::span<const uint8_t> m, bool aaaa) {
  if (m.size() < kHeaderSize) return Malformed("shorter than a header");
  const uint16_t flags = Get16(m, 2);
  if ((flags & 0x8000) == 0) return Malformed("not a response");
  const uint8_t rcode = flags & 0x0f;
  const size_t qd = Get16(m, 4), an = Get16(m, 6), ns = Get16(m, 8);
  size_t pos = kHeaderSize;
  bool root = false;
  for (size_t i = 0; i < qd; ++i) {
    if (!SkipName(m, &pos, &root) || pos + 4 > m.size()) return Malformed("truncated question");
    pos += 4;
  }
  AddressAnswer a;
  bool have_ttl = false;
  std::optional<uint32_t> soa_ttl;
  const uint16_t want = static_cast<uint16_t>(aaaa ? RecordType::kAaaa : RecordType::kA);
  for (size_t i = 0; i < an + ns; ++i) {
    if (!SkipName(m, &pos, &root) || pos + 10 > m.size()) return Malformed("truncated record");
    const uint16_t type = Get16(m, pos);
    const uint16_t klass = Get16(m, pos + 2);
    const uint32_t ttl = Ttl(Get32(m, pos + 4));
    const uint16_t rdlen = Get16(m, pos + 8);
    pos += 10;
    if (pos + rdlen > m.size()) return Malformed("record data runs past the end");
    std::span<const uint8_t> rd = m.subspan(pos, rdlen);
    pos += rdlen;
    if (klass != kClassIn) continue;
    if (i < an) {
      if (type == want) {
        if (rd.size() != (aaaa ? 16u : 4u)) return Malformed("address record of a wrong size");
        if (aaaa) {
          std::array<uint8_t, 16> b{};
          std::copy(rd.begin(), rd.end(), b.begin());
          a.addresses.push_back(net::IpAddress::V6(b));
        } else {
          a.addresses.push_back(net::IpAddress::V4(Get32(rd, 0)));
        }
      }
      // The chain's TTL: CNAMEs leading to the addresses count too.
      if (type == want || type == static_cast<uint16_t>(RecordType::kCname)) {
        a.ttl = have_ttl ? std::min(a.ttl, ttl) : ttl;
        have_ttl = true;
      }
    } else if (type == static_cast<uint16_t>(RecordType::kSoa)) {
      if (rd.size() < 22) return Malformed("SOA record too short");
      const uint32_t minimum = Get32(rd, rd.size() - 4);  // the last field
      const uint32_t neg = std::min(ttl, Ttl(minimum));
      soa_ttl = soa_ttl ? std::min(*soa_ttl, neg) : neg;
    }
  }
  if (rcode == static_cast<uint8_t>(Rcode::kNxDomain)) {
    a.outcome = LookupOutcome::kNxDomain;
  } else if (rcode != static_cast<uint8_t>(Rcode::kNoError)) {
    a.outcome = LookupOutcome::kServerFailure;
    a.addresses.clear();
    a.status = absl::UnavailableError(fmt::format("DNS server answered rcode {}", rcode));
    return a;
  } else {
    a.outcome = a.addresses.empty() ? LookupOutcome::kNoData : LookupOutcome::kAddresses;
  }
  if (a.outcome != LookupOutcome::kAddresses) {
    a.addresses.clear();
    a.negative_ttl = soa_ttl;
  }
  return a;
}

}  // namespace ambit::dns
