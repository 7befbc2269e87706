#include "common/net/netlink.h"

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <sys/socket.h>

#include <cstdio>
#include <memory>

#include "common/net/cat.h"

namespace ambit::net {
namespace {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct RuleDeleter {
  void operator()(rtnl_rule* r) const { rtnl_rule_put(r); }
};
struct RouteDeleter {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct AddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using RulePtr = std::unique_ptr<rtnl_rule, RuleDeleter>;
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;

Status NlError(int err, std::string_view what) {
  std::string msg = Cat(what, ": ", nl_geterror(err));
  if (err == -NLE_PERM) return absl::PermissionDeniedError(msg + " (needs CAP_NET_ADMIN)");
  return absl::InternalError(msg);
}

StatusOr<SockPtr> Connect() {
  SockPtr s(nl_socket_alloc());
  if (!s) return absl::ResourceExhaustedError("nl_socket_alloc failed");
  int err = nl_connect(s.get(), NETLINK_ROUTE);
  if (err < 0) return NlError(err, "netlink connect");
  return s;
}

RulePtr MakeRule(const PolicyRouting& p, int family) {
  RulePtr r(rtnl_rule_alloc());
  if (!r) return r;
  rtnl_rule_set_family(r.get(), family);
  rtnl_rule_set_mark(r.get(), p.mark);
  rtnl_rule_set_mask(r.get(), p.mask);
  rtnl_rule_set_prio(r.get(), p.priority);
  rtnl_rule_set_table(r.get(), p.table);
  rtnl_rule_set_action(r.get(), FR_ACT_TO_TBL);
  return r;
}

StatusOr<RoutePtr> MakeRoute(const PolicyRouting& p, int family) {
  RoutePtr r(rtnl_route_alloc());
  if (!r) return absl::ResourceExhaustedError("rtnl_route_alloc failed");
  rtnl_route_set_family(r.get(), static_cast<uint8_t>(family));
  rtnl_route_set_table(r.get(), p.table);
  rtnl_route_set_type(r.get(), RTN_LOCAL);
  rtnl_route_set_scope(r.get(), RT_SCOPE_HOST);
  rtnl_route_set_protocol(r.get(), RTPROT_BOOT);
  nl_addr* raw = nullptr;
  int err = nl_addr_parse(family == AF_INET ? "0.0.0.0/0" : "::/0", family, &raw);
  if (err < 0) return NlError(err, "parse default prefix");
  AddrPtr dst(raw);
  err = rtnl_route_set_dst(r.get(), dst.get());
  if (err < 0) return NlError(err, "route dst");
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) return absl::NotFoundError("no loopback interface 'lo' in this netns");
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) return absl::ResourceExhaustedError("rtnl_route_nh_alloc failed");
  rtnl_route_nh_set_ifindex(nh, static_cast<int>(lo));
  rtnl_route_add_nexthop(r.get(), nh);  // the route owns nh now
  return r;
}

std::string Describe(const PolicyRouting& p, int family) {
  return Cat(family == AF_INET6 ? "-6 " : "", "fwmark ", fmt::format("{:#x}/{:#x}", p.mark, p.mask),
                      " pref ", p.priority, " lookup ", p.table);
}

Status AddFamily(nl_sock* s, const PolicyRouting& p, int family) {
  RulePtr rule = MakeRule(p, family);
  if (!rule) return absl::ResourceExhaustedError("rtnl_rule_alloc failed");
  int err = rtnl_rule_add(s, rule.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0 && err != -NLE_EXIST) {
    return NlError(err, Cat("ip rule add ", Describe(p, family)));
  }
  ASSIGN_OR_RETURN(RoutePtr route, MakeRoute(p, family));
  err = rtnl_route_add(s, route.get(), NLM_F_CREATE | NLM_F_REPLACE);
  if (err < 0) {
    return NlError(err, Cat("ip route add local ", family == AF_INET ? "0.0.0.0/0" : "::/0",
                                     " dev lo table ", p.table, " (is 'lo' up in this netns?)"));
  }
  return absl::OkStatus();
}

Status RemoveFamily(nl_sock* s, const PolicyRouting& p, int family) {
  RulePtr rule = MakeRule(p, family);
  if (!rule) return absl::ResourceExhaustedError("rtnl_rule_alloc failed");
  // Delete every copy (an older installer may have added duplicates).
  for (int i = 0; i < 16; ++i) {
    int err = rtnl_rule_delete(s, rule.get(), 0);
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOADDR || err == -NLE_AF_NOSUPPORT) break;
    if (err < 0) return NlError(err, Cat("ip rule del ", Describe(p, family)));
  }
  ASSIGN_OR_RETURN(RoutePtr route, MakeRoute(p, family));
  int err = rtnl_route_delete(s, route.get(), 0);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR && err != -NLE_AF_NOSUPPORT) {
    return NlError(err, Cat("ip route del table ", p.table));
  }
  return absl::OkStatus();
}

}  // namespace

Status AddPolicyRouting(const PolicyRouting& p) {
  ASSIGN_OR_RETURN(SockPtr s, Connect());
  RETURN_IF_ERROR(AddFamily(s.get(), p, AF_INET));
  if (p.ipv6) RETURN_IF_ERROR(AddFamily(s.get(), p, AF_INET6));
  return absl::OkStatus();
}

Status RemovePolicyRouting(const PolicyRouting& p) {
  ASSIGN_OR_RETURN(SockPtr s, Connect());
  RETURN_IF_ERROR(RemoveFamily(s.get(), p, AF_INET));
  if (p.ipv6) RETURN_IF_ERROR(RemoveFamily(s.get(), p, AF_INET6));
  return absl::OkStatus();
}

StatusOr<bool> HasPolicyRule(const PolicyRouting& p) {
  ASSIGN_OR_RETURN(SockPtr s, Connect());
  nl_cache* cache = nullptr;
  int err = rtnl_rule_alloc_cache(s.get(), AF_INET, &cache);
  if (err < 0) return NlError(err, "ip rule list");
  bool found = false;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_rule*>(o);
    if (rtnl_rule_get_mark(r) == p.mark && rtnl_rule_get_mask(r) == p.mask &&
        rtnl_rule_get_prio(r) == p.priority && rtnl_rule_get_table(r) == p.table) {
      found = true;
    }
  }
  nl_cache_free(cache);
  return found;
}

bool Ipv6EnabledHere() {
  std::FILE* f = std::fopen("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "re");
  if (f == nullptr) return false;
  int c = std::fgetc(f);
  std::fclose(f);
  return c == '0';
}

Status AddPolicyRoutingInNetns(const NetnsHandle& ns, const PolicyRouting& p) {
  return RunInNetns(ns, [&] { return AddPolicyRouting(p); });
}

Status RemovePolicyRoutingInNetns(const NetnsHandle& ns, const PolicyRouting& p) {
  return RunInNetns(ns, [&] { return RemovePolicyRouting(p); });
}

}  // namespace ambit::net
