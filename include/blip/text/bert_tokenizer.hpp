// blip/text/bert_tokenizer.hpp: BLIP's BERT WordPiece tokenizer, identical to Hugging Face's
// BertTokenizerFast (Rust `tokenizers` 0.23: BertNormalizer, BertPreTokenizer, WordPiece model,
// TemplateProcessing, WordPiece decoder) plus transformers' Python-side steps.
//
// encode(text):
//   1. Added tokens ([PAD] [UNK] [CLS] [SEP] [MASK]) are found in the RAW text, case-sensitively,
//      leftmost-longest; they become their ids and the text between them is tokenized alone.
//      So "[SEP]" in a caption is id 102, while "[sep]" is "[", "sep", "]".
//   2. BertNormalizer, in Rust's order:
//        clean_text            drop U+0000, U+FFFD and Cc/Cf/Co except \t \n \r; whitespace -> ' '
//        handle_chinese_chars  ' ' around each CJK ideograph (Rust's ranges, see is_chinese_char)
//        strip_accents         NFD, then drop Mn; on when strip_accents is true, or null + lowercase
//        lowercase             Rust char::to_lowercase, one code point at a time
//   3. BertPreTokenizer: split on whitespace (dropped), then every punctuation character
//      (ASCII punctuation or Unicode P*) is a word of its own.
//   4. WordPiece: per word, greedy longest match from the left, later pieces prefixed "##".
//      A word longer than max_input_chars_per_word (100) CHARACTERS, or with any piece missing
//      from the vocabulary, becomes a single [UNK].
//   5. Template: [CLS] ... [SEP].
// decode(ids):
//   Ids the tokenizer does not know are dropped silently (Rust id_to_token -> None; BLIP's
//   generate() output starts with [DEC] = 30522, which only the model knows). With
//   skip_special_tokens, special added tokens are dropped. The WordPiece decoder joins tokens with
//   ' ' except "##" continuations and applies its own clean-up to EACH token (always: tokenizer.json
//   has cleanup=true, whatever clean_up_tokenization_spaces says); then transformers'
//   clean_up_tokenization runs on the whole string when clean_up_tokenization_spaces is true.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/added_vocabulary.hpp"
#include "blip/text/tokenizer_base.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

// tokenizer.json "normalizer": {"type": "BertNormalizer", ...}.
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: strip exactly when lowercasing (BERT uncased)
  bool lowercase = true;
};

struct BertTokenizerOptions {
  BertNormalizerOptions normalizer;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
  SequenceTemplate sequence_template{{{"[CLS]", 101}}, {{"[SEP]", 102}}};
  std::string pad_token = "[PAD]";
  std::string decoder_prefix = "##";  // tokenizer.json "decoder": {"type": "WordPiece", "prefix", "cleanup"}
  bool decoder_cleanup = true;
  bool clean_up_tokenization_spaces = true;  // transformers' default when tokenizer_config.json is silent
};

namespace bert_detail {

// Rust BertNormalizer::is_chinese_char. These are the ranges of the Rust code, which differ from
// Google's/transformers' Python in one place: 0x2B920 where Python has 0x2B820, so
// U+2B820..U+2B91F (CJK Extension E's start) are NOT split off by the fast tokenizer.
inline bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Rust tokenizers' per-token WordPiece decoder clean-up (decoders/wordpiece.rs `cleanup`): the
// Python clean-up plus " do not" -> " don't".
inline std::string wordpiece_decoder_cleanup(std::string text) {
  static const std::pair<std::string_view, std::string_view> kReplacements[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kReplacements) text_detail::replace_all(text, from, to);
  return text;
}

}  // namespace bert_detail

class BertTokenizer final : public Tokenizer {
 public:
  // `vocabulary`: (token, id) pairs of the WordPiece model; `added_tokens` take precedence. Only
  // the form BERT checkpoints use is supported: added tokens matched verbatim in the raw text
  // (normalized=false, no lstrip/rstrip); the loader refuses the others. Every id must be below
  // `id_limit` (check_token_id); 0 means vocabulary.size() + added_tokens.size(). A vocab.txt
  // passes its line count: a duplicated line leaves its earlier id unused, as in HF.
  BertTokenizer(const std::vector<std::pair<std::string, std::int64_t>>& vocabulary,
                std::vector<AddedToken> added_tokens, BertTokenizerOptions options, std::int64_t id_limit = 0)
      : options_(std::move(options)), added_tokens_(std::move(added_tokens)) {
    check(!vocabulary.empty(), "BertTokenizer: empty vocabulary");
    if (id_limit <= 0) id_limit = static_cast<std::int64_t>(vocabulary.size() + added_tokens_.size());
    std::int64_t max_id = -1;
    for (const auto& [token, id] : vocabulary) {
      check_token_id(id, id_limit, token, "BertTokenizer vocabulary");
      max_id = std::max(max_id, id);
    }
    for (const AddedToken& added : added_tokens_) check_token_id(added.id, id_limit, added.content, "BertTokenizer added tokens");
    tokens_by_id_.resize(static_cast<std::size_t>(max_id + 1));
    has_id_.assign(static_cast<std::size_t>(max_id + 1), false);
    vocabulary_.reserve(vocabulary.size());
    for (const auto& [token, id] : vocabulary) {
      vocabulary_[token] = id;
      tokens_by_id_[static_cast<std::size_t>(id)] = token;
      has_id_[static_cast<std::size_t>(id)] = true;
    }
    size_ = max_id + 1;
    for (const AddedToken& added : added_tokens_) {
      check(!added.content.empty(), "BertTokenizer: empty added token");
      added_by_id_[added.id] = added.content;
      added_by_content_[added.content] = added.id;
      if (added.special) special_contents_.insert(added.content);
      added_code_points_.push_back({unicode::decode_utf8(added.content), added.id});
      size_ = std::max(size_, added.id + 1);
    }
    // Longest first, so that the first match at a position is the leftmost-longest one.
    std::stable_sort(added_code_points_.begin(), added_code_points_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

    const auto unk = vocabulary_.find(options_.unk_token);
    check(unk != vocabulary_.end(), "BertTokenizer: unk token '", clip(options_.unk_token), "' is not in the vocabulary");
    unk_id_ = unk->second;
    const std::optional<std::int64_t> pad = token_to_id(options_.pad_token);
    check(pad.has_value(), "BertTokenizer: pad token '", clip(options_.pad_token), "' is not in the vocabulary");
    pad_id_ = *pad;
    for (const auto* part : {&options_.sequence_template.prefix, &options_.sequence_template.suffix}) {
      for (const auto& [token, id] : *part) {
        check(id >= 0 && id < size_, "BertTokenizer: template token '", clip(token), "' has id ", id,
              " outside the vocabulary of ", size_);
      }
    }
  }

  // ---- Tokenizer -------------------------------------------------------------------------------
  Encoding encode_text(std::string_view text) const override {
    Encoding encoding;
    const std::u32string code_points = unicode::decode_utf8(text);
    std::size_t segment_start = 0, position = 0;
    while (position < code_points.size()) {
      const auto match = match_added_token(code_points, position);
      if (!match) {
        ++position;
        continue;
      }
      tokenize_segment(std::u32string_view(code_points).substr(segment_start, position - segment_start), encoding);
      const auto& [length, id] = *match;
      encoding.ids.push_back(id);
      encoding.tokens.push_back(added_by_id_.at(id));
      position += length;
      segment_start = position;
    }
    tokenize_segment(std::u32string_view(code_points).substr(segment_start), encoding);
    return encoding;
  }

  void apply_template(Encoding& encoding) const override { options_.sequence_template.apply(encoding); }

  std::optional<std::string> id_to_token(std::int64_t id) const override {
    if (const auto added = added_by_id_.find(id); added != added_by_id_.end()) return added->second;
    if (id >= 0 && id < static_cast<std::int64_t>(has_id_.size()) && has_id_[static_cast<std::size_t>(id)]) {
      return tokens_by_id_[static_cast<std::size_t>(id)];
    }
    return std::nullopt;
  }

  std::optional<std::int64_t> token_to_id(std::string_view token) const override {
    const std::string key(token);
    if (const auto added = added_by_content_.find(key); added != added_by_content_.end()) return added->second;
    if (const auto found = vocabulary_.find(key); found != vocabulary_.end()) return found->second;
    return std::nullopt;
  }

  std::int64_t pad_token_id() const override { return pad_id_; }
  std::int64_t unk_token_id() const { return unk_id_; }
  std::int64_t size() const override { return size_; }
  std::vector<std::int64_t> special_token_ids() const override {
    std::vector<std::int64_t> ids;
    for (const AddedToken& added : added_tokens_) {
      if (added.special) ids.push_back(added.id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  bool is_special_token_id(std::int64_t id) const override {
    const auto added = added_by_id_.find(id);
    return added != added_by_id_.end() && special_contents_.count(added->second) > 0;
  }
  std::size_t num_special_tokens_to_add() const override {
    return options_.sequence_template.size();
  }
  bool default_clean_up_tokenization_spaces() const override { return options_.clean_up_tokenization_spaces; }
  std::string_view kind() const override { return "bert-wordpiece"; }

  const BertTokenizerOptions& options() const { return options_; }

  // BertNormalizer on one piece of text (no added tokens in it). Public for tests.
  std::u32string normalize(std::u32string_view text) const {
    const BertNormalizerOptions& options = options_.normalizer;
    std::u32string current;
    current.reserve(text.size());
    if (options.clean_text) {
      for (char32_t c : text) {
        // Rust is_control: \t \n \r count as whitespace, not control.
        const bool is_tab_or_newline = c == '\t' || c == '\n' || c == '\r';
        if (c == 0 || c == unicode::kReplacementCharacter ||
            (!is_tab_or_newline && unicode::is_control_format_or_private_use(c))) {
          continue;
        }
        current.push_back(is_tab_or_newline || unicode::is_white_space(c) ? U' ' : c);
      }
    } else {
      current.assign(text);
    }
    if (options.handle_chinese_chars) {
      std::u32string spaced;
      spaced.reserve(current.size());
      for (char32_t c : current) {
        if (bert_detail::is_chinese_char(c)) {
          spaced.push_back(U' ');
          spaced.push_back(c);
          spaced.push_back(U' ');
        } else {
          spaced.push_back(c);
        }
      }
      current = std::move(spaced);
    }
    if (options.strip_accents.value_or(options.lowercase)) {
      std::u32string decomposed = unicode::nfd(current);
      current.clear();
      for (char32_t c : decomposed) {
        if (!unicode::is_nonspacing_mark(c)) current.push_back(c);
      }
    }
    if (options.lowercase) {
      std::u32string lowered;
      lowered.reserve(current.size());
      for (char32_t c : current) unicode::append_lowercase(lowered, c);
      current = std::move(lowered);
    }
    return current;
  }

  // BertPreTokenizer on normalized text: the words, as UTF-8. Public for tests.
  std::vector<std::string> pre_tokenize(std::u32string_view normalized) const {
    std::vector<std::string> words;
    std::string word;
    for (char32_t c : normalized) {
      if (unicode::is_white_space(c)) {
        if (!word.empty()) words.push_back(std::move(word));
        word.clear();
      } else if (unicode::is_ascii_punctuation(c) || unicode::is_punctuation(c)) {
        if (!word.empty()) words.push_back(std::move(word));
        word.clear();
        unicode::append_utf8(word, c);
        words.push_back(std::move(word));
        word.clear();
      } else {
        unicode::append_utf8(word, c);
      }
    }
    if (!word.empty()) words.push_back(std::move(word));
    return words;
  }

 protected:
  std::string decode_ids(const std::vector<std::int64_t>& ids, bool skip_special_tokens,
                         bool clean_up_tokenization_spaces) const override {
    std::string text;
    bool first = true;
    for (std::int64_t id : ids) {
      std::optional<std::string> token = id_to_token(id);
      if (!token) continue;  // unknown id: dropped, like Rust's filter_map over id_to_token
      if (skip_special_tokens && special_contents_.count(*token) > 0) continue;
      std::string piece;
      const std::string& prefix = options_.decoder_prefix;
      if (first) {
        piece = std::move(*token);  // the first token keeps a "##" prefix
      } else if (token->compare(0, prefix.size(), prefix) == 0) {
        piece = token->substr(prefix.size());
      } else {
        piece = " " + *token;
      }
      first = false;
      text += options_.decoder_cleanup ? bert_detail::wordpiece_decoder_cleanup(std::move(piece)) : piece;
    }
    return clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
  }

 private:
  // (length in code points, id) of the longest added token starting at `position`.
  std::optional<std::pair<std::size_t, std::int64_t>> match_added_token(const std::u32string& text,
                                                                        std::size_t position) const {
    for (const auto& [content, id] : added_code_points_) {
      if (text.compare(position, content.size(), content) == 0) return std::make_pair(content.size(), id);
    }
    return std::nullopt;
  }

  void tokenize_segment(std::u32string_view segment, Encoding& encoding) const {
    if (segment.empty()) return;
    for (const std::string& word : pre_tokenize(normalize(segment))) wordpiece(word, encoding);
  }

  // Rust WordPiece::tokenize on one word (UTF-8).
  void wordpiece(const std::string& word, Encoding& encoding) const {
    // Byte offsets of the character boundaries; the character count is boundaries.size() - 1.
    std::vector<std::size_t> boundaries;
    boundaries.reserve(word.size() + 1);
    for (std::size_t i = 0; i < word.size(); ++i) {
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) boundaries.push_back(i);
    }
    boundaries.push_back(word.size());
    const std::size_t character_count = boundaries.size() - 1;
    const std::size_t first_piece = encoding.ids.size();
    bool is_bad = character_count > options_.max_input_chars_per_word;
    std::string candidate;
    std::size_t start = 0;  // index into boundaries
    while (!is_bad && start < character_count) {
      std::size_t end = character_count;
      bool found = false;
      while (end > start) {
        candidate.clear();
        if (start > 0) candidate += options_.continuing_subword_prefix;
        candidate.append(word, boundaries[start], boundaries[end] - boundaries[start]);
        if (const auto hit = vocabulary_.find(candidate); hit != vocabulary_.end()) {
          encoding.ids.push_back(hit->second);
          encoding.tokens.push_back(candidate);
          found = true;
          break;
        }
        --end;
      }
      if (!found) is_bad = true;
      start = end;
    }
    if (is_bad) {  // the whole word becomes [UNK], dropping any pieces already found
      encoding.ids.resize(first_piece);
      encoding.tokens.resize(first_piece);
      encoding.ids.push_back(unk_id_);
      encoding.tokens.push_back(options_.unk_token);
    }
  }

  BertTokenizerOptions options_;
  std::unordered_map<std::string, std::int64_t> vocabulary_;
  std::vector<std::string> tokens_by_id_;
  std::vector<bool> has_id_;
  std::vector<AddedToken> added_tokens_;
  std::unordered_map<std::int64_t, std::string> added_by_id_;
  std::unordered_map<std::string, std::int64_t> added_by_content_;
  std::unordered_set<std::string> special_contents_;
  std::vector<std::pair<std::u32string, std::int64_t>> added_code_points_;
  std::int64_t size_ = 0, unk_id_ = 0, pad_id_ = 0;
};

// ---- loading -------------------------------------------------------------------------------------

namespace bert_detail {

// The special tokens transformers' BertTokenizer(Fast) registers, from tokenizer_config.json
// and special_tokens_map.json (either may give a string or an {"content": ...} object).
inline std::vector<std::string> configured_special_tokens(const nlohmann::json& config,
                                                          const nlohmann::json& special_tokens_map,
                                                          std::string& pad_token, std::string& unk_token) {
  const std::pair<const char*, const char*> kDefaults[] = {
      {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}};
  std::vector<std::string> tokens;
  for (const auto& [key, fallback] : kDefaults) {
    std::string value = fallback;
    for (const nlohmann::json* source : {&config, &special_tokens_map}) {
      if (!source->is_object() || !source->contains(key)) continue;
      const nlohmann::json& entry = source->at(key);
      if (entry.is_string()) value = entry.get<std::string>();
      if (entry.is_object() && entry.contains("content")) value = entry.at("content").get<std::string>();
    }
    if (std::string_view(key) == "pad_token") pad_token = value;
    if (std::string_view(key) == "unk_token") unk_token = value;
    tokens.push_back(value);
  }
  return tokens;
}

// transformers' PreTrainedTokenizerFast.__init__ adds every configured special token the
// backend does not have yet, as a special added token. It keeps its vocabulary id when it has
// one; a new token gets the next id (Rust AddedVocabulary::add_tokens).
inline void add_missing_special_tokens(const std::vector<std::string>& special_tokens,
                                       const std::vector<std::pair<std::string, std::int64_t>>& vocabulary,
                                       std::vector<AddedToken>& added_tokens) {
  std::unordered_map<std::string, std::int64_t> ids;
  std::int64_t next_id = 0;
  for (const auto& [token, id] : vocabulary) {
    ids.emplace(token, id);
    next_id = std::max(next_id, id + 1);
  }
  for (const AddedToken& added : added_tokens) next_id = std::max(next_id, added.id + 1);
  for (const std::string& token : special_tokens) {
    bool present = false;
    for (const AddedToken& added : added_tokens) present = present || added.content == token;
    if (present) continue;
    const auto found = ids.find(token);
    added_tokens.push_back({token, found != ids.end() ? found->second : next_id++, true});
  }
}

}  // namespace bert_detail

// Loads a BERT WordPiece tokenizer from a Hugging Face folder: tokenizer.json when present
// (what BertTokenizerFast uses), else vocab.txt (what transformers would convert into the same
// fast tokenizer). tokenizer_config.json's do_lower_case / strip_accents /
// tokenize_chinese_chars override the tokenizer.json normalizer, as BertTokenizerFast.__init__
// does (with its defaults True / null / True when the keys are absent).
inline std::unique_ptr<BertTokenizer> load_bert_tokenizer(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory);
  const fs::path tokenizer_json = folder / "tokenizer.json", vocab_txt = folder / "vocab.txt",
                 config_json = folder / "tokenizer_config.json", special_map_json = folder / "special_tokens_map.json";
  const nlohmann::json config =
      fs::exists(config_json) ? text_detail::read_config_json_file(config_json) : nlohmann::json::object();
  const nlohmann::json special_map =
      fs::exists(special_map_json) ? text_detail::read_config_json_file(special_map_json) : nlohmann::json::object();

  BertTokenizerOptions options;
  std::vector<std::pair<std::string, std::int64_t>> vocabulary;
  std::vector<AddedToken> added_tokens;
  std::int64_t vocabulary_lines = 0;  // vocab.txt's line count (0 for tokenizer.json)
  std::string source = directory;
  try {
    if (fs::exists(tokenizer_json)) {
      const std::string file = tokenizer_json.string();
      source = file;
      const nlohmann::json root = text_detail::read_tokenizer_json(tokenizer_json);
      const nlohmann::json& model = root.at("model");
      check(model.value("type", "") == "WordPiece", file, ": model type '", model.value("type", ""),
            "' is not WordPiece");
      for (const auto& [token, id] : model.at("vocab").items())
        vocabulary.emplace_back(token, json_integer(id, file, "the id of vocab entry '" + clip(token) + "'"));
      options.unk_token = model.value("unk_token", options.unk_token);
      options.continuing_subword_prefix = model.value("continuing_subword_prefix", options.continuing_subword_prefix);
      options.max_input_chars_per_word = model.value("max_input_chars_per_word", options.max_input_chars_per_word);

      const nlohmann::json& normalizer = root.at("normalizer");
      check(normalizer.is_object() && normalizer.value("type", "") == "BertNormalizer", file,
            ": only the BertNormalizer is supported, found ", clip(normalizer.dump()));
      options.normalizer.clean_text = normalizer.value("clean_text", true);
      options.normalizer.handle_chinese_chars = normalizer.value("handle_chinese_chars", true);
      if (normalizer.contains("strip_accents") && !normalizer.at("strip_accents").is_null()) {
        options.normalizer.strip_accents = normalizer.at("strip_accents").get<bool>();
      }
      options.normalizer.lowercase = normalizer.value("lowercase", true);

      const nlohmann::json& pre_tokenizer = root.at("pre_tokenizer");
      check(pre_tokenizer.is_object() && pre_tokenizer.value("type", "") == "BertPreTokenizer", file,
            ": only the BertPreTokenizer is supported, found ", clip(pre_tokenizer.dump()));

      const nlohmann::json& decoder = root.at("decoder");
      check(decoder.is_object() && decoder.value("type", "") == "WordPiece", file,
            ": only the WordPiece decoder is supported, found ", clip(decoder.dump()));
      options.decoder_prefix = decoder.value("prefix", options.decoder_prefix);
      options.decoder_cleanup = decoder.value("cleanup", true);

      const nlohmann::json& post_processor = root.at("post_processor");
      const std::string post_type = post_processor.is_object() ? post_processor.value("type", "") : "";
      if (post_type == "TemplateProcessing") {
        options.sequence_template = parse_template_processing(post_processor, file);
      } else if (post_type == "BertProcessing") {
        const auto cls = post_processor.at("cls"), sep = post_processor.at("sep");
        options.sequence_template = {
            {{cls.at(0).get<std::string>(), json_integer(cls.at(1), file, "BertProcessing's cls id")}},
            {{sep.at(0).get<std::string>(), json_integer(sep.at(1), file, "BertProcessing's sep id")}}};
      } else {
        fail(file, ": post_processor '", clip(post_type), "' is not supported (expected TemplateProcessing or BertProcessing)");
      }

      for (const nlohmann::json& entry : root.at("added_tokens")) {
        const std::string content = entry.at("content").get<std::string>();
        const bool special = entry.value("special", false);
        check(!entry.value("lstrip", false) && !entry.value("rstrip", false) && !entry.value("single_word", false),
              file, ": added token '", clip(content), "' uses lstrip/rstrip/single_word, which is not supported");
        check(!entry.value("normalized", !special), file, ": added token '", clip(content),
              "' is matched after normalization (normalized=true), which is not supported");
        added_tokens.push_back(
            {content, json_integer(entry.at("id"), file, "the id of added token '" + clip(content) + "'"), special});
      }
    } else if (fs::exists(vocab_txt)) {
      // transformers' BertConverter: the default BERT pipeline around vocab.txt, one token per line.
      source = vocab_txt.string();
      const std::string contents = text_detail::read_file_bytes(vocab_txt);
      std::int64_t index = 0;
      std::unordered_map<std::string, std::size_t> position_of;  // token -> its entry in `vocabulary`
      for (std::size_t start = 0; start < contents.size();) {
        std::size_t end = contents.find('\n', start);
        if (end == std::string::npos) end = contents.size();
        std::string line = contents.substr(start, end - start);
        start = end + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        // load_vocab keeps the last id of a duplicated line, like a dict assignment.
        const auto [found, is_new] = position_of.emplace(line, vocabulary.size());
        if (is_new) {
          vocabulary.emplace_back(std::move(line), index);
        } else {
          vocabulary[found->second].second = index;
        }
        ++index;
      }
      check(!vocabulary.empty(), vocab_txt.string(), ": empty vocabulary");
      vocabulary_lines = index;
    } else {
      fail("BERT tokenizer folder ", directory, " has neither tokenizer.json nor vocab.txt");
    }

    // BertTokenizerFast.__init__: the config's lowercase / accents / CJK settings win.
    options.normalizer.lowercase = config.value("do_lower_case", true);
    options.normalizer.handle_chinese_chars = config.value("tokenize_chinese_chars", true);
    options.normalizer.strip_accents.reset();
    if (config.contains("strip_accents") && !config.at("strip_accents").is_null()) {
      options.normalizer.strip_accents = config.at("strip_accents").get<bool>();
    }
    if (config.contains("clean_up_tokenization_spaces")) {
      options.clean_up_tokenization_spaces = config.at("clean_up_tokenization_spaces").get<bool>();
    }
    if (config.contains("added_tokens_decoder")) {
      for (const auto& [id_text, entry] : config.at("added_tokens_decoder").items()) {
        const std::string content = entry.at("content").get<std::string>();
        bool present = false;
        for (const AddedToken& added : added_tokens) present = present || added.content == content;
        if (present) continue;
        const bool special = entry.value("special", false);
        check(special || !entry.value("normalized", true), config_json.string(), ": added token '", clip(content),
              "' is matched after normalization (normalized=true), which is not supported");
        added_tokens.push_back({content, text_detail::token_id_from_key(id_text, config_json.string()), special});
      }
    }
    // The pad token is transformers' (pad_token_id = convert_tokens_to_ids(pad_token)); the unk
    // token of tokenizer.json's WordPiece model stays that model's own.
    std::string configured_unk_token;
    const std::vector<std::string> special_tokens =
        bert_detail::configured_special_tokens(config, special_map, options.pad_token, configured_unk_token);
    if (!fs::exists(tokenizer_json)) options.unk_token = configured_unk_token;
    bert_detail::add_missing_special_tokens(special_tokens, vocabulary, added_tokens);
    if (!fs::exists(tokenizer_json)) {
      // BertConverter's template: cls_token $A sep_token, with the configured tokens.
      auto id_of = [&](const std::string& token) {
        for (const AddedToken& added : added_tokens) {
          if (added.content == token) return added.id;
        }
        fail(directory, ": special token '", clip(token), "' has no id");
      };
      options.sequence_template = {{{special_tokens[3], id_of(special_tokens[3])}},
                                   {{special_tokens[1], id_of(special_tokens[1])}}};
    }
  } catch (const nlohmann::json::exception& error) {
    fail("BERT tokenizer folder ", directory, ": unexpected JSON structure: ", error.what());
  }
  // vocab.txt: ids up to its line count (a duplicated line leaves an id unused), then the added tokens.
  const std::int64_t id_limit =
      vocabulary_lines > 0 ? vocabulary_lines + static_cast<std::int64_t>(added_tokens.size()) : 0;
  try {
    return std::make_unique<BertTokenizer>(vocabulary, std::move(added_tokens), std::move(options), id_limit);
  } catch (const Error& error) {
    fail(source, ": ", error.what());
  }
}

}  // namespace blip
