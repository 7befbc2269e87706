// Fuzz target: the HBONE header value parsers (baggage, forwarded,
// traceparent) fed from one input split at the first two NUL bytes:
//   <baggage> \0 <forwarded> \0 <traceparent>
// Properties: parsed baggage formats and parses back to the same labels; a parsed
// forwarded `for=` IP formats back; traceparent validation never throws.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/hbone/authority.h"
#include "common/hbone/headers.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::string_view NextPart(std::string_view* rest) {
  size_t nul = rest->find('\0');
  std::string_view part = rest->substr(0, nul);
  rest->remove_prefix(nul == std::string_view::npos ? rest->size() : nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ambit::hbone;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string_view baggage_text = NextPart(&rest);
  std::string_view forwarded_text = NextPart(&rest);
  std::string_view traceparent_text = NextPart(&rest);

  Baggage baggage = ParseBaggage(baggage_text);
  std::string formatted = FormatBaggage(baggage);
  (void)baggage.empty();
  // Parsed values hold no ',' or ';' and are trimmed, so they round-trip.
  FUZZ_CHECK(ParseBaggage(formatted) == baggage);

  auto forwarded = ParseForwarded(forwarded_text);
  if (forwarded.ok() && forwarded->for_value) {
    auto authority = ParseAuthority(*forwarded->for_value);
    if (authority.ok() && authority->IsIp()) {
      std::string host = forwarded->host.value_or("");
      (void)FormatForwarded(authority->host, authority->port, host);
    }
  }

  bool valid = IsValidTraceparent(traceparent_text);
  if (valid) FUZZ_CHECK(traceparent_text.size() == 55);
  FUZZ_CHECK(IsValidTraceparent(GenerateTraceparent()));
  return 0;
}
