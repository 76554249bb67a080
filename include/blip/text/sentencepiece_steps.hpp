// blip/text/sentencepiece_steps.hpp: the normalizer, pre-tokenizer and decoder steps that Hugging
// Face's SentencePiece-style tokenizers (T5, and the other Unigram checkpoints) put around the
// model, with their tokenizer.json parsing. Each step mirrors the Rust `tokenizers` 0.23 type of
// the same name:
//   normalizers   Precompiled (precompiled_charsmap.hpp), Replace, Strip, Prepend, Lowercase, Sequence
//   pre-tokenizer Metaspace
//   decoders      Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence
// Other types are refused when loading, naming the file and the type, rather than tokenizing
// differently from HF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/precompiled_charsmap.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

// The pattern of a Replace step: a literal string, or a regex that repeats one literal unit
// (" {2,}", the only kind SentencePiece conversions write). Matches are found left to right
// without overlap, each as long as the quantifier allows (Rust's find_iter on a greedy regex).
struct ReplacePattern {
  std::string unit;
  std::size_t min_repeat = 1, max_repeat = 1;

  // The match at or after `from`: [begin, end), or begin == npos when there is none.
  std::pair<std::size_t, std::size_t> find(std::string_view text, std::size_t from) const {
    for (std::size_t position = text.find(unit, from); position != std::string_view::npos;
         position = text.find(unit, position + 1)) {
      std::size_t count = 1, end = position + unit.size();
      while (count < max_repeat && text.compare(end, unit.size(), unit) == 0) {
        ++count;
        end += unit.size();
      }
      if (count >= min_repeat) return {position, end};
    }
    return {std::string_view::npos, std::string_view::npos};
  }

  std::string replace_all(std::string_view text, std::string_view content) const {
    std::string replaced;
    std::size_t copied = 0;
    for (auto [begin, end] = find(text, 0); begin != std::string_view::npos; std::tie(begin, end) = find(text, end)) {
      replaced.append(text.substr(copied, begin - copied)).append(content);
      copied = end;
    }
    if (copied == 0) return std::string(text);
    replaced.append(text.substr(copied));
    return replaced;
  }
};

// One normalizer step. Precompiled is shared: its charsmap is large and immutable.
struct NormalizerStep {
  enum class Kind { kPrecompiled, kReplace, kStrip, kPrepend, kLowercase };
  Kind kind = Kind::kReplace;
  std::shared_ptr<const PrecompiledCharsmap> charsmap;  // kPrecompiled
  ReplacePattern pattern;                              // kReplace
  std::string content;                                 // kReplace: the replacement; kPrepend: the prefix
  bool strip_left = false, strip_right = false;        // kStrip

  std::string apply(std::string text) const {
    switch (kind) {
      case Kind::kPrecompiled:
        return charsmap->normalize(text);
      case Kind::kReplace:
        return pattern.replace_all(text, content);
      case Kind::kStrip: {
        // Rust str::trim_start / trim_end: char::is_whitespace.
        std::u32string code_points = unicode::decode_utf8(text);
        std::size_t begin = 0, end = code_points.size();
        if (strip_left) {
          while (begin < end && unicode::is_white_space(code_points[begin])) ++begin;
        }
        if (strip_right) {
          while (end > begin && unicode::is_white_space(code_points[end - 1])) --end;
        }
        return unicode::encode_utf8(std::u32string_view(code_points).substr(begin, end - begin));
      }
      case Kind::kPrepend:
        return text.empty() ? text : content + text;  // Rust prepends nothing to an empty string
      case Kind::kLowercase: {
        std::u32string lowered;
        for (const char32_t c : unicode::decode_utf8(text)) unicode::append_lowercase(lowered, c);
        return unicode::encode_utf8(lowered);
      }
    }
    return text;
  }
};

// A tokenizer.json normalizer, flattened (Sequence inside Sequence is one list).
struct Normalizer {
  std::vector<NormalizerStep> steps;

  bool empty() const { return steps.empty(); }
  std::string normalize(std::string text) const {
    for (const NormalizerStep& step : steps) text = step.apply(std::move(text));
    return text;
  }
};

// Rust PrependScheme: when Metaspace puts the replacement before a piece of text.
enum class PrependScheme { kAlways, kFirst, kNever };

// The Metaspace pre-tokenizer: ' ' becomes the replacement (U+2581 '▁'), which is prepended to the
// piece (always; only to the piece at the start of the text; never), then the piece is split
// before every replacement (SplitDelimiterBehavior::MergedWithNext). Only U+0020 is replaced:
// tabs and newlines stay (T5's charsmap has already turned them into spaces).
struct Metaspace {
  std::string replacement = "\xE2\x96\x81";
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;

  // The words of one piece of normalized text; `at_text_start`: the piece starts the input text
  // (for PrependScheme::kFirst). Empty words are dropped, as Rust drops empty splits.
  std::vector<std::string> pre_tokenize(std::string_view normalized, bool at_text_start) const {
    std::string text;
    text.reserve(normalized.size() + replacement.size());
    const bool prepend =
        !normalized.empty() && normalized.compare(0, replacement.size(), replacement) != 0 && normalized[0] != ' ' &&
        (prepend_scheme == PrependScheme::kAlways || (prepend_scheme == PrependScheme::kFirst && at_text_start));
    if (prepend) text += replacement;
    for (const char c : normalized) {
      if (c == ' ') {
        text += replacement;
      } else {
        text.push_back(c);
      }
    }
    std::vector<std::string> words;
    if (text.empty()) return words;
    if (!split) {
      words.push_back(std::move(text));
      return words;
    }
    std::size_t begin = 0;
    for (std::size_t at = text.find(replacement, 1); at != std::string::npos; at = text.find(replacement, at + 1)) {
      if (at > begin) words.push_back(text.substr(begin, at - begin));
      begin = at;
    }
    words.push_back(text.substr(begin));
    return words;
  }
};

// One decoder step; a decoder turns the list of token strings into a new list (Rust decode_chain),
// and the last list is concatenated.
struct DecoderStep {
  enum class Kind { kMetaspace, kByteFallback, kFuse, kStrip, kReplace };
  Kind kind = Kind::kFuse;
  std::string replacement;                                  // kMetaspace
  PrependScheme prepend_scheme = PrependScheme::kAlways;   // kMetaspace
  char32_t strip_character = U' ';                          // kStrip
  std::size_t strip_start = 0, strip_stop = 0;              // kStrip
  ReplacePattern pattern;                                   // kReplace
  std::string content;                                      // kReplace

  std::vector<std::string> apply(std::vector<std::string> tokens) const {
    switch (kind) {
      case Kind::kMetaspace:
        // The replacement becomes ' ', except in the first token, where every one is dropped
        // (unless the scheme is kNever): Rust Metaspace::decode_chain.
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const bool drop = i == 0 && prepend_scheme != PrependScheme::kNever;
          tokens[i] = ReplacePattern{replacement}.replace_all(tokens[i], drop ? "" : " ");
        }
        return tokens;
      case Kind::kByteFallback:
        return byte_fallback(std::move(tokens));
      case Kind::kFuse: {
        std::string fused;
        for (const std::string& token : tokens) fused += token;
        return {fused};
      }
      case Kind::kStrip:
        for (std::string& token : tokens) token = strip(token);
        return tokens;
      case Kind::kReplace:
        for (std::string& token : tokens) token = pattern.replace_all(token, content);
        return tokens;
    }
    return tokens;
  }

 private:
  // Rust ByteFallback: runs of "<0xNN>" tokens become the string of their bytes, or one U+FFFD per
  // byte when those bytes are not valid UTF-8.
  static std::vector<std::string> byte_fallback(std::vector<std::string> tokens) {
    std::vector<std::string> decoded;
    std::string pending;
    std::size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (unicode::encode_utf8(unicode::decode_utf8(pending)) == pending) {
        decoded.push_back(pending);
      } else {
        for (std::size_t i = 0; i < pending_count; ++i) decoded.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    auto hex_value = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (std::string& token : tokens) {
      const bool is_byte = token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
                           hex_value(token[3]) >= 0 && hex_value(token[4]) >= 0;
      if (is_byte) {
        pending.push_back(static_cast<char>(hex_value(token[3]) * 16 + hex_value(token[4])));
        ++pending_count;
      } else {
        flush();
        decoded.push_back(std::move(token));
      }
    }
    flush();
    return decoded;
  }

  // Rust Strip decoder: up to strip_start leading and strip_stop trailing strip_character.
  std::string strip(const std::string& token) const {
    const std::u32string characters = unicode::decode_utf8(token);
    std::size_t begin = 0, end = characters.size();
    for (std::size_t i = 0; i < strip_start && i < characters.size() && characters[i] == strip_character; ++i) begin = i + 1;
    for (std::size_t i = 0; i < strip_stop && i < characters.size(); ++i) {
      const std::size_t index = characters.size() - i - 1;
      if (characters[index] != strip_character) break;
      end = index;
    }
    if (end < begin) end = begin;
    return unicode::encode_utf8(std::u32string_view(characters).substr(begin, end - begin));
  }
};

struct TokenizerDecoder {
  std::vector<DecoderStep> steps;

  // Rust Decoder::decode: the chain, then the pieces concatenated.
  std::string decode(std::vector<std::string> tokens) const {
    for (const DecoderStep& step : steps) tokens = step.apply(std::move(tokens));
    std::string text;
    for (const std::string& token : tokens) text += token;
    return text;
  }
};

// ---- tokenizer.json parsing ------------------------------------------------------------------------

namespace sentencepiece_detail {

inline std::string json_type(const nlohmann::json& object) {
  return object.is_object() && object.contains("type") && object.at("type").is_string()
             ? object.at("type").get<std::string>()
             : std::string();
}

// A Replace pattern: {"String": "..."} or {"Regex": "..."}; see ReplacePattern for the regexes
// that are understood.
inline ReplacePattern parse_replace_pattern(const nlohmann::json& pattern, const std::string& file) {
  if (pattern.contains("String")) {
    const std::string literal = pattern.at("String").get<std::string>();
    check(!literal.empty(), file, ": a Replace pattern is an empty string");
    return {literal, 1, 1};
  }
  check(pattern.contains("Regex"), file, ": a Replace pattern must be {\"String\": ...} or {\"Regex\": ...}, found ",
        clip(pattern.dump()));
  const std::string regex = pattern.at("Regex").get<std::string>();
  auto unsupported = [&]() {
    fail(file, ": Replace regex '", clip(regex),
         "' is not supported (only a literal, or one literal character repeated such as ' {2,}')");
  };
  static const std::string kMeta = "\\.^$|?*+()[]{}";
  if (regex.empty()) unsupported();
  if (regex.find_first_of(kMeta) == std::string::npos) return {regex, 1, 1};  // a plain literal
  // One character (escaped when it is a metacharacter), then a quantifier.
  std::string unit;
  if (regex[0] == '\\') {
    if (regex.size() < 2 || kMeta.find(regex[1]) == std::string::npos) unsupported();
    unit = regex.substr(1, 1);
  } else {
    if (kMeta.find(regex[0]) != std::string::npos) unsupported();
    unit = unicode::encode_utf8(std::u32string_view(unicode::decode_utf8(regex)).substr(0, 1));
  }
  const std::string quantifier = regex.substr(regex[0] == '\\' ? 2 : unit.size());
  constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();
  if (quantifier.empty()) return {unit, 1, 1};
  if (quantifier == "+") return {unit, 1, kUnbounded};
  if (quantifier.size() < 3 || quantifier.front() != '{' || quantifier.back() != '}') unsupported();
  const std::string inside = quantifier.substr(1, quantifier.size() - 2);
  const std::size_t comma = inside.find(',');
  auto number = [&](const std::string& digits) -> std::size_t {
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) {
      unsupported();
    }
    return static_cast<std::size_t>(std::stoul(digits));
  };
  const std::size_t low = number(inside.substr(0, comma));
  const std::size_t high = comma == std::string::npos   ? low
                           : comma + 1 == inside.size() ? kUnbounded
                                                        : number(inside.substr(comma + 1));
  if (low == 0 || high < low) unsupported();  // a pattern that can match "" is refused
  return {unit, low, high};
}

inline PrependScheme parse_prepend_scheme(const nlohmann::json& object, const std::string& file) {
  // Rust Metaspace's deserializer: prepend_scheme defaults to "always"; the legacy
  // add_prefix_space=false means "never" (and contradicts any other explicit scheme).
  PrependScheme scheme = PrependScheme::kAlways;
  if (object.contains("prepend_scheme") && !object.at("prepend_scheme").is_null()) {
    const std::string name = object.at("prepend_scheme").get<std::string>();
    if (name == "always") {
      scheme = PrependScheme::kAlways;
    } else if (name == "first") {
      scheme = PrependScheme::kFirst;
    } else if (name == "never") {
      scheme = PrependScheme::kNever;
    } else {
      fail(file, ": Metaspace prepend_scheme '", clip(name), "' is not one of always, first, never");
    }
  }
  if (object.contains("add_prefix_space") && object.at("add_prefix_space").is_boolean() &&
      !object.at("add_prefix_space").get<bool>()) {
    check(scheme == PrependScheme::kNever || !object.contains("prepend_scheme") || object.at("prepend_scheme").is_null(),
          file, ": Metaspace add_prefix_space does not match declared prepend_scheme");
    scheme = PrependScheme::kNever;
  }
  return scheme;
}

inline std::string parse_single_character(const nlohmann::json& object, const char* key, const std::string& file) {
  const std::string value = object.at(key).get<std::string>();
  check(unicode::decode_utf8(value).size() == 1, file, ": ", json_type(object), " ", key, " '", clip(value),
        "' must be one character");
  return value;
}

inline void append_normalizer(const nlohmann::json& object, const std::string& file, Normalizer& normalizer) {
  const std::string type = json_type(object);
  NormalizerStep step;
  if (type == "Sequence") {
    for (const nlohmann::json& inner : object.at("normalizers")) append_normalizer(inner, file, normalizer);
    return;
  } else if (type == "Precompiled") {
    // Rust refuses a missing or empty charsmap here (too short for its header), and so do we.
    const std::string bytes =
        text_detail::decode_base64(object.at("precompiled_charsmap").get<std::string>(), file + ": precompiled_charsmap");
    step.kind = NormalizerStep::Kind::kPrecompiled;
    step.charsmap = std::make_shared<const PrecompiledCharsmap>(bytes, file);
  } else if (type == "Replace") {
    step.kind = NormalizerStep::Kind::kReplace;
    step.pattern = parse_replace_pattern(object.at("pattern"), file);
    step.content = object.at("content").get<std::string>();
  } else if (type == "Strip") {
    step.kind = NormalizerStep::Kind::kStrip;
    step.strip_left = object.value("strip_left", false);
    step.strip_right = object.value("strip_right", false);
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::Kind::kPrepend;
    step.content = object.at("prepend").get<std::string>();
  } else if (type == "Lowercase") {
    step.kind = NormalizerStep::Kind::kLowercase;
  } else {
    fail(file, ": normalizer '", clip(type.empty() ? object.dump() : type),
         "' is not supported with a Unigram model (supported: Precompiled, Replace, Strip, Prepend, Lowercase, "
         "Sequence)");
  }
  normalizer.steps.push_back(std::move(step));
}

}  // namespace sentencepiece_detail

// tokenizer.json "normalizer" (null = none).
inline Normalizer parse_normalizer(const nlohmann::json& object, const std::string& file) {
  Normalizer normalizer;
  if (!object.is_null()) sentencepiece_detail::append_normalizer(object, file, normalizer);
  return normalizer;
}

// tokenizer.json "pre_tokenizer": Metaspace (also inside a one-element Sequence).
inline Metaspace parse_metaspace_pre_tokenizer(const nlohmann::json& object, const std::string& file) {
  const nlohmann::json* metaspace = &object;
  if (sentencepiece_detail::json_type(object) == "Sequence" && object.at("pretokenizers").size() == 1) {
    metaspace = &object.at("pretokenizers").at(0);
  }
  check(sentencepiece_detail::json_type(*metaspace) == "Metaspace", file,
        ": only the Metaspace pre-tokenizer is supported with a Unigram model, found ", clip(object.dump()));
  Metaspace result;
  result.replacement = sentencepiece_detail::parse_single_character(*metaspace, "replacement", file);
  result.prepend_scheme = sentencepiece_detail::parse_prepend_scheme(*metaspace, file);
  result.split = metaspace->value("split", true);
  return result;
}

// tokenizer.json "decoder".
inline TokenizerDecoder parse_decoder(const nlohmann::json& object, const std::string& file) {
  TokenizerDecoder decoder;
  const std::string type = sentencepiece_detail::json_type(object);
  if (type == "Sequence") {
    for (const nlohmann::json& inner : object.at("decoders")) {
      for (DecoderStep& step : parse_decoder(inner, file).steps) decoder.steps.push_back(std::move(step));
    }
    return decoder;
  }
  DecoderStep step;
  if (type == "Metaspace") {
    step.kind = DecoderStep::Kind::kMetaspace;
    step.replacement = sentencepiece_detail::parse_single_character(object, "replacement", file);
    step.prepend_scheme = sentencepiece_detail::parse_prepend_scheme(object, file);
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::Kind::kFuse;
  } else if (type == "Strip") {
    step.kind = DecoderStep::Kind::kStrip;
    step.strip_character = unicode::decode_utf8(sentencepiece_detail::parse_single_character(object, "content", file))[0];
    const std::int64_t start = json_integer(object.at("start"), file, "the Strip decoder's start");
    const std::int64_t stop = json_integer(object.at("stop"), file, "the Strip decoder's stop");
    check(start >= 0 && stop >= 0, file, ": the Strip decoder's start and stop must be >= 0, got ", start, " and ",
          stop);
    step.strip_start = static_cast<std::size_t>(start);
    step.strip_stop = static_cast<std::size_t>(stop);
  } else if (type == "Replace") {
    step.kind = DecoderStep::Kind::kReplace;
    step.pattern = sentencepiece_detail::parse_replace_pattern(object.at("pattern"), file);
    step.content = object.at("content").get<std::string>();
  } else {
    fail(file, ": decoder '", clip(type.empty() ? object.dump() : type),
         "' is not supported with a Unigram model (supported: Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence)");
  }
  decoder.steps.push_back(std::move(step));
  return decoder;
}

}  // namespace blip
