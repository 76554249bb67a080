// blip/io/config/fields.hpp: one list of fields per config drives parsing,
// range checks and JSON output (gemma.cpp's VisitFields pattern).
//
// Each config struct lists its fields once, with HF's key and what the key
// allows:
//
//   template <class Visitor> void visit_fields(Visitor& v) {
//     PretrainedConfigCommon::visit_fields(v);
//     v("hidden_size", hidden_size, Positive{});
//     v("layer_norm_eps", layer_norm_eps, Epsilon{});
//     v("word_embed_proj_dim", word_embed_proj_dim, Positive{}, NullIsDerived{});
//   }
//
// and the visitors below do the rest: ReadVisitor parses (an absent key keeps
// the struct's default, which is HF's), CheckVisitor applies the range tags,
// WriteVisitor writes HF's key names and JSON forms, KeyCollector lists the
// keys. The field's C++ type decides how it is read and written; the tags
// below cover what the type alone cannot say. Rules that involve several
// fields (HF's constructors deriving one field from another, divisibility)
// stay explicit in each config's read_config(), after the visit.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/config/json_reader.hpp"

namespace blip {
namespace config_detail {

// ---- tags: range checks (CheckVisitor) ------------------------------------
struct Positive {};     // an integer > 0
struct NonNegative {};  // an integer >= 0
struct Epsilon {};      // a finite number >= 0

// ---- tags: JSON forms the C++ type alone does not tell (ReadVisitor, WriteVisitor)
struct TokenIds {};       // std::vector<int64_t>: null, an integer or a list (HF's eos_token_id); written as
                          // an integer when there is one id. Untagged integer vectors are null or a list.
struct NullAsEmpty {};    // std::string: null reads as "" and "" is written as null
struct NullIsDerived {};  // null reads like an absent key; read_config() then derives the value from another
                          // field (HF's `x if x is not None else y`)
struct ReadByRule {};     // not read by the visit: read_config() sets it by HF's rule from other fields (and
                          // reads the key there when HF lets it override the derived value)
struct FixedByClass {};   // model_type: when the key is written it must equal the class's own value
template <class T>
struct NullMeans {        // null reads as `value` (HF skips a warper for None; the neutral value does the same)
  T value;
};

// ---- helpers ---------------------------------------------------------------
template <class Tag, class... Tags>
constexpr bool has_tag = (std::is_same_v<Tag, Tags> || ...);

template <class T>
struct is_null_means : std::false_type {};
template <class T>
struct is_null_means<NullMeans<T>> : std::true_type {};

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

// Lists the keys a config visits, in order.
struct KeyCollector {
  std::vector<std::string> keys;
  template <class T, class... Tags>
  void operator()(const char* key, const T&, const Tags&...) {
    keys.emplace_back(key);
  }
};

// A nested config (text_config, vision_config, ...): a struct with visit_fields.
template <class T, class = void>
struct is_config : std::false_type {};
template <class T>
struct is_config<T, std::void_t<decltype(std::declval<T&>().visit_fields(std::declval<KeyCollector&>()))>>
    : std::true_type {};

// ---- reading ---------------------------------------------------------------
// A nested config is read by its own read_config(const ObjectReader&, Config&)
// overload (found by argument-dependent lookup through ObjectReader), so its
// cross-field rules apply wherever it is nested. A std::variant of configs
// (Blip2Config::text_config) likewise has a read_config overload that picks
// the alternative.
class ReadVisitor {
 public:
  explicit ReadVisitor(const ObjectReader& reader) : reader_(reader) {}

  template <class T, class... Tags>
  void operator()(const char* key, T& field, const Tags&... tags) {
    if constexpr (has_tag<ReadByRule, Tags...>) {
      return;
    } else if constexpr (is_config<T>::value || is_variant<T>::value) {
      read_config(reader_.nested(key, empty_object()), field);
    } else {
      const json* value = reader_.find(key);
      if (value == nullptr) return;  // absent: the default (HF's) stays
      if (value->is_null()) {
        if ((assign_null_meaning(field, tags) || ...)) return;
        if constexpr (has_tag<NullIsDerived, Tags...>) return;
      }
      if constexpr (has_tag<FixedByClass, Tags...>) {
        require_model_type(reader_, field);
      } else if constexpr (has_tag<TokenIds, Tags...>) {
        reader_.read_token_ids(key, field);
      } else if constexpr (has_tag<NullAsEmpty, Tags...>) {
        reader_.read_nullable_string(key, field);
      } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
        reader_.read_integer_list(key, field);
      } else if constexpr (std::is_enum_v<T>) {
        read_enum(reader_, key, field);  // the enum's own reader, next to the enum
      } else {
        reader_.read(key, field);
      }
    }
  }

 private:
  static const json& empty_object() {
    static const json empty = json::object();
    return empty;
  }

  template <class T, class Tag>
  static bool assign_null_meaning(T& field, const Tag& tag) {
    if constexpr (is_null_means<Tag>::value) {
      field = static_cast<T>(tag.value);
      return true;
    } else {
      return false;
    }
  }

  const ObjectReader& reader_;
};

// ---- range checks ----------------------------------------------------------
class CheckVisitor {
 public:
  explicit CheckVisitor(const ObjectReader& reader) : reader_(reader) {}

  template <class T, class... Tags>
  void operator()(const char* key, const T& field, const Tags&...) {
    if constexpr (has_tag<Positive, Tags...>) require_positive(reader_, key, field);
    if constexpr (has_tag<NonNegative, Tags...>) require_non_negative(reader_, key, field);
    if constexpr (has_tag<Epsilon, Tags...>) require_valid_epsilon(reader_, key, field);
  }

 private:
  const ObjectReader& reader_;
};

// ---- writing (HF's key names and JSON forms, as in to_dict()) -------------
// HF writes a single id as an int; a list otherwise; None as null.
inline json token_ids_to_json(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return json(nullptr);
  if (ids.size() == 1) return json(ids.front());
  return json(ids);
}
template <class T>
json value_to_json(const T& value) {
  return json(value);  // numbers, booleans, strings; configs and enums through their to_json
}
template <class T>
json value_to_json(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);  // None → null; a pair → [first, second]
}
template <class T>
json value_to_json(const std::vector<T>& values) {
  return values.empty() ? json(nullptr) : json(values);  // HF None is held as an empty list
}
template <class... Ts>
json value_to_json(const std::variant<Ts...>& value) {
  return std::visit([](const auto& alternative) { return json(alternative); }, value);
}

class WriteVisitor {
 public:
  explicit WriteVisitor(json& out) : out_(out) {}

  template <class T, class... Tags>
  void operator()(const char* key, const T& field, const Tags&...) {
    if constexpr (has_tag<TokenIds, Tags...>) {
      out_[key] = token_ids_to_json(field);
    } else if constexpr (has_tag<NullAsEmpty, Tags...>) {
      out_[key] = field.empty() ? json(nullptr) : json(field);
    } else {
      out_[key] = value_to_json(field);
    }
  }

 private:
  json& out_;
};

// ---- the three passes ------------------------------------------------------
template <class Config>
void read_fields(const ObjectReader& reader, Config& config) {
  ReadVisitor visitor(reader);
  config.visit_fields(visitor);
}

template <class Config>
void check_fields(const ObjectReader& reader, Config& config) {
  CheckVisitor visitor(reader);
  config.visit_fields(visitor);
}

// visit_fields is non-const because ReadVisitor writes through it; the writer
// only reads (gemma.cpp's IFields::Print does the same).
template <class Config>
void write_fields(json& out, const Config& config) {
  WriteVisitor visitor(out);
  const_cast<Config&>(config).visit_fields(visitor);
}

template <class Config>
std::vector<std::string> field_keys() {
  Config config;
  KeyCollector collector;
  config.visit_fields(collector);
  return std::move(collector.keys);
}

}  // namespace config_detail
}  // namespace blip
