// blip/text/grapheme_clusters.hpp: extended grapheme clusters (Unicode UAX #29), as the Rust crate
// unicode-segmentation 1.13 finds them (`str::graphemes(true)`).
//
// Only the Precompiled (SentencePiece charsmap) normalizer of the T5 tokenizer needs them: Hugging
// Face looks a cluster shorter than 6 UTF-8 bytes up as a whole (see precompiled_charsmap.hpp).
// The rules, in the order that crate applies them to the pair of code points around a position:
//   GB3   CR × LF
//   GB4/5 break after and before Control, CR, LF
//   GB6-8 Hangul syllable sequences (L × L V LV LVT; LV V × V T; LVT T × T)
//   GB9   × Extend, ZWJ          GB9a × SpacingMark          GB9b Prepend ×
//   GB9c  InCB=Consonant [InCB=Extend InCB=Linker]* InCB=Linker [InCB=Extend InCB=Linker]* × InCB=Consonant
//   GB11  Extended_Pictographic Extend* ZWJ × Extended_Pictographic
//   GB12/13 a Regional_Indicator pairs with the one before it when an odd number of them precede
//   GB999 break everywhere else.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <vector>

#include "blip/text/grapheme_tables.hpp"

namespace blip::unicode {

using tables::GraphemeBreak;

inline GraphemeBreak grapheme_break(char32_t c) {
  // unicode-segmentation's own ASCII shortcut (U+007F goes through the table: Control).
  if (c < 0x7F) {
    if (c >= 0x20) return GraphemeBreak::kAny;
    if (c == '\n') return GraphemeBreak::kLineFeed;
    if (c == '\r') return GraphemeBreak::kCarriageReturn;
    return GraphemeBreak::kControl;
  }
  // Hangul syllables: the generated table leaves them out (they alternate LV, then 27 LVT).
  if (c >= 0xAC00 && c <= 0xD7A3) {
    return (c - 0xAC00) % 28 == 0 ? GraphemeBreak::kHangulLeadingVowel : GraphemeBreak::kHangulLeadingVowelTrailing;
  }
  const auto* begin = std::begin(tables::kGraphemeBreakRanges);
  const auto* end = std::end(tables::kGraphemeBreakRanges);
  const auto* range = std::upper_bound(begin, end, c, [](char32_t x, const auto& r) { return x < r.first; });
  if (range == begin) return GraphemeBreak::kAny;
  --range;
  return c <= range->last ? range->value : GraphemeBreak::kAny;
}

inline bool is_indic_conjunct_linker(char32_t c) {
  return std::find(std::begin(tables::kIndicConjunctLinkers), std::end(tables::kIndicConjunctLinkers), c) !=
         std::end(tables::kIndicConjunctLinkers);
}

inline bool is_indic_conjunct_extend(char32_t c) {
  const auto* begin = std::begin(tables::kIndicConjunctExtendRanges);
  const auto* end = std::end(tables::kIndicConjunctExtendRanges);
  const auto* range = std::upper_bound(begin, end, c, [](char32_t x, const auto& r) { return x < r.first; });
  return range != begin && c <= (range - 1)->last;
}

// The end index (exclusive) of each extended grapheme cluster of `text`, in order; the last is
// text.size(). Empty text has no clusters. Linear: the look-behind of GB9c, GB11 and GB12 is
// carried along as state instead of rescanned.
inline std::vector<std::size_t> grapheme_cluster_ends(std::u32string_view text) {
  std::vector<std::size_t> ends;
  if (text.empty()) return ends;
  using B = GraphemeBreak;
  // State describing text[0, i): how many Regional_Indicators end it; whether it ends in
  // Extended_Pictographic Extend* (before) and Extended_Pictographic Extend* ZWJ (gb11_ready);
  // whether it ends in InCB=Consonant [Extend|Linker]* with at least one Linker (GB9c).
  std::size_t regional_run = 0;
  bool pictographic_extends = false, gb11_ready = false;
  bool conjunct_consonant = false, conjunct_linker = false;
  auto absorb = [&](char32_t c, B category) {
    regional_run = category == B::kRegionalIndicator ? regional_run + 1 : 0;
    gb11_ready = category == B::kZeroWidthJoiner && pictographic_extends;
    if (category == B::kExtendedPictographic) {
      pictographic_extends = true;
    } else if (category != B::kExtend) {
      pictographic_extends = false;
    }
    if (is_indic_conjunct_linker(c)) {
      conjunct_linker = conjunct_consonant;
    } else if (!is_indic_conjunct_extend(c)) {
      conjunct_consonant = category == B::kIndicConjunctConsonant;
      conjunct_linker = false;
    }
  };
  B before = grapheme_break(text[0]);
  absorb(text[0], before);
  for (std::size_t i = 1; i < text.size(); ++i) {
    const B after = grapheme_break(text[i]);
    bool is_break;
    if (before == B::kCarriageReturn && after == B::kLineFeed) {  // GB3
      is_break = false;
    } else if (before == B::kControl || before == B::kCarriageReturn || before == B::kLineFeed ||
               after == B::kControl || after == B::kCarriageReturn || after == B::kLineFeed) {  // GB4, GB5
      is_break = true;
    } else if (before == B::kHangulLeading &&
               (after == B::kHangulLeading || after == B::kHangulVowel || after == B::kHangulLeadingVowel ||
                after == B::kHangulLeadingVowelTrailing)) {  // GB6
      is_break = false;
    } else if ((before == B::kHangulLeadingVowel || before == B::kHangulVowel) &&
               (after == B::kHangulVowel || after == B::kHangulTrailing)) {  // GB7
      is_break = false;
    } else if ((before == B::kHangulLeadingVowelTrailing || before == B::kHangulTrailing) &&
               after == B::kHangulTrailing) {  // GB8
      is_break = false;
    } else if (after == B::kExtend || after == B::kZeroWidthJoiner || after == B::kSpacingMark ||
               before == B::kPrepend) {  // GB9, GB9a, GB9b
      is_break = false;
    } else if (after == B::kIndicConjunctConsonant) {  // GB9c
      is_break = !(conjunct_consonant && conjunct_linker);
    } else if (before == B::kZeroWidthJoiner && after == B::kExtendedPictographic) {  // GB11
      is_break = !gb11_ready;
    } else if (before == B::kRegionalIndicator && after == B::kRegionalIndicator) {  // GB12, GB13
      is_break = regional_run % 2 == 0;
    } else {  // GB999
      is_break = true;
    }
    if (is_break) ends.push_back(i);
    absorb(text[i], after);
    before = after;
  }
  ends.push_back(text.size());
  return ends;
}

}  // namespace blip::unicode
