// blip/io/config/pretrained_config.hpp: the fields every HF
// `PretrainedConfig` carries, shared by all the model configs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/config/fields.hpp"
#include "blip/io/config/generation_config.hpp"
#include "blip/io/config/json_reader.hpp"

namespace blip {

// Fields every HF `PretrainedConfig` carries (set by its base constructor)
// that matter for inference. Each concrete config overrides the defaults its
// HF class passes to `super().__init__`.
struct PretrainedConfigCommon {
  std::string model_type;                  // the HF class's `model_type`
  std::vector<std::string> architectures;  // HF None → empty
  std::optional<std::int64_t> bos_token_id;
  std::optional<std::int64_t> pad_token_id;
  std::optional<std::int64_t> sep_token_id;
  std::optional<std::int64_t> decoder_start_token_id;
  // HF accepts None, an int or a list of ints; empty means None.
  std::vector<std::int64_t> eos_token_id;
  bool tie_word_embeddings = true;
  bool is_encoder_decoder = false;
  bool is_decoder = false;
  bool add_cross_attention = false;
  std::string torch_dtype;  // dtype the checkpoint was saved in ("float32", "float16", ...); "" when None
  // Generation keys (max_length, num_beams, ...) written into this config
  // object itself, the pre-generation_config.json way. HF's
  // `GenerationConfig.from_model_config` reads them; nothing else does.
  // Not a visited field: read_config_fields() collects it.
  nlohmann::json generation_parameters = nlohmann::json::object();

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    v("model_type", model_type, FixedByClass{});
    v("architectures", architectures);
    v("bos_token_id", bos_token_id);
    v("pad_token_id", pad_token_id);
    v("sep_token_id", sep_token_id);
    v("decoder_start_token_id", decoder_start_token_id);
    v("eos_token_id", eos_token_id, TokenIds{});
    v("tie_word_embeddings", tie_word_embeddings);
    v("is_encoder_decoder", is_encoder_decoder);
    v("is_decoder", is_decoder);
    v("add_cross_attention", add_cross_attention);
    v("torch_dtype", torch_dtype, NullAsEmpty{});
  }
};

// A token id the caller cannot do without: the value, or a blip::Error naming
// `key` when the config has None there (HF would fail later, less clearly).
inline std::int64_t required_token_id(const std::optional<std::int64_t>& id, const std::string& key) {
  check(id.has_value(), "config: ", key, " is null, but this model needs it");
  return *id;
}

namespace config_detail {

// The legacy generation keys present in a model config object (nulls
// included, as HF keeps them), for GenerationConfig.from_model_config. The
// token ids are typed fields of PretrainedConfigCommon, with the class
// defaults applied, and are left out here.
inline json legacy_generation_parameters(const ObjectReader& reader) {
  json parameters = json::object();
  for (const std::string& key : generation_keys()) {
    if (key == "bos_token_id" || key == "eos_token_id" || key == "pad_token_id" || key == "decoder_start_token_id") {
      continue;
    }
    if (const json* value = reader.find(key)) parameters[key] = *value;
  }
  for (const std::string& key : unmodelled_generation_keys()) {
    if (const json* value = reader.find(key)) parameters[key] = *value;
  }
  return parameters;
}

// What every model config's read_config() starts with: the visited fields,
// then the legacy generation keys.
template <class Config>
void read_config_fields(const ObjectReader& reader, Config& config) {
  read_fields(reader, config);
  config.generation_parameters = legacy_generation_parameters(reader);
}

}  // namespace config_detail
}  // namespace blip
