// On-demand resolution of hostname-only workloads: the lookup codec, the
// bounded TTL cache (simulated clock) and the resolver over a scripted
// transport (one query per family, coalescing, TTL expiry, RFC 2308
// negative caching, failures not cached, counters).
#include "agent/dns/on_demand.h"

#include <doctest/doctest.h>

#include <deque>

#include "agent/dns/address_lookup.h"
#include "agent/dns/host_cache.h"
#include "common/metrics/registry.h"
#include "tests/unit/dns/dns_test_util.h"

namespace ambit::dns {
namespace {

using testing::Put16;
using std::chrono::seconds;

void Put32(std::vector<uint8_t>& m, uint32_t v) {
  Put16(m, static_cast<uint16_t>(v >> 16));
  Put16(m, static_cast<uint16_t>(v & 0xffff));
}

net::IpAddress Ip(std::string_view s) { return *net::IpAddress::Parse(s); }

struct Rr {
  uint16_t type;
  uint32_t ttl;
  std::vector<uint8_t> rdata;
  bool authority = false;
};

Rr A(std::string_view ip, uint32_t ttl) {
  auto b = Ip(ip).bytes();
  return {1, ttl, {b[0], b[1], b[2], b[3]}};
}
Rr Aaaa(std::string_view ip, uint32_t ttl) {
  auto b = Ip(ip).bytes();
  return {28, ttl, std::vector<uint8_t>(b.begin(), b.end())};
}
Rr Cname(uint32_t ttl) { return {5, ttl, {3, 'f', 'o', 'o', 0}}; }
// SOA with root mname/rname: 2 name bytes + serial, refresh, retry, expire, minimum.
Rr Soa(uint32_t ttl, uint32_t minimum) {
  std::vector<uint8_t> rd = {0, 0};
  for (uint32_t v : {1u, 2u, 3u, 4u, minimum}) Put32(rd, v);
  return {6, ttl, rd, true};
}

// A response to `query` (its id and question) with `rcode` and `records`.
std::vector<uint8_t> Answer(const std::vector<uint8_t>& query, uint8_t rcode,
                            const std::vector<Rr>& records) {
  std::vector<uint8_t> m(query.begin(), query.begin() + 2);
  Put16(m, static_cast<uint16_t>(0x8180 | rcode));
  Put16(m, 1);
  uint16_t an = 0, ns = 0;
  for (const Rr& r : records) (r.authority ? ns : an)++;
  Put16(m, an);
  Put16(m, ns);
  Put16(m, 0);
  m.insert(m.end(), query.begin() + 12, query.end());
  for (bool auth : {false, true}) {
    for (const Rr& r : records) {
      if (r.authority != auth) continue;
      Put16(m, 0xc00c);
      Put16(m, r.type);
      Put16(m, 1);
      Put32(m, r.ttl);
      Put16(m, static_cast<uint16_t>(r.rdata.size()));
      m.insert(m.end(), r.rdata.begin(), r.rdata.end());
    }
  }
  return m;
}

uint16_t QType(const std::vector<uint8_t>& q) {
  return static_cast<uint16_t>((q[q.size() - 4] << 8) | q[q.size() - 3]);
}

}  // namespace

TEST_CASE("address query: RD, one question, A or AAAA; bad names refused") {
  auto q = BuildAddressQuery("ext.example.test.", false, 7);
  REQUIRE(q.ok());
  CHECK(*q == testing::MakeQuery("ext.example.test", 1, 7));
  auto q6 = BuildAddressQuery("ext.example.test", true, 8);
  REQUIRE(q6.ok());
  CHECK(QType(*q6) == 28);
  CHECK(!BuildAddressQuery("a..b", false, 1).ok());
  CHECK(!BuildAddressQuery("", false, 1).ok());
  CHECK(!BuildAddressQuery(std::string(64, 'x') + ".test", false, 1).ok());
}

TEST_CASE("address answer: addresses with the chain's smallest TTL") {
  auto q = *BuildAddressQuery("ext.example.test", false, 1);
  auto a = ParseAddressAnswer(Answer(q, 0, {Cname(50), A("192.0.2.1", 120), A("192.0.2.2", 90)}),
                              false);
  REQUIRE(a.outcome == LookupOutcome::kAddresses);
  CHECK(a.addresses == std::vector{Ip("192.0.2.1"), Ip("192.0.2.2")});
  CHECK(a.ttl == 50);
  // AAAA records in an A answer are not addresses of the asked family.
  auto other = ParseAddressAnswer(Answer(q, 0, {Aaaa("2001:db8::1", 60)}), false);
  CHECK(other.outcome == LookupOutcome::kNoData);
  auto six = ParseAddressAnswer(Answer(q, 0, {Aaaa("2001:db8::1", 60)}), true);
  REQUIRE(six.outcome == LookupOutcome::kAddresses);
  CHECK(six.addresses == std::vector{Ip("2001:db8::1")});
}

TEST_CASE("address answer: negative TTL is min(SOA TTL, MINIMUM), none without a SOA") {
  auto q = *BuildAddressQuery("nope.example.test", false, 1);
  auto nx = ParseAddressAnswer(Answer(q, 3, {Soa(300, 20)}), false);
  CHECK(nx.outcome == LookupOutcome::kNxDomain);
  CHECK(nx.negative_ttl == 20u);
  auto nodata = ParseAddressAnswer(Answer(q, 0, {Soa(15, 600)}), false);
  CHECK(nodata.outcome == LookupOutcome::kNoData);
  CHECK(nodata.negative_ttl == 15u);
  auto bare = ParseAddressAnswer(Answer(q, 3, {}), false);
  CHECK(bare.outcome == LookupOutcome::kNxDomain);
  CHECK(!bare.negative_ttl.has_value());
  CHECK(ParseAddressAnswer(Answer(q, 2, {}), false).outcome == LookupOutcome::kServerFailure);
}

TEST_CASE("address answer: malformed input is a typed error, never a crash") {
  auto q = *BuildAddressQuery("ext.example.test", false, 1);
  auto good = Answer(q, 0, {A("192.0.2.1", 60)});
  CHECK(ParseAddressAnswer(std::vector<uint8_t>(5, 0), false).outcome == LookupOutcome::kMalformed);
  CHECK(ParseAddressAnswer(q, false).outcome == LookupOutcome::kMalformed);  // not a response
  for (size_t cut = 12; cut < good.size(); ++cut) {
    auto part = std::vector<uint8_t>(good.begin(), good.begin() + cut);
    CHECK(ParseAddressAnswer(part, false).outcome == LookupOutcome::kMalformed);
  }
  auto wrong_size = Answer(q, 0, {{1, 60, {1, 2, 3}}});
  CHECK(ParseAddressAnswer(wrong_size, false).outcome == LookupOutcome::kMalformed);
}

TEST_CASE("host cache: TTL expiry on an injected clock, TTL 0 not stored") {
  base::SimulatedClock clock;
  HostCache c(8);
  c.Put("a.test", {{Ip("192.0.2.1")}, {}, clock.Now() + seconds(2)}, clock.Now());
  REQUIRE(c.Find("a.test", clock.Now()) != nullptr);
  clock.Advance(std::chrono::milliseconds(1999));
  CHECK(c.Find("a.test", clock.Now()) != nullptr);
  clock.Advance(std::chrono::milliseconds(1));
  CHECK(c.Find("a.test", clock.Now()) == nullptr);
  CHECK(c.size() == 0);
  c.Put("zero.test", {{Ip("192.0.2.1")}, {}, clock.Now()}, clock.Now());
  CHECK(c.size() == 0);
}

TEST_CASE("host cache: at capacity expired entries go first, then the soonest expiring") {
  base::SimulatedClock clock;
  HostCache c(3);
  const auto now = clock.Now();
  c.Put("long.test", {{Ip("192.0.2.1")}, {}, now + seconds(100)}, now);
  c.Put("short.test", {{Ip("192.0.2.2")}, {}, now + seconds(5)}, now);
  c.Put("mid.test", {{Ip("192.0.2.3")}, {}, now + seconds(50)}, now);
  c.Put("new.test", {{Ip("192.0.2.4")}, {}, now + seconds(10)}, now);
  CHECK(c.size() == 3);
  CHECK(c.evictions() == 1);
  CHECK(c.Find("short.test", now) == nullptr);
  CHECK(c.Find("long.test", now) != nullptr);
  // Once mid.test has expired, it is the one that makes room (not an eviction).
  clock.Advance(seconds(60));
  c.Put("later.test", {{Ip("192.0.2.5")}, {}, clock.Now() + seconds(10)}, clock.Now());
  CHECK(c.evictions() == 1);
  CHECK(c.Find("long.test", clock.Now()) != nullptr);
  CHECK(c.Find("later.test", clock.Now()) != nullptr);
  // Replacing an entry does not grow the cache.
  c.Put("long.test", {{Ip("192.0.2.9")}, {}, clock.Now() + seconds(10)}, clock.Now());
  CHECK(c.Find("long.test", clock.Now())->addresses == std::vector{Ip("192.0.2.9")});
  CHECK(c.size() <= 3);
}

namespace {

// A transport that records queries; the test answers them.
struct Script {
  struct Sent {
    std::vector<uint8_t> query;
    Upstream::Done done;
  };
  std::deque<Sent> sent;
  OnDemandResolver::Transport Transport() {
    return [this](std::vector<uint8_t> q, Upstream::Done d) {
      sent.push_back({std::move(q), std::move(d)});
    };
  }
  // Answers the oldest query: by family, with `a` / `aaaa` records.
  void Reply(uint8_t rcode, const std::vector<Rr>& a, const std::vector<Rr>& aaaa) {
    REQUIRE(!sent.empty());
    Sent s = std::move(sent.front());
    sent.pop_front();
    UpstreamResult r;
    r.answer = Answer(s.query, rcode, QType(s.query) == 28 ? aaaa : a);
    s.done(std::move(r));
  }
  void Fail(UpstreamError e) {
    REQUIRE(!sent.empty());
    Sent s = std::move(sent.front());
    sent.pop_front();
    UpstreamResult r;
    r.error = e;
    s.done(std::move(r));
  }
};

struct Got {
  int calls = 0;
  OnDemandResult last;
};

OnDemandResolver::Done Into(Got& g) {
  return [&g](OnDemandResult r) {
    ++g.calls;
    g.last = std::move(r);
  };
}

uint64_t CounterValue(metrics::Registry& reg, const std::string& name, const metrics::Labels& l) {
  std::string series = name + "_total";
  if (!l.empty()) series += "{reason=\"" + l[0] + "\"}";
  const std::string text = reg.Render();
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stoull(text.substr(at + series.size() + 1));
    ++at;
  }
  return 0;
}

}  // namespace

TEST_CASE("resolver: A and AAAA once for concurrent connections, cached for the TTL, re-asked after") {
  base::SimulatedClock clock;
  Script net;
  OnDemandResolver r(net.Transport(), clock, {}, nullptr);
  Got g1, g2, g3;
  r.Resolve("ext.example.test", {}, Into(g1));
  r.Resolve("ext.example.test", {}, Into(g2));  // joins the lookup in flight
  REQUIRE(net.sent.size() == 2);
  CHECK(QType(net.sent[0].query) == 1);
  CHECK(QType(net.sent[1].query) == 28);
  net.Reply(0, {A("192.0.2.10", 2)}, {});
  CHECK(g1.calls == 0);  // waits for the AAAA answer
  net.Reply(0, {}, {Aaaa("2001:db8::10", 30)});
  REQUIRE(g1.calls == 1);
  REQUIRE(g2.calls == 1);
  CHECK(g1.last.ok());
  CHECK(g1.last.addresses == std::vector{Ip("192.0.2.10"), Ip("2001:db8::10")});
  r.Resolve("ext.example.test", {}, Into(g3));
  CHECK(g3.calls == 1);
  CHECK(g3.last.cached);
  CHECK(net.sent.empty());
  CHECK(r.CacheRows().size() == 1);
  // TTL = min over the families (2 s): after it, a new lookup.
  clock.Advance(seconds(2));
  Got g4;
  r.Resolve("ext.example.test", {}, Into(g4));
  CHECK(g4.calls == 0);
  REQUIRE(net.sent.size() == 2);
  net.Reply(0, {A("192.0.2.11", 2)}, {});
  net.Reply(0, {}, {});
  REQUIRE(g4.calls == 1);
  CHECK(g4.last.addresses == std::vector{Ip("192.0.2.11")});
  CHECK(r.stats().queries == 4);
  CHECK(r.stats().hits == 1);
}

TEST_CASE("resolver: IPv6 off asks A only") {
  base::SimulatedClock clock;
  Script net;
  OnDemandOptions o;
  o.ipv6 = false;
  OnDemandResolver r(net.Transport(), clock, o, nullptr);
  Got g;
  r.Resolve("ext.example.test", {}, Into(g));
  REQUIRE(net.sent.size() == 1);
  net.Reply(0, {A("192.0.2.10", 60)}, {});
  CHECK(g.calls == 1);
  CHECK(g.last.ok());
}

TEST_CASE("resolver: NXDOMAIN with a SOA is cached for its negative TTL (capped); counted") {
  base::SimulatedClock clock;
  Script net;
  metrics::Registry reg(1);
  OnDemandOptions o;
  o.max_negative_ttl = seconds(5);
  OnDemandResolver r(net.Transport(), clock, o, &reg);
  Got g1, g2, g3;
  r.Resolve("nope.example.test", {}, Into(g1));
  net.Reply(3, {Soa(3600, 3600)}, {});
  net.Reply(3, {}, {Soa(3600, 3600)});
  REQUIRE(g1.calls == 1);
  CHECK(g1.last.error == OnDemandError::kNxDomain);
  r.Resolve("nope.example.test", {}, Into(g2));
  CHECK(g2.calls == 1);
  CHECK(g2.last.error == OnDemandError::kNxDomain);
  CHECK(net.sent.empty());
  REQUIRE(r.CacheRows().size() == 1);
  CHECK(r.CacheRows()[0].entry.negative_reason == "nxdomain");
  clock.Advance(seconds(5));  // the cap, not the SOA's hour
  r.Resolve("nope.example.test", {}, Into(g3));
  CHECK(net.sent.size() == 2);
  CHECK(CounterValue(reg, "ambit_dns_on_demand_failures", {"nxdomain"}) == 2);
  CHECK(CounterValue(reg, "ambit_dns_on_demand_queries", {}) == 4);
  CHECK(CounterValue(reg, "ambit_dns_on_demand_cache_hits", {}) == 1);
}

TEST_CASE("resolver: no address and no SOA, or a timeout, is not cached") {
  base::SimulatedClock clock;
  Script net;
  metrics::Registry reg(1);
  OnDemandResolver r(net.Transport(), clock, {}, &reg);
  Got g1, g2;
  r.Resolve("empty.example.test", {}, Into(g1));
  net.Reply(0, {}, {});
  net.Reply(0, {}, {});
  REQUIRE(g1.calls == 1);
  CHECK(g1.last.error == OnDemandError::kNoAddresses);
  CHECK(r.CacheRows().empty());
  r.Resolve("empty.example.test", {}, Into(g2));
  REQUIRE(net.sent.size() == 2);
  net.Fail(UpstreamError::kTimeout);
  net.Fail(UpstreamError::kTimeout);
  REQUIRE(g2.calls == 1);
  CHECK(g2.last.error == OnDemandError::kTimeout);
  CHECK(!g2.last.status.ok());
  CHECK(r.CacheRows().empty());
  CHECK(CounterValue(reg, "ambit_dns_on_demand_failures", {"no_addresses"}) == 1);
  CHECK(CounterValue(reg, "ambit_dns_on_demand_failures", {"timeout"}) == 1);
  // One family answering is enough.
  Got g3;
  r.Resolve("empty.example.test", {}, Into(g3));
  net.Fail(UpstreamError::kServerFailed);
  net.Reply(0, {}, {Aaaa("2001:db8::1", 60)});
  CHECK(g3.last.ok());
  CHECK(g3.last.addresses == std::vector{Ip("2001:db8::1")});
}

TEST_CASE("resolver: bad names and too many names in flight fail at once") {
  base::SimulatedClock clock;
  Script net;
  OnDemandOptions o;
  o.max_in_flight = 1;
  OnDemandResolver r(net.Transport(), clock, o, nullptr);
  Got bad, first, second;
  r.Resolve("a..b", {}, Into(bad));
  CHECK(bad.calls == 1);
  CHECK(bad.last.error == OnDemandError::kBadName);
  r.Resolve("one.test", {}, Into(first));
  r.Resolve("two.test", {}, Into(second));
  CHECK(second.calls == 1);
  CHECK(second.last.error == OnDemandError::kOverload);
  CHECK(first.calls == 0);
  CHECK(r.stats().failures == 2);
}

TEST_CASE("resolver: the cache is bounded") {
  base::SimulatedClock clock;
  Script net;
  OnDemandOptions o;
  o.capacity = 2;
  o.ipv6 = false;
  OnDemandResolver r(net.Transport(), clock, o, nullptr);
  for (int i = 0; i < 5; ++i) {
    Got g;
    r.Resolve("h" + std::to_string(i) + ".test", {}, Into(g));
    net.Reply(0, {A("192.0.2.1", 60 + i)}, {});
    CHECK(g.last.ok());
  }
  auto rows = r.CacheRows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].hostname == "h3.test");
  CHECK(rows[1].hostname == "h4.test");
}

}  // namespace ambit::dns
