// Request mirroring (Envoy's shadowing; VirtualService mirror / mirrors,
// HTTPRoute RequestMirror): a copy of the request, as edited by the route,
// goes to each chosen mirror cluster with the authority suffixed "-shadow";
// the mirror's answer is read and discarded, and nothing about it (delay,
// failure) reaches the client. A request body is copied while it is
// forwarded, up to kMaxMirrorBody; a larger body skips the mirror (counted).
// Worker thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/http1/codec.h"
#include "common/http2/h2_types.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

inline constexpr size_t kMaxMirrorBody = 256 * 1024;

// The request as it went upstream: HTTP/1.1 (head fields) or HTTP/2
// (pseudo headers included).
struct MirrorCopy {
  bool h2 = false;
  std::string method, target, authority;
  http1::Headers headers;     // h2 == false: regular headers
  http2::H2Headers h2_headers;  // h2 == true: every header
  std::string body;
};

// The route's mirrors this request is copied to (each by its share).
std::vector<const route::Mirror*> ChooseMirrors(const Downstream& d, const route::Route* r);

// Fire and forget: one task per mirror, counted on the worker
// (mirror_sent / mirror_failed).
void SendMirrors(const Downstream& d, const std::vector<const route::Mirror*>& mirrors,
                 std::shared_ptr<const MirrorCopy> copy);

}  // namespace ambit::waypoint
