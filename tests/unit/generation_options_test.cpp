// Tests for generation::options_from_generation_config (generation/options.hpp):
// the one translation from a parsed generation config (generation_config.json,
// or the one HF derives from config.json / text_config) into GenerationOptions.
// Every key that changes the ids must arrive (including the three that a hand
// copy once dropped: early_stopping, min_new_tokens, num_return_sequences, and
// the processors that were once parsed but ignored), or be refused with an
// error naming it.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blip/generation/logits_processors.hpp"
#include "blip/generation/options.hpp"
#include "blip/io/config.hpp"
#include "blip/tasks/model_folder.hpp"

namespace generation_options_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

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

// Every key GenerationOptions models, each away from its default. (Group beam search cannot sample, so
// num_beam_groups and diversity_penalty are checked apart.)
const json kEveryModelledKey = {
    {"max_new_tokens", 7},        {"max_length", 33},         {"min_length", 4},
    {"min_new_tokens", 2},        {"early_stopping", "never"}, {"do_sample", true},
    {"num_beams", 4},             {"temperature", 0.7},       {"top_k", 11},
    {"top_p", 0.9},               {"repetition_penalty", 1.3}, {"no_repeat_ngram_size", 3},
    {"length_penalty", 0.6},      {"num_return_sequences", 3}, {"min_p", 0.05},
    {"typical_p", 0.95},          {"epsilon_cutoff", 0.001},  {"eta_cutoff", 0.002},
    {"bad_words_ids", {{5, 6}, {7}}}, {"forced_bos_token_id", 4}, {"forced_eos_token_id", {8, 9}},
    {"remove_invalid_values", true}, {"exponential_decay_length_penalty", {5, 1.5}},
    {"suppress_tokens", {1, 2}},  {"begin_suppress_tokens", {3}}, {"renormalize_logits", true}};

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
  CHECK(options.min_p == 0.05);
  CHECK(options.typical_p == 0.95);
  CHECK(options.epsilon_cutoff == 0.001);
  CHECK(options.eta_cutoff == 0.002);
  CHECK(options.bad_words_ids == std::vector<std::vector<std::int64_t>>{{5, 6}, {7}});
  CHECK(options.forced_bos_token_id == std::optional<std::int64_t>{4});
  CHECK(options.forced_eos_token_id == std::vector<std::int64_t>{8, 9});
  CHECK(options.remove_invalid_values);
  CHECK(options.exponential_decay_length_penalty == std::optional<std::pair<std::int64_t, double>>{{5, 1.5}});
  CHECK(options.suppress_tokens == std::vector<std::int64_t>{1, 2});
  CHECK(options.begin_suppress_tokens == std::vector<std::int64_t>{3});
  CHECK(options.renormalize_logits);
  CHECK(options.seed == 0);  // no HF key
  blip::generation::validate_options(options);  // a consistent set
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
  CHECK(options.num_beam_groups == defaults.num_beam_groups);
  CHECK(options.diversity_penalty == defaults.diversity_penalty);
  CHECK(options.min_p == defaults.min_p);
  CHECK(options.typical_p == defaults.typical_p);
  CHECK(options.epsilon_cutoff == defaults.epsilon_cutoff);
  CHECK(options.eta_cutoff == defaults.eta_cutoff);
  CHECK(options.bad_words_ids == defaults.bad_words_ids);
  CHECK(options.forced_bos_token_id == defaults.forced_bos_token_id);
  CHECK(options.forced_eos_token_id == defaults.forced_eos_token_id);
  CHECK(options.remove_invalid_values == defaults.remove_invalid_values);
  CHECK(options.exponential_decay_length_penalty == defaults.exponential_decay_length_penalty);
  CHECK(options.suppress_tokens == defaults.suppress_tokens);
  CHECK(options.begin_suppress_tokens == defaults.begin_suppress_tokens);
  CHECK(options.renormalize_logits == defaults.renormalize_logits);
  CHECK(options.seed == defaults.seed);
}

TEST_CASE("group beam search keys arrive: num_beam_groups and diversity_penalty") {
  const blip::generation::GenerationOptions options =
      options_from({{"num_beams", 6}, {"num_beam_groups", 3}, {"diversity_penalty", 0.8}, {"num_return_sequences", 4}});
  CHECK(options.num_beam_groups == 3);
  CHECK(options.diversity_penalty == 0.8);
  CHECK(blip::generation::search_kind(options) == blip::generation::SearchKind::GroupBeamSearch);
  blip::generation::validate_options(options);
}

TEST_CASE("keys blipcpp does not implement are refused by name, never ignored") {
  auto message_of = [](const json& generation_config) -> std::string {
    try {
      options_from(generation_config);
    } catch (const blip::Error& error) {
      return error.what();
    }
    return "";
  };
  CHECK(message_of({{"penalty_alpha", 0.6}, {"top_k", 4}}).find("key \"penalty_alpha\" is set") != std::string::npos);
  CHECK(message_of({{"sequence_bias", {{"1", 2.0}}}}).find("key \"sequence_bias\"") != std::string::npos);
  CHECK(message_of({{"encoder_repetition_penalty", 1.1}}).find("key \"encoder_repetition_penalty\" is 1.1") !=
        std::string::npos);
  CHECK(message_of({{"encoder_no_repeat_ngram_size", 2}}).find("key \"encoder_no_repeat_ngram_size\" is 2") !=
        std::string::npos);
  // Neutral values and nulls change nothing and pass.
  CHECK(message_of({{"encoder_repetition_penalty", 1.0}, {"encoder_no_repeat_ngram_size", 0},
                    {"penalty_alpha", nullptr}, {"use_cache", false}, {"output_scores", true}}) == "");
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

}  // namespace generation_options_test
