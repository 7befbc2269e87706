// Small strong types so that a port is not confused with a count, etc.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace ambit::base {

template <typename T, typename Tag>
class Strong {
 public:
  constexpr Strong() = default;
  constexpr explicit Strong(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const Strong&) const = default;

 private:
  T v_{};
};

using Port = Strong<uint16_t, struct PortTag>;
using WorkerId = Strong<uint32_t, struct WorkerIdTag>;

}  // namespace ambit::base

template <typename T, typename Tag>
struct std::hash<ambit::base::Strong<T, Tag>> {
  size_t operator()(const ambit::base::Strong<T, Tag>& s) const noexcept {
    return std::hash<T>{}(s.value());
  }
};
