// The structure of DestinationRule trafficPolicy and Istio's merge order
// for one cluster (istiod's MergeTrafficPolicy): start from the top-level
// policy; a portLevelSettings entry for the cluster's port replaces the
// load balancer, connection pool and outlier detection wholesale (port
// settings do not inherit); a subset's policy then overrides each part it
// sets, and the subset's own portLevelSettings entry for the port replaces
// them wholesale again.
#include <fmt/format.h>

#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route::internal {

namespace {

struct PortPolicy {
  uint16_t port = 0;
  TrafficPolicy policy;
};

// One trafficPolicy node as written.
struct Written {
  bool present = false;
  TrafficPolicy own;
  std::vector<PortPolicy> ports;
};

// The parts every level has (loadBalancer, connectionPool,
// outlierDetection, tls); `field` names the node in findings.
void ReadParts(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
               TrafficPolicy* out) {
  if (const YAML::Node lb = Child(n, "loadBalancer"); Present(lb)) {
    out->load_balancer = CompileLoadBalancer(doc, lb, Field(field, "loadBalancer"), sink);
  }
  if (const YAML::Node cp = Child(n, "connectionPool"); Present(cp)) {
    out->connection_pool = CompileConnectionPool(doc, cp, Field(field, "connectionPool"), sink);
  }
  if (const YAML::Node od = Child(n, "outlierDetection"); Present(od)) {
    out->outlier_written = true;
    out->outlier_detection =
        CompileOutlierDetection(doc, od, Field(field, "outlierDetection"), sink);
  }
  if (const YAML::Node tls = Child(n, "tls"); Present(tls)) {
    // Waypoint → endpoint traffic is HBONE (mTLS with Istio identities)
    // already; ISTIO_MUTUAL asks for exactly that. Origination to
    // non-mesh endpoints is not done by the waypoint.
    const YAML::Node mode = Child(tls, "mode");
    const std::string m = Present(mode) && mode.IsScalar() ? mode.Scalar() : "";
    if (m != "ISTIO_MUTUAL") {
      sink.Add(doc, tls,
               fmt::format("{}.tls: mode {} is not supported by the waypoint (its upstream is "
                           "HBONE mTLS); ignored",
                           field, m.empty() ? "(unset)" : m));
    }
  }
}

Written Read(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink) {
  Written w;
  if (!Present(n)) return w;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; ignored", field));
    return w;
  }
  w.present = true;
  ReportUnknownKeys(doc, n, field,
                    {"loadBalancer", "connectionPool", "outlierDetection", "tls",
                     "portLevelSettings"},
                    sink, "not supported yet; ignored");
  ReadParts(doc, n, field, sink, &w.own);
  const YAML::Node list = Child(n, "portLevelSettings");
  if (!Present(list)) return w;
  if (!list.IsSequence()) {
    sink.Add(doc, list, fmt::format("{}.portLevelSettings: expected a list; ignored", field));
    return w;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string f = Field(Field(field, "portLevelSettings"), i);
    const YAML::Node p = list[i];
    if (!p.IsMap()) {
      sink.Add(doc, p, fmt::format("{}: expected a map; ignored", f));
      continue;
    }
    ReportUnknownKeys(doc, p, f, {"port", "loadBalancer", "connectionPool", "outlierDetection",
                                  "tls"},
                      sink, "not supported yet; ignored");
    auto number = Uint(doc, Child(Child(p, "port"), "number"), Field(f, "port.number"), 65535,
                       sink);
    if (!number || *number == 0) {
      if (number) sink.Invalid(doc, Child(p, "port"), fmt::format("{}.port.number: must be 1-65535", f));
      continue;
    }
    PortPolicy pp;
    pp.port = static_cast<uint16_t>(*number);
    ReadParts(doc, p, f, sink, &pp.policy);
    w.ports.push_back(std::move(pp));
  }
  return w;
}

// Port-level settings replace the three parts wholesale (unset parts go
// back to the defaults).
void ApplyPort(const Written& w, uint16_t port, TrafficPolicy* p) {
  for (const PortPolicy& pp : w.ports) {
    if (pp.port != port) continue;
    p->load_balancer = pp.policy.load_balancer;
    p->connection_pool = pp.policy.connection_pool;
    p->outlier_detection = pp.policy.outlier_detection;
    p->outlier_written = pp.policy.outlier_written;
    return;
  }
}

bool Empty(const TrafficPolicy& p) {
  return !p.load_balancer && !p.connection_pool && !p.outlier_detection && !p.outlier_written;
}

}  // namespace

void CompileTrafficPolicies(const Doc& doc, const mesh::Service& svc,
                            const std::vector<std::pair<std::string, YAML::Node>>& subsets,
                            RouteConfig* out, Sink& sink) {
  const Written top = Read(doc, Child(doc.spec, "trafficPolicy"), "spec.trafficPolicy", sink);
  std::vector<std::pair<std::string, Written>> subs;
  for (size_t i = 0; i < subsets.size(); ++i) {
    Written w = Read(doc, subsets[i].second,
                     Field(Field("spec.subsets", i), "trafficPolicy"), sink);
    subs.emplace_back(subsets[i].first, std::move(w));
  }
  const std::string source = fmt::format("DestinationRule {}", doc.Key());
  for (const auto& [port, target] : svc.ports) {
    (void)target;
    TrafficPolicy base = top.own;
    ApplyPort(top, port, &base);
    base.source = source;
    if (!Empty(base)) out->policies[ClusterName(svc, port, "")] = base;
    for (const auto& [name, w] : subs) {
      TrafficPolicy p = base;
      if (w.own.load_balancer) p.load_balancer = w.own.load_balancer;
      if (w.own.connection_pool) p.connection_pool = w.own.connection_pool;
      if (w.own.outlier_written) {
        p.outlier_detection = w.own.outlier_detection;
        p.outlier_written = true;
      }
      ApplyPort(w, port, &p);
      if (!Empty(p)) out->policies[ClusterName(svc, port, name)] = std::move(p);
    }
  }
}

}  // namespace ambit::waypoint::route::internal
