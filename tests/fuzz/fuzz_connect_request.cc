// Fuzz target: server-side validation of an inbound HBONE CONNECT
// (ParseConnectRequest) over a header list decoded from the input:
//   name \0 value \n name \0 value \n ...   (a line without \0 = empty value)
// Properties: an accepted request has a parseable authority, a valid
// traceparent, and error statuses map to 400.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/hbone/connect_codec.h"
#include "common/http2/h2_types.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ambit;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  http2::H2Headers headers;
  while (!rest.empty() && headers.size() < 64) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    size_t nul = line.find('\0');
    http2::H2Header h;
    h.name = std::string(line.substr(0, nul));
    if (nul != std::string_view::npos) h.value = std::string(line.substr(nul + 1));
    headers.push_back(std::move(h));
  }

  auto req = hbone::ParseConnectRequest(headers);
  if (req.ok()) {
    FUZZ_CHECK(hbone::ParseAuthority(req->target.ToString()).ok());
    FUZZ_CHECK(hbone::IsValidTraceparent(req->traceparent));
    FUZZ_CHECK(hbone::HttpStatusFor(Status()) == 200);
  } else {
    FUZZ_CHECK(hbone::HttpStatusFor(req.status()) == 400);
    FUZZ_CHECK(!req.status().message().empty());
  }

  // The client-side checks read the same list as a response.
  (void)hbone::ResponseBaggage(headers);
  hbone::Authority target{hbone::Authority::Kind::kIpv4, "10.0.0.1", 80};
  (void)hbone::CheckConnectResponse(headers, target);
  return 0;
}
