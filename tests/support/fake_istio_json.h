// JSON helpers for ambit-fake-istio's line protocol: checked field access
// (a bad command is an error reply, never a crash), protobuf JSON mapping for
// resources, and the JSON shape of recorded xDS / CA requests.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "tests/support/fake_ca.h"
#include "tests/support/fake_xds.h"

namespace google::protobuf {
class Message;
}

namespace ambit::testing::fake_istio {

using Json = nlohmann::ordered_json;

// Field `key` of object `req`. Missing → `def` if given, else InvalidArgument.
StatusOr<std::string> GetString(const Json& req, std::string_view key);
std::string GetString(const Json& req, std::string_view key, std::string def);
StatusOr<int64_t> GetInt(const Json& req, std::string_view key, int64_t def);
StatusOr<bool> GetBool(const Json& req, std::string_view key, bool def);
StatusOr<const Json*> GetObject(const Json& req, std::string_view key);

// `value` (a JSON object in protobuf's JSON mapping) → `msg`; the error names `what`.
Status ParseProto(const Json& value, std::string_view what, google::protobuf::Message& msg);

// "address" | "authorization" (or a full type URL) → the xDS type URL.
StatusOr<std::string> TypeUrl(std::string_view type);

Json ToJson(const FakeXdsRequest& r, size_t index);
Json ToJson(const FakeCaRequest& r, size_t index);

std::string Base64Encode(std::string_view bytes);
StatusOr<std::string> Base64Decode(std::string_view b64, std::string_view what);

}  // namespace ambit::testing::fake_istio
