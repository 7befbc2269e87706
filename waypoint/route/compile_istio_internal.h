// Between compile_istio.cc (VirtualService and DestinationRule documents,
// binding, destinations) and compile_istio_parts.cc (the parts of one
// http[] rule). Each returns false / nullopt after reporting a finding when
// the part cannot be used as written; the caller then drops the rule (or
// the match block) and keeps the rest of the resource.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {

inline constexpr size_t kMaxDirectResponseBody = 64 * 1024;

// The resources of `kind` (networking.istio.io versions only) in file
// order; unknown versions and duplicates (same ns/name) are findings.
std::vector<Doc> LoadKind(std::span<const config::ResourceConfig> resources,
                          std::string_view kind, Sink& sink);

// One http[].match[] block. *mesh_applies is false (and nullopt returned
// without a finding) when the block names gateways other than "mesh".
std::optional<RouteMatch> CompileIstioMatch(const Doc& doc, const YAML::Node& n,
                                            const std::string& field, Sink& sink,
                                            bool* mesh_applies);
// {set: {k: v}, add: {k: v}, remove: [k]}
bool CompileHeaderOps(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                      HeaderOps* out);
// {request: HeaderOps, response: HeaderOps}
bool CompileHeaders(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                    HeaderOps* request, HeaderOps* response);
bool CompileRewrite(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                    Route* route);
bool CompileRedirect(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                     Redirect* out);
// {delay: {fixedDelay, percentage}, abort: {httpStatus | grpcStatus, percentage}}
bool CompileFault(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                  Fault* out);
bool CompileDirectResponse(const Doc& doc, const YAML::Node& n, const std::string& field,
                           Sink& sink, DirectResponse* out);

}  // namespace ambit::waypoint::route::internal
