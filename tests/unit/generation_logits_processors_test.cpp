// Logits processors and warpers against Hugging Face's, on fixed logits.
//
// tests/oracle/make_generation_references.py built HF's processor list with
// `_get_logits_processor` from a GenerationConfig (so the ORDER and each
// warper's min_tokens_to_keep are HF's too), applied it to fixed rows of
// logits with fixed input_ids, and recorded the processed scores and the
// softmax probabilities sampling draws from. Processed scores must match
// exactly (the float32 arithmetic is the same); probabilities and
// log_softmax within 1e-6 (torch's exp is SLEEF's, ours libm's).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blip/generation/generate.hpp"
#include "test_support.hpp"

using namespace blip;
using namespace blip::generation;
using nlohmann::json;

namespace {

std::string generation_data(const std::string& name) { return blip::test::test_data("generation/" + name); }
using blip::test::load_json;

// JSON null stands for -inf.
std::vector<float> decode_row(const json& row) {
  std::vector<float> values;
  for (const json& value : row) {
    values.push_back(value.is_null() ? -std::numeric_limits<float>::infinity()
                                     : static_cast<float>(value.get<double>()));
  }
  return values;
}

GenerationOptions options_from_json(const json& object) {
  GenerationOptions options;
  for (const auto& [key, value] : object.items()) {
    if (key == "do_sample") options.do_sample = value.get<bool>();
    else if (key == "num_beams") options.num_beams = value.get<std::int64_t>();
    else if (key == "temperature") options.temperature = value.get<double>();
    else if (key == "top_k") options.top_k = value.get<std::int64_t>();
    else if (key == "top_p") options.top_p = value.get<double>();
    else if (key == "repetition_penalty") options.repetition_penalty = value.get<double>();
    else if (key == "no_repeat_ngram_size") options.no_repeat_ngram_size = value.get<std::int64_t>();
    else if (key == "min_length") options.min_length = value.get<std::int64_t>();
    else if (key == "min_new_tokens") options.min_new_tokens = value.get<std::int64_t>();
    else FAIL("unknown option in reference file: ", key);
  }
  return options;
}

bool same_float(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace

TEST_CASE("LogitsProcessors reproduce HF's processor list exactly on fixed logits") {
  const std::string path = generation_data("logits_processor_cases.json");
  if (!test::have_or_skip(path, "logits processor reference file (tests/oracle/make_generation_references.py)")) return;
  const json data = load_json(path);
  const auto eos = data["eos"].get<std::vector<std::int64_t>>();
  const std::int64_t prompt_length = data["prompt_length"].get<std::int64_t>();
  std::vector<std::vector<float>> logits;
  for (const json& row : data["logits"]) logits.push_back(decode_row(row));
  std::vector<std::vector<std::int64_t>> input_ids;
  for (const json& row : data["input_ids"]) input_ids.push_back(row.get<std::vector<std::int64_t>>());
  const std::int64_t vocab = static_cast<std::int64_t>(logits.front().size());
  REQUIRE(data["cases"].size() >= 20);

  double worst_probability_error = 0.0;
  for (const json& test_case : data["cases"]) {
    const std::string name = test_case["name"].get<std::string>();
    CAPTURE(name);
    const GenerationOptions options = options_from_json(test_case["options"]);
    const SpecialTokens special{eos, 0};
    const ResolvedLengths lengths = resolve_lengths(options, prompt_length);
    LogitsProcessors processors(options, special, vocab, lengths.min_length, 64);
    for (std::size_t row = 0; row < logits.size(); ++row) {
      CAPTURE(row);
      std::vector<float> scores = logits[row];
      processors.apply(scores.data(), input_ids[row].data(), static_cast<std::int64_t>(input_ids[row].size()));
      const std::vector<float> expected = decode_row(test_case["processed"][row]);
      for (std::int64_t v = 0; v < vocab; ++v) {
        CAPTURE(v);
        CHECK(same_float(scores[static_cast<std::size_t>(v)], expected[static_cast<std::size_t>(v)]));
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
  MESSAGE("processors: worst probability error ", worst_probability_error);
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
    TopPWorkspace workspace;
    workspace.reserve(vocab);
    std::vector<float> scores = logits;
    apply_top_p(scores.data(), vocab, test_case["top_p"].get<double>(), 1, workspace);
    std::int64_t kept = 0, expected_kept = 0;
    for (std::int64_t v = 0; v < vocab; ++v) {
      kept += std::isfinite(scores[static_cast<std::size_t>(v)]);
      expected_kept += std::isfinite(expected[static_cast<std::size_t>(v)]);
    }
    // How many survive does not depend on the sort's tie order.
    CHECK(kept == expected_kept);
#if defined(__GLIBCXX__)
    // Which of the tied tokens survive is std::sort's order: identical with libstdc++, which torch uses.
    for (std::int64_t v = 0; v < vocab; ++v) {
      CAPTURE(v);
      CHECK(same_float(scores[static_cast<std::size_t>(v)], expected[static_cast<std::size_t>(v)]));
    }
#endif
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
  auto message_of = [](const GenerationOptions& options, std::int64_t prompt_length = 1) -> std::string {
    try {
      validate_options(options);
      resolve_lengths(options, prompt_length);
    } catch (const Error& error) {
      return error.what();
    }
    return "";
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
      for (int kind = 0; kind < 3; ++kind) {
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
        std::vector<std::int64_t> fast(static_cast<std::size_t>(count)), naive(static_cast<std::size_t>(count));
        blip::generation::detail::top_candidates(scores.data(), size, count, fast.data());
        blip::generation::detail::top_candidates_naive(scores.data(), size, count, naive.data());
        CHECK(fast == naive);
      }
    }
  }
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
          TopPWorkspace workspace;
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
