#include "common/mesh/waypoint_binding.h"

#include <fmt/format.h>

#include <optional>

#include "common/net/address.h"

namespace ambit::mesh {
namespace {

using config::AllowedNamespaces;
using config::LabelMap;

constexpr std::string_view kWaypointForLabel = "istio.io/waypoint-for";
constexpr std::string_view kManagedLabel = "gateway.istio.io/managed";
constexpr std::string_view kMeshController = "istio.io/mesh-controller";

struct Waypoint {
  std::string ns, name;
  std::string traffic = "service";  // istio.io/waypoint-for
  AllowedNamespaces allowed = AllowedNamespaces::kSame;
  LabelMap selector;
  std::optional<GatewayAddress> address;  // nullopt: not ready
};

const std::string* Label(const LabelMap& labels, std::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? nullptr : &it->second;
}

// A Kubernetes label value naming an object: 1-63 of [A-Za-z0-9-_.],
// alphanumeric at both ends.
bool IsName(std::string_view s) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// GetUseWaypoint: absent, `none`, or ns/name.
struct UseWaypoint {
  bool present = false, none = false;
  std::string ns, name;
};

StatusOr<UseWaypoint> ParseUse(const LabelMap& labels, const std::string& fallback_ns,
                               std::string_view what) {
  UseWaypoint u;
  const std::string* v = Label(labels, kUseWaypointLabel);
  if (v == nullptr) return u;
  u.present = true;
  if (*v == "none") {
    u.none = true;
    return u;
  }
  if (!IsName(*v)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: label {}: '{}' is not a waypoint name (or none)", what, kUseWaypointLabel, *v));
  }
  u.name = *v;
  u.ns = fallback_ns;
  if (const std::string* ns = Label(labels, kUseWaypointNamespaceLabel)) {
    if (!IsName(*ns)) {
      return absl::InvalidArgumentError(fmt::format("{}: label {}: '{}' is not a namespace name",
                                                    what, kUseWaypointNamespaceLabel, *ns));
    }
    u.ns = *ns;
  }
  return u;
}

bool SelectorMatches(const LabelMap& selector, const LabelMap& labels) {
  for (const auto& [k, v] : selector) {
    const std::string* have = Label(labels, k);
    if (have == nullptr || *have != v) return false;
  }
  return true;
}

class Binder {
 public:
  explicit Binder(const config::LocalConfig& cfg) : cfg_(cfg) {}

  Status Index() {
    for (const auto& n : cfg_.namespaces) {
      if (!namespaces_.emplace(n.name, &n.labels).second) {
        return absl::InvalidArgumentError(
            fmt::format("namespace {} (line {}): duplicate namespace", n.name, n.line));
      }
    }
    for (const auto& g : cfg_.gateways) {
      if (g.class_name != "istio-waypoint" && g.class_name != "ambit-waypoint") continue;
      Waypoint w{g.ns, g.name};
      if (const std::string* t = Label(g.labels, kWaypointForLabel)) w.traffic = *t;
      w.allowed = g.allowed;
      w.selector = g.allowed_selector;
      if (!waypoints_.emplace(g.ns + "/" + g.name, std::move(w)).second) {
        return absl::InvalidArgumentError(fmt::format(
            "{}:{}: Gateway {}/{}: duplicate waypoint", g.file, g.line, g.ns, g.name));
      }
    }
    // Instances declare a waypoint too (default waypoint-for: service).
    for (const auto& wc : cfg_.workloads) {
      const std::string* gw = Label(wc.labels, kGatewayNameLabel);
      if (gw == nullptr) continue;
      waypoints_.try_emplace(wc.ns + "/" + *gw, Waypoint{wc.ns, *gw});
    }
    for (auto& [key, w] : waypoints_) w.address = Address(w);
    return absl::OkStatus();
  }

  // fetchWaypointForTarget + the traffic-type check; nullptr = no waypoint.
  StatusOr<const Waypoint*> Target(const LabelMap& labels, const std::string& ns,
                                   std::string_view kind, std::string_view what) {
    ASSIGN_OR_RETURN(UseWaypoint own, ParseUse(labels, ns, what));
    if (own.none) return nullptr;
    bool inherited = !own.present;
    UseWaypoint use = own;
    if (inherited) {
      const LabelMap* ns_labels = NamespaceLabels(ns);
      if (ns_labels == nullptr) return nullptr;
      ASSIGN_OR_RETURN(use, ParseUse(*ns_labels, ns, fmt::format("namespace {}", ns)));
      if (!use.present || use.none) return nullptr;
    }
    std::string key = use.ns + "/" + use.name;
    auto it = waypoints_.find(key);
    if (it == waypoints_.end()) {
      Finding(what, fmt::format("waypoint {} not found{}", key, inherited ? " (namespace label)" : ""));
      return nullptr;
    }
    const Waypoint& w = it->second;
    if (!Allows(w, ns)) {
      Finding(what, fmt::format("waypoint {} does not allow attachment from namespace {} (its "
                                "HBONE listener's allowedRoutes)",
                                key, ns));
      return nullptr;
    }
    if (w.traffic != kind && w.traffic != "all") {
      // A namespace-wide binding to a service waypoint is not a workload error.
      if (!(inherited && kind == "workload")) {
        Finding(what, fmt::format("waypoint {} is istio.io/waypoint-for: {}, not {}", key,
                                  w.traffic, kind));
      }
      return nullptr;
    }
    if (!w.address) {
      Finding(what, fmt::format("waypoint {} is not ready: no service {} in namespace {} and no "
                                "instance with an address",
                                key, w.name, w.ns));
      return nullptr;
    }
    return &w;
  }

  bool IsWaypointService(const config::ServiceConfig& s) const {
    const std::string* m = Label(s.labels, kManagedLabel);
    return (m != nullptr && *m == kMeshController) || waypoints_.contains(s.ns + "/" + s.name);
  }

  std::vector<std::string> TakeFindings() { return std::move(findings_); }

 private:
  const LabelMap* NamespaceLabels(const std::string& ns) const {
    auto it = namespaces_.find(ns);
    return it == namespaces_.end() ? nullptr : it->second;
  }

  bool Allows(const Waypoint& w, const std::string& ns) const {
    switch (w.allowed) {
      case AllowedNamespaces::kAll: return true;
      case AllowedNamespaces::kSelector: {
        const LabelMap* labels = NamespaceLabels(ns);
        return labels != nullptr && SelectorMatches(w.selector, *labels);
      }
      case AllowedNamespaces::kSame: break;
    }
    return w.ns == ns;
  }

  std::optional<GatewayAddress> Address(const Waypoint& w) const {
    for (const auto& s : cfg_.services) {
      if (s.ns == w.ns && s.name == w.name) {
        return GatewayAddress{NamespacedHostname{s.ns, s.hostname}, kHbonePort};
      }
    }
    for (const auto& wc : cfg_.workloads) {
      const std::string* gw = Label(wc.labels, kGatewayNameLabel);
      if (gw == nullptr || *gw != w.name || wc.ns != w.ns || wc.workload_ips.empty()) continue;
      auto ip = IpAddress::Parse(wc.workload_ips.front());
      if (!ip.ok()) continue;  // ConvertWorkload reports it
      return GatewayAddress{NetworkAddress{wc.network, *ip, ip->is_v4() ? uint8_t{32} : uint8_t{128}},
                            kHbonePort};
    }
    return std::nullopt;
  }

  void Finding(std::string_view what, std::string msg) {
    findings_.push_back(fmt::format("{}: {}", what, msg));
  }

  const config::LocalConfig& cfg_;
  std::map<std::string, const LabelMap*> namespaces_;
  std::map<std::string, Waypoint> waypoints_;
  std::vector<std::string> findings_;
};

}  // namespace

bool IsWaypointInstance(const Workload& w) {
  return w.labels.contains(std::string(kGatewayNameLabel));
}

StatusOr<WaypointBindings> BindWaypoints(const config::LocalConfig& cfg) {
  Binder b(cfg);
  RETURN_IF_ERROR(b.Index());
  WaypointBindings out;
  for (size_t i = 0; i < cfg.services.size(); ++i) {
    const config::ServiceConfig& s = cfg.services[i];
    std::string what = fmt::format("service {}/{} (line {})", s.ns, s.name, s.line);
    if (b.IsWaypointService(s)) continue;  // a waypoint has no waypoint
    ASSIGN_OR_RETURN(const Waypoint* w, b.Target(s.labels, s.ns, "service", what));
    if (w == nullptr || s.waypoint || !s.weighted_waypoints.empty()) continue;
    out.services.emplace(i, *w->address);
  }
  for (size_t i = 0; i < cfg.workloads.size(); ++i) {
    const config::WorkloadConfig& wc = cfg.workloads[i];
    if (Label(wc.labels, kGatewayNameLabel) != nullptr) continue;  // an instance
    std::string what = fmt::format("workload {}/{} (line {})", wc.ns, wc.name, wc.line);
    ASSIGN_OR_RETURN(const Waypoint* w, b.Target(wc.labels, wc.ns, "workload", what));
    if (w == nullptr || wc.waypoint) continue;
    out.workloads.emplace(i, *w->address);
  }
  out.findings = b.TakeFindings();
  return out;
}

}  // namespace ambit::mesh
