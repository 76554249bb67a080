// blip/io/config/json_reader.hpp: typed, checked reads out of a parsed JSON
// object, for the config parsers.
//
// ObjectReader knows where it is (the file and the dotted key prefix, e.g.
// "text_config."), so every error names the file, the full key and what was
// expected: `my/config.json: key "vision_config.hidden_size" must be an
// integer, got string "768"`. The require_* helpers do the same for values.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/json_file.hpp"

namespace blip {
namespace config_detail {

using nlohmann::json;

// "string \"768\"", "array [1,2,3]": a value as messages quote it (clipped).
inline std::string describe_json_value(const json& value) {
  return std::string(value.type_name()) + " " + clip(value.dump());
}

// Reads typed values out of one JSON object; `prefix` is the dotted path of
// that object ("text_config.") so messages name the full key.
class ObjectReader {
 public:
  ObjectReader(const json& object, const std::string& source, std::string prefix)
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const json& object() const { return object_; }
  const std::string& source() const { return source_; }
  std::string key_path(const std::string& key) const { return prefix_ + key; }

  // The value for `key`, or nullptr when the key is absent.
  const json* find(const std::string& key) const {
    auto found = object_.find(key);
    return found == object_.end() ? nullptr : &*found;
  }
  // True when the key is present and not null.
  bool has_value(const std::string& key) const {
    const json* value = find(key);
    return value != nullptr && !value->is_null();
  }

  [[noreturn]] void wrong_type(const std::string& key, const char* expected, const json& value) const {
    fail(source_, ": key \"", key_path(key), "\" must be ", expected, ", got ", describe_json_value(value));
  }

  // Each `read` leaves `out` untouched (the HF default) when the key is absent.
  void read(const std::string& key, std::int64_t& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out = as_integer(key, *value);
  }
  void read(const std::string& key, double& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_number()) wrong_type(key, "a number", *value);
    out = value->get<double>();
  }
  void read(const std::string& key, bool& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_boolean()) wrong_type(key, "a boolean (true/false)", *value);
    out = value->get<bool>();
  }
  void read(const std::string& key, std::string& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_string()) wrong_type(key, "a string", *value);
    out = value->get<std::string>();
  }
  // null → None.
  void read(const std::string& key, std::optional<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.reset();
      return;
    }
    out = as_integer(key, *value);
  }
  void read(const std::string& key, std::optional<double>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.reset();
      return;
    }
    if (!value->is_number()) wrong_type(key, "a number or null", *value);
    out = value->get<double>();
  }
  // A string, or null (→ "").
  void read_nullable_string(const std::string& key, std::string& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.clear();
      return;
    }
    if (!value->is_string()) wrong_type(key, "a string or null", *value);
    out = value->get<std::string>();
  }
  // null, an integer, or a list of integers (HF's eos_token_id forms).
  void read_token_ids(const std::string& key, std::vector<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (value->is_number_integer()) {
      out.push_back(as_integer(key, *value));
      return;
    }
    if (!value->is_array()) wrong_type(key, "an integer, a list of integers or null", *value);
    for (const json& element : *value) {
      if (!element.is_number_integer()) wrong_type(key, "an integer, a list of integers or null", *value);
      out.push_back(as_integer(key, element));
    }
  }
  // null or a list of integers.
  void read_integer_list(const std::string& key, std::vector<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (!value->is_array()) wrong_type(key, "a list of integers or null", *value);
    for (const json& element : *value) {
      if (!element.is_number_integer()) wrong_type(key, "a list of integers or null", *value);
      out.push_back(as_integer(key, element));
    }
  }
  // null or a list of strings.
  void read(const std::string& key, std::vector<std::string>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (!value->is_array()) wrong_type(key, "a list of strings or null", *value);
    for (const json& element : *value) {
      if (!element.is_string()) wrong_type(key, "a list of strings or null", *value);
      out.push_back(element.get<std::string>());
    }
  }

  // null or a list of lists of integers (GenerationConfig's bad_words_ids).
  void read(const std::string& key, std::vector<std::vector<std::int64_t>>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    const char* expected = "a list of lists of integers or null";
    if (!value->is_array()) wrong_type(key, expected, *value);
    for (const json& sequence : *value) {
      if (!sequence.is_array()) wrong_type(key, expected, *value);
      std::vector<std::int64_t> ids;
      for (const json& id : sequence) {
        if (!id.is_number_integer()) wrong_type(key, expected, *value);
        ids.push_back(as_integer(key, id));
      }
      out.push_back(std::move(ids));
    }
  }
  // null or a pair [integer, number] (GenerationConfig's exponential_decay_length_penalty).
  void read(const std::string& key, std::optional<std::pair<std::int64_t, double>>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.reset();
      return;
    }
    if (!value->is_array() || value->size() != 2 || !(*value)[0].is_number_integer() || !(*value)[1].is_number()) {
      wrong_type(key, "a pair [start_index (integer), decay_factor (number)] or null", *value);
    }
    out = std::make_pair(as_integer(key, (*value)[0]), (*value)[1].get<double>());
  }

  // A nested config object (`text_config`, ...): absent or null → an empty
  // object, like HF's `if text_config is None: text_config = {}`.
  ObjectReader nested(const std::string& key, const json& empty_object) const {
    const json* value = find(key);
    if (value == nullptr || value->is_null()) return ObjectReader(empty_object, source_, key_path(key) + ".");
    if (!value->is_object()) wrong_type(key, "an object", *value);
    return ObjectReader(*value, source_, key_path(key) + ".");
  }

 private:
  std::int64_t as_integer(const std::string& key, const json& value) const {
    if (!value.is_number_integer()) wrong_type(key, "an integer", value);
    if (!json_is_int64(value)) wrong_type(key, "an integer that fits in 64 bits", value);
    return value.get<std::int64_t>();
  }

  const json& object_;
  const std::string& source_;
  std::string prefix_;
};

inline void require_positive(const ObjectReader& reader, const std::string& key, std::int64_t value) {
  check(value > 0, reader.source(), ": key \"", reader.key_path(key), "\" must be a positive integer, got ", value);
}

inline void require_non_negative(const ObjectReader& reader, const std::string& key, std::int64_t value) {
  check(value >= 0, reader.source(), ": key \"", reader.key_path(key), "\" must be >= 0, got ", value);
}

inline void require_valid_epsilon(const ObjectReader& reader, const std::string& key, double value) {
  check(std::isfinite(value) && value >= 0.0, reader.source(), ": key \"", reader.key_path(key),
        "\" must be a finite number >= 0, got ", value);
}

// The BLIP and BLIP-2 vision patch embeddings take RGB only, as in transformers.
inline void require_rgb_channels(const ObjectReader& reader, std::int64_t num_channels) {
  check(num_channels == 3, reader.source(), ": key \"", reader.key_path("num_channels"), "\" is ", num_channels,
        "; the BLIP vision patch embedding takes 3 (RGB) channels, as in transformers");
}

// Multi-head attention splits hidden_size evenly into heads; HF raises the
// same ValueError when building the attention layer.
inline void require_divisible_by_heads(const ObjectReader& reader, const std::string& hidden_key, std::int64_t hidden,
                                       const std::string& heads_key, std::int64_t heads) {
  check(hidden % heads == 0, reader.source(), ": key \"", reader.key_path(hidden_key), "\" (", hidden,
        ") must be divisible by \"", reader.key_path(heads_key), "\" (", heads, ")");
}

// A sub-config's model_type, when written, must be the one its slot expects
// (HF would silently build the wrong class; a mismatch means a wrong file).
inline void require_model_type(const ObjectReader& reader, const std::string& expected) {
  std::string model_type = expected;
  reader.read("model_type", model_type);
  check(model_type == expected, reader.source(), ": key \"", reader.key_path("model_type"), "\" is \"", clip(model_type),
        "\", expected \"", expected, "\"");
}

// The top-level model_type: required, and the one the parser handles.
inline void require_top_level_model_type(const ObjectReader& reader, const std::string& expected) {
  const json* value = reader.find("model_type");
  check(value != nullptr && !value->is_null(), reader.source(),
        ": no \"model_type\" key (expected \"", expected, "\")");
  std::string model_type;
  reader.read("model_type", model_type);
  check(model_type == expected, reader.source(), ": \"model_type\" is \"", clip(model_type), "\", expected \"", expected,
        "\"");
}

// Every parser starts here: the document must be an object.
inline void require_object(const json& document, const std::string& source) {
  check(document.is_object(), source, ": expected a JSON object at the top level, got ", describe_json_value(document));
}

}  // namespace config_detail
}  // namespace blip
