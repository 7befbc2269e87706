#include "common/xds/protocol.h"

namespace ambit::xds {

DeltaRequest InitialRequest(std::string_view type_url, const ::envoy::config::core::v3::Node& node,
                            const VersionMap& known) {
  DeltaRequest req;
  req.set_type_url(std::string(type_url));
  *req.mutable_node() = node;
  auto& versions = *req.mutable_initial_resource_versions();
  for (const auto& [name, version] : known) versions[name] = version;
  return req;
}

DeltaRequest AckRequest(std::string_view type_url, std::string_view nonce,
                        const std::vector<ResourceError>& errors) {
  DeltaRequest req;
  req.set_type_url(std::string(type_url));
  req.set_response_nonce(std::string(nonce));
  if (!errors.empty()) {
    req.mutable_error_detail()->set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
    req.mutable_error_detail()->set_message(NackMessage(errors));
  }
  return req;
}

std::string NackMessage(const std::vector<ResourceError>& errors) {
  std::string out;
  for (const ResourceError& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.name.empty() ? std::string("<unnamed>") : e.name;
    out += ": ";
    out += e.reason;
  }
  return out;
}

}  // namespace ambit::xds
