// Which queries the proxy answers from the mesh, and with what (ztunnel's
// DNS "Store"): A and AAAA for service hostnames, ServiceEntry hosts
// (wildcards too) and their auto-allocated addresses, found under every alias
// of the asked name from the client pod's point of view:
//   - the name itself;
//   - its Kubernetes expansions: `a` → a.<ns>.svc.<domain>; `a.b` →
//     a.b.svc.<domain>, a.b.<ns>.svc.<domain>; `a.b.c` → a.b.c.<domain> (if c
//     is "svc"), a.b.c.svc.<domain>; `a.b.c.svc` → a.b.c.svc.<domain>;
//   - the name stripped of a per-pod search domain (<ns>.svc.<domain>,
//     svc.<domain>, <domain>) and that stripped name's expansions;
// and for each alias the exact host first, then wildcards of decreasing
// specificity (*.b.c, *.c). Services without a VIP are skipped unless their
// host is under svc.<domain> (headless: endpoint IPs). A found name with no
// address of the asked family is an empty NOERROR answer, never NXDOMAIN.
// Pure functions over a Snapshot: worker threads, unit-tested without sockets.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "agent/dns/message.h"
#include "common/mesh/snapshot.h"

namespace ambit::dns {

// The pod that asked (the pod whose netns the listener lives in).
struct DnsClient {
  std::string ns;
  std::string network;
  std::string canonical_service;   // metric labels
  std::string canonical_revision;
};

struct LocalNamesConfig {
  std::string cluster_domain = "cluster.local";  // CLUSTER_DOMAIN
  bool ipv6_enabled = true;                      // IPV6_ENABLED: false = no AAAA
};

// An answer made from the mesh (authoritative). `records` may be empty.
struct LocalAnswer {
  std::vector<Record> records;
  std::string service;  // "ns/hostname" that matched (log)
};

// nullopt: not a mesh name (or not A/AAAA): forward it upstream.
std::optional<LocalAnswer> AnswerFromMesh(const mesh::Snapshot& snap, const DnsClient& client,
                                          const Query& query, const LocalNamesConfig& config,
                                          std::minstd_rand* shuffle = nullptr);

// The aliases tried for `name`, in order (exposed for tests).
struct Alias {
  std::string name;
  std::optional<std::string> stripped;  // set when found by stripping a search domain
};
std::vector<Alias> AliasesFor(std::string_view name, std::string_view client_ns,
                              std::string_view cluster_domain);
// `name`, then `*.rest` for each shorter suffix: a.b.c → a.b.c, *.b.c, *.c.
std::vector<std::string> WildcardsFor(std::string_view name);

}  // namespace ambit::dns
