// blip/text/tokenizer_base.hpp: the interface every tokenizer implements, and batching.
//
// One interface for the three tokenizers BLIP and BLIP-2 use: BERT WordPiece (BLIP),
// byte-level BPE (BLIP-2 OPT) and Unigram (BLIP-2 Flan-T5). The behaviour to reproduce is
// Hugging Face's FAST tokenizer (the Rust `tokenizers` library plus transformers' Python
// steps), because AutoProcessor/BlipProcessor load the fast one whenever tokenizer.json exists.
//
// A concrete tokenizer supplies three steps, and the base class composes them the way
// TokenizerImpl::encode + post_process do in Rust:
//   encode_text        text -> ids/tokens, without the template's special tokens
//                      (special tokens written IN the text are still recognised);
//   apply_template     add the template's special tokens (BERT: [CLS] ... [SEP]);
//   decode_ids         ids -> text.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/io/json_file.hpp"

namespace blip {

namespace text_detail {
// Python's str.replace(from, to): every non-overlapping occurrence, left to right.
inline void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::size_t position = text.find(from);
  if (position == std::string::npos) return;
  std::string replaced;
  replaced.reserve(text.size());
  std::size_t copied = 0;
  for (; position != std::string::npos; position = text.find(from, copied)) {
    replaced.append(text, copied, position - copied).append(to);
    copied = position + from.size();
  }
  replaced.append(text, copied, std::string::npos);
  text = std::move(replaced);
}

// The tokenizer files are read like every other JSON file (blip/io/json_file.hpp): tokenizer.json
// and vocab.json within kMaxTokenizerFileBytes, the configuration files around them within
// kMaxConfigFileBytes.
inline nlohmann::json read_tokenizer_json(const std::filesystem::path& path) {
  return read_json_file(path, kMaxTokenizerFileBytes);
}
using ::blip::read_config_json_file;

// The bytes of a whole tokenizer file (vocab.txt, merges.txt, spiece.model), a regular file of at
// most kMaxTokenizerFileBytes; names the file when it cannot be read.
inline std::string read_file_bytes(const std::filesystem::path& path) {
  return read_regular_file(path.string(), kMaxTokenizerFileBytes, "a tokenizer file");
}

// The id of an added_tokens_decoder key of tokenizer_config.json ({"30522": {...}}).
inline std::int64_t token_id_from_key(const std::string& key, const std::string& file) {
  std::int64_t id = -1;
  std::size_t used = 0;
  try {
    id = std::stoll(key, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == key.size() && !key.empty(), file, ": added_tokens_decoder key '", clip(key), "' is not an id");
  return id;
}
}  // namespace text_detail

// Token ids index dense tables (id -> token string) in the tokenizers, so an id
// must lie in [0, limit), where `limit` is the number of ids the files define:
// vocabulary entries plus added tokens (a vocab.txt: its line count). A real
// vocabulary is dense; one id of 10^8 in a 700 kB file would otherwise cost
// gigabytes. Errors name `owner` (the file or class) and the token.
inline void check_token_id(std::int64_t id, std::int64_t limit, std::string_view token, std::string_view owner) {
  check(id >= 0 && id < limit, owner, ": token '", clip(token), "' has id ", id, ", outside 0..", limit - 1,
        " (the files define ", limit, " ids; an id beyond them is a damaged file)");
}

namespace text_detail {
}  // namespace text_detail

// transformers' PreTrainedTokenizerBase.clean_up_tokenization, which decode() applies to the
// whole text when clean_up_tokenization_spaces is true.
inline std::string clean_up_tokenization(std::string text) {
  static const std::pair<std::string_view, std::string_view> kReplacements[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kReplacements) text_detail::replace_all(text, from, to);
  return text;
}

// The result of tokenizing one text: ids and the matching vocabulary strings
// (`tokenizer(text)["input_ids"]` and `convert_ids_to_tokens` of them).
struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::string> tokens;

  std::size_t size() const { return ids.size(); }
};

// The sequence template for one text (tokenizer.json "post_processor"): tokens
// before and after the text. BERT: prefix [CLS], suffix [SEP]; OPT: prefix </s>.
struct SequenceTemplate {
  std::vector<std::pair<std::string, std::int64_t>> prefix, suffix;

  std::size_t size() const { return prefix.size() + suffix.size(); }
  void apply(Encoding& encoding) const {
    Encoding result;
    result.ids.reserve(encoding.size() + size());
    result.tokens.reserve(encoding.size() + size());
    for (const auto& [token, id] : prefix) {
      result.ids.push_back(id);
      result.tokens.push_back(token);
    }
    result.ids.insert(result.ids.end(), encoding.ids.begin(), encoding.ids.end());
    for (std::string& token : encoding.tokens) result.tokens.push_back(std::move(token));
    for (const auto& [token, id] : suffix) {
      result.ids.push_back(id);
      result.tokens.push_back(token);
    }
    encoding = std::move(result);
  }
};

// tokenizer.json's TemplateProcessing post-processor: its "single" template split into the tokens
// before and after $A (each special token may stand for several ids).
inline SequenceTemplate parse_template_processing(const nlohmann::json& post_processor, const std::string& file) {
  SequenceTemplate sequence_template;
  bool seen_sequence = false;
  for (const nlohmann::json& piece : post_processor.at("single")) {
    if (piece.contains("Sequence")) {
      check(!seen_sequence, file, ": post_processor template has two sequences in \"single\"");
      seen_sequence = true;
      continue;
    }
    const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
    const nlohmann::json& special_tokens = post_processor.at("special_tokens");
    check(special_tokens.contains(name), file, ": post_processor template names special token '", clip(name),
          "' that is not in its special_tokens");
    const auto ids = special_tokens.at(name).at("ids").get<std::vector<std::int64_t>>();
    const auto tokens = special_tokens.at(name).at("tokens").get<std::vector<std::string>>();
    check(ids.size() == tokens.size(), file, ": special token '", clip(name), "' has ", ids.size(), " ids but ",
          tokens.size(), " tokens");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      (seen_sequence ? sequence_template.suffix : sequence_template.prefix).emplace_back(tokens[i], ids[i]);
    }
  }
  check(seen_sequence, file, ": post_processor template has no $A sequence");
  return sequence_template;
}

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // HF `tokenizer(text, add_special_tokens=...)`. With `max_length`, this is
  // `truncation=True, max_length=N`: the text's tokens are cut (from the right) to
  // N - num_special_tokens_to_add() so that the special tokens are kept and the result has at
  // most N ids. Throws when N is smaller than the number of special tokens (Rust would
  // underflow there).
  Encoding encode(std::string_view text, bool add_special_tokens = true,
                  std::optional<std::size_t> max_length = std::nullopt) const {
    Encoding encoding = encode_text(text);
    if (max_length) {
      const std::size_t added = add_special_tokens ? num_special_tokens_to_add() : 0;
      check(*max_length >= added, "Tokenizer::encode: max_length ", *max_length, " is smaller than the ", added,
            " special tokens the template adds");
      const std::size_t limit = *max_length - added;
      if (encoding.ids.size() > limit) {
        encoding.ids.resize(limit);
        encoding.tokens.resize(limit);
      }
    }
    if (add_special_tokens) apply_template(encoding);
    return encoding;
  }

  // HF `tokenizer.decode(ids, skip_special_tokens=..., clean_up_tokenization_spaces=...)`.
  // NOTE the default skip_special_tokens=true (HF's is False): generated ids are what this is
  // mostly used for. clean_up_tokenization_spaces unset = the tokenizer's own default
  // (BERT and T5: true; OPT: false, from its tokenizer_config.json).
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = true,
                     std::optional<bool> clean_up_tokenization_spaces = std::nullopt) const {
    return decode_ids(ids, skip_special_tokens,
                      clean_up_tokenization_spaces.value_or(default_clean_up_tokenization_spaces()));
  }

  // The vocabulary string of an id (added tokens first, then the model's vocabulary), or
  // nullopt for an id the tokenizer does not know (the fast tokenizer returns None there; e.g.
  // BLIP's [DEC] = 30522, which only the model knows).
  virtual std::optional<std::string> id_to_token(std::int64_t id) const = 0;
  virtual std::optional<std::int64_t> token_to_id(std::string_view token) const = 0;

  virtual std::int64_t pad_token_id() const = 0;
  // len(tokenizer): the number of ids, vocabulary plus added tokens.
  virtual std::int64_t size() const = 0;
  // Ids that decode(..., skip_special_tokens=true) drops (HF all_special_ids).
  virtual std::vector<std::int64_t> special_token_ids() const = 0;
  virtual bool is_special_token_id(std::int64_t id) const = 0;
  // How many ids apply_template adds to one sequence (BERT 2, OPT 1, T5 1).
  virtual std::size_t num_special_tokens_to_add() const = 0;
  virtual bool default_clean_up_tokenization_spaces() const = 0;
  // A short name for messages: "bert-wordpiece", ...
  virtual std::string_view kind() const = 0;

  // The individual steps, public so that callers can e.g. tokenize once and apply the
  // template to pieces themselves.
  virtual Encoding encode_text(std::string_view text) const = 0;
  virtual void apply_template(Encoding& encoding) const = 0;

 protected:
  virtual std::string decode_ids(const std::vector<std::int64_t>& ids, bool skip_special_tokens,
                                 bool clean_up_tokenization_spaces) const = 0;
};

// A right-padded batch: HF `tokenizer(texts, padding=True)` (padding side right for all
// three tokenizers), as [batch, longest] tensors. attention_mask is 1 on real tokens.
struct BatchEncoding {
  Tensor<std::int64_t> input_ids;       // [B, T], padded with pad_token_id()
  Tensor<std::int64_t> attention_mask;  // [B, T], 1 = token, 0 = padding
};

// HF `tokenizer(texts, padding=True[, truncation=True, max_length=N])`.
// An empty `texts` gives [0, 0] tensors.
inline BatchEncoding encode_batch(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                  bool add_special_tokens = true,
                                  std::optional<std::size_t> max_length = std::nullopt) {
  std::vector<Encoding> encodings;
  encodings.reserve(texts.size());
  std::size_t longest = 0;
  for (const std::string& text : texts) {
    encodings.push_back(tokenizer.encode(text, add_special_tokens, max_length));
    longest = std::max(longest, encodings.back().size());
  }
  const auto batch = static_cast<std::int64_t>(texts.size());
  const auto length = static_cast<std::int64_t>(longest);
  BatchEncoding result{Tensor<std::int64_t>(Shape{batch, length}), Tensor<std::int64_t>(Shape{batch, length})};
  result.input_ids.fill(tokenizer.pad_token_id());  // the mask is already zero-filled
  for (std::int64_t row = 0; row < batch; ++row) {
    const Encoding& encoding = encodings[static_cast<std::size_t>(row)];
    std::int64_t* ids = result.input_ids.data() + row * length;
    std::int64_t* mask = result.attention_mask.data() + row * length;
    for (std::size_t column = 0; column < encoding.size(); ++column) {
      ids[column] = encoding.ids[column];
      mask[column] = 1;
    }
  }
  return result;
}

}  // namespace blip
