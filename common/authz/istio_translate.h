// Translation of Istio security resources (security.istio.io/v1 and v1beta1
// AuthorizationPolicy, PeerAuthentication) kept verbatim by the standalone
// config (config::ResourceConfig) into our L4 Policy model, as istiod does for
// ztunnel (ISTIO-COMPAT §7.4).
//
// Fail closed: an ALLOW rule using anything the agent cannot enforce at L4
// (L7 fields, unknown fields, bad values) is dropped whole; in a DENY rule
// those parts are ignored so the rule matches more. Every dropped or partially
// applied part yields a Finding for logs, counters and the admin dump.
//
// Scope: selector → WORKLOAD_SELECTOR, its key added to every selected
// workload (same namespace; any namespace for the root namespace); no
// selector → NAMESPACE; no selector in the root namespace → GLOBAL.
// targetRef(s) → waypoint policy, not applied here. AUDIT/CUSTOM → not applied.
// `source.serviceAccounts` entries are "ns/sa"; a bare "sa" means the
// policy's namespace.
//
// PeerAuthentication: per workload the most specific one wins (selector in
// its namespace > namespace-wide > mesh-wide in the root namespace; UNSET
// inherits). Effective STRICT → the workload references the synthetic DENY
// `<root>/istio_converted_static_strict` (not_principals: [presence]); with
// port-level exceptions it references `<pa-ns>/converted_peer_authentication_
// <pa-name>` instead, which carries destination_ports / not_destination_ports.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/mesh/policy.h"
#include "common/mesh/types.h"
#include "common/config/local_config.h"

namespace ambit::authz {

inline constexpr std::string_view kStaticStrictPolicyName = "istio_converted_static_strict";
inline constexpr std::string_view kPeerAuthnPolicyPrefix = "converted_peer_authentication_";

struct Finding {
  std::string location;  // "file:line" of the resource
  std::string kind;      // "AuthorizationPolicy" | "PeerAuthentication"
  std::string resource;  // "ns/name"
  std::string message;   // what was dropped and why

  // "file:line: AuthorizationPolicy ns/name: message"
  std::string ToString() const;
};

struct TranslateOptions {
  std::string root_namespace = "istio-system";
};

struct TranslateResult {
  std::vector<mesh::Policy> policies;
  // Workload uid → keys ("ns/name") of the selector-scoped policies it must
  // list in Workload::authorization_policies.
  std::map<std::string, std::vector<std::string>> workload_policies;
  std::vector<Finding> findings;
};

// Resources of other kinds are skipped silently (other translators own
// them). `workloads` provides uid, namespace and labels for selectors.
TranslateResult TranslateIstioResources(std::span<const config::ResourceConfig> resources,
                                        std::span<const mesh::Workload> workloads,
                                        const TranslateOptions& options = {});

// Appends result.workload_policies to the workloads' authorization_policies
// (by uid, without duplicates).
void AttachWorkloadPolicies(const TranslateResult& result, std::span<mesh::Workload> workloads);

}  // namespace ambit::authz
