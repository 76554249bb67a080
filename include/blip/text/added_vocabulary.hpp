// blip/text/added_vocabulary.hpp: the tokens added on top of a tokenizer model's vocabulary
// (tokenizer.json "added_tokens", special tokens, <image>), found in the text the way Hugging Face's
// Rust AddedVocabulary does (tokenizers 0.23, tokenizer/added_vocabulary.rs).
//
//   * Tokens with normalized=false are matched in the RAW text; then each piece between them is
//     normalized and the tokens with normalized=true are matched in the normalized text, against
//     their own normalized form. Both passes are leftmost-longest (aho-corasick LeftmostLongest)
//     and case-sensitive.
//   * lstrip / rstrip widen a match over the whitespace (Unicode White_Space) before / after it;
//     lstrip never reaches back into the previous match.
//   * Registering a content again (HF's add_tokens) keeps its id and replaces its flags, except that
//     a token once special stays in the special set, and a normalized form once computed stays
//     the token's decoding form (Rust never removes either).
//   * single_word needs Rust's \w and is refused when loading.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

// One added token with the flags Rust's AddedVocabulary honours.
struct AddedToken {
  std::string content;
  std::int64_t id = 0;
  bool special = true;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;  // matched after normalization (against its normalized form)
};

// One added token as tokenizer.json / tokenizer_config.json serialize it (the id is not read: it
// is keyed differently in each file). Missing flags take AddedToken's defaults, normalized = not
// special; single_word is refused (it needs Rust's \w, which we do not tabulate).
inline AddedToken added_token_from_json(const nlohmann::json& entry, const std::string& file) {
  AddedToken token;
  token.content = entry.at("content").get<std::string>();
  token.special = entry.value("special", false);
  token.lstrip = entry.value("lstrip", false);
  token.rstrip = entry.value("rstrip", false);
  token.normalized = entry.value("normalized", !token.special);
  check(!entry.value("single_word", false), file, ": added token '", clip(token.content),
        "' uses single_word, which is not supported");
  return token;
}

class AddedVocabulary {
 public:
  // A piece of text: [begin, end) in bytes, and the id when it is an added token.
  struct Piece {
    std::size_t begin = 0, end = 0;
    std::optional<std::int64_t> added_id;
  };

  // Registers `token` under token.id (Rust add_tokens once the id is chosen: see next_id). For a
  // normalized token, `normalized_form` is its content after the tokenizer's normalizer when that
  // differs (what it is matched against and decodes to). Call build_index() before split().
  void insert(const AddedToken& token, std::optional<std::string> normalized_form = std::nullopt) {
    check(!token.content.empty(), "added token with id ", token.id, " is empty");
    check(token.id >= 0 && token.id <= 0xFFFFFFFFLL, "added token '", clip(token.content), "' has id ", token.id,
          " outside 0..2^32-1");
    if (const auto previous = ids_by_content_.find(token.content); previous != ids_by_content_.end() &&
                                                                   previous->second != token.id) {
      tokens_by_id_.erase(previous->second);
    }
    ids_by_content_[token.content] = token.id;
    tokens_by_id_[token.id] = token;
    if (token.special) special_contents_.insert(token.content);
    if (token.normalized && normalized_form && *normalized_form != token.content) {
      check(!normalized_form->empty(), "added token '", clip(token.content), "' normalizes to nothing and cannot be matched");
      normalized_forms_[token.id] = *normalized_form;
    }
    index_built_ = false;
  }

  // The id Rust gives a content that neither this vocabulary nor the model knows: the model's
  // size, or one past the largest added id when that is already beyond it.
  std::int64_t next_id(std::int64_t model_size) const {
    if (tokens_by_id_.empty()) return model_size;
    const std::int64_t largest = tokens_by_id_.rbegin()->first;
    return largest >= model_size || model_size == 0 ? largest + 1 : model_size;
  }

  std::optional<std::int64_t> token_to_id(std::string_view content) const {
    const auto found = ids_by_content_.find(std::string(content));
    if (found == ids_by_content_.end()) return std::nullopt;
    return found->second;
  }
  // Rust simple_id_to_token: the decoding form (the normalized form for a normalized token).
  std::optional<std::string> id_to_token(std::int64_t id) const {
    if (const auto normalized = normalized_forms_.find(id); normalized != normalized_forms_.end()) {
      return normalized->second;
    }
    const auto found = tokens_by_id_.find(id);
    if (found == tokens_by_id_.end()) return std::nullopt;
    return found->second.content;
  }
  const std::unordered_map<std::string, std::int64_t>& ids_by_content() const { return ids_by_content_; }
  const AddedToken* find(std::int64_t id) const {
    const auto found = tokens_by_id_.find(id);
    return found == tokens_by_id_.end() ? nullptr : &found->second;
  }
  // Whether decode(skip_special_tokens=True) drops this token string (Rust is_special_token).
  bool is_special_token(std::string_view token) const { return special_contents_.count(std::string(token)) > 0; }
  // Whether the token at `id` is special (decode(skip_special_tokens=True) drops it).
  bool is_special_id(std::int64_t id) const {
    const auto found = tokens_by_id_.find(id);
    return found != tokens_by_id_.end() && special_contents_.count(found->second.content) > 0;
  }
  // The ids of the special tokens, ascending.
  std::vector<std::int64_t> special_ids() const {
    std::vector<std::int64_t> ids;
    for (const auto& [id, token] : tokens_by_id_) {
      if (special_contents_.count(token.content) > 0) ids.push_back(id);
    }
    return ids;
  }
  // One past the largest id (0 when empty).
  std::int64_t end_id() const { return tokens_by_id_.empty() ? 0 : tokens_by_id_.rbegin()->first + 1; }
  bool empty() const { return tokens_by_id_.empty(); }
  bool has_normalized_tokens() const {
    return std::any_of(tokens_by_id_.begin(), tokens_by_id_.end(), [](const auto& entry) { return entry.second.normalized; });
  }

  // Prepares the matching tables; call once all tokens are in.
  void build_index() {
    for (auto& buckets : candidates_) {
      for (auto& bucket : buckets) bucket.clear();
    }
    for (const auto& [id, token] : tokens_by_id_) {
      const std::string& pattern = pattern_of(token);
      candidates_[token.normalized ? 1 : 0][static_cast<unsigned char>(pattern[0])].push_back(id);
    }
    for (auto& buckets : candidates_) {
      for (auto& bucket : buckets) {
        // Longest first, so that the first match at a position is the longest one there.
        std::stable_sort(bucket.begin(), bucket.end(), [&](std::int64_t a, std::int64_t b) {
          return pattern_of(tokens_by_id_.at(a)).size() > pattern_of(tokens_by_id_.at(b)).size();
        });
      }
    }
    index_built_ = true;
  }

  // Rust find_matches: `text` (UTF-8) cut into added tokens of one pass (`normalized` picks which
  // tokens) and the text between them. Covers the whole text; empty text gives one empty piece.
  std::vector<Piece> split(std::string_view text, bool normalized) const {
    check(index_built_, "AddedVocabulary::split before build_index()");
    std::vector<Piece> pieces;
    const auto& buckets = candidates_[normalized ? 1 : 0];
    std::size_t offset = 0;  // end of the previous piece
    for (std::size_t position = 0; position < text.size();) {
      const AddedToken* matched = nullptr;
      std::size_t length = 0;
      for (const std::int64_t id : buckets[static_cast<unsigned char>(text[position])]) {
        const AddedToken& token = tokens_by_id_.at(id);
        const std::string& pattern = pattern_of(token);
        if (text.compare(position, pattern.size(), pattern) == 0) {
          matched = &token;
          length = pattern.size();
          break;
        }
      }
      if (matched == nullptr) {
        ++position;
        continue;
      }
      std::size_t start = position, stop = position + length;
      if (matched->lstrip) start = std::max(whitespace_start_before(text, start), offset);
      if (matched->rstrip) stop = whitespace_end_after(text, stop);
      if (offset < start) pieces.push_back({offset, start, std::nullopt});
      pieces.push_back({start, stop, matched->id});
      offset = stop;
      // Rust's matcher goes on from the end of the match itself, not of its rstrip.
      position += length;
    }
    if (offset < text.size() || pieces.empty()) pieces.push_back({offset, text.size(), std::nullopt});
    return pieces;
  }

 private:
  const std::string& pattern_of(const AddedToken& token) const {
    if (token.normalized) {
      if (const auto normalized = normalized_forms_.find(token.id); normalized != normalized_forms_.end()) {
        return normalized->second;
      }
    }
    return token.content;
  }

  // Where the run of whitespace that ends at `end` starts (Rust's `\s*$` on text[..end]).
  static std::size_t whitespace_start_before(std::string_view text, std::size_t end) {
    while (end > 0) {
      std::size_t lead = end - 1;
      while (lead > 0 && (static_cast<unsigned char>(text[lead]) & 0xC0) == 0x80) --lead;
      const std::u32string character = unicode::decode_utf8(text.substr(lead, end - lead));
      if (character.size() != 1 || !unicode::is_white_space(character[0])) break;
      end = lead;
    }
    return end;
  }
  // Where the run of whitespace that starts at `begin` ends (Rust's `^\s*` on text[begin..]).
  static std::size_t whitespace_end_after(std::string_view text, std::size_t begin) {
    while (begin < text.size()) {
      std::size_t next = begin + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      const std::u32string character = unicode::decode_utf8(text.substr(begin, next - begin));
      if (character.size() != 1 || !unicode::is_white_space(character[0])) break;
      begin = next;
    }
    return begin;
  }

  std::map<std::int64_t, AddedToken> tokens_by_id_;
  std::unordered_map<std::string, std::int64_t> ids_by_content_;
  std::unordered_set<std::string> special_contents_;
  std::unordered_map<std::int64_t, std::string> normalized_forms_;
  // [pass][first byte of the pattern] -> ids, longest pattern first.
  std::array<std::array<std::vector<std::int64_t>, 256>, 2> candidates_;
  bool index_built_ = false;
};

}  // namespace blip
