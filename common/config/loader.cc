#include "common/config/loader.h"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/config/parse_sections.h"
#include "common/config/yaml_reader.h"

namespace ambit::config {
namespace {

constexpr std::string_view kKnownKinds[] = {
    "AuthorizationPolicy", "PeerAuthentication", "VirtualService",
    "DestinationRule",     "HTTPRoute",          "Gateway",
    "GRPCRoute",           "ReferenceGrant",     "EnvoyFilter",
    "RateLimitPolicy",     "Telemetry"};  // EnvoyFilter: rate limit patches only; RateLimitPolicy: ambit.dev

// Istio's mesh config in standalone form: the ConfigMap istiod reads
// (istio-system/istio, data.mesh). Other ConfigMaps stay unsupported.
bool IsMeshConfigMap(const ResourceConfig& res) {
  return res.kind == "ConfigMap" && res.name == "istio" && res.ns == "istio-system";
}

bool IsResource(const YAML::Node& doc) {
  return doc.IsMap() && (doc["apiVersion"].IsDefined() || doc["kind"].IsDefined());
}

Status ParseResource(const YamlReader& r, const YAML::Node& n, std::string_view path,
                     LocalConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(
      r.CheckKeys(n, path, {"apiVersion", "kind", "metadata", "spec", "status", "data"}));
  ResourceConfig res;
  res.file = r.file();
  res.line = YamlReader::Line(n);
  RETURN_IF_ERROR(r.ReqString(n, path, "apiVersion", &res.api_version));
  RETURN_IF_ERROR(r.ReqString(n, path, "kind", &res.kind));
  if (!Has(n, "metadata")) return r.Error(n, Sub(path, "metadata"), "required field is missing");
  const YAML::Node meta = n["metadata"];
  std::string mpath = Sub(path, "metadata");
  RETURN_IF_ERROR(r.ExpectMap(meta, mpath));
  RETURN_IF_ERROR(r.ReqString(meta, mpath, "name", &res.name));
  RETURN_IF_ERROR(r.OptString(meta, mpath, "namespace", &res.ns));
  if (res.kind == "ServiceEntry" && res.api_version.starts_with("networking.istio.io/")) {
    return ParseServiceEntry(r, n, path, res.name, res.ns, out);
  }
  bool known = false;
  for (std::string_view k : kKnownKinds) known = known || k == res.kind;
  known = known || IsMeshConfigMap(res);
  if (!known) {
    out->warnings.push_back(fmt::format("{}:{}: {}unsupported kind '{}' ({}) ignored", r.file(),
                                        res.line, path.empty() ? std::string() : std::string(path) + ": ",
                                        res.kind, res.name));
    return absl::OkStatus();
  }
  if (IsGatewayApiGateway(res.api_version, res.kind)) {
    GatewayDeclConfig gw;
    RETURN_IF_ERROR(ParseGatewayDecl(r, n, path, false, &gw));
    out->gateways.push_back(std::move(gw));
  }
  YAML::Emitter em;
  em << n;
  res.raw_yaml = em.c_str();
  res.node = n;
  out->resources.push_back(std::move(res));
  return absl::OkStatus();
}

template <typename T, typename Fn>
Status ParseList(const YamlReader& r, const YAML::Node& doc, const char* key, Fn parse,
                 std::vector<T>* out) {
  if (!Has(doc, key)) return absl::OkStatus();
  const YAML::Node list = doc[key];
  RETURN_IF_ERROR(r.ExpectSeq(list, key));
  for (size_t i = 0; i < list.size(); ++i) {
    T item;
    RETURN_IF_ERROR(parse(r, list[i], Idx(key, i), &item));
    out->push_back(std::move(item));
  }
  return absl::OkStatus();
}

Status ParseDocument(const YamlReader& r, const YAML::Node& doc, LocalConfig* out) {
  if (!doc.IsDefined() || doc.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(r.CheckDepth(doc, ""));
  if (IsResource(doc)) return ParseResource(r, doc, "", out);
  RETURN_IF_ERROR(r.ExpectMap(doc, ""));
  RETURN_IF_ERROR(r.CheckKeys(
      doc, "", {"workloads", "services", "policies", "resources", "namespaces", "gateways"}));
  RETURN_IF_ERROR(ParseList(r, doc, "workloads", ParseWorkload, &out->workloads));
  RETURN_IF_ERROR(ParseList(r, doc, "services", ParseService, &out->services));
  RETURN_IF_ERROR(ParseList(r, doc, "policies", ParsePolicy, &out->policies));
  RETURN_IF_ERROR(ParseList(r, doc, "namespaces", ParseNamespace, &out->namespaces));
  RETURN_IF_ERROR(ParseList(
      r, doc, "gateways",
      [](const YamlReader& rr, const YAML::Node& n, std::string_view path, GatewayDeclConfig* g) {
        return ParseGatewayDecl(rr, n, path, true, g);
      },
      &out->gateways));
  if (Has(doc, "resources")) {
    const YAML::Node list = doc["resources"];
    RETURN_IF_ERROR(r.ExpectSeq(list, "resources"));
    for (size_t i = 0; i < list.size(); ++i) {
      RETURN_IF_ERROR(ParseResource(r, list[i], Idx("resources", i), out));
    }
  }
  return absl::OkStatus();
}

// A line that starts a new YAML document ("---") or ends one ("..."): both
// are only markers at column 0 and always end the current document.
bool IsDocumentMarker(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  return line.size() == marker.size() || line[marker.size()] == ' ' ||
         line[marker.size()] == '\t' || line[marker.size()] == '\r';
}

// Splits a stream into its documents. yaml-cpp 0.7's LoadAll can loop
// forever (allocating) on some malformed streams — e.g. a lone "," — so we
// find the document boundaries ourselves and Load() each one. Each document
// is prefixed with newlines so yaml-cpp's marks keep the file's line numbers.
std::vector<std::string> SplitDocuments(std::string_view text) {
  std::vector<std::string> docs;
  std::string current;
  size_t line_no = 0, doc_start_line = 0;
  size_t pos = 0;
  auto flush = [&](size_t next_start) {
    if (current.find_first_not_of(" \t\r\n") != std::string::npos) {
      docs.push_back(std::string(doc_start_line, '\n') + current);
    }
    current.clear();
    doc_start_line = next_start;
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (IsDocumentMarker(line, "---")) {
      flush(line_no);
      current.append(line).push_back('\n');
    } else if (IsDocumentMarker(line, "...")) {
      flush(line_no + 1);
    } else {
      current.append(line).push_back('\n');
    }
    ++line_no;
    if (end == text.size()) break;
    pos = end + 1;
  }
  flush(line_no);
  return docs;
}

}  // namespace

StatusOr<LocalConfig> ParseLocalConfig(std::string_view yaml_text, const std::string& file) {
  if (yaml_text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        fmt::format("{}: file is larger than {} bytes", file, kMaxConfigBytes));
  }
  YamlReader reader(file);
  LocalConfig out;
  // yaml-cpp reports syntax errors by throwing; keep that inside this boundary.
  try {
    for (const std::string& text : SplitDocuments(yaml_text)) {
      YAML::Node doc = YAML::Load(text);
      RETURN_IF_ERROR(ParseDocument(reader, doc, &out));
    }
  } catch (const YAML::DeepRecursion& e) {
    return absl::InvalidArgumentError(fmt::format(
        "{}:{}: YAML nesting too deep (max {} levels)", file, e.mark.line + 1, kMaxYamlDepth));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("{}:{}: YAML syntax error: {}", file, e.mark.line + 1, e.msg));
  }
  return out;
}

StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        fmt::format("{}: cannot open config file: {}", path, std::strerror(errno)));
  }
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          fmt::format("{}: file is larger than {} bytes", path, kMaxConfigBytes));
    }
  }
  return data;
}

StatusOr<LocalConfig> LoadLocalConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string data, ReadConfigFile(path));
  return ParseLocalConfig(data, path);
}

}  // namespace ambit::config
