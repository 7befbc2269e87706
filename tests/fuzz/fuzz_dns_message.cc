// Fuzz target: the DNS message codec of the 15053 proxy (agent/dns/message.h).
// The input is a message from a pod (a query) and, separately, from an
// upstream nameserver (an answer to relay). Checked:
//  - ParseQuery never reads past the input; an error has a reason and text;
//  - every parsed query can be answered: the answer starts with the query's
//    id, echoes its question, parses as a message whose header says QR, and
//    respects the size limit (TC when records had to go);
//  - error answers exist exactly when a header was there;
//  - relayed answers keep the bytes after the id, or shrink to header +
//    question with TC when over the client's size;
//  - the on-demand lookup codec (address_lookup.h) reads any answer into a
//    typed outcome: addresses only with kAddresses, all of the asked family,
//    a reason on kMalformed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "agent/dns/address_lookup.h"
#include "agent/dns/message.h"
#include "tests/fuzz/fuzz_util.h"

using namespace ambit::dns;

namespace {

void AsQuery(std::span<const uint8_t> in) {
  ParsedQuery p = ParseQuery(in);
  if (!p.ok()) {
    FUZZ_CHECK(!p.status().ok());
    auto err = BuildError(p, in, Rcode::kFormErr);
    FUZZ_CHECK(err.empty() == (in.size() < kHeaderSize));
    if (!err.empty()) {
      FUZZ_CHECK(MessageId(err) == p.query.id);
      FUZZ_CHECK(MessageRcode(err) == Rcode::kFormErr);
    }
    return;
  }
  const Query& q = p.query;
  FUZZ_CHECK(q.question_end > kHeaderSize && q.question_end <= in.size());
  std::vector<Record> rr;
  rr.push_back({q.name, static_cast<uint16_t>(RecordType::kA), kLocalTtl,
                ambit::net::IpAddress::V4(0x0a600014), {}});
  rr.push_back({q.name, static_cast<uint16_t>(RecordType::kCname), kLocalTtl, {}, "target.example"});
  for (size_t limit : {size_t{12}, kMaxUdpSize, q.UdpLimit(), kMaxMessageSize}) {
    auto a = BuildAnswer(q, in, rr, {Rcode::kNoError, true, limit});
    FUZZ_CHECK(a.size() >= kHeaderSize);
    FUZZ_CHECK(MessageId(a) == q.id);
    FUZZ_CHECK((a[2] & 0x80) != 0);
    const size_t qlen = q.question_end - kHeaderSize;
    FUZZ_CHECK(a.size() >= kHeaderSize + qlen);
    FUZZ_CHECK(std::equal(in.begin() + kHeaderSize, in.begin() + static_cast<long>(q.question_end),
                          a.begin() + kHeaderSize));
    if (MessageTruncated(a)) FUZZ_CHECK(a[6] == 0 && a[7] == 0);
  }
}

void AsAnswer(std::span<const uint8_t> in) {
  uint16_t id = in.size() >= 2 ? static_cast<uint16_t>(in[in.size() - 1] << 8 | in[0]) : 7;
  for (size_t limit : {kMaxUdpSize, kMaxMessageSize}) {
    auto r = RelayAnswer(in, id, limit);
    FUZZ_CHECK(r.has_value() == (in.size() >= kHeaderSize));
    if (!r) continue;
    FUZZ_CHECK(MessageId(*r) == id);
    if (in.size() <= limit) {
      FUZZ_CHECK(r->size() == in.size() && std::equal(in.begin() + 2, in.end(), r->begin() + 2));
    } else {
      FUZZ_CHECK(MessageTruncated(*r) && r->size() <= in.size());
    }
  }
}

void AsLookupAnswer(std::span<const uint8_t> in) {
  for (bool aaaa : {false, true}) {
    AddressAnswer a = ParseAddressAnswer(in, aaaa);
    FUZZ_CHECK(a.addresses.empty() == (a.outcome != LookupOutcome::kAddresses));
    for (const auto& ip : a.addresses) FUZZ_CHECK(ip.is_v6() == aaaa);
    if (a.outcome == LookupOutcome::kMalformed) FUZZ_CHECK(!a.status.ok());
    if (a.negative_ttl) FUZZ_CHECK(*a.negative_ttl <= 0x7fffffffu);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  AsQuery(in);
  AsAnswer(in);
  AsLookupAnswer(in);
  return 0;
}
