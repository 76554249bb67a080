// Tests for generation::options_from_generation_config (generation/options.hpp):
// the one translation from a parsed generation config (generation_config.json,
// or the one HF derives from config.json / text_config) into GenerationOptions.
// Every field GenerationOptions models must arrive, including the three that a
// hand copy once dropped: early_stopping, min_new_tokens, num_return_sequences.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "blip/generation/options.hpp"
#include "blip/io/config.hpp"
#include "blip/tasks/model_folder.hpp"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path scratch_dir(const std::string& name) {
  const fs::path directory = fs::path(BLIP_TEST_BINARY_DIR) / "generation_options_test_scratch" / name;
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

void write_json(const fs::path& path, const json& value) {
  std::ofstream stream(path, std::ios::binary);
  REQUIRE(static_cast<bool>(stream));
  stream << value.dump(2);
}

blip::generation::GenerationOptions options_from(const json& generation_config) {
  return blip::generation::options_from_generation_config(blip::parse_generation_config(generation_config, "test"));
}

// Every key GenerationOptions models, each away from its default.
const json kEveryModelledKey = {
    {"max_new_tokens", 7},        {"max_length", 33},         {"min_length", 4},
    {"min_new_tokens", 2},        {"early_stopping", "never"}, {"do_sample", true},
    {"num_beams", 4},             {"temperature", 0.7},       {"top_k", 11},
    {"top_p", 0.9},               {"repetition_penalty", 1.3}, {"no_repeat_ngram_size", 3},
    {"length_penalty", 0.6},      {"num_return_sequences", 3}};

void check_every_modelled_key(const blip::generation::GenerationOptions& options) {
  CHECK(options.max_new_tokens == 7);
  CHECK(options.max_length == 33);
  CHECK(options.min_length == 4);
  CHECK(options.min_new_tokens == 2);
  CHECK(options.early_stopping == blip::EarlyStopping::Never);
  CHECK(options.do_sample);
  CHECK(options.num_beams == 4);
  CHECK(options.temperature == 0.7);
  CHECK(options.top_k == 11);
  CHECK(options.top_p == 0.9);
  CHECK(options.repetition_penalty == 1.3);
  CHECK(options.no_repeat_ngram_size == 3);
  CHECK(options.length_penalty == 0.6);
  CHECK(options.num_return_sequences == 3);
  CHECK(options.seed == 0);  // no HF key
}

}  // namespace

TEST_CASE("one EarlyStopping enum for the generation config and the generation options") {
  static_assert(std::is_same_v<blip::generation::GenerationOptions::EarlyStopping, blip::EarlyStopping>);
  static_assert(std::is_same_v<blip::generation::EarlyStopping, blip::EarlyStopping>);
  CHECK(options_from({{"early_stopping", true}, {"num_beams", 2}}).early_stopping == blip::EarlyStopping::True);
  CHECK(options_from({{"early_stopping", false}, {"num_beams", 2}}).early_stopping == blip::EarlyStopping::False);
  CHECK(options_from({{"early_stopping", "never"}, {"num_beams", 2}}).early_stopping == blip::EarlyStopping::Never);
  CHECK(json(blip::EarlyStopping::True) == json(true));
  CHECK(json(blip::EarlyStopping::Never) == json("never"));
}

TEST_CASE("GenerationConfig() defaults give GenerationOptions' defaults") {
  const blip::generation::GenerationOptions options = options_from(json::object());
  const blip::generation::GenerationOptions defaults;
  CHECK(options.max_new_tokens == defaults.max_new_tokens);
  CHECK(options.max_length == defaults.max_length);
  CHECK(options.min_new_tokens == defaults.min_new_tokens);
  CHECK(options.min_length == defaults.min_length);
  CHECK(options.do_sample == defaults.do_sample);
  CHECK(options.num_beams == defaults.num_beams);
  CHECK(options.temperature == defaults.temperature);
  CHECK(options.top_k == defaults.top_k);
  CHECK(options.top_p == defaults.top_p);
  CHECK(options.repetition_penalty == defaults.repetition_penalty);
  CHECK(options.no_repeat_ngram_size == defaults.no_repeat_ngram_size);
  CHECK(options.length_penalty == defaults.length_penalty);
  CHECK(options.early_stopping == defaults.early_stopping);
  CHECK(options.num_return_sequences == defaults.num_return_sequences);
  CHECK(options.seed == defaults.seed);
}

TEST_CASE("every field GenerationOptions models arrives from generation_config.json") {
  check_every_modelled_key(options_from(kEveryModelledKey));
}

TEST_CASE("null warpers and min_new_tokens 0 mean what they mean in HF") {
  const blip::generation::GenerationOptions nulls =
      options_from({{"do_sample", true}, {"temperature", nullptr}, {"top_k", nullptr}, {"top_p", nullptr}});
  CHECK(nulls.temperature == 1.0);
  CHECK(nulls.top_k == 0);
  CHECK(nulls.top_p == 1.0);

  // HF: min_new_tokens 0 sets min_length to the prompt length, so EOS is never suppressed, whatever min_length said.
  const blip::generation::GenerationOptions zero = options_from({{"min_length", 9}, {"min_new_tokens", 0}});
  CHECK(blip::generation::resolve_lengths(zero, 5).min_length <= 5);
  const blip::generation::GenerationOptions two = options_from({{"min_length", 9}, {"min_new_tokens", 2}});
  CHECK(blip::generation::resolve_lengths(two, 5).min_length == 7);
  const blip::generation::GenerationOptions max_new = options_from({{"max_length", 9}, {"max_new_tokens", 3}});
  CHECK(blip::generation::resolve_lengths(max_new, 5).max_length == 8);
}

TEST_CASE("generation keys in text_config reach the task's default GenerationOptions") {
  // HF BLIP's generate() runs text_decoder.generate(), whose GenerationConfig comes from text_config.
  json text_config = kEveryModelledKey;
  text_config["hidden_size"] = 64;
  text_config["num_attention_heads"] = 4;
  const fs::path directory = scratch_dir("text_config_keys");
  write_json(directory / "config.json", {{"model_type", "blip"},
                                         {"architectures", {"BlipForConditionalGeneration"}},
                                         {"text_config", text_config}});
  const blip::ModelConfig model = blip::load_model_config(directory.string());
  blip::BlipModelFolder folder;
  folder.generation_config = blip::language_model_generation_config(model);
  check_every_modelled_key(folder.default_generation_options());
}

TEST_CASE("generation_config.json keys reach GenerationOptions through load_generation_config") {
  const fs::path directory = scratch_dir("generation_config_file");
  write_json(directory / "config.json", {{"model_type", "blip"}});
  write_json(directory / "generation_config.json", kEveryModelledKey);
  const blip::GenerationConfigFile generation = blip::load_generation_config(directory.string());
  REQUIRE(generation.origin == blip::GenerationConfigOrigin::File);
  check_every_modelled_key(blip::generation::options_from_generation_config(generation));
}

TEST_CASE("the three keys a hand copy once dropped: early_stopping, min_new_tokens, num_return_sequences") {
  const fs::path directory = scratch_dir("dropped_keys");
  write_json(directory / "config.json",
             {{"model_type", "blip"},
              {"text_config",
               {{"early_stopping", true}, {"min_new_tokens", 5}, {"num_beams", 3}, {"num_return_sequences", 2}}}});
  blip::BlipModelFolder folder;
  folder.generation_config = blip::language_model_generation_config(blip::load_model_config(directory.string()));
  const blip::generation::GenerationOptions options = folder.default_generation_options();
  CHECK(options.early_stopping == blip::EarlyStopping::True);
  CHECK(options.min_new_tokens == 5);
  CHECK(options.num_return_sequences == 2);
  CHECK(options.num_beams == 3);
}
