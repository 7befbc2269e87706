#include "common/base/duration.h"

#include <fmt/format.h>

namespace ambit::base {

StatusOr<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  size_t i = 0;
  double value = 0;
  bool digits = false, dot = false;
  double scale = 0.1;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
      if (dot) {
        value += (c - '0') * scale;
        scale /= 10;
      } else {
        value = value * 10 + (c - '0');
      }
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return absl::InvalidArgumentError(fmt::format("'{}' is not a duration", text));
  std::string_view unit = text.substr(i);
  double ns;
  if (unit.empty() || unit == "s") ns = 1e9;
  else if (unit == "ms") ns = 1e6;
  else if (unit == "us") ns = 1e3;
  else if (unit == "m") ns = 60e9;
  else if (unit == "h") ns = 3600e9;
  else
    return absl::InvalidArgumentError(
        fmt::format("'{}': unknown duration unit '{}' (use ms, s, m, h)", text, unit));
  return Duration(static_cast<int64_t>(value * ns));
}

}  // namespace ambit::base
