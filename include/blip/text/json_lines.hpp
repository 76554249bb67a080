// blip/text/json_lines.hpp: the core of the blip_tokenize tool, testable without a process,
// and the bounded line reader the line-oriented tools share.
//
// Input: JSON lines {"text": "..."} (other fields are ignored; blank lines are skipped).
// Output: one JSON line per input line, {"ids": [...], "tokens": [...], "decoded": "..."}, where
// ids/tokens are `tokenizer(text)` with the special tokens HF adds, and decoded is
// `decode(ids, skip_special_tokens=True)` with the tokenizer's default clean-up.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "blip/core/error.hpp"
#include "blip/io/json_file.hpp"
#include "blip/text/tokenizer_base.hpp"

namespace blip {

inline constexpr int kJsonLinesOk = 0;
// A bad input line, or input that could not be read: a runtime error (exit status 1).
inline constexpr int kJsonLinesBadInput = 1;

// The longest input line the line-oriented tools accept (blip_tokenize, blip_chat). Tokenizing
// costs about 100 bytes of memory per byte of text, so a line of this size needs ~100 MB; an
// unbounded line (50 MB) cost 5.4 GB. Longer lines are an error naming the line.
inline constexpr std::size_t kMaxInputLineBytes = std::size_t{1} << 20;

enum class LineRead { Line, End, TooLong };

// Reads one line of `input` into `line`, without its "\n" (or "\r\n"). Never holds more than
// max_bytes + 1 bytes: a longer line gives TooLong (the rest of it is not read). End comes at the
// end of the input and also when reading fails; input.bad() tells the two apart.
inline LineRead read_bounded_line(std::istream& input, std::string& line, std::size_t max_bytes = kMaxInputLineBytes) {
  line.clear();
  char c = 0;
  bool any = false;
  while (input.get(c)) {
    any = true;
    if (c == '\n') break;
    if (line.size() == max_bytes) return LineRead::TooLong;
    line.push_back(c);
  }
  if (!any) return LineRead::End;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return LineRead::Line;
}

// "reading the input failed (Is a directory)", for a stream that went bad.
inline std::string describe_read_failure(const char* what) {
  const int error = errno;
  return std::string("reading ") + what + " failed" +
         (error != 0 ? std::string(" (") + std::strerror(error) + ")" : "");
}

// Processes `input` line by line. On a line that is not a JSON object with a string "text" (or
// is longer than max_line_bytes, or nested deeper than kMaxJsonDepth), writes "line N: ..." to
// `errors` and returns kJsonLinesBadInput, after the output of the lines before it; likewise
// when the input cannot be read or the output cannot be written. Otherwise returns kJsonLinesOk.
inline int tokenize_json_lines(std::istream& input, std::ostream& output, std::ostream& errors,
                               const Tokenizer& tokenizer, std::size_t max_line_bytes = kMaxInputLineBytes) {
  std::string line;
  long line_number = 0;
  while (true) {
    errno = 0;  // so that a failed read's reason is its own
    const LineRead read = read_bounded_line(input, line, max_line_bytes);
    if (read == LineRead::End) break;
    ++line_number;
    const std::string where = "line " + std::to_string(line_number);
    if (read == LineRead::TooLong) {
      errors << where << ": longer than " << max_line_bytes << " bytes, the limit per line (split the text)\n";
      return kJsonLinesBadInput;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json request;
    try {
      request = parse_json_text(line, where);
    } catch (const Error& error) {
      errors << error.what() << "\n";
      return kJsonLinesBadInput;
    }
    if (!request.is_object() || !request.contains("text") || !request.at("text").is_string()) {
      errors << where << ": expected an object with a string field \"text\", got "
             << clip(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) << "\n";
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
  if (input.bad()) {
    errors << describe_read_failure("the input") << " after line " << line_number << "\n";
    return kJsonLinesBadInput;
  }
  output.flush();
  if (!output) {
    errors << "writing the output failed\n";
    return kJsonLinesBadInput;
  }
  return kJsonLinesOk;
}

}  // namespace blip
