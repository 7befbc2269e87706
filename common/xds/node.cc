#include "common/xds/node.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <string_view>

extern char** environ;

namespace ambit::xds {
namespace {

constexpr std::string_view kMetaPrefix = "ISTIO_META_";
constexpr std::string_view kMetaJsonPrefix = "ISTIO_METAJSON_";

std::string Get(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view part = s.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

}  // namespace

NodeInfo NodeInfoFromEnv(const std::map<std::string, std::string>& env) {
  NodeInfo info;
  info.instance_ip = Get(env, "INSTANCE_IP");
  info.instance_ips = SplitComma(Get(env, "INSTANCE_IPS"));
  if (info.instance_ips.empty() && !info.instance_ip.empty()) {
    info.instance_ips.push_back(info.instance_ip);
  }
  info.pod_name = Get(env, "POD_NAME");
  info.pod_namespace = Get(env, "POD_NAMESPACE");
  info.node_name = Get(env, "NODE_NAME");
  for (const auto& [key, value] : env) {
    if (key.starts_with(kMetaJsonPrefix)) {
      info.metadata_json[key.substr(kMetaJsonPrefix.size())] = value;
    } else if (key.starts_with(kMetaPrefix)) {
      info.proxy_metadata[key.substr(kMetaPrefix.size())] = value;
    }
  }
  if (std::string id = Get(env, "ISTIO_META_CLUSTER_ID"); !id.empty()) {
    info.cluster_id = id;
  } else if (std::string id2 = Get(env, "CLUSTER_ID"); !id2.empty()) {
    info.cluster_id = id2;
  }
  return info;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

NodeInfo NodeInfoFromProcessEnv() { return NodeInfoFromEnv(ProcessEnvironment()); }

std::string NodeId(const NodeInfo& info) {
  const std::string ip = info.instance_ip.empty() ? "1.1.1.1" : info.instance_ip;
  return "ztunnel~" + ip + "~" + info.pod_name + "." + info.pod_namespace + "~" +
         info.pod_namespace + ".svc.cluster.local";
}

StatusOr<::envoy::config::core::v3::Node> BuildNode(const NodeInfo& info) {
  ::envoy::config::core::v3::Node node;
  node.set_id(NodeId(info));
  auto& fields = *node.mutable_metadata()->mutable_fields();
  for (const auto& [key, value] : info.proxy_metadata) fields[key].set_string_value(value);
  for (const auto& [key, json] : info.metadata_json) {
    google::protobuf::Value v;
    auto st = google::protobuf::util::JsonStringToMessage(json, &v);
    if (!st.ok()) {
      return absl::InvalidArgumentError("ISTIO_METAJSON_" + key +
                                        " is not valid JSON: " + st.ToString());
    }
    fields[key] = std::move(v);
  }
  fields["NAME"].set_string_value(info.pod_name);
  fields["NAMESPACE"].set_string_value(info.pod_namespace);
  fields["INSTANCE_IPS"].set_string_value(Join(info.instance_ips));
  fields["NODE_NAME"].set_string_value(info.node_name);
  fields["CLUSTER_ID"].set_string_value(info.cluster_id);
  return node;
}

}  // namespace ambit::xds
