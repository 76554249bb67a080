// blip/text/unicode.hpp: UTF-8 and the few Unicode algorithms the tokenizers need.
//
// Hugging Face's fast tokenizers are Rust code whose character classes come from several
// sources, each frozen at its own Unicode version. Matching them exactly means using THOSE
// versions, not the newest Unicode (see unicode_tables.hpp and weights_tools/unicode/):
//   * unicode_categories 0.1.1 (Unicode 8.0 data): control/format/private-use, punctuation and
//     nonspacing-mark classes. A character assigned after 8.0 (newer emoji, newer scripts) is
//     none of these, so it is neither dropped nor split off: it becomes [UNK].
//   * unicode-normalization-alignments 0.1.12 (Unicode 9.0): NFD.
//   * Rust's standard library (rustc 1.98, Unicode 17.0): char::to_lowercase, char::is_whitespace.
//   * Oniguruma 6.9.10 (onig_sys 69.9, Unicode 16.0): \p{L} and \p{N} of the GPT-2 / OPT
//     pre-tokenizer regex. Its \s is the White_Space property, the same set as char::is_whitespace.
//
// Text is handled as UTF-32 (std::u32string) between decoding and the vocabulary lookup.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "blip/core/utf8.hpp"
#include "blip/text/unicode_tables.hpp"

namespace blip::unicode {

// UTF-8 in and out (core/utf8.hpp), shared with the evaluation metrics.
using ::blip::utf8::append_utf8;
using ::blip::utf8::decode_utf8;
using ::blip::utf8::encode_utf8;
using ::blip::utf8::kMaxCodePoint;
using ::blip::utf8::kReplacementCharacter;
using ::blip::utf8::utf8_length;

// ---- table lookups ----------------------------------------------------------------------------

namespace detail {
template <std::size_t N>
bool in_ranges(const tables::CodePointRange (&ranges)[N], char32_t code_point) {
  // First range whose end is >= code_point; the ranges are sorted and disjoint.
  const auto* found = std::lower_bound(std::begin(ranges), std::end(ranges), code_point,
                                       [](const tables::CodePointRange& range, char32_t value) {
                                         return range.last < value;
                                       });
  return found != std::end(ranges) && found->first <= code_point;
}
}  // namespace detail

// unicode_categories 0.1.1 `is_other()`: Cc, Cf or Co in Unicode 8.0 (despite its doc comment,
// not Cn: unassigned code points are kept).
inline bool is_control_format_or_private_use(char32_t code_point) {
  return detail::in_ranges(tables::kUnicode8Other, code_point);
}

// unicode_categories 0.1.1 `is_punctuation()`: general category P* in Unicode 8.0.
inline bool is_punctuation(char32_t code_point) {
  return detail::in_ranges(tables::kUnicode8Punctuation, code_point);
}

// unicode_categories 0.1.1 `is_mark_nonspacing()`: general category Mn in Unicode 8.0.
inline bool is_nonspacing_mark(char32_t code_point) {
  return detail::in_ranges(tables::kUnicode8NonspacingMarks, code_point);
}

// Rust `char::is_whitespace`: the White_Space property (Unicode 17.0).
inline bool is_white_space(char32_t code_point) {
  if (code_point == ' ' || (code_point >= 0x09 && code_point <= 0x0D)) return true;
  return code_point > 0x7F && detail::in_ranges(tables::kUnicode17WhiteSpace, code_point);
}

// Oniguruma `\p{L}` (General_Category L*, Unicode 16.0): the letters of the GPT-2 / OPT
// pre-tokenizer regex.
inline bool is_letter(char32_t code_point) {
  if (code_point < 0x80) return (code_point | 0x20) >= 'a' && (code_point | 0x20) <= 'z';
  return detail::in_ranges(tables::kUnicode16Letter, code_point);
}

// Oniguruma `\p{N}` (General_Category N*, Unicode 16.0): the numbers of the GPT-2 / OPT
// pre-tokenizer regex.
inline bool is_number(char32_t code_point) {
  if (code_point < 0x80) return code_point >= '0' && code_point <= '9';
  return detail::in_ranges(tables::kUnicode16Number, code_point);
}

// Rust `char::is_ascii_punctuation`: ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~
inline bool is_ascii_punctuation(char32_t code_point) {
  return (code_point >= 33 && code_point <= 47) || (code_point >= 58 && code_point <= 64) ||
         (code_point >= 91 && code_point <= 96) || (code_point >= 123 && code_point <= 126);
}

// Canonical combining class (Unicode 9.0), 0 for starters.
inline std::uint8_t canonical_combining_class(char32_t code_point) {
  const auto& ranges = tables::kUnicode9CombiningClasses;
  const auto* found = std::lower_bound(std::begin(ranges), std::end(ranges), code_point,
                                       [](const tables::CombiningClassRange& range, char32_t value) {
                                         return range.last < value;
                                       });
  return found != std::end(ranges) && found->first <= code_point ? found->combining_class : 0;
}

// ---- Hangul (Unicode §3.12): syllables decompose algorithmically ------------------------------
inline constexpr char32_t kHangulSyllableBase = 0xAC00, kHangulLeadBase = 0x1100, kHangulVowelBase = 0x1161,
                          kHangulTrailBase = 0x11A7;
inline constexpr char32_t kHangulVowelCount = 21, kHangulTrailCount = 28, kHangulSyllableCount = 11172;

// Appends the full canonical decomposition of one code point (Unicode 9.0), or the code point
// itself when it has none.
inline void append_canonical_decomposition(std::u32string& out, char32_t code_point) {
  if (code_point < 0xC0) {  // nothing below U+00C0 decomposes
    out.push_back(code_point);
    return;
  }
  if (code_point >= kHangulSyllableBase && code_point < kHangulSyllableBase + kHangulSyllableCount) {
    const char32_t index = code_point - kHangulSyllableBase;
    out.push_back(kHangulLeadBase + index / (kHangulVowelCount * kHangulTrailCount));
    out.push_back(kHangulVowelBase + (index % (kHangulVowelCount * kHangulTrailCount)) / kHangulTrailCount);
    if (index % kHangulTrailCount != 0) out.push_back(kHangulTrailBase + index % kHangulTrailCount);
    return;
  }
  const auto& entries = tables::kUnicode9Decompositions;
  const auto* found = std::lower_bound(std::begin(entries), std::end(entries), code_point,
                                       [](const tables::Decomposition& entry, char32_t value) {
                                         return entry.code_point < value;
                                       });
  if (found != std::end(entries) && found->code_point == code_point) {
    out.append(tables::kUnicode9DecompositionData + found->offset, found->length);
  } else {
    out.push_back(code_point);
  }
}

// Canonical decomposition (NFD, Unicode 9.0): decompose every code point, then put each run of
// non-starters in canonical order (a stable sort by combining class), as
// unicode-normalization's Decompositions iterator does.
inline std::u32string nfd(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size() + text.size() / 4);
  for (char32_t code_point : text) append_canonical_decomposition(out, code_point);
  std::size_t i = 0;
  while (i < out.size()) {
    if (canonical_combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t run_end = i + 1;
    while (run_end < out.size() && canonical_combining_class(out[run_end]) != 0) ++run_end;
    if (run_end - i > 1) {
      std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(run_end),
                       [](char32_t a, char32_t b) { return canonical_combining_class(a) < canonical_combining_class(b); });
    }
    i = run_end;
  }
  return out;
}

// Rust `char::to_lowercase` (Unicode 17.0), appended to `out`. It maps one code point at a time,
// so Greek capital sigma always becomes σ, never the final form ς.
inline void append_lowercase(std::u32string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(code_point >= 'A' && code_point <= 'Z' ? code_point + 32 : code_point);
    return;
  }
  if (code_point == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: SpecialCasing, two code points
    out.push_back(0x69);
    out.push_back(0x307);
    return;
  }
  const auto& runs = tables::kUnicode17Lowercase;
  // Last run starting at or before code_point.
  const auto* found = std::upper_bound(std::begin(runs), std::end(runs), code_point,
                                       [](char32_t value, const tables::CaseRun& run) { return value < run.first; });
  if (found != std::begin(runs)) {
    const tables::CaseRun& run = *(found - 1);
    const char32_t offset = code_point - run.first;
    if (offset % run.stride == 0 && offset / run.stride < run.count) {
      out.push_back(static_cast<char32_t>(static_cast<std::int64_t>(code_point) + run.delta));
      return;
    }
  }
  out.push_back(code_point);
}

}  // namespace blip::unicode
