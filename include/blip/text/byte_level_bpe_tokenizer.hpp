// blip/text/byte_level_bpe_tokenizer.hpp: BLIP-2 OPT's (and GPT-2's) byte-level BPE tokenizer,
// identical to Hugging Face's GPT2TokenizerFast (Rust `tokenizers` 0.23: AddedVocabulary,
// ByteLevel pre-tokenizer, BPE model, TemplateProcessing, ByteLevel decoder) plus transformers'
// Python-side steps.
//
// encode(text):
//   1. Added tokens are found in the RAW text, case-sensitively, leftmost-longest, in Rust's two
//      passes: first the tokens with normalized=false (OPT: <image>), then, in the text between
//      them, the tokens with normalized=true (OPT: <pad>, </s>; there is no normalizer, so they
//      too match the raw text). lstrip / rstrip widen a match over the whitespace before / after
//      it (Rust char::is_whitespace). The text between added tokens is tokenized alone.
//   2. ByteLevel pre-tokenizer: with add_prefix_space (OPT: false), a ' ' is prepended to each
//      non-empty piece that does not start with one; then the GPT-2 regex splits it
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (implemented by hand below, with Oniguruma's Unicode 16.0 classes), and every UTF-8 byte
//      of a word becomes one printable character through GPT-2's bytes_to_unicode table
//      (' ' -> 'Ġ', '\n' -> 'Ċ').
//   3. BPE: the word's characters are merged pairwise, always the adjacent pair of lowest merge
//      rank (the leftmost one on a tie), until no pair has a rank: Rust's merge_word, without its
//      cache (this object stays immutable and thread-safe after load).
//   4. Template (tokenizer.json post_processor): OPT prepends </s> = 2 and appends nothing, so
//      "" -> [2] and "</s>" -> [2, 2].
// decode(ids):
//   Ids the tokenizer does not know are dropped silently (Rust id_to_token -> None); a negative id
//   is an error (Python raises OverflowError converting it to Rust's u32). With
//   skip_special_tokens, special added tokens are dropped. The ByteLevel decoder maps each
//   token's characters back to bytes (a token holding a character outside the table keeps its
//   own UTF-8 bytes) and decodes the concatenation like String::from_utf8_lossy: a broken
//   multibyte sequence becomes U+FFFD. Then transformers' clean_up_tokenization when
//   clean_up_tokenization_spaces is true (OPT's tokenizer_config.json says false).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/added_vocabulary.hpp"
#include "blip/text/tokenizer_base.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

// One added token (tokenizer.json "added_tokens", or tokenizer_config.json
// "added_tokens_decoder"), with the flags Rust's AddedVocabulary honours. single_word is refused
// at load: it needs Rust's \w, which we do not tabulate.
using ByteLevelBpeAddedToken = AddedToken;

struct ByteLevelBpeOptions {
  bool add_prefix_space = false;  // pre_tokenizer ByteLevel "add_prefix_space"
  bool ignore_merges = false;     // BPE "ignore_merges": a whole word found in the vocabulary is one token
  // The template's tokens before and after the text (OPT: </s> before, nothing after).
  SequenceTemplate sequence_template;
  std::optional<std::string> pad_token;  // none for GPT-2; HF then refuses to pad
  bool clean_up_tokenization_spaces = true;  // transformers' default when tokenizer_config.json is silent
};

namespace bpe_detail {

// GPT-2's bytes_to_unicode(): the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves, the other 68 bytes take the code points 256, 257, ... in byte order.
inline std::array<char32_t, 256> bytes_to_unicode() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
    table[static_cast<std::size_t>(byte)] = printable ? static_cast<char32_t>(byte) : next++;
  }
  return table;
}

// The GPT-2 pre-tokenizer regex, as Oniguruma runs it (alternatives tried in order, greedy
// quantifiers with backtracking), returning the [begin, end) of each match. Every code point
// belongs to one of \s, \p{L}, \p{N} or their complement, so the matches tile the text.
inline std::vector<std::pair<std::size_t, std::size_t>> split_gpt2_words(std::u32string_view text) {
  auto is_space = [](char32_t c) { return unicode::is_white_space(c); };
  const std::size_t size = text.size();
  auto run_end = [&](std::size_t from, auto&& predicate) {
    while (from < size && predicate(text[from])) ++from;
    return from;
  };
  std::vector<std::pair<std::size_t, std::size_t>> words;
  std::size_t position = 0;
  while (position < size) {
    const char32_t c = text[position];
    std::size_t end = position;
    // 's|'t|'re|'ve|'m|'ll|'d (ASCII apostrophe, lowercase only: "'S" is not a contraction).
    if (c == U'\'' && position + 1 < size) {
      const char32_t next = text[position + 1];
      const char32_t after = position + 2 < size ? text[position + 2] : 0;
      if (next == U's' || next == U't' || next == U'm' || next == U'd') {
        end = position + 2;
      } else if ((next == U'r' && after == U'e') || (next == U'v' && after == U'e') || (next == U'l' && after == U'l')) {
        end = position + 3;
      }
    }
    if (end == position) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional ' ' then a run of one class.
      const std::size_t start = c == U' ' && position + 1 < size ? position + 1 : position;
      for (bool (*predicate)(char32_t) : {+[](char32_t x) { return unicode::is_letter(x); },
                                          +[](char32_t x) { return unicode::is_number(x); },
                                          +[](char32_t x) {
                                            return !unicode::is_white_space(x) && !unicode::is_letter(x) &&
                                                   !unicode::is_number(x);
                                          }}) {
        if (predicate(text[start])) {
          end = run_end(start, predicate);
          break;
        }
        // The optional space may also be skipped (backtracking), but a ' ' is in no class here.
      }
    }
    if (end == position) {
      // `\s+(?!\S)`: the whole whitespace run if it ends the text, else the run minus its last
      // character (which then starts the next word, as the ' ' of " word"); a run of one that
      // is followed by text falls through to `\s+`, which takes it whole.
      const std::size_t space_end = run_end(position, is_space);
      if (space_end == size || space_end - position == 1) {
        end = space_end;
      } else {
        end = space_end - 1;
      }
    }
    words.emplace_back(position, end);
    position = end;
  }
  return words;
}

}  // namespace bpe_detail

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // `vocabulary`: (token, id) pairs of the BPE model; `merges` in rank order (rank = index);
  // `added_tokens` take precedence over the vocabulary. Every id must be below
  // vocabulary.size() + added_tokens.size() (check_token_id).
  ByteLevelBpeTokenizer(const std::vector<std::pair<std::string, std::int64_t>>& vocabulary,
                        const std::vector<std::pair<std::string, std::string>>& merges,
                        std::vector<ByteLevelBpeAddedToken> added_tokens, ByteLevelBpeOptions options)
      : options_(std::move(options)) {
    check(!vocabulary.empty(), "ByteLevelBpeTokenizer: empty vocabulary");
    const auto id_limit = static_cast<std::int64_t>(vocabulary.size() + added_tokens.size());
    std::int64_t max_id = -1;
    for (const auto& [token, id] : vocabulary) {
      check_token_id(id, id_limit, token, "ByteLevelBpeTokenizer vocabulary");
      max_id = std::max(max_id, id);
    }
    for (const ByteLevelBpeAddedToken& added : added_tokens)
      check_token_id(added.id, id_limit, added.content, "ByteLevelBpeTokenizer added tokens");
    tokens_by_id_.resize(static_cast<std::size_t>(max_id + 1));
    has_id_.assign(static_cast<std::size_t>(max_id + 1), false);
    vocabulary_.reserve(vocabulary.size());
    for (const auto& [token, id] : vocabulary) {
      vocabulary_[token] = id;
      tokens_by_id_[static_cast<std::size_t>(id)] = token;
      has_id_[static_cast<std::size_t>(id)] = true;
    }
    size_ = max_id + 1;

    // Rust BPE::new: both halves of a merge and their concatenation must be in the vocabulary.
    merges_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [left, right] = merges[rank];
      const auto left_id = vocabulary_.find(left), right_id = vocabulary_.find(right),
                 merged_id = vocabulary_.find(left + right);
      check(left_id != vocabulary_.end() && right_id != vocabulary_.end(), "ByteLevelBpeTokenizer: merge ", rank,
            " '", clip(left + " " + right), "' names a token that is not in the vocabulary");
      check(merged_id != vocabulary_.end(), "ByteLevelBpeTokenizer: merge ", rank, " '", clip(left + " " + right),
            "' makes '", clip(left + right), "', which is not in the vocabulary");
      // Rust collects the merges into a HashMap in file order, so a repeated pair keeps its LAST rank.
      merges_[pair_key(left_id->second, right_id->second)] = {static_cast<std::int64_t>(rank), merged_id->second};
    }

    const std::array<char32_t, 256> byte_table = bpe_detail::bytes_to_unicode();
    for (std::size_t byte = 0; byte < 256; ++byte) {
      std::string encoded;
      unicode::append_utf8(encoded, byte_table[byte]);
      byte_characters_[byte] = encoded;
      character_bytes_[byte_table[byte]] = static_cast<unsigned char>(byte);
    }

    // No normalizer: the normalized=true tokens are matched against their content too.
    for (const ByteLevelBpeAddedToken& added : added_tokens) {
      added_.insert(added);
      size_ = std::max(size_, added.id + 1);
    }
    added_.build_index();
    if (options_.pad_token) {
      const std::optional<std::int64_t> pad = token_to_id(*options_.pad_token);
      check(pad.has_value(), "ByteLevelBpeTokenizer: pad token '", clip(*options_.pad_token),
            "' is not in the vocabulary");
      pad_id_ = *pad;
    }
    for (const auto* part : {&options_.sequence_template.prefix, &options_.sequence_template.suffix}) {
      for (const auto& [token, id] : *part) {
        check(id >= 0 && id < size_, "ByteLevelBpeTokenizer: template token '", clip(token), "' has id ", id,
              " outside the vocabulary of ", size_);
      }
    }
  }

  // ---- Tokenizer -------------------------------------------------------------------------------
  Encoding encode_text(std::string_view text) const override {
    Encoding encoding;
    // Invalid UTF-8 becomes U+FFFD first (a Python str is always valid Unicode).
    const std::string valid = unicode::encode_utf8(unicode::decode_utf8(text));
    // Pass 1: the added tokens matched before normalization; pass 2, in the gaps: the others.
    for (const AddedVocabulary::Piece& outer : added_.split(valid, /*normalized=*/false)) {
      if (outer.added_id) {
        push_added(*outer.added_id, encoding);
        continue;
      }
      const std::string_view gap = std::string_view(valid).substr(outer.begin, outer.end - outer.begin);
      for (const AddedVocabulary::Piece& inner : added_.split(gap, /*normalized=*/true)) {
        if (inner.added_id) {
          push_added(*inner.added_id, encoding);
        } else {
          tokenize_segment(unicode::decode_utf8(gap.substr(inner.begin, inner.end - inner.begin)), encoding);
        }
      }
    }
    return encoding;
  }

  void apply_template(Encoding& encoding) const override { options_.sequence_template.apply(encoding); }

  std::optional<std::string> id_to_token(std::int64_t id) const override {
    if (std::optional<std::string> added = added_.id_to_token(id)) return added;
    if (id >= 0 && id < static_cast<std::int64_t>(has_id_.size()) && has_id_[static_cast<std::size_t>(id)]) {
      return tokens_by_id_[static_cast<std::size_t>(id)];
    }
    return std::nullopt;
  }

  std::optional<std::int64_t> token_to_id(std::string_view token) const override {
    const std::string key(token);
    if (const auto added = added_.token_to_id(key)) return added;
    if (const auto found = vocabulary_.find(key); found != vocabulary_.end()) return found->second;
    return std::nullopt;
  }

  // HF pads with pad_token_id; without a pad token (GPT-2) it refuses to pad, and so do we.
  std::int64_t pad_token_id() const override {
    check(pad_id_.has_value(), "ByteLevelBpeTokenizer: this tokenizer has no pad token (HF: \"Asking to pad but "
          "the tokenizer does not have a padding token\")");
    return *pad_id_;
  }
  std::int64_t size() const override { return size_; }
  std::vector<std::int64_t> special_token_ids() const override { return added_.special_ids(); }
  bool is_special_token_id(std::int64_t id) const override { return added_.is_special_id(id); }
  std::size_t num_special_tokens_to_add() const override {
    return options_.sequence_template.size();
  }
  bool default_clean_up_tokenization_spaces() const override { return options_.clean_up_tokenization_spaces; }
  std::string_view kind() const override { return "byte-level-bpe"; }

  const ByteLevelBpeOptions& options() const { return options_; }

  // The ByteLevel pre-tokenizer on one piece of text (no added tokens in it): the words, each
  // already mapped through bytes_to_unicode. Public for tests.
  std::vector<std::string> pre_tokenize(std::u32string_view text) const {
    std::u32string prefixed;
    // Rust prepends only to a non-empty piece (NormalizedString::prepend on "" does nothing).
    if (options_.add_prefix_space && !text.empty() && text.front() != U' ') {
      prefixed.reserve(text.size() + 1);
      prefixed.push_back(U' ');
      prefixed.append(text);
      text = prefixed;
    }
    std::vector<std::string> words;
    for (const auto& [begin, end] : bpe_detail::split_gpt2_words(text)) {
      const std::string bytes = unicode::encode_utf8(text.substr(begin, end - begin));
      std::string word;
      word.reserve(bytes.size() * 2);
      for (unsigned char byte : bytes) word += byte_characters_[byte];
      words.push_back(std::move(word));
    }
    return words;
  }

  // The BPE model on one pre-tokenized word: its token ids. Public for tests.
  std::vector<std::int64_t> bpe(std::string_view word) const {
    if (options_.ignore_merges) {
      if (const auto whole = vocabulary_.find(std::string(word)); whole != vocabulary_.end()) return {whole->second};
    }
    std::vector<std::int64_t> symbols;
    const std::u32string characters = unicode::decode_utf8(word);
    symbols.reserve(characters.size());
    for (char32_t character : characters) {
      std::string encoded;
      unicode::append_utf8(encoded, character);
      // No unk token in byte-level BPE; Rust skips a character missing from the vocabulary
      // (cannot happen when the vocabulary holds the 256 byte characters).
      if (const auto found = vocabulary_.find(encoded); found != vocabulary_.end()) symbols.push_back(found->second);
    }
    while (symbols.size() > 1) {
      std::int64_t best_rank = std::numeric_limits<std::int64_t>::max(), best_merged = -1;
      std::size_t best_position = 0;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        const auto merge = merges_.find(pair_key(symbols[i], symbols[i + 1]));
        if (merge != merges_.end() && merge->second.first < best_rank) {  // strict: the leftmost wins a tie
          best_rank = merge->second.first;
          best_merged = merge->second.second;
          best_position = i;
        }
      }
      if (best_merged < 0) break;
      symbols[best_position] = best_merged;
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_position) + 1);
    }
    return symbols;
  }

 protected:
  std::string decode_ids(const std::vector<std::int64_t>& ids, bool skip_special_tokens,
                         bool clean_up_tokenization_spaces) const override {
    std::string bytes;
    for (std::int64_t id : ids) {
      check(id >= 0 && id <= std::numeric_limits<std::uint32_t>::max(), "ByteLevelBpeTokenizer::decode: id ", id,
            " is not a token id (HF raises OverflowError for ids outside 0..2^32-1)");
      const std::optional<std::string> token = id_to_token(id);
      if (!token) continue;  // unknown id: dropped, like Rust's filter_map over id_to_token
      if (skip_special_tokens && is_special_token_id(id)) continue;
      append_token_bytes(*token, bytes);
    }
    std::string text = unicode::encode_utf8(unicode::decode_utf8(bytes));  // String::from_utf8_lossy
    return clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
  }

 private:
  static std::uint64_t pair_key(std::int64_t left, std::int64_t right) {
    return (static_cast<std::uint64_t>(left) << 32) | static_cast<std::uint64_t>(right);
  }

  void push_added(std::int64_t id, Encoding& encoding) const {
    encoding.ids.push_back(id);
    encoding.tokens.push_back(*added_.id_to_token(id));
  }

  void tokenize_segment(std::u32string_view segment, Encoding& encoding) const {
    if (segment.empty()) return;
    for (const std::string& word : pre_tokenize(segment)) {
      for (std::int64_t id : bpe(word)) {
        encoding.ids.push_back(id);
        encoding.tokens.push_back(tokens_by_id_[static_cast<std::size_t>(id)]);
      }
    }
  }

  // Rust ByteLevel decoder: every character back to its byte; a token with a character outside
  // the table (an added token such as "<image>" is all ASCII, so this is rare) keeps its UTF-8.
  void append_token_bytes(const std::string& token, std::string& bytes) const {
    std::string mapped;
    mapped.reserve(token.size());
    for (char32_t character : unicode::decode_utf8(token)) {
      const auto byte = character_bytes_.find(character);
      if (byte == character_bytes_.end()) {
        bytes += token;
        return;
      }
      mapped.push_back(static_cast<char>(byte->second));
    }
    bytes += mapped;
  }

  ByteLevelBpeOptions options_;
  AddedVocabulary added_;
  std::unordered_map<std::string, std::int64_t> vocabulary_;
  std::vector<std::string> tokens_by_id_;
  std::vector<bool> has_id_;
  std::unordered_map<std::uint64_t, std::pair<std::int64_t, std::int64_t>> merges_;  // pair -> (rank, merged id)
  std::array<std::string, 256> byte_characters_;
  std::unordered_map<char32_t, unsigned char> character_bytes_;
  std::optional<std::int64_t> pad_id_;
  std::int64_t size_ = 0;
};

namespace bpe_detail {

// One added-token entry of tokenizer.json / tokenizer_config.json, with HF's defaults.
inline ByteLevelBpeAddedToken parse_added_token(const nlohmann::json& entry, std::int64_t id, const std::string& file) {
  AddedToken added = added_token_from_json(entry, file);
  added.id = id;
  return added;
}

// A special-token value of tokenizer_config.json / special_tokens_map.json: a string or an
// AddedToken object {"content": ...}; nullopt for null or absent.
inline std::optional<std::string> special_token_content(const nlohmann::json& object, const std::string& key) {
  if (!object.contains(key) || object.at(key).is_null()) return std::nullopt;
  const nlohmann::json& value = object.at(key);
  if (value.is_string()) return value.get<std::string>();
  return value.at("content").get<std::string>();
}

// merges.txt the way transformers' GPT2Tokenizer reads it: split on '\n', drop the first line
// (the "#version" header) and the last (empty after the final newline; NOTE a file without a
// final newline loses its last merge in HF too), and split each line on whitespace.
inline std::vector<std::pair<std::string, std::string>> read_merges_txt(const std::filesystem::path& path) {
  const std::string contents = text_detail::read_file_bytes(path);
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t newline = contents.find('\n'); newline != std::string::npos; newline = contents.find('\n', start)) {
    lines.push_back(contents.substr(start, newline - start));
    start = newline + 1;
  }
  lines.push_back(contents.substr(start));
  check(lines.size() >= 2, path.string(), ": expected a \"#version\" line, then one merge per line");
  std::vector<std::pair<std::string, std::string>> merges;
  for (std::size_t line = 1; line + 1 < lines.size(); ++line) {
    std::istringstream fields(lines[line]);
    std::string left, right, extra;
    fields >> left >> right;
    check(!left.empty() && !right.empty() && !(fields >> extra), path.string(), ": line ", line + 1,
          ": expected two tokens separated by a space, found '", clip(lines[line]), "'");
    merges.emplace_back(std::move(left), std::move(right));
  }
  return merges;
}

}  // namespace bpe_detail

// Loads a byte-level BPE tokenizer (OPT, GPT-2) from a Hugging Face folder: tokenizer.json when
// present (what GPT2TokenizerFast uses), else vocab.json + merges.txt with tokenizer_config.json /
// special_tokens_map.json / added_tokens.json (what transformers' GPT2Converter would turn into
// the same fast tokenizer: ByteLevel with the config's add_prefix_space, and a bos_token
// template when add_bos_token is true).
inline std::unique_ptr<ByteLevelBpeTokenizer> load_byte_level_bpe_tokenizer(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory);
  const fs::path tokenizer_json = folder / "tokenizer.json", vocab_json = folder / "vocab.json",
                 merges_txt = folder / "merges.txt", config_json = folder / "tokenizer_config.json",
                 special_map_json = folder / "special_tokens_map.json", added_json = folder / "added_tokens.json";
  const nlohmann::json config = fs::exists(config_json) ? text_detail::read_config_json_file(config_json) : nlohmann::json::object();
  const nlohmann::json special_map =
      fs::exists(special_map_json) ? text_detail::read_config_json_file(special_map_json) : nlohmann::json::object();

  ByteLevelBpeOptions options;
  std::vector<std::pair<std::string, std::int64_t>> vocabulary;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<ByteLevelBpeAddedToken> added_tokens;
  auto has_added = [&](const std::string& content) {
    return std::any_of(added_tokens.begin(), added_tokens.end(),
                       [&](const ByteLevelBpeAddedToken& added) { return added.content == content; });
  };
  try {
    // transformers' special tokens: tokenizer_config.json wins over special_tokens_map.json.
    auto configured = [&](const std::string& key) {
      std::optional<std::string> value = bpe_detail::special_token_content(config, key);
      return value ? value : bpe_detail::special_token_content(special_map, key);
    };
    if (fs::exists(tokenizer_json)) {
      const std::string file = tokenizer_json.string();
      const nlohmann::json root = text_detail::read_tokenizer_json(tokenizer_json);
      const nlohmann::json& model = root.at("model");
      check(model.value("type", "BPE") == "BPE", file, ": model type '", model.value("type", ""), "' is not BPE");
      check(model.value("dropout", nlohmann::json()).is_null(), file, ": BPE dropout is not supported");
      check(model.value("continuing_subword_prefix", nlohmann::json("")).is_null() ||
                model.value("continuing_subword_prefix", std::string()).empty(),
            file, ": BPE continuing_subword_prefix is not supported");
      check(model.value("end_of_word_suffix", nlohmann::json("")).is_null() ||
                model.value("end_of_word_suffix", std::string()).empty(),
            file, ": BPE end_of_word_suffix is not supported");
      check(!model.value("byte_fallback", false), file, ": BPE byte_fallback is not supported");
      check(model.value("unk_token", nlohmann::json()).is_null(), file,
            ": a BPE unk_token is not supported (byte-level BPE has none)");
      options.ignore_merges = model.value("ignore_merges", false);
      for (const auto& [token, id] : model.at("vocab").items())
        vocabulary.emplace_back(token, json_integer(id, file, "the id of vocab entry '" + clip(token) + "'"));
      std::size_t rank = 0;
      for (const nlohmann::json& merge : model.at("merges")) {
        // Two spellings: "a b" (older files) and ["a", "b"] (tokenizers >= 0.20).
        if (merge.is_array()) {
          check(merge.size() == 2, file, ": merge ", rank, " is not a pair: ", clip(merge.dump()));
          merges.emplace_back(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
        } else {
          const std::string text = merge.get<std::string>();
          const std::size_t space = text.find(' ');
          check(space != std::string::npos && space > 0 && space + 1 < text.size() &&
                    text.find(' ', space + 1) == std::string::npos,
                file, ": merge ", rank, " '", clip(text), "' is not two tokens separated by one space");
          merges.emplace_back(text.substr(0, space), text.substr(space + 1));
        }
        ++rank;
      }

      check(root.value("normalizer", nlohmann::json()).is_null(), file,
            ": a normalizer is not supported with byte-level BPE, found ", clip(root.at("normalizer").dump()));
      const nlohmann::json& pre_tokenizer = root.at("pre_tokenizer");
      check(pre_tokenizer.is_object() && pre_tokenizer.value("type", "") == "ByteLevel", file,
            ": only the ByteLevel pre-tokenizer is supported, found ", clip(pre_tokenizer.dump()));
      check(pre_tokenizer.value("use_regex", true), file, ": ByteLevel use_regex=false is not supported");
      options.add_prefix_space = pre_tokenizer.value("add_prefix_space", false);
      const nlohmann::json& decoder = root.at("decoder");
      check(decoder.is_object() && decoder.value("type", "") == "ByteLevel", file,
            ": only the ByteLevel decoder is supported, found ", clip(decoder.dump()));

      const nlohmann::json& post_processor = root.at("post_processor");
      const std::string post_type = post_processor.is_object() ? post_processor.value("type", "") : "";
      if (post_type == "TemplateProcessing") {
        options.sequence_template = parse_template_processing(post_processor, file);
      } else if (post_type == "Sequence") {
        for (const nlohmann::json& processor : post_processor.at("processors")) {
          const std::string type = processor.value("type", "");
          if (type == "TemplateProcessing") {
            options.sequence_template = parse_template_processing(processor, file);
          } else {
            check(type == "ByteLevel", file, ": post_processor '", clip(type), "' in a Sequence is not supported");
          }
        }
      } else {
        // ByteLevel (only offsets, which we do not compute) or none: no special tokens added.
        check(post_processor.is_null() || post_type == "ByteLevel", file, ": post_processor '", clip(post_type),
              "' is not supported (expected TemplateProcessing, ByteLevel or null)");
      }
      for (const nlohmann::json& entry : root.at("added_tokens")) {
        added_tokens.push_back(bpe_detail::parse_added_token(entry, json_integer(entry.at("id"), file, "an added token's id"), file));
      }
    } else if (fs::exists(vocab_json) || fs::exists(merges_txt)) {
      check(fs::exists(vocab_json), "byte-level BPE folder ", directory, " has merges.txt but no vocab.json");
      check(fs::exists(merges_txt), "byte-level BPE folder ", directory, " has vocab.json but no merges.txt");
      const nlohmann::json vocab = text_detail::read_tokenizer_json(vocab_json);
      check(vocab.is_object() && !vocab.empty(), vocab_json.string(), ": expected a non-empty {\"token\": id} object");
      for (const auto& [token, id] : vocab.items()) {
        vocabulary.emplace_back(token, json_integer(id, vocab_json.string(), "the id of '" + clip(token) + "'"));
      }
      merges = bpe_detail::read_merges_txt(merges_txt);
      // GPT2Converter: ByteLevel(add_prefix_space), and TemplateProcessing "bos $A" when add_bos_token.
      options.add_prefix_space = config.value("add_prefix_space", false);
      if (config.value("add_bos_token", false)) {
        const std::string bos = configured("bos_token").value_or("<|endoftext|>");
        std::optional<std::int64_t> bos_id;
        for (const auto& [token, id] : vocabulary) {
          if (token == bos) bos_id = id;
        }
        if (!bos_id && config.contains("added_tokens_decoder")) {
          for (const auto& [id_text, entry] : config.at("added_tokens_decoder").items()) {
            if (entry.at("content").get<std::string>() == bos)
              bos_id = text_detail::token_id_from_key(id_text, config_json.string());
          }
        }
        check(bos_id.has_value(), directory, ": add_bos_token is true but bos token '", clip(bos), "' has no id");
        options.sequence_template.prefix.emplace_back(bos, *bos_id);
      }
    } else {
      fail("byte-level BPE folder ", directory, " has neither tokenizer.json nor vocab.json + merges.txt");
    }

    // PreTrainedTokenizerFast.__init__: tokens of added_tokens_decoder the backend lacks are added.
    if (config.contains("added_tokens_decoder")) {
      for (const auto& [id_text, entry] : config.at("added_tokens_decoder").items()) {
        if (has_added(entry.at("content").get<std::string>())) continue;
        added_tokens.push_back(bpe_detail::parse_added_token(
            entry, text_detail::token_id_from_key(id_text, config_json.string()), config_json.string()));
      }
    }
    // Legacy added_tokens.json {"token": id}: ordinary (non-special) added tokens unless a
    // special token names them.
    if (fs::exists(added_json)) {
      const nlohmann::json legacy = text_detail::read_config_json_file(added_json);
      check(legacy.is_object(), added_json.string(), ": expected a {\"token\": id} object");
      for (const auto& [content, id] : legacy.items()) {
        if (has_added(content)) continue;
        added_tokens.push_back(
            {content, json_integer(id, added_json.string(), "the id of '" + clip(content) + "'"), false, false, false,
             true});
      }
    }
    // The special tokens transformers knows (bos/eos/unk/pad, GPT2Tokenizer's defaults
    // <|endoftext|> when nothing is configured) become special added tokens, with their vocabulary
    // id when they have one, as PreTrainedTokenizer(Fast).__init__ does.
    const bool configured_folder = fs::exists(config_json) || fs::exists(special_map_json);
    std::vector<std::string> special_tokens;
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
      std::optional<std::string> token = configured(key);
      if (!token && !configured_folder && !fs::exists(tokenizer_json) && std::string(key) != "pad_token") {
        token = "<|endoftext|>";
      }
      if (token) special_tokens.push_back(*token);
    }
    const nlohmann::json additional = config.contains("additional_special_tokens") ? config.at("additional_special_tokens")
                                      : special_map.value("additional_special_tokens", nlohmann::json::array());
    for (const nlohmann::json& token : additional) {
      special_tokens.push_back(token.is_string() ? token.get<std::string>() : token.at("content").get<std::string>());
    }
    std::int64_t next_id = 0;
    for (const auto& [token, id] : vocabulary) next_id = std::max(next_id, id + 1);
    for (const ByteLevelBpeAddedToken& added : added_tokens) next_id = std::max(next_id, added.id + 1);
    for (const std::string& token : special_tokens) {
      if (has_added(token)) continue;  // already an added token: HF keeps its flags
      std::optional<std::int64_t> id;
      for (const auto& [content, vocabulary_id] : vocabulary) {
        if (content == token) id = vocabulary_id;
      }
      added_tokens.push_back({token, id.value_or(next_id), true, false, false, false});
      if (!id) ++next_id;
    }
    options.pad_token = configured("pad_token");
    if (config.contains("clean_up_tokenization_spaces")) {
      options.clean_up_tokenization_spaces = config.at("clean_up_tokenization_spaces").get<bool>();
    }
  } catch (const nlohmann::json::exception& error) {
    fail("byte-level BPE folder ", directory, ": unexpected JSON structure: ", error.what());
  }
  try {
    return std::make_unique<ByteLevelBpeTokenizer>(vocabulary, merges, std::move(added_tokens), std::move(options));
  } catch (const Error& error) {
    fail(fs::exists(tokenizer_json) ? tokenizer_json.string() : vocab_json.string(), ": ", error.what());
  }
}

}  // namespace blip
