// A small JSON Schema checker for tests: the subset config_dump.schema.json
// uses (type, required, properties, additionalProperties, propertyNames,
// items, $ref to #/$defs, enum, oneOf, anyOf, pattern, minimum, maximum,
// minLength). Returns the first violation with its JSON pointer, or "".
#pragma once

#include <nlohmann/json.hpp>

#include <regex>
#include <string>

namespace ambit::testing {

class SchemaCheck {
 public:
  explicit SchemaCheck(const nlohmann::json& root) : root_(root) {}

  std::string Check(const nlohmann::json& v, const nlohmann::json& s,
                    const std::string& at = "") const {
    using nlohmann::json;
    if (s.is_boolean()) return s.get<bool>() ? "" : at + ": not allowed";
    if (s.contains("$ref")) {
      const std::string ref = s["$ref"];
      return Check(v, root_["$defs"][ref.substr(ref.rfind('/') + 1)], at);
    }
    if (s.contains("type") && !TypeOk(v, s["type"])) {
      return at + ": expected type " + s["type"].dump() + ", got " + v.type_name();
    }
    if (s.contains("enum") &&
        std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) {
      return at + ": " + v.dump() + " not in " + s["enum"].dump();
    }
    if (s.contains("oneOf") && Matching(v, s["oneOf"], at) != 1) return at + ": oneOf failed";
    if (s.contains("anyOf") && Matching(v, s["anyOf"], at) == 0) return at + ": anyOf failed";
    if (v.is_string()) return CheckString(v.get<std::string>(), s, at);
    if (v.is_number()) {
      if (s.contains("minimum") && v < s["minimum"]) return at + ": below minimum";
      if (s.contains("maximum") && v > s["maximum"]) return at + ": above maximum";
    }
    if (v.is_array() && s.contains("items")) {
      for (size_t i = 0; i < v.size(); ++i) {
        if (auto e = Check(v[i], s["items"], at + "/" + std::to_string(i)); !e.empty()) return e;
      }
    }
    if (v.is_object()) return CheckObject(v, s, at);
    return "";
  }

 private:
  static bool TypeOk(const nlohmann::json& v, const nlohmann::json& t) {
    if (t.is_array()) {
      for (const auto& one : t) {
        if (TypeOk(v, one)) return true;
      }
      return false;
    }
    const std::string name = t;
    if (name == "object") return v.is_object();
    if (name == "array") return v.is_array();
    if (name == "string") return v.is_string();
    if (name == "integer") return v.is_number_integer();
    if (name == "number") return v.is_number();
    if (name == "boolean") return v.is_boolean();
    if (name == "null") return v.is_null();
    return false;
  }

  int Matching(const nlohmann::json& v, const nlohmann::json& list,
               const std::string& at) const {
    int n = 0;
    for (const auto& sub : list) n += Check(v, sub, at).empty() ? 1 : 0;
    return n;
  }

  static std::string CheckString(const std::string& v, const nlohmann::json& s,
                                 const std::string& at) {
    if (s.contains("minLength") && v.size() < s["minLength"].get<size_t>()) {
      return at + ": shorter than minLength";
    }
    if (s.contains("pattern") &&
        !std::regex_search(v, std::regex(s["pattern"].get<std::string>()))) {
      return at + ": '" + v + "' does not match " + s["pattern"].get<std::string>();
    }
    return "";
  }

  std::string CheckObject(const nlohmann::json& v, const nlohmann::json& s,
                          const std::string& at) const {
    if (s.contains("required")) {
      for (const auto& r : s["required"]) {
        if (!v.contains(r.get<std::string>())) return at + ": missing required " + r.dump();
      }
    }
    for (const auto& [k, child] : v.items()) {
      const std::string here = at + "/" + k;
      if (s.contains("propertyNames")) {
        if (auto e = Check(nlohmann::json(k), s["propertyNames"], here); !e.empty()) return e;
      }
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (auto e = Check(child, s["properties"][k], here); !e.empty()) return e;
      } else if (s.contains("additionalProperties")) {
        if (auto e = Check(child, s["additionalProperties"], here); !e.empty()) return e;
      }
    }
    return "";
  }

  const nlohmann::json& root_;
};

}  // namespace ambit::testing
