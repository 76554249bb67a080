// blip/text/tokenizer.hpp: load the tokenizer of a Hugging Face checkpoint folder.
//
//   auto tokenizer = blip::load_tokenizer("Salesforce/blip-image-captioning-base");
//   blip::Encoding prompt = tokenizer->encode("a picture of");        // [101, 1037, 3861, 1997, 102]
//   std::string caption = tokenizer->decode(generated_ids);           // [DEC] and [SEP] dropped
//
// The kind is detected the way transformers' AutoTokenizer ends up choosing: tokenizer.json's
// model type when the file exists (WordPiece = BERT, BPE = OPT/GPT-2, Unigram = T5), else
// tokenizer_config.json's tokenizer_class, else a lone vocab.txt (BERT), vocab.json + merges.txt
// (GPT-2) or spiece.model (T5).
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "blip/core/error.hpp"
#include "blip/text/bert_tokenizer.hpp"
#include "blip/text/byte_level_bpe_tokenizer.hpp"
#include "blip/text/tokenizer_base.hpp"
#include "blip/text/unigram_tokenizer.hpp"

namespace blip {

namespace tokenizer_detail {
// The model type named in tokenizer.json. This parses the file once more than strictly needed
// (a few milliseconds even for OPT's 3.5 MB file), which keeps each loader self-contained.
inline std::string tokenizer_json_model_type(const std::filesystem::path& path) {
  const nlohmann::json root = text_detail::read_tokenizer_json(path);
  check(root.contains("model") && root.at("model").is_object(), path.string(), ": no \"model\" object");
  const nlohmann::json& model = root.at("model");
  if (model.contains("type") && model.at("type").is_string()) return model.at("type").get<std::string>();
  // Old tokenizer.json files omit the type; the model's fields tell it.
  if (model.contains("merges")) return "BPE";
  if (model.contains("continuing_subword_prefix") || model.contains("max_input_chars_per_word")) return "WordPiece";
  if (model.contains("vocab") && model.at("vocab").is_array()) return "Unigram";
  fail(path.string(), ": cannot tell the tokenizer model type");
}

}  // namespace tokenizer_detail

inline std::unique_ptr<Tokenizer> load_tokenizer(const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path folder(directory);
  check(fs::is_directory(folder), "load_tokenizer: ", directory, " is not a directory");
  const fs::path tokenizer_json = folder / "tokenizer.json", config_json = folder / "tokenizer_config.json";

  if (fs::exists(tokenizer_json)) {
    const std::string type = tokenizer_detail::tokenizer_json_model_type(tokenizer_json);
    if (type == "WordPiece") return load_bert_tokenizer(directory);
    if (type == "BPE") return load_byte_level_bpe_tokenizer(directory);
    if (type == "Unigram") return load_unigram_tokenizer(directory);
    fail("load_tokenizer: ", tokenizer_json.string(), ": unknown model type '", clip(type), "'");
  }
  if (fs::exists(config_json)) {
    const nlohmann::json config = text_detail::read_config_json_file(config_json);
    const std::string tokenizer_class =
        config.contains("tokenizer_class") && config.at("tokenizer_class").is_string()
            ? config.at("tokenizer_class").get<std::string>()
            : "";
    if (tokenizer_class == "BertTokenizer" || tokenizer_class == "BertTokenizerFast") return load_bert_tokenizer(directory);
    if (tokenizer_class.rfind("GPT2Tokenizer", 0) == 0) return load_byte_level_bpe_tokenizer(directory);
    if (tokenizer_class.rfind("T5Tokenizer", 0) == 0) return load_unigram_tokenizer(directory);
    if (!tokenizer_class.empty() && !fs::exists(folder / "vocab.txt") && !fs::exists(folder / "spiece.model")) {
      fail("load_tokenizer: ", config_json.string(), ": tokenizer_class '", clip(tokenizer_class), "' is not supported");
    }
  }
  if (fs::exists(folder / "vocab.txt")) return load_bert_tokenizer(directory);
  // A bare GPT-2 folder (vocab.json + merges.txt, nothing else): GPT2Tokenizer's defaults.
  if (fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt")) return load_byte_level_bpe_tokenizer(directory);
  // A bare SentencePiece model: T5Tokenizer's defaults.
  if (fs::exists(folder / "spiece.model")) return load_unigram_tokenizer(directory);
  fail("load_tokenizer: ", directory,
       " has no tokenizer.json, tokenizer_config.json, vocab.txt, vocab.json + merges.txt or spiece.model");
}

}  // namespace blip
