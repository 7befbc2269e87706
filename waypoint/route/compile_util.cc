#include "waypoint/route/compile_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/base/duration.h"

namespace ambit::waypoint::route::internal {

namespace {

int LineOf(const YAML::Node& n) {
  if (!n.IsDefined()) return 0;
  const YAML::Mark m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

}  // namespace

YAML::Node Child(const YAML::Node& n, std::string_view key) {
  if (!n.IsDefined() || !n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : n) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

bool Present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

std::string Field(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}
std::string Field(std::string_view path, size_t i) { return fmt::format("{}[{}]", path, i); }

std::string Sink::Location(const Doc& doc, const YAML::Node& at) const {
  const int line = LineOf(at);
  return fmt::format("{}:{}", doc.config->file, line > 0 ? line : doc.config->line);
}

void Sink::Add(const Doc& doc, const YAML::Node& at, std::string message) {
  out_->push_back(Finding{Location(doc, at), doc.kind, doc.Key(), std::move(message)});
}

void Sink::Invalid(const Doc& doc, const YAML::Node& at, std::string message) {
  Finding f{Location(doc, at), doc.kind, doc.Key(), std::move(message)};
  f.invalid = true;
  out_->push_back(std::move(f));
}

void Sink::Add(const Doc& doc, std::string message) {
  out_->push_back(Finding{fmt::format("{}:{}", doc.config->file, doc.config->line), doc.kind,
                          doc.Key(), std::move(message)});
}

void Sink::AddRaw(const config::ResourceConfig& rc, std::string message) {
  out_->push_back(Finding{fmt::format("{}:{}", rc.file, rc.line), rc.kind,
                          (rc.ns.empty() ? std::string("default") : rc.ns) + "/" + rc.name,
                          std::move(message)});
}

std::optional<Doc> LoadDoc(const config::ResourceConfig& rc, Sink& sink) {
  Doc d;
  d.config = &rc;
  d.kind = rc.kind;
  d.ns = rc.ns.empty() ? "default" : rc.ns;
  d.name = rc.name;
  YAML::Node root = rc.node;
  if (!root.IsDefined() || root.IsNull()) {
    try {
      root = YAML::Load(rc.raw_yaml);
    } catch (const YAML::Exception& e) {
      sink.AddRaw(rc, fmt::format("cannot parse resource: {}; resource not applied", e.what()));
      return std::nullopt;
    }
  }
  d.spec = Child(root, "spec");
  if (!Present(d.spec)) d.spec = YAML::Node(YAML::NodeType::Map);
  if (!d.spec.IsMap()) {
    sink.Add(d, d.spec, "spec: expected a map; resource not applied");
    return std::nullopt;
  }
  return d;
}

std::optional<std::string> Scalar(const Doc& doc, const YAML::Node& n, std::string_view field,
                                  Sink& sink) {
  if (!n.IsDefined() || !n.IsScalar()) {
    sink.Add(doc, n, fmt::format("{}: expected a string", field));
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<uint64_t> Uint(const Doc& doc, const YAML::Node& n, std::string_view field,
                             uint64_t max, Sink& sink) {
  if (!n.IsDefined() || !n.IsScalar()) {
    sink.Add(doc, n, fmt::format("{}: expected a number", field));
    return std::nullopt;
  }
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) {
    sink.Add(doc, n, fmt::format("{}: '{}' is not a number in 0..{}", field, s, max));
    return std::nullopt;
  }
  return v;
}

void ReportUnknownKeys(const Doc& doc, const YAML::Node& n, std::string_view field,
                       std::initializer_list<std::string_view> known, Sink& sink,
                       std::string_view what) {
  if (!n.IsDefined() || !n.IsMap()) return;
  for (const auto& kv : n) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    sink.Add(doc, kv.first, fmt::format("{}: {}", Field(field, key), what));
  }
}

std::optional<std::chrono::nanoseconds> Duration(const Doc& doc, const YAML::Node& n,
                                                 std::string_view field, Sink& sink) {
  auto text = Scalar(doc, n, field, sink);
  if (!text) return std::nullopt;
  // Segments of digits[.digits] + unit; each parsed on its own.
  std::chrono::nanoseconds total{0};
  std::string_view rest = *text;
  bool any = false;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[i])) || rest[i] == '.')) {
      ++i;
    }
    size_t j = i;
    while (j < rest.size() && std::isalpha(static_cast<unsigned char>(rest[j]))) ++j;
    auto part = base::ParseDuration(rest.substr(0, j));
    if (i == 0 || j == i || !part.ok()) {
      sink.Invalid(doc, n, fmt::format("{}: '{}' is not a duration (e.g. 5s, 250ms, 1m30s)",
                                       field, *text));
      return std::nullopt;
    }
    total += *part;
    any = true;
    rest = rest.substr(j);
  }
  if (!any) {
    sink.Invalid(doc, n, fmt::format("{}: empty duration", field));
    return std::nullopt;
  }
  return total;
}

std::shared_ptr<const RE2> Regex(const Doc& doc, const YAML::Node& at, std::string_view field,
                                 const std::string& pattern, Sink& sink) {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_max_mem(1 << 20);  // bounded program size: config input is untrusted
  auto re = std::make_shared<const RE2>(pattern, o);
  if (!re->ok()) {
    sink.Add(doc, at, fmt::format("{}: invalid regex '{}': {}", field, pattern, re->error()));
    return nullptr;
  }
  return re;
}

const mesh::Service* ResolveHost(const mesh::Snapshot& snap, std::string_view host,
                                 std::string_view ns) {
  const size_t dots = std::count(host.begin(), host.end(), '.');
  std::string name(host), svc_ns(ns);
  if (dots == 1) {
    const size_t dot = host.find('.');
    name = std::string(host.substr(0, dot));
    svc_ns = std::string(host.substr(dot + 1));
  }
  if (dots <= 1) {
    for (const auto& [key, svc] : snap.services()) {
      if (svc.name == name && svc.ns == svc_ns) return &svc;
    }
    return nullptr;
  }
  for (const auto& [key, svc] : snap.services()) {
    if (svc.hostname == host) return &svc;
  }
  return nullptr;
}

std::vector<const mesh::Service*> ResolveHostPattern(const mesh::Snapshot& snap,
                                                     std::string_view host, std::string_view ns) {
  std::vector<const mesh::Service*> out;
  if (host == "*") {
    for (const auto& [key, svc] : snap.services()) out.push_back(&svc);
    return out;
  }
  if (host.starts_with("*.")) {
    const std::string_view suffix = host.substr(1);  // ".example.com"
    for (const auto& [key, svc] : snap.services()) {
      if (svc.hostname.size() > suffix.size() && svc.hostname.ends_with(suffix)) {
        out.push_back(&svc);
      }
    }
    return out;
  }
  if (const mesh::Service* s = ResolveHost(snap, host, ns)) out.push_back(s);
  return out;
}

std::string ClusterName(const mesh::Service& svc, uint16_t port, std::string_view subset) {
  if (subset.empty()) return fmt::format("inbound-vip|{}|http|{}", port, svc.hostname);
  return fmt::format("inbound-vip|{}|http/{}|{}", port, subset, svc.hostname);
}

ClusterRef AddCluster(RouteConfig* out, const mesh::Service& svc, uint16_t port,
                      std::string_view subset, const LabelMap& subset_labels,
                      std::string_view source) {
  ClusterRef ref{ClusterName(svc, port, subset), svc.Key(), port, std::string(subset)};
  auto [it, fresh] = out->clusters.try_emplace(ref.name);
  if (fresh) {
    it->second.ref = ref;
    it->second.subset_labels = subset_labels;
    it->second.source = std::string(source);
  }
  return ref;
}

std::vector<uint16_t> HttpPorts(const mesh::Service& svc, uint16_t port) {
  std::vector<uint16_t> out;
  for (const auto& [p, target] : svc.ports) {
    if (port != 0 && p != port) continue;
    const mesh::AppProtocol proto = svc.PortProtocol(p);
    // Declared TCP/TLS ports never carry HTTP here; unknown ones may (sniffed).
    if (proto == mesh::AppProtocol::kTcp || proto == mesh::AppProtocol::kTls) continue;
    out.push_back(p);
  }
  return out;
}

}  // namespace ambit::waypoint::route::internal
