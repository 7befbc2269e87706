#include "agent/dns/message.h"

#include <doctest/doctest.h>

#include "tests/unit/dns/dns_test_util.h"

namespace ambit::dns {
namespace {

using testing::MakeQuery;

uint16_t At16(const std::vector<uint8_t>& m, size_t i) {
  return static_cast<uint16_t>((m[i] << 8) | m[i + 1]);
}

}  // namespace

TEST_CASE("a standard query parses: id, RD, lower-cased name, type, EDNS size") {
  auto q = MakeQuery("HttpBin.Demo.svc.cluster.local", 1, 0xbeef, 1232);
  ParsedQuery p = ParseQuery(q);
  REQUIRE(p.ok());
  CHECK(p.query.id == 0xbeef);
  CHECK(p.query.recursion_desired);
  CHECK(p.query.name == "httpbin.demo.svc.cluster.local");
  CHECK(p.query.plain_name);
  CHECK(p.query.qtype == 1);
  CHECK(p.query.qclass == kClassIn);
  REQUIRE(p.query.edns.has_value());
  CHECK(p.query.edns->udp_size == 1232);
  CHECK(p.query.edns->dnssec_ok);
  CHECK(p.query.UdpLimit() == 1232);
  CHECK(MakeQuery("a", 1).size() == ParseQuery(MakeQuery("a", 1)).query.question_end);
  CHECK(ParseQuery(MakeQuery("a", 1)).query.UdpLimit() == 512);
}

TEST_CASE("malformed queries give a typed reason") {
  CHECK(ParseQuery(std::vector<uint8_t>{1, 2, 3}).error == ParseError::kTooShort);
  auto q = MakeQuery("x.example", 1);
  q[2] |= 0x80;  // QR: a response
  CHECK(ParseQuery(q).error == ParseError::kNotQuery);
  q = MakeQuery("x.example", 1);
  q[2] |= 0x10;  // opcode 2 (STATUS)
  CHECK(ParseQuery(q).error == ParseError::kBadOpcode);
  q = MakeQuery("x.example", 1);
  q[5] = 2;  // two questions
  CHECK(ParseQuery(q).error == ParseError::kQuestionCount);
  q = MakeQuery("x.example", 1);
  q.resize(q.size() - 3);  // type/class cut
  CHECK(ParseQuery(q).error == ParseError::kTruncated);
  q = MakeQuery("x.example", 1);
  q[12] = 0xc0;  // compression pointer in the question
  CHECK(ParseQuery(q).error == ParseError::kBadName);
  std::vector<uint8_t> longname = MakeQuery(std::string(64, 'a'), 1);
  CHECK(ParseQuery(longname).error == ParseError::kBadName);
  q = MakeQuery("x.example", 1, 1, 4096);
  q[11] = 2;  // ARCOUNT 2: a second OPT that is not there
  CHECK(ParseQuery(q).error == ParseError::kTruncated);
  ParsedQuery p = ParseQuery(q);
  CHECK(p.status().message().find("truncated") != std::string_view::npos);
}

TEST_CASE("non-plain names are flagged (never served from the mesh)") {
  auto q = MakeQuery("a b.example", 1);
  ParsedQuery p = ParseQuery(q);
  REQUIRE(p.ok());
  CHECK_FALSE(p.query.plain_name);
}

TEST_CASE("an answer: header, echoed question, compressed owner, CNAME, OPT") {
  auto raw = MakeQuery("httpbin", 1, 0x4242, 1232);
  ParsedQuery p = ParseQuery(raw);
  REQUIRE(p.ok());
  std::vector<Record> rr = {
      {"httpbin", static_cast<uint16_t>(RecordType::kA), 30, *net::IpAddress::Parse("10.96.0.20"), {}},
  };
  auto a = BuildAnswer(p.query, raw, rr, {Rcode::kNoError, true, 512});
  CHECK(At16(a, 0) == 0x4242);
  CHECK(At16(a, 2) == 0x8580);  // QR AA RD RA, NOERROR
  CHECK(At16(a, 4) == 1);
  CHECK(At16(a, 6) == 1);
  CHECK(At16(a, 10) == 1);  // OPT echoed
  size_t rec = p.query.question_end;  // records follow the echoed question
  CHECK(a[rec] == 0xc0);
  CHECK(a[rec + 1] == 12);
  CHECK(At16(a, rec + 2) == 1);
  CHECK(At16(a, rec + 10) == 4);
  CHECK(a[rec + 12] == 10);
  CHECK(a[rec + 15] == 20);

  std::vector<Record> cname = {
      {"httpbin.ns2.demo.svc.cluster.local", static_cast<uint16_t>(RecordType::kCname), 30, {}, "httpbin.ns2"}};
  auto raw2 = MakeQuery("httpbin.ns2.demo.svc.cluster.local", 1);
  auto c = BuildAnswer(ParseQuery(raw2).query, raw2, cname, {});
  CHECK(At16(c, 6) == 1);
  const std::vector<uint8_t> target = {7, 'h', 't', 't', 'p', 'b', 'i', 'n', 3, 'n', 's', '2', 0};
  CHECK(std::vector<uint8_t>(c.end() - 13, c.end()) == target);
}

TEST_CASE("an answer over the client's UDP size is truncated: TC, no records") {
  auto raw = MakeQuery("many.example", 1);
  ParsedQuery p = ParseQuery(raw);
  std::vector<Record> rr;
  for (int i = 0; i < 40; ++i) {
    rr.push_back({"many.example", 1, 30, net::IpAddress::V4(0x0a000001 + i), {}});
  }
  auto full = BuildAnswer(p.query, raw, rr, {});
  CHECK(full.size() > 512);
  auto cut = BuildAnswer(p.query, raw, rr, {Rcode::kNoError, true, 512});
  CHECK(cut.size() == raw.size());
  CHECK(MessageTruncated(cut));
  CHECK(At16(cut, 6) == 0);
}

TEST_CASE("errors echo id and question; no reply without a header") {
  auto raw = MakeQuery("x.example", 1, 0x7777);
  raw[5] = 0;  // QDCOUNT 0
  ParsedQuery p = ParseQuery(raw);
  auto e = BuildError(p, raw, Rcode::kFormErr);
  REQUIRE(e.size() == 12);
  CHECK(At16(e, 0) == 0x7777);
  CHECK(MessageRcode(e) == Rcode::kFormErr);
  auto good = MakeQuery("x.example", 1, 0x7778);
  auto sf = BuildError(ParseQuery(good), good, Rcode::kServFail);
  CHECK(sf.size() == good.size());
  CHECK(MessageRcode(sf) == Rcode::kServFail);
  std::vector<uint8_t> tiny{1, 2};
  CHECK(BuildError(ParseQuery(tiny), tiny, Rcode::kFormErr).empty());
}

TEST_CASE("relayed answers get the client's id; too big for UDP becomes TC") {
  auto up = MakeQuery("ext.example", 1, 0x0001);
  up[2] |= 0x80;
  auto r = RelayAnswer(up, 0x9999, 65535);
  REQUIRE(r.has_value());
  CHECK(MessageId(*r) == 0x9999);
  CHECK(std::vector<uint8_t>(r->begin() + 2, r->end()) == std::vector<uint8_t>(up.begin() + 2, up.end()));
  std::vector<uint8_t> big = up;
  big.resize(700, 0xaa);
  big[7] = 5;  // ANCOUNT (garbage records beyond the question)
  auto t = RelayAnswer(big, 0x9999, 512);
  REQUIRE(t.has_value());
  CHECK(MessageTruncated(*t));
  CHECK(t->size() == up.size());
  CHECK(At16(*t, 6) == 0);
  CHECK_FALSE(RelayAnswer(std::vector<uint8_t>{1, 2, 3}, 1, 512).has_value());
}

TEST_CASE("query type labels as ztunnel prints them") {
  CHECK(QueryTypeLabel(1) == "a");
  CHECK(QueryTypeLabel(28) == "aaaa");
  CHECK(QueryTypeLabel(33) == "srv");
  CHECK(QueryTypeLabel(9999) == "unknown");
}

}  // namespace ambit::dns
