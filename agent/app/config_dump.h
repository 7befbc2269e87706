// /config_dump: the agent's state as the JSON document istioctl ztunnel-config
// reads (ISTIO-COMPAT §3.2; schema in tests/golden/config_dump.schema.json),
// plus an "ambit" section (policy findings, capture details).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/authz/istio_translate.h"
#include "agent/proxy/conn_record.h"
#include "common/mesh/snapshot.h"
#include "common/identity/cert_bundle.h"

namespace ambit::agent {

struct DumpInputs {
  const mesh::Snapshot* snapshot = nullptr;
  struct Cert {
    std::string identity;
    std::string state;  // Initializing | Available | Unavailable
    const identity::CertBundle* bundle = nullptr;  // null while Initializing
    std::string last_error;
  };
  std::vector<Cert> certificates;
  struct Pod {
    std::string uid, name, ns, service_account, netns;
    bool up = true;
  };
  std::vector<Pod> pods;
  std::vector<ConnSummary> connections;
  const std::vector<authz::Finding>* findings = nullptr;
  // Standalone config findings (waypoint binding, unknown appProtocol).
  const std::vector<std::string>* config_findings = nullptr;
  std::map<std::string, std::string> config;  // flags as strings
  // On-demand DNS cache of hostname-only workloads (ambit.onDemandDns).
  struct DnsEntry {
    std::string hostname;
    std::vector<std::string> addresses;  // empty = negative answer
    std::string negative;                // "nxdomain" / "no_addresses" when negative
    double expires_in_seconds = 0;
  };
  std::vector<DnsEntry> on_demand_dns;
  struct DnsStats {
    uint64_t hits = 0, misses = 0, queries = 0, failures = 0;
    size_t capacity = 0;
  };
  DnsStats on_demand_dns_stats;
  std::string version;
};

std::string BuildConfigDump(const DumpInputs& in);

}  // namespace ambit::agent
