// blip/io/json_file.hpp: the one way blipcpp reads JSON: the files of a model
// folder (config.json, generation_config.json, preprocessor_config.json,
// processor_config.json, the tokenizer files) and JSON text from elsewhere
// (blip_tokenize's input lines, evaluation files).
//
// Parsing is nlohmann's default, which like Python's json module keeps the
// last of duplicate keys: these files are read by transformers through
// `json.load`, and we mirror what it sees. Two guards come first (see
// docs/reliability.md):
//   * depth: nesting deeper than kMaxJsonDepth levels is refused WHILE
//     parsing, so no recursive walk (dump(), comparison, destruction) ever
//     meets a 100,000-deep array and overflows the stack;
//   * size: the file must be a regular file within a size limit
//     (core/regular_file.hpp), checked before reading.
// (The safetensors header and its index are deliberately NOT read here: they
// follow the Rust safetensors reader, which is strict; see io/safetensors.hpp
// parse_strict_json, which applies the same depth limit.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"

namespace blip {

// The deepest JSON nesting accepted: serde_json's recursion limit, which the
// Rust tokenizers and safetensors readers apply. Real files need at most 5.
inline constexpr int kMaxJsonDepth = 128;

// The largest model-folder configuration file read (config.json,
// generation_config.json, preprocessor_config.json, processor_config.json,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json). Real
// ones are a few kB.
inline constexpr std::uint64_t kMaxConfigFileBytes = 16 * kMebibyte;
// The largest tokenizer file read (tokenizer.json, vocab.txt, vocab.json,
// merges.txt, spiece.model). Real ones are at most a few tens of MB.
inline constexpr std::uint64_t kMaxTokenizerFileBytes = 128 * kMebibyte;
// The default for any other JSON file (e.g. evaluation annotations, ~300 MB
// for VQA v2's training set).
inline constexpr std::uint64_t kMaxJsonFileBytes = 1024 * kMebibyte;

// Parses JSON text. Errors (blip::Error) start with `source`:
// "<source>: invalid JSON: <nlohmann's reason, with the byte position>" or
// "<source>: JSON nested deeper than 128 levels".
inline nlohmann::json parse_json_text(std::string_view text, const std::string& source) {
  using Event = nlohmann::json::parse_event_t;
  // nlohmann's parser is iterative; its callback sees the depth of every
  // container it opens (0 for the top level) before building it.
  const nlohmann::json::parser_callback_t limit_depth = [&source](int depth, Event event, nlohmann::json&) {
    if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxJsonDepth)
      fail(source, ": JSON nested deeper than ", kMaxJsonDepth, " levels");
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
  } catch (const nlohmann::json::exception& error) {
    fail(source, ": invalid JSON: ", error.what());
  }
}

// The parsed contents of the regular file `path`, at most `max_bytes` long.
// Errors (blip::Error) name the file: "cannot open <path> (no such file)" /
// "(exists but is not readable)", "<path>: is a directory, expected a regular
// file", "<path>: N bytes, above the 16 MiB limit for a JSON file", and the
// parse errors of parse_json_text.
inline nlohmann::json read_json_file(const std::filesystem::path& path, std::uint64_t max_bytes = kMaxJsonFileBytes) {
  const std::string name = path.string();
  return parse_json_text(read_regular_file(name, max_bytes, "a JSON file"), name);
}

// Whether `value` is an integer that get<std::int64_t>() returns unchanged. nlohmann's
// get<std::int64_t>() would convert a float with a C++ cast (1e30 is undefined behaviour) and
// wrap an unsigned above 2^63 into a negative number; the Rust readers behind transformers'
// tokenizer.json and configs accept only integers, and so does every reader here.
inline bool json_is_int64(const nlohmann::json& value) {
  return value.is_number_integer() &&
         !(value.is_number_unsigned() &&
           value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

// The integer `value`, or a blip::Error "<source>: <what> must be an integer, got <value>".
inline std::int64_t json_integer(const nlohmann::json& value, const std::string& source, std::string_view what) {
  if (!json_is_int64(value)) fail(source, ": ", what, " must be an integer, got ", clip(value.dump()));
  return value.get<std::int64_t>();
}

// A model folder's configuration file (kMaxConfigFileBytes).
inline nlohmann::json read_config_json_file(const std::filesystem::path& path) {
  return read_json_file(path, kMaxConfigFileBytes);
}

}  // namespace blip
