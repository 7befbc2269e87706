// /config_dump "tracing": the providers (and where each resolved to), the
// effective policy of the waypoint and of services with their own Telemetry,
// and which MeshConfig fields were read.
#include <nlohmann/json.hpp>

#include "waypoint/app/waypoint.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

json PolicyJson(const route::TracingPolicy& p) {
  json tags = json::object();
  for (const route::CustomTag& t : p.tags) {
    if (t.kind == route::CustomTag::Kind::kLiteral) {
      tags[t.tag] = {{"literal", t.value}};
    } else {
      tags[t.tag] = {{"header", t.value}, {"defaultValue", t.default_value}};
    }
  }
  return {{"provider", p.provider != nullptr ? json(p.provider->name) : json(nullptr)},
          {"randomSamplingPercentage", p.sampling_percent},
          {"disableSpanReporting", p.disable_span_reporting},
          {"customTags", tags},
          {"sources", p.sources}};
}

}  // namespace

std::string Waypoint::TracingDump() const {
  json out = json::object();
  if (tracing_ == nullptr) return out.dump();
  json providers = json::array();
  for (const auto& [name, p] : tracing_->providers) {
    providers.push_back(
        {{"name", name},
         {"kind", p->kind == route::TracingProvider::Kind::kZipkin ? "zipkin" : "opentelemetry"},
         {"service", p->service},
         {"port", p->port},
         {"path", p->path},
         {"address", p->address},
         {"resolvedFrom", p->resolved_from}});
  }
  out["providers"] = providers;
  out["enableTracing"] = tracing_->enable_tracing;
  out["defaultProviders"] = tracing_->default_providers;
  out["meshConfig"] = {{"source", tracing_->mesh_config_source},
                       {"fieldsRead", tracing_->mesh_fields_read}};
  out["waypoint"] = PolicyJson(tracing_->waypoint);
  json services = json::object();
  for (const auto& [key, p] : tracing_->by_service) services[key] = PolicyJson(p);
  out["services"] = services;
  return out.dump();
}

}  // namespace ambit::waypoint
