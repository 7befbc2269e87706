// AgentState: the immutable view the control thread publishes to workers as
// std::shared_ptr<const AgentState> (workers read it without locks). It pairs
// the workload snapshot with what the agent derived for its captured pods:
// their network namespaces and TLS contexts.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/base/status.h"

#include "common/mesh/snapshot.h"
#include "common/identity/identity.h"
#include "common/net/netns.h"
#include "common/tls/context.h"

namespace ambit::agent {

// A workload this agent captures (its `node` is ours and it has a netns).
struct PodContext {
  std::string uid;           // the pod's key: workload uid (standalone) or Kubernetes UID (ZDS)
  mesh::Workload workload;  // matched workload, copy (outlives snapshot swaps); look the
                             // current one up by workload.uid, never by `uid`
  std::shared_ptr<const net::NetnsHandle> netns;
  identity::Identity identity;
  std::shared_ptr<const tls::TlsContext> server_tls;  // presented on 15008
  std::shared_ptr<const tls::TlsContext> client_tls;  // presented outbound
};

// Inbound connection facts an authorizer decides on (ISTIO-COMPAT §7).
struct AuthzRequest {
  const mesh::Workload* destination = nullptr;
  net::SocketAddress source;       // TCP peer (client pod or waypoint)
  net::SocketAddress destination_addr;  // pod IP : target port (after translation)
  const identity::Identity* peer = nullptr;  // null for plaintext (15006)
};

struct AuthzDecision {
  bool allow = true;
  std::string policy;  // "ns/name" of the deciding policy, if any
  std::string reason;
};

using Authorizer = std::function<AuthzDecision(const AuthzRequest&)>;

// On-demand resolution of a hostname-only workload (agent/dns/on_demand.h,
// wired by agent/app). `done` runs once, on any thread.
struct HostLookup {
  std::vector<net::IpAddress> addresses;  // empty on failure
  Status status;                          // failure: why (typed by the resolver)
};
using HostResolver = std::function<void(const std::string& hostname, const mesh::Workload& source,
                                        absl::AnyInvocable<void(HostLookup)> done)>;

struct AgentState {
  std::shared_ptr<const mesh::Snapshot> snapshot;
  std::map<std::string, std::shared_ptr<const PodContext>> pods;  // by uid
  Authorizer authorize;  // allow-all when no policy engine is configured
  HostResolver resolve_host;  // null: hostname-only workloads cannot be reached
  uint64_t generation = 0;

  const PodContext* FindPod(const std::string& uid) const {
    auto it = pods.find(uid);
    return it == pods.end() ? nullptr : it->second.get();
  }
};

}  // namespace ambit::agent
