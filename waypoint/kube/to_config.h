// Kubernetes objects → the standalone config's document form
// (config::LocalConfig resources and gateways), so cluster mode feeds the
// same compile path as the watched YAML file. Each object is parsed on its
// own (JSON is YAML) under the pseudo file "kube:Kind/ns/name": one bad
// object is reported and skipped, the rest applies. Parses are cached by
// object and resourceVersion. Control thread only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/config/local_config.h"
#include "waypoint/kube/watch_decoder.h"

namespace ambit::waypoint::kube {

class ObjectConverter {
 public:
  // `errors` gets one line per object that could not be used.
  config::LocalConfig Convert(const std::vector<KubeObject>& objects,
                              std::vector<std::string>* errors);

 private:
  struct Entry {
    std::string resource_version;
    std::optional<config::LocalConfig> cfg;
    std::string error;
  };
  std::map<std::string, Entry> cache_;  // "Kind/ns/name"
};

// "kube:Kind/ns/name" (the file of the object's findings).
std::string ObjectFile(const KubeObject& o);

}  // namespace ambit::waypoint::kube
