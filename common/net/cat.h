// Cat(...): concatenates anything fmt can format. (Debian's absl::StrCat does
// not accept std::string_view, so common/net uses this instead.)
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace ambit::net {

namespace cat_internal {
template <typename T>
decltype(auto) Piece(const T& v) {
  if constexpr (std::is_same_v<T, absl::string_view>) {
    return std::string_view(v.data(), v.size());
  } else {
    return (v);
  }
}
}  // namespace cat_internal

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (out.append(fmt::format("{}", cat_internal::Piece(args))), ...);
  return out;
}

}  // namespace ambit::net
