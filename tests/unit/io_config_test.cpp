// Tests for blip/io/config.hpp.
//
// Parity: tests/data/config_expectations.json holds Hugging Face's own reading
// (BlipConfig / Blip2Config.from_pretrained + GenerationConfig, transformers
// 4.45.0.dev0) of every fixture config, the real Salesforce configs in the
// assets, and hand-written edge cases; it was written by
// tests/data/make_config_expectations.py through the oracle environment. Every
// field the C++ structs expose is compared with HF's value, and every HF value
// listed there must be exposed. On top of that, the fixture values are checked
// against each case.json's params and the real checkpoints' key numbers are
// asserted by hand, and every error path is checked for a message that names
// the file and the key.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string>
#include <vector>

#include "blip/io/config.hpp"
#include "test_support.hpp"

#if defined(__unix__)
#include <sys/wait.h>  // WEXITSTATUS, for the download script test
#endif

namespace io_config_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path test_data_dir() { return fs::path(__FILE__).parent_path().parent_path() / "data"; }

json read_json(const fs::path& path) {
  std::ifstream stream(path);
  REQUIRE_MESSAGE(static_cast<bool>(stream), "cannot open ", path.string());
  return json::parse(stream);
}

fs::path scratch_dir(const std::string& name) { return blip::test::scratch_dir("io_config_test_scratch", name); }
using blip::test::write_text;

// A model folder holding `config` (and `generation` unless null).
fs::path model_dir_with(const std::string& name, const json& config, const json& generation = nullptr) {
  const fs::path directory = scratch_dir(name);
  write_text(directory / "config.json", config.dump(2));
  if (!generation.is_null()) write_text(directory / "generation_config.json", generation.dump(2));
  return directory;
}

// The message of the blip::Error `action` throws ("" and a failed check when it does not throw).
template <class Action>
std::string error_message_of(Action&& action) {
  try {
    action();
  } catch (const blip::Error& error) {
    return error.what();
  }
  FAIL_CHECK("expected blip::Error, nothing was thrown");
  return "";
}

void check_error_mentions(const std::string& message, const std::vector<std::string>& fragments) {
  for (const std::string& fragment : fragments) {
    CHECK_MESSAGE(message.find(fragment) != std::string::npos, "message \"", message, "\" lacks \"", fragment, "\"");
  }
}

// HF writes eos_token_id as an int or a list; compare the sets of ids.
json normalized(const std::string& key, const json& value) {
  if ((key == "eos_token_id" || key == "forced_eos_token_id") && value.is_number_integer()) return json::array({value});
  return value;
}

// Collects every difference between `actual` (our to_json) and `expected`
// (HF's to_dict restricted to the modelled keys), in both directions.
void collect_differences(const json& actual, const json& expected, const std::string& path,
                         std::vector<std::string>& differences) {
  if (expected.is_object()) {
    if (!actual.is_object()) {
      differences.push_back(path + ": expected an object, got " + actual.dump());
      return;
    }
    for (const auto& [key, expected_value] : expected.items()) {
      const std::string child = path.empty() ? key : path + "." + key;
      if (!actual.contains(key)) {
        differences.push_back(child + ": HF has " + expected_value.dump() + ", the C++ struct has no such field");
        continue;
      }
      collect_differences(normalized(key, actual.at(key)), normalized(key, expected_value), child, differences);
    }
    for (const auto& [key, actual_value] : actual.items()) {
      if (!expected.contains(key)) {
        differences.push_back((path.empty() ? key : path + "." + key) + ": C++ has " + actual_value.dump() +
                              ", missing from the HF expectations");
      }
    }
    return;
  }
  if (expected.is_number() && actual.is_number()) {
    const double a = actual.get<double>(), e = expected.get<double>();
    if (std::abs(a - e) > 1e-12 * std::max(1.0, std::abs(e))) {
      differences.push_back(path + ": C++ " + actual.dump() + " != HF " + expected.dump());
    }
    return;
  }
  if (expected.is_array() && actual.is_array() && expected.size() == actual.size()) {
    for (std::size_t i = 0; i < expected.size(); ++i) {
      collect_differences(actual[i], expected[i], path + "[" + std::to_string(i) + "]", differences);
    }
    return;
  }
  if (actual != expected) differences.push_back(path + ": C++ " + actual.dump() + " != HF " + expected.dump());
}

void check_same_as_hf(const json& actual, const json& expected, const std::string& what) {
  std::vector<std::string> differences;
  collect_differences(actual, expected, "", differences);
  std::string report;
  for (const std::string& line : differences) report += "\n  " + line;
  CHECK_MESSAGE(differences.empty(), what, " differs from Hugging Face:", report);
}

json model_config_json(const blip::ModelConfig& model) {
  return model.family == blip::ModelFamily::Blip ? json(model.blip) : json(model.blip2);
}

// generation_defaults overlaid with the case's non-default values.
json expected_generation(const json& expectations, const json& non_default_values) {
  json expected = expectations.at("generation_defaults");
  for (const auto& [key, value] : non_default_values.items()) expected[key] = value;
  return expected;
}

const char* origin_name(blip::GenerationConfigOrigin origin) {
  switch (origin) {
    case blip::GenerationConfigOrigin::File: return "file";
    case blip::GenerationConfigOrigin::ModelConfig: return "model_config";
    case blip::GenerationConfigOrigin::Defaults: return "defaults";
  }
  return "?";
}

// Where a case's model folder is: a fixture, an asset, or a scratch folder
// holding its inline JSON. Empty when the fixture/asset is absent (skipped).
std::string case_directory(const json& test_case) {
  const std::string name = test_case.at("name");
  if (test_case.contains("directory")) {
    const std::string relative = test_case.at("directory");
    const std::string prefix = relative.substr(0, relative.find('/'));
    const std::string rest = relative.substr(relative.find('/') + 1);
    const std::string path =
        (prefix == "fixtures" ? blip::test::fixture(rest) : blip::test::asset(rest));
    if (!blip::test::have_or_skip(path + "/config.json", name.c_str())) return "";
    return path;
  }
  const json generation = test_case.contains("generation_config_json") ? test_case.at("generation_config_json") : json();
  return model_dir_with("case_" + name, test_case.at("config_json"), generation).string();
}

}  // namespace

TEST_CASE("every config in config_expectations.json parses exactly as Hugging Face reads it") {
  const json expectations = read_json(test_data_dir() / "config_expectations.json");
  const json& cases = expectations.at("cases");
  REQUIRE(cases.size() >= 20);
  int compared = 0;
  for (const json& test_case : cases) {
    if (test_case.contains("error_contains")) continue;
    const std::string name = test_case.at("name");
    INFO("case ", name);
    const std::string directory = case_directory(test_case);
    if (directory.empty()) continue;

    const blip::ModelConfig model = blip::load_model_config(directory);
    check_same_as_hf(model_config_json(model), test_case.at("config"), name + " config.json");
    CHECK(model.architecture == test_case.at("architecture").get<std::string>());

    const blip::GenerationConfigFile generation = blip::load_generation_config(directory);
    check_same_as_hf(json(generation), expected_generation(expectations, test_case.at("generation_config")),
                     name + " generation config");
    CHECK(std::string(origin_name(generation.origin)) == test_case.at("generation_origin").get<std::string>());

    check_same_as_hf(json(blip::language_model_generation_config(model)),
                     expected_generation(expectations, test_case.at("language_model_generation_config")),
                     name + " language model generation config");
    ++compared;
  }
  MESSAGE("compared ", compared, " configs with Hugging Face");
  CHECK(compared >= 10);  // the hand-written cases alone are 10; fixtures and assets add 10 more
}

TEST_CASE("configs Hugging Face rejects are rejected, naming the key") {
  const json expectations = read_json(test_data_dir() / "config_expectations.json");
  int checked = 0;
  for (const json& test_case : expectations.at("cases")) {
    if (!test_case.contains("error_contains")) continue;
    const std::string name = test_case.at("name");
    INFO("case ", name, " (HF: ", test_case.at("hf_error").get<std::string>(), ")");
    const std::string directory = case_directory(test_case);
    const std::string message = error_message_of([&] {
      blip::load_model_config(directory);
      blip::load_generation_config(directory);
    });
    check_error_mentions(message, {test_case.at("error_contains").get<std::string>(), directory});
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("fixture configs agree with the parameters recorded in case.json") {
  int checked = 0;
  for (const char* name : {"blip_caption", "blip_vqa", "blip_itm"}) {
    const std::string directory = blip::test::fixture(name);
    if (!blip::test::have_or_skip(directory + "/case.json", name)) continue;
    INFO("fixture ", std::string(name));
    const json case_json = read_json(fs::path(directory) / "case.json");
    const json& params = case_json.at("params");
    const blip::ModelConfig model = blip::load_model_config(directory);
    REQUIRE(model.family == blip::ModelFamily::Blip);
    CHECK(model.architecture == case_json.at("model_class").get<std::string>());
    const blip::BlipConfig& config = model.blip;
    const blip::BlipVisionConfig& vision = config.vision_config;
    CHECK(vision.hidden_size == params.at("vision_hidden").get<std::int64_t>());
    CHECK(vision.num_hidden_layers == params.at("vision_layers").get<std::int64_t>());
    CHECK(vision.num_attention_heads == params.at("vision_heads").get<std::int64_t>());
    CHECK(vision.intermediate_size == params.at("vision_inter").get<std::int64_t>());
    CHECK(vision.image_size == params.at("image_size").get<std::int64_t>());
    CHECK(vision.patch_size == params.at("patch_size").get<std::int64_t>());
    CHECK(vision.layer_norm_eps == 1e-5);  // absent from config.json: BlipVisionConfig's default
    CHECK(vision.hidden_act == "gelu");
    const blip::BlipTextConfig& text = config.text_config;
    CHECK(text.hidden_size == params.at("text_hidden").get<std::int64_t>());
    CHECK(text.num_hidden_layers == params.at("text_layers").get<std::int64_t>());
    CHECK(text.num_attention_heads == params.at("text_heads").get<std::int64_t>());
    CHECK(text.intermediate_size == params.at("text_inter").get<std::int64_t>());
    CHECK(text.encoder_hidden_size == vision.hidden_size);
    CHECK(text.layer_norm_eps == 1e-12);
    CHECK(text.vocab_size == 30524);
    CHECK(text.max_position_embeddings == 512);
    CHECK(text.bos_token_id == 30522);
    CHECK(text.sep_token_id == 102);
    CHECK(text.pad_token_id == 0);
    CHECK(text.eos_token_id == std::vector<std::int64_t>{2});
    CHECK(text.is_decoder);
    if (params.contains("image_text_hidden")) {
      CHECK(config.image_text_hidden_size == params.at("image_text_hidden").get<std::int64_t>());
    } else {
      CHECK(config.image_text_hidden_size == 256);
    }
    if (!case_json.at("language_model_generation_config").is_null()) {
      const json& recorded = case_json.at("language_model_generation_config");
      const blip::GenerationConfigFile generation = blip::language_model_generation_config(model);
      CHECK(generation.bos_token_id == recorded.at("bos_token_id").get<std::int64_t>());
      CHECK(generation.eos_token_id == std::vector<std::int64_t>{recorded.at("eos_token_id").get<std::int64_t>()});
      CHECK(generation.pad_token_id == recorded.at("pad_token_id").get<std::int64_t>());
    }
    ++checked;
  }
  for (const char* name : {"blip2_opt", "blip2_opt_imgtok", "blip2_t5", "blip2_itm"}) {
    const std::string directory = blip::test::fixture(name);
    if (!blip::test::have_or_skip(directory + "/case.json", name)) continue;
    INFO("fixture ", std::string(name));
    const json case_json = read_json(fs::path(directory) / "case.json");
    const json& params = case_json.at("params");
    const blip::ModelConfig model = blip::load_model_config(directory);
    REQUIRE(model.family == blip::ModelFamily::Blip2);
    CHECK(model.architecture == case_json.at("model_class").get<std::string>());
    const blip::Blip2Config& config = model.blip2;
    const blip::Blip2VisionConfig& vision = config.vision_config;
    CHECK(vision.hidden_size == params.at("vision_hidden").get<std::int64_t>());
    CHECK(vision.num_hidden_layers == params.at("vision_layers").get<std::int64_t>());
    CHECK(vision.num_attention_heads == params.at("vision_heads").get<std::int64_t>());
    CHECK(vision.intermediate_size == params.at("vision_inter").get<std::int64_t>());
    CHECK(vision.image_size == params.at("image_size").get<std::int64_t>());
    CHECK(vision.patch_size == params.at("patch_size").get<std::int64_t>());
    CHECK(vision.layer_norm_eps == 1e-6);  // Blip2VisionConfig's default
    CHECK(vision.qkv_bias);
    const blip::Blip2QFormerConfig& qformer = config.qformer_config;
    CHECK(qformer.hidden_size == params.at("qformer_hidden").get<std::int64_t>());
    CHECK(qformer.num_hidden_layers == params.at("qformer_layers").get<std::int64_t>());
    CHECK(qformer.num_attention_heads == params.at("qformer_heads").get<std::int64_t>());
    CHECK(qformer.intermediate_size == params.at("qformer_inter").get<std::int64_t>());
    CHECK(qformer.cross_attention_frequency == params.at("cross_attention_frequency").get<std::int64_t>());
    CHECK(qformer.encoder_hidden_size == vision.hidden_size);
    CHECK(qformer.layer_norm_eps == 1e-12);
    CHECK(qformer.vocab_size == params.value("qformer_vocab", std::int64_t{30522}));
    CHECK(qformer.use_qformer_text_input == (std::string(name) == "blip2_itm"));
    CHECK(config.num_query_tokens == params.at("num_query_tokens").get<std::int64_t>());
    if (params.contains("image_text_hidden")) {
      CHECK(config.image_text_hidden_size == params.at("image_text_hidden").get<std::int64_t>());
    }
    if (params.contains("image_token_index") && !params.at("image_token_index").is_null()) {
      CHECK(config.image_token_index == params.at("image_token_index").get<std::int64_t>());
    } else {
      CHECK_FALSE(config.image_token_index.has_value());
    }
    if (std::string(name) == "blip2_t5") {
      REQUIRE(config.has_t5());
      const blip::T5Config& t5 = config.t5();
      CHECK(t5.d_model == params.at("text_hidden").get<std::int64_t>());
      CHECK(t5.num_heads == params.at("text_heads").get<std::int64_t>());
      CHECK(t5.num_layers == params.at("text_layers").get<std::int64_t>());
      CHECK(t5.num_decoder_layers == params.at("decoder_layers").get<std::int64_t>());
      CHECK(t5.d_ff == params.at("text_inter").get<std::int64_t>());
      CHECK(t5.d_kv == params.at("d_kv").get<std::int64_t>());
      CHECK(t5.relative_attention_num_buckets == params.at("rel_buckets").get<std::int64_t>());
      CHECK(t5.relative_attention_max_distance == params.at("rel_max_distance").get<std::int64_t>());
      CHECK(t5.dense_act_fn == "gelu_new");
      CHECK(t5.is_gated_act);
      CHECK_FALSE(t5.tie_word_embeddings);
      CHECK(t5.vocab_size == 32128);
      CHECK(t5.pad_token_id == 0);
      CHECK(t5.eos_token_id == std::vector<std::int64_t>{1});
      CHECK(t5.decoder_start_token_id == 0);
      CHECK(t5.bos_token_id == 1);
      CHECK(t5.layer_norm_epsilon == 1e-6);
      CHECK_FALSE(config.use_decoder_only_language_model);
      CHECK(config.is_encoder_decoder);
      CHECK_FALSE(config.tie_word_embeddings);
    } else {
      REQUIRE(config.has_opt());
      const blip::OptConfig& opt = config.opt();
      // blip2_itm's text_* params describe the Q-Former text side; its OPT is an
      // unused placeholder (ITM never runs the language model).
      if (std::string(name) != "blip2_itm") {
        CHECK(opt.hidden_size == params.at("text_hidden").get<std::int64_t>());
        CHECK(opt.num_attention_heads == params.at("text_heads").get<std::int64_t>());
        CHECK(opt.num_hidden_layers == params.at("text_layers").get<std::int64_t>());
        CHECK(opt.ffn_dim == params.at("text_inter").get<std::int64_t>());
      }
      CHECK(opt.word_embed_proj_dim == opt.hidden_size);
      CHECK(opt.max_position_embeddings == params.value("text_max_positions", std::int64_t{2048}));
      CHECK(opt.vocab_size == 50272);
      CHECK(opt.bos_token_id == 2);
      CHECK(opt.eos_token_id == std::vector<std::int64_t>{2});
      CHECK(opt.pad_token_id == 1);
      CHECK(opt.activation_function == "relu");
      CHECK(opt.do_layer_norm_before);
      CHECK(opt.enable_bias);
      CHECK(opt.layer_norm_elementwise_affine);
      CHECK_FALSE(opt.remove_final_layer_norm);
      CHECK(config.use_decoder_only_language_model);
      CHECK_FALSE(config.is_encoder_decoder);
    }
    if (!case_json.at("language_model_generation_config").is_null()) {
      const json& recorded = case_json.at("language_model_generation_config");
      const blip::GenerationConfigFile generation = blip::language_model_generation_config(model);
      CHECK(generation.bos_token_id == recorded.at("bos_token_id").get<std::int64_t>());
      CHECK(generation.eos_token_id == std::vector<std::int64_t>{recorded.at("eos_token_id").get<std::int64_t>()});
      CHECK(generation.pad_token_id == recorded.at("pad_token_id").get<std::int64_t>());
      if (recorded.contains("decoder_start_token_id")) {
        CHECK(generation.decoder_start_token_id == recorded.at("decoder_start_token_id").get<std::int64_t>());
      }
    }
    ++checked;
  }
  MESSAGE("checked ", checked, " fixtures against case.json");
}

TEST_CASE("the real Salesforce configs: key numbers, including HF quirks") {
  SUBCASE("blip-image-captioning-base") {
    const std::string directory = blip::test::asset("tokenizers/blip-image-captioning-base");
    if (!blip::test::have_or_skip(directory + "/config.json", "blip-image-captioning-base config")) return;
    const blip::ModelConfig model = blip::load_model_config(directory);
    REQUIRE(model.family == blip::ModelFamily::Blip);
    CHECK(model.architecture == "BlipForConditionalGeneration");
    const blip::BlipConfig& config = model.blip;
    CHECK(config.vision_config.hidden_size == 768);
    CHECK(config.vision_config.num_hidden_layers == 12);
    CHECK(config.vision_config.image_size == 384);
    CHECK(config.vision_config.patch_size == 16);
    CHECK(config.vision_config.layer_norm_eps == 1e-5);
    CHECK(config.text_config.num_attention_heads == 12);  // the class default would be 8
    CHECK(config.text_config.encoder_hidden_size == 768);
    CHECK(config.text_config.vocab_size == 30524);
    CHECK(config.projection_dim == 512);
    // No generation_config.json in this folder: HF derives it from config.json.
    const blip::GenerationConfigFile generation = blip::load_generation_config(directory);
    CHECK(generation.origin == blip::GenerationConfigOrigin::ModelConfig);
    CHECK(generation.bos_token_id == 30522);
    CHECK(generation.eos_token_id == std::vector<std::int64_t>{2});
    CHECK(generation.pad_token_id == 0);
  }
  SUBCASE("blip2-opt-2.7b") {
    const std::string directory = blip::test::asset("tokenizers/blip2-opt-2.7b");
    if (!blip::test::have_or_skip(directory + "/config.json", "blip2-opt-2.7b config")) return;
    const blip::ModelConfig model = blip::load_model_config(directory);
    REQUIRE(model.family == blip::ModelFamily::Blip2);
    const blip::Blip2Config& config = model.blip2;
    CHECK(config.vision_config.hidden_size == 1408);  // all vision values are class defaults here
    CHECK(config.vision_config.num_hidden_layers == 39);
    CHECK(config.vision_config.num_attention_heads == 16);
    CHECK(config.vision_config.intermediate_size == 6144);
    CHECK(config.vision_config.image_size == 224);
    CHECK(config.vision_config.patch_size == 14);
    CHECK(config.vision_config.layer_norm_eps == 1e-6);
    CHECK(config.qformer_config.hidden_size == 768);
    CHECK(config.qformer_config.num_hidden_layers == 12);
    CHECK(config.qformer_config.cross_attention_frequency == 2);
    CHECK(config.qformer_config.encoder_hidden_size == 1408);
    CHECK(config.num_query_tokens == 32);
    CHECK(config.image_token_index == 50265);
    const blip::OptConfig& opt = config.opt();
    CHECK(opt.hidden_size == 2560);
    CHECK(opt.num_hidden_layers == 32);
    CHECK(opt.num_attention_heads == 32);
    CHECK(opt.ffn_dim == 10240);
    CHECK(opt.vocab_size == 50304);
    CHECK(opt.word_embed_proj_dim == 2560);
    CHECK(opt.max_position_embeddings == 2048);
    CHECK(opt.eos_token_id == std::vector<std::int64_t>{50118});  // "\n"
    CHECK(opt.bos_token_id == 2);
    CHECK(opt.torch_dtype == "float16");
    CHECK(config.text_hidden_size() == 2560);
    CHECK(blip::load_generation_config(directory).eos_token_id == std::vector<std::int64_t>{50118});
  }
  SUBCASE("blip2-flan-t5-xl") {
    const std::string directory = blip::test::asset("tokenizers/blip2-flan-t5-xl");
    if (!blip::test::have_or_skip(directory + "/config.json", "blip2-flan-t5-xl config")) return;
    const blip::ModelConfig model = blip::load_model_config(directory);
    const blip::Blip2Config& config = model.blip2;
    CHECK(config.vision_config.layer_norm_eps == 1e-5);  // written explicitly; the class default is 1e-6
    const blip::T5Config& t5 = config.t5();
    CHECK(t5.d_model == 2048);
    CHECK(t5.d_kv == 64);
    CHECK(t5.d_ff == 5120);
    CHECK(t5.num_layers == 24);
    CHECK(t5.num_decoder_layers == 24);
    CHECK(t5.num_heads == 32);
    CHECK(t5.feed_forward_proj == "gated-gelu");
    CHECK(t5.dense_act_fn == "gelu");  // the explicit key beats the gated-gelu → gelu_new rule
    CHECK(t5.is_gated_act);
    CHECK_FALSE(t5.tie_word_embeddings);
    CHECK_FALSE(config.use_decoder_only_language_model);
    CHECK(config.is_encoder_decoder);
    CHECK_FALSE(config.tie_word_embeddings);
    CHECK(config.text_hidden_size() == 2048);
    CHECK_THROWS_AS(config.opt(), blip::Error);
  }
}

TEST_CASE("default-constructed structs are HF's defaults (equal to parsing an empty config)") {
  CHECK(json(blip::BlipConfig{}) == json(blip::parse_blip_config({{"model_type", "blip"}}, "test")));
  CHECK(json(blip::Blip2Config{}) == json(blip::parse_blip2_config({{"model_type", "blip-2"}}, "test")));
  const blip::Blip2Config empty = blip::parse_blip2_config({{"model_type", "blip-2"}}, "test");
  CHECK(empty.has_opt());  // HF: no text_config → OPT
  CHECK(empty.opt().vocab_size == 50272);
  CHECK(empty.opt().max_position_embeddings == 2048);
  CHECK(empty.opt().word_embed_proj_dim == 768);
  CHECK(empty.qformer_config.vocab_size == 30522);
  CHECK(empty.qformer_config.cross_attention_frequency == 2);
  CHECK_FALSE(empty.qformer_config.use_qformer_text_input);
  CHECK(empty.vision_config.num_hidden_layers == 39);
  CHECK(empty.num_query_tokens == 32);
  CHECK_FALSE(empty.image_token_index.has_value());
  CHECK(json(blip::T5Config{}) ==
        json(std::get<blip::T5Config>(
            blip::parse_blip2_config({{"model_type", "blip-2"}, {"text_config", {{"model_type", "t5"}}}}, "test")
                .text_config)));
  CHECK(json(blip::GenerationConfigFile{}) == json(blip::parse_generation_config(json::object(), "test")));
}

TEST_CASE("required_token_id returns the id or names the null key") {
  const blip::BlipConfig config = blip::parse_blip_config(
      {{"model_type", "blip"}, {"text_config", {{"bos_token_id", nullptr}}}}, "test");
  CHECK(blip::required_token_id(config.text_config.sep_token_id, "text_config.sep_token_id") == 102);
  check_error_mentions(error_message_of([&] {
                         blip::required_token_id(config.text_config.bos_token_id, "text_config.bos_token_id");
                       }),
                       {"text_config.bos_token_id", "null"});
}

TEST_CASE("load_model_config accepts the config.json path itself") {
  const fs::path directory = model_dir_with("file_path", {{"model_type", "blip"}});
  const blip::ModelConfig model = blip::load_model_config((directory / "config.json").string());
  CHECK(model.family == blip::ModelFamily::Blip);
  CHECK(model.source == (directory / "config.json").string());
}

TEST_CASE("file and JSON errors name the file and where the JSON broke") {
  SUBCASE("missing folder") {
    const std::string message = error_message_of([] { blip::load_model_config("/nonexistent/blip-model"); });
    check_error_mentions(message, {"/nonexistent/blip-model/config.json", "no such file"});
  }
  SUBCASE("malformed JSON") {
    const fs::path directory = scratch_dir("malformed");
    write_text(directory / "config.json", "{\n  \"model_type\": \"blip\",\n  oops\n}\n");
    const std::string message = error_message_of([&] { blip::load_model_config(directory.string()); });
    check_error_mentions(message, {(directory / "config.json").string(), "invalid JSON", "line 3"});
  }
  SUBCASE("malformed generation_config.json") {
    const fs::path directory = model_dir_with("malformed_generation", {{"model_type", "blip"}});
    write_text(directory / "generation_config.json", "{\"num_beams\": 3,}");
    const std::string message = error_message_of([&] { blip::load_generation_config(directory.string()); });
    check_error_mentions(message, {"generation_config.json", "invalid JSON", "column"});
  }
  SUBCASE("top level is not an object") {
    const fs::path directory = scratch_dir("array");
    write_text(directory / "config.json", "[1, 2]");
    const std::string message = error_message_of([&] { blip::load_model_config(directory.string()); });
    check_error_mentions(message, {"config.json", "JSON object"});
  }
}

TEST_CASE("unsupported model types and architectures are named with the supported list") {
  const auto load_error = [](const std::string& name, const json& config) {
    const fs::path directory = model_dir_with(name, config);
    return error_message_of([&] { blip::load_model_config(directory.string()); });
  };
  check_error_mentions(load_error("clip", {{"model_type", "clip"}}), {"\"clip\"", "blip, blip-2", "config.json"});
  check_error_mentions(load_error("no_model_type", {{"architectures", {"BlipModel"}}}), {"model_type", "blip-2"});
  check_error_mentions(
      load_error("llama", {{"model_type", "blip-2"}, {"text_config", {{"model_type", "llama"}}}}),
      {"text_config.model_type", "llama", "not support", "opt, t5"});
  check_error_mentions(load_error("unknown_architecture", {{"model_type", "blip"}, {"architectures", {"BlipForFoo"}}}),
                       {"BlipForFoo", "BlipForConditionalGeneration", "Blip2ForImageTextRetrieval"});
  check_error_mentions(
      load_error("wrong_family", {{"model_type", "blip"}, {"architectures", {"Blip2ForConditionalGeneration"}}}),
      {"Blip2ForConditionalGeneration", "does not match", "blip"});
  check_error_mentions(
      load_error("sub_model_type", {{"model_type", "blip"}, {"vision_config", {{"model_type", "blip_2_vision_model"}}}}),
      {"vision_config.model_type", "blip_2_vision_model", "blip_vision_model"});
  check_error_mentions(
      load_error("qformer_model_type", {{"model_type", "blip-2"}, {"qformer_config", {{"model_type", "bert"}}}}),
      {"qformer_config.model_type", "blip_2_qformer"});
}

TEST_CASE("wrong JSON types name the key and the expected type") {
  const auto parse_error = [](const json& config) {
    return error_message_of([&] {
      const std::string model_type = config.at("model_type");
      if (model_type == "blip") {
        blip::parse_blip_config(config, "my/config.json");
      } else {
        blip::parse_blip2_config(config, "my/config.json");
      }
    });
  };
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"hidden_size", "768"}}}}),
                       {"my/config.json", "vision_config.hidden_size", "an integer", "string"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"hidden_size", 768.0}}}}),
                       {"vision_config.hidden_size", "an integer"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"text_config", {{"layer_norm_eps", "tiny"}}}}),
                       {"text_config.layer_norm_eps", "a number"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"vision_config", {{"qkv_bias", 1}}}}),
                       {"vision_config.qkv_bias", "boolean"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"architectures", "BlipModel"}}),
                       {"\"architectures\"", "list of strings"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"text_config", 5}}), {"\"text_config\"", "an object"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"text_config", {{"eos_token_id", "2"}}}}),
                       {"text_config.eos_token_id", "list of integers"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"text_config", {{"hidden_act", 3}}}}),
                       {"text_config.hidden_act", "a string"});
  check_error_mentions(
      parse_error({{"model_type", "blip-2"}, {"text_config", {{"model_type", "t5"}, {"d_kv", nullptr}}}}),
      {"text_config.d_kv", "an integer", "null"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"image_token_index", "50265"}}),
                       {"\"image_token_index\"", "an integer"});
}

TEST_CASE("nonsensical values name the key") {
  const auto parse_error = [](const json& config) {
    return error_message_of([&] {
      if (config.at("model_type") == "blip") {
        blip::parse_blip_config(config, "my/config.json");
      } else {
        blip::parse_blip2_config(config, "my/config.json");
      }
    });
  };
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"hidden_size", 770}}}}),
                       {"vision_config.hidden_size", "770", "divisible", "vision_config.num_attention_heads", "12"});
  check_error_mentions(
      parse_error({{"model_type", "blip-2"}, {"text_config", {{"hidden_size", 100}, {"num_attention_heads", 3}}}}),
      {"text_config.hidden_size", "divisible", "text_config.num_attention_heads"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"qformer_config", {{"num_attention_heads", 5}}}}),
                       {"qformer_config.hidden_size", "divisible"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"text_config", {{"num_hidden_layers", 0}}}}),
                       {"text_config.num_hidden_layers", "positive", "0"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"patch_size", -1}}}}),
                       {"vision_config.patch_size", "positive"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"qformer_config", {{"cross_attention_frequency", 0}}}}),
                       {"qformer_config.cross_attention_frequency", "positive"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"num_query_tokens", 0}}),
                       {"num_query_tokens", "positive"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"layer_norm_eps", -1e-5}}}}),
                       {"vision_config.layer_norm_eps", ">= 0"});
  check_error_mentions(
      parse_error({{"model_type", "blip-2"}, {"text_config", {{"model_type", "t5"}, {"relative_attention_num_buckets", 0}}}}),
      {"text_config.relative_attention_num_buckets", "positive"});
  check_error_mentions(parse_error({{"model_type", "blip"}, {"vision_config", {{"num_channels", 1}}}}),
                       {"vision_config.num_channels", "3"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"image_token_index", 50272}}),
                       {"image_token_index", "50272", "vocab_size = 50272"});
  check_error_mentions(parse_error({{"model_type", "blip-2"}, {"text_config", {{"model_type", "t5"}, {"feed_forward_proj", "a-b"}}}}),
                       {"text_config.feed_forward_proj", "gated-{ACT_FN}"});
}

TEST_CASE("Blip2Config derives use_decoder_only_language_model, tie and encoder-decoder from the text model") {
  const blip::Blip2Config t5 = blip::parse_blip2_config(
      {{"model_type", "blip-2"},
       {"use_decoder_only_language_model", true},
       {"is_encoder_decoder", false},
       {"tie_word_embeddings", true},
       {"vision_config", {{"hidden_size", 64}, {"num_attention_heads", 4}}},
       {"qformer_config", {{"encoder_hidden_size", 5}}},
       {"text_config", {{"model_type", "t5"}, {"tie_word_embeddings", false}}}},
      "test");
  CHECK_FALSE(t5.use_decoder_only_language_model);
  CHECK(t5.is_encoder_decoder);
  CHECK_FALSE(t5.tie_word_embeddings);
  CHECK(t5.qformer_config.encoder_hidden_size == 64);
  CHECK(t5.text_model_type() == "t5");
  CHECK_THROWS_AS(t5.opt(), blip::Error);

  const blip::BlipConfig blip_config = blip::parse_blip_config(
      {{"model_type", "blip"}, {"vision_config", {{"hidden_size", 48}, {"num_attention_heads", 4}}},
       {"text_config", {{"encoder_hidden_size", 1}}}},
      "test");
  CHECK(blip_config.text_config.encoder_hidden_size == 48);
}

TEST_CASE("generation config: absent files, null warpers, unmodelled keys, validation") {
  SUBCASE("no files at all → GenerationConfig() defaults") {
    const fs::path directory = scratch_dir("empty_model_dir");
    const blip::GenerationConfigFile generation = blip::load_generation_config(directory.string());
    CHECK(generation.origin == blip::GenerationConfigOrigin::Defaults);
    CHECK(generation.max_length == 20);
    CHECK(generation.num_beams == 1);
    CHECK_FALSE(generation.bos_token_id.has_value());
    CHECK(generation.eos_token_id.empty());
  }
  SUBCASE("null temperature / top_k / top_p read as the neutral values") {
    const blip::GenerationConfigFile generation = blip::parse_generation_config(
        {{"temperature", nullptr}, {"top_k", nullptr}, {"top_p", nullptr}, {"typical_p", nullptr}}, "test");
    CHECK(generation.temperature == 1.0);
    CHECK(generation.top_k == 0);
    CHECK(generation.top_p == 1.0);
    CHECK(generation.typical_p == 1.0);
  }
  SUBCASE("keys that change generation but are not modelled are listed") {
    const blip::GenerationConfigFile generation = blip::parse_generation_config(
        {{"penalty_alpha", 0.6}, {"forced_decoder_ids", {{1, 2}}}, {"sequence_bias", nullptr}, {"foo", 1}}, "test");
    CHECK(generation.unsupported_parameters == std::vector<std::string>{"penalty_alpha", "forced_decoder_ids"});
  }
  SUBCASE("early_stopping forms and eos as int or list") {
    CHECK(blip::parse_generation_config({{"early_stopping", true}}, "t").early_stopping == blip::EarlyStopping::True);
    CHECK(blip::parse_generation_config({{"early_stopping", false}}, "t").early_stopping ==
          blip::EarlyStopping::False);
    CHECK(blip::parse_generation_config({{"early_stopping", "never"}}, "t").early_stopping ==
          blip::EarlyStopping::Never);
    CHECK(blip::parse_generation_config({{"eos_token_id", 7}}, "t").eos_token_id == std::vector<std::int64_t>{7});
    CHECK(blip::parse_generation_config({{"eos_token_id", {7, 8}}}, "t").eos_token_id ==
          std::vector<std::int64_t>{7, 8});
  }
  SUBCASE("legacy generation keys in config.json flow into the derived generation config") {
    const fs::path directory =
        model_dir_with("legacy_generation", {{"model_type", "blip-2"},
                                             {"num_beams", 5},
                                             {"text_config", {{"max_length", 30}, {"eos_token_id", 50118}}}});
    const blip::GenerationConfigFile generation = blip::load_generation_config(directory.string());
    CHECK(generation.origin == blip::GenerationConfigOrigin::ModelConfig);
    CHECK(generation.num_beams == 5);
    CHECK(generation.max_length == 30);
    CHECK(generation.eos_token_id == std::vector<std::int64_t>{50118});
    CHECK(generation.bos_token_id == 2);
    const blip::GenerationConfigFile language_model =
        blip::language_model_generation_config(blip::load_model_config(directory.string()));
    CHECK(language_model.num_beams == 1);  // the top-level key is not the language model's
    CHECK(language_model.max_length == 30);
  }
  SUBCASE("validation errors name the key") {
    const auto generation_error = [](const json& config) {
      return error_message_of([&] { blip::parse_generation_config(config, "gen.json"); });
    };
    check_error_mentions(generation_error({{"num_beams", "4"}}), {"gen.json", "\"num_beams\"", "an integer"});
    check_error_mentions(generation_error({{"num_beams", 0}}), {"\"num_beams\"", "positive"});
    check_error_mentions(generation_error({{"bad_words_ids", {1, 2}}}), {"\"bad_words_ids\"", "lists of integers"});
    check_error_mentions(generation_error({{"exponential_decay_length_penalty", {1}}}),
                         {"\"exponential_decay_length_penalty\"", "pair"});
    check_error_mentions(generation_error({{"num_beams", 4}, {"num_beam_groups", 3}}),
                         {"\"num_beams\"", "divisible", "\"num_beam_groups\""});
    check_error_mentions(generation_error({{"max_new_tokens", -3}}), {"\"max_new_tokens\"", "greater than 0"});
    check_error_mentions(generation_error({{"suppress_tokens", "1,2"}}), {"\"suppress_tokens\"", "list of integers"});
  }
}

// ---- weights_tools/download_hf_model.sh --------------------------------------
// Only the paths that need no network: this test must never download. The
// endpoint is a closed local port, so curl fails at once, like an offline machine.
#if defined(__unix__)
namespace {

struct ScriptRun {
  int exit_status = -1;
  std::string output;  // stdout + stderr
};

ScriptRun run_download_script(const std::string& environment, const std::string& arguments) {
  const fs::path script = fs::path(__FILE__).parent_path().parent_path().parent_path() / "weights_tools" /
                          "download_hf_model.sh";
  REQUIRE_MESSAGE(fs::exists(script), "missing ", script.string());
  const fs::path log = scratch_dir("download_script_log") / "output.txt";
  const std::string command =
      environment + " bash '" + script.string() + "' " + arguments + " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  ScriptRun run;
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream stream(log);
  run.output.assign(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
  return run;
}

}  // namespace

TEST_CASE("download_hf_model.sh fails fast and clearly when the server is unreachable") {
  if (std::system("command -v curl > /dev/null 2>&1") != 0) {
    blip::test::skip("curl is not installed");
    return;
  }
  const fs::path destination = scratch_dir("download_offline") / "blip-vqa-base";
  const auto started = std::chrono::steady_clock::now();
  const ScriptRun run =
      run_download_script("HF_ENDPOINT=http://127.0.0.1:9", "Salesforce/blip-vqa-base '" + destination.string() + "'");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  INFO("script output: ", run.output);
  CHECK(run.exit_status == 3);
  check_error_mentions(run.output, {"cannot reach http://127.0.0.1:9", "offline"});
  CHECK_FALSE(fs::exists(destination));  // nothing created before the server answered
  CHECK(seconds < 30.0);
}

TEST_CASE("download_hf_model.sh rejects bad arguments with usage") {
  const ScriptRun no_arguments = run_download_script("", "");
  CHECK(no_arguments.exit_status == 2);
  check_error_mentions(no_arguments.output, {"usage:", "REPO_ID DEST_DIR [REVISION]"});
  const ScriptRun bad_repo = run_download_script("HF_ENDPOINT=http://127.0.0.1:9", "not-a-repo-id /tmp/unused");
  CHECK(bad_repo.exit_status == 2);
  check_error_mentions(bad_repo.output, {"owner/name", "not-a-repo-id"});
}
#endif

}  // namespace io_config_test
