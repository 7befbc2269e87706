// /config_dump of the waypoint: what it serves as it sees it — its workload
// and identity, its listeners, one cluster per service port bound to it with
// the endpoints a request could go to, and the config findings.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/mesh/app_protocol.h"
#include "common/mesh/waypoint.h"
#include "waypoint/app/resilience_dump.h"
#include "waypoint/app/authz_dump.h"
#include "waypoint/app/route_dump.h"
#include "waypoint/app/waypoint.h"
#include "waypoint/proxy/cluster.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

// Ports without a declared protocol are detected per connection.
std::string ProtocolName(mesh::AppProtocol p) {
  return p == mesh::AppProtocol::kUnknown ? "UNKNOWN (detected per connection)"
                                          : std::string(mesh::AppProtocolName(p));
}

// Services whose traffic the agents send to this waypoint.
bool UsesThisWaypoint(const mesh::Snapshot& snap, const mesh::Service& svc,
                      const mesh::Workload& self) {
  if (svc.waypoint && mesh::IsWaypointWorkload(snap, *svc.waypoint, self)) return true;
  for (const auto& w : svc.weighted_waypoints) {
    if (w.weight > 0 && mesh::IsWaypointWorkload(snap, w.destination, self)) return true;
  }
  return false;
}

}  // namespace

std::string Waypoint::ConfigDump() const {
  json out;
  out["version"] = "ambit-waypoint";
  out["config"] = {{"localXdsPath", flags_.config_path},
                   {"hboneAddr", flags_.hbone_addr},
                   {"adminAddr", flags_.admin_addr},
                   {"statsAddr", flags_.stats_addr},
                   {"readinessAddr", flags_.readiness_addr},
                   {"workers", flags_.workers},
                   {"generation", generation_}};
  if (self_) {
    json w = {{"uid", self_->uid}, {"name", self_->name}, {"namespace", self_->ns}};
    json addrs = json::array();
    for (const auto& a : self_->addresses) addrs.push_back(a.ToString());
    w["addresses"] = addrs;
    if (identity_) w["identity"] = identity_->ToString();
    out["workload"] = w;
  }
  if (cert_) {
    out["certificate"] = {{"serial", cert_->serial_hex},
                          {"notAfterUnix", std::chrono::duration_cast<std::chrono::seconds>(
                                               cert_->not_after.time_since_epoch())
                                               .count()}};
  }
  json listeners = json::array();
  listeners.push_back({{"name", "hbone"}, {"address", flags_.hbone_addr}, {"protocol", "HBONE"}});
  if (self_ && self_->application_tunnel &&
      self_->application_tunnel->protocol == mesh::AppTunnelProtocol::kProxy) {
    listeners.push_back({{"name", "proxy_tunnel"},
                         {"address", fmt::format("127.0.0.1:{}", self_->application_tunnel->port
                                                                     ? self_->application_tunnel->port
                                                                     : 15088)},
                         {"protocol", "PROXY"}});
  }
  json clusters = json::array();
  if (snapshot_ && self_) {
    for (const auto& [key, svc] : snapshot_->services()) {
      if (!UsesThisWaypoint(*snapshot_, svc, *self_)) continue;
      for (const auto& [port, target] : svc.ports) {
        json c = {{"name", ClusterName(svc, port)},
                  {"service", svc.hostname},
                  {"port", port},
                  {"protocol", ProtocolName(svc.PortProtocol(port))}};
        json eps = json::array();
        for (const auto& ep : EndpointPicker::Endpoints(*snapshot_, svc, port, *self_)) {
          eps.push_back({{"address", ep.address.ToString()},
                         {"workload", ep.workload->ns + "/" + ep.workload->name},
                         {"hbone", ep.hbone}});
        }
        c["loadBalancer"] = LoadBalancerJson(routes_ ? routes_->PolicyFor(c["name"].get<std::string>())
                                                     : nullptr);
        c["endpoints"] = eps;
        clusters.push_back(c);
        listeners.push_back({{"name", fmt::format("{}:{}", svc.hostname, port)},
                             {"protocol", ProtocolName(svc.PortProtocol(port))}});
      }
    }
  }
  if (routes_ && snapshot_ && self_) {
    for (auto& c : SubsetClustersJson(*routes_, *snapshot_, *self_)) clusters.push_back(c);
    out["routes"] = RouteTablesJson(*routes_, *snapshot_);
  }
  out["tracing"] = json::parse(TracingDump());
  out["observability"] = json::parse(ObservabilityDump());
  // DestinationRule connectionPool / outlierDetection: limits, in-flight
  // counts and ejections per cluster.
  if (resilience_table_) {
    out["resilience"] = ResilienceJson(*resilience_table_, base::RealClock::Instance().Now());
  }
  if (authz_) out["authorization"] = AuthzJson(*authz_, authz_unbound_);
  out["rateLimits"] = RateLimitsJson(ratelimits_.get());
  out["listeners"] = listeners;
  out["clusters"] = clusters;
  json findings = json::array();
  for (const auto& w : warnings_) findings.push_back(w);
  for (const auto& f : route_findings_list_) findings.push_back(f.ToString());
  out["findings"] = findings;
  if (cluster_) out["cluster"] = ClusterDump();
  return out.dump(2);
}

}  // namespace ambit::waypoint
