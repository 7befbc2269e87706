#include "agent/capture/redirect_rules.h"

#include <string>

namespace ambit::capture {
namespace {

using net::Family;
using net::IpAddress;

// Small builder so BuildRules reads like the rule list in ISTIO-COMPAT §4.1.
class RuleList {
 public:
  RuleList(const RedirectConfig& c, Family f) : c_(c), f_(f) {}

  Rule& Add(Table t, Chain ch, Verdict v) {
    Rule r;
    r.table = t;
    r.chain = ch;
    r.family = f_;
    r.verdict = v;
    r.mask = c_.mark_mask;
    rules_.push_back(r);
    return rules_.back();
  }
  std::vector<Rule> Take() { return std::move(rules_); }

 private:
  const RedirectConfig& c_;
  Family f_;
  std::vector<Rule> rules_;
};

Rule& NotLoopbackDst(Rule& r, Family f) {
  r.dst = LoopbackFor(f);
  r.dst_negated = true;
  r.family_specific = true;
  return r;
}

Rule& NotZtunnel(Rule& r, const RedirectConfig& c) {
  r.mark = c.ztunnel_mark;
  r.mark_negated = true;
  return r;
}

void MangleRules(RuleList& l, const RedirectConfig& c, Family f) {
  // Packets the agent sends with its mark (spoofed source to the local app) tag the connection.
  Rule& tag = l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kSetConnmark);
  tag.mark = c.ztunnel_mark;
  tag.value = c.connmark;
  if (c.mode == RedirectMode::kTproxy) {
    Rule& probe = l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kAccept);
    probe.src = ProbeSourceFor(f);
    probe.family_specific = true;
    probe.proto = Proto::kTcp;
    Rule& self = NotLoopbackDst(l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kAccept), f);
    self.iface = Iface::kInLo;
    self.proto = Proto::kTcp;
    Rule& hbone = NotZtunnel(l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kTproxy), c);
    hbone.proto = Proto::kTcp;
    hbone.dport = c.hbone_port;
    hbone.port = c.hbone_port;
    hbone.value = c.connmark;
    hbone.family_specific = true;  // tproxy target address is per family
    Rule& est = l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kAccept);
    est.proto = Proto::kTcp;
    est.established = true;
    Rule& in = NotZtunnel(
        NotLoopbackDst(l.Add(Table::kMangle, Chain::kPrerouting, Verdict::kTproxy), f), c);
    in.proto = Proto::kTcp;
    in.port = c.inbound_plain_port;
    in.value = c.connmark;
  }
  // The app's replies to a spoofed client carry the connmark back onto the
  // packet mark, so policy routing (table 100) delivers them locally.
  Rule& restore = l.Add(Table::kMangle, Chain::kOutput, Verdict::kRestoreMark);
  restore.connmark = c.connmark;
}

void NatPrerouting(RuleList& l, const RedirectConfig& c, Family f) {
  Rule& probe = l.Add(Table::kNat, Chain::kPrerouting, Verdict::kAccept);
  probe.src = ProbeSourceFor(f);
  probe.family_specific = true;
  probe.proto = Proto::kTcp;
  if (c.mode != RedirectMode::kRedirect) return;
  Rule& in = NotZtunnel(
      NotLoopbackDst(l.Add(Table::kNat, Chain::kPrerouting, Verdict::kRedirect), f), c);
  in.proto = Proto::kTcp;
  in.dport = c.hbone_port;
  in.dport_negated = true;
  in.port = c.inbound_plain_port;
}

void NatOutput(RuleList& l, const RedirectConfig& c, Family f) {
  Rule& probe = l.Add(Table::kNat, Chain::kOutput, Verdict::kAccept);
  probe.dst = ProbeSourceFor(f);
  probe.family_specific = true;
  probe.proto = Proto::kTcp;
  if (c.dns_capture) {
    Rule& udp = NotZtunnel(l.Add(Table::kNat, Chain::kOutput, Verdict::kRedirect), c);
    udp.iface = Iface::kNotOutLo;
    udp.proto = Proto::kUdp;
    udp.dport = 53;
    udp.port = c.dns_port;
    Rule& tcp = NotZtunnel(
        NotLoopbackDst(l.Add(Table::kNat, Chain::kOutput, Verdict::kRedirect), f), c);
    tcp.proto = Proto::kTcp;
    tcp.dport = 53;
    tcp.port = c.dns_port;
  }
  Rule& marked = l.Add(Table::kNat, Chain::kOutput, Verdict::kAccept);
  marked.proto = Proto::kTcp;
  marked.mark = c.connmark;
  Rule& self = NotLoopbackDst(l.Add(Table::kNat, Chain::kOutput, Verdict::kAccept), f);
  self.iface = Iface::kOutLo;
  Rule& out = NotZtunnel(
      NotLoopbackDst(l.Add(Table::kNat, Chain::kOutput, Verdict::kRedirect), f), c);
  out.proto = Proto::kTcp;
  out.port = c.outbound_port;
}

void RawRules(RuleList& l, const RedirectConfig& c) {
  // Keep the agent's upstream DNS and its replies out of the redirected 5-tuples.
  Rule& reply = NotZtunnel(l.Add(Table::kRaw, Chain::kPrerouting, Verdict::kCtZone), c);
  reply.proto = Proto::kUdp;
  reply.sport = 53;
  reply.value = c.dns_ct_zone;
  Rule& up = l.Add(Table::kRaw, Chain::kOutput, Verdict::kCtZone);
  up.proto = Proto::kUdp;
  up.dport = 53;
  up.mark = c.ztunnel_mark;
  up.value = c.dns_ct_zone;
}

}  // namespace

StatusOr<RedirectMode> ParseRedirectMode(std::string_view text) {
  if (text == "redirect") return RedirectMode::kRedirect;
  if (text == "tproxy") return RedirectMode::kTproxy;
  return absl::InvalidArgumentError("unknown redirect mode '" + std::string(text) +
                                    "': want redirect or tproxy");
}

StatusOr<RuleBackend> ParseRuleBackend(std::string_view text) {
  if (text == "iptables") return RuleBackend::kIptables;
  if (text == "nft" || text == "nftables") return RuleBackend::kNftables;
  return absl::InvalidArgumentError("unknown rule backend '" + std::string(text) +
                                    "': want iptables or nft");
}

std::string_view ModeName(RedirectMode m) {
  return m == RedirectMode::kRedirect ? "redirect" : "tproxy";
}
std::string_view BackendName(RuleBackend b) {
  return b == RuleBackend::kIptables ? "iptables" : "nft";
}

std::vector<Rule> BuildRules(const RedirectConfig& config, net::Family family) {
  RuleList l(config, family);
  MangleRules(l, config, family);
  NatPrerouting(l, config, family);
  NatOutput(l, config, family);
  if (config.dns_capture) RawRules(l, config);
  return l.Take();
}

std::vector<Table> TablesUsed(const RedirectConfig& config) {
  if (config.dns_capture) return {Table::kMangle, Table::kNat, Table::kRaw};
  return {Table::kMangle, Table::kNat};
}

net::IpAddress LoopbackFor(net::Family f) {
  return f == Family::kV4 ? IpAddress::LoopbackV4() : IpAddress::LoopbackV6();
}

net::IpAddress ProbeSourceFor(net::Family f) {
  return *IpAddress::Parse(f == Family::kV4 ? "169.254.7.127"
                                            : "fd16:9254:7127:1337:ffff:ffff:ffff:ffff");
}

}  // namespace ambit::capture
