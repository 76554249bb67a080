// blip/text/precompiled_charsmap.hpp: SentencePiece's precompiled normalization charsmap, read and
// applied the way Hugging Face's `Precompiled` normalizer does (Rust crate spm_precompiled 0.1.4
// inside tokenizers 0.23).
//
// The charsmap (normalizer_spec.precompiled_charsmap in spiece.model, base64 in tokenizer.json) is
//   [u32 little-endian: trie size in bytes][trie: size / 4 little-endian u32 units][replacements]
// The trie is a Darts double array over UTF-8 bytes whose leaves hold an offset into the
// replacements blob; a replacement runs up to the next NUL byte. (A trie size that is not a multiple
// of 4 leaves its last bytes to the replacements blob, as the Rust parser does.)
//
// Applying it (Rust `Precompiled::normalize`), per extended grapheme cluster of the text:
//   * a cluster shorter than 6 UTF-8 bytes is looked up whole, and if found is replaced whole;
//   * otherwise (or when the whole cluster is not found) each character is looked up alone.
// A lookup returns the replacement of the SHORTEST key that is a prefix of the looked-up bytes, so
// a short cluster whose first character alone is a key loses the characters after it: fullwidth
// "Ａ" + U+0301 becomes "A". The Rust code says "this seems broken" and keeps it for parity with
// its tests; so do we. SentencePiece itself (and so the slow T5Tokenizer) walks the text by longest
// match instead, which is why the two differ on long combining sequences.
//
// The Rust code indexes the array without bounds checks (a corrupt file panics there); here every
// index is checked and a corrupt charsmap is a blip::Error naming where it came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/text/grapheme_clusters.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

namespace text_detail {

// RFC 4648 base64 with padding, strictly (Rust base64's STANDARD engine: canonical '=' padding, no
// whitespace, unused trailing bits zero). `what` names the data for the error message.
inline std::string decode_base64(std::string_view text, const std::string& what) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  check(text.size() % 4 == 0, what, ": base64 length ", text.size(), " is not a multiple of 4");
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  const std::size_t data_size = text.size() - padding;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < data_size; ++i) {
    const int value = value_of(text[i]);
    check(value >= 0, what, ": invalid base64 character at offset ", i);
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  check((buffer & ((1u << bits) - 1)) == 0, what, ": base64 has non-zero trailing bits");
  return bytes;
}

}  // namespace text_detail

class PrecompiledCharsmap {
 public:
  // `bytes`: the raw charsmap. `source` names it in error messages ("…/spiece.model").
  PrecompiledCharsmap(std::string_view bytes, std::string source) : source_(std::move(source)) {
    check(bytes.size() >= 4, source_, ": precompiled_charsmap of ", bytes.size(),
          " bytes is too short for its 4-byte trie size");
    const std::uint32_t trie_bytes = read_u32(bytes, 0);
    const std::size_t unit_count = trie_bytes / 4;
    check(unit_count <= (bytes.size() - 4) / 4, source_, ": precompiled_charsmap says its trie has ", trie_bytes,
          " bytes, but only ", bytes.size() - 4, " follow");
    check(unit_count > 0, source_, ": precompiled_charsmap has an empty trie");
    units_.resize(unit_count);
    for (std::size_t i = 0; i < unit_count; ++i) units_[i] = read_u32(bytes, 4 + 4 * i);
    replacements_.assign(bytes.substr(4 + 4 * unit_count));
    // Rust refuses a replacements blob that is not UTF-8 (String::from_utf8).
    check(unicode::encode_utf8(unicode::decode_utf8(replacements_)) == replacements_, source_,
          ": precompiled_charsmap replacements are not valid UTF-8");
  }

  const std::string& source() const { return source_; }
  std::size_t unit_count() const { return units_.size(); }

  // Rust `Precompiled::transform`: the replacement of the shortest key that is a prefix of
  // `chunk` (the search stops at a NUL byte), or nullopt when no key is.
  std::optional<std::string_view> transform(std::string_view chunk) const {
    std::size_t position = offset_of(unit_at(0));
    for (const char byte : chunk) {
      const auto label = static_cast<unsigned char>(byte);
      if (label == 0) break;
      position ^= label;
      const std::uint32_t unit = unit_at(position);
      if (label_of(unit) != label) return std::nullopt;
      position ^= offset_of(unit);
      if (has_leaf(unit)) return replacement_at(value_of(unit_at(position)));
    }
    return std::nullopt;
  }

  // Rust `Precompiled::normalize` on UTF-8 text (see the file comment).
  std::string normalize(std::string_view text) const {
    std::string normalized;
    normalized.reserve(text.size());
    const std::u32string code_points = unicode::decode_utf8(text);
    std::string cluster, character;
    std::size_t begin = 0;
    for (const std::size_t end : unicode::grapheme_cluster_ends(code_points)) {
      cluster.clear();
      for (std::size_t i = begin; i < end; ++i) unicode::append_utf8(cluster, code_points[i]);
      std::optional<std::string_view> whole;
      if (cluster.size() < 6) whole = transform(cluster);
      if (whole) {
        normalized += *whole;
      } else {
        for (std::size_t i = begin; i < end; ++i) {
          character.clear();
          unicode::append_utf8(character, code_points[i]);
          const std::optional<std::string_view> replacement = transform(character);
          normalized += replacement ? *replacement : std::string_view(character);
        }
      }
      begin = end;
    }
    return normalized;
  }

 private:
  // Darts-clone's unit layout (spm_precompiled's ArrayUnit).
  static bool has_leaf(std::uint32_t unit) { return ((unit >> 8) & 1) == 1; }
  static std::uint32_t value_of(std::uint32_t unit) { return unit & ((1u << 31) - 1); }
  static std::uint32_t label_of(std::uint32_t unit) { return unit & ((1u << 31) | 0xFF); }
  static std::size_t offset_of(std::uint32_t unit) {
    return static_cast<std::size_t>(unit >> 10) << ((unit & (1u << 9)) >> 6);
  }

  static std::uint32_t read_u32(std::string_view bytes, std::size_t at) {
    std::uint32_t value = 0;
    for (int k = 3; k >= 0; --k) value = (value << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(k)]);
    return value;
  }

  std::uint32_t unit_at(std::size_t position) const {
    if (position >= units_.size()) {
      fail(source_, ": corrupt precompiled_charsmap: trie index ", position, " is outside its ", units_.size(),
           " units");
    }
    return units_[position];
  }

  std::string_view replacement_at(std::size_t offset) const {
    // Rust slices the blob at `offset`, which must be inside it and on a character boundary.
    if (offset > replacements_.size() ||
        (offset < replacements_.size() && (static_cast<unsigned char>(replacements_[offset]) & 0xC0) == 0x80)) {
      fail(source_, ": corrupt precompiled_charsmap: replacement offset ", offset, " is not a character start in its ",
           replacements_.size(), "-byte replacement table");
    }
    const std::size_t end = replacements_.find('\0', offset);
    return std::string_view(replacements_).substr(offset, (end == std::string::npos ? replacements_.size() : end) - offset);
  }

  std::string source_;
  std::vector<std::uint32_t> units_;
  std::string replacements_;
};

}  // namespace blip
