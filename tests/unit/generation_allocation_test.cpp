// "No allocation per generated token": between the decoder's first call and
// its last, the search loops must not allocate. This program replaces the
// global operator new to count allocations; the decoder (which allocates
// nothing itself after its constructor) records the count at every call.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "blip/generation/generate.hpp"

#include "allocation_counter.hpp"

namespace generation_allocation_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::generation;

namespace {

// Pseudo-random logits from (last token, length) of each row, in preallocated storage.
class CountingDecoder final : public Decoder {
 public:
  CountingDecoder(std::int64_t vocab, std::int64_t max_rows, std::int64_t max_tokens)
      : vocab_(vocab), logits_(static_cast<std::size_t>(max_rows * vocab)),
        last_(static_cast<std::size_t>(max_rows)), last_scratch_(static_cast<std::size_t>(max_rows)) {
    counts.reserve(static_cast<std::size_t>(max_tokens * 2 + 2));
  }
  std::int64_t vocab_size() const override { return vocab_; }
  const float* start(std::int64_t rows_per_entry, std::int64_t) override {
    rows_ = 2 * rows_per_entry;  // every request here has 2 entries
    for (std::int64_t row = 0; row < rows_; ++row) last_[static_cast<std::size_t>(row)] = 3 + row / rows_per_entry;
    length_ = 2;
    counts.push_back(blip::test::allocation_count.load());
    return compute();
  }
  const float* step(const std::int64_t* tokens) override {
    counts.push_back(blip::test::allocation_count.load());
    for (std::int64_t row = 0; row < rows_; ++row) last_[static_cast<std::size_t>(row)] = tokens[row];
    ++length_;
    return compute();
  }
  void reorder(const std::int64_t* source_rows) override {
    counts.push_back(blip::test::allocation_count.load());
    for (std::int64_t row = 0; row < rows_; ++row) last_scratch_[static_cast<std::size_t>(row)] = last_[static_cast<std::size_t>(source_rows[row])];
    last_.swap(last_scratch_);
  }
  std::vector<std::int64_t> counts;

 private:
  const float* compute() {
    for (std::int64_t row = 0; row < rows_; ++row) {
      const std::uint64_t key = static_cast<std::uint64_t>(last_[static_cast<std::size_t>(row)]) * 131 +
                                static_cast<std::uint64_t>(length_);
      for (std::int64_t v = 0; v < vocab_; ++v) {
        std::uint64_t h = (key + 1) * 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(v + 1) * 0xc2b2ae3d27d4eb4fULL;
        h ^= h >> 31;
        logits_[static_cast<std::size_t>(row * vocab_ + v)] = static_cast<float>(h % 1000) / 250.0f;
      }
      logits_[static_cast<std::size_t>(row * vocab_ + 1)] += 0.05f * static_cast<float>(length_);  // EOS = 1
    }
    return logits_.data();
  }
  std::int64_t vocab_, rows_ = 0, length_ = 0;
  std::vector<float> logits_;
  std::vector<std::int64_t> last_, last_scratch_;
};

void check_no_allocation_while_generating(const GenerationOptions& options) {
  const std::vector<std::vector<std::int64_t>> prompts = {{3, 9}, {4, 9}};
  const SpecialTokens special{{1}, 0};
  CountingDecoder decoder(300, 2 * std::max(options.num_beams, options.num_return_sequences), 40);
  const GenerationOutput output = generate(decoder, prompts, options, special);
  REQUIRE(decoder.counts.size() >= 3);  // start + several steps: the test has something to compare
  for (std::size_t call = 1; call < decoder.counts.size(); ++call) {
    CAPTURE(call);
    CHECK(decoder.counts[call] == decoder.counts.front());
  }
  CHECK(output.sequences.dim(0) == 2 * options.num_return_sequences);
}

}  // namespace

TEST_CASE("greedy search allocates nothing per token") {
  GenerationOptions options;
  options.max_new_tokens = 30;
  options.repetition_penalty = 1.2;
  options.no_repeat_ngram_size = 3;
  options.min_new_tokens = 4;
  check_no_allocation_while_generating(options);
}

TEST_CASE("sampling with every warper allocates nothing per token") {
  GenerationOptions options;
  options.do_sample = true;
  options.max_new_tokens = 30;
  options.temperature = 0.9;
  options.top_k = 40;
  options.top_p = 0.8;
  options.repetition_penalty = 1.2;
  options.num_return_sequences = 2;
  options.seed = 3;
  check_no_allocation_while_generating(options);
  options.top_k = 0;
  options.top_p = 1.0;
  options.min_p = 0.02;
  options.typical_p = 0.9;
  options.epsilon_cutoff = 0.001;
  options.eta_cutoff = 0.001;
  options.renormalize_logits = true;
  check_no_allocation_while_generating(options);
}

TEST_CASE("every processor allocates nothing per token") {
  GenerationOptions options;
  options.max_new_tokens = 30;
  options.bad_words_ids = {{3, 9, 5}, {7}, {4, 2}};
  options.suppress_tokens = {11, 12};
  options.begin_suppress_tokens = {13};
  options.forced_bos_token_id = 6;
  options.forced_eos_token_id = {1};
  options.remove_invalid_values = true;
  options.exponential_decay_length_penalty = std::make_pair(std::int64_t{5}, 1.1);
  options.renormalize_logits = true;
  check_no_allocation_while_generating(options);
}

TEST_CASE("beam search allocates nothing per token") {
  GenerationOptions options;
  options.num_beams = 4;
  options.num_return_sequences = 2;
  options.max_new_tokens = 30;
  options.length_penalty = 0.6;
  options.no_repeat_ngram_size = 2;
  options.early_stopping = EarlyStopping::Never;
  check_no_allocation_while_generating(options);
}

TEST_CASE("beam sampling allocates nothing per token") {
  GenerationOptions options;
  options.num_beams = 3;
  options.do_sample = true;
  options.top_k = 20;
  options.top_p = 0.9;
  options.max_new_tokens = 30;
  options.seed = 11;
  check_no_allocation_while_generating(options);
}

TEST_CASE("group beam search allocates nothing per token") {
  GenerationOptions options;
  options.num_beams = 6;
  options.num_beam_groups = 3;
  options.diversity_penalty = 0.7;
  options.num_return_sequences = 4;
  options.max_new_tokens = 30;
  options.repetition_penalty = 1.2;
  check_no_allocation_while_generating(options);
}

}  // namespace generation_allocation_test
