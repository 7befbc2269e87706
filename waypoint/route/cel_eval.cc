// Evaluation of cel_expr.h expressions: CEL's rules for the subset (errors
// absorbed by a deciding && / || operand, no overload → error).
#include <optional>

#include "waypoint/route/cel_expr.h"
#include "waypoint/route/cel_expr_internal.h"

namespace ambit::waypoint::route::cel {

namespace {

Value Err() { return Value{Error{}}; }
Value Bool(bool b) { return Value{b}; }

// -1, 0, 1; nullopt when the kinds differ (or are not ordered).
std::optional<int> Compare(const Value& a, const Value& b) {
  if (const auto* x = std::get_if<int64_t>(&a.v)) {
    if (const auto* y = std::get_if<int64_t>(&b.v)) return *x < *y ? -1 : (*x > *y ? 1 : 0);
    return std::nullopt;
  }
  if (const auto* x = std::get_if<std::string>(&a.v)) {
    if (const auto* y = std::get_if<std::string>(&b.v)) {
      const int c = x->compare(*y);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
  }
  return std::nullopt;
}

std::optional<bool> Equal(const Value& a, const Value& b) {
  if (a.v.index() != b.v.index()) {
    if (std::holds_alternative<Null>(a.v) || std::holds_alternative<Null>(b.v)) return false;
    return std::nullopt;  // no overload
  }
  if (const auto* x = std::get_if<bool>(&a.v)) return *x == std::get<bool>(b.v);
  if (std::holds_alternative<Null>(a.v)) return true;
  if (const auto* x = std::get_if<List>(&a.v)) {
    const List& y = std::get<List>(b.v);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i) {
      auto e = Equal((*x)[i], y[i]);
      if (!e || !*e) return e;
    }
    return true;
  }
  auto c = Compare(a, b);
  if (!c) return std::nullopt;
  return *c == 0;
}

}  // namespace

Value EvalNode(const Node& n, const AttributeSource& src) {
  switch (n.op) {
    case Op::kLiteral: return n.literal;
    case Op::kAttr: return src.Get(n.attr, n.key);
    case Op::kList: {
      List out;
      for (const auto& k : n.kids) {
        Value v = EvalNode(*k, src);
        if (v.is_error()) return v;
        out.push_back(std::move(v));
      }
      return Value{std::move(out)};
    }
    case Op::kNot: {
      Value v = EvalNode(*n.kids[0], src);
      if (const auto* b = std::get_if<bool>(&v.v)) return Bool(!*b);
      return Err();
    }
    case Op::kNeg: {
      Value v = EvalNode(*n.kids[0], src);
      if (const auto* i = std::get_if<int64_t>(&v.v); i != nullptr && *i != INT64_MIN) {
        return Value{-*i};
      }
      return Err();
    }
    case Op::kAnd: case Op::kOr: {
      // CEL: commutative short circuit; an error loses to the deciding value.
      const bool decide = n.op == Op::kOr;  // true decides ||, false decides &&
      Value a = EvalNode(*n.kids[0], src);
      const auto* ab = std::get_if<bool>(&a.v);
      if (ab != nullptr && *ab == decide) return Bool(decide);
      Value b = EvalNode(*n.kids[1], src);
      const auto* bb = std::get_if<bool>(&b.v);
      if (bb != nullptr && *bb == decide) return Bool(decide);
      if (ab != nullptr && bb != nullptr) return Bool(!decide);
      return Err();
    }
    case Op::kEq: case Op::kNe: {
      Value a = EvalNode(*n.kids[0], src), b = EvalNode(*n.kids[1], src);
      if (a.is_error() || b.is_error()) return Err();
      auto e = Equal(a, b);
      if (!e) return Err();
      return Bool(n.op == Op::kEq ? *e : !*e);
    }
    case Op::kLt: case Op::kLe: case Op::kGt: case Op::kGe: {
      Value a = EvalNode(*n.kids[0], src), b = EvalNode(*n.kids[1], src);
      auto c = Compare(a, b);
      if (!c) return Err();
      switch (n.op) {
        case Op::kLt: return Bool(*c < 0);
        case Op::kLe: return Bool(*c <= 0);
        case Op::kGt: return Bool(*c > 0);
        default: return Bool(*c >= 0);
      }
    }
    case Op::kIn: {
      Value a = EvalNode(*n.kids[0], src), b = EvalNode(*n.kids[1], src);
      const auto* list = std::get_if<List>(&b.v);
      if (a.is_error() || list == nullptr) return Err();
      for (const Value& e : *list) {
        auto eq = Equal(a, e);
        if (eq && *eq) return Bool(true);
      }
      return Bool(false);
    }
    case Op::kStartsWith: case Op::kEndsWith: case Op::kContains: {
      Value a = EvalNode(*n.kids[0], src), b = EvalNode(*n.kids[1], src);
      const auto* s = std::get_if<std::string>(&a.v);
      const auto* p = std::get_if<std::string>(&b.v);
      if (s == nullptr || p == nullptr) return Err();
      if (n.op == Op::kStartsWith) return Bool(s->starts_with(*p));
      if (n.op == Op::kEndsWith) return Bool(s->ends_with(*p));
      return Bool(s->find(*p) != std::string::npos);
    }
  }
  return Err();
}

Value Expr::Eval(const AttributeSource& src) const {
  if (root_ == nullptr) return Value{Error{}};
  return EvalNode(*root_, src);
}

}  // namespace ambit::waypoint::route::cel
