// blip/evaluation/json_input.hpp: reading the fields of the COCO and VQA annotation and result files,
// with errors (blip::Error) that name the file, the place in it and what was expected there.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "blip/core/error.hpp"

namespace blip::evaluation::json_input {

// "<file>: annotations[3]": where a value is, for messages.
inline std::string place(const std::string& file, const char* array, std::size_t index) {
  return file + ": " + array + "[" + std::to_string(index) + "]";
}

inline const nlohmann::json& member(const nlohmann::json& object, const char* key, const std::string& where) {
  check(object.is_object(), where, ": expected a JSON object, got ", object.type_name());
  const auto found = object.find(key);
  check(found != object.end(), where, ": missing \"", key, "\"");
  return *found;
}

inline const nlohmann::json& array_member(const nlohmann::json& object, const char* key, const std::string& where) {
  const nlohmann::json& value = member(object, key, where);
  check(value.is_array(), where, ": \"", key, "\" must be an array, got ", value.type_name());
  return value;
}

inline std::string string_member(const nlohmann::json& object, const char* key, const std::string& where) {
  const nlohmann::json& value = member(object, key, where);
  check(value.is_string(), where, ": \"", key, "\" must be a string, got ", value.dump());
  return value.get<std::string>();
}

// An image or question id (an integer, or a string as some datasets use) as its JSON text: the key
// ids are matched by, and how messages show them.
inline std::string id_member(const nlohmann::json& object, const char* key, const std::string& where) {
  const nlohmann::json& value = member(object, key, where);
  check(value.is_number_integer() || value.is_string(), where, ": \"", key, "\" must be an integer (or a string), got ",
        value.dump());
  return value.dump();
}

}  // namespace blip::evaluation::json_input
