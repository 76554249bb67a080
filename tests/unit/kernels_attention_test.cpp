// Multi-head attention: the fast kernel against the double-precision
// reference over many shapes (odd sizes, one-token decode, ViT-sized
// prefill), view layouts (projected, fused qkv, head-major caches), masks,
// T5 position bias, the built-in causal mask and kv_group sharing.
//
// Tolerance per output element (also in the kernels documentation):
//   |out - ref| <= 2·eps·(4 + log2(Tk) + max|s| + scale·max‖q‖·max‖k‖)·max|v|
// where s are the scores after bias/mask: an error δ in the scores moves the
// output by at most 2·max δ·max|v|; δ is the float rounding of the dot
// products (~eps·scale·‖q‖‖k‖ with FMA accumulation), of the score itself
// (eps·|s|) and of exp / the sums (a few eps, log2(Tk) for the sums). The
// measured worst case over the shapes below is printed (a few percent of it).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blip/kernels/attention.hpp"
#include "test_support.hpp"

namespace kernels_attention_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

namespace {

constexpr double kEps = FLT_EPSILON;
constexpr double kBf16Unit = 1.0 / 512;  // bf16's unit roundoff, 2^-9
constexpr float kLowest = std::numeric_limits<float>::lowest();

enum class Layout { Projected, FusedQkv, HeadMajor };
enum class MaskKind { None, Padding, Full };

struct Case {
  std::int64_t rows = 1, heads = 1, query_tokens = 1, key_tokens = 1, head_dim = 8;
  std::int64_t kv_group = 1, mask_group = 1;
  Layout layout = Layout::Projected;
  MaskKind mask = MaskKind::None;
  float mask_value = -10000.0f;
  bool position_bias = false;
  bool causal = false;
  std::int64_t causal_offset = 0;
  float causal_mask_value = kLowest;
  float query_magnitude = 1.0f;
  std::uint32_t seed = 1;
};

std::vector<float> random_vector(std::int64_t count, float stddev, std::mt19937& generator) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (auto& v : values) v = normal(generator);
  return values;
}

double norm(const float* values, std::int64_t count) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < count; ++i) sum += static_cast<double>(values[i]) * values[i];
  return std::sqrt(sum);
}

// Buffers and views for one case; the output buffers of fast and reference
// runs have identical layouts.
struct Problem {
  Case c;
  std::vector<float> query_buffer, key_buffer, value_buffer, mask, bias, fast_output, reference_output;
  HeadsView query, key, value, fast_view, reference_view;
  AttentionOptions options;

  explicit Problem(const Case& test_case) : c(test_case) {
    std::mt19937 generator(c.seed);
    const std::int64_t hidden = c.heads * c.head_dim;
    const std::int64_t key_rows = (c.rows + c.kv_group - 1) / c.kv_group;
    if (c.layout == Layout::FusedQkv) {
      // One [rows, T, 3·hidden] buffer as a ViT's qkv Linear writes it (Tq = Tk, kv_group 1).
      REQUIRE(c.query_tokens == c.key_tokens);
      REQUIRE(c.kv_group == 1);
      query_buffer = random_vector(c.rows * c.query_tokens * 3 * hidden, 1.0f, generator);
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(query_buffer.size()); ++i)
        if (i % (3 * hidden) < hidden) query_buffer[i] *= c.query_magnitude;
      query = heads_view(query_buffer.data(), c.rows, c.query_tokens, c.heads, c.head_dim, 3 * hidden);
      key = heads_view(query_buffer.data() + hidden, c.rows, c.key_tokens, c.heads, c.head_dim, 3 * hidden);
      value = heads_view(query_buffer.data() + 2 * hidden, c.rows, c.key_tokens, c.heads, c.head_dim, 3 * hidden);
    } else {
      query_buffer = random_vector(c.rows * c.query_tokens * hidden, c.query_magnitude, generator);
      query = heads_view(query_buffer.data(), c.rows, c.query_tokens, c.heads, c.head_dim);
      if (c.layout == Layout::Projected) {
        key_buffer = random_vector(key_rows * c.key_tokens * hidden, 1.0f, generator);
        value_buffer = random_vector(key_rows * c.key_tokens * hidden, 1.0f, generator);
        key = heads_view(key_buffer.data(), key_rows, c.key_tokens, c.heads, c.head_dim);
        value = heads_view(value_buffer.data(), key_rows, c.key_tokens, c.heads, c.head_dim);
      } else {  // head-major cache with spare capacity (so head_stride != tokens·head_dim)
        const std::int64_t capacity = c.key_tokens + 3;
        key_buffer = random_vector(key_rows * c.heads * capacity * c.head_dim, 1.0f, generator);
        value_buffer = random_vector(key_rows * c.heads * capacity * c.head_dim, 1.0f, generator);
        key = head_major_view(key_buffer.data(), key_rows, c.heads, capacity, c.head_dim, c.key_tokens);
        value = head_major_view(value_buffer.data(), key_rows, c.heads, capacity, c.head_dim, c.key_tokens);
      }
    }
    fast_output.assign(static_cast<std::size_t>(c.rows * c.query_tokens * hidden), std::nanf(""));
    reference_output = fast_output;
    fast_view = heads_view(fast_output.data(), c.rows, c.query_tokens, c.heads, c.head_dim);
    reference_view = heads_view(reference_output.data(), c.rows, c.query_tokens, c.heads, c.head_dim);

    options.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    options.kv_group = c.kv_group;
    if (c.mask != MaskKind::None) {
      const std::int64_t mask_rows = (c.rows + c.mask_group - 1) / c.mask_group;
      const std::int64_t mask_query_tokens = c.mask == MaskKind::Full ? c.query_tokens : 1;
      mask.assign(static_cast<std::size_t>(mask_rows * mask_query_tokens * c.key_tokens), 0.0f);
      std::bernoulli_distribution drop(0.3);
      for (std::int64_t line = 0; line < mask_rows * mask_query_tokens; ++line)
        for (std::int64_t j = 1; j < c.key_tokens; ++j)  // key 0 always open
          if (drop(generator)) mask[line * c.key_tokens + j] = c.mask_value;
      options.additive_mask = mask.data();
      options.mask_group = c.mask_group;
      options.mask_query_tokens = mask_query_tokens;
    }
    if (c.position_bias) {
      bias = random_vector(c.heads * c.query_tokens * c.key_tokens, 2.0f, generator);
      options.position_bias = bias.data();
    }
    options.causal = c.causal;
    options.causal_offset = c.causal_offset;
    options.causal_mask_value = c.causal_mask_value;
  }

  // The bound in the header comment, per (row, head, token), checked over d.
  // Returns worst error / allowed.
  // `reference`: what reference_output holds: exact attention, or the reference that rounds the same operands
  // (bf16 products only).
  enum class Reference { Exact, SameRounding };
  double check_against_reference(Reference reference = Reference::Exact) const {
    double max_query = 0, max_key = 0, max_value = 0;
    for (std::int64_t r = 0; r < query.rows; ++r)
      for (std::int64_t h = 0; h < c.heads; ++h)
        for (std::int64_t t = 0; t < c.query_tokens; ++t) max_query = std::max(max_query, norm(query.at(r, h, t), c.head_dim));
    for (std::int64_t r = 0; r < key.rows; ++r)
      for (std::int64_t h = 0; h < c.heads; ++h)
        for (std::int64_t t = 0; t < c.key_tokens; ++t) {
          max_key = std::max(max_key, norm(key.at(r, h, t), c.head_dim));
          for (std::int64_t d = 0; d < c.head_dim; ++d) max_value = std::max<double>(max_value, std::fabs(value.at(r, h, t)[d]));
        }
    double max_bias = 0;
    for (float b : bias) max_bias = std::max<double>(max_bias, std::fabs(b));
    const double max_score = options.scale * max_query * max_key + max_bias;
    double allowed = 2.0 * kEps *
                     (4.0 + std::log2(static_cast<double>(c.key_tokens)) + max_score +
                      options.scale * max_query * max_key) *
                     max_value;
    // bf16 products: q, k, the softmax weights p and v each rounded to bf16 (relative error u = 2^-9). A score
    // moves by at most 2u·scale·‖q‖‖k‖, which moves the weights by at most twice that in L1; rounding p and v
    // adds 2u·Σp|v|. So |out - ref| <= (4u·scale·max‖q‖·max‖k‖ + 2u)·max|v|, allowed here with a factor 2.
    // Against the reference that rounds the same operands: f32's bound, plus what a softmax weight rounded to
    // bf16 the other way can move (f32 and double weights differ by a few ulp, so a weight next to a bf16 tie
    // may round to its other neighbour, by 2^-8 of itself: at most 2^-8 · max|v| over a row).
    if (reference == Reference::SameRounding)
      allowed += 2.0 * kBf16Unit * max_value;
    else if (options.products == ActivationPrecision::BF16)
      allowed += 2.0 * (4.0 * kBf16Unit * options.scale * max_query * max_key + 2.0 * kBf16Unit) * max_value;
    double worst = 0.0;
    for (std::size_t i = 0; i < fast_output.size(); ++i) {
      REQUIRE(!std::isnan(fast_output[i]));
      worst = std::max(worst, std::fabs(static_cast<double>(fast_output[i]) - reference_output[i]));
    }
    INFO("rows ", c.rows, " heads ", c.heads, " Tq ", c.query_tokens, " Tk ", c.key_tokens, " d ", c.head_dim,
         " kv_group ", c.kv_group, " worst ", worst, " allowed ", allowed);
    CHECK(worst <= allowed);
    return worst / allowed;
  }

  double run_and_check(KernelPath path = active_kernel_path()) {
    attention(query, key, value, options, fast_view, path);
    attention_naive(query, key, value, options, reference_view);
    return check_against_reference();
  }
};

}  // namespace

// Shapes, layouts, masks, biases, causal and kv_group cases, every one checked against the reference.
std::vector<Case> reference_cases() {
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(c); };
  {
    Case c;
    add(c);  // 1 × 1 × 1 × 1
  }
  for (Layout layout : {Layout::Projected, Layout::HeadMajor}) {
    Case c;
    c.layout = layout;
    c.rows = 2, c.heads = 3, c.query_tokens = 5, c.key_tokens = 7, c.head_dim = 8;
    add(c);
    c.rows = 3, c.heads = 2, c.query_tokens = 17, c.key_tokens = 33, c.head_dim = 13, c.seed = 2;
    add(c);
    c.rows = 2, c.heads = 12, c.query_tokens = 1, c.key_tokens = 41, c.head_dim = 64, c.seed = 3;  // decode
    add(c);
    c.rows = 1, c.heads = 4, c.query_tokens = 259, c.key_tokens = 3, c.head_dim = 5, c.seed = 4;  // 3 query blocks
    add(c);
  }
  {
    Case c;  // ViT-like fused qkv, 129 tokens (two query blocks), big scores
    c.layout = Layout::FusedQkv;
    c.rows = 2, c.heads = 4, c.query_tokens = c.key_tokens = 129, c.head_dim = 16, c.query_magnitude = 3.0f;
    add(c);
    c.rows = 1, c.heads = 2, c.query_tokens = c.key_tokens = 577, c.head_dim = 64, c.query_magnitude = 1.0f;  // ViT-B
    add(c);
    c.rows = 1, c.heads = 1, c.query_tokens = c.key_tokens = 257, c.head_dim = 88;  // ViT-g head
    add(c);
  }
  {
    Case c;  // masks: padding broadcast over queries, per-query, shared by mask_group rows, finfo.min values
    c.rows = 4, c.heads = 3, c.query_tokens = 9, c.key_tokens = 23, c.head_dim = 12, c.mask = MaskKind::Padding;
    add(c);
    c.mask = MaskKind::Full, c.seed = 5;
    add(c);
    c.mask = MaskKind::Padding, c.mask_group = 2, c.mask_value = kLowest, c.seed = 6;
    add(c);
  }
  {
    Case c;  // T5: position bias, scale 1 handled by the options test below; bias + mask
    c.rows = 2, c.heads = 4, c.query_tokens = 6, c.key_tokens = 6, c.head_dim = 8, c.position_bias = true;
    add(c);
    c.mask = MaskKind::Padding, c.mask_value = kLowest, c.seed = 7;
    add(c);
    c.causal = true, c.seed = 8;
    add(c);
  }
  {
    Case c;  // causal prefill and causal decode with a cache offset, -10000 (BLIP) and lowest (OPT)
    c.rows = 3, c.heads = 2, c.query_tokens = 11, c.key_tokens = 11, c.head_dim = 16, c.causal = true;
    c.causal_mask_value = -10000.0f, c.mask = MaskKind::Padding;
    add(c);
    c.query_tokens = 3, c.key_tokens = 14, c.causal_offset = 11, c.causal_mask_value = kLowest, c.seed = 9;
    add(c);
    c.query_tokens = 1, c.causal_offset = 13, c.layout = Layout::HeadMajor, c.seed = 10;
    add(c);
  }
  {
    Case c;  // kv_group: beams sharing one image's keys (decode stacks the group), partial last group
    c.rows = 6, c.heads = 3, c.query_tokens = 1, c.key_tokens = 17, c.head_dim = 8, c.kv_group = 3;
    add(c);
    c.rows = 5, c.seed = 11;
    add(c);
    c.rows = 6, c.query_tokens = 4, c.mask = MaskKind::Padding, c.mask_group = 3, c.seed = 12;
    add(c);
    c.rows = 9, c.heads = 16, c.query_tokens = 1, c.key_tokens = 257, c.head_dim = 88, c.kv_group = 3;  // ViT-g cross
    c.mask = MaskKind::None, c.layout = Layout::HeadMajor, c.seed = 13;
    add(c);
  }
  return cases;
}

TEST_CASE("attention matches the double reference over shapes and layouts, on every kernel path") {
  const std::vector<Case> cases = reference_cases();
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    double worst_ratio = 0.0;
    for (const Case& c : cases) {
      INFO("path ", std::string(kernel_path_name(path)), " rows ", c.rows, " heads ", c.heads, " Tq ", c.query_tokens, " Tk ",
           c.key_tokens, " d ", c.head_dim);
      Problem problem(c);
      worst_ratio = std::max(worst_ratio, problem.run_and_check(path));
    }
    MESSAGE(std::string(kernel_path_name(path)), ": worst error / allowed over ", cases.size(), " cases: ", worst_ratio);
  }
}

TEST_CASE("bf16 products match the double reference within bf16's bound, on every kernel path") {
  const std::vector<Case> cases = reference_cases();
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    const bool bf16_dot = kernels::detail::bf16_attention_uses_dot_product(path);
    MESSAGE("bf16 products on ", std::string(kernel_path_name(path)), ": ",
            std::string(bf16_dot ? "vdpbf16ps" : "the f32 kernels on operands rounded to bf16"));
    // vdpbf16ps exactly where the path has it: avx512-bf16 and amx (which kernel_path_supported vouches the CPU
    // runs).
    CHECK(bf16_dot == (path == KernelPath::Avx512Bf16 || path == KernelPath::Amx));
    double worst_ratio = 0.0, worst_emulated_ratio = 0.0;
    for (const Case& c : cases) {
      INFO("path ", std::string(kernel_path_name(path)), " rows ", c.rows, " heads ", c.heads, " Tq ", c.query_tokens, " Tk ",
           c.key_tokens, " d ", c.head_dim);
      Problem problem(c);
      problem.options.products = ActivationPrecision::BF16;
      // Against exact (double) attention: within the error bf16 operands allow (the header's bound).
      AttentionOptions exact = problem.options;
      exact.products = ActivationPrecision::F32;
      attention(problem.query, problem.key, problem.value, problem.options, problem.fast_view, path);
      attention_naive(problem.query, problem.key, problem.value, exact, problem.reference_view);
      worst_ratio = std::max(worst_ratio, problem.check_against_reference());
      if (c.query_tokens > 1) {
        // Against the reference that rounds the same operands (check_against_reference's SameRounding bound).
        attention_naive(problem.query, problem.key, problem.value, problem.options, problem.reference_view);
        worst_emulated_ratio =
            std::max(worst_emulated_ratio, problem.check_against_reference(Problem::Reference::SameRounding));
      }
      // The f32 products on the same inputs: identical for a single query token (decode stays f32), different
      // otherwise (the inputs are random, so some operand rounds to bf16).
      Problem f32(c);
      attention(f32.query, f32.key, f32.value, f32.options, f32.fast_view, path);
      if (c.query_tokens > 1)
        CHECK(problem.fast_output != f32.fast_output);
      else
        CHECK(problem.fast_output == f32.fast_output);
    }
    MESSAGE(std::string(kernel_path_name(path)), ": bf16 products: worst error / allowed over ", cases.size(), " cases: ",
            worst_ratio, "; against the reference rounding the same operands: ", worst_emulated_ratio);
  }
}

TEST_CASE("fully masked rows: uniform weights with finfo.min, HF's float rounding with -10000, never NaN") {
  for (float mask_value : {kLowest, -10000.0f}) {
    Case c;
    c.rows = 2, c.heads = 2, c.query_tokens = 3, c.key_tokens = 9, c.head_dim = 8, c.mask = MaskKind::Padding;
    c.mask_value = mask_value;
    Problem problem(c);
    std::fill(problem.mask.begin(), problem.mask.begin() + c.key_tokens, mask_value);  // row 0: every key masked
    attention(problem.query, problem.key, problem.value, problem.options, problem.fast_view);
    attention_naive(problem.query, problem.key, problem.value, problem.options, problem.reference_view);
    for (float v : problem.fast_output) CHECK(!std::isnan(v));
    for (std::int64_t h = 0; h < c.heads; ++h) {
      for (std::int64_t t = 0; t < c.query_tokens; ++t) {
        const float* out = problem.fast_view.at(0, h, t);
        const float* reference = problem.reference_view.at(0, h, t);
        for (std::int64_t d = 0; d < c.head_dim; ++d) {
          if (mask_value == kLowest) {
            // Every score rounds to finfo.min: the average of the values.
            double mean = 0.0;
            for (std::int64_t j = 0; j < c.key_tokens; ++j) mean += problem.value.at(0, h, j)[d];
            mean /= static_cast<double>(c.key_tokens);
            CHECK(out[d] == doctest::Approx(mean).epsilon(1e-5).scale(1.0));
          } else {
            // Scores survive to within ulp(10000) ≈ 1e-3: fast and reference may round a
            // score to neighbouring grid points, so weights agree to ~2e-3.
            CHECK(std::fabs(out[d] - reference[d]) <= 4e-3 * 4.0);
          }
        }
      }
    }
    // And -10000 gives a result that differs from the uniform average (HF's behaviour).
    if (mask_value == -10000.0f) {
      double mean = 0.0;
      for (std::int64_t j = 0; j < c.key_tokens; ++j) mean += problem.value.at(0, 0, j)[0];
      CHECK(std::fabs(problem.fast_view.at(0, 0, 0)[0] - mean / c.key_tokens) > 1e-3);
    }
  }
}

TEST_CASE("the built-in causal mask equals HF's combined additive mask (one value, not a sum)") {
  // BLIP text: extended = causal[i, j] · padding[j]; mask = (1 - extended)·-10000.
  for (std::int64_t offset : {0, 4}) {
    const std::int64_t rows = 2, heads = 2, query_tokens = 5, key_tokens = query_tokens + offset, head_dim = 8;
    Case c;
    c.rows = rows, c.heads = heads, c.query_tokens = query_tokens, c.key_tokens = key_tokens, c.head_dim = head_dim;
    c.mask = MaskKind::Padding, c.causal = true, c.causal_offset = offset, c.causal_mask_value = -10000.0f;
    Problem built_in(c);
    attention(built_in.query, built_in.key, built_in.value, built_in.options, built_in.fast_view);

    std::vector<float> combined(rows * query_tokens * key_tokens);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t i = 0; i < query_tokens; ++i)
        for (std::int64_t j = 0; j < key_tokens; ++j) {
          const bool padding_open = built_in.mask[r * key_tokens + j] == 0.0f;
          const bool causal_open = j <= i + offset;
          combined[(r * query_tokens + i) * key_tokens + j] = (padding_open && causal_open) ? 0.0f : -10000.0f;
        }
    AttentionOptions explicit_options;
    explicit_options.scale = built_in.options.scale;
    explicit_options.additive_mask = combined.data();
    explicit_options.mask_query_tokens = query_tokens;
    std::vector<float> explicit_output(built_in.fast_output.size());
    const HeadsView explicit_view = heads_view(explicit_output.data(), rows, query_tokens, heads, head_dim);
    attention(built_in.query, built_in.key, built_in.value, explicit_options, explicit_view);
    CHECK(explicit_output == built_in.fast_output);  // same float operations: bit-identical

    // Causality is real: changing a future key does not change earlier outputs.
    std::vector<float> saved = built_in.fast_output;
    const std::int64_t last = key_tokens - 1;
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t d = 0; d < head_dim; ++d) built_in.value.at(0, h, last)[d] += 100.0f;
    attention(built_in.query, built_in.key, built_in.value, built_in.options, built_in.fast_view);
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i + offset < last; ++i)
        for (std::int64_t d = 0; d < head_dim; ++d)
          CHECK(built_in.fast_view.at(0, h, i)[d] == saved[(i * heads + h) * head_dim + d]);
  }
}

TEST_CASE("kv_group sharing equals explicitly repeated keys and values") {
  const std::int64_t images = 2, beams = 3, heads = 4, key_tokens = 19, head_dim = 8;
  for (std::int64_t query_tokens : {1, 3}) {
    Case c;
    c.rows = images * beams, c.heads = heads, c.query_tokens = query_tokens, c.key_tokens = key_tokens;
    c.head_dim = head_dim, c.kv_group = beams;
    Problem shared(c);
    attention(shared.query, shared.key, shared.value, shared.options, shared.fast_view);
    // Repeat each image's keys / values beams times, like HF's repeat_interleave.
    const std::int64_t image_size = key_tokens * heads * head_dim;
    std::vector<float> keys, values;
    for (std::int64_t image = 0; image < images; ++image)
      for (std::int64_t beam = 0; beam < beams; ++beam) {
        keys.insert(keys.end(), shared.key_buffer.begin() + image * image_size,
                    shared.key_buffer.begin() + (image + 1) * image_size);
        values.insert(values.end(), shared.value_buffer.begin() + image * image_size,
                      shared.value_buffer.begin() + (image + 1) * image_size);
      }
    AttentionOptions options = shared.options;
    options.kv_group = 1;
    std::vector<float> output(shared.fast_output.size());
    attention(shared.query, heads_view(keys.data(), images * beams, key_tokens, heads, head_dim),
              heads_view(values.data(), images * beams, key_tokens, heads, head_dim), options,
              heads_view(output.data(), images * beams, query_tokens, heads, head_dim));
    // Same arithmetic except that stacked decode rows share one GEMM: equal to rounding.
    for (std::size_t i = 0; i < output.size(); ++i) CHECK(std::fabs(output[i] - shared.fast_output[i]) <= 2e-6f);
  }
}

TEST_CASE("the output may overwrite the query view") {
  Case c;
  c.layout = Layout::FusedQkv;
  c.rows = 2, c.heads = 3, c.query_tokens = c.key_tokens = 150, c.head_dim = 8;  // two query blocks
  Problem problem(c);
  attention(problem.query, problem.key, problem.value, problem.options, problem.fast_view);
  // Write the result over the query columns of the qkv buffer: no query block is read after it was written.
  // Key/value columns are untouched, so the result must equal the separate-output run.
  attention(problem.query, problem.key, problem.value, problem.options, problem.query);
  for (std::int64_t r = 0; r < c.rows; ++r)
    for (std::int64_t h = 0; h < c.heads; ++h)
      for (std::int64_t t = 0; t < c.query_tokens; ++t)
        for (std::int64_t d = 0; d < c.head_dim; ++d) CHECK(problem.query.at(r, h, t)[d] == problem.fast_view.at(r, h, t)[d]);
}

TEST_CASE("mask_key_stride lets a [rows, capacity] decode mask serve a shorter cache") {
  Case c;
  c.rows = 3, c.heads = 2, c.query_tokens = 1, c.key_tokens = 6, c.head_dim = 8, c.mask = MaskKind::Padding;
  Problem problem(c);
  const std::int64_t capacity = 10;
  std::vector<float> wide(c.rows * capacity, 12345.0f);  // garbage past the current length
  for (std::int64_t r = 0; r < c.rows; ++r)
    std::copy(problem.mask.begin() + r * c.key_tokens, problem.mask.begin() + (r + 1) * c.key_tokens,
              wide.begin() + r * capacity);
  attention(problem.query, problem.key, problem.value, problem.options, problem.fast_view);
  AttentionOptions strided = problem.options;
  strided.additive_mask = wide.data();
  strided.mask_key_stride = capacity;
  attention(problem.query, problem.key, problem.value, strided, problem.reference_view);
  CHECK(problem.fast_output == problem.reference_output);
}

TEST_CASE("attention rejects inconsistent views with a clear message") {
  Case c;
  c.rows = 4, c.heads = 2, c.query_tokens = 2, c.key_tokens = 3, c.head_dim = 4;
  Problem problem(c);
  AttentionOptions options = problem.options;
  options.kv_group = 3;  // 4 query rows need 2 key rows, the view has 4
  CHECK_THROWS_WITH_AS(attention(problem.query, problem.key, problem.value, options, problem.fast_view),
                       doctest::Contains("need 2 key/value rows"), blip::Error);
  HeadsView wrong_heads = problem.key;
  wrong_heads.heads = 1;
  CHECK_THROWS_WITH_AS(attention(problem.query, wrong_heads, problem.value, problem.options, problem.fast_view),
                       doctest::Contains("head counts differ"), blip::Error);
  options = problem.options;
  options.additive_mask = problem.query_buffer.data();
  options.mask_query_tokens = 5;
  CHECK_THROWS_WITH_AS(attention(problem.query, problem.key, problem.value, options, problem.fast_view),
                       doctest::Contains("mask_query_tokens"), blip::Error);
}

}  // namespace kernels_attention_test
