// blip/io/config.hpp: Hugging Face config.json / generation_config.json as
// plain typed structs.
//
// Each struct mirrors one transformers configuration class (the version the
// fixtures came from, 4.45.0.dev0) and holds only what inference needs. Field
// names are HF's key names, and the default member initializers are EXACTLY the
// defaults HF's constructors apply when a key is absent, so a default-built
// struct equals `XxxConfig()` in Python and parsing `{}` gives the same thing.
// The cross-field rules HF's constructors apply are applied here too and are
// commented where they happen:
//   * BlipConfig:  text_config.encoder_hidden_size := vision_config.hidden_size
//   * Blip2Config: qformer_config.encoder_hidden_size := vision_config.hidden_size;
//                  tie_word_embeddings / is_encoder_decoder := the text model's;
//                  use_decoder_only_language_model := (text model is causal);
//                  no text_config → OPT with OPT's defaults
//   * T5Config:    dense_act_fn / is_gated_act from feed_forward_proj
//                  ("gated-gelu" → gelu_new, gated); num_decoder_layers := num_layers
//   * OptConfig:   word_embed_proj_dim := hidden_size when absent or null
//
// Errors (blip::Error) name the file, the dotted key and what was expected.
//
// Entry points:
//   load_model_config(dir)             <dir>/config.json → ModelConfig (family + architecture + struct)
//   load_generation_config(dir)        generation_config.json, else derived from config.json as HF does
//   parse_blip_config / parse_blip2_config / parse_model_config / parse_generation_config (json, source)
//   generation_config_from_model_config(model), language_model_generation_config(model)
// Every struct converts to JSON with HF's key names (`nlohmann::json j = config;`),
// which the tests use to compare field by field with HF's own `to_dict()`
// (tests/data/config_expectations.json, written by the oracle).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "blip/core/error.hpp"

namespace blip {

// ---------------------------------------------------------------------------
// The structs
// ---------------------------------------------------------------------------

// Fields every HF `PretrainedConfig` carries (set by its base constructor)
// that matter for inference. Each concrete config below overrides the
// defaults its HF class passes to `super().__init__`.
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
  nlohmann::json generation_parameters = nlohmann::json::object();
};

// A token id the caller cannot do without: the value, or a blip::Error naming
// `key` when the config has None there (HF would fail later, less clearly).
inline std::int64_t required_token_id(const std::optional<std::int64_t>& id, const std::string& key) {
  check(id.has_value(), "config: ", key, " is null, but this model needs it");
  return *id;
}

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
};

// transformers BlipConfig (model_type "blip").
struct BlipConfig : PretrainedConfigCommon {
  BlipConfig() { model_type = "blip"; }
  BlipTextConfig text_config;
  BlipVisionConfig vision_config;
  std::int64_t projection_dim = 512;           // BlipModel's contrastive projections
  std::int64_t image_text_hidden_size = 256;   // ITM/ITC: vision_proj / text_proj output size
};

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
};

enum class ModelFamily { Blip, Blip2 };

// What load_model_config returns: one of `blip` / `blip2` is filled,
// according to `family` (the other stays default-constructed).
struct ModelConfig {
  ModelFamily family = ModelFamily::Blip;
  std::string architecture;  // architectures[0]; "" when config.json lists none
  BlipConfig blip;
  Blip2Config blip2;
  std::string source;        // the config.json path, for messages
};

// HF GenerationConfig's `early_stopping`: false, true or "never".
enum class EarlyStopping {
  Heuristic,  // false: stop a beam row once its best live candidate cannot beat the worst finished one
  Exact,      // true: stop a beam row as soon as num_beams hypotheses have finished
  Never,      // "never": the canonical beam search, stop only at max length
};

enum class GenerationConfigOrigin {
  File,         // generation_config.json
  ModelConfig,  // derived from config.json like HF's GenerationConfig.from_model_config
  Defaults,     // neither file exists: GenerationConfig()
};

// transformers GenerationConfig: the fields that decide which ids come out.
// Defaults are GenerationConfig()'s.
struct GenerationConfigFile {
  std::int64_t max_length = 20;                 // prompt + new tokens; max_new_tokens wins when set
  std::optional<std::int64_t> max_new_tokens;
  std::int64_t min_length = 0;
  std::optional<std::int64_t> min_new_tokens;
  EarlyStopping early_stopping = EarlyStopping::Heuristic;
  bool do_sample = false;
  std::int64_t num_beams = 1;
  std::int64_t num_beam_groups = 1;
  bool use_cache = true;
  double temperature = 1.0;   // JSON null reads as the neutral 1.0 (HF skips the warper for None)
  std::int64_t top_k = 50;    // JSON null reads as 0 (disabled), which HF treats alike
  double top_p = 1.0;         // JSON null → 1.0
  std::optional<double> min_p;
  double typical_p = 1.0;     // JSON null → 1.0
  double epsilon_cutoff = 0.0;
  double eta_cutoff = 0.0;
  double diversity_penalty = 0.0;
  double repetition_penalty = 1.0;
  double encoder_repetition_penalty = 1.0;
  double length_penalty = 1.0;
  std::int64_t no_repeat_ngram_size = 0;
  std::int64_t encoder_no_repeat_ngram_size = 0;
  std::vector<std::vector<std::int64_t>> bad_words_ids;  // empty = None
  bool renormalize_logits = false;
  std::optional<std::int64_t> forced_bos_token_id;
  std::vector<std::int64_t> forced_eos_token_id;         // int or list; empty = None
  bool remove_invalid_values = false;
  // (start_index, decay_factor); None when unset.
  std::optional<std::pair<std::int64_t, double>> exponential_decay_length_penalty;
  std::vector<std::int64_t> suppress_tokens;             // empty = None
  std::vector<std::int64_t> begin_suppress_tokens;       // empty = None
  std::int64_t num_return_sequences = 1;
  bool output_scores = false;
  bool return_dict_in_generate = false;
  std::optional<std::int64_t> pad_token_id;
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_id;                // int or list; empty = None
  std::optional<std::int64_t> decoder_start_token_id;

  // Keys present (non-null) that change what generate() does but that this
  // struct does not model (penalty_alpha, forced_decoder_ids, sequence_bias,
  // ...). The generation code decides whether to refuse them.
  std::vector<std::string> unsupported_parameters;
  GenerationConfigOrigin origin = GenerationConfigOrigin::Defaults;
};

// ---------------------------------------------------------------------------
// JSON reading helpers (type-checked, errors name source and key)
// ---------------------------------------------------------------------------
namespace config_detail {

using nlohmann::json;

inline std::string describe_json_value(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

// Reads typed values out of one JSON object; `prefix` is the dotted path of
// that object ("text_config.") so messages name the full key.
class ObjectReader {
 public:
  ObjectReader(const json& object, const std::string& source, std::string prefix)
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const json& object() const { return object_; }
  const std::string& source() const { return source_; }
  std::string key_path(const std::string& key) const { return prefix_ + key; }

  // The value for `key`, or nullptr when the key is absent.
  const json* find(const std::string& key) const {
    auto found = object_.find(key);
    return found == object_.end() ? nullptr : &*found;
  }
  // True when the key is present and not null.
  bool has_value(const std::string& key) const {
    const json* value = find(key);
    return value != nullptr && !value->is_null();
  }

  [[noreturn]] void wrong_type(const std::string& key, const char* expected, const json& value) const {
    fail(source_, ": key \"", key_path(key), "\" must be ", expected, ", got ", describe_json_value(value));
  }

  // Each `read` leaves `out` untouched (the HF default) when the key is absent.
  void read(const std::string& key, std::int64_t& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out = as_integer(key, *value);
  }
  void read(const std::string& key, double& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_number()) wrong_type(key, "a number", *value);
    out = value->get<double>();
  }
  void read(const std::string& key, bool& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_boolean()) wrong_type(key, "a boolean (true/false)", *value);
    out = value->get<bool>();
  }
  void read(const std::string& key, std::string& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (!value->is_string()) wrong_type(key, "a string", *value);
    out = value->get<std::string>();
  }
  // null → None.
  void read(const std::string& key, std::optional<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.reset();
      return;
    }
    out = as_integer(key, *value);
  }
  void read(const std::string& key, std::optional<double>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.reset();
      return;
    }
    if (!value->is_number()) wrong_type(key, "a number or null", *value);
    out = value->get<double>();
  }
  // A string, or null (→ "").
  void read_nullable_string(const std::string& key, std::string& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    if (value->is_null()) {
      out.clear();
      return;
    }
    if (!value->is_string()) wrong_type(key, "a string or null", *value);
    out = value->get<std::string>();
  }
  // null, an integer, or a list of integers (HF's eos_token_id forms).
  void read_token_ids(const std::string& key, std::vector<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (value->is_number_integer()) {
      out.push_back(as_integer(key, *value));
      return;
    }
    if (!value->is_array()) wrong_type(key, "an integer, a list of integers or null", *value);
    for (const json& element : *value) {
      if (!element.is_number_integer()) wrong_type(key, "an integer, a list of integers or null", *value);
      out.push_back(as_integer(key, element));
    }
  }
  // null or a list of integers.
  void read_integer_list(const std::string& key, std::vector<std::int64_t>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (!value->is_array()) wrong_type(key, "a list of integers or null", *value);
    for (const json& element : *value) {
      if (!element.is_number_integer()) wrong_type(key, "a list of integers or null", *value);
      out.push_back(as_integer(key, element));
    }
  }
  // null or a list of strings.
  void read(const std::string& key, std::vector<std::string>& out) const {
    const json* value = find(key);
    if (value == nullptr) return;
    out.clear();
    if (value->is_null()) return;
    if (!value->is_array()) wrong_type(key, "a list of strings or null", *value);
    for (const json& element : *value) {
      if (!element.is_string()) wrong_type(key, "a list of strings or null", *value);
      out.push_back(element.get<std::string>());
    }
  }

  // A nested config object (`text_config`, ...): absent or null → an empty
  // object, like HF's `if text_config is None: text_config = {}`.
  ObjectReader nested(const std::string& key, const json& empty_object) const {
    const json* value = find(key);
    if (value == nullptr || value->is_null()) return ObjectReader(empty_object, source_, key_path(key) + ".");
    if (!value->is_object()) wrong_type(key, "an object", *value);
    return ObjectReader(*value, source_, key_path(key) + ".");
  }

 private:
  std::int64_t as_integer(const std::string& key, const json& value) const {
    if (!value.is_number_integer()) wrong_type(key, "an integer", value);
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      wrong_type(key, "an integer that fits in 64 bits", value);
    }
    return value.get<std::int64_t>();
  }

  const json& object_;
  const std::string& source_;
  std::string prefix_;
};

inline void require_positive(const ObjectReader& reader, const std::string& key, std::int64_t value) {
  check(value > 0, reader.source(), ": key \"", reader.key_path(key), "\" must be a positive integer, got ", value);
}

inline void require_non_negative(const ObjectReader& reader, const std::string& key, std::int64_t value) {
  check(value >= 0, reader.source(), ": key \"", reader.key_path(key), "\" must be >= 0, got ", value);
}

inline void require_valid_epsilon(const ObjectReader& reader, const std::string& key, double value) {
  check(std::isfinite(value) && value >= 0.0, reader.source(), ": key \"", reader.key_path(key),
        "\" must be a finite number >= 0, got ", value);
}

// Multi-head attention splits hidden_size evenly into heads; HF raises the
// same ValueError when building the attention layer.
inline void require_divisible_by_heads(const ObjectReader& reader, const std::string& hidden_key, std::int64_t hidden,
                                       const std::string& heads_key, std::int64_t heads) {
  check(hidden % heads == 0, reader.source(), ": key \"", reader.key_path(hidden_key), "\" (", hidden,
        ") must be divisible by \"", reader.key_path(heads_key), "\" (", heads, ")");
}

// A sub-config's model_type, when written, must be the one its slot expects
// (HF would silently build the wrong class; a mismatch means a wrong file).
inline void require_model_type(const ObjectReader& reader, const std::string& expected) {
  std::string model_type = expected;
  reader.read("model_type", model_type);
  check(model_type == expected, reader.source(), ": key \"", reader.key_path("model_type"), "\" is \"", model_type,
        "\", expected \"", expected, "\"");
}

// The keys HF's GenerationConfig reads. Used both to capture legacy generation
// parameters written into model configs and to parse generation_config.json.
inline const std::vector<std::string>& generation_keys() {
  static const std::vector<std::string> keys = {
      "max_length", "max_new_tokens", "min_length", "min_new_tokens", "early_stopping", "do_sample", "num_beams",
      "num_beam_groups", "use_cache", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff",
      "eta_cutoff", "diversity_penalty", "repetition_penalty", "encoder_repetition_penalty", "length_penalty",
      "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "renormalize_logits",
      "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
      "suppress_tokens", "begin_suppress_tokens", "num_return_sequences", "output_scores", "return_dict_in_generate",
      "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"};
  return keys;
}

// GenerationConfig keys that change the generated ids but are not modelled by
// GenerationConfigFile (they land in `unsupported_parameters` when non-null).
inline const std::vector<std::string>& unmodelled_generation_keys() {
  static const std::vector<std::string> keys = {
      "penalty_alpha", "dola_layers", "forced_decoder_ids", "sequence_bias", "force_words_ids", "constraints",
      "guidance_scale", "stop_strings", "max_time", "token_healing", "prompt_lookup_num_tokens",
      "watermarking_config"};
  return keys;
}

inline void read_common(const ObjectReader& reader, PretrainedConfigCommon& config) {
  reader.read("architectures", config.architectures);
  reader.read("bos_token_id", config.bos_token_id);
  reader.read("pad_token_id", config.pad_token_id);
  reader.read("sep_token_id", config.sep_token_id);
  reader.read("decoder_start_token_id", config.decoder_start_token_id);
  reader.read_token_ids("eos_token_id", config.eos_token_id);
  reader.read("tie_word_embeddings", config.tie_word_embeddings);
  reader.read("is_encoder_decoder", config.is_encoder_decoder);
  reader.read("is_decoder", config.is_decoder);
  reader.read("add_cross_attention", config.add_cross_attention);
  reader.read_nullable_string("torch_dtype", config.torch_dtype);
  config.generation_parameters = json::object();
  for (const std::string& key : generation_keys()) {
    if (key == "bos_token_id" || key == "eos_token_id" || key == "pad_token_id" || key == "decoder_start_token_id") {
      continue;  // typed fields above (with the class defaults applied)
    }
    if (const json* value = reader.find(key)) config.generation_parameters[key] = *value;
  }
  for (const std::string& key : unmodelled_generation_keys()) {
    if (const json* value = reader.find(key)) config.generation_parameters[key] = *value;
  }
}

inline BlipVisionConfig parse_blip_vision(const ObjectReader& reader) {
  require_model_type(reader, "blip_vision_model");
  BlipVisionConfig config;
  read_common(reader, config);
  reader.read("hidden_size", config.hidden_size);
  reader.read("intermediate_size", config.intermediate_size);
  reader.read("projection_dim", config.projection_dim);
  reader.read("num_hidden_layers", config.num_hidden_layers);
  reader.read("num_attention_heads", config.num_attention_heads);
  reader.read("image_size", config.image_size);
  reader.read("patch_size", config.patch_size);
  reader.read("num_channels", config.num_channels);
  reader.read("hidden_act", config.hidden_act);
  reader.read("layer_norm_eps", config.layer_norm_eps);
  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"hidden_size", config.hidden_size},
        {"intermediate_size", config.intermediate_size}, {"projection_dim", config.projection_dim},
        {"num_hidden_layers", config.num_hidden_layers}, {"num_attention_heads", config.num_attention_heads},
        {"image_size", config.image_size}, {"patch_size", config.patch_size}}) {
    require_positive(reader, key, value);
  }
  check(config.num_channels == 3, reader.source(), ": key \"", reader.key_path("num_channels"), "\" is ",
        config.num_channels, "; the BLIP vision patch embedding takes 3 (RGB) channels, as in transformers");
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
  require_valid_epsilon(reader, "layer_norm_eps", config.layer_norm_eps);
  return config;
}

inline BlipTextConfig parse_blip_text(const ObjectReader& reader) {
  require_model_type(reader, "blip_text_model");
  BlipTextConfig config;
  read_common(reader, config);
  reader.read("vocab_size", config.vocab_size);
  reader.read("hidden_size", config.hidden_size);
  reader.read("encoder_hidden_size", config.encoder_hidden_size);
  reader.read("intermediate_size", config.intermediate_size);
  reader.read("projection_dim", config.projection_dim);
  reader.read("num_hidden_layers", config.num_hidden_layers);
  reader.read("num_attention_heads", config.num_attention_heads);
  reader.read("max_position_embeddings", config.max_position_embeddings);
  reader.read("hidden_act", config.hidden_act);
  reader.read("layer_norm_eps", config.layer_norm_eps);
  reader.read("use_cache", config.use_cache);
  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"vocab_size", config.vocab_size}, {"hidden_size", config.hidden_size},
        {"encoder_hidden_size", config.encoder_hidden_size}, {"intermediate_size", config.intermediate_size},
        {"projection_dim", config.projection_dim}, {"num_hidden_layers", config.num_hidden_layers},
        {"num_attention_heads", config.num_attention_heads},
        {"max_position_embeddings", config.max_position_embeddings}}) {
    require_positive(reader, key, value);
  }
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
  require_valid_epsilon(reader, "layer_norm_eps", config.layer_norm_eps);
  return config;
}

inline Blip2VisionConfig parse_blip2_vision(const ObjectReader& reader) {
  require_model_type(reader, "blip_2_vision_model");
  Blip2VisionConfig config;
  read_common(reader, config);
  reader.read("hidden_size", config.hidden_size);
  reader.read("intermediate_size", config.intermediate_size);
  reader.read("num_hidden_layers", config.num_hidden_layers);
  reader.read("num_attention_heads", config.num_attention_heads);
  reader.read("image_size", config.image_size);
  reader.read("patch_size", config.patch_size);
  reader.read("num_channels", config.num_channels);
  reader.read("hidden_act", config.hidden_act);
  reader.read("layer_norm_eps", config.layer_norm_eps);
  reader.read("qkv_bias", config.qkv_bias);
  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"hidden_size", config.hidden_size},
        {"intermediate_size", config.intermediate_size}, {"num_hidden_layers", config.num_hidden_layers},
        {"num_attention_heads", config.num_attention_heads}, {"image_size", config.image_size},
        {"patch_size", config.patch_size}}) {
    require_positive(reader, key, value);
  }
  check(config.num_channels == 3, reader.source(), ": key \"", reader.key_path("num_channels"), "\" is ",
        config.num_channels, "; the BLIP vision patch embedding takes 3 (RGB) channels, as in transformers");
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
  require_valid_epsilon(reader, "layer_norm_eps", config.layer_norm_eps);
  return config;
}

inline Blip2QFormerConfig parse_blip2_qformer(const ObjectReader& reader) {
  require_model_type(reader, "blip_2_qformer");
  Blip2QFormerConfig config;
  read_common(reader, config);
  reader.read("vocab_size", config.vocab_size);
  reader.read("hidden_size", config.hidden_size);
  reader.read("num_hidden_layers", config.num_hidden_layers);
  reader.read("num_attention_heads", config.num_attention_heads);
  reader.read("intermediate_size", config.intermediate_size);
  reader.read("hidden_act", config.hidden_act);
  reader.read("max_position_embeddings", config.max_position_embeddings);
  reader.read("layer_norm_eps", config.layer_norm_eps);
  reader.read("position_embedding_type", config.position_embedding_type);
  reader.read("cross_attention_frequency", config.cross_attention_frequency);
  reader.read("encoder_hidden_size", config.encoder_hidden_size);
  reader.read("use_qformer_text_input", config.use_qformer_text_input);
  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"vocab_size", config.vocab_size}, {"hidden_size", config.hidden_size},
        {"num_hidden_layers", config.num_hidden_layers}, {"num_attention_heads", config.num_attention_heads},
        {"intermediate_size", config.intermediate_size},
        {"max_position_embeddings", config.max_position_embeddings},
        {"cross_attention_frequency", config.cross_attention_frequency},
        {"encoder_hidden_size", config.encoder_hidden_size}}) {
    require_positive(reader, key, value);
  }
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
  require_valid_epsilon(reader, "layer_norm_eps", config.layer_norm_eps);
  return config;
}

inline OptConfig parse_opt(const ObjectReader& reader) {
  require_model_type(reader, "opt");
  OptConfig config;
  read_common(reader, config);
  reader.read("vocab_size", config.vocab_size);
  reader.read("hidden_size", config.hidden_size);
  reader.read("num_hidden_layers", config.num_hidden_layers);
  reader.read("ffn_dim", config.ffn_dim);
  reader.read("max_position_embeddings", config.max_position_embeddings);
  reader.read("do_layer_norm_before", config.do_layer_norm_before);
  reader.read("_remove_final_layer_norm", config.remove_final_layer_norm);
  std::optional<std::int64_t> word_embed_proj_dim;
  reader.read("word_embed_proj_dim", word_embed_proj_dim);
  // HF: `word_embed_proj_dim if word_embed_proj_dim is not None else hidden_size`.
  config.word_embed_proj_dim = word_embed_proj_dim.value_or(config.hidden_size);
  reader.read("num_attention_heads", config.num_attention_heads);
  reader.read("activation_function", config.activation_function);
  reader.read("enable_bias", config.enable_bias);
  reader.read("layer_norm_elementwise_affine", config.layer_norm_elementwise_affine);
  reader.read("use_cache", config.use_cache);
  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"vocab_size", config.vocab_size}, {"hidden_size", config.hidden_size},
        {"num_hidden_layers", config.num_hidden_layers}, {"ffn_dim", config.ffn_dim},
        {"max_position_embeddings", config.max_position_embeddings},
        {"word_embed_proj_dim", config.word_embed_proj_dim}, {"num_attention_heads", config.num_attention_heads}}) {
    require_positive(reader, key, value);
  }
  require_divisible_by_heads(reader, "hidden_size", config.hidden_size, "num_attention_heads",
                             config.num_attention_heads);
  return config;
}

inline T5Config parse_t5(const ObjectReader& reader) {
  require_model_type(reader, "t5");
  T5Config config;
  read_common(reader, config);
  reader.read("vocab_size", config.vocab_size);
  reader.read("d_model", config.d_model);
  reader.read("d_kv", config.d_kv);
  reader.read("d_ff", config.d_ff);
  reader.read("num_layers", config.num_layers);
  std::optional<std::int64_t> num_decoder_layers;
  reader.read("num_decoder_layers", num_decoder_layers);
  // HF: "default = symmetry", taken from the `num_layers` argument BEFORE the
  // attribute_map aliases below are applied.
  config.num_decoder_layers = num_decoder_layers.value_or(config.num_layers);
  reader.read("num_heads", config.num_heads);
  reader.read("relative_attention_num_buckets", config.relative_attention_num_buckets);
  reader.read("relative_attention_max_distance", config.relative_attention_max_distance);
  reader.read("layer_norm_epsilon", config.layer_norm_epsilon);
  reader.read("feed_forward_proj", config.feed_forward_proj);
  reader.read("use_cache", config.use_cache);

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
  // explicit `dense_act_fn` / `is_gated_act` keys and the attribute_map
  // aliases (hidden_size → d_model, num_attention_heads → num_heads,
  // num_hidden_layers → num_layers) override what was derived.
  reader.read("dense_act_fn", config.dense_act_fn);
  reader.read("is_gated_act", config.is_gated_act);
  reader.read("hidden_size", config.d_model);
  reader.read("num_attention_heads", config.num_heads);
  reader.read("num_hidden_layers", config.num_layers);

  for (const auto& [key, value] :
       {std::pair<const char*, std::int64_t>{"vocab_size", config.vocab_size}, {"d_model", config.d_model},
        {"d_kv", config.d_kv}, {"d_ff", config.d_ff}, {"num_layers", config.num_layers},
        {"num_decoder_layers", config.num_decoder_layers}, {"num_heads", config.num_heads},
        {"relative_attention_num_buckets", config.relative_attention_num_buckets},
        {"relative_attention_max_distance", config.relative_attention_max_distance}}) {
    require_positive(reader, key, value);
  }
  require_valid_epsilon(reader, "layer_norm_epsilon", config.layer_norm_epsilon);
  return config;
}

inline void require_top_level_model_type(const ObjectReader& reader, const std::string& expected) {
  const json* value = reader.find("model_type");
  check(value != nullptr && !value->is_null(), reader.source(),
        ": no \"model_type\" key (expected \"", expected, "\")");
  std::string model_type;
  reader.read("model_type", model_type);
  check(model_type == expected, reader.source(), ": \"model_type\" is \"", model_type, "\", expected \"", expected,
        "\"");
}

inline json read_json_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  check(static_cast<bool>(stream), "cannot open ", path,
        std::filesystem::exists(path) ? " (exists but is not readable)" : " (no such file)");
  std::ostringstream text;
  text << stream.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& error) {
    // nlohmann's message carries "at line L, column C".
    fail(path, ": invalid JSON: ", error.what());
  }
}

}  // namespace config_detail

// ---------------------------------------------------------------------------
// Parsing entry points
// ---------------------------------------------------------------------------

// Parses a BLIP config.json object (model_type "blip"). `source` names the
// file (or any label) in error messages.
inline BlipConfig parse_blip_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  check(document.is_object(), source, ": expected a JSON object at the top level, got ", describe_json_value(document));
  const ObjectReader reader(document, source, "");
  require_top_level_model_type(reader, "blip");
  BlipConfig config;
  read_common(reader, config);
  static const nlohmann::json empty_object = nlohmann::json::object();
  config.text_config = parse_blip_text(reader.nested("text_config", empty_object));
  config.vision_config = parse_blip_vision(reader.nested("vision_config", empty_object));
  // HF BlipConfig.__init__: the text model's cross-attention reads the vision
  // model's output, whatever text_config said.
  config.text_config.encoder_hidden_size = config.vision_config.hidden_size;
  reader.read("projection_dim", config.projection_dim);
  reader.read("image_text_hidden_size", config.image_text_hidden_size);
  require_positive(reader, "projection_dim", config.projection_dim);
  require_positive(reader, "image_text_hidden_size", config.image_text_hidden_size);
  return config;
}

// Parses a BLIP-2 config.json object (model_type "blip-2").
inline Blip2Config parse_blip2_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  check(document.is_object(), source, ": expected a JSON object at the top level, got ", describe_json_value(document));
  const ObjectReader reader(document, source, "");
  require_top_level_model_type(reader, "blip-2");
  Blip2Config config;
  read_common(reader, config);
  static const nlohmann::json empty_object = nlohmann::json::object();
  config.vision_config = parse_blip2_vision(reader.nested("vision_config", empty_object));
  config.qformer_config = parse_blip2_qformer(reader.nested("qformer_config", empty_object));

  const ObjectReader text_reader = reader.nested("text_config", empty_object);
  // HF: `text_config["model_type"] if "model_type" in text_config else "opt"`.
  std::string text_model_type = "opt";
  text_reader.read("model_type", text_model_type);
  if (text_model_type == "opt") {
    config.text_config = parse_opt(text_reader);
  } else if (text_model_type == "t5") {
    config.text_config = parse_t5(text_reader);
  } else {
    fail(source, ": key \"text_config.model_type\" is \"", text_model_type,
         "\", a language model blipcpp does not support (supported BLIP-2 language models: opt, t5)");
  }

  reader.read("num_query_tokens", config.num_query_tokens);
  reader.read("image_text_hidden_size", config.image_text_hidden_size);
  reader.read("image_token_index", config.image_token_index);
  require_positive(reader, "num_query_tokens", config.num_query_tokens);
  require_positive(reader, "image_text_hidden_size", config.image_text_hidden_size);
  if (config.image_token_index) {
    const std::int64_t vocab_size = config.text_vocab_size();
    check(*config.image_token_index >= 0 && *config.image_token_index < vocab_size, source,
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
  return config;
}

// The supported `architectures[0]` values per family.
inline const std::vector<std::string>& supported_architectures(ModelFamily family) {
  static const std::vector<std::string> blip = {"BlipForConditionalGeneration", "BlipForQuestionAnswering",
                                                "BlipForImageTextRetrieval", "BlipModel"};
  static const std::vector<std::string> blip2 = {"Blip2ForConditionalGeneration", "Blip2ForImageTextRetrieval",
                                                 "Blip2Model"};
  return family == ModelFamily::Blip ? blip : blip2;
}

// Parses any supported config.json object, dispatching on model_type and
// checking architectures[0].
inline ModelConfig parse_model_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  check(document.is_object(), source, ": expected a JSON object at the top level, got ", describe_json_value(document));
  const ObjectReader reader(document, source, "");
  const json* model_type_value = reader.find("model_type");
  check(model_type_value != nullptr && !model_type_value->is_null(), source,
        ": no \"model_type\" key (supported model types: blip, blip-2)");
  std::string model_type;
  reader.read("model_type", model_type);

  ModelConfig model;
  model.source = source;
  if (model_type == "blip") {
    model.family = ModelFamily::Blip;
    model.blip = parse_blip_config(document, source);
  } else if (model_type == "blip-2") {
    model.family = ModelFamily::Blip2;
    model.blip2 = parse_blip2_config(document, source);
  } else {
    fail(source, ": unsupported \"model_type\" \"", model_type, "\" (supported model types: blip, blip-2)");
  }

  const std::vector<std::string>& architectures =
      model.family == ModelFamily::Blip ? model.blip.architectures : model.blip2.architectures;
  if (!architectures.empty()) {
    model.architecture = architectures.front();
    const auto& supported = supported_architectures(model.family);
    bool known = false;
    for (const std::string& name : supported) known = known || name == model.architecture;
    if (!known) {
      const ModelFamily other = model.family == ModelFamily::Blip ? ModelFamily::Blip2 : ModelFamily::Blip;
      for (const std::string& name : supported_architectures(other)) {
        check(name != model.architecture, source, ": architecture \"", model.architecture,
              "\" does not match model_type \"", model_type, "\"");
      }
      std::string list;
      for (ModelFamily family : {ModelFamily::Blip, ModelFamily::Blip2}) {
        for (const std::string& name : supported_architectures(family)) list += (list.empty() ? "" : ", ") + name;
      }
      fail(source, ": unsupported architecture \"", model.architecture, "\" (supported architectures: ", list, ")");
    }
  }
  return model;
}

// Reads <model_dir>/config.json (or `model_dir` itself when it is a file).
inline ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path =
      std::filesystem::is_regular_file(model_dir) ? model_dir : (std::filesystem::path(model_dir) / "config.json").string();
  return parse_model_config(config_detail::read_json_file(path), path);
}

// ---------------------------------------------------------------------------
// Generation config
// ---------------------------------------------------------------------------

// Parses a generation_config.json object like HF's GenerationConfig(**dict),
// including the checks its validate() raises for.
inline GenerationConfigFile parse_generation_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  check(document.is_object(), source, ": expected a JSON object at the top level, got ", describe_json_value(document));
  const ObjectReader reader(document, source, "");
  GenerationConfigFile config;
  config.origin = GenerationConfigOrigin::File;
  reader.read("max_length", config.max_length);
  reader.read("max_new_tokens", config.max_new_tokens);
  reader.read("min_length", config.min_length);
  reader.read("min_new_tokens", config.min_new_tokens);
  if (const json* value = reader.find("early_stopping")) {
    if (value->is_boolean()) {
      config.early_stopping = value->get<bool>() ? EarlyStopping::Exact : EarlyStopping::Heuristic;
    } else if (value->is_string() && value->get<std::string>() == "never") {
      config.early_stopping = EarlyStopping::Never;
    } else {
      reader.wrong_type("early_stopping", "true, false or \"never\"", *value);
    }
  }
  reader.read("do_sample", config.do_sample);
  reader.read("num_beams", config.num_beams);
  reader.read("num_beam_groups", config.num_beam_groups);
  reader.read("use_cache", config.use_cache);
  // None disables a warper in HF; the neutral values below do the same.
  const auto read_or_neutral = [&reader](const char* key, auto& out, auto neutral) {
    const json* value = reader.find(key);
    if (value != nullptr && value->is_null()) {
      out = neutral;
    } else {
      reader.read(key, out);
    }
  };
  read_or_neutral("temperature", config.temperature, 1.0);
  read_or_neutral("top_k", config.top_k, std::int64_t{0});
  read_or_neutral("top_p", config.top_p, 1.0);
  reader.read("min_p", config.min_p);
  read_or_neutral("typical_p", config.typical_p, 1.0);
  reader.read("epsilon_cutoff", config.epsilon_cutoff);
  reader.read("eta_cutoff", config.eta_cutoff);
  reader.read("diversity_penalty", config.diversity_penalty);
  reader.read("repetition_penalty", config.repetition_penalty);
  reader.read("encoder_repetition_penalty", config.encoder_repetition_penalty);
  reader.read("length_penalty", config.length_penalty);
  reader.read("no_repeat_ngram_size", config.no_repeat_ngram_size);
  reader.read("encoder_no_repeat_ngram_size", config.encoder_no_repeat_ngram_size);
  if (const json* value = reader.find("bad_words_ids"); value != nullptr && !value->is_null()) {
    const char* expected = "a list of lists of integers or null";
    if (!value->is_array()) reader.wrong_type("bad_words_ids", expected, *value);
    for (const json& sequence : *value) {
      if (!sequence.is_array()) reader.wrong_type("bad_words_ids", expected, *value);
      std::vector<std::int64_t> ids;
      for (const json& id : sequence) {
        if (!id.is_number_integer()) reader.wrong_type("bad_words_ids", expected, *value);
        ids.push_back(id.get<std::int64_t>());
      }
      config.bad_words_ids.push_back(std::move(ids));
    }
  }
  reader.read("renormalize_logits", config.renormalize_logits);
  reader.read("forced_bos_token_id", config.forced_bos_token_id);
  reader.read_token_ids("forced_eos_token_id", config.forced_eos_token_id);
  reader.read("remove_invalid_values", config.remove_invalid_values);
  if (const json* value = reader.find("exponential_decay_length_penalty"); value != nullptr && !value->is_null()) {
    const char* expected = "a pair [start_index (integer), decay_factor (number)] or null";
    if (!value->is_array() || value->size() != 2 || !(*value)[0].is_number_integer() || !(*value)[1].is_number()) {
      reader.wrong_type("exponential_decay_length_penalty", expected, *value);
    }
    config.exponential_decay_length_penalty = std::make_pair((*value)[0].get<std::int64_t>(), (*value)[1].get<double>());
  }
  reader.read_integer_list("suppress_tokens", config.suppress_tokens);
  reader.read_integer_list("begin_suppress_tokens", config.begin_suppress_tokens);
  reader.read("num_return_sequences", config.num_return_sequences);
  reader.read("output_scores", config.output_scores);
  reader.read("return_dict_in_generate", config.return_dict_in_generate);
  reader.read("pad_token_id", config.pad_token_id);
  reader.read("bos_token_id", config.bos_token_id);
  reader.read_token_ids("eos_token_id", config.eos_token_id);
  reader.read("decoder_start_token_id", config.decoder_start_token_id);
  for (const std::string& key : unmodelled_generation_keys()) {
    if (reader.has_value(key)) config.unsupported_parameters.push_back(key);
  }

  // The checks HF's GenerationConfig.validate() raises for (the rest are warnings).
  if (config.max_new_tokens) {
    check(*config.max_new_tokens > 0, source, ": key \"max_new_tokens\" must be greater than 0, got ",
          *config.max_new_tokens);
  }
  require_non_negative(reader, "max_length", config.max_length);
  require_non_negative(reader, "min_length", config.min_length);
  require_positive(reader, "num_beams", config.num_beams);
  require_positive(reader, "num_beam_groups", config.num_beam_groups);
  require_positive(reader, "num_return_sequences", config.num_return_sequences);
  check(config.num_beams % config.num_beam_groups == 0, source, ": key \"num_beams\" (", config.num_beams,
        ") must be divisible by \"num_beam_groups\" (", config.num_beam_groups, ")");
  if (config.num_return_sequences != 1) {
    check(config.num_beams > 1 || config.do_sample, source, ": key \"num_return_sequences\" is ",
          config.num_return_sequences, " but greedy search (num_beams 1, do_sample false) returns one sequence");
    check(config.num_beams == 1 || config.num_return_sequences <= config.num_beams, source,
          ": key \"num_return_sequences\" (", config.num_return_sequences, ") must be <= \"num_beams\" (",
          config.num_beams, ")");
  }
  return config;
}

// ---- JSON with HF's key names (for printing and for the parity tests) -------
namespace config_detail {

inline json optional_to_json(const std::optional<std::int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}
// HF writes a single id as an int; a list otherwise; None as null.
inline json token_ids_to_json(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return json(nullptr);
  if (ids.size() == 1) return json(ids.front());
  return json(ids);
}

inline void common_to_json(json& out, const PretrainedConfigCommon& config) {
  out["model_type"] = config.model_type;
  out["architectures"] = config.architectures.empty() ? json(nullptr) : json(config.architectures);
  out["bos_token_id"] = optional_to_json(config.bos_token_id);
  out["pad_token_id"] = optional_to_json(config.pad_token_id);
  out["sep_token_id"] = optional_to_json(config.sep_token_id);
  out["decoder_start_token_id"] = optional_to_json(config.decoder_start_token_id);
  out["eos_token_id"] = token_ids_to_json(config.eos_token_id);
  out["tie_word_embeddings"] = config.tie_word_embeddings;
  out["is_encoder_decoder"] = config.is_encoder_decoder;
  out["is_decoder"] = config.is_decoder;
  out["add_cross_attention"] = config.add_cross_attention;
  out["torch_dtype"] = config.torch_dtype.empty() ? json(nullptr) : json(config.torch_dtype);
}

}  // namespace config_detail

inline void to_json(nlohmann::json& out, const BlipVisionConfig& config) {
  config_detail::common_to_json(out, config);
  out["hidden_size"] = config.hidden_size;
  out["intermediate_size"] = config.intermediate_size;
  out["projection_dim"] = config.projection_dim;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["image_size"] = config.image_size;
  out["patch_size"] = config.patch_size;
  out["num_channels"] = config.num_channels;
  out["hidden_act"] = config.hidden_act;
  out["layer_norm_eps"] = config.layer_norm_eps;
}

inline void to_json(nlohmann::json& out, const BlipTextConfig& config) {
  config_detail::common_to_json(out, config);
  out["vocab_size"] = config.vocab_size;
  out["hidden_size"] = config.hidden_size;
  out["encoder_hidden_size"] = config.encoder_hidden_size;
  out["intermediate_size"] = config.intermediate_size;
  out["projection_dim"] = config.projection_dim;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["max_position_embeddings"] = config.max_position_embeddings;
  out["hidden_act"] = config.hidden_act;
  out["layer_norm_eps"] = config.layer_norm_eps;
  out["use_cache"] = config.use_cache;
}

inline void to_json(nlohmann::json& out, const BlipConfig& config) {
  config_detail::common_to_json(out, config);
  out["text_config"] = config.text_config;
  out["vision_config"] = config.vision_config;
  out["projection_dim"] = config.projection_dim;
  out["image_text_hidden_size"] = config.image_text_hidden_size;
}

inline void to_json(nlohmann::json& out, const Blip2VisionConfig& config) {
  config_detail::common_to_json(out, config);
  out["hidden_size"] = config.hidden_size;
  out["intermediate_size"] = config.intermediate_size;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["image_size"] = config.image_size;
  out["patch_size"] = config.patch_size;
  out["num_channels"] = config.num_channels;
  out["hidden_act"] = config.hidden_act;
  out["layer_norm_eps"] = config.layer_norm_eps;
  out["qkv_bias"] = config.qkv_bias;
}

inline void to_json(nlohmann::json& out, const Blip2QFormerConfig& config) {
  config_detail::common_to_json(out, config);
  out["vocab_size"] = config.vocab_size;
  out["hidden_size"] = config.hidden_size;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["intermediate_size"] = config.intermediate_size;
  out["hidden_act"] = config.hidden_act;
  out["max_position_embeddings"] = config.max_position_embeddings;
  out["layer_norm_eps"] = config.layer_norm_eps;
  out["position_embedding_type"] = config.position_embedding_type;
  out["cross_attention_frequency"] = config.cross_attention_frequency;
  out["encoder_hidden_size"] = config.encoder_hidden_size;
  out["use_qformer_text_input"] = config.use_qformer_text_input;
}

inline void to_json(nlohmann::json& out, const OptConfig& config) {
  config_detail::common_to_json(out, config);
  out["vocab_size"] = config.vocab_size;
  out["hidden_size"] = config.hidden_size;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["ffn_dim"] = config.ffn_dim;
  out["max_position_embeddings"] = config.max_position_embeddings;
  out["do_layer_norm_before"] = config.do_layer_norm_before;
  out["_remove_final_layer_norm"] = config.remove_final_layer_norm;
  out["word_embed_proj_dim"] = config.word_embed_proj_dim;
  out["num_attention_heads"] = config.num_attention_heads;
  out["activation_function"] = config.activation_function;
  out["enable_bias"] = config.enable_bias;
  out["layer_norm_elementwise_affine"] = config.layer_norm_elementwise_affine;
  out["use_cache"] = config.use_cache;
}

inline void to_json(nlohmann::json& out, const T5Config& config) {
  config_detail::common_to_json(out, config);
  out["vocab_size"] = config.vocab_size;
  out["d_model"] = config.d_model;
  out["d_kv"] = config.d_kv;
  out["d_ff"] = config.d_ff;
  out["num_layers"] = config.num_layers;
  out["num_decoder_layers"] = config.num_decoder_layers;
  out["num_heads"] = config.num_heads;
  out["relative_attention_num_buckets"] = config.relative_attention_num_buckets;
  out["relative_attention_max_distance"] = config.relative_attention_max_distance;
  out["layer_norm_epsilon"] = config.layer_norm_epsilon;
  out["feed_forward_proj"] = config.feed_forward_proj;
  out["dense_act_fn"] = config.dense_act_fn;
  out["is_gated_act"] = config.is_gated_act;
  out["use_cache"] = config.use_cache;
}

inline void to_json(nlohmann::json& out, const Blip2Config& config) {
  config_detail::common_to_json(out, config);
  out["vision_config"] = config.vision_config;
  out["qformer_config"] = config.qformer_config;
  std::visit([&out](const auto& text) { out["text_config"] = text; }, config.text_config);
  out["num_query_tokens"] = config.num_query_tokens;
  out["image_text_hidden_size"] = config.image_text_hidden_size;
  out["image_token_index"] = config_detail::optional_to_json(config.image_token_index);
  out["use_decoder_only_language_model"] = config.use_decoder_only_language_model;
}

inline void to_json(nlohmann::json& out, const GenerationConfigFile& config) {
  using config_detail::optional_to_json;
  using config_detail::token_ids_to_json;
  out["max_length"] = config.max_length;
  out["max_new_tokens"] = optional_to_json(config.max_new_tokens);
  out["min_length"] = config.min_length;
  out["min_new_tokens"] = optional_to_json(config.min_new_tokens);
  switch (config.early_stopping) {
    case EarlyStopping::Heuristic: out["early_stopping"] = false; break;
    case EarlyStopping::Exact: out["early_stopping"] = true; break;
    case EarlyStopping::Never: out["early_stopping"] = "never"; break;
  }
  out["do_sample"] = config.do_sample;
  out["num_beams"] = config.num_beams;
  out["num_beam_groups"] = config.num_beam_groups;
  out["use_cache"] = config.use_cache;
  out["temperature"] = config.temperature;
  out["top_k"] = config.top_k;
  out["top_p"] = config.top_p;
  out["min_p"] = config.min_p ? nlohmann::json(*config.min_p) : nlohmann::json(nullptr);
  out["typical_p"] = config.typical_p;
  out["epsilon_cutoff"] = config.epsilon_cutoff;
  out["eta_cutoff"] = config.eta_cutoff;
  out["diversity_penalty"] = config.diversity_penalty;
  out["repetition_penalty"] = config.repetition_penalty;
  out["encoder_repetition_penalty"] = config.encoder_repetition_penalty;
  out["length_penalty"] = config.length_penalty;
  out["no_repeat_ngram_size"] = config.no_repeat_ngram_size;
  out["encoder_no_repeat_ngram_size"] = config.encoder_no_repeat_ngram_size;
  out["bad_words_ids"] = config.bad_words_ids.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.bad_words_ids);
  out["renormalize_logits"] = config.renormalize_logits;
  out["forced_bos_token_id"] = optional_to_json(config.forced_bos_token_id);
  out["forced_eos_token_id"] = token_ids_to_json(config.forced_eos_token_id);
  out["remove_invalid_values"] = config.remove_invalid_values;
  out["exponential_decay_length_penalty"] =
      config.exponential_decay_length_penalty
          ? nlohmann::json::array({config.exponential_decay_length_penalty->first,
                                   config.exponential_decay_length_penalty->second})
          : nlohmann::json(nullptr);
  out["suppress_tokens"] =
      config.suppress_tokens.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.suppress_tokens);
  out["begin_suppress_tokens"] =
      config.begin_suppress_tokens.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.begin_suppress_tokens);
  out["num_return_sequences"] = config.num_return_sequences;
  out["output_scores"] = config.output_scores;
  out["return_dict_in_generate"] = config.return_dict_in_generate;
  out["pad_token_id"] = optional_to_json(config.pad_token_id);
  out["bos_token_id"] = optional_to_json(config.bos_token_id);
  out["eos_token_id"] = token_ids_to_json(config.eos_token_id);
  out["decoder_start_token_id"] = optional_to_json(config.decoder_start_token_id);
}

namespace config_detail {

// GenerationConfig(**config.to_dict(), _from_model_config=True) for one
// (sub-)config: its legacy generation keys plus its token ids (which include
// the class defaults, e.g. BlipTextConfig's bos 30522).
inline GenerationConfigFile generation_config_from_fields(const PretrainedConfigCommon& config,
                                                          const std::string& source) {
  json dictionary = config.generation_parameters;
  dictionary["bos_token_id"] = optional_to_json(config.bos_token_id);
  dictionary["pad_token_id"] = optional_to_json(config.pad_token_id);
  dictionary["eos_token_id"] = token_ids_to_json(config.eos_token_id);
  dictionary["decoder_start_token_id"] = optional_to_json(config.decoder_start_token_id);
  GenerationConfigFile generation = parse_generation_config(dictionary, source);
  generation.origin = GenerationConfigOrigin::ModelConfig;
  return generation;
}

// HF GenerationConfig.from_model_config on a composite config: start from the
// top-level config, then every field still at GenerationConfig's default takes
// the text_config's value.
inline GenerationConfigFile generation_config_from_composite(const PretrainedConfigCommon& top,
                                                             const PretrainedConfigCommon& text,
                                                             const std::string& source) {
  const json defaults = GenerationConfigFile{};
  json merged = generation_config_from_fields(top, source);
  const json text_values = generation_config_from_fields(text, source + " (text_config)");
  for (auto& [key, value] : merged.items()) {
    if (value == defaults.at(key) && text_values.contains(key)) value = text_values.at(key);
  }
  GenerationConfigFile generation = parse_generation_config(merged, source);
  generation.unsupported_parameters.clear();
  for (const PretrainedConfigCommon* part : {&top, &text}) {
    for (const std::string& key : unmodelled_generation_keys()) {
      const auto found = part->generation_parameters.find(key);
      if (found != part->generation_parameters.end() && !found->is_null()) {
        generation.unsupported_parameters.push_back(key);
      }
    }
  }
  generation.origin = GenerationConfigOrigin::ModelConfig;
  return generation;
}

inline const PretrainedConfigCommon& text_config_of(const ModelConfig& model) {
  if (model.family == ModelFamily::Blip) return model.blip.text_config;
  return std::visit([](const auto& text) -> const PretrainedConfigCommon& { return text; }, model.blip2.text_config);
}

}  // namespace config_detail

// HF GenerationConfig.from_model_config(model.config): what a model loaded
// with from_pretrained uses when its folder has no generation_config.json.
inline GenerationConfigFile generation_config_from_model_config(const ModelConfig& model) {
  const PretrainedConfigCommon& top =
      model.family == ModelFamily::Blip ? static_cast<const PretrainedConfigCommon&>(model.blip) : model.blip2;
  return config_detail::generation_config_from_composite(top, config_detail::text_config_of(model), model.source);
}

// The generation config that BLIP's `text_decoder.generate(...)` and BLIP-2's
// `language_model.generate(...)` actually run with in HF: those inner models
// are built from `config.text_config` and never read generation_config.json,
// so this is GenerationConfig.from_model_config(config.text_config). (BLIP's
// generate additionally passes eos = text_config.sep_token_id and pad =
// text_config.pad_token_id explicitly.)
inline GenerationConfigFile language_model_generation_config(const ModelConfig& model) {
  return config_detail::generation_config_from_fields(config_detail::text_config_of(model),
                                                      model.source + " (text_config)");
}

// What HF's from_pretrained leaves in `model.generation_config`:
// <model_dir>/generation_config.json when present; otherwise derived from
// <model_dir>/config.json (GenerationConfig.from_model_config); otherwise
// GenerationConfig() defaults. `origin` says which.
inline GenerationConfigFile load_generation_config(const std::string& model_dir) {
  const std::filesystem::path directory(model_dir);
  const std::filesystem::path generation_path = directory / "generation_config.json";
  if (std::filesystem::exists(generation_path)) {
    return parse_generation_config(config_detail::read_json_file(generation_path.string()), generation_path.string());
  }
  if (std::filesystem::exists(directory / "config.json")) {
    return generation_config_from_model_config(load_model_config(model_dir));
  }
  return GenerationConfigFile{};
}

}  // namespace blip
