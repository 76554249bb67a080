// blip/io/config/generation_config.hpp: transformers' GenerationConfig as a
// typed struct, parsed from generation_config.json (or from the legacy
// generation keys of a config.json, see model_config.hpp).
//
// Field names are HF's keys and the defaults are GenerationConfig()'s. The
// fields are listed once, in visit_fields(), which drives parsing, the range
// checks, the JSON output and the list of keys HF's GenerationConfig reads.
// parse_generation_config() adds the cross-field checks HF's validate()
// raises for. What generate() is then asked to do is
// generation::options_from_generation_config() (generation/options.hpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/config/fields.hpp"
#include "blip/io/config/json_reader.hpp"

namespace blip {

// HF GenerationConfig's `early_stopping`: false, true or "never". The one
// enum for it: GenerationOptions (generation/options.hpp) uses it too.
enum class EarlyStopping {
  False,  // false: stop a beam row once its best live candidate cannot beat the worst finished one (a heuristic)
  True,   // true: stop a beam row as soon as num_beams hypotheses have finished
  Never,  // "never": the canonical beam search, stop only when no live candidate can still win
};

// HF's JSON form of early_stopping.
inline void to_json(nlohmann::json& out, const EarlyStopping& early_stopping) {
  switch (early_stopping) {
    case EarlyStopping::False: out = false; break;
    case EarlyStopping::True: out = true; break;
    case EarlyStopping::Never: out = "never"; break;
  }
}

namespace config_detail {
inline void read_enum(const ObjectReader& reader, const std::string& key, EarlyStopping& out) {
  const json& value = *reader.find(key);
  if (value.is_boolean()) {
    out = value.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
  } else if (value.is_string() && value.get<std::string>() == "never") {
    out = EarlyStopping::Never;
  } else {
    reader.wrong_type(key, "true, false or \"never\"", value);
  }
}
}  // namespace config_detail

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
  EarlyStopping early_stopping = EarlyStopping::False;
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
  // ...). generation::options_from_generation_config refuses each by name.
  std::vector<std::string> unsupported_parameters;
  GenerationConfigOrigin origin = GenerationConfigOrigin::Defaults;

  // The keys HF's GenerationConfig reads (not unsupported_parameters / origin,
  // which are ours).
  template <class Visitor>
  void visit_fields(Visitor& v) {
    using namespace config_detail;
    v("max_length", max_length, NonNegative{});
    v("max_new_tokens", max_new_tokens);  // > 0 when set: checked in parse_generation_config, as HF words it
    v("min_length", min_length, NonNegative{});
    v("min_new_tokens", min_new_tokens);
    v("early_stopping", early_stopping);
    v("do_sample", do_sample);
    v("num_beams", num_beams, Positive{});
    v("num_beam_groups", num_beam_groups, Positive{});
    v("use_cache", use_cache);
    v("temperature", temperature, NullMeans<double>{1.0});
    v("top_k", top_k, NullMeans<std::int64_t>{0});
    v("top_p", top_p, NullMeans<double>{1.0});
    v("min_p", min_p);
    v("typical_p", typical_p, NullMeans<double>{1.0});
    v("epsilon_cutoff", epsilon_cutoff);
    v("eta_cutoff", eta_cutoff);
    v("diversity_penalty", diversity_penalty);
    v("repetition_penalty", repetition_penalty);
    v("encoder_repetition_penalty", encoder_repetition_penalty);
    v("length_penalty", length_penalty);
    v("no_repeat_ngram_size", no_repeat_ngram_size);
    v("encoder_no_repeat_ngram_size", encoder_no_repeat_ngram_size);
    v("bad_words_ids", bad_words_ids);
    v("renormalize_logits", renormalize_logits);
    v("forced_bos_token_id", forced_bos_token_id);
    v("forced_eos_token_id", forced_eos_token_id, TokenIds{});
    v("remove_invalid_values", remove_invalid_values);
    v("exponential_decay_length_penalty", exponential_decay_length_penalty);
    v("suppress_tokens", suppress_tokens);
    v("begin_suppress_tokens", begin_suppress_tokens);
    v("num_return_sequences", num_return_sequences, Positive{});
    v("output_scores", output_scores);
    v("return_dict_in_generate", return_dict_in_generate);
    v("pad_token_id", pad_token_id);
    v("bos_token_id", bos_token_id);
    v("eos_token_id", eos_token_id, TokenIds{});
    v("decoder_start_token_id", decoder_start_token_id);
  }
};

inline void to_json(nlohmann::json& out, const GenerationConfigFile& config) { config_detail::write_fields(out, config); }

namespace config_detail {

// The keys HF's GenerationConfig reads. Used both to capture legacy generation
// parameters written into model configs and to parse generation_config.json.
inline const std::vector<std::string>& generation_keys() {
  static const std::vector<std::string> keys = field_keys<GenerationConfigFile>();
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

}  // namespace config_detail

// Parses a generation_config.json object like HF's GenerationConfig(**dict),
// including the checks its validate() raises for.
inline GenerationConfigFile parse_generation_config(const nlohmann::json& document, const std::string& source) {
  using namespace config_detail;
  require_object(document, source);
  const ObjectReader reader(document, source, "");
  GenerationConfigFile config;
  config.origin = GenerationConfigOrigin::File;
  read_fields(reader, config);
  for (const std::string& key : unmodelled_generation_keys()) {
    if (reader.has_value(key)) config.unsupported_parameters.push_back(key);
  }

  // The checks HF's GenerationConfig.validate() raises for (the rest are warnings).
  if (config.max_new_tokens) {
    check(*config.max_new_tokens > 0, source, ": key \"max_new_tokens\" must be greater than 0, got ",
          *config.max_new_tokens);
  }
  check_fields(reader, config);
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

}  // namespace blip
