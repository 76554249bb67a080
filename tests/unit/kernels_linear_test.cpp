// Tests of blip/kernels/linear.hpp: every instruction-set path against the
// double-precision naive reference, at odd shapes, strides and row counts.
//
// Error bound. Each output is a dot product of length K = in_features summed in
// f32 (FMA, in an order that depends on the path and the blocking). The
// classical bound is |ŷ - y| ≤ γ_K Σ_k |x_k w_k| ≈ K·u·‖x‖₂‖w‖₂, but it is
// attained only by adversarial inputs; for random inputs the rounding errors
// are independent and the error grows like √K·u·‖x‖₂‖w‖₂ at most. The check
// used, per output element (r, o), is
//     |y - y_ref| ≤ 4 · ε_f32 · √K · ‖x_r‖₂ · ‖W_o‖₂ + 2 · ε_f32 · |b_o|
// (the naive reference accumulates in double, so its own error is negligible
// beyond the final rounding to f32, covered by the same terms). For K = 768 and
// inputs uniform in [-1, 1] that is ≈ 3e-3 while a single product term |x_k w_k|
// is 0.25 on average, so a dropped, doubled or misplaced term fails the check
// (see "the tolerance detects a single wrong term").
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "blip/kernels/linear.hpp"
#include "test_support.hpp"

namespace kernels_linear_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::Error;
using blip::Shape;
using blip::Tensor;
using blip::kernels::KernelPath;
using blip::kernels::LinearWeights;
namespace kernel_detail = blip::kernels::detail;

constexpr float kEpsilon = std::numeric_limits<float>::epsilon();

Tensor<float> random_tensor(const Shape& shape, std::mt19937& generator, float low = -1.0f, float high = 1.0f) {
  Tensor<float> tensor(shape);
  std::uniform_real_distribution<float> distribution(low, high);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = distribution(generator);
  return tensor;
}

double row_norm(const float* row, std::int64_t length) {
  double sum = 0;
  for (std::int64_t i = 0; i < length; ++i) sum += static_cast<double>(row[i]) * row[i];
  return std::sqrt(sum);
}

// Every weight format with each activation precision it can take.
struct Format {
  blip::WeightPrecision weights;
  blip::ActivationPrecision activations;
};
const Format kEveryFormat[] = {{blip::WeightPrecision::F32, blip::ActivationPrecision::F32},
                               {blip::WeightPrecision::BF16, blip::ActivationPrecision::F32},
                               {blip::WeightPrecision::F16, blip::ActivationPrecision::F32},
                               {blip::WeightPrecision::Int8, blip::ActivationPrecision::F32},
                               {blip::WeightPrecision::Int4, blip::ActivationPrecision::F32},
                               {blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16},
                               {blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8},
                               {blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8}};

// A kernel set under test: a dispatchable path, or the plain-array kernels.
struct Variant {
  std::string name;
  kernel_detail::MicroKernelSet kernels;
};

std::vector<Variant> variants_to_test(blip::WeightPrecision precision = blip::WeightPrecision::F32,
                                      blip::ActivationPrecision activations = blip::ActivationPrecision::F32) {
  std::vector<Variant> variants;
  const std::string suffix = std::string(" ") + blip::weight_precision_name(precision) + " weights, " +
                             blip::activation_precision_name(activations) + " activations";
  for (KernelPath path : blip::kernels::kAllKernelPaths) {
    if (blip::kernels::kernel_path_supported(path))
      variants.push_back({blip::kernels::kernel_path_name(path) + suffix,
                          kernel_detail::linear_micro_kernels(path, precision, activations)});
    else
      MESSAGE("kernel path ", std::string(blip::kernels::kernel_path_name(path)), " not supported here: not tested");
  }
  kernel_detail::MicroKernelSet plain = kernel_detail::linear_micro_kernels_plain(precision);
  if (activations == blip::ActivationPrecision::BF16 && precision == blip::WeightPrecision::BF16)
    plain.row_packing = kernel_detail::RowPacking::F32RoundedToBF16;
  if (activations == blip::ActivationPrecision::Int8 &&
      (precision == blip::WeightPrecision::Int8 || precision == blip::WeightPrecision::Int4))
    plain.row_packing = kernel_detail::RowPacking::F32RoundedToInt8;
  variants.push_back({"plain" + suffix, plain});
  // The amx path's kernel on the scalar model of the tile instructions (detail/amx_tiles.hpp), on every CPU; a CPU
  // with AMX also runs the instructions themselves above, as the amx path.
  if (activations == blip::ActivationPrecision::BF16 && precision == blip::WeightPrecision::BF16)
    variants.push_back({"amx on emulated tiles" + suffix, kernel_detail::linear_micro_kernels_amx_bf16_emulated()});
#if BLIP_X86_DISPATCH
  // The avx2 path's integer kernels with vpmaddubsw, which it runs on CPUs without AVX-VNNI, also on a CPU with it
  // (the avx2 path above then runs the vpdpbusd ones).
  if (activations == blip::ActivationPrecision::Int8 &&
      (precision == blip::WeightPrecision::Int8 || precision == blip::WeightPrecision::Int4) &&
      blip::kernels::kernel_path_supported(KernelPath::Avx2) && blip::kernels::avx2_int8_dot_supported())
    variants.push_back({"avx2 with vpmaddubsw (as without AVX-VNNI)" + suffix,
                        kernel_detail::linear_micro_kernels_avx2_integer<kernel_detail::Avx2MaddDot>(precision)});
#endif
  return variants;
}

// One linear problem with its inputs and the reference output.
struct Problem {
  std::int64_t rows, in, out, x_stride, y_stride;
  Tensor<float> x;  // [rows, x_stride]
  Tensor<float> weight, bias;
  LinearWeights weights;
};

Problem make_problem(std::int64_t rows, std::int64_t in, std::int64_t out, bool with_bias, std::int64_t x_padding,
                     std::int64_t y_padding, std::mt19937& generator, float low = -1.0f, float high = 1.0f,
                     blip::WeightPrecision precision = blip::WeightPrecision::F32,
                     blip::ActivationPrecision activations = blip::ActivationPrecision::F32) {
  Problem problem{rows, in, out, in + x_padding, out + y_padding, {}, {}, {}, {}};
  problem.x = random_tensor(Shape{std::max<std::int64_t>(rows, 1), problem.x_stride}, generator, low, high);
  problem.weight = random_tensor(Shape{out, in}, generator, low, high);
  if (with_bias) problem.bias = random_tensor(Shape{out}, generator);
  problem.weights = LinearWeights::prepare(problem.weight, problem.bias, precision, activations);
  return problem;
}

// Largest |y - y_ref| / bound over the given rows (≤ 1 passes). Checks that
// the padding between output rows was not written (it holds NaN sentinels).
double worst_error_ratio(const Problem& problem, const float* y, const float* reference,
                         const std::vector<std::int64_t>& rows_to_check) {
  double worst = 0;
  for (std::int64_t r : rows_to_check) {
    const double x_norm = row_norm(problem.x.data() + r * problem.x_stride, problem.in);
    for (std::int64_t o = 0; o < problem.out; ++o) {
      const double w_norm = row_norm(problem.weight.data() + o * problem.in, problem.in);
      const double bias = problem.bias.empty() ? 0.0 : std::abs(problem.bias.data()[o]);
      const double bound = 4.0 * kEpsilon * std::sqrt(static_cast<double>(problem.in)) * x_norm * w_norm +
                           2.0 * kEpsilon * bias + 1e-30;
      const double difference = std::abs(static_cast<double>(y[r * problem.y_stride + o]) -
                                         static_cast<double>(reference[r * problem.y_stride + o]));
      if (std::isnan(difference)) return std::numeric_limits<double>::infinity();
      worst = std::max(worst, difference / bound);
    }
    for (std::int64_t o = problem.out; o < problem.y_stride; ++o) {
      if (!std::isnan(y[r * problem.y_stride + o])) return std::numeric_limits<double>::infinity();
    }
  }
  return worst;
}

std::vector<std::int64_t> all_rows(std::int64_t rows) {
  std::vector<std::int64_t> list;
  for (std::int64_t r = 0; r < rows; ++r) list.push_back(r);
  return list;
}

std::vector<float> nan_filled(std::int64_t count) {
  return std::vector<float>(static_cast<std::size_t>(std::max<std::int64_t>(count, 1)),
                            std::numeric_limits<float>::quiet_NaN());
}

// Runs `variant` and the naive reference on `problem`; returns the worst error ratio.
double run_and_compare(const Variant& variant, const Problem& problem) {
  std::vector<float> y = nan_filled(problem.rows * problem.y_stride);
  std::vector<float> reference = nan_filled(problem.rows * problem.y_stride);
  kernel_detail::check_linear_arguments(problem.x.data(), problem.x_stride, problem.rows, problem.weights, y.data(),
                                        problem.y_stride);
  kernel_detail::linear_blocked(variant.kernels, problem.x.data(), problem.x_stride, problem.rows, problem.weights,
                                y.data(), problem.y_stride);
  blip::kernels::linear_naive(problem.x.data(), problem.x_stride, problem.rows, problem.weights, reference.data(),
                              problem.y_stride);
  return worst_error_ratio(problem, y.data(), reference.data(), all_rows(problem.rows));
}

}  // namespace

TEST_CASE("linear: every kernel path matches the naive reference at odd shapes, strides, with and without bias") {
  std::mt19937 generator(20240601);
  struct Shape3 {
    std::int64_t rows, in, out;
  };
  // Odd sizes (not multiples of 8/16/32), sizes crossing the depth block (384),
  // the row block (192) and the register tiles (3, 6, 12 rows).
  const Shape3 shapes[] = {{1, 1, 1},     {1, 1, 5},     {3, 17, 5},    {7, 33, 65},    {2, 64, 31},
                           {5, 100, 33},  {8, 300, 97},  {12, 16, 32},  {13, 385, 64},  {25, 769, 70},
                           {1, 768, 3072}, {3, 768, 100}, {40, 768, 96}, {200, 400, 100}, {3, 2560, 40},
                           {37, 1, 9},    {6, 7, 1}};
  for (const Variant& variant : variants_to_test()) {
    double worst_ratio = 0;
    for (const Shape3& shape : shapes) {
      for (bool with_bias : {true, false}) {
        for (std::int64_t padding : {0, 3}) {
          const Problem problem =
              make_problem(shape.rows, shape.in, shape.out, with_bias, padding, padding * 2 + 1, generator);
          CAPTURE(variant.name);
          CAPTURE(shape.rows);
          CAPTURE(shape.in);
          CAPTURE(shape.out);
          CAPTURE(with_bias);
          CAPTURE(padding);
          const double ratio = run_and_compare(variant, problem);
          worst_ratio = std::max(worst_ratio, ratio);
          CHECK(ratio <= 1.0);
        }
      }
    }
    MESSAGE(variant.name, ": largest error / bound = ", worst_ratio);
  }
}

TEST_CASE("linear: every width of a partial last panel, one-pass and two-pass tiles, every path and weight format") {
  // The last panel of a layer holds out % 32 features; kernels store it through masks (AVX-512, the AVX2 path's
  // vmaskmovps) or lane loops. The AVX2 path covers a panel in one pass of 32 columns for 1-3 rows and in two of
  // 16 for 4-6, so widths on both sides of 8, 16 and 24 meet both. 13 rows × 400 inputs: the depth-blocked
  // driver, whose second depth block adds to the stored tile.
  std::mt19937 generator(33);
  for (blip::WeightPrecision precision : {blip::WeightPrecision::F32, blip::WeightPrecision::BF16,
                                          blip::WeightPrecision::F16, blip::WeightPrecision::Int8,
                                          blip::WeightPrecision::Int4}) {
    for (const Variant& variant : variants_to_test(precision)) {
      double worst_ratio = 0;
      for (std::int64_t out = 33; out <= 64; ++out) {
        for (const auto& [rows, in] : {std::pair<std::int64_t, std::int64_t>{1, 37}, {3, 37}, {5, 37}, {13, 400}}) {
          const Problem problem = make_problem(rows, in, out, out % 2 == 0, 1, 3, generator, -1.0f, 1.0f, precision);
          CAPTURE(variant.name);
          CAPTURE(rows);
          CAPTURE(out);
          const double ratio = run_and_compare(variant, problem);
          worst_ratio = std::max(worst_ratio, ratio);
          CHECK(ratio <= 1.0);
        }
      }
      MESSAGE(variant.name, ": largest error / bound = ", worst_ratio);
    }
  }
}

TEST_CASE("linear: every row count of the decode and register-tile range, every path") {
  std::mt19937 generator(7);
  for (const Variant& variant : variants_to_test()) {
    for (std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 24, 25}) {
      const Problem problem = make_problem(rows, 129, 70, true, 1, 2, generator);
      CAPTURE(variant.name);
      CAPTURE(rows);
      CHECK(run_and_compare(variant, problem) <= 1.0);
    }
  }
}

TEST_CASE("linear: a row's outputs do not depend on the rows that come with it, both drivers, every path") {
  // Up to 12 rows, decode streams each panel once and runs every row tile over the whole depth
  // (linear_streamed_panels); more rows go to the depth-blocked driver (linear_many_rows), whose tiles resume the
  // previous block's raw sums (MicroTile::resume), so beams and batched images get bit for bit what one row alone
  // gets, whatever their number. 769 inputs: three depth blocks. (Before session 15 the blocked driver added
  // finished block sums, and 13 or more rows differed from one row in the last bits: BLIP-base captions of 5
  // images x 3 beams had other beam scores than each image alone.)
  std::mt19937 generator(12);
  for (const Format& precision : kEveryFormat) {
    const Problem problem = make_problem(203, 769, 70, true, 1, 2, generator, -1.0f, 1.0f, precision.weights,
                                         precision.activations);
    for (const Variant& variant : variants_to_test(precision.weights, precision.activations)) {
      // Not the plain-array kernels (compilers without vector extensions): there the compiler chooses the
      // arithmetic of each row-count instantiation, and GCC 12 makes them differ in the last bits (f32, int4).
      if (variant.name.rfind("plain", 0) == 0) continue;
      std::vector<float> alone = nan_filled(problem.rows * problem.y_stride);
      for (std::int64_t r = 0; r < problem.rows; ++r) {
        kernel_detail::linear_blocked(variant.kernels, problem.x.data() + r * problem.x_stride, problem.x_stride, 1,
                                      problem.weights, alone.data() + r * problem.y_stride, problem.y_stride);
      }
      for (std::int64_t rows : {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 25, 37, 203}) {
        std::vector<float> together = nan_filled(rows * problem.y_stride);
        kernel_detail::linear_blocked(variant.kernels, problem.x.data(), problem.x_stride, rows, problem.weights,
                                      together.data(), problem.y_stride);
        CAPTURE(variant.name);
        CAPTURE(rows);
        std::int64_t differing = 0;
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t o = 0; o < problem.out; ++o)
            differing += together[r * problem.y_stride + o] != alone[r * problem.y_stride + o];
        CHECK(differing == 0);
      }
    }
  }
}

TEST_CASE("decode tiles: full tiles first, or balanced; either way every row in exactly one tile of at most max_rows") {
  for (bool balanced : {false, true}) {
    for (int max_rows = 1; max_rows <= 12; ++max_rows) {
      kernel_detail::MicroKernelSet kernels;
      kernels.max_rows = max_rows;
      kernels.balanced_decode_tiles = balanced;
      for (std::int64_t rows = 1; rows <= 12; ++rows) {
        const kernel_detail::DecodeTiles tiles(kernels, rows);
        CAPTURE(balanced);
        CAPTURE(max_rows);
        CAPTURE(rows);
        CHECK(tiles.count == (rows + max_rows - 1) / max_rows);
        std::int64_t next_row = 0, smallest = rows, largest = 0;
        for (std::int64_t tile = 0; tile < tiles.count; ++tile) {
          CHECK(tiles.first_row(tile) == next_row);
          CHECK(tiles.rows_of(tile) >= 1);
          CHECK(tiles.rows_of(tile) <= tiles.largest);
          next_row += tiles.rows_of(tile);
          smallest = std::min(smallest, tiles.rows_of(tile));
          largest = std::max(largest, tiles.rows_of(tile));
        }
        CHECK(next_row == rows);
        CHECK(largest == tiles.largest);
        CHECK(tiles.largest <= max_rows);
        if (balanced) CHECK(largest - smallest <= 1);
        else CHECK(tiles.rows_of(0) == std::min<std::int64_t>(rows, max_rows));
      }
    }
  }
  kernel_detail::MicroKernelSet eight;
  eight.max_rows = 8;
  eight.balanced_decode_tiles = true;
  const kernel_detail::DecodeTiles twelve(eight, 12), nine(eight, 9);
  CHECK((twelve.rows_of(0) == 6 && twelve.rows_of(1) == 6));
  CHECK((nine.rows_of(0) == 5 && nine.rows_of(1) == 4 && nine.first_row(1) == 5));
}

TEST_CASE("linear: all-positive inputs (sums grow with K) stay within the bound") {
  std::mt19937 generator(99);
  for (const Variant& variant : variants_to_test()) {
    const Problem problem = make_problem(14, 3072, 40, true, 0, 0, generator, 0.0f, 1.0f);
    CAPTURE(variant.name);
    CHECK(run_and_compare(variant, problem) <= 1.0);
  }
}

TEST_CASE("linear: a ViT-B qkv projection (577x768 -> 2304) through the public call, rows checked in part") {
  std::mt19937 generator(577);
  const Problem problem = make_problem(577, 768, 2304, true, 0, 0, generator);
  std::vector<float> y = nan_filled(577 * 2304);
  blip::kernels::linear(problem.x.data(), 768, 577, problem.weights, y.data(), 2304);
  // The naive reference costs 1e9 multiply-adds for all rows; check the first
  // and last register tiles and row blocks, and the final single-row tile.
  std::vector<float> reference = nan_filled(577 * 2304);
  std::vector<std::int64_t> rows_to_check;
  for (std::int64_t r = 0; r < 577; ++r)
    if (r < 14 || (r >= 190 && r < 206) || r >= 560) rows_to_check.push_back(r);
  for (std::int64_t r : rows_to_check)
    blip::kernels::linear_naive(problem.x.data() + r * 768, 768, 1, problem.weights, reference.data() + r * 2304, 2304);
  CAPTURE(std::string(blip::kernels::kernel_path_name(blip::kernels::active_kernel_path())));
  CHECK(worst_error_ratio(problem, y.data(), reference.data(), rows_to_check) <= 1.0);
}

TEST_CASE("linear: the tolerance detects a single wrong term") {
  // If the kernels dropped one product x_k·w_k the result would move by about
  // |x_k w_k|; the bound must be far below that, or the tests above could not fail.
  std::mt19937 generator(3);
  const Problem problem = make_problem(4, 768, 64, true, 0, 0, generator);
  std::vector<float> y = nan_filled(4 * 64), reference = nan_filled(4 * 64);
  blip::kernels::linear(problem.x.data(), 768, 4, problem.weights, y.data(), 64);
  blip::kernels::linear_naive(problem.x.data(), 768, 4, problem.weights, reference.data(), 64);
  REQUIRE(worst_error_ratio(problem, y.data(), reference.data(), all_rows(4)) <= 1.0);
  // Drop the last term from the output where it is largest (|x_k w_k| close to 1).
  std::int64_t worst_row = 0, worst_output = 0;
  double term = 0;
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t o = 0; o < 64; ++o) {
      const double candidate = std::abs(problem.x.data()[r * 768 + 767] * problem.weight.data()[o * 768 + 767]);
      if (candidate > term) term = candidate, worst_row = r, worst_output = o;
    }
  REQUIRE(term > 0.1);
  y[worst_row * 64 + worst_output] -=
      problem.x.data()[worst_row * 768 + 767] * problem.weight.data()[worst_output * 768 + 767];
  CHECK(worst_error_ratio(problem, y.data(), reference.data(), all_rows(4)) > 10.0);
  // And the bound itself, for this shape, is a few thousandths.
  const double bound = 4.0 * kEpsilon * std::sqrt(768.0) * row_norm(problem.x.data(), 768) *
                       row_norm(problem.weight.data(), 768);
  CHECK(bound < 0.01);
}

TEST_CASE("linear: results do not depend on the number of threads (bitwise)") {
  std::mt19937 generator(11);
  const int threads_before = blip::num_threads();
  for (std::int64_t rows : {1, 5, 64, 300}) {
    const Problem problem = make_problem(rows, 500, 300, true, 0, 0, generator);
    std::vector<float> serial(static_cast<std::size_t>(rows * 300)), parallel(serial.size());
    blip::set_num_threads(1);
    blip::kernels::linear(problem.x.data(), 500, rows, problem.weights, serial.data(), 300);
    blip::set_num_threads(2);
    blip::kernels::linear(problem.x.data(), 500, rows, problem.weights, parallel.data(), 300);
    CAPTURE(rows);
    CHECK(serial == parallel);
  }
  blip::set_num_threads(threads_before);
}

TEST_CASE("linear: one LinearWeights used concurrently from several threads") {
  std::mt19937 generator(5);
  const Problem problem = make_problem(30, 200, 150, true, 0, 0, generator);
  std::vector<float> expected(30 * 150);
  blip::kernels::linear(problem.x.data(), 200, 30, problem.weights, expected.data(), 150);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> workers;
  for (int worker = 0; worker < 4; ++worker) {
    workers.emplace_back([&, worker] {
      // Different row counts per thread, so each thread's scratch differs in size.
      const std::int64_t rows = 1 + worker * 9;
      std::vector<float> y(static_cast<std::size_t>(rows * 150));
      for (int repeat = 0; repeat < 20; ++repeat) {
        blip::kernels::linear(problem.x.data(), 200, rows, problem.weights, y.data(), 150);
        for (std::int64_t i = 0; i < rows * 150; ++i)
          if (y[static_cast<std::size_t>(i)] != expected[static_cast<std::size_t>(i)]) ++mismatches;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("linear: tensor form checks shapes and names them") {
  std::mt19937 generator(1);
  const Tensor<float> weight = random_tensor(Shape{6, 4}, generator);
  const Tensor<float> bias = random_tensor(Shape{6}, generator);
  const LinearWeights weights = LinearWeights::prepare(weight, bias);
  CHECK(weights.in_features() == 4);
  CHECK(weights.out_features() == 6);
  CHECK(weights.has_bias());
  CHECK(weights.precision() == blip::WeightPrecision::F32);
  for (std::int64_t i = 0; i < weight.numel(); ++i) CHECK(weights.weight_value(i / 4, i % 4) == weight.data()[i]);

  const Tensor<float> x = random_tensor(Shape{2, 3, 4}, generator);
  Tensor<float> y(Shape{2, 3, 6}), reference(Shape{2, 3, 6});
  blip::kernels::linear(x, weights, y);
  blip::kernels::linear_naive(x, weights, reference);
  CHECK(blip::test::max_relative_error(y, reference) < 1e-6);

  CHECK_THROWS_WITH_AS(blip::kernels::linear(Tensor<float>(Shape{2, 5}), weights, Tensor<float>(Shape{2, 6})),
                       doctest::Contains("input x has shape [2, 5], expected [..., 4]"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear(Tensor<float>(Shape{2, 4}), weights, Tensor<float>(Shape{2, 7})),
                       doctest::Contains("output y has shape [2, 7], expected [2, 6]"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear(Tensor<float>(Shape{2, 3, 4}), weights, Tensor<float>(Shape{3, 2, 6})),
                       doctest::Contains("expected [2, 3, 6]"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear(x, LinearWeights(), y), doctest::Contains("before LinearWeights::prepare"),
                       Error);
  std::vector<float> buffer(64);
  CHECK_THROWS_WITH_AS(blip::kernels::linear(buffer.data(), 3, 2, weights, buffer.data(), 6),
                       doctest::Contains("x_stride 3 is smaller than in_features 4"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear(buffer.data(), 4, 2, weights, buffer.data(), 5),
                       doctest::Contains("y_stride 5 is smaller than out_features 6"), Error);
}

TEST_CASE("linear: prepare rejects malformed weights") {
  CHECK_THROWS_WITH_AS(LinearWeights::prepare(Tensor<float>(Shape{6}), Tensor<float>()),
                       doctest::Contains("weight must be [out_features, in_features], got shape [6]"), Error);
  CHECK_THROWS_WITH_AS(LinearWeights::prepare(Tensor<float>(Shape{6, 4}), Tensor<float>(Shape{5})),
                       doctest::Contains("bias must be [6]"), Error);
  CHECK_THROWS_WITH_AS(LinearWeights::prepare(Tensor<float>(Shape{0, 4}), Tensor<float>()),
                       doctest::Contains("empty dimension"), Error);
  const LinearWeights no_bias = LinearWeights::prepare(Tensor<float>(Shape{6, 4}), Tensor<float>());
  CHECK_FALSE(no_bias.has_bias());
  CHECK(no_bias.bias().empty());
  CHECK(no_bias.panel_count() == 1);
}

TEST_CASE("linear_shared_input: layers of one input give each layer's own linear() bits, every path and format") {
  // Decode (up to 12 rows) streams the layers' panels as one list in one call (the q, k and v projections); more
  // rows, or layers that differ in precision or depth, go one call per layer. Either way every output must be the
  // bits of that layer's own call: three layers of 45, 70 and 33 outputs (partial panels, 2 + 3 + 2 panels), odd
  // depth, padded strides, with and without bias.
  std::mt19937 generator(2222);
  for (const Format& precision : kEveryFormat) {
    const std::int64_t in = 77, x_stride = 80, rows_most = 40;
    const Tensor<float> x = random_tensor(Shape{rows_most, x_stride}, generator, -1.0f, 1.0f);
    std::vector<LinearWeights> layers;
    const std::int64_t outs[3] = {45, 70, 33};
    for (int i = 0; i < 3; ++i)
      layers.push_back(LinearWeights::prepare(random_tensor(Shape{outs[i], in}, generator, -1.0f, 1.0f),
                                              i == 1 ? Tensor<float>() : random_tensor(Shape{outs[i]}, generator),
                                              precision.weights, precision.activations));
    for (KernelPath path : blip::kernels::kAllKernelPaths) {
      if (!blip::kernels::kernel_path_supported(path)) continue;
      for (std::int64_t rows : {1, 2, 5, 8, 12, 13, 40}) {
        std::vector<float> alone[3], together[3];
        blip::kernels::LinearProduct products[3];
        for (int i = 0; i < 3; ++i) {
          alone[i] = nan_filled(rows * (outs[i] + 3));
          together[i] = nan_filled(rows * (outs[i] + 3));
          kernel_detail::linear_using(path, x.data(), x_stride, rows, layers[i], alone[i].data(), outs[i] + 3);
          products[i] = {&layers[i], together[i].data(), outs[i] + 3};
        }
        kernel_detail::linear_shared_input_using(path, x.data(), x_stride, rows, products, 3);
        CAPTURE(std::string(blip::kernels::kernel_path_name(path)));
        CAPTURE(std::string(blip::weight_precision_name(precision.weights)));
        CAPTURE(rows);
        for (int i = 0; i < 3; ++i) {
          std::int64_t differing = 0;
          for (std::size_t j = 0; j < alone[i].size(); ++j)
            differing += std::memcmp(&alone[i][j], &together[i][j], sizeof(float)) != 0;
          CAPTURE(i);
          CHECK(differing == 0);
        }
      }
    }
  }
  // Layers of different precisions or depths over one input: one call each, the same bits.
  const Tensor<float> x = random_tensor(Shape{3, 64}, generator, -1.0f, 1.0f);
  const LinearWeights wide = LinearWeights::prepare(random_tensor(Shape{40, 64}, generator), {});
  const LinearWeights narrow =
      LinearWeights::prepare(random_tensor(Shape{40, 64}, generator), {}, blip::WeightPrecision::BF16);
  const LinearWeights shallow = LinearWeights::prepare(random_tensor(Shape{40, 50}, generator), {});
  std::vector<float> y(3 * 40 * 3), expected(3 * 40 * 3);
  blip::kernels::linear(x.data(), 64, 3, wide, expected.data(), 40);
  blip::kernels::linear(x.data(), 64, 3, narrow, expected.data() + 120, 40);
  blip::kernels::linear(x.data(), 64, 3, shallow, expected.data() + 240, 40);
  blip::kernels::linear_shared_input(x.data(), 64, 3,
                                     {{&wide, y.data(), 40}, {&narrow, y.data() + 120, 40}, {&shallow, y.data() + 240, 40}});
  CHECK(y == expected);
  // What it refuses, naming the argument.
  CHECK_THROWS_WITH_AS(blip::kernels::linear_shared_input(x.data(), 64, 3, {}), doctest::Contains("no layers given"),
                       Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear_shared_input(x.data(), 64, 3, {{nullptr, y.data(), 40}}),
                       doctest::Contains("layer 0 has no weights"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::linear_shared_input(x.data(), 64, 3, {{&wide, y.data(), 39}}),
                       doctest::Contains("y_stride 39 is smaller than out_features 40"), Error);
}

TEST_CASE("linear: zero rows is a no-op") {
  const LinearWeights weights = LinearWeights::prepare(Tensor<float>(Shape{6, 4}), Tensor<float>());
  blip::kernels::linear(nullptr, 4, 0, weights, nullptr, 6);
  blip::kernels::linear_naive(nullptr, 4, 0, weights, nullptr, 6);
}

TEST_CASE("kernel path selection: BLIP_KERNEL values") {
  using blip::kernels::detail::kernel_path_from_setting;
  CHECK(kernel_path_from_setting(nullptr) == blip::kernels::best_kernel_path());
  CHECK(kernel_path_from_setting("") == blip::kernels::best_kernel_path());
  CHECK(kernel_path_from_setting("portable") == KernelPath::Portable);
  CHECK_THROWS_WITH_AS(kernel_path_from_setting("avx1024"), doctest::Contains("unknown kernel path"), Error);
  if (blip::kernels::kernel_path_supported(KernelPath::Avx512))
    CHECK(kernel_path_from_setting("avx512") == KernelPath::Avx512);
  else
    CHECK_THROWS_AS(kernel_path_from_setting("avx512"), Error);
  if (blip::kernels::kernel_path_supported(KernelPath::Avx512Bf16))
    CHECK(kernel_path_from_setting("avx512-bf16") == KernelPath::Avx512Bf16);
  else
    CHECK_THROWS_AS(kernel_path_from_setting("avx512-bf16"), Error);
  if (blip::kernels::kernel_path_supported(KernelPath::Amx))
    CHECK(kernel_path_from_setting("amx") == KernelPath::Amx);
  else
    CHECK_THROWS_WITH_AS(kernel_path_from_setting("amx"), doctest::Contains("cannot run the amx kernels"), Error);
  // Not chosen by itself until measured on an AMX CPU (cpu_dispatch.hpp).
  CHECK(blip::kernels::best_kernel_path() != KernelPath::Amx);
  MESSAGE("active kernel path: ", std::string(blip::kernels::kernel_path_name(blip::kernels::active_kernel_path())));
}

// ---- weight precisions: bf16, f16 and int8 panels ----

namespace {
constexpr blip::WeightPrecision kNarrowPrecisions[] = {blip::WeightPrecision::BF16, blip::WeightPrecision::F16,
                                                       blip::WeightPrecision::Int8, blip::WeightPrecision::Int4};
}  // namespace

namespace {
struct Shape3 {
  std::int64_t rows, in, out;
};

// Every variant against the naive reference at every shape, with and without bias, in `precision` weights times
// `activations`; reports each variant's largest error / bound.
void check_variants_at_shapes(const std::vector<Shape3>& shapes, blip::WeightPrecision precision,
                              blip::ActivationPrecision activations, std::mt19937& generator) {
  for (const Variant& variant : variants_to_test(precision, activations)) {
    double worst_ratio = 0;
    for (const Shape3& shape : shapes) {
      for (bool with_bias : {true, false}) {
        const Problem problem = make_problem(shape.rows, shape.in, shape.out, with_bias, 3, 7, generator, -1.0f, 1.0f,
                                             precision, activations);
        CAPTURE(variant.name);
        CAPTURE(shape.rows);
        CAPTURE(shape.in);
        CAPTURE(shape.out);
        const double ratio = run_and_compare(variant, problem);
        worst_ratio = std::max(worst_ratio, ratio);
        CHECK(ratio <= 1.0);
      }
    }
    MESSAGE(variant.name, ": largest error / bound = ", worst_ratio);
  }
}

// Every row count of a register tile (1 .. 12) and beyond it, `in` inputs, every variant.
void check_variants_at_every_row_count(std::int64_t in, blip::WeightPrecision precision,
                                       blip::ActivationPrecision activations, std::mt19937& generator) {
  for (const Variant& variant : variants_to_test(precision, activations)) {
    for (std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 24, 25}) {
      const Problem problem = make_problem(rows, in, 70, true, 1, 2, generator, -1.0f, 1.0f, precision, activations);
      CAPTURE(variant.name);
      CAPTURE(rows);
      CHECK(run_and_compare(variant, problem) <= 1.0);
    }
  }
}
}  // namespace

TEST_CASE("linear: bf16, f16, int8 and int4 weights on every path match the naive reference over the same weights") {
  // The reference multiplies by the packed weights widened to f32 (weight_value), so the same f32 bound holds:
  // what differs from f32 weights is the weights, not the arithmetic.
  std::mt19937 generator(31337);
  const std::vector<Shape3> shapes = {{1, 1, 1},     {1, 17, 5},    {3, 33, 65},   {5, 100, 33},
                                      {8, 300, 97},  {12, 16, 32},  {13, 385, 64}, {25, 769, 70},
                                      {1, 768, 300}, {40, 768, 96}, {6, 7, 1},     {200, 400, 100}};
  for (blip::WeightPrecision precision : kNarrowPrecisions)
    check_variants_at_shapes(shapes, precision, blip::ActivationPrecision::F32, generator);
}

TEST_CASE("linear: every row count of the decode and register-tile range, narrow weights") {
  std::mt19937 generator(8);
  for (blip::WeightPrecision precision : kNarrowPrecisions) {
    for (const Variant& variant : variants_to_test(precision)) {
      for (std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 25}) {
        const Problem problem = make_problem(rows, 129, 70, true, 1, 2, generator, -1.0f, 1.0f, precision);
        CAPTURE(variant.name);
        CAPTURE(rows);
        CHECK(run_and_compare(variant, problem) <= 1.0);
      }
    }
  }
}

TEST_CASE("linear packing: bf16 / f16 are torch's round-to-nearest-even, int8 is within half a step of its scale") {
  std::mt19937 generator(5);
  const std::int64_t out = 45, in = 77;
  Tensor<float> weight = random_tensor(Shape{out, in}, generator, -3.0f, 3.0f);
  // Ties and specials: an exact bf16 midpoint (rounds to even), a value rounding up into the next binade.
  weight.data()[0] = blip::bits_to_float(0x3f808000u);  // 1.00390625: tie, bf16 keeps 1.0
  weight.data()[1] = blip::bits_to_float(0x3f818000u);  // tie, rounds up to 0x3f82
  weight.data()[2] = 0.0f;
  for (std::int64_t k = 0; k < in; ++k) weight.data()[7 * in + k] = 0.0f;  // an all-zero row: int8 scale 0
  const LinearWeights bf16 = LinearWeights::prepare(weight, {}, blip::WeightPrecision::BF16);
  const LinearWeights f16 = LinearWeights::prepare(weight, {}, blip::WeightPrecision::F16);
  const LinearWeights int8 = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int8);
  CHECK(bf16.packed_bytes() < LinearWeights::prepare(weight, {}).packed_bytes());
  CHECK(bf16.weight_value(0, 0) == 1.0f);
  CHECK(blip::float_bits(bf16.weight_value(0, 1)) == 0x3f820000u);
  for (std::int64_t o = 0; o < out; ++o) {
    float largest = 0.0f;
    for (std::int64_t k = 0; k < in; ++k) largest = std::max(largest, std::abs(weight.data()[o * in + k]));
    const float scale = largest / 127.0f;
    for (std::int64_t k = 0; k < in; ++k) {
      const float w = weight.data()[o * in + k];
      CAPTURE(o);
      CAPTURE(k);
      CHECK(bf16.weight_value(o, k) == blip::bf16_to_f32(blip::f32_to_bf16(w)));
      CHECK(f16.weight_value(o, k) == blip::f16_to_f32(blip::f32_to_f16(w)));
      const float q = std::nearbyint(w / scale);
      CHECK(int8.weight_value(o, k) == (scale > 0 ? q * scale : 0.0f));
      CHECK(std::abs(int8.weight_value(o, k) - w) <= 0.5f * scale * (1.0f + 1e-6f));
    }
  }
  // Int8 also packs each feature's Σ_k q (what the int8 x int8 kernels subtract 128 times over a whole depth;
  // zero for the padding features), and counts it, with the scales, in its bytes.
  const std::int64_t panels = (out + 31) / 32;
  const std::int32_t* weight_sums = int8.int8_weight_sums();
  REQUIRE(weight_sums != nullptr);
  CHECK(bf16.int8_weight_sums() == nullptr);
  for (std::int64_t o = 0; o < panels * 32; ++o) {
    std::int64_t sum = 0;
    const float scale = o < out ? int8.packed_scales()[o] : 0.0f;
    for (std::int64_t k = 0; o < out && k < in; ++k)
      sum += scale > 0 ? static_cast<std::int64_t>(std::nearbyint(int8.weight_value(o, k) / scale)) : 0;
    CAPTURE(o);
    CHECK(weight_sums[o] == sum);
  }
  CHECK(int8.packed_bytes() == static_cast<std::size_t>(panels * in * 32 + panels * 32 * 4 * 2));
}

TEST_CASE("linear packing: from a stored bf16 or f16 matrix, as stored, equals packing its f32 widening") {
  std::mt19937 generator(6);
  const std::int64_t out = 70, in = 129;
  const Tensor<float> source = random_tensor(Shape{out, in}, generator);
  std::vector<blip::BFloat16> stored_bf16(static_cast<std::size_t>(out * in));
  std::vector<blip::Float16> stored_f16(stored_bf16.size());
  Tensor<float> widened_bf16(Shape{out, in}), widened_f16(Shape{out, in});
  for (std::int64_t i = 0; i < out * in; ++i) {
    stored_bf16[static_cast<std::size_t>(i)] = blip::f32_to_bf16(source.data()[i]);
    stored_f16[static_cast<std::size_t>(i)] = blip::f32_to_f16(source.data()[i]);
    widened_bf16.data()[i] = blip::bf16_to_f32(stored_bf16[static_cast<std::size_t>(i)]);
    widened_f16.data()[i] = blip::f16_to_f32(stored_f16[static_cast<std::size_t>(i)]);
  }
  const LinearWeights from_bf16 = LinearWeights::prepare(
      blip::StoredMatrix{blip::DType::BF16, stored_bf16.data(), out, in, nullptr}, {}, blip::WeightPrecision::AsStored);
  const LinearWeights from_f16 = LinearWeights::prepare(
      blip::StoredMatrix{blip::DType::F16, stored_f16.data(), out, in, nullptr}, {}, blip::WeightPrecision::AsStored);
  CHECK(from_bf16.precision() == blip::WeightPrecision::BF16);
  CHECK(from_f16.precision() == blip::WeightPrecision::F16);
  const LinearWeights as_f32 = LinearWeights::prepare(
      blip::StoredMatrix{blip::DType::BF16, stored_bf16.data(), out, in, nullptr}, {}, blip::WeightPrecision::F32);
  CHECK(as_f32.precision() == blip::WeightPrecision::F32);
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t k = 0; k < in; ++k) {
      REQUIRE(from_bf16.weight_value(o, k) == widened_bf16.data()[o * in + k]);
      REQUIRE(from_f16.weight_value(o, k) == widened_f16.data()[o * in + k]);
      REQUIRE(as_f32.weight_value(o, k) == widened_bf16.data()[o * in + k]);
    }
  }
  // As stored, the results are those of f32 weights holding the same values: the same kernels' arithmetic.
  const LinearWeights f32_of_same_values = LinearWeights::prepare(widened_bf16, {});
  const Tensor<float> x = random_tensor(Shape{5, in}, generator);
  Tensor<float> y_bf16(Shape{5, out}), y_f32(Shape{5, out});
  blip::kernels::linear(x, from_bf16, y_bf16);
  blip::kernels::linear(x, f32_of_same_values, y_f32);
  for (std::int64_t i = 0; i < y_f32.numel(); ++i) CHECK(y_bf16.data()[i] == y_f32.data()[i]);
}

TEST_CASE("linear: micro-kernels of another precision than the weights' are refused") {
  std::mt19937 generator(9);
  const Problem problem = make_problem(2, 16, 8, false, 0, 0, generator, -1.0f, 1.0f, blip::WeightPrecision::BF16);
  std::vector<float> y(16);
  CHECK_THROWS_WITH_AS(kernel_detail::linear_blocked(kernel_detail::linear_micro_kernels_portable(), problem.x.data(),
                                                     16, 2, problem.weights, y.data(), 8),
                       doctest::Contains("f32 micro-kernels given bf16 weights"), Error);
}

// ---- bf16 weights times bf16 activations (vdpbf16ps on AVX512-BF16, rounded rows elsewhere) ----

TEST_CASE("linear: bf16 activations on every path (the bf16 dot product where the CPU has it) match the naive "
          "reference over the same rounded inputs") {
  // The reference rounds each input to bf16 as the layer does, then sums in double: what is left is f32
  // summation error, so the f32 bound holds. Odd depths (a last k without a partner), depth blocks (> 384),
  // partial panels, every row count of a tile and beyond it.
  std::mt19937 generator(4242);
  const std::vector<Shape3> shapes = {{1, 1, 1},     {1, 17, 5},   {2, 2, 33},      {3, 33, 65},   {5, 100, 33},
                                      {8, 301, 97},  {12, 16, 32}, {13, 385, 64},   {25, 769, 70}, {1, 768, 300},
                                      {40, 767, 96}, {6, 7, 1},    {200, 400, 100}, {11, 1025, 40}};
  check_variants_at_shapes(shapes, blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16, generator);
  check_variants_at_every_row_count(131, blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16, generator);
}

TEST_CASE("linear: bf16 activations really round the input (and only for bf16 weights)") {
  // An input that bf16 cannot hold: 1 + 2^-10 rounds to 1. With f32 activations the product keeps the 2^-10.
  const float input = 1.0f + 1.0f / 1024.0f;
  Tensor<float> weight(Shape{1, 1});
  weight.data()[0] = 1.0f;
  Tensor<float> x(Shape{1, 1}), y(Shape{1, 1});
  x.data()[0] = input;
  const LinearWeights rounded = LinearWeights::prepare(weight, {}, blip::WeightPrecision::BF16,
                                                       blip::ActivationPrecision::BF16);
  const LinearWeights exact = LinearWeights::prepare(weight, {}, blip::WeightPrecision::BF16);
  const LinearWeights f32_weights = LinearWeights::prepare(weight, {}, blip::WeightPrecision::F32,
                                                           blip::ActivationPrecision::BF16);
  CHECK(rounded.activation_precision() == blip::ActivationPrecision::BF16);
  CHECK(f32_weights.activation_precision() == blip::ActivationPrecision::F32);
  for (KernelPath path : blip::kernels::kAllKernelPaths) {
    if (!blip::kernels::kernel_path_supported(path)) continue;
    CAPTURE(std::string(blip::kernels::kernel_path_name(path)));
    kernel_detail::linear_using(path, x.data(), 1, 1, rounded, y.data(), 1);
    CHECK(y.data()[0] == 1.0f);
    kernel_detail::linear_using(path, x.data(), 1, 1, exact, y.data(), 1);
    CHECK(y.data()[0] == input);
    kernel_detail::linear_using(path, x.data(), 1, 1, f32_weights, y.data(), 1);
    CHECK(y.data()[0] == input);
  }
}

TEST_CASE("linear: kernels for f32 activations are refused for a layer that rounds to bf16, and the reverse") {
  std::mt19937 generator(10);
  const Problem problem = make_problem(2, 16, 8, false, 0, 0, generator, -1.0f, 1.0f, blip::WeightPrecision::BF16,
                                       blip::ActivationPrecision::BF16);
  std::vector<float> y(16);
  CHECK_THROWS_WITH_AS(
      kernel_detail::linear_blocked(kernel_detail::linear_micro_kernels_portable(blip::WeightPrecision::BF16),
                                    problem.x.data(), 16, 2, problem.weights, y.data(), 8),
      doctest::Contains("f32 activations given a layer with bf16 activations"), Error);
}

TEST_CASE("linear packing: int4 is within half a step of its block's scale, blocks of 32 inputs, odd sizes") {
  std::mt19937 generator(77);
  for (const auto& [out, in] : {std::pair<std::int64_t, std::int64_t>{45, 77}, {33, 32}, {1, 1}, {70, 129}}) {
    Tensor<float> weight = random_tensor(Shape{out, in}, generator, -3.0f, 3.0f);
    // One block all zero (scale 0), one with a single large weight.
    for (std::int64_t k = 0; k < std::min<std::int64_t>(in, 32); ++k) weight.data()[k] = 0.0f;
    if (out > 1) weight.data()[in] = 100.0f;
    const LinearWeights packed = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int4);
    for (std::int64_t o = 0; o < out; ++o) {
      for (std::int64_t block = 0; block * 32 < in; ++block) {
        float extreme = 0;  // the block's weight of largest magnitude, sign kept (the first of equals)
        for (std::int64_t k = block * 32; k < std::min(in, block * 32 + 32); ++k)
          if (std::abs(weight.data()[o * in + k]) > std::abs(extreme)) extreme = weight.data()[o * in + k];
        const float scale = extreme / -8.0f;
        for (std::int64_t k = block * 32; k < std::min(in, block * 32 + 32); ++k) {
          const float value = weight.data()[o * in + k], stored = packed.weight_value(o, k);
          CAPTURE(o);
          CAPTURE(k);
          // Within half a step; within one where the opposite sign of the extreme rounds past 7 (q = 8 clamped).
          const bool clamped = scale != 0 && value / scale > 7.5f;
          CHECK(std::abs(stored - value) <= std::abs(scale) * (clamped ? 1.0f : 0.5f) * (1 + 1e-6f));
          // Exactly q · scale with q = round-half-even(w / scale) in [-8, 7]; the extreme itself is q = -8.
          const float q = scale != 0 ? std::nearbyint(value / scale) : 0.0f;
          CHECK(stored == std::max(-8.0f, std::min(7.0f, q)) * scale);
          if (value == extreme && extreme != 0) CHECK(stored == value);
        }
      }
    }
    // 4 bits per weight plus one f32 scale per 32 inputs of each (padded) feature.
    const std::int64_t panels = (out + 31) / 32, blocks = (in + 31) / 32;
    CHECK(packed.packed_bytes() == static_cast<std::size_t>(panels * in * 16 + panels * blocks * 32 * 4));
  }
}

// ---- int8 weights times int8 activations (vpdpbusd with AVX512-VNNI, quantized rows elsewhere) ----

TEST_CASE("linear: int8 activations on every path (the int8 dot product where the CPU has it) match the naive "
          "reference over the same quantized inputs") {
  // The reference quantizes each row as the layer does (one scale per row) and sums q · scale in double; the
  // dot-product kernel's integer sums are exact, so what is left is the f32 rounding of the scaling (or, on
  // the other paths, of the f32 sums), within the f32 bound. Depths that are not a multiple of 4 (a last quad
  // with 1 to 3 inputs), depth blocks (> 384), partial panels, every row count of a tile and beyond it.
  std::mt19937 generator(8080);
  if (!blip::kernels::avx512_int8_dot_supported())
    MESSAGE("no AVX512-VNNI and VBMI here: the AVX-512 int8 dot product is not tested");
  if (!blip::kernels::avx2_int8_dot_supported())
    MESSAGE("no AVX-VNNI here: the avx2 path's vpdpbusd kernel is not tested (its vpmaddubsw one is)");
  const std::vector<Shape3> shapes = {{1, 1, 1},     {1, 2, 5},    {2, 3, 33},      {3, 5, 65},    {5, 17, 33},
                                      {8, 301, 97},  {12, 16, 32}, {13, 385, 64},   {25, 769, 70}, {1, 768, 300},
                                      {40, 767, 96}, {6, 7, 1},    {200, 402, 100}, {11, 1025, 40}, {4, 6, 31}};
  check_variants_at_shapes(shapes, blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8, generator);
  check_variants_at_every_row_count(133, blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8, generator);
}

TEST_CASE("linear: int4 weights times int8 activations on every path (the int8 dot product where the CPU has it) "
          "match the naive reference") {
  // The dot-product kernel sums each 32-input block exactly in int32 (its weights carry + 8, cancelled by the
  // row's block offsets), then adds block sum · block scale in f32: the error left is f32 rounding, within the
  // bound. Depths ending inside a quad (1 to 3 inputs) and inside a block, one block, depth blocks (> 384, whole
  // blocks), partial panels, tiles of 6 rows and beyond.
  std::mt19937 generator(8181);
  if (!blip::kernels::avx512_int8_dot_supported())
    MESSAGE("no AVX512-VNNI and VBMI here: the AVX-512 int4 x int8 dot product is not tested");
  if (!blip::kernels::avx2_int8_dot_supported())
    MESSAGE("no AVX-VNNI here: the avx2 path's vpdpbusd int4 kernel is not tested (its vpmaddubsw one is)");
  const std::vector<Shape3> shapes = {{1, 1, 1},     {1, 2, 5},    {2, 3, 33},      {3, 5, 65},     {5, 17, 33},
                                      {8, 301, 97},  {12, 16, 32}, {13, 385, 64},   {25, 769, 70},  {1, 768, 300},
                                      {40, 767, 96}, {6, 7, 1},    {200, 402, 100}, {11, 1025, 40}, {4, 6, 31},
                                      {7, 32, 64},   {1, 33, 32},  {6, 36, 40},     {12, 2560, 96}};
  check_variants_at_shapes(shapes, blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8, generator);
  check_variants_at_every_row_count(133, blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8, generator);
}

TEST_CASE("linear: the integer kernels stay exact at the ends of their ranges (every q and w at its largest)") {
  // Inputs of magnitude [0.99, 1] quantize to q = ±126 .. 127 and weights in [0.99, 1] to the largest int8 (127)
  // or int4 (7: the nibble 15) weight. The vpmaddubsw kernels' int16 sums are then at their largest: int8 pairs
  // |q| · |w| of up to 2 · 127 · 127 = 32,258, int4 blocks of 16 products 15 · 127 per int16 lane (30,480), just
  // below 32,767. All inputs of one sign (the int16 sums grow) and of random signs.
  std::mt19937 generator(127);
  std::bernoulli_distribution coin;
  for (blip::WeightPrecision precision : {blip::WeightPrecision::Int8, blip::WeightPrecision::Int4}) {
    for (int signs = 0; signs < 3; ++signs) {
      Problem problem = make_problem(5, 1000, 40, true, 0, 0, generator, 0.99f, 1.0f, precision,
                                     blip::ActivationPrecision::Int8);
      for (std::int64_t i = 0; i < problem.x.numel(); ++i) {
        const bool negative = signs == 1 || (signs == 2 && coin(generator));
        if (negative) problem.x.data()[i] = -problem.x.data()[i];
      }
      for (const Variant& variant : variants_to_test(precision, blip::ActivationPrecision::Int8)) {
        CAPTURE(variant.name);
        CAPTURE(signs);
        CHECK(run_and_compare(variant, problem) <= 1.0);
      }
    }
  }
}

TEST_CASE("linear: every integer kernel (AVX-512, AVX-VNNI, vpmaddubsw) gives the same bits") {
  // Their int32 sums are exact, and each scales them with the same f32 operations in the same order (int8: times
  // the row scale, then the feature scale, plus the bias; int4: per block an FMA by the block scales, then the
  // row scale, plus the bias), so a model runs identically on every x86 CPU that has one of them.
  std::mt19937 generator(4242);
  for (blip::WeightPrecision precision : {blip::WeightPrecision::Int8, blip::WeightPrecision::Int4}) {
    for (const Shape3& shape : std::vector<Shape3>{{1, 2560, 100}, {3, 771, 70}, {8, 385, 64}, {13, 1025, 40},
                                                   {40, 767, 96}, {2, 5, 33}}) {
      const Problem problem = make_problem(shape.rows, shape.in, shape.out, true, 0, 0, generator, -1.0f, 1.0f,
                                           precision, blip::ActivationPrecision::Int8);
      std::string first_name;
      std::vector<float> first;
      for (const Variant& variant : variants_to_test(precision, blip::ActivationPrecision::Int8)) {
        if (variant.kernels.row_packing != kernel_detail::RowPacking::Int8Quads &&
            variant.kernels.row_packing != kernel_detail::RowPacking::Int8SignedQuads)
          continue;
        std::vector<float> y = nan_filled(problem.rows * problem.y_stride);
        kernel_detail::linear_blocked(variant.kernels, problem.x.data(), problem.x_stride, problem.rows,
                                      problem.weights, y.data(), problem.y_stride);
        if (first.empty()) {
          first = y;
          first_name = variant.name;
          continue;
        }
        CAPTURE(first_name);
        CAPTURE(variant.name);
        CAPTURE(shape.rows);
        CAPTURE(shape.in);
        std::int64_t differing = 0;
        for (std::size_t i = 0; i < y.size(); ++i) differing += std::memcmp(&y[i], &first[i], sizeof(float)) != 0;
        CHECK(differing == 0);
      }
      if (first.empty()) MESSAGE("no integer kernel here: nothing to compare");
    }
  }
}

TEST_CASE("linear: int8 activations really quantize the input, per row (and only for int8 and int4 weights)") {
  // Row [1, 0.004]: scale 1 / 127, and 0.004 becomes 1 step (0.508 rounds up) = 1/127. The weight column
  // [0, 1] is exact in int8 (q 127, scale 1/127), so y = 1/127 with int8 activations and 0.004 without. The
  // second row [0.004, 0] has its own scale (0.004 / 127) and keeps its 0.004 exactly enough.
  Tensor<float> weight(Shape{1, 2});
  weight.data()[0] = 0.0f;
  weight.data()[1] = 1.0f;
  Tensor<float> x(Shape{2, 2}), y(Shape{2, 1});
  x.data()[0] = 1.0f;
  x.data()[1] = 0.004f;
  x.data()[2] = 0.0f;
  x.data()[3] = 0.004f;
  const LinearWeights quantized = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int8,
                                                         blip::ActivationPrecision::Int8);
  const LinearWeights exact = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int8);
  const LinearWeights f32_weights = LinearWeights::prepare(weight, {}, blip::WeightPrecision::F32,
                                                           blip::ActivationPrecision::Int8);
  const LinearWeights bf16_weights = LinearWeights::prepare(weight, {}, blip::WeightPrecision::BF16,
                                                            blip::ActivationPrecision::Int8);
  // Int4: the column [0, 1] is exact too (q 7, scale 1/7).
  const LinearWeights int4_quantized = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int4,
                                                              blip::ActivationPrecision::Int8);
  const LinearWeights int4_exact = LinearWeights::prepare(weight, {}, blip::WeightPrecision::Int4);
  CHECK(quantized.activation_precision() == blip::ActivationPrecision::Int8);
  CHECK(int4_quantized.activation_precision() == blip::ActivationPrecision::Int8);
  CHECK(f32_weights.activation_precision() == blip::ActivationPrecision::F32);
  CHECK(bf16_weights.activation_precision() == blip::ActivationPrecision::F32);
  for (KernelPath path : blip::kernels::kAllKernelPaths) {
    if (!blip::kernels::kernel_path_supported(path)) continue;
    CAPTURE(std::string(blip::kernels::kernel_path_name(path)));
    kernel_detail::linear_using(path, x.data(), 2, 2, quantized, y.data(), 1);
    CHECK(y.data()[0] == doctest::Approx(1.0 / 127.0).epsilon(1e-6));
    CHECK(y.data()[1] == doctest::Approx(0.004).epsilon(1e-6));
    kernel_detail::linear_using(path, x.data(), 2, 2, exact, y.data(), 1);
    CHECK(y.data()[0] == doctest::Approx(0.004).epsilon(1e-6));
    kernel_detail::linear_using(path, x.data(), 2, 2, f32_weights, y.data(), 1);
    CHECK(y.data()[0] == doctest::Approx(0.004).epsilon(1e-6));
    kernel_detail::linear_using(path, x.data(), 2, 2, int4_quantized, y.data(), 1);
    CHECK(y.data()[0] == doctest::Approx(1.0 / 127.0).epsilon(1e-6));
    CHECK(y.data()[1] == doctest::Approx(0.004).epsilon(1e-6));
    kernel_detail::linear_using(path, x.data(), 2, 2, int4_exact, y.data(), 1);
    CHECK(y.data()[0] == doctest::Approx(0.004).epsilon(1e-6));
  }
}

TEST_CASE("linear: int8 activations, a row holding NaN or infinity gives NaN, a zero row gives the bias") {
  std::mt19937 generator(31);
  for (const auto& [bad, precision] :
       {std::pair{std::numeric_limits<float>::quiet_NaN(), blip::WeightPrecision::Int8},
        std::pair{std::numeric_limits<float>::infinity(), blip::WeightPrecision::Int8},
        std::pair{std::numeric_limits<float>::quiet_NaN(), blip::WeightPrecision::Int4},
        std::pair{-std::numeric_limits<float>::infinity(), blip::WeightPrecision::Int4}}) {
    Problem problem = make_problem(3, 37, 40, true, 0, 0, generator, -1.0f, 1.0f, precision,
                                   blip::ActivationPrecision::Int8);
    problem.x.data()[problem.x_stride + 5] = bad;                                        // row 1
    for (std::int64_t k = 0; k < problem.in; ++k) problem.x.data()[2 * problem.x_stride + k] = 0.0f;  // row 2
    for (const Variant& variant : variants_to_test(precision, blip::ActivationPrecision::Int8)) {
      CAPTURE(variant.name);
      std::vector<float> y = nan_filled(problem.rows * problem.y_stride);
      kernel_detail::linear_blocked(variant.kernels, problem.x.data(), problem.x_stride, problem.rows,
                                    problem.weights, y.data(), problem.y_stride);
      std::int64_t finite_first = 0, nan_second = 0, bias_third = 0;
      for (std::int64_t o = 0; o < problem.out; ++o) {
        finite_first += std::isfinite(y[o]);
        nan_second += std::isnan(y[problem.y_stride + o]);
        bias_third += y[2 * problem.y_stride + o] == problem.bias.data()[o];
      }
      CHECK(finite_first == problem.out);
      CHECK(nan_second == problem.out);
      CHECK(bias_third == problem.out);
    }
  }
}

TEST_CASE("linear: int8 activations over a depth whose int32 sums would overflow are summed in pieces") {
  // All inputs and weights in [0.99, 1]: every q · w is about 126 · 126, so 140,001 inputs sum to about 2.2e9,
  // past int32 (the + 128 offset wraps harmlessly; the true sum must fit). The driver splits the depth into calls
  // of kInt8QuadMaxDepth inputs; without that this fails. (Only the integer kernel is concerned; the f32
  // kernels' sequential sums of 140,001 positive terms are beyond the f32 bound.)
  std::mt19937 generator(99);
  const std::int64_t in = 140001;
  if (!blip::kernels::kernel_path_supported(KernelPath::Avx2)) MESSAGE("no AVX2 here: nothing to test");
  // 8: a chunked avx2 tile (linear_avx2_integer.hpp), summing the weights of each piece itself; 14: the
  // depth-blocked driver, which gives such a layer one call.
  for (std::int64_t rows : {1, 3, 8, 14}) {
    const Problem problem = make_problem(rows, in, 35, false, 0, 0, generator, 0.99f, 1.0f,
                                         blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8);
    for (const Variant& variant : variants_to_test(blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8)) {
      if (variant.kernels.row_packing != kernel_detail::RowPacking::Int8Quads) continue;
      CAPTURE(variant.name);
      CAPTURE(rows);
      CHECK(run_and_compare(variant, problem) <= 1.0);
    }
  }
}

TEST_CASE("int8 quads: the AVX-512 and AVX2 packers give the scalar packer's words and scale, bit for bit") {
  using Packer = float (*)(const float*, std::int64_t, std::uint32_t*, std::int64_t, int);
  std::vector<std::pair<std::string, Packer>> packers;
#if BLIP_X86_DISPATCH
  if (blip::kernels::kernel_path_supported(KernelPath::Avx512))
    packers.emplace_back("AVX-512", &kernel_detail::pack_row_int8_quads_avx512);
  else
    MESSAGE("no AVX-512 here: the AVX-512 packer is not tested");
  if (blip::kernels::kernel_path_supported(KernelPath::Avx2))
    packers.emplace_back("AVX2", &kernel_detail::pack_row_int8_quads_avx2);
  else
    MESSAGE("no AVX2 here: the AVX2 packer is not tested");
#endif
  if (packers.empty()) return;
  std::mt19937 generator(404);
  std::uniform_real_distribution<float> distribution(-3.0f, 3.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), infinity = std::numeric_limits<float>::infinity();
  for (std::int64_t depth : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 769}) {
    for (int kind = 0; kind < 6; ++kind) {
      std::vector<float> row(static_cast<std::size_t>(depth));
      for (float& value : row) value = distribution(generator);
      if (kind == 1) std::fill(row.begin(), row.end(), 0.0f);                 // scale 0: every q is 0
      if (kind == 2) row[static_cast<std::size_t>(depth / 2)] = nan;         // NaN scale
      if (kind == 3) row[static_cast<std::size_t>(depth - 1)] = -infinity;   // NaN scale
      if (kind == 4) {                                                        // ties: x / scale = n + 0.5
        for (std::int64_t k = 0; k < depth; ++k) row[static_cast<std::size_t>(k)] = static_cast<float>(k % 9) - 3.5f;
        row[0] = 127.0f;                                                      // scale exactly 1
      }
      if (kind == 5) row[0] = 1e30f;                                          // one huge input, the rest q = 0
      const std::int64_t stride = 3;
      std::vector<std::uint32_t> scalar(static_cast<std::size_t>(kernel_detail::int8_quads(depth) * stride), 7u);
      std::vector<std::uint32_t> vector = scalar;
      for (int byte_offset : {128, 0}) {  // the unsigned quads of int8 weights, the signed ones of int4 weights
        const float scalar_scale =
            kernel_detail::pack_row_int8_quads(row.data(), depth, scalar.data(), stride, byte_offset);
        for (const auto& [name, packer] : packers) {
          std::fill(vector.begin(), vector.end(), 7u);
          const float vector_scale = packer(row.data(), depth, vector.data(), stride, byte_offset);
          CAPTURE(name);
          CAPTURE(depth);
          CAPTURE(kind);
          CAPTURE(byte_offset);
          CHECK(scalar == vector);
          if (std::isnan(scalar_scale)) CHECK(std::isnan(vector_scale));
          else CHECK(scalar_scale == vector_scale);
        }
      }
    }
  }
}

TEST_CASE("int8 signed quads: the bytes are q, and each 32-input block's offset is -8 times its sum of q") {
  // Row k -> x = k - 20 over 70 inputs: scale 49 / 127, and the blocks [0, 32), [32, 64), [64, 70) (the last one
  // ending inside a quad). The offsets are checked against sums of the q the words hold, and the words against
  // the unsigned quads (the same q, + 128).
  const std::int64_t depth = 70, stride = 2;
  std::vector<float> row(static_cast<std::size_t>(depth));
  for (std::int64_t k = 0; k < depth; ++k) row[static_cast<std::size_t>(k)] = static_cast<float>(k - 20);
  std::vector<std::uint32_t> signed_words(static_cast<std::size_t>(kernel_detail::int8_quads(depth) * stride));
  std::vector<std::uint32_t> unsigned_words = signed_words;
  kernel_detail::pack_row_int8_quads(row.data(), depth, signed_words.data(), stride, 0);
  kernel_detail::pack_row_int8_quads(row.data(), depth, unsigned_words.data(), stride);
  std::vector<std::int32_t> offsets(3 * stride, 1);
  kernel_detail::int4_block_offsets(signed_words.data(), depth, stride, offsets.data());
  std::int32_t sums[3] = {};
  for (std::int64_t k = 0; k < 72; ++k) {
    const std::uint32_t word = signed_words[static_cast<std::size_t>(k / 4 * stride)];
    const auto q = static_cast<std::int8_t>(word >> (8 * (k % 4)) & 0xffu);
    const auto unsigned_q = static_cast<int>(unsigned_words[static_cast<std::size_t>(k / 4 * stride)] >> (8 * (k % 4)) & 0xffu) - 128;
    CAPTURE(k);
    CHECK(static_cast<int>(q) == unsigned_q);
    if (k >= depth) CHECK(q == 0);
    sums[k / 32] += q;
  }
  CHECK(sums[0] < 0);  // the first block's inputs are mostly negative: a sign error would show
  for (int block = 0; block < 3; ++block) CHECK(offsets[static_cast<std::size_t>(block * stride)] == -8 * sums[block]);
}

TEST_CASE("bf16 pairs: the AVX-512 packer gives the scalar packer's words, bit for bit, and writes nothing else") {
  if (!blip::kernels::kernel_path_supported(KernelPath::Avx512)) {
    MESSAGE("no AVX-512 here: the AVX-512 packer is not tested");
    return;
  }
  std::mt19937 generator(405);
  std::uniform_real_distribution<float> distribution(-3.0f, 3.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), infinity = std::numeric_limits<float>::infinity();
  // Specials: NaNs (quiet, signalling, negative), infinities, a denormal (which vcvtneps2bf16 would flush), ties
  // to even both ways, the largest finite value (rounds to infinity).
  const float specials[] = {nan,
                            blip::bits_to_float(0xff800001u),
                            -infinity,
                            infinity,
                            blip::bits_to_float(0x00012345u),
                            blip::bits_to_float(0x3f808000u),
                            blip::bits_to_float(0x3f818000u),
                            std::numeric_limits<float>::max(),
                            -0.0f};
  // Row counts around the groups of 8 (a Linear tile is 12 rows, an attention block up to 128), depths around
  // the 16-input steps, row strides wider than the depth, packed strides wider than the row count.
  for (std::int64_t rows : {1, 2, 3, 5, 8, 9, 12, 15, 16, 17, 116}) {
    for (std::int64_t depth : {1, 2, 3, 15, 16, 17, 31, 33, 64, 100, 769}) {
      const std::int64_t x_stride = depth + 3, packed_stride = rows + (rows % 3);
      std::vector<float> x(static_cast<std::size_t>(rows * x_stride));
      for (float& value : x) value = distribution(generator);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < std::size(specials) && 2 * i + 1 < static_cast<std::size_t>(depth); ++i)
          x[static_cast<std::size_t>(r * x_stride) + (2 * i + 1 + r) % depth] = specials[i];
      std::vector<std::uint32_t> scalar(static_cast<std::size_t>(((depth + 1) / 2 + 1) * packed_stride), 0xdeadbeefu);
      std::vector<std::uint32_t> vector = scalar;
      for (std::int64_t r = 0; r < rows; ++r)
        kernel_detail::pack_row_bf16_pairs(x.data() + r * x_stride, depth, scalar.data() + r, packed_stride);
      kernel_detail::pack_rows_bf16_pairs_avx512(x.data(), x_stride, rows, depth, vector.data(), packed_stride);
      CAPTURE(rows);
      CAPTURE(depth);
      CHECK(scalar == vector);  // the sentinels past the rows and the depth included
    }
  }
}

TEST_CASE("AMX tiles: the AVX-512 packer gives the scalar packer's words, bit for bit, zeros past the depth, nothing "
          "written past the rows") {
  if (!blip::kernels::kernel_path_supported(KernelPath::Avx512)) {
    MESSAGE("no AVX-512 here: the AVX-512 packer is not tested");
    return;
  }
  std::mt19937 generator(406);
  std::uniform_real_distribution<float> distribution(-3.0f, 3.0f);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), blip::bits_to_float(0xff800001u),
                            -std::numeric_limits<float>::infinity(), blip::bits_to_float(0x00012345u),
                            blip::bits_to_float(0x3f808000u),        blip::bits_to_float(0x3f818000u),
                            std::numeric_limits<float>::max(),       -0.0f};
  for (std::int64_t rows : {1, 2, 7, 15, 16}) {
    for (std::int64_t depth : {1, 2, 15, 16, 17, 31, 33, 100, 769}) {
      const std::int64_t x_stride = depth + 3;
      std::vector<float> x(static_cast<std::size_t>(rows * x_stride));
      for (float& value : x) value = distribution(generator);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < std::size(specials); ++i)
          x[static_cast<std::size_t>(r * x_stride + static_cast<std::int64_t>(3 * i + r) % depth)] = specials[i];
      const std::size_t words = static_cast<std::size_t>(kernel_detail::amx_groups(depth) * kernel_detail::kAmxGroupWords);
      std::vector<std::uint32_t> scalar(words + 16, 0xdeadbeefu);
      std::vector<std::uint32_t> vector = scalar;
      kernel_detail::pack_rows_bf16_amx_tiles(x.data(), x_stride, rows, depth, scalar.data());
      kernel_detail::pack_rows_bf16_amx_tiles_avx512(x.data(), x_stride, rows, depth, vector.data());
      CAPTURE(rows);
      CAPTURE(depth);
      CHECK(scalar == vector);  // the sentinels past the rows and the tiles included
      // The layout: group g, half h (0: bf16 in the low half, 1: in the high half), row r, input j.
      std::int64_t wrong = 0;
      for (std::int64_t group = 0; group < kernel_detail::amx_groups(depth); ++group)
        for (int half = 0; half < 2; ++half)
          for (std::int64_t r = 0; r < 16; ++r)
            for (std::int64_t j = 0; j < 16; ++j) {
              const std::int64_t k = group * 16 + j;
              const std::uint32_t bits = r < rows && k < depth
                                             ? blip::f32_to_bf16(x[static_cast<std::size_t>(r * x_stride + k)]).bits
                                             : 0u;
              const std::uint32_t expected = r >= rows ? 0xdeadbeefu : half == 0 ? bits : bits << 16;
              wrong += scalar[static_cast<std::size_t>(((group * 2 + half) * 16 + r) * 16 + j)] != expected;
            }
      CHECK(wrong == 0);
      CHECK(scalar[words] == 0xdeadbeefu);
    }
  }
}

TEST_CASE("AMX tiles: the scalar model of TDPBF16PS sums pairs in order, reads bf16 denormals as zero, flushes results") {
  using Tiles = kernel_detail::AmxEmulatedTiles;
  Tiles::configure(kernel_detail::uniform_amx_tile_config(3));
  std::mt19937 generator(407);
  std::uniform_real_distribution<float> distribution(-2.0f, 2.0f);
  std::uint16_t a[16][32], b[16][32];
  float c[16][16];
  for (auto& row : a)
    for (auto& value : row) value = blip::f32_to_bf16(distribution(generator)).bits;
  for (auto& row : b)
    for (auto& value : row) value = blip::f32_to_bf16(distribution(generator)).bits;
  for (auto& row : c)
    for (auto& value : row) value = distribution(generator);
  a[3][5] = 0x0012;  // a bf16 denormal: read as zero
  Tiles::load<0>(c, 64);
  Tiles::load<1>(a, 64);
  Tiles::load<2>(b, 64);
  Tiles::dot_bf16<0, 1, 2>();
  float result[16][16];
  Tiles::store<0>(result, 64);
  std::int64_t wrong = 0;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      float sum = c[m][n];
      for (int k = 0; k < 16; ++k) {
        const float a_even = (m == 3 && 2 * k == 5) ? 0.0f : blip::bf16_to_f32(blip::BFloat16{a[m][2 * k]});
        const float a_odd = (m == 3 && 2 * k + 1 == 5) ? 0.0f : blip::bf16_to_f32(blip::BFloat16{a[m][2 * k + 1]});
        sum += a_even * blip::bf16_to_f32(blip::BFloat16{b[k][2 * n]});
        sum += a_odd * blip::bf16_to_f32(blip::BFloat16{b[k][2 * n + 1]});
      }
      wrong += result[m][n] != sum;
    }
  CHECK(wrong == 0);
  // A result below the normal range is flushed: 2^-100 · 2^-30 (both normal bf16) is denormal in f32.
  std::uint16_t tiny_a[16][32] = {}, tiny_b[16][32] = {};
  tiny_a[0][0] = blip::f32_to_bf16(std::ldexp(1.0f, -100)).bits;
  tiny_b[0][0] = blip::f32_to_bf16(std::ldexp(1.0f, -30)).bits;
  Tiles::zero<0>();
  Tiles::load<1>(tiny_a, 64);
  Tiles::load<2>(tiny_b, 64);
  Tiles::dot_bf16<0, 1, 2>();
  Tiles::store<0>(result, 64);
  CHECK(result[0][0] == 0.0f);
}

TEST_CASE("AMX: the hardware tiles give the emulated tiles' results") {
  if (!blip::kernels::kernel_path_supported(KernelPath::Amx)) {
    MESSAGE("no AMX here: the tile instructions are tested on their scalar model only");
    return;
  }
  std::mt19937 generator(408);
  std::int64_t differing = 0, total = 0;
  double worst = 0;
  for (const auto& [rows, in, out] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 768, 300},
                                      {12, 131, 70}, {16, 16, 32}, {40, 767, 96}, {203, 769, 70}}) {
    const Problem problem = make_problem(rows, in, out, true, 1, 2, generator, -1.0f, 1.0f,
                                         blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16);
    std::vector<float> hardware = nan_filled(rows * problem.y_stride), emulated = hardware;
    kernel_detail::linear_using(KernelPath::Amx, problem.x.data(), problem.x_stride, rows, problem.weights,
                                hardware.data(), problem.y_stride);
    kernel_detail::linear_blocked(kernel_detail::linear_micro_kernels_amx_bf16_emulated(), problem.x.data(),
                                  problem.x_stride, rows, problem.weights, emulated.data(), problem.y_stride);
    double largest = 0, difference = 0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t o = 0; o < out; ++o) {
        const float h = hardware[static_cast<std::size_t>(r * problem.y_stride + o)];
        const float e = emulated[static_cast<std::size_t>(r * problem.y_stride + o)];
        differing += !(h == e);
        largest = std::max(largest, static_cast<double>(std::abs(e)));
        difference = std::max(difference, std::isnan(h) ? 1e30 : static_cast<double>(std::abs(h - e)));
        ++total;
      }
    worst = std::max(worst, difference / largest);  // relative to the problem's largest output
  }
  // Each sum is one f32 add per input in the model; should the hardware round its 16-input steps otherwise, the
  // bits may differ (the kernel tests above bound the error against the double reference either way).
  MESSAGE("AMX hardware vs its scalar model: ", differing, " of ", total, " outputs differ, largest difference ",
          worst, " of the largest output");
  CHECK(worst < 1e-5);
}

TEST_CASE("cpu_model decodes CPUID's vendor, family and model; decode prefetches into L2 only where measured faster") {
  auto word = [](const char* four) {
    unsigned value = 0;
    for (int i = 0; i < 4; ++i) value |= static_cast<unsigned>(static_cast<unsigned char>(four[i])) << (8 * i);
    return value;
  };
  const unsigned amd[3] = {word("Auth"), word("enti"), word("cAMD")};
  const unsigned intel[3] = {word("Genu"), word("ineI"), word("ntel")};
  // Leaf 1 EAX of real parts: EPYC 7003 (Zen 3), EPYC 9004 (Zen 4), EPYC 9005 (Zen 5), Xeon 4th gen (Sapphire Rapids).
  const blip::kernels::CpuModel zen3 = blip::kernels::cpu_model_from_cpuid(amd[0], amd[1], amd[2], 0x00a00f11u);
  const blip::kernels::CpuModel zen4 = blip::kernels::cpu_model_from_cpuid(amd[0], amd[1], amd[2], 0x00a10f11u);
  const blip::kernels::CpuModel zen5 = blip::kernels::cpu_model_from_cpuid(amd[0], amd[1], amd[2], 0x00b00f21u);
  const blip::kernels::CpuModel sapphire =
      blip::kernels::cpu_model_from_cpuid(intel[0], intel[1], intel[2], 0x000806f8u);
  CHECK((zen3.amd && !zen3.intel && zen3.family == 0x19 && zen3.model == 0x01));
  CHECK((zen4.amd && zen4.family == 0x19 && zen4.model == 0x11));
  CHECK((zen5.amd && zen5.family == 0x1a && zen5.model == 0x02));
  CHECK((sapphire.intel && !sapphire.amd && sapphire.family == 6 && sapphire.model == 0x8f));
  CHECK(!blip::kernels::cpu_model_from_cpuid(word("Cent"), word("aurH"), word("auls"), 0x000006f2u).amd);
  using kernel_detail::kNeverPrefetchToL2;
  using kernel_detail::prefetch_to_l2_min_rows_for;
  CHECK(prefetch_to_l2_min_rows_for(zen4, true) == 4);
  CHECK(prefetch_to_l2_min_rows_for(zen4, false) == kNeverPrefetchToL2);  // a Zen 4 without AVX-512 exposed: unmeasured
  CHECK(prefetch_to_l2_min_rows_for(zen3, false) == kNeverPrefetchToL2);
  CHECK(prefetch_to_l2_min_rows_for(zen5, true) == kNeverPrefetchToL2);
  CHECK(prefetch_to_l2_min_rows_for(sapphire, true) == kNeverPrefetchToL2);
  const blip::kernels::CpuModel& here = blip::kernels::cpu_model();
  const std::int64_t l2_rows = kernel_detail::prefetch_to_l2_min_rows();
  MESSAGE("this CPU: ", std::string(here.amd ? "AMD" : here.intel ? "Intel" : "other"), " family ", here.family,
          " model ", here.model, "; decode prefetches into L2 ",
          l2_rows == kNeverPrefetchToL2 ? std::string("never") : "from " + std::to_string(l2_rows) + " rows");
}

TEST_CASE("l2_cache_bytes decodes CPUID leaf 0x80000006 (the prefill driver's rows-in-L2 rule)") {
  // ECX as Zen 3 (512 KiB, 8-way), Zen 5 (1 MiB, 16-way) and Sapphire Rapids (2 MiB) report it: KiB in bits 31-16,
  // associativity and line size below.
  CHECK(blip::kernels::l2_cache_bytes_from_cpuid(0x02006140u, 1) == std::int64_t{512} << 10);
  CHECK(blip::kernels::l2_cache_bytes_from_cpuid(0x04008140u, 1) == std::int64_t{1} << 20);
  CHECK(blip::kernels::l2_cache_bytes_from_cpuid(0x08007040u, 1) == std::int64_t{2} << 20);
  CHECK(blip::kernels::l2_cache_bytes_from_cpuid(0x00000000u, 12345) == 12345);  // not reported: the fallback
  const std::int64_t here = blip::kernels::l2_cache_bytes();
  CHECK(here >= std::int64_t{64} << 10);
  MESSAGE("this CPU's L2 per core: ", here >> 10, " KiB");
}

}  // namespace kernels_linear_test
