// Cat(a, b, ...): concatenates strings, string_views, chars* and integers.
// (Debian's absl::StrCat does not take std::string_view.)
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace ambit::identity {

namespace cat_internal {
inline void Append(std::string& out, std::string_view s) { out.append(s); }
template <typename T>
requires std::is_integral_v<T>
void Append(std::string& out, T v) { out.append(std::to_string(v)); }
}  // namespace cat_internal

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (cat_internal::Append(out, args), ...);
  return out;
}

}  // namespace ambit::identity
