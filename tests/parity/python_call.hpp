// tests/parity/python_call.hpp: reads the Python call recorded in a
// fixture's case.json, e.g.
//   model.generate(pixel_values=pixel_values, input_ids=prompt_input_ids.clone(),
//                  attention_mask=prompt_attention_mask, **{'max_new_tokens': 12, 'num_beams': 3})
// into named tensor arguments and generation keyword arguments, so the parity
// tool runs whatever call a case records instead of a fixed list.
#pragma once

#include <cctype>
#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "blip/core/error.hpp"
#include "blip/generation/generate.hpp"

namespace blip::parity {

using PythonValue = std::variant<bool, std::int64_t, double, std::string>;

struct PythonCall {
  std::map<std::string, std::string> tensor_arguments;  // keyword -> input tensor name (".clone()" dropped)
  std::map<std::string, PythonValue> keyword_arguments; // from **{...}
};

namespace detail {
class CallParser {
 public:
  explicit CallParser(const std::string& text) : text_(text) {}

  PythonCall parse() {
    PythonCall call;
    const std::size_t open = text_.find('(');
    check(open != std::string::npos, "call '", text_, "': no argument list");
    position_ = open + 1;
    while (true) {
      skip_spaces();
      if (peek() == ')') break;
      if (text_.compare(position_, 2, "**") == 0) {
        position_ += 2;
        parse_dict(call.keyword_arguments);
      } else {
        const std::string key = identifier();
        expect('=');
        std::string value = dotted_name();
        if (text_.compare(position_, 8, ".clone()") == 0) position_ += 8;
        if (value == "True" || value == "False") {
          call.keyword_arguments[key] = value == "True";
        } else if (!value.empty() && (std::isdigit(static_cast<unsigned char>(value[0])) || value[0] == '-')) {
          call.keyword_arguments[key] = parse_number(value);
        } else {
          call.tensor_arguments[key] = value;
        }
      }
      skip_spaces();
      if (peek() == ',') {
        ++position_;
        continue;
      }
      expect(')');
      break;
    }
    return call;
  }

 private:
  char peek() const { return position_ < text_.size() ? text_[position_] : '\0'; }
  void skip_spaces() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) ++position_;
  }
  void expect(char wanted) {
    skip_spaces();
    check(peek() == wanted, "call '", text_, "': expected '", wanted, "' at offset ", position_);
    ++position_;
  }
  std::string identifier() {
    skip_spaces();
    const std::size_t begin = position_;
    while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_') ++position_;
    check(position_ > begin, "call '", text_, "': expected a name at offset ", begin);
    return text_.substr(begin, position_ - begin);
  }
  std::string dotted_name() {
    skip_spaces();
    const std::size_t begin = position_;
    while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-' || peek() == '.') {
      if (text_.compare(position_, 8, ".clone()") == 0) break;
      ++position_;
    }
    return text_.substr(begin, position_ - begin);
  }
  static PythonValue parse_number(const std::string& token) {
    if (token.find_first_of(".eE") != std::string::npos) return std::stod(token);
    return static_cast<std::int64_t>(std::stoll(token));
  }
  PythonValue value() {
    skip_spaces();
    if (peek() == '\'' || peek() == '"') {
      const char quote = peek();
      const std::size_t begin = ++position_;
      while (position_ < text_.size() && text_[position_] != quote) ++position_;
      check(position_ < text_.size(), "call '", text_, "': unterminated string");
      return text_.substr(begin, position_++ - begin);
    }
    const std::string token = dotted_name();
    if (token == "True") return true;
    if (token == "False") return false;
    check(!token.empty(), "call '", text_, "': expected a value at offset ", position_);
    return parse_number(token);
  }
  void parse_dict(std::map<std::string, PythonValue>& out) {
    expect('{');
    while (true) {
      skip_spaces();
      if (peek() == '}') {
        ++position_;
        return;
      }
      const PythonValue key = value();
      check(std::holds_alternative<std::string>(key), "call '", text_, "': dictionary keys must be strings");
      expect(':');
      out[std::get<std::string>(key)] = value();
      skip_spaces();
      if (peek() == ',') ++position_;
    }
  }

  const std::string& text_;
  std::size_t position_ = 0;
};
}  // namespace detail

inline PythonCall parse_python_call(const std::string& text) { return detail::CallParser(text).parse(); }

// Generation keyword arguments (HF names) -> GenerationOptions. Unknown or
// unsupported keywords are an error naming them, never silently ignored.
inline generation::GenerationOptions generation_options_from(const PythonCall& call) {
  generation::GenerationOptions options;
  for (const auto& [key, value] : call.keyword_arguments) {
    auto as_int = [&, key = key, value = value]() -> std::int64_t {
      check(std::holds_alternative<std::int64_t>(value), "generation argument '", key, "' must be an integer");
      return std::get<std::int64_t>(value);
    };
    auto as_real = [&, key = key, value = value]() -> double {
      if (std::holds_alternative<std::int64_t>(value)) return static_cast<double>(std::get<std::int64_t>(value));
      check(std::holds_alternative<double>(value), "generation argument '", key, "' must be a number");
      return std::get<double>(value);
    };
    auto as_bool = [&, key = key, value = value]() -> bool {
      check(std::holds_alternative<bool>(value), "generation argument '", key, "' must be True or False");
      return std::get<bool>(value);
    };
    if (key == "max_new_tokens") options.max_new_tokens = as_int();
    else if (key == "max_length") options.max_length = as_int();
    else if (key == "min_new_tokens") options.min_new_tokens = as_int();
    else if (key == "min_length") options.min_length = as_int();
    else if (key == "num_beams") options.num_beams = as_int();
    else if (key == "do_sample") options.do_sample = as_bool();
    else if (key == "temperature") options.temperature = as_real();
    else if (key == "top_k") options.top_k = as_int();
    else if (key == "top_p") options.top_p = as_real();
    else if (key == "repetition_penalty") options.repetition_penalty = as_real();
    else if (key == "no_repeat_ngram_size") options.no_repeat_ngram_size = as_int();
    else if (key == "length_penalty") options.length_penalty = as_real();
    else if (key == "num_return_sequences") options.num_return_sequences = as_int();
    else if (key == "early_stopping") {
      if (std::holds_alternative<std::string>(value)) {
        check(std::get<std::string>(value) == "never", "early_stopping must be True, False or 'never'");
        options.early_stopping = generation::GenerationOptions::EarlyStopping::Never;
      } else {
        options.early_stopping = as_bool() ? generation::GenerationOptions::EarlyStopping::True
                                           : generation::GenerationOptions::EarlyStopping::False;
      }
    } else if (key == "return_dict_in_generate" || key == "output_scores") {
      // Both only change what HF returns; the runner always has ids and scores.
    } else {
      fail("generation argument '", key, "' is not supported");
    }
  }
  return options;
}

}  // namespace blip::parity
