// blip/io/config/blip2_configs.hpp: transformers' Blip2VisionConfig,
// Blip2QFormerConfig, OPTConfig, T5Config and Blip2Config (model_type
// "blip-2").
//
// Each field is listed once, in visit_fields(), with HF's key and its range
// check; the default member initializers are EXACTLY the defaults HF's
// constructors apply when a key is absent. read_config() applies HF's
// cross-field rules after the visit, commented where they happen.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "blip/core/error.hpp"
#include "blip/io/config/fields.hpp"
#include "blip/io/config/json_reader.hpp"
#include "blip/io/config/pretrained_config.hpp"

namespace blip {

// transformers Blip2VisionConfig: the EVA ViT-g image encoder of BLIP-2.
// A separate struct (not an alias of BlipVisionConfig) because the defaults
// differ and BLIP-2's attention has q/v biases only (`qkv_bias`).
struct Blip2VisionConfig : PretrainedConfigCommon {
  Blip2VisionConfig() { model_type = "blip_2_vision_model"; }
  std::int64_t hidden_size = 1408;
  std::int64_t intermediate_size = 6144;
  std::int64_t num_hidden_layers = 39;
  std::int64_t num_attention_heads = 16;
  std::int64_t image_size = 224;
  std::int64_t patch_size = 14;
  std::int64_t num_channels = 3;  // as in BlipVisionConfig: HF's patch embedding is hard-wired to 3
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-6;
  bool qkv_bias = true;  // true: separate q_bias and v_bias (no key bias); false: no qkv bias at all

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("hidden_size", hidden_size, Positive{});
    v("intermediate_size", intermediate_size, Positive{});
    v("num_hidden_layers", num_hidden_layers, Positive{});
    v("num_attention_heads", num_attention_heads, Positive{});
    v("image_size", image_size, Positive{});
    v("patch_size", patch_size, Positive{});
    v("num_channels", num_channels);  // must be 3: checked in read_config
    v("hidden_act", hidden_act);
    v("layer_norm_eps", layer_norm_eps, Epsilon{});
    v("qkv_bias", qkv_bias);
  }
};

// transformers Blip2QFormerConfig: the querying transformer (BERT + cross-attention).
struct Blip2QFormerConfig : PretrainedConfigCommon {
  Blip2QFormerConfig() {
    model_type = "blip_2_qformer";
    pad_token_id = 0;
  }
  std::int64_t vocab_size = 30522;
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  std::int64_t max_position_embeddings = 512;
  double layer_norm_eps = 1e-12;
  std::string position_embedding_type = "absolute";
  // Layer i has cross-attention to the image iff i % cross_attention_frequency == 0.
  std::int64_t cross_attention_frequency = 2;
  // Always equal to vision_config.hidden_size inside a Blip2Config (HF overwrites it).
  std::int64_t encoder_hidden_size = 1408;
  bool use_qformer_text_input = false;

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("vocab_size", vocab_size, Positive{});
    v("hidden_size", hidden_size, Positive{});
    v("num_hidden_layers", num_hidden_layers, Positive{});
    v("num_attention_heads", num_attention_heads, Positive{});
    v("intermediate_size", intermediate_size, Positive{});
    v("hidden_act", hidden_act);
    v("max_position_embeddings", max_position_embeddings, Positive{});
    v("layer_norm_eps", layer_norm_eps, Epsilon{});
    v("position_embedding_type", position_embedding_type);
    v("cross_attention_frequency", cross_attention_frequency, Positive{});
    v("encoder_hidden_size", encoder_hidden_size, Positive{});
    v("use_qformer_text_input", use_qformer_text_input);
  }
};

// transformers OPTConfig: BLIP-2's decoder-only language model.
struct OptConfig : PretrainedConfigCommon {
  OptConfig() {
    model_type = "opt";
    pad_token_id = 1;
    bos_token_id = 2;
    eos_token_id = {2};
  }
  std::int64_t vocab_size = 50272;
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t ffn_dim = 3072;
  std::int64_t max_position_embeddings = 2048;  // the learned table has max_position_embeddings + 2 rows (OPT's offset)
  bool do_layer_norm_before = true;             // pre-LN (every OPT except 350m)
  // HF key `_remove_final_layer_norm`: drops the decoder's final LayerNorm
  // (only meaningful when do_layer_norm_before).
  bool remove_final_layer_norm = false;
  // Token-embedding width; project_in/project_out exist iff it differs from
  // hidden_size. HF: None → hidden_size.
  std::int64_t word_embed_proj_dim = 768;
  std::int64_t num_attention_heads = 12;
  std::string activation_function = "relu";
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool use_cache = true;

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("vocab_size", vocab_size, Positive{});
    v("hidden_size", hidden_size, Positive{});
    v("num_hidden_layers", num_hidden_layers, Positive{});
    v("ffn_dim", ffn_dim, Positive{});
    v("max_position_embeddings", max_position_embeddings, Positive{});
    v("do_layer_norm_before", do_layer_norm_before);
    v("_remove_final_layer_norm", remove_final_layer_norm);
    v("word_embed_proj_dim", word_embed_proj_dim, Positive{}, NullIsDerived{});
    v("num_attention_heads", num_attention_heads, Positive{});
    v("activation_function", activation_function);
    v("enable_bias", enable_bias);
    v("layer_norm_elementwise_affine", layer_norm_elementwise_affine);
    v("use_cache", use_cache);
  }
};

// transformers T5Config: BLIP-2's encoder-decoder language model (Flan-T5).
struct T5Config : PretrainedConfigCommon {
  T5Config() {
    model_type = "t5";
    pad_token_id = 0;
    eos_token_id = {1};
    is_encoder_decoder = true;
  }
  std::int64_t vocab_size = 32128;
  std::int64_t d_model = 512;  // HF alias: hidden_size
  std::int64_t d_kv = 64;      // per-head size; num_heads * d_kv need not equal d_model
  std::int64_t d_ff = 2048;
  std::int64_t num_layers = 6;          // encoder layers; HF alias: num_hidden_layers
  std::int64_t num_decoder_layers = 6;  // HF: None → num_layers
  std::int64_t num_heads = 8;           // HF alias: num_attention_heads
  std::int64_t relative_attention_num_buckets = 32;
  std::int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "relu";  // "{act}" or "gated-{act}"
  // Derived from feed_forward_proj by HF's constructor, but a config.json key
  // of the same name overrides the derived value afterwards. The real
  // Salesforce/blip2-flan-t5-xl config says "gated-gelu" AND "dense_act_fn":
  // "gelu", so HF runs it with exact (erf) GELU, not gelu_new.
  std::string dense_act_fn = "relu";
  bool is_gated_act = false;
  bool use_cache = true;

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("vocab_size", vocab_size, Positive{});
    v("d_model", d_model, Positive{});
    v("d_kv", d_kv, Positive{});
    v("d_ff", d_ff, Positive{});
    v("num_layers", num_layers, Positive{});
    v("num_decoder_layers", num_decoder_layers, Positive{}, NullIsDerived{});
    v("num_heads", num_heads, Positive{});
    v("relative_attention_num_buckets", relative_attention_num_buckets, Positive{});
    v("relative_attention_max_distance", relative_attention_max_distance, Positive{});
    v("layer_norm_epsilon", layer_norm_epsilon, Epsilon{});
    v("feed_forward_proj", feed_forward_proj);
    v("dense_act_fn", dense_act_fn, ReadByRule{});  // derived from feed_forward_proj; an explicit key wins
    v("is_gated_act", is_gated_act, ReadByRule{});
    v("use_cache", use_cache);
  }
};

// transformers Blip2Config (model_type "blip-2").
struct Blip2Config : PretrainedConfigCommon {
  Blip2Config() { model_type = "blip-2"; }
  Blip2VisionConfig vision_config;
  Blip2QFormerConfig qformer_config;
  // HF: text_config["model_type"] picks the class; absent text_config or
  // model_type → OPT.
  std::variant<OptConfig, T5Config> text_config;
  std::int64_t num_query_tokens = 32;
  std::int64_t image_text_hidden_size = 256;  // Blip2ForImageTextRetrieval projections
  // When set, input_ids carry num_query_tokens copies of this id whose
  // embeddings are REPLACED by the projected queries; when unset, the queries
  // are concatenated in front of the text (legacy path).
  std::optional<std::int64_t> image_token_index;
  // Derived by HF from the text model type (causal LM → true); a key of that
  // name in config.json is overwritten.
  bool use_decoder_only_language_model = true;

  bool has_opt() const { return std::holds_alternative<OptConfig>(text_config); }
  bool has_t5() const { return std::holds_alternative<T5Config>(text_config); }
  const OptConfig& opt() const {
    check(has_opt(), "Blip2Config: the language model is ", text_model_type(), ", not opt");
    return std::get<OptConfig>(text_config);
  }
  const T5Config& t5() const {
    check(has_t5(), "Blip2Config: the language model is ", text_model_type(), ", not t5");
    return std::get<T5Config>(text_config);
  }
  const std::string& text_model_type() const {
    return std::visit([](const auto& text) -> const std::string& { return text.model_type; }, text_config);
  }
  // The language model's hidden size (OPT hidden_size, T5 d_model): the
  // output width of language_projection.
  std::int64_t text_hidden_size() const { return has_opt() ? opt().hidden_size : t5().d_model; }
  std::int64_t text_vocab_size() const { return has_opt() ? opt().vocab_size : t5().vocab_size; }

  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    PretrainedConfigCommon::visit_fields(v);
    v("vision_config", vision_config);
    v("qformer_config", qformer_config);
    v("text_config", text_config);  // the alternative whose model_type text_config names (default: OPT)
    v("num_query_tokens", num_query_tokens, Positive{});
    v("image_text_hidden_size", image_text_hidden_size, Positive{});
    v("image_token_index", image_token_index);  // a token id of the language model: checked in read_config
    v("use_decoder_only_language_model", use_decoder_only_language_model, ReadByRule{});  // HF ignores the key
  }
};

inline void to_json(nlohmann::json& out, const Blip2VisionConfig& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const Blip2QFormerConfig& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const OptConfig& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const T5Config& config) { config_detail::write_fields(out, config); }
inline void to_json(nlohmann::json& out, const Blip2Config& config) { config_detail::write_fields(out, config); }

namespace config_detail {

inline void read_config(const ObjectReader& reader, Blip2VisionConfig& config) {
  read_config_fields(reader, config);
  check_fields(reader, config);
  require_rgb_channels(reader, config.num_channels);
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
}

inline void read_config(const ObjectReader& reader, Blip2QFormerConfig& config) {
  read_config_fields(reader, config);
  check_fields(reader, config);
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
}

inline void read_config(const ObjectReader& reader, OptConfig& config) {
  read_config_fields(reader, config);
  // HF: `word_embed_proj_dim if word_embed_proj_dim is not None else hidden_size`.
  if (!reader.has_value("word_embed_proj_dim")) config.word_embed_proj_dim = config.hidden_size;
  check_fields(reader, config);
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
}

inline void read_config(const ObjectReader& reader, T5Config& config) {
  read_config_fields(reader, config);
  // HF: "default = symmetry", taken from the `num_layers` argument BEFORE the
  // attribute_map aliases below are applied.
  if (!reader.has_value("num_decoder_layers")) config.num_decoder_layers = config.num_layers;

  // HF T5Config.__init__: "gated-{act}" or "{act}"; anything else is a ValueError.
  const std::string& projection = config.feed_forward_proj;
  const std::size_t dash = projection.find('-');
  const bool has_dash = dash != std::string::npos;
  const bool gated_prefix = has_dash && projection.substr(0, dash) == "gated";
  const bool too_many_parts = has_dash && projection.find('-', dash + 1) != std::string::npos;
  check(!(has_dash && !gated_prefix) && !too_many_parts, reader.source(), ": key \"",
        reader.key_path("feed_forward_proj"), "\" is \"", projection,
        "\"; expected the form \"gated-{ACT_FN}\" or \"{ACT_FN}\", e.g. \"gated-gelu\" or \"relu\"");
  config.dense_act_fn = has_dash ? projection.substr(dash + 1) : projection;
  config.is_gated_act = gated_prefix;
  // HF maps the original T5 v1.1 name to the tanh approximation.
  if (projection == "gated-gelu") config.dense_act_fn = "gelu_new";

  // HF passes unknown keys to PretrainedConfig.__init__ AFTER the above, so
  // explicit `dense_act_fn` / `is_gated_act` keys override what was derived.
  reader.read("dense_act_fn", config.dense_act_fn);
  reader.read("is_gated_act", config.is_gated_act);
  // Likewise the attribute_map aliases override: hidden_size → d_model,
  // num_attention_heads → num_heads, num_hidden_layers → num_layers.
  reader.read("hidden_size", config.d_model);
  reader.read("num_attention_heads", config.num_heads);
  reader.read("num_hidden_layers", config.num_layers);

  check_fields(reader, config);
}

// Blip2Config.text_config: HF picks the class from
// `text_config["model_type"] if "model_type" in text_config else "opt"`.
inline void read_config(const ObjectReader& reader, std::variant<OptConfig, T5Config>& text_config) {
  std::string text_model_type = "opt";
  reader.read("model_type", text_model_type);
  if (text_model_type == "opt") {
    read_config(reader, text_config.emplace<OptConfig>());
  } else if (text_model_type == "t5") {
    read_config(reader, text_config.emplace<T5Config>());
  } else {
    fail(reader.source(), ": key \"", reader.key_path("model_type"), "\" is \"", clip(text_model_type),
         "\", a language model blipcpp does not support (supported BLIP-2 language models: opt, t5)");
  }
}

inline void read_config(const ObjectReader& reader, Blip2Config& config) {
  read_config_fields(reader, config);  // the sub-configs through the functions above
  check_fields(reader, config);
  if (config.image_token_index) {
    const std::int64_t vocab_size = config.text_vocab_size();
    check(*config.image_token_index >= 0 && *config.image_token_index < vocab_size, reader.source(),
          ": key \"image_token_index\" (", *config.image_token_index,
          ") must be a token id of the language model, in [0, text_config.vocab_size = ", vocab_size, ")");
  }

  // HF Blip2Config.__init__ derives these from the sub-configs, overwriting
  // whatever the top-level keys said.
  std::visit(
      [&config](const auto& text) {
        config.tie_word_embeddings = text.tie_word_embeddings;
        config.is_encoder_decoder = text.is_encoder_decoder;
      },
      config.text_config);
  config.qformer_config.encoder_hidden_size = config.vision_config.hidden_size;
  // HF: text model type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES (opt is, t5 is not).
  config.use_decoder_only_language_model = config.has_opt();
}

}  // namespace config_detail

// Parses a BLIP-2 config.json object (model_type "blip-2").
inline Blip2Config parse_blip2_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  require_object(document, source);
  const ObjectReader reader(document, source, "");
  require_top_level_model_type(reader, "blip-2");
  Blip2Config config;
  read_config(reader, config);
  return config;
}

}  // namespace blip
