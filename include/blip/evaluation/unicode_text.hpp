// blip/evaluation/unicode_text.hpp: the little Unicode the metrics need: UTF-8 in and out, the
// whitespace that Python's str.split() / str.strip() use, and lower-casing as Java's
// String.toLowerCase and Python's str.lower() do it for the scripts English captions and answers meet.
//
// The evaluation folder depends on core/ only (UTF-8: core/utf8.hpp), so it does not use
// text/unicode.hpp (the tokenizers' exact tables). What is covered here, and what is not:
//   * Lower-casing: ASCII, Latin-1, Latin Extended-A, the regular part of Latin Extended-B
//     (U+0200..U+0233), Latin Extended Additional, Greek (with final sigma), Cyrillic, Armenian and
//     fullwidth Latin; U+0130 becomes "i" + U+0307 as both Java and Python do. Other scripts' capitals
//     (Georgian, Cherokee, Deseret, ...) are left as they are.
//   * Whitespace: exactly Python's str.isspace() set.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "blip/core/utf8.hpp"

namespace blip::evaluation {

// UTF-8 in and out: core/utf8.hpp (Python's decoding, each ill-formed subsequence one U+FFFD; JSON files
// that nlohmann accepted are valid UTF-8, so that only matters for text built in code).
using ::blip::utf8::append_utf8;
using ::blip::utf8::decode_utf8;
using ::blip::utf8::encode_utf8;

// Python's str.isspace(): what str.split() with no argument and str.strip() remove.
inline bool is_python_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's `text.split()`: the runs of non-whitespace.
inline std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  const std::u32string code_points = decode_utf8(text);
  std::size_t i = 0;
  while (i < code_points.size()) {
    while (i < code_points.size() && is_python_whitespace(code_points[i])) ++i;
    const std::size_t begin = i;
    while (i < code_points.size() && !is_python_whitespace(code_points[i])) ++i;
    if (i > begin) words.push_back(encode_utf8(std::u32string_view(code_points).substr(begin, i - begin)));
  }
  return words;
}

// Python's `text.strip()`.
inline std::string strip_whitespace(std::string_view text) {
  const std::u32string code_points = decode_utf8(text);
  std::size_t begin = 0, end = code_points.size();
  while (begin < end && is_python_whitespace(code_points[begin])) ++begin;
  while (end > begin && is_python_whitespace(code_points[end - 1])) --end;
  return encode_utf8(std::u32string_view(code_points).substr(begin, end - begin));
}

namespace unicode_detail {

inline bool is_cased_letter_for_sigma(char32_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) ||
         (c >= 0x370 && c <= 0x3FF) || (c >= 0x400 && c <= 0x52F) || (c >= 0x1E00 && c <= 0x1FFF);
}

// The lower-case form of one code point; 0 when it maps to more than one (only U+0130 here).
inline char32_t lower_simple(char32_t c) {
  const auto even_to_odd = [c]() { return (c % 2 == 0) ? c + 1 : c; };
  const auto odd_to_even = [c]() { return (c % 2 == 1) ? c + 1 : c; };
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c < 0x100) return c;
  if (c == 0x130) return 0;
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return even_to_odd();
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return odd_to_even();
  if (c == 0x178) return 0xFF;
  if ((c >= 0x200 && c <= 0x233)) return even_to_odd();
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) return even_to_odd();
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE) return odd_to_even();
  if (c >= 0x531 && c <= 0x556) return c + 48;
  if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF)) return even_to_odd();
  if (c == 0x1E9E) return 0xDF;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  return c;
}

}  // namespace unicode_detail

// Lower-cases as Java's toLowerCase(Locale.ENGLISH) and Python's str.lower() do, for the scripts
// listed at the top of this file. A capital sigma that ends a word becomes final sigma (U+03C2).
inline std::u32string to_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x3A3) {
      const bool after_letter = i > 0 && unicode_detail::is_cased_letter_for_sigma(text[i - 1]);
      const bool before_letter = i + 1 < text.size() && unicode_detail::is_cased_letter_for_sigma(text[i + 1]);
      out.push_back(after_letter && !before_letter ? 0x3C2 : 0x3C3);
    } else if (const char32_t lower = unicode_detail::lower_simple(c); lower == 0) {
      out += U"i\u0307";
    } else {
      out.push_back(lower);
    }
  }
  return out;
}

inline std::string to_lower_utf8(std::string_view text) {
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    std::string out(text);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  return encode_utf8(to_lower(decode_utf8(text)));
}

}  // namespace blip::evaluation
