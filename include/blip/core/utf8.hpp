// blip/core/utf8.hpp: UTF-8 to code points and back, as Python does it.
//
// Used by the tokenizers (text/unicode.hpp) and the evaluation metrics
// (evaluation/unicode_text.hpp); it depends on nothing.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace blip::utf8 {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Decodes UTF-8. Invalid input cannot reach Hugging Face (a Python str always holds valid
// Unicode), so we do what Python's `bytes.decode("utf-8", errors="replace")` does: each maximal
// ill-formed subsequence (Unicode §3.9, "U+FFFD substitution of maximal subparts") becomes one
// U+FFFD. This covers overlong forms, UTF-16 surrogates (ED A0..BF ..), code points above
// U+10FFFF and truncated sequences.
inline std::u32string decode_utf8(std::string_view text) {
  std::u32string code_points;
  code_points.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      code_points.push_back(lead);
      ++i;
      continue;
    }
    int continuation_count;
    char32_t code_point;
    // The valid range of the first continuation byte depends on the lead byte; this is what
    // rules out overlong forms, surrogates and values above U+10FFFF (Unicode Table 3-7).
    unsigned char second_low = 0x80, second_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation_count = 1;
      code_point = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation_count = 2;
      code_point = lead & 0x0F;
      if (lead == 0xE0) second_low = 0xA0;
      if (lead == 0xED) second_high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation_count = 3;
      code_point = lead & 0x07;
      if (lead == 0xF0) second_low = 0x90;
      if (lead == 0xF4) second_high = 0x8F;
    } else {  // 0x80..0xC1 or 0xF5..0xFF can never start a sequence
      code_points.push_back(kReplacementCharacter);
      ++i;
      continue;
    }
    std::size_t next = i + 1;
    bool valid = true;
    for (int k = 0; k < continuation_count; ++k, ++next) {
      const unsigned char low = k == 0 ? second_low : 0x80, high = k == 0 ? second_high : 0xBF;
      if (next >= size || bytes[next] < low || bytes[next] > high) {
        valid = false;
        break;
      }
      code_point = (code_point << 6) | (bytes[next] & 0x3F);
    }
    // On failure the maximal subpart is [i, next): replace it and resume at the offending byte.
    code_points.push_back(valid ? code_point : kReplacementCharacter);
    i = next;
  }
  return code_points;
}

inline void append_utf8(std::string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

inline std::size_t utf8_length(char32_t code_point) {
  return code_point < 0x80 ? 1 : code_point < 0x800 ? 2 : code_point < 0x10000 ? 3 : 4;
}

inline std::string encode_utf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t code_point : code_points) append_utf8(out, code_point);
  return out;
}

}  // namespace blip::utf8
