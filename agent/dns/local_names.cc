#include "agent/dns/local_names.h"

#include <algorithm>
#include <set>

namespace ambit::dns {
namespace {

size_t LabelCount(std::string_view name) {
  if (name.empty()) return 0;
  return static_cast<size_t>(std::count(name.begin(), name.end(), '.')) + 1;
}

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "." + std::string(b);
}

// `name` strictly longer than `domain` and ending in it, label-wise.
bool HasDomain(std::string_view name, std::string_view domain) {
  if (domain.empty() || LabelCount(name) <= LabelCount(domain)) return false;
  return name.size() > domain.size() + 1 && name.ends_with(domain) &&
         name[name.size() - domain.size() - 1] == '.';
}

std::string_view LastLabel(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

std::vector<std::string> KubeFqdns(std::string_view name, std::string_view ns,
                                   std::string_view domain) {
  const std::string svc_domain = Join("svc", domain);
  const std::string ns_domain = Join(ns, svc_domain);
  const bool ends_in_svc = LabelCount(name) > 1 && LastLabel(name) == "svc";
  switch (LabelCount(name)) {
    case 1: return {Join(name, ns_domain)};
    case 2: return {Join(name, svc_domain), Join(name, ns_domain)};
    case 3:
      if (ends_in_svc) return {Join(name, domain), Join(name, svc_domain)};
      return {Join(name, svc_domain)};
    case 4:
      if (ends_in_svc) return {Join(name, domain)};
      return {};
    default: return {};
  }
}

bool FamilyAllowed(const mesh::Service& s, bool aaaa, const LocalNamesConfig& c) {
  if (aaaa && !c.ipv6_enabled) return false;
  if (s.ip_families == mesh::IpFamilies::kIpv4Only && aaaa) return false;
  if (s.ip_families == mesh::IpFamilies::kIpv6Only && !aaaa) return false;
  return true;
}

bool FamilyMatches(const net::IpAddress& ip, bool aaaa) { return aaaa ? ip.is_v6() : ip.is_v4(); }

std::vector<net::IpAddress> Addresses(const mesh::Snapshot& snap, const mesh::Service& s,
                                      const DnsClient& client, bool aaaa) {
  std::vector<net::IpAddress> out;
  if (s.vips.empty()) {  // headless: one address of the family per endpoint
    for (const auto& [uid, ep] : s.endpoints) {
      const mesh::Workload* w = snap.FindWorkload(uid);
      if (w == nullptr) continue;
      auto it = std::find_if(w->addresses.begin(), w->addresses.end(),
                             [aaaa](const net::IpAddress& ip) { return FamilyMatches(ip, aaaa); });
      if (it != w->addresses.end()) out.push_back(*it);
    }
    return out;
  }
  for (const mesh::NetworkAddress& vip : s.vips) {
    if (vip.IsCidr() || vip.network != client.network || !FamilyMatches(vip.ip, aaaa)) continue;
    out.push_back(vip.ip);
  }
  return out;
}

}  // namespace

std::vector<Alias> AliasesFor(std::string_view name, std::string_view client_ns,
                              std::string_view domain) {
  std::vector<Alias> out;
  std::set<std::string> seen;
  auto add = [&](std::string n, std::optional<std::string> stripped) {
    if (seen.insert(n).second) out.push_back({std::move(n), std::move(stripped)});
  };
  add(std::string(name), std::nullopt);
  for (std::string& f : KubeFqdns(name, client_ns, domain)) add(std::move(f), std::nullopt);
  const std::string svc_domain = Join("svc", domain);
  for (const std::string& search : {Join(client_ns, svc_domain), svc_domain, std::string(domain)}) {
    if (!HasDomain(name, search)) continue;
    std::string stripped(name.substr(0, name.size() - search.size() - 1));
    add(stripped, stripped);
    for (std::string& f : KubeFqdns(stripped, client_ns, domain)) add(std::move(f), stripped);
  }
  return out;
}

std::vector<std::string> WildcardsFor(std::string_view name) {
  std::vector<std::string> out{std::string(name)};
  std::string_view rest = name;
  while (LabelCount(rest) > 1) {
    rest = rest.substr(rest.find('.') + 1);
    out.push_back("*." + std::string(rest));
  }
  return out;
}

std::optional<LocalAnswer> AnswerFromMesh(const mesh::Snapshot& snap, const DnsClient& client,
                                          const Query& q, const LocalNamesConfig& config,
                                          std::minstd_rand* shuffle) {
  const bool a = q.qtype == static_cast<uint16_t>(RecordType::kA);
  const bool aaaa = q.qtype == static_cast<uint16_t>(RecordType::kAaaa);
  if ((!a && !aaaa) || q.qclass != kClassIn || !q.plain_name || q.name.empty()) return std::nullopt;
  const std::string svc_suffix = "." + Join("svc", config.cluster_domain);
  for (const Alias& alias : AliasesFor(q.name, client.ns, config.cluster_domain)) {
    for (const std::string& host : WildcardsFor(alias.name)) {
      const mesh::Service* s = snap.FindServiceByHostname(host, client.ns);
      if (s == nullptr) continue;
      // No VIP and not a Kubernetes service (headless): upstream knows better.
      if (s->vips.empty() && !s->hostname.ends_with(svc_suffix)) continue;
      LocalAnswer ans;
      ans.service = s->Key();
      if (!FamilyAllowed(*s, aaaa, config)) return ans;
      std::vector<net::IpAddress> ips = Addresses(snap, *s, client, aaaa);
      if (ips.empty()) return ans;
      if (shuffle != nullptr) std::shuffle(ips.begin(), ips.end(), *shuffle);
      std::string owner = q.name;
      const bool wildcard = host.starts_with("*.");
      if (alias.stripped && !wildcard) {
        ans.records.push_back({q.name, static_cast<uint16_t>(RecordType::kCname), kLocalTtl, {},
                               *alias.stripped});
        owner = *alias.stripped;
      }
      for (const net::IpAddress& ip : ips) {
        ans.records.push_back(
            {owner, static_cast<uint16_t>(aaaa ? RecordType::kAaaa : RecordType::kA), kLocalTtl, ip, {}});
      }
      return ans;
    }
  }
  return std::nullopt;
}

}  // namespace ambit::dns
