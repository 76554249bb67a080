// generate() against Hugging Face's own generate() on a toy language model.
//
// tests/oracle/make_generation_references.py drove HF's generate() (greedy,
// beam search in every early_stopping mode, group beam search with
// diversity penalties, length penalties, num_return_sequences, every
// processor, inputs_embeds, deterministic sampling with every warper)
// on a toy model whose next-token logits are a function of the last two
// tokens and the position, from seeded float32 tables. ToyDecoder below is
// the same model from the same tables, so the logits are bit-identical; the
// test demands the same ids, sequences_scores within 1e-5, and the same
// number of decoder calls as HF's forward calls.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "blip/generation/generate.hpp"
#include "test_support.hpp"

namespace generation_toy_model_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::generation;
using nlohmann::json;

namespace {

std::string generation_data(const std::string& name) { return blip::test::test_data("generation/" + name); }
using blip::test::load_json;

// logits = (A[last] + B[second to last, or the extra row V]) + C[position], float32.
struct ToyTables {
  std::int64_t vocab = 0, positions = 0;
  std::vector<float> A, B, C;  // [V, V], [V + 1, V], [P, V]
};

std::vector<float> flatten(const json& matrix) {
  std::vector<float> values;
  for (const json& row : matrix) {
    for (const json& value : row) values.push_back(static_cast<float>(value.get<double>()));
  }
  return values;
}

ToyTables load_tables(const json& data, const std::string& variant) {
  ToyTables tables;
  tables.vocab = data["vocab_size"].get<std::int64_t>();
  tables.positions = data["positions"].get<std::int64_t>();
  tables.A = flatten(data["A"]);
  tables.B = flatten(data["B"]);
  tables.C = flatten(data["C"]);
  const std::int64_t eos = data["eos_token_id"].get<std::int64_t>();
  const json& columns = data["models"][variant];
  for (std::int64_t i = 0; i < tables.vocab; ++i) {
    tables.A[static_cast<std::size_t>(i * tables.vocab + eos)] = static_cast<float>(columns["A_eos_column"][i].get<double>());
  }
  for (std::int64_t p = 0; p < tables.positions; ++p) {
    tables.C[static_cast<std::size_t>(p * tables.vocab + eos)] = static_cast<float>(columns["C_eos_column"][p].get<double>());
  }
  return tables;
}

// The toy model as a generation::Decoder. Each batch entry starts from its own history (the prompt ids, or the
// context tokens HF received as inputs_embeds); rows hold everything appended since.
class ToyDecoder final : public Decoder {
 public:
  ToyDecoder(const ToyTables& tables, std::vector<std::vector<std::int64_t>> entry_histories)
      : tables_(tables), entry_histories_(std::move(entry_histories)) {}

  std::int64_t vocab_size() const override { return tables_.vocab; }

  const float* start(std::int64_t rows_per_entry, std::int64_t max_new_tokens) override {
    ++calls;
    REQUIRE(starts == 0);
    ++starts;
    rows_per_entry_ = rows_per_entry;
    rows_ = static_cast<std::int64_t>(entry_histories_.size()) * rows_per_entry;
    capacity_ = static_cast<std::int64_t>(entry_histories_.front().size()) + max_new_tokens;
    histories_.assign(static_cast<std::size_t>(rows_), {});
    for (std::int64_t row = 0; row < rows_; ++row) {
      histories_[static_cast<std::size_t>(row)] = entry_histories_[static_cast<std::size_t>(row / rows_per_entry)];
      histories_[static_cast<std::size_t>(row)].reserve(static_cast<std::size_t>(capacity_));
    }
    logits_.assign(static_cast<std::size_t>(rows_ * tables_.vocab), 0.0f);
    return compute();
  }

  const float* step(const std::int64_t* tokens) override {
    ++calls;
    for (std::int64_t row = 0; row < rows_; ++row) {
      auto& history = histories_[static_cast<std::size_t>(row)];
      // The loop must not run past the max_new_tokens it announced in start().
      REQUIRE(static_cast<std::int64_t>(history.size()) < capacity_);
      REQUIRE(tokens[row] >= 0);
      REQUIRE(tokens[row] < tables_.vocab);
      history.push_back(tokens[row]);
    }
    return compute();
  }

  void reorder(const std::int64_t* source_rows) override {
    ++reorders;
    std::vector<std::vector<std::int64_t>> reordered(static_cast<std::size_t>(rows_));
    for (std::int64_t row = 0; row < rows_; ++row) {
      // Promised by the Decoder interface: a row never continues another entry's row.
      REQUIRE(source_rows[row] / rows_per_entry_ == row / rows_per_entry_);
      reordered[static_cast<std::size_t>(row)] = histories_[static_cast<std::size_t>(source_rows[row])];
    }
    histories_.swap(reordered);
  }

  std::int64_t calls = 0, starts = 0, reorders = 0;

 private:
  const float* compute() {
    const std::int64_t vocab = tables_.vocab;
    for (std::int64_t row = 0; row < rows_; ++row) {
      const auto& history = histories_[static_cast<std::size_t>(row)];
      const std::int64_t length = static_cast<std::int64_t>(history.size());
      REQUIRE(length >= 1);
      REQUIRE(length <= tables_.positions);
      const std::int64_t last = history.back();
      const std::int64_t previous = length >= 2 ? history[history.size() - 2] : vocab;
      const float* a = tables_.A.data() + last * vocab;
      const float* b = tables_.B.data() + previous * vocab;
      const float* c = tables_.C.data() + (length - 1) * vocab;
      float* out = logits_.data() + row * vocab;
      for (std::int64_t v = 0; v < vocab; ++v) out[v] = (a[v] + b[v]) + c[v];
    }
    return logits_.data();
  }

  const ToyTables& tables_;
  std::vector<std::vector<std::int64_t>> entry_histories_;
  std::vector<std::vector<std::int64_t>> histories_;
  std::vector<float> logits_;
  std::int64_t rows_per_entry_ = 1, rows_ = 0, capacity_ = 0;
};

std::vector<std::vector<std::int64_t>> int_rows(const json& rows) {
  std::vector<std::vector<std::int64_t>> result;
  for (const json& row : rows) result.push_back(row.get<std::vector<std::int64_t>>());
  return result;
}

}  // namespace

TEST_CASE("generate reproduces HF generate() on the toy model: ids, sequences_scores, decoder calls") {
  const std::string path = generation_data("toy_model_cases.json");
  if (!test::have_or_skip(path, "generation reference file (tests/oracle/make_generation_references.py)")) return;
  const json data = load_json(path);
  std::map<std::string, ToyTables> tables;
  for (const auto& [variant, columns] : data["models"].items()) {
    (void)columns;
    tables.emplace(variant, load_tables(data, variant));
  }
  REQUIRE(data["cases"].size() >= 100);

  std::int64_t beam_cases = 0, group_cases = 0, greedy_cases = 0, sample_cases = 0, scored_rows = 0;
  double worst_score_error = 0.0;
  for (const json& test_case : data["cases"]) {
    const std::string name = test_case["name"].get<std::string>();
    CAPTURE(name);
    // HF GenerationConfig keys, read as a generation_config.json would be.
    const GenerationOptions options =
        options_from_generation_config(parse_generation_config(test_case["options"], name));
    SpecialTokens special;
    special.eos_token_ids = test_case["eos"].get<std::vector<std::int64_t>>();
    special.pad_token_id = test_case["pad"].get<std::int64_t>();

    // inputs_embeds cases: HF's input_ids is empty; the context lives inside the model.
    const bool embeds = test_case.contains("context");
    const auto entry_histories = int_rows(embeds ? test_case["context"] : test_case["prompts"]);
    std::vector<std::vector<std::int64_t>> prompt_ids =
        embeds ? std::vector<std::vector<std::int64_t>>(entry_histories.size()) : entry_histories;

    ToyDecoder decoder(tables.at(test_case["model"].get<std::string>()), entry_histories);
    const GenerationOutput output = generate(decoder, prompt_ids, options, special);

    const auto expected = int_rows(test_case["sequences"]);
    REQUIRE(output.sequences.rank() == 2);
    const std::int64_t width = output.sequences.dim(1);
    CHECK(output.sequences.dim(0) == static_cast<std::int64_t>(expected.size()));
    CHECK(width == static_cast<std::int64_t>(expected.front().size()));
    for (std::size_t row = 0; row < std::min<std::size_t>(expected.size(), output.sequences.dim(0)); ++row) {
      CAPTURE(row);
      const std::vector<std::int64_t> actual(output.sequences.data() + row * width,
                                             output.sequences.data() + (row + 1) * width);
      CHECK(actual == expected[row]);
    }
    // Same number of decoder calls as HF's forward calls; reorder() exactly before every beam step().
    CHECK(decoder.calls == test_case["forward_calls"].get<std::int64_t>());
    const std::string method = test_case["hf_method"].get<std::string>();
    if (method == "_beam_search" || method == "_group_beam_search") {
      ++(method == "_beam_search" ? beam_cases : group_cases);
      CHECK(options.num_beams > 1);
      CHECK((options.num_beam_groups > 1) == (method == "_group_beam_search"));
      CHECK(decoder.reorders == decoder.calls - 1);
      const auto expected_scores = test_case["sequence_scores"].get<std::vector<double>>();
      CHECK(output.sequence_scores.size() == expected_scores.size());
      for (std::size_t row = 0; row < std::min(expected_scores.size(), output.sequence_scores.size()); ++row) {
        const double error = std::abs(output.sequence_scores[row] - expected_scores[row]) /
                             std::max(1.0, std::abs(expected_scores[row]));
        worst_score_error = std::max(worst_score_error, error);
        CHECK_MESSAGE(error < 1e-5, "row ", row, ": ", output.sequence_scores[row], " vs HF ", expected_scores[row]);
        ++scored_rows;
      }
    } else {
      REQUIRE(method == "_sample");
      ++(options.do_sample ? sample_cases : greedy_cases);
      CHECK(options.num_beams == 1);
      CHECK(decoder.reorders == 0);
      CHECK(output.sequence_scores.empty());
    }
  }
  MESSAGE("toy model: ", greedy_cases, " greedy, ", beam_cases, " beam, ", group_cases, " group beam, ",
          sample_cases, " sampling cases; ", scored_rows, " sequences_scores, worst relative error ",
          worst_score_error);
  CHECK(beam_cases >= 40);
  CHECK(group_cases >= 15);
  CHECK(greedy_cases >= 15);
  CHECK(sample_cases >= 8);
}

}  // namespace generation_toy_model_test
