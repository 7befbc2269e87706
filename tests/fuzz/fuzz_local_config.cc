// Fuzz target: the standalone local YAML config loader (ParseLocalConfig),
// then the agent/state conversion of what it accepted.
// Properties: errors carry a message naming the file; accepted config
// converts or fails with a message, never crashes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#ifndef AMBIT_FUZZ_LIBFUZZER  // agent/state does not build with clang-14 yet
#include "common/mesh/from_config.h"
#endif
#include "common/config/loader.h"
#include "tests/fuzz/fuzz_util.h"

// A leading ',' used to make yaml-cpp's LoadAll loop allocating until OOM;
// the loader now splits documents itself (corpus/local_config/leading_comma).

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Deeply nested YAML is bounded by the loader's own limits; keep inputs
  // small enough that one run stays fast.
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = ambit::config::ParseLocalConfig(text, "fuzz.yaml");
  if (!cfg.ok()) {
    FUZZ_CHECK(!cfg.status().message().empty());
    return 0;
  }
#ifndef AMBIT_FUZZ_LIBFUZZER
  auto snapshot = ambit::mesh::FromLocalConfig(*cfg, "node-a");
  if (!snapshot.ok()) FUZZ_CHECK(!snapshot.status().message().empty());
#endif
  return 0;
}
