// LayerNorm and T5's RMS norm against the double references (tolerance
// scaled by the normalised values, see normalization.hpp) and against values
// printed by torch.nn.LayerNorm / HF T5LayerNorm.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "blip/kernels/normalization.hpp"
#include "test_support.hpp"

namespace kernels_normalization_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

namespace {

constexpr double kEps = FLT_EPSILON;

std::vector<float> random_vector(std::int64_t count, float mean, float stddev, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> values(count);
  for (auto& v : values) v = normal(generator);
  return values;
}

// |y - y_ref| <= 16·eps·(|gamma|·(|x̂| + 1 + |mean|/std) + |beta|) per element:
// x̂ = (x - mean)/std is what is rounded; the mean itself is a float, off by up
// to ulp(mean)/2, which moves x̂ by eps·|mean|/std (the problem's own
// conditioning: torch's float LayerNorm has the same term).
void check_layer_norm_case(std::int64_t rows, std::int64_t width, float mean, float stddev, float eps, bool affine,
                           bool in_place, KernelPath path = active_kernel_path()) {
  INFO("path ", std::string(kernel_path_name(path)));
  CAPTURE(rows);
  CAPTURE(width);
  CAPTURE(mean);
  CAPTURE(stddev);
  CAPTURE(eps);
  CAPTURE(affine);
  const std::vector<float> x = random_vector(rows * width, mean, stddev, static_cast<std::uint32_t>(rows * 31 + width));
  const std::vector<float> gamma = random_vector(width, 1.0f, 0.5f, 5), beta = random_vector(width, 0.0f, 0.3f, 6);
  const float* gamma_data = affine ? gamma.data() : nullptr;
  const float* beta_data = affine ? beta.data() : nullptr;
  std::vector<float> fast = x, reference(x.size());
  layer_norm(in_place ? fast.data() : x.data(), rows, width, gamma_data, beta_data, eps, fast.data(), path);
  layer_norm_naive(x.data(), rows, width, gamma_data, beta_data, eps, reference.data());
  for (std::int64_t r = 0; r < rows; ++r) {
    double row_mean = 0.0, variance = 0.0;
    for (std::int64_t i = 0; i < width; ++i) row_mean += x[r * width + i];
    row_mean /= width;
    for (std::int64_t i = 0; i < width; ++i) variance += std::pow(x[r * width + i] - row_mean, 2);
    const double inverse_std = 1.0 / std::sqrt(variance / width + eps);
    for (std::int64_t i = 0; i < width; ++i) {
      const std::int64_t k = r * width + i;
      const double normalised = std::fabs((x[k] - row_mean) * inverse_std);
      const double g = affine ? std::fabs(gamma[i]) : 1.0, b = affine ? std::fabs(beta[i]) : 0.0;
      const double allowed = 16.0 * kEps * (g * (normalised + 1.0 + std::fabs(row_mean) * inverse_std) + b);
      if (!(std::fabs(fast[k] - reference[k]) <= allowed)) {
        INFO("row ", r, " column ", i, ": fast ", fast[k], " reference ", reference[k]);
        CHECK(std::fabs(fast[k] - reference[k]) <= allowed);
        return;
      }
    }
  }
}

}  // namespace

TEST_CASE("layer_norm matches the double reference at odd and model widths, on every kernel path") {
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    for (std::int64_t width : {1, 2, 7, 16, 33, 100, 768, 1409}) {
      for (std::int64_t rows : {1, 3, 17}) {
        check_layer_norm_case(rows, width, 0.0f, 1.0f, 1e-5f, true, false, path);
        check_layer_norm_case(rows, width, 3.0f, 10.0f, 1e-12f, true, false, path);
        check_layer_norm_case(rows, width, 0.0f, 1.0f, 1e-6f, false, false, path);
      }
    }
    // Many rows (the parallel path), in place.
    check_layer_norm_case(577, 768, 0.5f, 2.0f, 1e-6f, true, true, path);
    // A large mean with a small spread: the corrected two-pass mean matters.
    check_layer_norm_case(4, 1408, 100.0f, 0.01f, 1e-12f, true, false, path);
  }
}

TEST_CASE("a row's layer_norm and rms_norm do not depend on where the row sits in memory") {
  // Rows of a tiny model (24 floats: 96 bytes) sit at every 32-byte offset in a batch; with Eigen's sums, which
  // peel an unaligned head off, the second of two rows got other bits than the same row alone, and BLIP-2
  // captions differed with the batch size (tests/cli/check_folder.sh). Every float offset, every width up to 80.
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    INFO("path ", std::string(kernel_path_name(path)));
    for (std::int64_t width = 1; width <= 80; ++width) {
      CAPTURE(width);
      const std::vector<float> row = random_vector(width, 2.0f, 3.0f, static_cast<std::uint32_t>(width));
      const std::vector<float> gamma = random_vector(width, 1.0f, 0.5f, 5), beta = random_vector(width, 0.0f, 0.3f, 6);
      std::vector<float> first_layer(width), first_rms(width);
      bool same = true;
      for (std::int64_t offset = 0; offset < 16; ++offset) {
        std::vector<float> buffer(static_cast<std::size_t>(offset + width)), layer(width), rms(width);
        std::copy(row.begin(), row.end(), buffer.begin() + offset);
        layer_norm(buffer.data() + offset, 1, width, gamma.data(), beta.data(), 1e-5f, layer.data(), path);
        rms_norm(buffer.data() + offset, 1, width, gamma.data(), 1e-6f, rms.data(), path);
        if (offset == 0) {
          first_layer = layer;
          first_rms = rms;
        }
        same = same && layer == first_layer && rms == first_rms;
      }
      CHECK(same);
    }
  }
}

TEST_CASE("layer_norm of a constant row is exactly beta, even with eps = 1e-12") {
  std::vector<float> x(768, 0.1f), gamma(768, 2.0f), beta(768);
  for (int i = 0; i < 768; ++i) beta[i] = 0.001f * i;
  std::vector<float> y(768);
  layer_norm(x.data(), 1, 768, gamma.data(), beta.data(), 1e-12f, y.data());
  for (int i = 0; i < 768; ++i) CHECK(y[i] == beta[i]);
}

TEST_CASE("layer_norm agrees with torch.nn.LayerNorm; Tensor form checks shapes") {
  // torch: LayerNorm(4, eps=1e-5), weight [1, 2, 0.5, -1], bias [0, 0.1, -0.2, 0.3], x [1, 2, 4, -3].
  Tensor<float> x(Shape{1, 4}), y(Shape{1, 4}), gamma(Shape{4}), beta(Shape{4});
  const float x_values[4] = {1, 2, 4, -3}, gamma_values[4] = {1, 2, 0.5f, -1}, beta_values[4] = {0, 0.1f, -0.2f, 0.3f};
  for (int i = 0; i < 4; ++i) {
    x.data()[i] = x_values[i];
    gamma.data()[i] = gamma_values[i];
    beta.data()[i] = beta_values[i];
  }
  layer_norm(x, gamma, beta, 1e-5f, y);
  const float torch_values[4] = {0.0f, 0.8844639658927917f, 0.3883479833602905f, 1.8689279556274414f};
  for (int i = 0; i < 4; ++i) CHECK(y.data()[i] == doctest::Approx(torch_values[i]).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(layer_norm(x, Tensor<const float>(Shape{3}), beta, 1e-5f, y),
                       doctest::Contains("weight has 3 elements, expected 4"), blip::Error);
  CHECK_THROWS_AS(layer_norm(x, gamma, beta, 1e-5f, Tensor<float>(Shape{2, 4})), blip::Error);
}

TEST_CASE("rms_norm (T5LayerNorm) matches the double reference and HF, on every kernel path") {
  for (KernelPath path : blip::test::supported_kernel_paths())
  for (std::int64_t width : {1, 5, 16, 31, 512, 2048, 2049}) {
    for (std::int64_t rows : {1, 4, 33}) {
      INFO("path ", std::string(kernel_path_name(path)), " width ", width, " rows ", rows);
      const std::vector<float> x = random_vector(rows * width, 0.3f, 2.0f, static_cast<std::uint32_t>(width + rows));
      const std::vector<float> weight = random_vector(width, 1.0f, 0.5f, 17);
      std::vector<float> fast = x, reference(x.size());
      rms_norm(fast.data(), rows, width, weight.data(), 1e-6f, fast.data(), path);  // in place
      rms_norm_naive(x.data(), rows, width, weight.data(), 1e-6f, reference.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        double mean_square = 0.0;
        for (std::int64_t i = 0; i < width; ++i) mean_square += std::pow(x[r * width + i], 2);
        const double inverse_rms = 1.0 / std::sqrt(mean_square / width + 1e-6);
        for (std::int64_t i = 0; i < width; ++i) {
          const std::int64_t k = r * width + i;
          // Relative error of a few roundings plus the log2(width)·eps of the sum of squares.
          const double allowed = 8.0 * kEps * (2.0 + std::log2(static_cast<double>(width))) *
                                 std::fabs(weight[i] * x[k] * inverse_rms) + 1e-37;
          CHECK(std::fabs(fast[k] - reference[k]) <= allowed);
        }
      }
    }
  }
  // HF T5LayerNorm(4, eps=1e-6), weight [1, 2, 0.5, -1], x [1, 2, 4, -3]:
  const float x[4] = {1, 2, 4, -3}, weight[4] = {1, 2, 0.5f, -1};
  float y[4];
  rms_norm(x, 1, 4, weight, 1e-6f, y);
  const float hf_values[4] = {0.3651483654975891f, 1.4605934619903564f, 0.7302967309951782f, 1.095445156097412f};
  for (int i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(hf_values[i]).epsilon(1e-6));
}

TEST_CASE("normalization rejects bad arguments with a clear message") {
  float x[4] = {1, 2, 3, 4}, y[4];
  CHECK_THROWS_WITH_AS(layer_norm(x, 1, 0, nullptr, nullptr, 1e-5f, y), doctest::Contains("width > 0"), blip::Error);
  CHECK_THROWS_WITH_AS(rms_norm(x, 1, 4, nullptr, -1.0f, y), doctest::Contains("eps must be >= 0"), blip::Error);
}

}  // namespace kernels_normalization_test
