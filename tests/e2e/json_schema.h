// A small JSON Schema validator (the draft 2020-12 keywords the e2e schemas use: type, enum, required,
// properties, additionalProperties: false, items, minItems, minimum, maximum). Returns the first
// violation as "path: problem", or "" when the document conforms.
#pragma once
#include <string>
#include <nlohmann/json.hpp>

namespace rtune::test {

inline bool json_type_is(const nlohmann::json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

inline std::string validate_json(const nlohmann::json& v, const nlohmann::json& s, const std::string& at = "$") {
  for (auto& [k, _] : s.items())
    if (k != "$schema" && k != "title" && k != "type" && k != "enum" && k != "required" && k != "properties" &&
        k != "additionalProperties" && k != "items" && k != "minItems" && k != "minimum" && k != "maximum")
      return at + ": schema keyword '" + k + "' is not supported by this validator";
  if (s.contains("type") && !json_type_is(v, s["type"])) return at + ": expected " + s["type"].get<std::string>();
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end())
    return at + ": " + v.dump() + " is not one of " + s["enum"].dump();
  if (s.contains("minimum") && v.is_number() && v.get<double>() < s["minimum"].get<double>())
    return at + ": " + v.dump() + " < minimum " + s["minimum"].dump();
  if (s.contains("maximum") && v.is_number() && v.get<double>() > s["maximum"].get<double>())
    return at + ": " + v.dump() + " > maximum " + s["maximum"].dump();
  if (v.is_object()) {
    for (auto& r : s.value("required", nlohmann::json::array()))
      if (!v.contains(r.get<std::string>())) return at + ": missing required '" + r.get<std::string>() + "'";
    for (auto& [k, val] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (auto e = validate_json(val, s["properties"][k], at + "." + k); !e.empty()) return e;
      } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
        return at + ": unexpected property '" + k + "'";
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>())
      return at + ": fewer than " + s["minItems"].dump() + " items";
    if (s.contains("items"))
      for (size_t i = 0; i < v.size(); ++i)
        if (auto e = validate_json(v[i], s["items"], at + "[" + std::to_string(i) + "]"); !e.empty()) return e;
  }
  return "";
}

}  // namespace rtune::test
