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

std::string KeyOf(const route::AuthzPolicy* p) { return p == nullptr ? std::string() : p->key; }

// The connection's part of the request: who the client is (the HBONE peer
// certificate or the PROXY TLV identity, and the original client address,
// never the agent's) and what it addressed.
route::AuthzRequest ConnectionRequest(const Downstream& d) {
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
  return r;
}

// Evaluates, logs AUDIT / dry-run matches and counts the decision. `what()`
// describes the request for the log lines (built only when one is written).
template <typename What>
route::AuthzDecision Decide(const Downstream& d, const route::AuthzSet& set,
                            const route::AuthzRequest& r, What&& what) {
  const route::AuthzDecision dec = route::EvaluateAuthz(*d.state->authz, set, r);
  const WorkerCounters& c = d.worker.counters();
  const std::string_view who = d.principal.empty() ? std::string_view("-") : d.principal;
  if (dec.audit != nullptr) {
    Count(d, c.rbac_audit, {dec.audit->key});
    AMBIT_LOG(kInfo, "rbac", "rbac audit: {} matched {} from {} ({})", dec.audit->key, what(), who,
              d.peer.ToString());
  }
  // A shadow result is worth a line when a dry-run policy decided it (or
  // dry-run ALLOWs exist and none matched), not for every other request.
  if (dec.shadow && (dec.shadow_policy != nullptr || !dec.shadow_allow)) {
    const std::string_view result = dec.shadow_allow ? "allowed" : "denied";
    Count(d, c.rbac_shadow, {std::string(result), KeyOf(dec.shadow_policy)});
    AMBIT_LOG(kInfo, "rbac", "rbac shadow {} by {}: {} from {} ({})", result,
              dec.shadow_policy ? dec.shadow_policy->key : "no dry-run ALLOW match", what(), who,
              d.peer.ToString());
  }
  if (dec.allow) {
    Count(d, c.rbac_allowed, {KeyOf(dec.policy)});
  } else {
    Count(d, c.rbac_denied, {KeyOf(dec.policy)});
    AMBIT_LOG(kDebug, "rbac", "rbac denied {} from {} ({}): {}", what(), who, d.peer.ToString(),
              dec.policy ? "DENY " + dec.policy->key : std::string("no ALLOW policy matched"));
  }
  return dec;
}

const route::AuthzSet* Applicable(const Downstream& d) {
  const route::AuthzConfig* cfg = d.state->authz.get();
  if (cfg == nullptr || cfg->empty()) return nullptr;
  const route::AuthzSet& set = cfg->For(d.target.service);
  return set.empty() ? nullptr : &set;
}

}  // namespace

std::optional<LocalReply> AuthorizeRequest(const Downstream& d, const FilterRequest& req,
                                           RequestInfo& info) {
  const route::AuthzSet* set = Applicable(d);
  if (set == nullptr) return std::nullopt;
  route::AuthzRequest r = ConnectionRequest(d);
  std::string scratch;
  r.method = req.method;
  r.path = route::AuthzPath(req.path, &scratch);
  r.authority = req.authority;
  r.headers = req.headers;
  const route::AuthzDecision dec = Decide(
      d, *set, r, [&] { return fmt::format("{} {} {}", req.method, r.path, req.authority); });
  if (dec.allow) return std::nullopt;
  LocalReply reply;
  reply.status = 403;
  reply.body = "RBAC: access denied";
  reply.flag = std::string(kRbacFlag);
  reply.details =
      fmt::format("rbac_access_denied_matched_policy[{}]", dec.policy ? dec.policy->key : "none");
  reply.grpc_status = kGrpcPermissionDenied;
  (void)info;  // the codec's Reply records flag and details from the reply
  return reply;
}

bool AuthorizeConnection(const Downstream& d) {
  const route::AuthzSet* set = Applicable(d);
  if (set == nullptr) return true;
  route::AuthzRequest r = ConnectionRequest(d);
  r.tcp = true;
  return Decide(d, *set, r, [&] { return "tcp " + d.target.Describe(); }).allow;
}

}  // namespace ambit::waypoint
