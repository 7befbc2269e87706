// Per-section parsers of the local config (internal to common/config).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string_view>

#include "common/base/status.h"
#include "common/config/local_config.h"
#include "common/config/yaml_reader.h"

namespace ambit::config {

Status ParseWorkload(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     WorkloadConfig* out);
Status ParseService(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    ServiceConfig* out);
Status ParsePolicy(const YamlReader& r, const YAML::Node& n, std::string_view path,
                   PolicyConfig* out);
Status ParseNamespace(const YamlReader& r, const YAML::Node& n, std::string_view path,
                      NamespaceConfig* out);
// A Gateway API Gateway object (metadata/spec); `entry` = a `gateways:` list
// item, where apiVersion and kind may be omitted.
Status ParseGatewayDecl(const YamlReader& r, const YAML::Node& n, std::string_view path,
                        bool entry, GatewayDeclConfig* out);
// A networking.istio.io ServiceEntry: appends its services and workloads
// (parse_service_entry.cc); unsupported fields become warnings.
Status ParseServiceEntry(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         std::string name, std::string ns, LocalConfig* out);
// The Gateway API group's Gateway (not Istio's networking.istio.io Gateway).
bool IsGatewayApiGateway(std::string_view api_version, std::string_view kind);

// "network/ip" (bare "ip" means network ""); with allow_prefix also
// "network/ip/prefix", which is then required.
Status ParseNetworkAddress(const YamlReader& r, const YAML::Node& n, std::string_view path,
                           bool cidr, NetworkAddressConfig* out);
// {destination: "network/IP" | {namespace, hostname}, hboneMtlsPort}
Status ParseGateway(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    GatewayConfig* out);
// services[].ports in every accepted form (parse_service_ports.cc).
Status ParseServicePorts(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         ServiceConfig* out);
// {key: value} of strings (Kubernetes labels).
Status ParseLabels(const YamlReader& r, const YAML::Node& n, std::string_view path,
                   LabelMap* out);
// {servicePort: targetPort}; a service may use target 0 (named port: the
// endpoint's own mapping decides).
Status ParsePortMap(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    bool allow_zero_target, PortMap* out);

}  // namespace ambit::config
