// PeerAuthentication → synthetic DENY policies (ISTIO-COMPAT §7.4): STRICT
// denies peers without identity (plaintext). Most specific resource wins per
// workload: selector (workload's namespace) > namespace-wide > mesh-wide
// (root namespace, no selector); UNSET inherits from the next level.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/authz/translate_internal.h"

namespace ambit::authz::internal {
namespace {

enum class Mode : uint8_t { kUnset, kDisable, kPermissive, kStrict };

struct Peer {
  const Resource* res = nullptr;
  std::optional<Labels> selector;
  Mode mode = Mode::kUnset;
  std::map<uint16_t, Mode> ports;  // portLevelMtls, UNSET entries omitted
};

std::optional<Mode> ParseMode(const YAML::Node& mtls) {
  if (!mtls.IsDefined() || mtls.IsNull()) return Mode::kUnset;
  const YAML::Node m = mtls.IsMap() ? Child(mtls, "mode") : YAML::Node();
  if (!m.IsDefined() || m.IsNull()) return mtls.IsMap() ? std::optional(Mode::kUnset) : std::nullopt;
  const std::string v = m.IsScalar() ? m.Scalar() : "";
  if (v == "UNSET") return Mode::kUnset;
  if (v == "DISABLE") return Mode::kDisable;
  if (v == "PERMISSIVE") return Mode::kPermissive;
  if (v == "STRICT") return Mode::kStrict;
  return std::nullopt;
}

void ParsePorts(const Resource& r, const YAML::Node& n, const FindingSink& sink, Peer* p) {
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    sink.Add(r, "spec.portLevelMtls: expected a map of port → {mode}; ignored");
    return;
  }
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    auto port = ParsePort(key, "spec.portLevelMtls");
    std::optional<Mode> mode = ParseMode(kv.second);
    if (!port.ok() || !mode) {
      sink.Add(r, fmt::format("spec.portLevelMtls[{}]: {}; entry ignored", key,
                              !port.ok() ? std::string(port.status().message())
                                         : std::string("mode must be UNSET, DISABLE, "
                                                       "PERMISSIVE or STRICT")));
      continue;
    }
    if (*mode != Mode::kUnset) p->ports[*port] = *mode;
  }
}

std::optional<Peer> ParsePeer(const Resource& r, const FindingSink& sink) {
  Peer p;
  p.res = &r;
  for (const auto& kv : r.spec) {
    const std::string k = kv.first.Scalar();
    if (k != "selector" && k != "mtls" && k != "portLevelMtls") {
      sink.Add(r, fmt::format("spec.{}: unknown field ignored", k));
    }
  }
  auto sel = ParseSelector(r.spec);
  if (!sel.ok()) {
    sink.Add(r, fmt::format("{}; resource not applied", std::string(sel.status().message())));
    return std::nullopt;
  }
  p.selector = *sel;
  std::optional<Mode> mode = ParseMode(Child(r.spec, "mtls"));
  if (!mode) {
    sink.Add(r, "spec.mtls.mode: must be UNSET, DISABLE, PERMISSIVE or STRICT; treated as UNSET");
    mode = Mode::kUnset;
  }
  p.mode = *mode;
  ParsePorts(r, Child(r.spec, "portLevelMtls"), sink, &p);
  return p;
}

mesh::Policy DenyPlaintext(std::string ns, std::string name) {
  mesh::Policy p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  p.scope = mesh::PolicyScope::kWorkloadSelector;
  p.action = mesh::PolicyAction::kDeny;
  mesh::Match m;
  m.not_principals.push_back({mesh::StringMatch::Kind::kPresence, {}});
  p.rules.push_back(mesh::Rule{{mesh::Clause{{std::move(m)}}}});
  return p;
}

class Resolver {
 public:
  Resolver(std::vector<Peer> peers, const TranslateOptions& options, const FindingSink& sink)
      : peers_(std::move(peers)), options_(options), sink_(sink) {
    for (const Peer& p : peers_) {
      if (p.selector) continue;
      const bool mesh = p.res->ns == options_.root_namespace;
      const Peer*& slot = mesh ? mesh_ : by_ns_[p.res->ns];
      if (slot == nullptr) {
        slot = &p;
      } else {
        sink_.Add(*p.res, fmt::format("another {} PeerAuthentication ({}) already applies; "
                                      "this one is ignored",
                                      mesh ? "mesh-wide" : "namespace-wide", slot->res->Key()));
      }
    }
  }

  void Apply(const mesh::Workload& w, TranslateResult* out);
  void Finish(TranslateResult* out) {
    for (auto& [key, p] : generated_) out->policies.push_back(std::move(p));
  }

 private:
  const Peer* WorkloadLevel(const mesh::Workload& w);

  std::vector<Peer> peers_;
  const TranslateOptions& options_;
  const FindingSink& sink_;
  const Peer* mesh_ = nullptr;
  std::map<std::string, const Peer*> by_ns_;
  std::map<std::string, mesh::Policy> generated_;  // by key
  std::set<std::pair<const Peer*, const Peer*>> reported_;
};

const Peer* Resolver::WorkloadLevel(const mesh::Workload& w) {
  const Peer* found = nullptr;
  for (const Peer& p : peers_) {
    if (!p.selector || p.res->ns != w.ns || !SelectorMatches(*p.selector, w.labels)) continue;
    if (found == nullptr) {
      found = &p;
    } else if (reported_.insert({found, &p}).second) {
      sink_.Add(*p.res, fmt::format("selects workload {} already selected by PeerAuthentication "
                                    "{}; ignored for the workloads both select",
                                    w.uid, found->res->Key()));
    }
  }
  return found;
}

void Resolver::Apply(const mesh::Workload& w, TranslateResult* out) {
  const Peer* chain[3] = {WorkloadLevel(w), nullptr, mesh_};
  if (auto it = by_ns_.find(w.ns); it != by_ns_.end()) chain[1] = it->second;
  Mode mode = Mode::kPermissive;  // nothing set anywhere: PERMISSIVE
  const Peer* winner = nullptr;
  for (const Peer* p : chain) {
    if (p == nullptr) continue;
    if (winner == nullptr) winner = p;
    if (p->mode != Mode::kUnset) {
      mode = p->mode;
      break;
    }
  }
  if (winner == nullptr) return;
  const bool strict = mode == Mode::kStrict;
  mesh::Match m;  // not_principals: [presence] + port condition
  for (const auto& [port, port_mode] : winner->ports) {
    const bool port_strict = port_mode == Mode::kStrict;
    if (strict && !port_strict) m.not_destination_ports.push_back(port);
    if (!strict && port_strict) m.destination_ports.push_back(port);
  }
  if (!strict && m.destination_ports.empty()) return;  // nothing to deny
  std::string key;
  if (strict && m.not_destination_ports.empty()) {
    key = options_.root_namespace + "/" + std::string(kStaticStrictPolicyName);
    if (!generated_.contains(key)) {
      generated_[key] = DenyPlaintext(options_.root_namespace, std::string(kStaticStrictPolicyName));
    }
  } else {
    const std::string name = std::string(kPeerAuthnPolicyPrefix) + winner->res->name;
    key = winner->res->ns + "/" + name;
    if (!generated_.contains(key)) {
      mesh::Policy p = DenyPlaintext(winner->res->ns, name);
      mesh::Match& dm = p.rules[0].clauses[0].matches[0];
      dm.destination_ports = m.destination_ports;
      dm.not_destination_ports = m.not_destination_ports;
      generated_[key] = std::move(p);
    }
  }
  out->workload_policies[w.uid].push_back(key);
}

}  // namespace

void TranslatePeerAuthentications(std::span<const Resource> resources,
                                  std::span<const mesh::Workload> workloads,
                                  const TranslateOptions& options, const FindingSink& findings,
                                  TranslateResult* out) {
  std::vector<Peer> peers;
  for (const Resource& r : resources) {
    try {
      std::optional<Peer> p = ParsePeer(r, findings);
      if (p) peers.push_back(std::move(*p));
    } catch (const YAML::Exception& e) {
      findings.Add(r, fmt::format("cannot read resource: {}; resource not applied", e.what()));
    }
  }
  if (peers.empty()) return;
  Resolver resolver(std::move(peers), options, findings);
  for (const mesh::Workload& w : workloads) resolver.Apply(w, out);
  resolver.Finish(out);
}

}  // namespace ambit::authz::internal
