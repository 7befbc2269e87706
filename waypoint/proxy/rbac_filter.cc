#include "waypoint/proxy/rbac_filter.h"

#include <fmt/format.h>

#include "common/base/log.h"
#include "waypoint/proxy/filters.h"
#include "waypoint/proxy/worker.h"
#include "waypoint/route/authz.h"

namespace ambit::waypoint {

namespace {

constexpr std::string_view kSpiffe = "spiffe://";
constexpr int kGrpcPermissionDenied = 7;

// "td/ns/NS/sa/SA" → "NS" (empty when the id has another shape).
std::string_view NamespaceOf(std::string_view principal) {
  const size_t at = principal.find("/ns/");
  if (at == std::string_view::npos) return {};
  std::string_view rest = principal.substr(at + 4);
  return rest.substr(0, rest.find('/'));
}

void Count(const Downstream& d, metrics::CounterFamily* family, metrics::Labels labels) {
  if (family != nullptr) family->Get(d.worker.index(), labels)->Inc();
}

std::string_view KeyOf(const route::AuthzPolicy* p) {
  return p == nullptr ? std::string_view() : std::string_view(p->key);
}

}  // namespace

std::optional<LocalReply> AuthorizeRequest(const Downstream& d, const FilterRequest& req,
                                           RequestInfo& info) {
  const route::AuthzConfig* cfg = d.state->authz.get();
  if (cfg == nullptr || cfg->empty()) return std::nullopt;
  const route::AuthzSet& set = cfg->For(d.target.service);
  if (set.empty()) return std::nullopt;

  route::AuthzRequest r;
  std::string_view principal = d.principal;
  if (principal.starts_with(kSpiffe)) {
    principal.remove_prefix(kSpiffe.size());
    r.has_identity = !principal.empty();
    r.principal = principal;
    r.ns = NamespaceOf(principal);
  }
  r.source_ip = d.peer.ip();
  r.remote_ip = d.peer.ip();  // no trusted proxy hops: Envoy's remote address is the peer
  r.destination_ip = d.target.authority.ip();
  r.destination_port = d.target.authority.port();
  r.method = req.method;
  r.path = req.path.substr(0, req.path.find('?'));
  r.authority = req.authority;
  r.headers = req.headers;

  const route::AuthzDecision dec = route::EvaluateAuthz(*cfg, set, r);
  const WorkerCounters& c = d.worker.counters();
  if (dec.audit != nullptr) {
    Count(d, c.rbac_audit, {dec.audit->key});
    AMBIT_LOG(kInfo, "rbac", "rbac audit: {} matched {} {} {} from {} ({})", dec.audit->key,
              req.method, r.path, req.authority, d.principal.empty() ? "-" : d.principal,
              d.peer.ToString());
  }
  if (dec.shadow) {
    const std::string_view result = dec.shadow_allow ? "allowed" : "denied";
    Count(d, c.rbac_shadow, {std::string(result), std::string(KeyOf(dec.shadow_policy))});
    AMBIT_LOG(kInfo, "rbac", "rbac shadow {} by {}: {} {} {} from {} ({})", result,
              dec.shadow_policy ? dec.shadow_policy->key : "no dry-run ALLOW match", req.method,
              r.path, req.authority, d.principal.empty() ? "-" : d.principal, d.peer.ToString());
  }
  if (dec.allow) {
    Count(d, c.rbac_allowed, {std::string(KeyOf(dec.policy))});
    return std::nullopt;
  }
  Count(d, c.rbac_denied, {std::string(KeyOf(dec.policy))});
  AMBIT_LOG(kDebug, "rbac", "rbac denied {} {} {} from {} ({}): {}", req.method, r.path,
            req.authority, d.principal.empty() ? "-" : d.principal, d.peer.ToString(),
            dec.policy ? "DENY " + dec.policy->key : std::string("no ALLOW policy matched"));
  LocalReply reply;
  reply.status = 403;
  reply.body = "RBAC: access denied";
  reply.flag = std::string(kRbacFlag);
  reply.details = fmt::format("rbac_access_denied_matched_policy[{}]",
                              dec.policy ? dec.policy->key : "none");
  reply.grpc_status = kGrpcPermissionDenied;
  (void)info;  // the codec's Reply records flag and details
  return reply;
}

}  // namespace ambit::waypoint
