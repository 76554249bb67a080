// blip/text/transformers_added_tokens.hpp: the added and special tokens that transformers (4.45)
// registers with the Rust backend when it loads a fast tokenizer, and Blip2Processor's <image>.
//
// The order of events being replayed:
//   1. The backend's own added tokens (tokenizer.json "added_tokens", or what the slow->fast
//      converter registered), each given an id by Rust's rule (see register_added_token).
//   2. PreTrainedTokenizerBase._from_pretrained builds `added_tokens_decoder`: tokenizer_config.json's
//      "added_tokens_decoder" when present; otherwise (legacy) added_tokens.json, every entry an
//      ordinary normalized token unless it names a configured special token, then tokenizer.json's
//      added tokens by id. In the legacy case special_tokens_map.json overrides the config's special
//      tokens (and adds to its additional_special_tokens).
//   3. PreTrainedTokenizerFast.__init__ adds the entries of (2) that the backend does not hold with
//      exactly these flags, then every special token (bos, eos, unk, sep, pad, cls, mask,
//      additional_special_tokens, with the class's defaults) whose content the backend lacks. A token
//      is special when flagged or named a special token; special ones are never normalized unless
//      they say so.
//   4. Blip2Processor.__init__ (when the folder belongs to one) adds <image> again as a special,
//      un-normalized token: the re-registration keeps its id and replaces its flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/added_vocabulary.hpp"
#include "blip/text/tokenizer_base.hpp"

namespace blip {

// The model a set of added tokens sits on: its vocabulary lookup and size, and the backend's
// normalizer (for tokens matched after normalization; empty function = no normalizer).
struct AddedTokenModel {
  std::function<std::optional<std::int64_t>(const std::string&)> token_to_id;
  std::int64_t size = 0;
  std::function<std::string(const std::string&)> normalize;
};

// Rust AddedVocabulary::add_tokens for one token: it keeps the id its content already has (as an
// added token, else in the model's vocabulary), or takes the next free id. Returns the id.
inline std::int64_t register_added_token(AddedVocabulary& added, AddedToken token, const AddedTokenModel& model) {
  std::optional<std::int64_t> id = added.token_to_id(token.content);
  if (!id) id = model.token_to_id(token.content);
  token.id = id ? *id : added.next_id(model.size);
  std::optional<std::string> normalized_form;
  if (token.normalized && model.normalize) normalized_form = model.normalize(token.content);
  added.insert(token, normalized_form);
  return token.id;
}

// What a tokenizer class supplies when the files are silent (T5TokenizerFast: eos "</s>",
// unk "<unk>", pad "<pad>" and the <extra_id_N> sentinels).
struct SpecialTokenDefaults {
  std::map<std::string, std::string> attributes;  // "eos_token" -> "</s>", ...
  std::vector<std::string> additional;            // used when no additional_special_tokens are configured
};

// The special tokens transformers ends up with: attribute -> content, and the additional ones.
struct TokenizerSpecialTokens {
  std::map<std::string, std::string> attributes;
  std::vector<std::string> additional;

  std::optional<std::string> get(const std::string& attribute) const {
    const auto found = attributes.find(attribute);
    return found == attributes.end() ? std::nullopt : std::optional<std::string>(found->second);
  }
  // all_special_tokens, in transformers' order.
  std::vector<std::string> all() const {
    std::vector<std::string> tokens;
    for (const char* attribute : kAttributes) {
      if (const auto token = get(attribute)) tokens.push_back(*token);
    }
    tokens.insert(tokens.end(), additional.begin(), additional.end());
    return tokens;
  }
  bool contains(const std::string& content) const {
    const std::vector<std::string> tokens = all();
    return std::find(tokens.begin(), tokens.end(), content) != tokens.end();
  }

  // SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES without additional_special_tokens.
  static constexpr const char* kAttributes[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                                "pad_token", "cls_token", "mask_token"};
};

namespace added_tokens_detail {

// A special-token value: a string, or an AddedToken object {"content": ...}; nullopt for null.
inline std::optional<std::string> token_content(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return std::nullopt;
}

inline bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.special == b.special && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
         a.normalized == b.normalized;
}

}  // namespace added_tokens_detail

// The files of a Hugging Face tokenizer folder that transformers reads around the backend.
struct TransformersTokenizerFiles {
  std::filesystem::path folder;
  nlohmann::json config = nlohmann::json::object();       // tokenizer_config.json
  nlohmann::json special_map = nlohmann::json::object();  // special_tokens_map.json
  bool has_added_tokens_json = false;
  nlohmann::json added_tokens_json = nlohmann::json::object();  // added_tokens.json {"token": id}

  static TransformersTokenizerFiles read(const std::filesystem::path& folder) {
    TransformersTokenizerFiles files;
    files.folder = folder;
    if (std::filesystem::exists(folder / "tokenizer_config.json")) {
      files.config = text_detail::read_config_json_file(folder / "tokenizer_config.json");
      check(files.config.is_object(), (folder / "tokenizer_config.json").string(), ": expected a JSON object");
    }
    if (std::filesystem::exists(folder / "special_tokens_map.json")) {
      files.special_map = text_detail::read_config_json_file(folder / "special_tokens_map.json");
      check(files.special_map.is_object(), (folder / "special_tokens_map.json").string(), ": expected a JSON object");
    }
    if (std::filesystem::exists(folder / "added_tokens.json")) {
      files.has_added_tokens_json = true;
      files.added_tokens_json = text_detail::read_config_json_file(folder / "added_tokens.json");
      check(files.added_tokens_json.is_object(), (folder / "added_tokens.json").string(),
            ": expected a {\"token\": id} object");
    }
    return files;
  }

  bool legacy_added_tokens() const { return !config.contains("added_tokens_decoder"); }

  // Whether the folder is a Blip2Processor's (tokenizer_config.json or processor_config.json names
  // it), whose __init__ registers <image>.
  bool belongs_to_blip2_processor() const {
    if (config.value("processor_class", nlohmann::json()) == "Blip2Processor") return true;
    const std::filesystem::path processor = folder / "processor_config.json";
    if (!std::filesystem::exists(processor)) return false;
    const nlohmann::json processor_config = text_detail::read_config_json_file(processor);
    return processor_config.is_object() && processor_config.value("processor_class", nlohmann::json()) == "Blip2Processor";
  }

  // The special tokens after step 2 (config values, overridden in the legacy case by
  // special_tokens_map.json), with the class's defaults for what neither sets.
  TokenizerSpecialTokens special_tokens(const SpecialTokenDefaults& defaults) const {
    TokenizerSpecialTokens tokens;
    std::vector<std::string> additional;
    bool additional_configured = false;
    auto take = [&](const nlohmann::json& source) {
      for (const char* attribute : TokenizerSpecialTokens::kAttributes) {
        if (!source.contains(attribute)) continue;
        if (const auto content = added_tokens_detail::token_content(source.at(attribute))) {
          tokens.attributes[attribute] = *content;
        } else {
          tokens.attributes.erase(attribute);  // an explicit null
        }
      }
      if (source.contains("additional_special_tokens") && source.at("additional_special_tokens").is_array()) {
        additional_configured = true;
        for (const nlohmann::json& value : source.at("additional_special_tokens")) {
          const auto content = added_tokens_detail::token_content(value);
          if (content && std::find(additional.begin(), additional.end(), *content) == additional.end()) {
            additional.push_back(*content);
          }
        }
      }
    };
    take(config);
    if (legacy_added_tokens()) take(special_map);
    for (const auto& [attribute, content] : defaults.attributes) {
      if (!config.contains(attribute) && !(legacy_added_tokens() && special_map.contains(attribute))) {
        tokens.attributes.emplace(attribute, content);
      }
    }
    tokens.additional = additional_configured ? additional : defaults.additional;
    return tokens;
  }
};

// Steps 2 to 4 above, on a backend whose own added tokens (step 1) are already in `added`.
// `backend_tokens`: those tokens as tokenizer.json lists them with their ids (empty for a
// converted tokenizer); `special_tokens`: from TransformersTokenizerFiles::special_tokens.
inline void add_transformers_tokens(AddedVocabulary& added, const AddedTokenModel& model,
                                    const TransformersTokenizerFiles& files,
                                    const std::vector<AddedToken>& backend_tokens,
                                    const TokenizerSpecialTokens& special_tokens) {
  const std::string config_file = (files.folder / "tokenizer_config.json").string();
  const std::string added_file = (files.folder / "added_tokens.json").string();
  std::map<std::int64_t, AddedToken> decoder;  // added_tokens_decoder, by id
  if (!files.legacy_added_tokens()) {
    const nlohmann::json& entries = files.config.at("added_tokens_decoder");
    check(entries.is_object(), config_file, ": added_tokens_decoder must be an object {\"id\": token}");
    for (const auto& [id_text, entry] : entries.items()) {
      const std::int64_t id = text_detail::token_id_from_key(id_text, config_file);
      decoder[id] = added_token_from_json(entry, config_file);
      check_token_id(id, model.size + static_cast<std::int64_t>(entries.size()), decoder[id].content, config_file);
    }
  } else {
    if (files.has_added_tokens_json) {
      // The special tokens named in the config files (not the class defaults) make an entry special.
      std::vector<std::string> named;
      auto name = [&](const nlohmann::json& source) {
        for (const char* attribute : TokenizerSpecialTokens::kAttributes) {
          if (source.contains(attribute)) {
            if (const auto content = added_tokens_detail::token_content(source.at(attribute))) named.push_back(*content);
          }
        }
        if (source.contains("additional_special_tokens") && source.at("additional_special_tokens").is_array()) {
          for (const nlohmann::json& value : source.at("additional_special_tokens")) {
            if (const auto content = added_tokens_detail::token_content(value)) named.push_back(*content);
          }
        }
      };
      name(files.config);
      name(files.special_map);
      for (const auto& [content, id] : files.added_tokens_json.items()) {
        const std::int64_t token_id = json_integer(id, added_file, "the id of '" + clip(content) + "'");
        check_token_id(token_id, model.size + static_cast<std::int64_t>(files.added_tokens_json.size()), content,
                       added_file);
        const bool special = std::find(named.begin(), named.end(), content) != named.end();
        decoder[token_id] = AddedToken{content, 0, special, false, false, !special};
      }
    }
    for (const AddedToken& token : backend_tokens) decoder[token.id] = token;
  }

  std::vector<AddedToken> to_add;
  for (const auto& [id, token] : decoder) {
    const AddedToken* held = nullptr;
    if (const auto held_id = added.token_to_id(token.content)) held = added.find(*held_id);
    if (held == nullptr || !added_tokens_detail::same_token(*held, token)) to_add.push_back(token);
  }
  for (const std::string& content : special_tokens.all()) {
    const bool known = added.token_to_id(content).has_value() ||
                       std::any_of(to_add.begin(), to_add.end(), [&](const AddedToken& t) { return t.content == content; });
    // A special token given as a string: AddedToken(content, special=True), never normalized.
    if (!known) to_add.push_back(AddedToken{content, 0, true, false, false, false});
  }
  for (AddedToken token : to_add) {
    if (special_tokens.contains(token.content)) token.special = true;  // add_special_tokens forces the flag
    register_added_token(added, token, model);
  }

  if (files.belongs_to_blip2_processor()) {
    register_added_token(added, AddedToken{"<image>", 0, true, false, false, false}, model);
  }
}

}  // namespace blip
