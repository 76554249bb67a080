// blip/io/config/model_config.hpp: a model folder's config.json, whichever
// BLIP family it holds, and the generation config HF derives for it.
//
// Entry points:
//   load_model_config(dir)             <dir>/config.json → ModelConfig (family + architecture + struct)
//   parse_model_config(json, source)   the same from a parsed object
//   load_generation_config(dir)        generation_config.json, else derived from config.json as HF does
//   generation_config_from_model_config(model), language_model_generation_config(model)
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/config/blip2_configs.hpp"
#include "blip/io/config/blip_configs.hpp"
#include "blip/io/config/generation_config.hpp"
#include "blip/io/config/json_reader.hpp"
#include "blip/io/config/pretrained_config.hpp"
#include "blip/io/json_file.hpp"

namespace blip {

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
  require_object(document, source);
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
    fail(source, ": unsupported \"model_type\" \"", clip(model_type), "\" (supported model types: blip, blip-2)");
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
              "\" does not match model_type \"", clip(model_type), "\"");
      }
      std::string list;
      for (ModelFamily family : {ModelFamily::Blip, ModelFamily::Blip2}) {
        for (const std::string& name : supported_architectures(family)) list += (list.empty() ? "" : ", ") + name;
      }
      fail(source, ": unsupported architecture \"", clip(model.architecture), "\" (supported architectures: ", list,
           ")");
    }
  }
  return model;
}

// Reads <model_dir>/config.json (or `model_dir` itself when it is a file).
inline ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path =
      std::filesystem::is_regular_file(model_dir) ? model_dir : (std::filesystem::path(model_dir) / "config.json").string();
  return parse_model_config(read_config_json_file(path), path);
}

// ---------------------------------------------------------------------------
// The generation config of a model folder
// ---------------------------------------------------------------------------

namespace config_detail {

// GenerationConfig(**config.to_dict(), _from_model_config=True) for one
// (sub-)config: its legacy generation keys plus its token ids (which include
// the class defaults, e.g. BlipTextConfig's bos 30522).
inline GenerationConfigFile generation_config_from_fields(const PretrainedConfigCommon& config,
                                                          const std::string& source) {
  json dictionary = config.generation_parameters;
  dictionary["bos_token_id"] = value_to_json(config.bos_token_id);
  dictionary["pad_token_id"] = value_to_json(config.pad_token_id);
  dictionary["eos_token_id"] = token_ids_to_json(config.eos_token_id);
  dictionary["decoder_start_token_id"] = value_to_json(config.decoder_start_token_id);
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
    return parse_generation_config(read_config_json_file(generation_path), generation_path.string());
  }
  if (std::filesystem::exists(directory / "config.json")) {
    return generation_config_from_model_config(load_model_config(model_dir));
  }
  return GenerationConfigFile{};
}

}  // namespace blip
