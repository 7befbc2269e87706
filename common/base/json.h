// JSON string output shared by the JSON log format, span exporters and
// access logs: a quoted, escaped string that is always valid JSON, whatever
// the input bytes (header values are not trusted to be UTF-8).
#pragma once

#include <string>
#include <string_view>

namespace ambit::base {

// Appends `s` as a JSON string literal: `"` `\`, control characters and DEL
// escaped; bytes that are not well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF) become U+FFFD each.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace ambit::base
