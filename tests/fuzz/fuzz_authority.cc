// Fuzz target: the HBONE CONNECT target (":authority") parser.
// Property: whatever parses formats back to text that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/hbone/authority.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ambit::hbone::ParseAuthority(text);
  if (parsed.ok()) {
    std::string again = parsed->ToString();
    auto reparsed = ambit::hbone::ParseAuthority(again);
    FUZZ_CHECK(reparsed.ok());
    FUZZ_CHECK(*reparsed == *parsed);
    if (parsed->IsIp()) {
      auto from_ip = ambit::hbone::AuthorityFromIp(parsed->host, parsed->port);
      FUZZ_CHECK(from_ip.ok());
      FUZZ_CHECK(*from_ip == *parsed);
    } else {
      FUZZ_CHECK(ambit::hbone::IsValidHostname(parsed->host));
    }
  } else {
    FUZZ_CHECK(!parsed.status().message().empty());
  }
  (void)ambit::hbone::IsValidHostname(text);
  (void)ambit::hbone::ParsePort(text);
  return 0;
}
