// The sampler: a portable seeded generator, categorical draws with the right
// frequencies, and the sampling loops (do_sample, beam sampling) driven by
// a decoder with pseudo-random logits.
//
// Sampled ids cannot equal torch.multinomial's (see sampling.hpp); what is
// checked is that they are deterministic per seed, drawn only from tokens
// the warpers kept, and with HF's probabilities.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "blip/generation/generate.hpp"
#include "test_support.hpp"

namespace generation_sampling_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::generation;

namespace {

// Logits that depend on the row's last token and length through a fixed hash: different for every history,
// reproducible, allocation-free. Records every logits block it returns and every token it receives.
class HashDecoder final : public Decoder {
 public:
  HashDecoder(std::int64_t vocab, std::vector<std::vector<std::int64_t>> prompts, float eos_bias = 0.0f,
              std::int64_t eos = 1)
      : vocab_(vocab), prompts_(std::move(prompts)), eos_bias_(eos_bias), eos_(eos) {}

  std::int64_t vocab_size() const override { return vocab_; }

  const float* start(std::int64_t rows_per_entry, std::int64_t) override {
    rows_ = static_cast<std::int64_t>(prompts_.size()) * rows_per_entry;
    histories_.assign(static_cast<std::size_t>(rows_), {});
    for (std::int64_t row = 0; row < rows_; ++row) {
      histories_[static_cast<std::size_t>(row)] = prompts_[static_cast<std::size_t>(row / rows_per_entry)];
      if (histories_[static_cast<std::size_t>(row)].empty()) histories_[static_cast<std::size_t>(row)].push_back(0);
    }
    return compute();
  }
  const float* step(const std::int64_t* tokens) override {
    fed.emplace_back(tokens, tokens + rows_);
    for (std::int64_t row = 0; row < rows_; ++row) histories_[static_cast<std::size_t>(row)].push_back(tokens[row]);
    return compute();
  }
  void reorder(const std::int64_t* source_rows) override {
    std::vector<std::vector<std::int64_t>> reordered(static_cast<std::size_t>(rows_));
    for (std::int64_t row = 0; row < rows_; ++row) {
      reordered[static_cast<std::size_t>(row)] = histories_[static_cast<std::size_t>(source_rows[row])];
    }
    histories_.swap(reordered);
  }

  std::vector<std::vector<float>> returned;       // every logits block, [rows * vocab]
  std::vector<std::vector<std::int64_t>> fed;     // every token vector given to step()

 private:
  const float* compute() {
    std::vector<float> logits(static_cast<std::size_t>(rows_ * vocab_));
    for (std::int64_t row = 0; row < rows_; ++row) {
      const auto& history = histories_[static_cast<std::size_t>(row)];
      const std::uint64_t key = static_cast<std::uint64_t>(history.back()) * 1000003u + history.size();
      for (std::int64_t v = 0; v < vocab_; ++v) {
        std::uint64_t h = (key + 1) * 0x9e3779b97f4a7c15ULL ^ (static_cast<std::uint64_t>(v) + 17) * 0xc2b2ae3d27d4eb4fULL;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        logits[static_cast<std::size_t>(row * vocab_ + v)] = static_cast<float>(h % 10000) / 2500.0f - 2.0f;
      }
      logits[static_cast<std::size_t>(row * vocab_ + eos_)] += eos_bias_ * static_cast<float>(history.size());
    }
    returned.push_back(std::move(logits));
    return returned.back().data();
  }

  std::int64_t vocab_, rows_ = 0;
  std::vector<std::vector<std::int64_t>> prompts_;
  std::vector<std::vector<std::int64_t>> histories_;
  float eos_bias_;
  std::int64_t eos_;
};

std::vector<std::int64_t> row_of(const Tensor<std::int64_t>& tensor, std::int64_t row) {
  return {tensor.data() + row * tensor.dim(1), tensor.data() + (row + 1) * tensor.dim(1)};
}

}  // namespace

TEST_CASE("Random is xoshiro256** seeded by splitmix64, identical everywhere") {
  Random zero(0);
  CHECK(zero.next() == 0x99ec5f36cb75f2b4ULL);
  CHECK(zero.next() == 0xbf6e1f784956452aULL);
  CHECK(zero.next() == 0x1a5f849d4933e6e0ULL);
  CHECK(zero.next() == 0x6aa594f1262d2d2cULL);
  Random forty_two(42);
  CHECK(forty_two.next() == 0x15780b2e0c2ec716ULL);
  CHECK(forty_two.next() == 0x6104d9866d113a7eULL);
  Random uniform(5);
  double minimum = 1.0, maximum = 0.0, sum = 0.0;
  const int draws = 100000;
  for (int i = 0; i < draws; ++i) {
    const double u = uniform.uniform();
    minimum = std::min(minimum, u);
    maximum = std::max(maximum, u);
    sum += u;
  }
  CHECK(minimum >= 0.0);
  CHECK(maximum < 1.0);
  CHECK(std::abs(sum / draws - 0.5) < 0.005);
}

TEST_CASE("sample_token draws with the softmax probabilities and never draws a -inf token") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> scores = {0.5f, -inf, 2.0f, 1.0f, -1.0f, -inf, 0.0f, 1.5f, 3.0f};
  const std::int64_t vocab = static_cast<std::int64_t>(scores.size());
  std::vector<float> probabilities(scores.size());
  softmax(scores.data(), probabilities.data(), vocab);
  std::vector<double> weights(scores.size());
  std::vector<std::int64_t> counts(scores.size(), 0);
  Random random(2024);
  const std::int64_t draws = 200000;
  for (std::int64_t i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(sample_token(scores.data(), vocab, random, weights.data()))];
  for (std::size_t v = 0; v < scores.size(); ++v) {
    CAPTURE(v);
    const double p = probabilities[v];
    const double frequency = static_cast<double>(counts[v]) / draws;
    if (p == 0.0) {
      CHECK(counts[v] == 0);
    } else {
      // 5 standard deviations of a binomial proportion.
      CHECK(std::abs(frequency - p) <= 5.0 * std::sqrt(p * (1 - p) / draws));
    }
  }
}

TEST_CASE("sample_without_replacement draws distinct entries, then the best-scored zero-probability ones") {
  const float inf = std::numeric_limits<float>::infinity();
  // Two entries carry all the probability (the -1e9 ones underflow to 0, as for HF's fresh beams).
  const std::vector<float> scores = {-inf, 1.0f, -1e9f, 0.5f, -1e9f - 100.0f, -inf};
  std::vector<double> weights(scores.size());
  std::vector<std::int64_t> chosen(4);
  Random random(9);
  std::int64_t first_is_one = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    sample_without_replacement(scores.data(), 6, 4, random, weights.data(), chosen.data());
    const std::set<std::int64_t> first_two(chosen.begin(), chosen.begin() + 2);
    CHECK(first_two == std::set<std::int64_t>{1, 3});
    CHECK(chosen[2] == 2);
    CHECK(chosen[3] == 4);
    first_is_one += chosen[0] == 1;
  }
  // P(first = 1) = e^1 / (e^1 + e^0.5) = 0.6225
  CHECK(std::abs(first_is_one / 2000.0 - 0.6225) < 0.05);
}

TEST_CASE("sampling: deterministic per seed, only kept tokens, rows b * nrs + j") {
  const std::int64_t vocab = 40;
  const std::vector<std::vector<std::int64_t>> prompts = {{3, 4}, {5, 6}};
  GenerationOptions options;
  options.do_sample = true;
  options.num_return_sequences = 3;
  options.max_new_tokens = 15;
  options.temperature = 0.8;
  options.top_k = 12;
  options.top_p = 0.7;
  options.repetition_penalty = 1.3;
  options.no_repeat_ngram_size = 2;
  options.min_new_tokens = 3;
  options.seed = 1234;
  const SpecialTokens special{{1}, 0};

  HashDecoder first(vocab, prompts, 0.15f);
  const GenerationOutput a = generate(first, prompts, options, special);
  HashDecoder second(vocab, prompts, 0.15f);
  const GenerationOutput b = generate(second, prompts, options, special);
  REQUIRE(a.sequences.shape() == b.sequences.shape());
  REQUIRE(a.sequences.dim(0) == 6);
  CHECK(std::equal(a.sequences.data(), a.sequences.data() + a.sequences.numel(), b.sequences.data()));
  CHECK(a.sequence_scores.empty());

  // Replay: every token a row received must have survived the processors and warpers at that step.
  const ResolvedLengths lengths = resolve_lengths(options, 2);
  LogitsProcessors processors(options, special, vocab, lengths);
  const std::int64_t rows = a.sequences.dim(0);
  std::int64_t checked = 0;
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::vector<std::int64_t> sequence = row_of(a.sequences, row);
    CHECK(sequence[0] == prompts[static_cast<std::size_t>(row / 3)][0]);
    CHECK(sequence[1] == prompts[static_cast<std::size_t>(row / 3)][1]);
    for (std::size_t t = 2; t < sequence.size(); ++t) {
      if (t > 2 && sequence[t - 1] == 1) break;  // finished: the rest is padding
      std::vector<float> scores(first.returned[t - 2].begin() + row * vocab,
                                first.returned[t - 2].begin() + (row + 1) * vocab);
      processors.apply(scores.data(), sequence.data(), static_cast<std::int64_t>(t));
      CHECK(std::isfinite(scores[static_cast<std::size_t>(sequence[t])]));
      ++checked;
    }
  }
  CHECK(checked > 20);

  // Other seeds give other samples.
  std::set<std::vector<std::int64_t>> distinct;
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    options.seed = seed;
    HashDecoder decoder(vocab, prompts, 0.15f);
    distinct.insert(row_of(generate(decoder, prompts, options, special).sequences, 0));
  }
  CHECK(distinct.size() >= 3);
}

TEST_CASE("sampling with top_k = 1 is greedy search") {
  const std::int64_t vocab = 33;
  const std::vector<std::vector<std::int64_t>> prompts = {{2}, {7}, {9}};
  GenerationOptions greedy;
  greedy.max_new_tokens = 12;
  greedy.repetition_penalty = 1.4;
  GenerationOptions sampled = greedy;
  sampled.do_sample = true;
  sampled.top_k = 1;
  sampled.temperature = 0.6;
  sampled.seed = 77;
  const SpecialTokens special{{1}, 0};
  HashDecoder greedy_decoder(vocab, prompts, 0.1f), sampled_decoder(vocab, prompts, 0.1f);
  const GenerationOutput expected = generate(greedy_decoder, prompts, greedy, special);
  const GenerationOutput actual = generate(sampled_decoder, prompts, sampled, special);
  REQUIRE(actual.sequences.shape() == expected.sequences.shape());
  CHECK(std::equal(actual.sequences.data(), actual.sequences.data() + actual.sequences.numel(),
                   expected.sequences.data()));
}

TEST_CASE("beam sampling: deterministic per seed, hypotheses ordered, prompts kept") {
  const std::int64_t vocab = 25;
  const std::vector<std::vector<std::int64_t>> prompts = {{3, 4, 5}, {6, 7, 8}};
  GenerationOptions options;
  options.do_sample = true;
  options.num_beams = 3;
  options.num_return_sequences = 2;
  options.max_new_tokens = 10;
  options.top_k = 6;
  options.temperature = 1.2;
  options.seed = 5;
  const SpecialTokens special{{1}, 0};
  HashDecoder first(vocab, prompts, 0.2f), second(vocab, prompts, 0.2f);
  const GenerationOutput a = generate(first, prompts, options, special);
  const GenerationOutput b = generate(second, prompts, options, special);
  REQUIRE(a.sequences.shape() == b.sequences.shape());
  CHECK(std::equal(a.sequences.data(), a.sequences.data() + a.sequences.numel(), b.sequences.data()));
  CHECK(a.sequence_scores == b.sequence_scores);
  REQUIRE(a.sequences.dim(0) == 4);
  REQUIRE(a.sequence_scores.size() == 4);
  for (std::int64_t entry = 0; entry < 2; ++entry) {
    CHECK(a.sequence_scores[static_cast<std::size_t>(2 * entry)] >= a.sequence_scores[static_cast<std::size_t>(2 * entry + 1)]);
    for (std::int64_t j = 0; j < 2; ++j) {
      const std::vector<std::int64_t> sequence = row_of(a.sequences, 2 * entry + j);
      CHECK(std::equal(prompts[static_cast<std::size_t>(entry)].begin(), prompts[static_cast<std::size_t>(entry)].end(),
                       sequence.begin()));
      CHECK(std::isfinite(a.sequence_scores[static_cast<std::size_t>(2 * entry + j)]));
    }
  }
}

}  // namespace generation_sampling_test
