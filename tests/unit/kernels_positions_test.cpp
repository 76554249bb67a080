// Embedding lookups and the position formulas of OPT and T5. The expected
// values were printed by Hugging Face's own functions (transformers 4.45.0.dev0,
// torch 1.13): OPTLearnedPositionalEmbedding.forward with an arange weight,
// T5Attention._relative_position_bucket over every relative position in
// [-1000, 1000] (recorded as the runs of equal buckets), and
// T5Attention.compute_bias with weight[b, h] = b + 100·h.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "blip/kernels/embedding.hpp"
#include "blip/kernels/positions.hpp"
#include "test_support.hpp"

namespace kernels_positions_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

TEST_CASE("embedding_lookup and add_embedding_rows copy / add the table rows; bad ids are reported") {
  Tensor<float> table(Shape{11, 7});
  for (std::int64_t i = 0; i < table.numel(); ++i) table.data()[i] = static_cast<float>(i) * 0.5f - 3.0f;
  std::mt19937 generator(3);
  std::uniform_int_distribution<std::int64_t> id(0, 10);
  for (std::int64_t count : {1, 5, 129}) {
    std::vector<std::int64_t> ids(count);
    for (auto& v : ids) v = id(generator);
    std::vector<float> fast(count * 7), reference(count * 7);
    embedding_lookup(table, ids.data(), count, fast.data());
    embedding_lookup_naive(table, ids.data(), count, reference.data());
    CHECK(fast == reference);
    for (std::int64_t i = 0; i < count; ++i) CHECK(fast[i * 7 + 3] == table.at(ids[i], 3));
    add_embedding_rows(table, ids.data(), count, fast.data());
    add_embedding_rows_naive(table, ids.data(), count, reference.data());
    CHECK(fast == reference);
    CHECK(fast[2] == 2.0f * table.at(ids[0], 2));
  }
  const std::int64_t bad[3] = {0, 11, 2};
  float out[21];
  CHECK_THROWS_WITH_AS(embedding_lookup(table, bad, 3, out),
                       doctest::Contains("id 11 at position 1 is outside the embedding table [0, 11)"), blip::Error);
  const std::int64_t negative[1] = {-1};
  CHECK_THROWS_WITH_AS(add_embedding_rows(table, negative, 1, out), doctest::Contains("id -1"), blip::Error);

  // Tensor form and add_rows.
  Tensor<std::int64_t> ids(Shape{2, 2});
  ids.data()[0] = 1, ids.data()[1] = 2, ids.data()[2] = 3, ids.data()[3] = 10;
  Tensor<float> looked_up(Shape{2, 2, 7});
  embedding_lookup(table, ids, looked_up);
  CHECK(looked_up.at(1, 1, 6) == table.at(10, 6));
  CHECK_THROWS_AS(embedding_lookup(table, ids, Tensor<float>(Shape{2, 2, 6})), blip::Error);
  std::vector<float> sequences(3 * 2 * 7, 1.0f);
  add_rows(sequences.data(), 3, 2, 7, table.data() + 7);  // rows 1..2 of the table to each of 3 sequences
  CHECK(sequences[2 * 14 + 7 + 4] == 1.0f + table.at(2, 4));
  CHECK(sequences[0] == 1.0f + table.at(1, 0));
}

TEST_CASE("embedding_lookup reads a table kept in bf16 or f16 exactly, widening each row it reads") {
  // Values on the bf16 grid (and f16's): the widened rows must equal them exactly.
  const std::int64_t vocab = 37, dim = 19;
  Tensor<float> values(Shape{vocab, dim});
  for (std::int64_t i = 0; i < values.numel(); ++i) values.data()[i] = static_cast<float>(i % 251 - 125) * 0.0625f;
  std::vector<BFloat16> bf16(static_cast<std::size_t>(values.numel()));
  std::vector<Float16> f16(bf16.size());
  for (std::size_t i = 0; i < bf16.size(); ++i) {
    bf16[i] = f32_to_bf16(values.data()[i]);
    f16[i] = f32_to_f16(values.data()[i]);
  }
  const EmbeddingTable tables[2] = {EmbeddingTable(StoredMatrix{DType::BF16, bf16.data(), vocab, dim, nullptr}),
                                    EmbeddingTable(StoredMatrix{DType::F16, f16.data(), vocab, dim, nullptr})};
  std::vector<std::int64_t> ids(300);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>((i * 7919) % vocab);
  std::vector<float> reference(ids.size() * dim);
  embedding_lookup_naive(values, ids.data(), static_cast<std::int64_t>(ids.size()), reference.data());
  for (const EmbeddingTable& table : tables) {
    INFO(dtype_name(table.dtype()));
    CHECK(table.own_bytes() == static_cast<std::size_t>(vocab * dim * 2));
    std::vector<float> looked_up(ids.size() * dim, -1.0f);
    embedding_lookup(table, ids.data(), static_cast<std::int64_t>(ids.size()), looked_up.data());
    CHECK(looked_up == reference);
    const std::int64_t bad[2] = {3, vocab};
    CHECK_THROWS_WITH_AS(embedding_lookup(table, bad, 2, looked_up.data()),
                         doctest::Contains("id 37 at position 1 is outside the embedding table [0, 37)"), blip::Error);
  }
}

TEST_CASE("an embedding table read from a tied head's panels gives the head's rows, in every precision") {
  // Odd sizes: a partial last panel (45 = 32 + 13 rows) and a depth that ends inside an int4 block.
  const std::int64_t vocab = 45, width = 70;
  Tensor<float> weight(Shape{vocab, width});
  for (std::int64_t i = 0; i < weight.numel(); ++i) weight.data()[i] = static_cast<float>((i * 37) % 101 - 50) / 64.0f;
  const std::int64_t ids[5] = {0, 31, 32, 44, 7};
  for (const WeightPrecision precision : {WeightPrecision::F32, WeightPrecision::BF16, WeightPrecision::F16,
                                          WeightPrecision::Int8, WeightPrecision::Int4}) {
    INFO(weight_precision_name(precision));
    const LinearWeights head = LinearWeights::prepare(weight, {}, precision);
    const EmbeddingTable table = EmbeddingTable::reading_head(head);
    CHECK(table.reads_head());
    CHECK(table.own_bytes() == 0);
    CHECK(table.rows() == vocab);
    CHECK(table.width() == width);
    std::vector<float> looked_up(5 * width);
    embedding_lookup(table, ids, 5, looked_up.data());
    for (std::int64_t i = 0; i < 5; ++i)
      for (std::int64_t k = 0; k < width; ++k)
        CHECK(looked_up[static_cast<std::size_t>(i * width + k)] == head.weight_value(ids[i], k));
    // Lossless panels give the stored values back (these are on the f16 and bf16 grids).
    if (precision == WeightPrecision::F32 || precision == WeightPrecision::BF16 || precision == WeightPrecision::F16)
      CHECK(looked_up[static_cast<std::size_t>(3 * width + 69)] == weight.at(44, 69));
    const std::int64_t bad[1] = {vocab};
    CHECK_THROWS_WITH_AS(embedding_lookup(table, bad, 1, looked_up.data()), doctest::Contains("id 45 at position 0"),
                         blip::Error);
  }
}

TEST_CASE("opt_positions_from_mask mirrors OPTLearnedPositionalEmbedding (offset 2, padding -> 1)") {
  const std::vector<std::int64_t> mask = {0, 0, 1, 1, 1, 0, 1, 1,  //
                                          1, 1, 1, 1, 1, 1, 1, 1,  //
                                          1, 1, 0, 1, 0, 0, 1, 1,  //
                                          0, 0, 0, 0, 0, 0, 0, 1};
  const std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> expected = {
      {0, {1, 1, 2, 3, 4, 1, 5, 6, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 1, 4, 1, 1, 5, 6, 1, 1, 1, 1, 1, 1, 1, 2}},
      {3, {3, 4, 1, 5, 6, 5, 6, 7, 8, 9, 4, 1, 1, 5, 6, 1, 1, 1, 1, 2}},
      {7, {6, 9, 6, 2}},
  };
  for (const auto& [past, values] : expected) {
    std::vector<std::int64_t> positions(4 * (8 - past));
    opt_positions_from_mask(mask.data(), 4, 8, past, positions.data());
    CHECK(positions == values);
  }
  std::int64_t out[1];
  CHECK_THROWS_AS(opt_positions_from_mask(mask.data(), 4, 8, 9, out), blip::Error);
}

namespace {
struct BucketCase {
  bool bidirectional;
  std::int64_t num_buckets, max_distance;
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;  // (first relative position of a run, its bucket)
};
}  // namespace

TEST_CASE("t5_relative_position_bucket equals HF for every relative position in [-1000, 1000]") {
  const std::vector<BucketCase> cases = {
      {true, 32, 128, {{-1000, 15}, {-90, 14}, {-63, 13}, {-45, 12}, {-31, 11}, {-22, 10}, {-15, 9}, {-11, 8},
                       {-7, 7},     {-6, 6},   {-5, 5},   {-4, 4},   {-3, 3},   {-2, 2},   {-1, 1},   {0, 0},
                       {1, 17},     {2, 18},   {3, 19},   {4, 20},   {5, 21},   {6, 22},   {7, 23},   {8, 24},
                       {12, 25},    {16, 26},  {23, 27},  {32, 28},  {46, 29},  {64, 30},  {91, 31}}},
      {false, 32, 128, {{-1000, 31}, {-112, 30}, {-98, 29}, {-86, 28}, {-76, 27}, {-66, 26}, {-58, 25}, {-51, 24},
                        {-45, 23},   {-39, 22},  {-34, 21}, {-30, 20}, {-26, 19}, {-23, 18}, {-20, 17}, {-18, 16},
                        {-15, 15},   {-14, 14},  {-13, 13}, {-12, 12}, {-11, 11}, {-10, 10}, {-9, 9},   {-8, 8},
                        {-7, 7},     {-6, 6},    {-5, 5},   {-4, 4},   {-3, 3},   {-2, 2},   {-1, 1},   {0, 0}}},
      {true, 64, 256, {{-1000, 31}, {-215, 30}, {-181, 29}, {-152, 28}, {-127, 27}, {-107, 26}, {-90, 25}, {-76, 24},
                       {-63, 23},   {-53, 22},  {-45, 21},  {-38, 20},  {-31, 19},  {-26, 18},  {-22, 17}, {-19, 16},
                       {-15, 15},   {-14, 14},  {-13, 13},  {-12, 12},  {-11, 11},  {-10, 10},  {-9, 9},   {-8, 8},
                       {-7, 7},     {-6, 6},    {-5, 5},    {-4, 4},    {-3, 3},    {-2, 2},    {-1, 1},   {0, 0},
                       {1, 33},     {2, 34},    {3, 35},    {4, 36},    {5, 37},    {6, 38},    {7, 39},   {8, 40},
                       {9, 41},     {10, 42},   {11, 43},   {12, 44},   {13, 45},   {14, 46},   {15, 47},  {16, 48},
                       {20, 49},    {23, 50},   {27, 51},   {32, 52},   {39, 53},   {46, 54},   {54, 55},  {64, 56},
                       {77, 57},    {91, 58},   {108, 59},  {128, 60},  {153, 61},  {182, 62},  {216, 63}}},
      {false, 16, 40, {{-1000, 15}, {-32, 14}, {-26, 13}, {-21, 12}, {-17, 11}, {-14, 10}, {-11, 9}, {-9, 8},
                       {-7, 7},     {-6, 6},   {-5, 5},   {-4, 4},   {-3, 3},   {-2, 2},   {-1, 1},  {0, 0}}},
      {true, 8, 20, {{-1000, 3}, {-6, 2}, {-1, 1}, {0, 0}, {1, 5}, {2, 6}, {7, 7}}},
  };
  for (const BucketCase& c : cases) {
    std::size_t run = 0;
    for (std::int64_t relative = -1000; relative <= 1000; ++relative) {
      if (run + 1 < c.runs.size() && relative == c.runs[run + 1].first) ++run;
      const std::int64_t bucket = t5_relative_position_bucket(relative, c.bidirectional, c.num_buckets, c.max_distance);
      if (bucket != c.runs[run].second) {
        INFO("bidirectional ", c.bidirectional, " buckets ", c.num_buckets, " max_distance ", c.max_distance,
             " relative position ", relative);
        CHECK(bucket == c.runs[run].second);
        break;
      }
    }
  }
}

TEST_CASE("t5_position_bias equals HF compute_bias, and its decode slice") {
  const std::int64_t heads = 3, buckets = 32;
  std::vector<float> table(buckets * heads);  // relative_attention_bias.weight [buckets, heads]
  for (std::int64_t b = 0; b < buckets; ++b)
    for (std::int64_t h = 0; h < heads; ++h) table[b * heads + h] = static_cast<float>(b + 100 * h);

  // Encoder (bidirectional), query_length 4, key_length 6: HF compute_bias(4, 6)[0].
  const std::vector<float> encoder_expected = {
      0,   17,  18,  19,  20,  21,  1,   0,   17,  18,  19,  20,  2,   1,   0,   17,  18,  19,  3,   2,   1,   0,   17,  18,
      100, 117, 118, 119, 120, 121, 101, 100, 117, 118, 119, 120, 102, 101, 100, 117, 118, 119, 103, 102, 101, 100, 117, 118,
      200, 217, 218, 219, 220, 221, 201, 200, 217, 218, 219, 220, 202, 201, 200, 217, 218, 219, 203, 202, 201, 200, 217, 218};
  std::vector<float> encoder(heads * 4 * 6);
  t5_position_bias(table.data(), heads, 4, 6, true, buckets, 128, 0, encoder.data());
  CHECK(encoder == encoder_expected);

  // Decoder (causal buckets), 5 × 5: HF compute_bias(5, 5)[0].
  std::vector<float> decoder(heads * 5 * 5);
  t5_position_bias(table.data(), heads, 5, 5, false, buckets, 128, 0, decoder.data());
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < 5; ++i)
      for (std::int64_t j = 0; j < 5; ++j) CHECK(decoder[(h * 5 + i) * 5 + j] == static_cast<float>(std::max<std::int64_t>(i - j, 0) + 100 * h));

  // Decoding step 5 (4 tokens cached): HF slices compute_bias(5, 5)[:, :, -1:, :].
  std::vector<float> step(heads * 1 * 5);
  t5_position_bias(table.data(), heads, 1, 5, false, buckets, 128, 4, step.data());
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t j = 0; j < 5; ++j) CHECK(step[h * 5 + j] == decoder[(h * 5 + 4) * 5 + j]);
}

}  // namespace kernels_positions_test
