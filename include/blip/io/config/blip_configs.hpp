// blip/io/config/blip_configs.hpp: transformers' BlipVisionConfig,
// BlipTextConfig and BlipConfig (model_type "blip").
//
// Each field is listed once, in visit_fields(), with HF's key and its range
// check; the default member initializers are EXACTLY the defaults HF's
// constructors apply when a key is absent. read_config() applies HF's
// cross-field rules after the visit, commented where they happen.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "blip/core/error.hpp"
#include "blip/io/config/fields.hpp"
#include "blip/io/config/json_reader.hpp"
#include "blip/io/config/pretrained_config.hpp"

namespace blip {

// transformers BlipVisionConfig: the ViT image encoder of BLIP.
struct BlipVisionConfig : PretrainedConfigCommon {
  BlipVisionConfig() { model_type = "blip_vision_model"; }
  std::int64_t hidden_size = 768;
  std::int64_t intermediate_size = 3072;
  std::int64_t projection_dim = 512;  // unused by the BLIP models themselves (BlipConfig.projection_dim is used)
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t image_size = 384;
  std::int64_t patch_size = 16;
  // Not a BlipVisionConfig argument: HF keeps a config.json value as a plain
  // attribute but the patch embedding is hard-wired to 3 input channels, so
  // the parser accepts only 3.
  std::int64_t num_channels = 3;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-5;

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("hidden_size", hidden_size, Positive{});
    v("intermediate_size", intermediate_size, Positive{});
    v("projection_dim", projection_dim, Positive{});
    v("num_hidden_layers", num_hidden_layers, Positive{});
    v("num_attention_heads", num_attention_heads, Positive{});
    v("image_size", image_size, Positive{});
    v("patch_size", patch_size, Positive{});
    v("num_channels", num_channels);  // must be 3: checked in read_config
    v("hidden_act", hidden_act);
    v("layer_norm_eps", layer_norm_eps, Epsilon{});
  }
};

// transformers BlipTextConfig: the BERT-style text encoder / decoder of BLIP.
struct BlipTextConfig : PretrainedConfigCommon {
  BlipTextConfig() {
    model_type = "blip_text_model";
    bos_token_id = 30522;  // [DEC], the decoder's start token
    eos_token_id = {2};    // NOTE: BLIP's generate() stops on sep_token_id instead
    pad_token_id = 0;
    sep_token_id = 102;    // [SEP]
    is_decoder = true;     // BlipTextConfig's own default, unlike PretrainedConfig's False
  }
  std::int64_t vocab_size = 30524;
  std::int64_t hidden_size = 768;
  // Always equal to vision_config.hidden_size inside a BlipConfig (HF overwrites it).
  std::int64_t encoder_hidden_size = 768;
  std::int64_t intermediate_size = 3072;
  std::int64_t projection_dim = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 8;
  std::int64_t max_position_embeddings = 512;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-12;
  bool use_cache = true;

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("vocab_size", vocab_size, Positive{});
    v("hidden_size", hidden_size, Positive{});
    v("encoder_hidden_size", encoder_hidden_size, Positive{});
    v("intermediate_size", intermediate_size, Positive{});
    v("projection_dim", projection_dim, Positive{});
    v("num_hidden_layers", num_hidden_layers, Positive{});
    v("num_attention_heads", num_attention_heads, Positive{});
    v("max_position_embeddings", max_position_embeddings, Positive{});
    v("hidden_act", hidden_act);
    v("layer_norm_eps", layer_norm_eps, Epsilon{});
    v("use_cache", use_cache);
  }
};

// transformers BlipConfig (model_type "blip").
struct BlipConfig : PretrainedConfigCommon {
  BlipConfig() { model_type = "blip"; }
  BlipTextConfig text_config;
  BlipVisionConfig vision_config;
  std::int64_t projection_dim = 512;           // BlipModel's contrastive projections
  std::int64_t image_text_hidden_size = 256;   // ITM/ITC: vision_proj / text_proj output size

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("text_config", text_config);  // absent or null → {} (HF's `if text_config is None`)
    v("vision_config", vision_config);
    v("projection_dim", projection_dim, Positive{});
    v("image_text_hidden_size", image_text_hidden_size, Positive{});
  }
};

inline void to_json(nlohmann::json& out, const BlipVisionConfig& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const BlipTextConfig& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const BlipConfig& config) { config_detail::write_fields(out, config); }

namespace config_detail {

inline void read_config(const ObjectReader& reader, BlipVisionConfig& config) {
  read_config_fields(reader, config);
  check_fields(reader, config);
  require_rgb_channels(reader, config.num_channels);
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
}

inline void read_config(const ObjectReader& reader, BlipTextConfig& config) {
  read_config_fields(reader, config);
  check_fields(reader, config);
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
}

inline void read_config(const ObjectReader& reader, BlipConfig& config) {
  read_config_fields(reader, config);  // text_config and vision_config through the two functions above
  // HF BlipConfig.__init__: the text model's cross-attention reads the vision
  // model's output, whatever text_config said.
  config.text_config.encoder_hidden_size = config.vision_config.hidden_size;
  check_fields(reader, config);
}

}  // namespace config_detail

// Parses a BLIP config.json object (model_type "blip"). `source` names the
// file (or any label) in error messages.
inline BlipConfig parse_blip_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  require_object(document, source);
  const ObjectReader reader(document, source, "");
  require_top_level_model_type(reader, "blip");
  BlipConfig config;
  read_config(reader, config);
  return config;
}

}  // namespace blip
