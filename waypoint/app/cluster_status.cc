#include "waypoint/app/cluster_status.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>

#include "common/mesh/waypoint.h"
#include "waypoint/kube/watcher.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

std::string Str(const json& obj, const char* key, std::string def = {}) {
  if (!obj.is_object()) return def;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : def;
}

const json& Path(const json& obj, std::initializer_list<const char*> keys) {
  static const json kNull;
  const json* cur = &obj;
  for (const char* k : keys) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(k);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

std::string KindOf(const kube::KubeObject& o) { return Str(o.body, "kind"); }

// A condition; lastTransitionTime is carried over from `existing` (an array
// of conditions) when the status did not change.
json Condition(const std::string& type, bool ok, const std::string& reason,
               const std::string& message, int64_t generation, const json& existing,
               const std::string& now) {
  const std::string status = ok ? "True" : "False";
  std::string since = now;
  if (existing.is_array()) {
    for (const json& c : existing) {
      if (Str(c, "type") == type && Str(c, "status") == status &&
          !Str(c, "lastTransitionTime").empty()) {
        since = Str(c, "lastTransitionTime");
      }
    }
  }
  return {{"type", type},
          {"status", status},
          {"reason", reason},
          {"message", message.substr(0, 1024)},
          {"observedGeneration", generation},
          {"lastTransitionTime", since}};
}

bool UsesThisWaypoint(const mesh::Snapshot& snap, const mesh::Service& svc,
                      const mesh::Workload& self) {
  if (svc.waypoint && mesh::IsWaypointWorkload(snap, *svc.waypoint, self)) return true;
  for (const auto& w : svc.weighted_waypoints) {
    if (w.weight > 0 && mesh::IsWaypointWorkload(snap, w.destination, self)) return true;
  }
  return false;
}

const mesh::Service* FindService(const mesh::Snapshot& snap, const std::string& ns,
                                 const std::string& name) {
  for (const auto& [key, svc] : snap.services()) {
    if (svc.ns == ns && svc.name == name) return &svc;
  }
  return nullptr;
}

bool IsCoreGroup(const json& ref) {
  const std::string g = Str(ref, "group");
  return g.empty() || g == "core";
}

// Does this parentRef name this waypoint?
bool BindsHere(const StatusInputs& in, const json& ref, const std::string& route_ns) {
  const std::string kind = Str(ref, "kind", "Gateway");
  const std::string group = Str(ref, "group", "gateway.networking.k8s.io");
  const std::string ns = Str(ref, "namespace", route_ns);
  const std::string name = Str(ref, "name");
  if (kind == "Gateway" && group == "gateway.networking.k8s.io") {
    return name == in.gateway_name && ns == in.gateway_namespace;
  }
  if (kind == "Service" && IsCoreGroup(ref)) {
    const mesh::Service* svc = FindService(*in.snapshot, ns, name);
    return svc != nullptr && UsesThisWaypoint(*in.snapshot, *svc, *in.self);
  }
  return false;
}

// Every Service backendRef names a known service. Other kinds (ServiceEntry
// hostnames, ...) are left to the compile findings.
std::string UnresolvedBackend(const StatusInputs& in, const kube::KubeObject& route) {
  const json& rules = Path(route.body, {"spec", "rules"});
  if (!rules.is_array()) return {};
  for (const json& rule : rules) {
    const json& refs = Path(rule, {"backendRefs"});
    if (!refs.is_array()) continue;
    for (const json& ref : refs) {
      if (Str(ref, "kind", "Service") != "Service" || !IsCoreGroup(ref)) continue;
      const std::string ns = Str(ref, "namespace", route.ns);
      const std::string name = Str(ref, "name");
      if (FindService(*in.snapshot, ns, name) == nullptr) {
        return fmt::format("backendRef Service {}/{} not found", ns, name);
      }
    }
  }
  return {};
}

std::string RouteProblems(const StatusInputs& in, const std::string& kind,
                          const kube::KubeObject& route, bool* invalid) {
  std::vector<std::string> msgs;
  *invalid = false;
  if (in.findings != nullptr) {
    for (const route::Finding& f : *in.findings) {
      if (f.kind != kind || f.resource != route.Key()) continue;
      if (f.invalid) *invalid = true;
      msgs.push_back(f.message);
    }
  }
  if (msgs.empty()) return {};
  return fmt::format("{} finding(s): {}", msgs.size(), fmt::join(msgs, "; "));
}

// The Gateway's Service: `<name>.<ns>.svc.<cluster domain>`.
json GatewayAddresses(const mesh::Snapshot& snap, const std::string& name, const std::string& ns) {
  json out = json::array();
  const std::string prefix = name + "." + ns + ".svc.";
  for (const auto& [key, svc] : snap.services()) {
    if (svc.ns != ns || !svc.hostname.starts_with(prefix)) continue;
    for (const mesh::NetworkAddress& v : svc.vips) {
      if (!v.IsCidr()) out.push_back({{"type", "IPAddress"}, {"value", v.ip.ToString()}});
    }
    out.push_back({{"type", "Hostname"}, {"value", svc.hostname}});
    break;
  }
  return out;
}

}  // namespace

std::string Rfc3339Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<StatusPatch> ComputeStatusPatches(const StatusInputs& in) {
  std::vector<StatusPatch> out;
  if (in.objects == nullptr || in.snapshot == nullptr || in.self == nullptr) return out;
  std::string controller = kAmbitController;
  for (const kube::KubeObject& o : *in.objects) {
    if (KindOf(o) != "Gateway" || o.name != in.gateway_name || o.ns != in.gateway_namespace) {
      continue;
    }
    if (Str(Path(o.body, {"spec"}), "gatewayClassName") == "istio-waypoint") {
      controller = kIstioMeshController;
    }
    const json& existing = Path(o.body, {"status", "conditions"});
    json conds = json::array();
    conds.push_back(Condition("Accepted", true, "Accepted", "accepted by the Ambit waypoint",
                              o.generation, existing, in.now));
    if (in.applied.ok()) {
      conds.push_back(Condition("Programmed", true, "Programmed",
                                fmt::format("served by {}/{}", in.self->ns, in.self->name),
                                o.generation, existing, in.now));
    } else {
      conds.push_back(Condition("Programmed", false, "Invalid",
                                std::string(in.applied.message()), o.generation, existing,
                                in.now));
    }
    json body = {{"status", {{"conditions", conds}}}};
    // istiod binds services to a waypoint Gateway through its status
    // addresses (the Service of the same name: VIPs, then its hostname).
    json addresses = GatewayAddresses(*in.snapshot, in.gateway_name, in.gateway_namespace);
    if (!addresses.empty()) body["status"]["addresses"] = std::move(addresses);
    out.push_back({"Gateway", kube::FindKind("Gateway")->ObjectPath(o.ns, o.name), body.dump()});
  }
  for (const kube::KubeObject& o : *in.objects) {
    const std::string kind = KindOf(o);
    if (kind != "HTTPRoute" && kind != "GRPCRoute") continue;
    const json& refs = Path(o.body, {"spec", "parentRefs"});
    const json& old_parents = Path(o.body, {"status", "parents"});
    json parents = json::array();
    bool had_ours = false;
    if (old_parents.is_array()) {
      for (const json& p : old_parents) {
        if (Str(p, "controllerName") == controller) {
          had_ours = true;
        } else {
          parents.push_back(p);
        }
      }
    }
    bool ours = false;
    if (refs.is_array()) {
      bool invalid = false;
      const std::string problems = RouteProblems(in, kind, o, &invalid);
      const std::string unresolved = UnresolvedBackend(in, o);
      for (const json& ref : refs) {
        if (!ref.is_object() || !BindsHere(in, ref, o.ns)) continue;
        ours = true;
        json existing;
        if (old_parents.is_array()) {
          for (const json& p : old_parents) {
            if (Str(p, "controllerName") == controller && Path(p, {"parentRef"}) == ref) {
              existing = Path(p, {"conditions"});
            }
          }
        }
        json conds = json::array();
        if (invalid) {
          conds.push_back(Condition("Accepted", false, "UnsupportedValue", problems,
                                    o.generation, existing, in.now));
        } else {
          conds.push_back(Condition("Accepted", true, "Accepted",
                                    problems.empty() ? "Route was valid" : problems,
                                    o.generation, existing, in.now));
        }
        if (unresolved.empty()) {
          conds.push_back(Condition("ResolvedRefs", true, "ResolvedRefs",
                                    "All references resolved", o.generation, existing, in.now));
        } else {
          conds.push_back(Condition("ResolvedRefs", false, "BackendNotFound", unresolved,
                                    o.generation, existing, in.now));
        }
        parents.push_back(
            {{"parentRef", ref}, {"controllerName", controller}, {"conditions", conds}});
      }
    }
    if (!ours && !had_ours) continue;
    json body = {{"status", {{"parents", parents}}}};
    out.push_back({kind, kube::FindKind(kind)->ObjectPath(o.ns, o.name), body.dump()});
  }
  return out;
}

}  // namespace ambit::waypoint
