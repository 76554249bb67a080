// blip/text/json_lines.hpp: the core of the blip_tokenize tool, testable without a process.
//
// Input: JSON lines {"text": "..."} (other fields are ignored; blank lines are skipped).
// Output: one JSON line per input line, {"ids": [...], "tokens": [...], "decoded": "..."}, where
// ids/tokens are `tokenizer(text)` with the special tokens HF adds, and decoded is
// `decode(ids, skip_special_tokens=True)` with the tokenizer's default clean-up.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "blip/text/tokenizer_base.hpp"

namespace blip {

inline constexpr int kJsonLinesOk = 0;
inline constexpr int kJsonLinesBadInput = 2;

// Processes `input` line by line. On a line that is not a JSON object with a string "text",
// writes "line N: ..." to `errors` and returns kJsonLinesBadInput, after the output of the
// lines before it; otherwise returns kJsonLinesOk.
inline int tokenize_json_lines(std::istream& input, std::ostream& output, std::ostream& errors,
                               const Tokenizer& tokenizer) {
  std::string line;
  long line_number = 0;
  while (std::getline(input, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json request;
    try {
      request = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& error) {
      errors << "line " << line_number << ": invalid JSON: " << error.what() << "\n";
      return kJsonLinesBadInput;
    }
    if (!request.is_object() || !request.contains("text") || !request.at("text").is_string()) {
      errors << "line " << line_number << ": expected an object with a string field \"text\", got "
             << request.dump() << "\n";
      return kJsonLinesBadInput;
    }
    const Encoding encoding = tokenizer.encode(request.at("text").get<std::string>());
    nlohmann::ordered_json reply;  // keys in the documented order: ids, tokens, decoded
    reply["ids"] = encoding.ids;
    reply["tokens"] = encoding.tokens;
    reply["decoded"] = tokenizer.decode(encoding.ids, /*skip_special_tokens=*/true);
    // Invalid UTF-8 cannot occur (tokens come from the vocabulary), but never throw over it.
    output << reply.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  }
  output.flush();
  return kJsonLinesOk;
}

}  // namespace blip
