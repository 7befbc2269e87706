#include "waypoint/kube/to_config.h"

#include <fmt/format.h>

#include "common/config/loader.h"

namespace ambit::waypoint::kube {

namespace {

std::string KindOf(const KubeObject& o) {
  auto it = o.body.find("kind");
  return it != o.body.end() && it->is_string() ? it->get<std::string>() : std::string("?");
}

}  // namespace

std::string ObjectFile(const KubeObject& o) {
  return fmt::format("kube:{}/{}/{}", KindOf(o), o.ns, o.name);
}

config::LocalConfig ObjectConverter::Convert(const std::vector<KubeObject>& objects,
                                             std::vector<std::string>* errors) {
  config::LocalConfig out;
  std::map<std::string, Entry> next;
  for (const KubeObject& o : objects) {
    const std::string key = fmt::format("{}/{}/{}", KindOf(o), o.ns, o.name);
    Entry e;
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.resource_version == o.resource_version &&
        !o.resource_version.empty()) {
      e = std::move(it->second);
    } else {
      e.resource_version = o.resource_version;
      nlohmann::json doc = o.body;
      doc.erase("status");  // ours to write, not config
      if (auto md = doc.find("metadata"); md != doc.end() && md->is_object()) {
        md->erase("managedFields");
      }
      auto parsed = config::ParseLocalConfig(doc.dump(), ObjectFile(o));
      if (parsed.ok()) {
        e.cfg = std::move(*parsed);
      } else {
        e.error = std::string(parsed.status().message());
      }
    }
    if (e.cfg) {
      for (const auto& r : e.cfg->resources) out.resources.push_back(r);
      for (const auto& g : e.cfg->gateways) out.gateways.push_back(g);
      for (const auto& w : e.cfg->warnings) out.warnings.push_back(w);
    } else if (errors != nullptr) {
      errors->push_back(fmt::format("{}: {}", ObjectFile(o), e.error));
    }
    next[key] = std::move(e);
  }
  cache_ = std::move(next);
  return out;
}

}  // namespace ambit::waypoint::kube
