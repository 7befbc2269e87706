// Shared by the route compilers (compile_istio.cc, compile_gateway.cc):
// reading one stored resource with the file's line numbers, reporting
// findings at the exact field, resolving service names the way Istio does,
// and naming clusters. Control thread only.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/local_config.h"
#include "common/mesh/snapshot.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route::internal {

// One resource of a kind a compiler handles, with its spec.
struct Doc {
  const config::ResourceConfig* config = nullptr;
  std::string kind, ns, name;  // ns defaults to "default"
  YAML::Node spec;             // a map (empty map when absent)
  std::string Key() const { return ns + "/" + name; }
};

// Loads `rc` (spec must be a map); nullopt with a finding if unusable.
class Sink;
std::optional<Doc> LoadDoc(const config::ResourceConfig& rc, Sink& sink);

// Collects findings. Add(doc, node, ...) points at `node`'s line when the
// node carries a mark from the config file, else at the resource's line.
class Sink {
 public:
  explicit Sink(std::vector<Finding>* out) : out_(out) {}
  void Add(const Doc& doc, const YAML::Node& at, std::string message);
  void Add(const Doc& doc, std::string message);  // at the resource
  // A value Istio would reject (Finding::invalid): the change is refused.
  void Invalid(const Doc& doc, const YAML::Node& at, std::string message);
  void AddRaw(const config::ResourceConfig& rc, std::string message);
  std::string Location(const Doc& doc, const YAML::Node& at) const;

 private:
  std::vector<Finding>* out_;
};

// n[key] of a map, or an Undefined node (never throws on missing keys).
YAML::Node Child(const YAML::Node& n, std::string_view key);
bool Present(const YAML::Node& n);  // defined and not null
// A scalar's text; nullopt (and a finding at `n`) when not a scalar.
std::optional<std::string> Scalar(const Doc& doc, const YAML::Node& n, std::string_view field,
                                  Sink& sink);
// A non-negative integer up to `max`; nullopt (and a finding) otherwise.
std::optional<uint64_t> Uint(const Doc& doc, const YAML::Node& n, std::string_view field,
                             uint64_t max, Sink& sink);
// Reports every key of map `n` not in `known` as "field.key: not supported
// yet; ignored" (or `what` instead of that tail).
void ReportUnknownKeys(const Doc& doc, const YAML::Node& n, std::string_view field,
                       std::initializer_list<std::string_view> known, Sink& sink,
                       std::string_view what = "not supported; ignored");
std::string Field(std::string_view path, std::string_view key);  // "a.b"
std::string Field(std::string_view path, size_t i);              // "a[3]"

// A duration as Istio ("5s", "0.5s", "250ms") and the Gateway API
// ("1h30m", "500ms") write them; nullopt (and a finding) otherwise.
std::optional<std::chrono::nanoseconds> Duration(const Doc& doc, const YAML::Node& n,
                                                 std::string_view field, Sink& sink);

// Compiles an RE2 pattern (full-match semantics are the caller's); null with
// a finding when it does not compile.
std::shared_ptr<const RE2> Regex(const Doc& doc, const YAML::Node& at, std::string_view field,
                                 const std::string& pattern, Sink& sink);

// Istio's host resolution for a name written in namespace `ns`: "name" →
// name.ns.svc.<domain>, "name.ns" → name.ns.svc.<domain>, anything else is a
// full hostname (ServiceEntry hosts included). Null when no such service.
const mesh::Service* ResolveHost(const mesh::Snapshot& snap, std::string_view host,
                                 std::string_view ns);
// Services a VirtualService `hosts` entry names: one (ResolveHost), or every
// service whose hostname ends with the suffix for "*.suffix" ("*" = all).
std::vector<const mesh::Service*> ResolveHostPattern(const mesh::Snapshot& snap,
                                                     std::string_view host, std::string_view ns);

// inbound-vip|PORT|http|HOST, inbound-vip|PORT|http/SUBSET|HOST.
std::string ClusterName(const mesh::Service& svc, uint16_t port, std::string_view subset);
// A ClusterRef for a service port (subset optional) registered in out->clusters.
ClusterRef AddCluster(RouteConfig* out, const mesh::Service& svc, uint16_t port,
                      std::string_view subset, const LabelMap& subset_labels,
                      std::string_view source);

// HTTP-speaking ports of a service (istiod serves L7 only on those; TCP ports
// get no route table). `port` 0 = every HTTP port.
std::vector<uint16_t> HttpPorts(const mesh::Service& svc, uint16_t port);

}  // namespace ambit::waypoint::route::internal
