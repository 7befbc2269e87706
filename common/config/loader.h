// Loading the standalone local config (ISTIO-COMPAT §9.2 shape + Ambit
// extensions). A file holds one or more YAML documents separated by `---`:
//  - a document with `workloads`/`services`/`policies`/`resources` (all
//    optional; unknown top-level keys rejected), and/or
//  - Kubernetes-style objects (`apiVersion`/`kind`/`metadata`/`spec`), either
//    as their own documents or listed under `resources:`. They are kept
//    verbatim in LocalConfig::resources; unknown kinds become warnings.
// Errors read "file:line: field.path: what is wrong".
#pragma once

#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/config/local_config.h"

namespace ambit::config {

inline constexpr size_t kMaxConfigBytes = 16 * 1024 * 1024;

// `file` is only used in error messages.
StatusOr<LocalConfig> ParseLocalConfig(std::string_view yaml_text, const std::string& file);

// Reads and parses `path`.
StatusOr<LocalConfig> LoadLocalConfigFile(const std::string& path);

// Reads a whole file (bounded by kMaxConfigBytes).
StatusOr<std::string> ReadConfigFile(const std::string& path);

}  // namespace ambit::config
