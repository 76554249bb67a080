// generate() with the processors, warpers and group beam search on the real
// decoders, against Hugging Face's generate() on the same fixture models.
//
// tests/oracle/make_generation_model_references.py ran
// `model.generate(pixel_values=..., **options)` on the fixture cases
// blip_caption (BERT decoder, prompt [DEC]), blip2_opt (OPT fed by
// inputs_embeds: an empty prompt, then HF's BOS in front) and blip2_t5
// (decoder start id). The prompt length decides when forced_bos_token_id,
// begin_suppress_tokens, forced_eos_token_id and
// exponential_decay_length_penalty act, so these cases check the sessions'
// part, which the toy model cannot. Ids must be identical; sequences_scores
// within 1e-5 relative.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "blip/generation/session.hpp"
#include "blip/io/config.hpp"
#include "blip/io/safetensors.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "test_support.hpp"

namespace generation_models_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using nlohmann::json;

namespace {

// One reference case: compares ids exactly and (when HF returned them) sequences_scores within 1e-5.
void check_case(const json& test_case, const generation::GenerationOutput& output, double& worst_score_error) {
  const auto expected = test_case["sequences"].get<std::vector<std::vector<std::int64_t>>>();
  REQUIRE(output.sequences.dim(0) == static_cast<std::int64_t>(expected.size()));
  const std::int64_t width = output.sequences.dim(1);
  CHECK(width == static_cast<std::int64_t>(expected.front().size()));
  for (std::size_t row = 0; row < expected.size(); ++row) {
    CAPTURE(row);
    const std::vector<std::int64_t> actual(output.sequences.data() + row * width,
                                           output.sequences.data() + (row + 1) * width);
    CHECK(actual == expected[row]);
  }
  if (!test_case.contains("sequence_scores")) return;
  const auto expected_scores = test_case["sequence_scores"].get<std::vector<double>>();
  REQUIRE(output.sequence_scores.size() == expected_scores.size());
  for (std::size_t row = 0; row < expected_scores.size(); ++row) {
    const double error =
        std::abs(output.sequence_scores[row] - expected_scores[row]) / std::max(1.0, std::abs(expected_scores[row]));
    worst_score_error = std::max(worst_score_error, error);
    CHECK(error < 1e-5);
  }
}

}  // namespace

TEST_CASE("group beam search and every processor on BLIP, BLIP-2 + OPT and BLIP-2 + Flan-T5 match HF generate()") {
  const std::string path = test::test_data("generation/model_cases.json");
  if (!test::have_or_skip(path, "model generation references (tests/oracle/make_generation_model_references.py)")) {
    return;
  }
  const json data = test::load_json(path);
  std::int64_t cases = 0;
  double worst_score_error = 0.0;
  for (const json& fixture : data["fixtures"]) {
    const std::string name = fixture["fixture"].get<std::string>();
    const std::string directory = test::fixture(name);
    if (!test::have_or_skip(directory + "/model.safetensors", "fixture case")) continue;
    CAPTURE(name);
    const WeightStore store = WeightStore::open(directory);
    const ModelConfig config = load_model_config(directory);
    const auto pixels = SafetensorsFile::open(directory + "/inputs.safetensors").to_f32("pixel_values");
    // Runs every case of the fixture on sessions from `new_session` (the model and its image inputs are
    // computed once).
    const auto run_cases = [&](const auto& new_session) {
      for (const json& test_case : fixture["cases"]) {
        const std::string case_name = test_case["name"].get<std::string>();
        CAPTURE(case_name);
        const generation::GenerationOptions options =
            generation::options_from_generation_config(parse_generation_config(test_case["options"], case_name));
        auto session = new_session();
        check_case(test_case, generation::generate_session(session, options), worst_score_error);
        ++cases;
      }
    };
    if (config.family == ModelFamily::Blip2) {
      const auto model = Blip2ForConditionalGeneration::load(store, make_blip2_model_config(config.blip2));
      const Blip2ImageQueries queries = model.image_queries(model.vision_model.forward(pixels));
      run_cases([&] { return model.generation_session(queries, {}, {}); });
    } else {
      const auto model = BlipForConditionalGeneration::load(store, make_blip_model_config(config.blip));
      const ImageEmbeddings images = model.vision_model.forward(pixels);
      run_cases([&] { return model.caption_session(images, {}, {}); });
    }
  }
  MESSAGE("model cases: ", cases, ", worst sequences_scores relative error ", worst_score_error);
}

}  // namespace generation_models_test
