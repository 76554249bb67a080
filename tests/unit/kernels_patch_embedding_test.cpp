// Tests of blip/kernels/patch_embedding.hpp: im2col + GEMM against the direct
// convolution (double accumulation), and the torch layout of the output.
//
// Bound, per output element, as in kernels_linear_test.cpp with K = C·p·p:
//     |y - y_ref| ≤ 4 · ε_f32 · √K · max_patch ‖patch‖₂ · max_h ‖W_h‖₂ + 2 · ε_f32 · max |b|
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "blip/kernels/patch_embedding.hpp"
#include "test_support.hpp"

namespace kernels_patch_embedding_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::Error;
using blip::Shape;
using blip::Tensor;
using blip::kernels::PatchEmbeddingWeights;

constexpr double kEpsilon = std::numeric_limits<float>::epsilon();

Tensor<float> random_tensor(const Shape& shape, std::mt19937& generator) {
  Tensor<float> tensor(shape);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = distribution(generator);
  return tensor;
}

double max_row_norm(const float* data, std::int64_t rows, std::int64_t length) {
  double largest = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::int64_t i = 0; i < length; ++i) sum += static_cast<double>(data[r * length + i]) * data[r * length + i];
    largest = std::max(largest, std::sqrt(sum));
  }
  return largest;
}

// Largest |y - y_ref| / bound (≤ 1 passes).
double compare_with_naive(std::int64_t batch, std::int64_t channels, std::int64_t height, std::int64_t width,
                          std::int64_t patch, std::int64_t hidden, bool with_bias, std::mt19937& generator) {
  const Tensor<float> conv_weight = random_tensor(Shape{hidden, channels, patch, patch}, generator);
  const Tensor<float> conv_bias = with_bias ? random_tensor(Shape{hidden}, generator) : Tensor<float>();
  const PatchEmbeddingWeights weights = PatchEmbeddingWeights::prepare(conv_weight, conv_bias);
  const Tensor<float> pixels = random_tensor(Shape{batch, channels, height, width}, generator);
  const std::int64_t patches = (height / patch) * (width / patch);
  Tensor<float> out(Shape{batch, patches, hidden}), reference(Shape{batch, patches, hidden});
  out.fill(std::numeric_limits<float>::quiet_NaN());
  blip::kernels::patch_embedding(pixels, weights, out);
  blip::kernels::patch_embedding_naive(pixels, weights, reference);

  // Largest patch norm: every patch is made of pixels, so bound it by the image's largest pixel times √K.
  const std::int64_t depth = channels * patch * patch;
  double largest_pixel = 0, largest_bias = 0;
  for (std::int64_t i = 0; i < pixels.numel(); ++i)
    largest_pixel = std::max(largest_pixel, std::abs(static_cast<double>(pixels.data()[i])));
  for (std::int64_t i = 0; !conv_bias.empty() && i < conv_bias.numel(); ++i)
    largest_bias = std::max(largest_bias, std::abs(static_cast<double>(conv_bias.data()[i])));
  const double patch_norm = largest_pixel * std::sqrt(static_cast<double>(depth));
  const double bound = 4 * kEpsilon * std::sqrt(static_cast<double>(depth)) * patch_norm *
                           max_row_norm(conv_weight.data(), hidden, depth) +
                       2 * kEpsilon * largest_bias;
  double worst = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    const double difference = std::abs(static_cast<double>(out.data()[i]) - reference.data()[i]);
    if (std::isnan(difference)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, difference / bound);
  }
  return worst;
}

}  // namespace

TEST_CASE("patch_embedding matches the direct convolution") {
  std::mt19937 generator(16);
  struct Case {
    std::int64_t batch, channels, height, width, patch, hidden;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 1, 1},      // degenerate
      {2, 3, 15, 10, 5, 7},    // non-square grid, odd sizes
      {3, 3, 32, 48, 16, 40},  // several images
      {1, 2, 28, 14, 14, 33},  // BLIP-2 ViT-g patch size 14, partial panel
      {1, 3, 224, 224, 16, 768},  // ViT-B/16 at 224 px: 196 patches x 768
  };
  for (const Case& c : cases) {
    for (bool with_bias : {true, false}) {
      CAPTURE(c.batch);
      CAPTURE(c.channels);
      CAPTURE(c.height);
      CAPTURE(c.width);
      CAPTURE(c.patch);
      CAPTURE(c.hidden);
      CAPTURE(with_bias);
      CHECK(compare_with_naive(c.batch, c.channels, c.height, c.width, c.patch, c.hidden, with_bias, generator) <=
            1.0);
    }
  }
}

TEST_CASE("patch_embedding follows torch's conv -> flatten(2) -> transpose(1, 2) layout") {
  // Output feature h of a weight that is 1 at (channel c_h, y_h, x_h) and 0
  // elsewhere is exactly that pixel of each patch, so every value is known.
  const std::int64_t channels = 2, patch = 3, height = 6, width = 9, hidden = 4;
  const std::int64_t selected[hidden][3] = {{0, 0, 0}, {1, 2, 1}, {0, 1, 2}, {1, 0, 2}};
  Tensor<float> conv_weight(Shape{hidden, channels, patch, patch});
  for (std::int64_t h = 0; h < hidden; ++h) conv_weight.at(h, selected[h][0], selected[h][1], selected[h][2]) = 1.0f;
  Tensor<float> conv_bias(Shape{hidden});
  conv_bias.at(3) = 0.5f;
  const PatchEmbeddingWeights weights = PatchEmbeddingWeights::prepare(conv_weight, conv_bias);
  CHECK(weights.channels == channels);
  CHECK(weights.patch_size == patch);
  CHECK(weights.hidden == hidden);

  Tensor<float> pixels(Shape{2, channels, height, width});
  for (std::int64_t i = 0; i < pixels.numel(); ++i) pixels.data()[i] = static_cast<float>(i);
  Tensor<float> out(Shape{2, 6, hidden}), naive(Shape{2, 6, hidden});
  blip::kernels::patch_embedding(pixels, weights, out);
  blip::kernels::patch_embedding_naive(pixels, weights, naive);
  for (std::int64_t image = 0; image < 2; ++image) {
    for (std::int64_t patch_index = 0; patch_index < 6; ++patch_index) {
      const std::int64_t patch_row = patch_index / 3, patch_column = patch_index % 3;  // row-major patches
      for (std::int64_t h = 0; h < hidden; ++h) {
        const float expected = pixels.at(image, selected[h][0], patch_row * patch + selected[h][1],
                                         patch_column * patch + selected[h][2]) +
                               conv_bias.at(h);
        CHECK(out.at(image, patch_index, h) == expected);
        CHECK(naive.at(image, patch_index, h) == expected);
      }
    }
  }
}

TEST_CASE("patch_embedding rejects mismatched shapes with a clear message") {
  std::mt19937 generator(2);
  const PatchEmbeddingWeights weights =
      PatchEmbeddingWeights::prepare(random_tensor(Shape{8, 3, 4, 4}, generator), random_tensor(Shape{8}, generator));
  Tensor<float> out(Shape{1, 4, 8});
  CHECK_THROWS_WITH_AS(blip::kernels::patch_embedding(Tensor<float>(Shape{1, 3, 8, 10}), weights, out),
                       doctest::Contains("8x10 must be multiples of the patch size 4"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::patch_embedding(Tensor<float>(Shape{1, 1, 8, 8}), weights, out),
                       doctest::Contains("pixels must be [batch, 3, height, width], got shape [1, 1, 8, 8]"), Error);
  CHECK_THROWS_WITH_AS(blip::kernels::patch_embedding(Tensor<float>(Shape{1, 3, 8, 8}), weights,
                                                      Tensor<float>(Shape{1, 5, 8})),
                       doctest::Contains("out has shape [1, 5, 8], expected [1, 4, 8]"), Error);
  CHECK_THROWS_WITH_AS(PatchEmbeddingWeights::prepare(Tensor<float>(Shape{8, 3, 4, 5}), Tensor<float>()),
                       doctest::Contains("[hidden, channels, patch, patch]"), Error);
  CHECK_THROWS_WITH_AS(PatchEmbeddingWeights::prepare(Tensor<float>(Shape{8, 3, 4, 4}), Tensor<float>(Shape{7})),
                       doctest::Contains("conv bias must be [8]"), Error);
}

}  // namespace kernels_patch_embedding_test
