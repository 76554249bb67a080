// KV caches: step-by-step appends equal a one-shot prefill, in-place beam
// reordering equals a plain gather (index_select), decoding with the cache
// equals causal attention over the whole sequence, and the cross-attention
// cache shared through kv_group equals per-beam copies.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "blip/kernels/attention.hpp"
#include "blip/kernels/kv_cache.hpp"
#include "test_support.hpp"

namespace kernels_kv_cache_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

namespace {

std::vector<float> random_vector(std::int64_t count, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (auto& v : values) v = normal(generator);
  return values;
}

// The cached tokens of a view, in (row, head, token, d) order.
std::vector<float> contents(const HeadsView& view) {
  std::vector<float> values;
  for (std::int64_t r = 0; r < view.rows; ++r)
    for (std::int64_t h = 0; h < view.heads; ++h)
      for (std::int64_t t = 0; t < view.tokens; ++t)
        values.insert(values.end(), view.at(r, h, t), view.at(r, h, t) + view.head_dim);
  return values;
}

}  // namespace

TEST_CASE("appending step by step equals a one-shot prefill, and views read the projected layout") {
  const std::int64_t rows = 3, heads = 4, head_dim = 5, tokens = 9, hidden = heads * head_dim;
  // Keys and values as a fused projection would leave them: [rows, tokens, 2·hidden], k then v.
  const std::vector<float> projected = random_vector(rows * tokens * 2 * hidden, 1);
  const float* keys = projected.data();
  const float* values = projected.data() + hidden;
  const std::int64_t token_stride = 2 * hidden, row_stride = tokens * token_stride;

  KVCache one_shot, stepwise;
  one_shot.allocate(rows, heads, 16, head_dim);
  stepwise.allocate(rows, heads, 16, head_dim);
  one_shot.append(keys, values, row_stride, token_stride, tokens);
  for (std::int64_t t = 0; t < tokens;) {
    const std::int64_t step = t == 0 ? 4 : 1;  // a 4-token prompt, then one token at a time
    stepwise.append(keys + t * token_stride, values + t * token_stride, row_stride, token_stride, step);
    t += step;
  }
  CHECK(stepwise.length() == tokens);
  CHECK(contents(stepwise.keys()) == contents(one_shot.keys()));
  CHECK(contents(stepwise.values()) == contents(one_shot.values()));
  // The cache holds exactly what heads_view reads from the projected buffer.
  const HeadsView projected_keys = heads_view(const_cast<float*>(keys), rows, tokens, heads, head_dim, token_stride);
  const HeadsView projected_values = heads_view(const_cast<float*>(values), rows, tokens, heads, head_dim, token_stride);
  CHECK(contents(one_shot.keys()) == contents(projected_keys));
  CHECK(contents(one_shot.values()) == contents(projected_values));

  CHECK_THROWS_WITH_AS(one_shot.append(keys, values, row_stride, token_stride, 8),
                       doctest::Contains("exceed the capacity of 16"), blip::Error);
  one_shot.reset();
  CHECK(one_shot.length() == 0);
  KVCache unallocated;
  CHECK_THROWS_WITH_AS(unallocated.append(keys, values, row_stride, token_stride, 1), doctest::Contains("not allocated"),
                       blip::Error);
}

TEST_CASE("reorder equals an out-of-place gather for permutations, cycles and repeated rows") {
  const std::int64_t rows = 6, heads = 2, capacity = 7, head_dim = 3, tokens = 5, hidden = heads * head_dim;
  const std::vector<std::vector<std::int64_t>> orders = {
      {0, 1, 2, 3, 4, 5}, {1, 2, 0, 4, 5, 3}, {5, 4, 3, 2, 1, 0}, {0, 0, 1, 1, 2, 2},
      {3, 3, 3, 3, 3, 3}, {1, 0, 0, 5, 2, 2}, {2, 0, 1, 3, 3, 4}, {4, 4, 0, 1, 2, 5},
  };
  std::mt19937 generator(5);
  std::vector<std::vector<std::int64_t>> all_orders = orders;
  for (int i = 0; i < 50; ++i) {  // random beam choices
    std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
    std::vector<std::int64_t> order(rows);
    for (auto& v : order) v = row(generator);
    all_orders.push_back(order);
  }
  for (const auto& order : all_orders) {
    const std::vector<float> projected = random_vector(rows * tokens * hidden, 7);
    KVCache cache;
    cache.allocate(rows, heads, capacity, head_dim);
    cache.append(projected.data(), projected.data(), tokens * hidden, hidden, tokens);
    const std::vector<float> before = contents(cache.keys());
    cache.reorder(order.data());
    std::vector<float> expected(before.size());
    const std::int64_t row_size = heads * tokens * head_dim;  // contents() is [rows, heads, tokens, d]
    gather_rows_naive(before.data(), order.data(), rows, row_size, expected.data());
    CHECK(contents(cache.keys()) == expected);
    CHECK(contents(cache.values()) == expected);
  }
  KVCache cache;
  cache.allocate(2, 1, 2, 1);
  const std::int64_t bad[2] = {0, 2};
  CHECK_THROWS_WITH_AS(cache.reorder(bad), doctest::Contains("source row 2 at position 1"), blip::Error);
}

TEST_CASE("decoding with the cache equals causal attention over the whole sequence") {
  const std::int64_t rows = 2, heads = 3, head_dim = 16, tokens = 12, prompt = 5, hidden = heads * head_dim;
  const std::vector<float> qkv = random_vector(rows * tokens * 3 * hidden, 11);  // [rows, tokens, q|k|v]
  float* data = const_cast<float*>(qkv.data());
  const std::int64_t token_stride = 3 * hidden, row_stride = tokens * token_stride;
  // A padding mask over all tokens (row 1 has its second token padded), BLIP's -10000.
  std::vector<float> padding(rows * tokens, 0.0f);
  padding[1 * tokens + 1] = -10000.0f;

  AttentionOptions full_options;
  full_options.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  full_options.additive_mask = padding.data();
  full_options.causal = true;
  full_options.causal_mask_value = -10000.0f;
  std::vector<float> full(rows * tokens * hidden);
  attention(heads_view(data, rows, tokens, heads, head_dim, token_stride),
            heads_view(data + hidden, rows, tokens, heads, head_dim, token_stride),
            heads_view(data + 2 * hidden, rows, tokens, heads, head_dim, token_stride), full_options,
            heads_view(full.data(), rows, tokens, heads, head_dim));

  KVCache cache;
  cache.allocate(rows, heads, tokens, head_dim);
  std::vector<float> incremental(rows * tokens * hidden);
  for (std::int64_t t = 0; t < tokens;) {
    const std::int64_t step = t == 0 ? prompt : 1;
    cache.append(data + t * token_stride + hidden, data + t * token_stride + 2 * hidden, row_stride, token_stride, step);
    AttentionOptions step_options = full_options;
    step_options.causal_offset = t;  // tokens already cached before this step
    step_options.mask_key_stride = tokens;  // the padding mask is [rows, tokens]; the cache holds t + step
    attention(heads_view(data + t * token_stride, rows, step, heads, head_dim, token_stride, row_stride), cache.keys(),
              cache.values(), step_options,
              heads_view(incremental.data() + t * hidden, rows, step, heads, head_dim, hidden, tokens * hidden));
    t += step;
  }
  for (std::size_t i = 0; i < full.size(); ++i) CHECK(std::fabs(incremental[i] - full[i]) <= 2e-6f);  // values ~N(0,1): a few ulp of max|v|
}

TEST_CASE("a CrossAttentionCache shared by beams through kv_group equals per-beam copies") {
  const std::int64_t images = 2, beams = 3, heads = 4, head_dim = 8, image_tokens = 17, hidden = heads * head_dim;
  const std::vector<float> keys = random_vector(images * image_tokens * hidden, 21);
  const std::vector<float> values = random_vector(images * image_tokens * hidden, 22);
  const std::vector<float> queries = random_vector(images * beams * hidden, 23);  // one token per beam

  CrossAttentionCache cross;
  cross.allocate(images, heads, 32, head_dim);
  CHECK(!cross.filled());
  cross.fill(keys.data(), values.data(), image_tokens * hidden, hidden, image_tokens);
  CHECK(cross.tokens() == image_tokens);
  CHECK(contents(cross.keys()) ==
        contents(heads_view(const_cast<float*>(keys.data()), images, image_tokens, heads, head_dim)));

  AttentionOptions shared_options;
  shared_options.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  shared_options.kv_group = beams;
  std::vector<float> shared(images * beams * hidden), repeated(images * beams * hidden);
  float* query_data = const_cast<float*>(queries.data());
  attention(heads_view(query_data, images * beams, 1, heads, head_dim), cross.keys(), cross.values(), shared_options,
            heads_view(shared.data(), images * beams, 1, heads, head_dim));

  std::vector<float> repeated_keys, repeated_values;
  for (std::int64_t image = 0; image < images; ++image)
    for (std::int64_t beam = 0; beam < beams; ++beam) {
      repeated_keys.insert(repeated_keys.end(), keys.begin() + image * image_tokens * hidden,
                           keys.begin() + (image + 1) * image_tokens * hidden);
      repeated_values.insert(repeated_values.end(), values.begin() + image * image_tokens * hidden,
                             values.begin() + (image + 1) * image_tokens * hidden);
    }
  AttentionOptions per_beam_options = shared_options;
  per_beam_options.kv_group = 1;
  attention(heads_view(query_data, images * beams, 1, heads, head_dim),
            heads_view(repeated_keys.data(), images * beams, image_tokens, heads, head_dim),
            heads_view(repeated_values.data(), images * beams, image_tokens, heads, head_dim), per_beam_options,
            heads_view(repeated.data(), images * beams, 1, heads, head_dim));
  for (std::size_t i = 0; i < shared.size(); ++i) CHECK(std::fabs(shared[i] - repeated[i]) <= 2e-6f);

  CHECK_THROWS_WITH_AS(cross.fill(keys.data(), values.data(), 0, hidden, 33), doctest::Contains("do not fit"),
                       blip::Error);
}

TEST_CASE("assign_rows starts every beam from its entry's prompt cache, into a longer cache") {
  const std::int64_t entries = 2, beams = 3, heads = 2, head_dim = 5, prompt = 4;
  KVCache prompt_cache;
  prompt_cache.allocate(entries, heads, prompt, head_dim);
  const std::vector<float> keys = random_vector(entries * prompt * heads * head_dim, 21);
  const std::vector<float> values = random_vector(entries * prompt * heads * head_dim, 22);
  prompt_cache.append(keys.data(), values.data(), prompt * heads * head_dim, heads * head_dim, prompt);

  KVCache beam_cache;
  beam_cache.allocate(entries * beams, heads, prompt + 6, head_dim);
  std::vector<std::int64_t> source(static_cast<std::size_t>(entries * beams));
  for (std::int64_t row = 0; row < entries * beams; ++row) source[static_cast<std::size_t>(row)] = row / beams;
  beam_cache.assign_rows(prompt_cache, source.data());
  REQUIRE(beam_cache.length() == prompt);
  // Reference: each beam row equals its entry's row, element by element.
  for (std::int64_t row = 0; row < entries * beams; ++row)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t t = 0; t < prompt; ++t)
        for (std::int64_t d = 0; d < head_dim; ++d) {
          CHECK(beam_cache.keys().at(row, h, t)[d] == prompt_cache.keys().at(row / beams, h, t)[d]);
          CHECK(beam_cache.values().at(row, h, t)[d] == prompt_cache.values().at(row / beams, h, t)[d]);
        }
  // Appending continues after the copied prompt.
  const std::vector<float> next = random_vector(entries * beams * heads * head_dim, 23);
  beam_cache.append(next.data(), next.data(), heads * head_dim, heads * head_dim, 1);
  CHECK(beam_cache.length() == prompt + 1);
  CHECK(beam_cache.keys().at(4, 1, prompt)[2] == next[static_cast<std::size_t>((4 * heads + 1) * head_dim + 2)]);

  std::vector<std::int64_t> bad(source.size(), entries);  // row outside the source
  CHECK_THROWS_AS(beam_cache.assign_rows(prompt_cache, bad.data()), blip::Error);
  KVCache too_short;
  too_short.allocate(entries * beams, heads, prompt - 1, head_dim);
  CHECK_THROWS_AS(too_short.assign_rows(prompt_cache, source.data()), blip::Error);
}

}  // namespace kernels_kv_cache_test
