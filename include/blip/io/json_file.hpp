// blip/io/json_file.hpp: the one way blipcpp reads a JSON file
// (config.json, generation_config.json, preprocessor_config.json, the
// tokenizer files).
//
// Parsing is nlohmann's default, which like Python's json module keeps the
// last of duplicate keys: these files are read by transformers through
// `json.load`, and we mirror what it sees. (The safetensors header and its
// index are deliberately NOT read here: they follow the Rust safetensors
// reader, which is strict; see io/safetensors.hpp parse_strict_json.)
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "blip/core/error.hpp"

namespace blip {

// The parsed contents of `path`. Errors (blip::Error) name the file: "cannot
// open <path> (no such file)" / "(exists but is not readable)", or
// "<path>: invalid JSON: <nlohmann's reason, with line and column>".
inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream stream(path, std::ios::binary);
  check(static_cast<bool>(stream), "cannot open ", name,
        std::filesystem::exists(path) ? " (exists but is not readable)" : " (no such file)");
  std::ostringstream text;
  text << stream.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& error) {
    fail(name, ": invalid JSON: ", error.what());
  }
}

}  // namespace blip
