// Logits processors and warpers against Hugging Face's, on fixed logits.
//
// tests/oracle/make_generation_references.py built HF's processor list with
// `_get_logits_processor` from a GenerationConfig (so the ORDER and each
// warper's min_tokens_to_keep are HF's too), applied it to fixed rows of
// logits with fixed input_ids, and recorded the processed scores and the
// softmax probabilities sampling draws from. The options go through
// parse_generation_config and options_from_generation_config, as a
// generation_config.json would. Processed scores must match exactly (the
// float32 arithmetic is the same) except after renormalize_logits (a
// log_softmax, within the case's tolerance); probabilities and log_softmax
// within 1e-6 (torch's exp is SLEEF's, ours libm's).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blip/generation/generate.hpp"
#include "test_support.hpp"

namespace generation_logits_processors_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::generation;
using nlohmann::json;

namespace {

std::string generation_data(const std::string& name) { return blip::test::test_data("generation/" + name); }
using blip::test::load_json;

// JSON null stands for -inf, the strings "inf" and "nan" for +inf and NaN.
std::vector<float> decode_row(const json& row) {
  std::vector<float> values;
  for (const json& value : row) {
    if (value.is_null()) {
      values.push_back(-std::numeric_limits<float>::infinity());
    } else if (value.is_string()) {
      values.push_back(value.get<std::string>() == "inf" ? std::numeric_limits<float>::infinity()
                                                         : std::numeric_limits<float>::quiet_NaN());
    } else {
      values.push_back(static_cast<float>(value.get<double>()));
    }
  }
  return values;
}

bool same_float(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool close_float(float actual, float expected, double tolerance) {
  if (!std::isfinite(expected) || !std::isfinite(actual)) return same_float(actual, expected);
  return std::abs(actual - expected) <= tolerance * std::max(1.0f, std::abs(expected));
}

// A warper applied to a tie-heavy row: as many survivors as torch's and, with libstdc++ (whose std::sort torch
// uses, so ties come out in the same order), the same ones.
void check_same_survivors(const std::vector<float>& scores, const std::vector<float>& expected) {
  std::int64_t kept = 0, expected_kept = 0;
  for (std::size_t v = 0; v < scores.size(); ++v) {
    kept += std::isfinite(scores[v]);
    expected_kept += std::isfinite(expected[v]);
  }
  // How many survive does not depend on the sort's tie order.
  CHECK(kept == expected_kept);
#if defined(__GLIBCXX__)
  for (std::size_t v = 0; v < scores.size(); ++v) {
    CAPTURE(v);
    CHECK(same_float(scores[v], expected[v]));
  }
#endif
}

std::string message_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("LogitsProcessors reproduce HF's processor list exactly on fixed logits") {
  const std::string path = generation_data("logits_processor_cases.json");
  if (!test::have_or_skip(path, "logits processor reference file (tests/oracle/make_generation_references.py)")) return;
  const json data = load_json(path);
  const auto eos = data["eos"].get<std::vector<std::int64_t>>();
  std::vector<std::vector<float>> logits;
  for (const json& row : data["logits"]) logits.push_back(decode_row(row));
  std::vector<std::vector<std::int64_t>> input_ids;
  for (const json& row : data["input_ids"]) input_ids.push_back(row.get<std::vector<std::int64_t>>());
  const std::int64_t vocab = static_cast<std::int64_t>(logits.front().size());
  REQUIRE(data["cases"].size() >= 60);

  double worst_probability_error = 0.0;
  for (const json& test_case : data["cases"]) {
    const std::string name = test_case["name"].get<std::string>();
    CAPTURE(name);
    const GenerationOptions options =
        options_from_generation_config(parse_generation_config(test_case["options"], name));
    const SpecialTokens special{eos, 0};
    const std::int64_t prompt_length =
        test_case.value("prompt_length", data["prompt_length"].get<std::int64_t>());
    const std::int64_t history_length =
        test_case.value("input_ids_length", static_cast<std::int64_t>(input_ids.front().size()));
    const double tolerance = test_case.value("tolerance", 0.0);
    // Group beam search: the rows are one group of entries x group_size beams.
    std::vector<std::int64_t> current_tokens;
    std::int64_t group = 0;
    if (test_case.contains("current_tokens")) {
      current_tokens = test_case["current_tokens"].get<std::vector<std::int64_t>>();
      group = test_case["beam_group_idx"].get<std::int64_t>();
    }
    const std::int64_t group_size = options.num_beams / options.num_beam_groups;
    LogitsProcessors processors(options, special, vocab, resolve_lengths(options, prompt_length));
    for (std::size_t row = 0; row < logits.size(); ++row) {
      CAPTURE(row);
      std::vector<float> scores = logits[row];
      const std::int64_t entry = static_cast<std::int64_t>(row) / group_size;
      processors.apply(scores.data(), input_ids[row].data(), history_length,
                       current_tokens.empty() ? nullptr : current_tokens.data() + entry * options.num_beams,
                       current_tokens.empty() ? 0 : group * group_size);
      const std::vector<float> expected = decode_row(test_case["processed"][row]);
      for (std::int64_t v = 0; v < vocab; ++v) {
        CAPTURE(v);
        const float actual_score = scores[static_cast<std::size_t>(v)];
        const float expected_score = expected[static_cast<std::size_t>(v)];
        CHECK((tolerance > 0 ? close_float(actual_score, expected_score, tolerance)
                             : same_float(actual_score, expected_score)));
      }
      std::vector<float> probabilities(scores.size());
      softmax(scores.data(), probabilities.data(), vocab);
      const auto expected_probabilities = test_case["probabilities"][row].get<std::vector<double>>();
      for (std::int64_t v = 0; v < vocab; ++v) {
        const double error = std::abs(probabilities[static_cast<std::size_t>(v)] -
                                      expected_probabilities[static_cast<std::size_t>(v)]);
        worst_probability_error = std::max(worst_probability_error, error);
        CHECK(error < 1e-6);
      }
    }
  }
  MESSAGE("processors: ", data["cases"].size(), " cases, worst probability error ", worst_probability_error);
}

TEST_CASE("log_softmax matches torch.log_softmax") {
  const std::string path = generation_data("logits_processor_cases.json");
  if (!test::have_or_skip(path, "logits processor reference file")) return;
  const json data = load_json(path);
  for (std::size_t row = 0; row < data["logits"].size(); ++row) {
    const std::vector<float> logits = decode_row(data["logits"][row]);
    const std::vector<float> expected = decode_row(data["log_softmax"][row]);
    std::vector<float> actual(logits.size());
    log_softmax(logits.data(), actual.data(), static_cast<std::int64_t>(logits.size()));
    for (std::size_t v = 0; v < logits.size(); ++v) {
      if (std::isinf(expected[v])) {
        CHECK(actual[v] == expected[v]);
      } else {
        CHECK(std::abs(actual[v] - expected[v]) <= 1e-6f * std::max(1.0f, std::abs(expected[v])));
      }
    }
  }
}

TEST_CASE("top_p breaks ties among equal scores as torch.sort does") {
  const std::string path = generation_data("logits_processor_cases.json");
  if (!test::have_or_skip(path, "logits processor reference file")) return;
  const json data = load_json(path);
  for (const json& test_case : data["top_p_ties"]) {
    const std::vector<float> logits = decode_row(test_case["logits"][0]);
    const std::vector<float> expected = decode_row(test_case["processed"][0]);
    const std::int64_t vocab = static_cast<std::int64_t>(logits.size());
    CAPTURE(vocab);
    WarperWorkspace workspace;
    workspace.reserve(vocab);
    std::vector<float> scores = logits;
    apply_top_p(scores.data(), vocab, test_case["top_p"].get<double>(), 1, workspace);
    check_same_survivors(scores, expected);
  }
}

TEST_CASE("apply_top_k agrees with its sorted naive reference, ties included, at odd sizes") {
  std::mt19937 engine(7);
  std::uniform_int_distribution<int> small_integers(-3, 3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (std::int64_t vocab : {1, 2, 3, 7, 31, 64, 257, 1001}) {
    for (std::int64_t top_k : {1, 2, 5, 50, 256, 300, 2000}) {
      for (std::int64_t min_keep : {1, 3}) {
        for (int ties = 0; ties < 2; ++ties) {
          CAPTURE(vocab);
          CAPTURE(top_k);
          std::vector<float> scores(static_cast<std::size_t>(vocab));
          for (float& score : scores) score = ties ? static_cast<float>(small_integers(engine)) : normal(engine);
          if (vocab > 4) scores[3] = -std::numeric_limits<float>::infinity();
          std::vector<float> fast = scores, naive = scores, workspace(scores.size());
          apply_top_k(fast.data(), vocab, top_k, min_keep, workspace.data());
          apply_top_k_naive(naive.data(), vocab, top_k, min_keep);
          CHECK(fast == naive);
          std::int64_t kept = 0;
          for (float score : fast) kept += std::isfinite(score);
          const std::int64_t finite = std::count_if(scores.begin(), scores.end(), [](float s) { return std::isfinite(s); });
          // At least k survive (more when tied with the k-th), never an -inf.
          CHECK(kept >= std::min(std::max(top_k, min_keep), finite));
        }
      }
    }
  }
}

TEST_CASE("repetition penalty applies once per distinct id, no-repeat-ngram bans what completes a seen n-gram") {
  std::vector<float> scores = {2.0f, -2.0f, 1.0f, -1.0f, 0.0f};
  std::vector<std::int64_t> history = {0, 1, 0, 0, 1, 4};
  std::vector<float> gathered(history.size());
  apply_repetition_penalty(scores.data(), 5, history.data(), 6, 2.0, gathered.data());
  CHECK(scores == std::vector<float>{1.0f, -4.0f, 1.0f, -1.0f, 0.0f});

  // History 5 6 7 5 6: the 3-gram (5, 6, 7) was seen, so after "5 6" token 7 is banned.
  std::vector<float> ngram_scores(10, 0.0f);
  std::vector<std::int64_t> ngram_history = {5, 6, 7, 5, 6};
  apply_no_repeat_ngram(ngram_scores.data(), 10, ngram_history.data(), 5, 3);
  for (std::int64_t v = 0; v < 10; ++v) CHECK(std::isinf(ngram_scores[static_cast<std::size_t>(v)]) == (v == 7));
  // Too short a history for the n-gram size bans nothing.
  std::vector<float> untouched(10, 0.0f);
  apply_no_repeat_ngram(untouched.data(), 10, ngram_history.data(), 1, 3);
  CHECK(std::count(untouched.begin(), untouched.end(), 0.0f) == 10);
}

TEST_CASE("options are validated with errors that name the option") {
  const auto message_of = [](const GenerationOptions& options, std::int64_t prompt_length = 1) {
    return generation_logits_processors_test::message_of([&] {
      validate_options(options);
      resolve_lengths(options, prompt_length);
    });
  };
  GenerationOptions options;
  CHECK(message_of(options) == "");

  options = {};
  options.num_beams = 0;
  CHECK(message_of(options).find("num_beams") != std::string::npos);

  options = {};
  options.num_beams = 3;
  options.num_return_sequences = 4;
  CHECK(message_of(options).find("num_return_sequences") != std::string::npos);

  options = {};
  options.num_return_sequences = 2;  // greedy
  CHECK(message_of(options).find("num_return_sequences") != std::string::npos);
  options.do_sample = true;  // sampling returns several
  CHECK(message_of(options) == "");

  options = {};
  options.do_sample = true;
  options.top_p = 0.0;
  CHECK(message_of(options).find("top_p") != std::string::npos);
  options.top_p = 1.5;
  CHECK(message_of(options).find("top_p") != std::string::npos);
  options.top_p = 1.0;
  options.temperature = 0.0;
  CHECK(message_of(options).find("temperature") != std::string::npos);
  options.temperature = 1.0;
  options.top_k = -1;
  CHECK(message_of(options).find("top_k") != std::string::npos);

  options = {};
  options.repetition_penalty = 0.0;
  CHECK(message_of(options).find("repetition_penalty") != std::string::npos);

  options = {};
  options.max_new_tokens = 0;
  CHECK(message_of(options).find("max_new_tokens") != std::string::npos);

  options = {};
  options.max_length = 5;
  CHECK(message_of(options, 5).find("max_length") != std::string::npos);  // nothing left to generate
  options.max_new_tokens = 3;                                             // max_new_tokens wins
  CHECK(message_of(options, 5) == "");

  // Group beam search: what HF's validate() and HammingDiversityLogitsProcessor refuse, and what HF would
  // silently skip (groups without beams, a negative penalty, a penalty without groups).
  options = {};
  options.num_beams = 4;
  options.num_beam_groups = 2;
  options.diversity_penalty = 0.5;
  CHECK(message_of(options) == "");
  options.num_beam_groups = 3;
  CHECK(message_of(options).find("divisible by num_beam_groups") != std::string::npos);
  options.num_beam_groups = 2;
  options.diversity_penalty = 0.0;
  CHECK(message_of(options).find("diversity_penalty is 0") != std::string::npos);
  options.diversity_penalty = -1.0;
  CHECK(message_of(options).find("diversity_penalty must be a finite value >= 0") != std::string::npos);
  options.diversity_penalty = 0.5;
  options.do_sample = true;
  CHECK(message_of(options).find("does not sample") != std::string::npos);
  options = {};
  options.num_beam_groups = 2;
  options.diversity_penalty = 0.5;
  CHECK(message_of(options).find("num_beam_groups is 2 but group beam search needs num_beams > 1") !=
        std::string::npos);
  options = {};
  options.num_beams = 3;
  options.diversity_penalty = 0.5;
  CHECK(message_of(options).find("diversity_penalty is 0.5 but it only acts in group beam search") !=
        std::string::npos);

  // Warpers, when sampling: HF refuses typical_p <= 0 and min_p outside [0, 1]; it skips an epsilon or eta
  // cut-off outside (0, 1), which is refused here.
  options = {};
  options.do_sample = true;
  options.typical_p = 0.0;
  CHECK(message_of(options).find("typical_p must be in (0, 1]") != std::string::npos);
  options.typical_p = 1.0;
  options.min_p = 1.5;
  CHECK(message_of(options).find("min_p must be in [0, 1]") != std::string::npos);
  options.min_p = 0.0;
  options.epsilon_cutoff = 1.0;
  CHECK(message_of(options).find("epsilon_cutoff must be in [0, 1)") != std::string::npos);
  options.epsilon_cutoff = 0.0;
  options.eta_cutoff = -0.1;
  CHECK(message_of(options).find("eta_cutoff must be in [0, 1)") != std::string::npos);
  options.eta_cutoff = 0.0;
  options.bad_words_ids = {{3}, {}};
  CHECK(message_of(options).find("bad_words_ids holds an empty sequence") != std::string::npos);
}

TEST_CASE("token ids outside the vocabulary are refused, naming the option and the bound") {
  const SpecialTokens special{{2}, 0};
  const std::int64_t vocab = 24;
  const auto message_for = [&](const GenerationOptions& options) {
    return message_of([&] { LogitsProcessors(options, special, vocab, resolve_lengths(options, 2)); });
  };
  GenerationOptions options;
  options.forced_bos_token_id = 24;
  CHECK(message_for(options) ==
        "GenerationOptions::forced_bos_token_id holds token id 24, outside the decoder's vocabulary [0, 24)");
  options.forced_bos_token_id = -1;  // HF would index from the end and force the last token
  CHECK(message_for(options).find("forced_bos_token_id holds token id -1, outside") != std::string::npos);
  options = {};
  options.forced_eos_token_id = {2, 99};
  CHECK(message_for(options).find("forced_eos_token_id holds token id 99, outside the decoder's vocabulary [0, 24)") !=
        std::string::npos);
  options = {};
  options.bad_words_ids = {{3, 4}, {5, 30000}};
  CHECK(message_for(options).find("bad_words_ids holds token id 30000, outside the decoder's vocabulary [0, 24)") !=
        std::string::npos);
  options = {};
  options.suppress_tokens = {1, 24};  // HF would skip 24 silently
  CHECK(message_for(options).find("suppress_tokens holds token id 24") != std::string::npos);
  options = {};
  options.begin_suppress_tokens = {-3};
  CHECK(message_for(options).find("begin_suppress_tokens holds token id -3") != std::string::npos);

  // generate() checks before the decoder runs.
  class NeverCalled final : public Decoder {
   public:
    std::int64_t vocab_size() const override { return 24; }
    const float* start(std::int64_t, std::int64_t) override { FAIL("decoder started"); return nullptr; }
    const float* step(const std::int64_t*) override { return nullptr; }
    void reorder(const std::int64_t*) override {}
  } decoder;
  options = {};
  options.num_beams = 2;
  options.forced_bos_token_id = 50;
  CHECK(message_of([&] { generate(decoder, {{1, 3}}, options, special); }).find("forced_bos_token_id holds token id 50") !=
        std::string::npos);

  // Only EOS ids among the bad words: HF drops them and then refuses the empty list.
  options = {};
  options.bad_words_ids = {{2}, {2}};
  CHECK(message_for(options).find("bad_words_ids lists only EOS ids") != std::string::npos);
  // exponential_decay_length_penalty needs an EOS id to act on.
  options = {};
  options.exponential_decay_length_penalty = std::make_pair(std::int64_t{2}, 1.5);
  CHECK(message_of([&] { LogitsProcessors(options, SpecialTokens{}, vocab, resolve_lengths(options, 2)); })
            .find("exponential_decay_length_penalty needs an EOS id") != std::string::npos);
}

TEST_CASE("min_p and typical_p break ties among equal scores as torch.sort does; NaN and inf as InfNanRemove") {
  const std::string path = generation_data("logits_processor_cases.json");
  if (!test::have_or_skip(path, "logits processor reference file")) return;
  const json data = load_json(path);
  REQUIRE(data["sorted_warper_ties"].size() >= 10);
  for (const json& test_case : data["sorted_warper_ties"]) {
    const std::vector<float> logits = decode_row(test_case["logits"][0]);
    const std::vector<float> expected = decode_row(test_case["processed"][0]);
    const std::int64_t vocab = static_cast<std::int64_t>(logits.size());
    const std::string warper = test_case["warper"].get<std::string>();
    const std::int64_t keep = test_case["min_tokens_to_keep"].get<std::int64_t>();
    CAPTURE(warper);
    CAPTURE(vocab);
    WarperWorkspace workspace;
    workspace.reserve(vocab);
    std::vector<float> scores = logits;
    if (warper == "min_p") {
      apply_min_p(scores.data(), vocab, test_case["value"].get<double>(), keep, workspace);
    } else {
      apply_typical(scores.data(), vocab, test_case["value"].get<double>(), keep, workspace);
    }
    check_same_survivors(scores, expected);
  }
  std::vector<float> invalid = decode_row(data["invalid_values"]["logits"][0]);
  const std::vector<float> expected = decode_row(data["invalid_values"]["processed"][0]);
  remove_invalid_values(invalid.data(), static_cast<std::int64_t>(invalid.size()));
  for (std::size_t v = 0; v < invalid.size(); ++v) {
    CAPTURE(v);
    CHECK(same_float(invalid[v], expected[v]));
  }
}

TEST_CASE("apply_min_p's fast path (no sort when enough tokens survive) agrees with a full sort") {
  std::mt19937 engine(13);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> small_integers(0, 4);
  for (std::int64_t vocab : {1, 2, 17, 40, 257}) {
    for (double min_p : {0.05, 0.3, 0.8, 1.0}) {
      for (std::int64_t keep : {1, 2, 5}) {
        for (int kind = 0; kind < 2; ++kind) {
          CAPTURE(vocab);
          CAPTURE(min_p);
          CAPTURE(keep);
          std::vector<float> scores(static_cast<std::size_t>(vocab));
          for (float& score : scores) score = kind ? 0.5f * static_cast<float>(small_integers(engine)) : normal(engine);
          // Reference: HF's code, literally (mask, descending sort, first `keep` unmasked).
          std::vector<float> probabilities(scores.size());
          softmax(scores.data(), probabilities.data(), vocab);
          const float threshold = static_cast<float>(min_p) * *std::max_element(probabilities.begin(), probabilities.end());
          std::vector<std::pair<float, std::int64_t>> sorted;
          for (std::int64_t i = 0; i < vocab; ++i) sorted.push_back({scores[static_cast<std::size_t>(i)], i});
          std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
          std::vector<char> remove(scores.size());
          for (std::size_t i = 0; i < scores.size(); ++i) remove[i] = probabilities[i] < threshold;
          for (std::int64_t j = 0; j < std::min(keep, vocab); ++j) remove[static_cast<std::size_t>(sorted[static_cast<std::size_t>(j)].second)] = 0;
          std::vector<float> expected = scores;
          for (std::size_t i = 0; i < scores.size(); ++i) {
            if (remove[i]) expected[i] = -std::numeric_limits<float>::infinity();
          }
          WarperWorkspace workspace;
          workspace.reserve(vocab);
          apply_min_p(scores.data(), vocab, min_p, keep, workspace);
          CHECK(scores == expected);
        }
      }
    }
  }
}

TEST_CASE("resolve_lengths and adjust_lengths_for_inputs_embeds follow _prepare_generated_length") {
  GenerationOptions options;
  ResolvedLengths lengths = resolve_lengths(options, 3);
  CHECK(lengths.max_length == 20);
  CHECK(lengths.max_new_tokens() == 17);
  CHECK(lengths.min_length == 0);

  options.max_new_tokens = 5;
  options.min_length = 9;
  options.min_new_tokens = 2;  // overrides min_length with prompt + 2
  lengths = resolve_lengths(options, 3);
  CHECK(lengths.max_length == 8);
  CHECK(lengths.min_length == 5);

  // inputs_embeds of 6 positions and nothing in input_ids (BLIP-2 + OPT).
  GenerationOptions embeds;
  embeds.max_length = 30;
  embeds.min_length = 4;
  embeds = adjust_lengths_for_inputs_embeds(embeds, 6);
  CHECK(embeds.max_length == 24);
  CHECK(embeds.min_length == 0);
  embeds.max_new_tokens = 7;
  CHECK(adjust_lengths_for_inputs_embeds(embeds, 6).max_length == 24);  // untouched when max_new_tokens is set
}

TEST_CASE("beam candidate selection agrees with its sorting reference, ties and -inf included, at odd sizes") {
  std::mt19937 engine(11);
  std::uniform_int_distribution<int> small_integers(-4, 4);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (std::int64_t size : {2, 5, 13, 64, 333, 4099}) {
    for (std::int64_t count : {1, 2, 4, 6, 10}) {
      if (count > size) continue;
      for (int kind = 0; kind < 4; ++kind) {
        CAPTURE(size);
        CAPTURE(count);
        CAPTURE(kind);
        std::vector<float> scores(static_cast<std::size_t>(size));
        for (float& score : scores) score = kind == 1 ? static_cast<float>(small_integers(engine)) : normal(engine);
        if (kind == 2) {  // mostly -inf, as after bans: fewer finite scores than candidates
          for (std::size_t i = 0; i < scores.size(); ++i) {
            if (i % 7 != 0) scores[i] = -std::numeric_limits<float>::infinity();
          }
        }
        if (kind == 3) {  // NaN ranks first, as in torch.topk
          for (std::size_t i = 1; i < scores.size(); i += 5) scores[i] = std::numeric_limits<float>::quiet_NaN();
        }
        std::vector<std::int64_t> fast(static_cast<std::size_t>(count)), naive(static_cast<std::size_t>(count));
        blip::generation::detail::top_candidates(scores.data(), size, count, fast.data());
        blip::generation::detail::top_candidates_naive(scores.data(), size, count, naive.data());
        CHECK(fast == naive);
      }
    }
  }
}

TEST_CASE("argmax takes the first NaN as torch.argmax does, else the first maximum") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> plain = {1.0f, 3.0f, -inf, 3.0f};
  CHECK(blip::generation::detail::argmax(plain.data(), 4) == 1);
  const std::vector<float> with_nan = {-inf, 2.0f, nan, 5.0f, nan};
  CHECK(blip::generation::detail::argmax(with_nan.data(), 5) == 2);
  const std::vector<float> nan_first = {nan, 9.0f};
  CHECK(blip::generation::detail::argmax(nan_first.data(), 2) == 0);
}

TEST_CASE("log_softmax / softmax agree with their naive references at odd sizes") {
  std::mt19937 engine(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (std::int64_t size : {1, 3, 7, 8, 9, 63, 511, 512, 513, 1025, 30524}) {
    CAPTURE(size);
    std::vector<float> in(static_cast<std::size_t>(size));
    for (float& value : in) value = normal(engine);
    if (size > 5) in[4] = -std::numeric_limits<float>::infinity();
    if (size > 9) in[8] = -1e9f;
    std::vector<float> fast(in.size()), naive(in.size());
    log_softmax(in.data(), fast.data(), size);
    log_softmax_naive(in.data(), naive.data(), size);
    double scale = 0.0, difference = 0.0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (std::isinf(naive[i])) {
        CHECK(fast[i] == naive[i]);
        continue;
      }
      scale = std::max(scale, static_cast<double>(std::abs(naive[i])));
      difference = std::max(difference, static_cast<double>(std::abs(fast[i] - naive[i])));
    }
    // One float ulp of the largest magnitude, plus the log of a sum off by ~1e-7.
    CHECK(difference <= 4e-7 * std::max(scale, 1.0));
    softmax(in.data(), fast.data(), size);
    softmax_naive(in.data(), naive.data(), size);
    double sum = 0.0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      CHECK(std::abs(fast[i] - naive[i]) <= 4e-7f * naive[i] + 1e-12f);
      sum += fast[i];
    }
    CHECK(std::abs(sum - 1.0) < 1e-5);
    // In place gives the same.
    std::vector<float> in_place = in;
    log_softmax(in_place.data(), in_place.data(), size);
    log_softmax(in.data(), fast.data(), size);
    CHECK(in_place == fast);
  }
}

TEST_CASE("apply_top_p's fast path (negligible tokens unsorted) agrees with the full sort") {
  std::mt19937 engine(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> small_integers(0, 6);
  for (std::int64_t vocab : {1, 2, 17, 40, 257, 2049}) {
    for (double top_p : {0.05, 0.3, 0.7, 0.95}) {
      for (std::int64_t min_keep : {1, 2, 5}) {
        for (int kind = 0; kind < 3; ++kind) {
          CAPTURE(vocab);
          CAPTURE(top_p);
          CAPTURE(kind);
          std::vector<float> scores(static_cast<std::size_t>(vocab));
          for (float& score : scores) score = kind == 1 ? 0.5f * static_cast<float>(small_integers(engine)) : normal(engine);
          if (kind == 2) {  // after top-k: a handful finite, the rest -inf
            std::vector<float> workspace(scores.size());
            apply_top_k(scores.data(), vocab, 9, 1, workspace.data());
          }
          std::vector<float> fast = scores, naive = scores;
          WarperWorkspace workspace;
          workspace.reserve(vocab);
          apply_top_p(fast.data(), vocab, top_p, min_keep, workspace);
          apply_top_p_naive(naive.data(), vocab, top_p, min_keep, workspace);
          CHECK(fast == naive);
        }
      }
    }
  }
}

TEST_CASE("softmax gives exactly 0 to -inf and to scores that underflow, with or without AVX-512") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> in = {0.0f, -inf, -1e9f, -200.0f, -100.0f, -90.0f, -87.0f, 1.0f};
  std::vector<float> out(in.size());
  softmax(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 0.0f);
  CHECK(out[3] == 0.0f);
  // exp(-101) and exp(-91) (relative to the maximum 1): subnormal floats, correct to their coarse precision.
  const double normaliser = 1.0 + std::exp(-1.0) + std::exp(-88.0);
  const double expected_101 = std::exp(-101.0) / normaliser, expected_91 = std::exp(-91.0) / normaliser;
  CHECK(out[4] > 0.0f);
  CHECK(std::abs(out[4] - expected_101) <= 0.1 * expected_101);
  CHECK(std::abs(out[5] - expected_91) <= 1e-4 * expected_91);
  std::vector<float> log_out(in.size());
  log_softmax(in.data(), log_out.data(), static_cast<std::int64_t>(in.size()));
  CHECK(log_out[1] == -inf);
}

}  // namespace generation_logits_processors_test
