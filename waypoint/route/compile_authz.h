// Compiling Istio AuthorizationPolicy documents (security.istio.io v1 and
// v1beta1) into the waypoint's AuthzConfig (authz.h), as istiod binds them
// to a waypoint (pilot/pkg/model/policyattachment.go):
//   - targetRefs kind Gateway (gateway.networking.k8s.io) named like this
//     waypoint (its pods' gateway.networking.k8s.io/gateway-name label),
//     policy in the waypoint's namespace → every request;
//   - kind GatewayClass `istio-waypoint` (or our `ambit-waypoint`), policy
//     in the root namespace → every request on every waypoint;
//   - kind Service (group "") / ServiceEntry (networking.istio.io) naming a
//     service of the policy's namespace that uses this waypoint → requests
//     to that service.
// Policies with a selector or neither (workload policies) are the agent's
// (common/authz) and skipped here. Control thread only.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config/local_config.h"
#include "common/mesh/snapshot.h"
#include "waypoint/route/authz.h"

namespace ambit::waypoint::route {

struct AuthzCompileOptions {
  std::string root_namespace = "istio-system";  // as the agent's translator
};

struct AuthzCompileResult {
  std::shared_ptr<const AuthzConfig> config;  // never null
  std::vector<Finding> findings;
  // Policies with targetRefs that bind nothing on this waypoint, with why
  // ("ns/name: Gateway other is not this waypoint"), for /config_dump.
  std::vector<std::string> unbound;
};

// Whether `svc` sends its traffic to this waypoint (`self`), by its waypoint
// or a weighted waypoint with weight > 0.
bool UsesWaypoint(const mesh::Snapshot& snap, const mesh::Service& svc,
                  const mesh::Workload& self);

AuthzCompileResult CompileAuthz(std::span<const config::ResourceConfig> resources,
                                const mesh::Snapshot& snapshot, const mesh::Workload& self,
                                const AuthzCompileOptions& options = {});

namespace internal {
class Sink;
struct Doc;
// rules[i] → a rule; nullopt when the rule can never be evaluated safely
// (the caller reported why). `deny_like`: DENY or CUSTOM (fallbacks must
// match more); else fallbacks must match less.
// Every key of map `n` not in `known` is an invalid finding ("field.key:
// unknown field"): in a security policy an ignored typo could allow more.
// Returns false when there was one.
bool RejectUnknownKeys(const Doc& doc, const YAML::Node& n, std::string_view path,
                       std::initializer_list<std::string_view> known, Sink& sink);
std::optional<AuthzRule> CompileAuthzRule(const Doc& doc, const YAML::Node& rule,
                                          const std::string& path, bool deny_like, Sink& sink);
}  // namespace internal

}  // namespace ambit::waypoint::route
