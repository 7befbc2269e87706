#include "tests/support/fake_istio_json.h"

#include <absl/strings/escaping.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

namespace ambit::testing::fake_istio {
namespace {

std::string K(std::string_view key) { return std::string(key); }

}  // namespace

StatusOr<std::string> GetString(const Json& req, std::string_view key) {
  auto it = req.find(K(key));
  if (it == req.end()) return absl::InvalidArgumentError(K(key) + ": missing (want a string)");
  if (!it->is_string()) return absl::InvalidArgumentError(K(key) + ": not a string");
  return it->get<std::string>();
}

std::string GetString(const Json& req, std::string_view key, std::string def) {
  auto it = req.find(K(key));
  if (it == req.end() || !it->is_string()) return def;
  return it->get<std::string>();
}

StatusOr<int64_t> GetInt(const Json& req, std::string_view key, int64_t def) {
  auto it = req.find(K(key));
  if (it == req.end()) return def;
  if (!it->is_number_integer()) return absl::InvalidArgumentError(K(key) + ": not an integer");
  return it->get<int64_t>();
}

StatusOr<bool> GetBool(const Json& req, std::string_view key, bool def) {
  auto it = req.find(K(key));
  if (it == req.end()) return def;
  if (!it->is_boolean()) return absl::InvalidArgumentError(K(key) + ": not a boolean");
  return it->get<bool>();
}

StatusOr<const Json*> GetObject(const Json& req, std::string_view key) {
  auto it = req.find(K(key));
  if (it == req.end()) return absl::InvalidArgumentError(K(key) + ": missing (want an object)");
  if (!it->is_object()) return absl::InvalidArgumentError(K(key) + ": not an object");
  return &*it;
}

Status ParseProto(const Json& value, std::string_view what, google::protobuf::Message& msg) {
  if (!value.is_object()) return absl::InvalidArgumentError(K(what) + ": not a JSON object");
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(value.dump(), &msg, opts);
  if (!status.ok()) {
    return absl::InvalidArgumentError(K(what) + " (" + msg.GetTypeName() +
                                      "): " + status.ToString());
  }
  return absl::OkStatus();
}

StatusOr<std::string> TypeUrl(std::string_view type) {
  if (type == "address" || type == kFakeXdsAddressType) return std::string(kFakeXdsAddressType);
  if (type == "authorization" || type == kFakeXdsAuthorizationType) {
    return std::string(kFakeXdsAuthorizationType);
  }
  return absl::InvalidArgumentError("type " + K(type) + ": want \"address\" or \"authorization\"");
}

Json ToJson(const FakeXdsRequest& r, size_t index) {
  Json j = {{"index", index},
            {"stream", r.stream},
            {"type", r.type_url == kFakeXdsAddressType ? "address" : "authorization"},
            {"type_url", r.type_url},
            {"nonce", r.nonce},
            {"initial", r.nonce.empty()},
            {"nack", r.nack},
            {"error", r.error_message},
            {"node_id", r.node_id}};
  j["initial_resource_versions"] = Json::object();
  for (const auto& [k, v] : r.initial_resource_versions) j["initial_resource_versions"][k] = v;
  j["node_metadata"] = Json::object();
  for (const auto& [k, v] : r.node_metadata) j["node_metadata"][k] = v;
  return j;
}

Json ToJson(const FakeCaRequest& r, size_t index) {
  Json j = {{"index", index},
            {"uri_sans", r.csr_uri_sans},
            {"csr_extension_count", r.csr_extension_count},
            {"key_type", r.key_type},
            {"curve", r.curve},
            {"validity_duration", r.validity_duration},
            {"authorization", r.authorization},
            {"clusterid", r.clusterid}};
  auto imp = r.metadata.find("ImpersonatedIdentity");
  j["impersonated_identity"] = imp == r.metadata.end() ? Json(nullptr) : Json(imp->second);
  j["metadata"] = Json::object();
  for (const auto& [k, v] : r.metadata) j["metadata"][k] = v;
  return j;
}

std::string Base64Encode(std::string_view bytes) {
  return absl::Base64Escape(absl::string_view(bytes.data(), bytes.size()));
}

StatusOr<std::string> Base64Decode(std::string_view b64, std::string_view what) {
  std::string out;
  if (!absl::Base64Unescape(absl::string_view(b64.data(), b64.size()), &out)) {
    return absl::InvalidArgumentError(K(what) + ": not valid base64");
  }
  return out;
}

}  // namespace ambit::testing::fake_istio
