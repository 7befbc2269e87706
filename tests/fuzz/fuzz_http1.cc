// Fuzz target: the admin HTTP/1.1 request parser (llhttp). Input layout:
//   byte 0: feed chunk size (0 = all at once); rest: bytes from the client.
// Properties: requests come out only complete, with a path that is a prefix
// of the target, and within the parser's size limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/admin/http1.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ambit::admin::Http1RequestParser;
  if (size == 0) return 0;
  size_t chunk = data[0] == 0 ? size : data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  Http1RequestParser parser;
  int requests = 0;
  while (!rest.empty()) {
    std::string_view piece = rest.substr(0, chunk);
    rest.remove_prefix(piece.size());
    auto st = parser.Feed(piece);
    while (parser.HasRequest()) {
      auto req = parser.TakeRequest();
      ++requests;
      FUZZ_CHECK(!req.method.empty());
      FUZZ_CHECK(req.target.starts_with(req.path));
      FUZZ_CHECK(req.body.size() <= Http1RequestParser::kMaxBodyBytes);
      (void)req.Header("host");
      (void)req.QueryParam("level");
      (void)req.HasQueryParam("seconds");
      ambit::admin::HttpResponse resp;
      resp.status = 200 + requests;
      resp.body = req.path;
      (void)ambit::admin::FormatResponse(resp, req.keep_alive);
    }
    if (!st.ok()) {
      FUZZ_CHECK(!st.message().empty());
      break;
    }
  }
  return 0;
}
