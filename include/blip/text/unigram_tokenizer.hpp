// blip/text/unigram_tokenizer.hpp: BLIP-2 Flan-T5's SentencePiece Unigram tokenizer, identical to
// Hugging Face's T5TokenizerFast (Rust `tokenizers` 0.23: AddedVocabulary, Precompiled + Replace
// normalizers, Metaspace pre-tokenizer, Unigram model, TemplateProcessing, Metaspace decoder) plus
// transformers' Python-side steps and Blip2Processor's <image>.
//
// encode(text):
//   1. Added tokens (<pad> </s> <unk> <extra_id_0..99> <image>, all un-normalized) are found in the
//      RAW text, case-sensitively, leftmost-longest (added_vocabulary.hpp); each piece between them
//      is tokenized alone. So "hello </s> world" keeps the space before </s>, which becomes a lone
//      "▁" (id 3), and "</s>" in the text is id 1 even though the template adds another.
//   2. Normalizer, per piece: the checkpoint's SentencePiece charsmap (nmt_nfkc: NFKC-like, control
//      characters removed, whitespace variants to ' ') per grapheme cluster, then runs of 2+ spaces
//      to one. Leading and trailing spaces are NOT stripped: "trailing space " ends in "▁" = 3.
//   3. Metaspace: ' ' -> '▁', '▁' prepended to every piece (legacy T5: prepend_scheme "always"),
//      split before each '▁'.
//   4. Unigram Viterbi per word (unigram_model.hpp); unknown characters fuse into one <unk> = 2.
//   5. Template: append </s> = 1 always ("" -> [1], "</s>" -> [1, 1]).
// decode(ids):
//   Unknown ids are dropped (Rust id_to_token -> None); a negative id is an error. With
//   skip_special_tokens the special added tokens are dropped (by their string, as Rust does). The
//   Metaspace decoder turns '▁' into ' ' and drops the '▁'s of the first remaining token; then
//   transformers' clean_up_tokenization when clean_up_tokenization_spaces (T5 default: true). The
//   spaces that skipped tokens leave behind are kept (" smiling face" after a skipped <unk>).
//
// Loading (load_unigram_tokenizer): tokenizer.json when the folder has one; otherwise spiece.model
// converted the way transformers' T5Converter built the checkpoints' tokenizer.json (see
// unigram_tokenizer_from_sentencepiece). Both give the same ids.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/added_vocabulary.hpp"
#include "blip/text/sentencepiece_model.hpp"
#include "blip/text/sentencepiece_steps.hpp"
#include "blip/text/tokenizer_base.hpp"
#include "blip/text/transformers_added_tokens.hpp"
#include "blip/text/unicode.hpp"
#include "blip/text/unigram_model.hpp"

namespace blip {

struct UnigramTokenizerOptions {
  Normalizer normalizer;
  std::optional<Metaspace> pre_tokenizer;  // none: each normalized piece is one word
  TokenizerDecoder decoder;                // no steps: tokens joined with ' ' (Rust without a decoder)
  SequenceTemplate sequence_template;      // T5: nothing before, </s> after
  std::optional<std::string> pad_token;    // T5: <pad>
  bool clean_up_tokenization_spaces = true;  // transformers' default when tokenizer_config.json is silent
};

class UnigramTokenizer final : public Tokenizer {
 public:
  UnigramTokenizer(UnigramModel model, AddedVocabulary added_tokens, UnigramTokenizerOptions options)
      : model_(std::move(model)), added_(std::move(added_tokens)), options_(std::move(options)) {
    added_.build_index();
    normalized_added_tokens_ = added_.has_normalized_tokens();
    if (options_.pad_token) {
      const std::optional<std::int64_t> pad = token_to_id(*options_.pad_token);
      check(pad.has_value(), "UnigramTokenizer: pad token '", clip(*options_.pad_token), "' is not in the vocabulary");
      pad_id_ = *pad;
    }
    // len(tokenizer) is Rust get_vocab_size(with_added_tokens=true): the distinct token strings.
    size_ = static_cast<std::int64_t>(model_.distinct_piece_count());
    for (const auto& [content, id] : added_.ids_by_content()) {
      if (!model_.token_to_id(content)) ++size_;
    }
    for (const auto* part : {&options_.sequence_template.prefix, &options_.sequence_template.suffix}) {
      for (const auto& [token, id] : *part) {
        check(id_to_token(id).has_value(), "UnigramTokenizer: template token '", clip(token), "' has id ", id,
              ", which the tokenizer does not know");
      }
    }
  }

  // ---- Tokenizer -------------------------------------------------------------------------------
  Encoding encode_text(std::string_view text) const override {
    Encoding encoding;
    // Invalid UTF-8 becomes U+FFFD first (a Python str is always valid Unicode).
    const std::string valid = unicode::encode_utf8(unicode::decode_utf8(text));
    for (const AddedVocabulary::Piece& outer : added_.split(valid, /*normalized=*/false)) {
      if (outer.added_id) {
        encoding.ids.push_back(*outer.added_id);
        continue;
      }
      if (outer.begin == outer.end) continue;
      const std::string normalized =
          options_.normalizer.normalize(std::string(valid.substr(outer.begin, outer.end - outer.begin)));
      if (normalized.empty()) continue;
      if (!normalized_added_tokens_) {
        tokenize_piece(normalized, outer.begin == 0, encoding.ids);
        continue;
      }
      for (const AddedVocabulary::Piece& inner : added_.split(normalized, /*normalized=*/true)) {
        if (inner.added_id) {
          encoding.ids.push_back(*inner.added_id);
        } else if (inner.begin < inner.end) {
          // A piece after a normalized added token no longer starts the text (PrependScheme::kFirst).
          tokenize_piece(std::string_view(normalized).substr(inner.begin, inner.end - inner.begin),
                         outer.begin == 0 && inner.begin == 0, encoding.ids);
        }
      }
    }
    encoding.tokens.reserve(encoding.ids.size());
    for (const std::int64_t id : encoding.ids) encoding.tokens.push_back(*id_to_token(id));
    return encoding;
  }

  void apply_template(Encoding& encoding) const override { options_.sequence_template.apply(encoding); }

  // Added tokens first (their decoding form), then the model's pieces.
  std::optional<std::string> id_to_token(std::int64_t id) const override {
    if (std::optional<std::string> added = added_.id_to_token(id)) return added;
    if (const std::string* piece = model_.id_to_token(id)) return *piece;
    return std::nullopt;
  }
  std::optional<std::int64_t> token_to_id(std::string_view token) const override {
    if (const auto added = added_.token_to_id(token)) return added;
    return model_.token_to_id(token);
  }

  std::int64_t pad_token_id() const override {
    check(pad_id_.has_value(), "UnigramTokenizer: this tokenizer has no pad token (HF: \"Asking to pad but the "
          "tokenizer does not have a padding token\")");
    return *pad_id_;
  }
  std::int64_t size() const override { return size_; }
  std::vector<std::int64_t> special_token_ids() const override { return added_.special_ids(); }
  bool is_special_token_id(std::int64_t id) const override { return added_.is_special_id(id); }
  std::size_t num_special_tokens_to_add() const override { return options_.sequence_template.size(); }
  bool default_clean_up_tokenization_spaces() const override { return options_.clean_up_tokenization_spaces; }
  std::string_view kind() const override { return "unigram"; }

  const UnigramTokenizerOptions& options() const { return options_; }
  const UnigramModel& model() const { return model_; }
  const AddedVocabulary& added_tokens() const { return added_; }

  // The normalizer on one piece of text (no added tokens in it). Public for tests.
  std::string normalize(std::string_view text) const { return options_.normalizer.normalize(std::string(text)); }

 protected:
  std::string decode_ids(const std::vector<std::int64_t>& ids, bool skip_special_tokens,
                         bool clean_up_tokenization_spaces) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const std::int64_t id : ids) {
      check(id >= 0 && id <= std::numeric_limits<std::uint32_t>::max(), "UnigramTokenizer::decode: id ", id,
            " is not a token id (HF raises OverflowError for ids outside 0..2^32-1)");
      std::optional<std::string> token = id_to_token(id);
      if (!token) continue;  // unknown id: dropped, like Rust's filter_map over id_to_token
      if (skip_special_tokens && added_.is_special_token(*token)) continue;
      tokens.push_back(std::move(*token));
    }
    std::string text;
    if (options_.decoder.steps.empty()) {
      for (std::size_t i = 0; i < tokens.size(); ++i) text += (i == 0 ? "" : " ") + tokens[i];
    } else {
      text = options_.decoder.decode(std::move(tokens));
    }
    return clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
  }

 private:
  void tokenize_piece(std::string_view normalized, bool at_text_start, std::vector<std::int64_t>& ids) const {
    if (!options_.pre_tokenizer) {
      model_.tokenize(normalized, ids);
      return;
    }
    for (const std::string& word : options_.pre_tokenizer->pre_tokenize(normalized, at_text_start)) {
      model_.tokenize(word, ids);
    }
  }

  UnigramModel model_;
  AddedVocabulary added_;
  UnigramTokenizerOptions options_;
  bool normalized_added_tokens_ = false;
  std::optional<std::int64_t> pad_id_;
  std::int64_t size_ = 0;
};

// ---- loading -------------------------------------------------------------------------------------

namespace unigram_detail {

// The special tokens of the folder's tokenizer class. T5TokenizerFast (tokenizer_class
// "T5Tokenizer..."; also assumed for a folder converted from a lone spiece.model) has defaults
// eos "</s>", unk "<unk>", pad "<pad>", and a rule for the <extra_id_N> sentinels: extra_ids of
// them (tokenizer_config.json "extra_ids", default 100) are appended to additional_special_tokens
// unless those already hold some, in which case their number must match. Any other class gets
// what the files say, as the generic PreTrainedTokenizerFast does.
inline TokenizerSpecialTokens special_tokens_of(const TransformersTokenizerFiles& files, bool t5_by_default) {
  const std::string config_file = (files.folder / "tokenizer_config.json").string();
  const std::string tokenizer_class = files.config.value("tokenizer_class", std::string());
  const bool t5 = tokenizer_class.rfind("T5Tokenizer", 0) == 0 || (tokenizer_class.empty() && t5_by_default);
  if (!t5) return files.special_tokens(SpecialTokenDefaults{});
  const std::int64_t extra_ids = files.config.value("extra_ids", std::int64_t{100});
  check(extra_ids >= 0 && extra_ids <= 100000, config_file, ": extra_ids ", extra_ids, " is out of range");
  SpecialTokenDefaults defaults;
  defaults.attributes = {{"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  for (std::int64_t i = 0; i < extra_ids; ++i) defaults.additional.push_back("<extra_id_" + std::to_string(i) + ">");
  TokenizerSpecialTokens tokens = files.special_tokens(defaults);
  const auto sentinels = std::count_if(tokens.additional.begin(), tokens.additional.end(), [](const std::string& token) {
    return token.find("<extra_id_") != std::string::npos;
  });
  if (sentinels == 0) {
    tokens.additional.insert(tokens.additional.end(), defaults.additional.begin(), defaults.additional.end());
  } else {
    check(extra_ids == 0 || sentinels == extra_ids, config_file, ": extra_ids (", extra_ids,
          ") and the <extra_id_N> tokens among additional_special_tokens (", sentinels,
          ") disagree (T5Tokenizer raises ValueError)");
  }
  return tokens;
}

inline AddedTokenModel added_token_model(const UnigramModel& model, const Normalizer& normalizer) {
  AddedTokenModel result;
  result.token_to_id = [&model](const std::string& token) { return model.token_to_id(token); };
  result.size = static_cast<std::int64_t>(model.size());
  if (!normalizer.empty()) result.normalize = [&normalizer](const std::string& text) { return normalizer.normalize(text); };
  return result;
}

inline void apply_tokenizer_config(const TransformersTokenizerFiles& files, const TokenizerSpecialTokens& special_tokens,
                                   UnigramTokenizerOptions& options) {
  options.pad_token = special_tokens.get("pad_token");
  if (files.config.contains("clean_up_tokenization_spaces")) {
    options.clean_up_tokenization_spaces = files.config.at("clean_up_tokenization_spaces").get<bool>();
  }
}

}  // namespace unigram_detail

// From tokenizer.json (what T5TokenizerFast uses whenever the folder has one).
inline std::unique_ptr<UnigramTokenizer> unigram_tokenizer_from_tokenizer_json(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory), tokenizer_json = folder / "tokenizer.json";
  const std::string file = tokenizer_json.string();
  try {
    const nlohmann::json root = text_detail::read_tokenizer_json(tokenizer_json);
    const nlohmann::json& model_json = root.at("model");
    check(model_json.value("type", "Unigram") == "Unigram", file, ": model type '",
          clip(model_json.value("type", "")), "' is not Unigram");
    std::vector<std::pair<std::string, double>> pieces;
    for (const nlohmann::json& entry : model_json.at("vocab")) {
      check(entry.is_array() && entry.size() == 2 && entry.at(0).is_string() && entry.at(1).is_number(), file,
            ": Unigram vocab entry ", pieces.size(), " is not [piece, score]: ", clip(entry.dump()));
      pieces.emplace_back(entry.at(0).get<std::string>(), entry.at(1).get<double>());
    }
    std::optional<std::int64_t> unk_id;
    if (model_json.contains("unk_id") && !model_json.at("unk_id").is_null())
      unk_id = json_integer(model_json.at("unk_id"), file, "model.unk_id");
    check(!unk_id || (*unk_id >= 0 && *unk_id < static_cast<std::int64_t>(pieces.size())), file, ": unk_id ",
          unk_id.value_or(0), " is outside the vocabulary of ", pieces.size());
    UnigramModel model(std::move(pieces), unk_id, model_json.value("byte_fallback", false));

    UnigramTokenizerOptions options;
    options.normalizer = parse_normalizer(root.value("normalizer", nlohmann::json()), file);
    const nlohmann::json pre_tokenizer = root.value("pre_tokenizer", nlohmann::json());
    if (!pre_tokenizer.is_null()) options.pre_tokenizer = parse_metaspace_pre_tokenizer(pre_tokenizer, file);
    const nlohmann::json decoder = root.value("decoder", nlohmann::json());
    if (!decoder.is_null()) options.decoder = parse_decoder(decoder, file);
    const nlohmann::json post_processor = root.value("post_processor", nlohmann::json());
    if (!post_processor.is_null()) {
      check(post_processor.value("type", "") == "TemplateProcessing", file, ": post_processor '",
            clip(post_processor.value("type", "")),
            "' is not supported with a Unigram model (expected TemplateProcessing)");
      options.sequence_template = parse_template_processing(post_processor, file);
    }
    // Enabled truncation or padding would change every encoding; HF's T5 files have neither.
    check(root.value("truncation", nlohmann::json()).is_null(), file, ": a \"truncation\" setting is not supported");
    check(root.value("padding", nlohmann::json()).is_null(), file, ": a \"padding\" setting is not supported");

    AddedVocabulary added;
    const AddedTokenModel token_model = unigram_detail::added_token_model(model, options.normalizer);
    std::vector<AddedToken> backend_tokens;
    const nlohmann::json added_entries = root.value("added_tokens", nlohmann::json::array());
    for (const nlohmann::json& entry : added_entries) {
      AddedToken token = added_token_from_json(entry, file);
      token.id = json_integer(entry.at("id"), file, "the id of added token '" + clip(token.content) + "'");
      check_token_id(token.id, static_cast<std::int64_t>(model.size() + added_entries.size()), token.content, file);
      backend_tokens.push_back(token);
      // Rust gives the id by content (warning when it differs from the file's).
      register_added_token(added, token, token_model);
    }
    const TransformersTokenizerFiles files = TransformersTokenizerFiles::read(folder);
    const TokenizerSpecialTokens special_tokens = unigram_detail::special_tokens_of(files, /*t5_by_default=*/false);
    add_transformers_tokens(added, token_model, files, backend_tokens, special_tokens);
    unigram_detail::apply_tokenizer_config(files, special_tokens, options);
    return std::make_unique<UnigramTokenizer>(std::move(model), std::move(added), std::move(options));
  } catch (const nlohmann::json::exception& error) {
    fail(file, ": unexpected JSON structure for a Unigram tokenizer: ", error.what());
  }
}

// From spiece.model (+ tokenizer_config.json, special_tokens_map.json, added_tokens.json), as
// transformers converts a slow T5Tokenizer (convert_slow_tokenizer.py T5Converter / SpmConverter):
//   model      Unigram over the pieces (piece, score) + <extra_id_{N-1}> .. <extra_id_0> (score 0),
//              unk_id = trainer_spec.unk_id, byte_fallback off (T5Converter does not handle it);
//   normalizer Precompiled(normalizer_spec.precompiled_charsmap, when there is one), then
//              Replace(" {2,}" -> " "). NOTE: this is the converter that made the checkpoints'
//              tokenizer.json. transformers >= 4.36 converts to Strip(right) + Replace(" {2,}" -> "▁")
//              instead, which drops the trailing "▁" of "trailing space "; we follow the checkpoint
//              so that both ways of loading a folder agree (the fixtures check both);
//   pre-tokenizer / decoder  Metaspace("▁", prepend_scheme): "always" (legacy, the default when
//              tokenizer_config.json has no "legacy"), "first" when legacy is false, "never" when
//              add_prefix_space is false;
//   template   $A </s>, with </s>'s piece id;
//   added      CONTROL pieces (special) and USER_DEFINED pieces, un-normalized, in id order.
// add_dummy_prefix and remove_extra_whitespaces of the normalizer_spec are read but, as in the
// converter, not used: the Metaspace prefix and the Replace step stand for them.
inline std::unique_ptr<UnigramTokenizer> unigram_tokenizer_from_sentencepiece(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory), spiece = folder / "spiece.model";
  const std::string file = spiece.string();
  try {
    const TransformersTokenizerFiles files = TransformersTokenizerFiles::read(folder);
    const std::string tokenizer_class = files.config.value("tokenizer_class", std::string("T5Tokenizer"));
    check(tokenizer_class.rfind("T5Tokenizer", 0) == 0, (folder / "tokenizer_config.json").string(),
          ": tokenizer_class '", clip(tokenizer_class), "': only T5Tokenizer is converted from spiece.model");
    const SentencePieceModel proto = read_sentencepiece_model(spiece);
    check(proto.trainer_spec.model_type == SentencePieceModel::ModelType::kUnigram, file,
          ": trainer_spec.model_type is ", static_cast<int>(proto.trainer_spec.model_type),
          ", but only Unigram (1) SentencePiece models are supported");

    std::vector<std::pair<std::string, double>> pieces;
    pieces.reserve(proto.pieces.size() + 100);
    for (const SentencePieceModel::Piece& piece : proto.pieces) pieces.emplace_back(piece.piece, piece.score);
    const std::int64_t extra_ids = files.config.value("extra_ids", std::int64_t{100});
    for (std::int64_t i = extra_ids - 1; i >= 0; --i) pieces.emplace_back("<extra_id_" + std::to_string(i) + ">", 0.0);
    const std::int64_t unk_id = proto.trainer_spec.unk_id;
    check(unk_id >= 0 && unk_id < static_cast<std::int64_t>(pieces.size()), file, ": trainer_spec.unk_id ", unk_id,
          " is outside the vocabulary of ", pieces.size());
    UnigramModel model(std::move(pieces), unk_id, /*byte_fallback=*/false);

    UnigramTokenizerOptions options;
    if (!proto.normalizer_spec.precompiled_charsmap.empty()) {
      NormalizerStep charsmap;
      charsmap.kind = NormalizerStep::Kind::kPrecompiled;
      charsmap.charsmap = std::make_shared<const PrecompiledCharsmap>(proto.normalizer_spec.precompiled_charsmap, file);
      options.normalizer.steps.push_back(std::move(charsmap));
    }
    NormalizerStep collapse_spaces;
    collapse_spaces.kind = NormalizerStep::Kind::kReplace;
    collapse_spaces.pattern = {" ", 2, std::numeric_limits<std::size_t>::max()};
    collapse_spaces.content = " ";
    options.normalizer.steps.push_back(std::move(collapse_spaces));

    Metaspace metaspace;
    const nlohmann::json legacy = files.config.value("legacy", nlohmann::json());
    const nlohmann::json add_prefix_space = files.config.value("add_prefix_space", nlohmann::json());
    if (add_prefix_space.is_boolean() && !add_prefix_space.get<bool>()) {
      metaspace.prepend_scheme = PrependScheme::kNever;
    } else if (legacy.is_boolean() && !legacy.get<bool>()) {
      metaspace.prepend_scheme = PrependScheme::kFirst;
    }
    options.pre_tokenizer = metaspace;
    DecoderStep metaspace_decoder;
    metaspace_decoder.kind = DecoderStep::Kind::kMetaspace;
    metaspace_decoder.replacement = metaspace.replacement;
    metaspace_decoder.prepend_scheme = metaspace.prepend_scheme;
    options.decoder.steps.push_back(std::move(metaspace_decoder));
    // T5Converter: ("</s>", convert_tokens_to_ids("</s>")); SentencePiece maps an unknown piece to unk.
    options.sequence_template.suffix.emplace_back("</s>", model.token_to_id("</s>").value_or(unk_id));

    AddedVocabulary added;
    const AddedTokenModel token_model = unigram_detail::added_token_model(model, options.normalizer);
    for (const SentencePieceModel::Piece& piece : proto.pieces) {
      const bool control = piece.type == SentencePieceModel::PieceType::kControl;
      if (control || piece.type == SentencePieceModel::PieceType::kUserDefined) {
        register_added_token(added, AddedToken{piece.piece, 0, control, false, false, false}, token_model);
      }
    }
    const TokenizerSpecialTokens special_tokens = unigram_detail::special_tokens_of(files, /*t5_by_default=*/true);
    add_transformers_tokens(added, token_model, files, {}, special_tokens);
    unigram_detail::apply_tokenizer_config(files, special_tokens, options);
    return std::make_unique<UnigramTokenizer>(std::move(model), std::move(added), std::move(options));
  } catch (const nlohmann::json::exception& error) {
    fail(directory, ": unexpected JSON structure in the tokenizer configuration: ", error.what());
  }
}

// Loads a Unigram (T5) tokenizer from a Hugging Face folder: tokenizer.json when present, else
// spiece.model.
inline std::unique_ptr<UnigramTokenizer> load_unigram_tokenizer(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory);
  if (fs::exists(folder / "tokenizer.json")) return unigram_tokenizer_from_tokenizer_json(directory);
  check(fs::exists(folder / "spiece.model"), "Unigram tokenizer folder ", directory,
        " has neither tokenizer.json nor spiece.model");
  return unigram_tokenizer_from_sentencepiece(directory);
}

}  // namespace blip
