// Status helpers: absl::Status / absl::StatusOr are our error types (no
// exceptions on the data path). These macros keep call sites short.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ambit {

using absl::Status;
using absl::StatusOr;

}  // namespace ambit

#define AMBIT_CONCAT_INNER_(a, b) a##b
#define AMBIT_CONCAT_(a, b) AMBIT_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status ambit_status_ = (expr);             \
    if (!ambit_status_.ok()) return ambit_status_;     \
  } while (0)

// ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define ASSIGN_OR_RETURN(lhs, expr) \
  AMBIT_ASSIGN_OR_RETURN_IMPL_(AMBIT_CONCAT_(ambit_statusor_, __LINE__), lhs, expr)
#define AMBIT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()
