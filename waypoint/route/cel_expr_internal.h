// The parsed form of a cel_expr.h expression, shared by the parser
// (cel_expr.cc) and the evaluator (cel_eval.cc).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "waypoint/route/cel_expr.h"

namespace ambit::waypoint::route::cel {

enum class Op : uint8_t {
  kLiteral, kAttr, kList, kNot, kNeg, kAnd, kOr, kEq, kNe, kLt, kLe, kGt, kGe, kIn,
  kStartsWith, kEndsWith, kContains,
};

struct Node {
  Op op = Op::kLiteral;
  Value literal;
  Attr attr = Attr::kResponseCode;
  std::string key;  // header name
  std::vector<std::shared_ptr<const Node>> kids;
};

// Evaluates a node with CEL's semantics (cel_eval.cc).
Value EvalNode(const Node& n, const AttributeSource& src);

}  // namespace ambit::waypoint::route::cel
