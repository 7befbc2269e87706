#include "common/base/json.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace ambit::base {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST_CASE("json: escapes quotes, backslashes and control characters") {
  CHECK(Json("") == "\"\"");
  CHECK(Json("plain / text") == "\"plain / text\"");
  CHECK(Json("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(Json("\n\r\t") == "\"\\n\\r\\t\"");
  CHECK(Json(std::string_view("\x00\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
  CHECK(Json("\x7f") == "\"\\u007f\"");  // DEL too (terminals)
}

TEST_CASE("json: well-formed UTF-8 passes, anything else becomes U+FFFD per byte") {
  CHECK(Json("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") == "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(Json("\xff") == "\"\\ufffd\"");                 // never a lead byte
  CHECK(Json("\xc0\xaf") == "\"\\ufffd\\ufffd\"");      // overlong '/'
  CHECK(Json("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate D800
  CHECK(Json("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // past U+10FFFF
  CHECK(Json("\xe2\x82") == "\"\\ufffd\\ufffd\"");      // truncated at the end
  CHECK(Json("a\xc3") == "\"a\\ufffd\"");
}

TEST_CASE("json: every byte string comes out as JSON a strict parser accepts, round-tripping valid text") {
  // All two-byte strings: the strict parser (which rejects invalid UTF-8) must accept each.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 7) {
      const char raw[2] = {static_cast<char>(a), static_cast<char>(b)};
      const std::string in(raw, 2);
      const std::string out = Json(in);
      nlohmann::json parsed;
      REQUIRE_NOTHROW(parsed = nlohmann::json::parse(out));
      REQUIRE(parsed.is_string());
      if (a < 0x80 && b < 0x80) CHECK(parsed.get<std::string>() == in);
    }
  }
}

}  // namespace
}  // namespace ambit::base
