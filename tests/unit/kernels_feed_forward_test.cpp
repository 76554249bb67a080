// Feed-forward blocks (ViT/BERT/OPT MLP and T5 gated-gelu) against the
// references built from linear_naive and the double activations.
//
// Tolerance per output element o of row r, propagating the Linear bound
// (eps·√in·‖x_r‖·‖W_o‖, see docs/kernels.md) through the activation (Lipschitz
// constant ≤ 1.13 for the gelus, 1 for relu) and the second projection:
//   |y - y_ref| <= 4·eps·√I·‖W2_o‖·(1.13·√in·‖x_r‖·max_i‖W1_i‖ + ‖h_r‖)
// For the gated form the product p = gelu(g)·u carries the errors of both
// factors (each eps·E, E = √in·‖x_r‖·max‖W_i‖):
//   |y - y_ref| <= 4·eps·‖wo_o‖·(1.13·E·(‖u‖ + ‖g‖) + ‖p‖ + √I·‖p‖)
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "blip/kernels/feed_forward.hpp"
#include "test_support.hpp"

namespace kernels_feed_forward_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

namespace {

constexpr double kEps = FLT_EPSILON;

Tensor<float> random_tensor(const Shape& shape, float stddev, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Tensor<float> tensor(shape);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = normal(generator);
  return tensor;
}

LinearWeights random_linear(std::int64_t out, std::int64_t in, bool bias, std::uint32_t seed) {
  const Tensor<float> weight = random_tensor(Shape{out, in}, 1.0f / std::sqrt(static_cast<float>(in)), seed);
  const Tensor<float> bias_tensor = bias ? random_tensor(Shape{out}, 0.05f, seed + 1) : Tensor<float>();
  return LinearWeights::prepare(weight, bias_tensor);
}

double row_norm(const float* row, std::int64_t width) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < width; ++i) sum += static_cast<double>(row[i]) * row[i];
  return std::sqrt(sum);
}
double max_row_norm(const LinearWeights& linear) {
  double best = 0.0;
  const blip::Tensor<float> weight = linear.unpacked_weight();
  for (std::int64_t o = 0; o < linear.out_features(); ++o)
    best = std::max(best, row_norm(weight.data() + o * linear.in_features(), linear.in_features()));
  return best;
}

}  // namespace

TEST_CASE("feed_forward matches the reference at odd and model-like sizes, for every activation") {
  struct Size {
    std::int64_t rows, in, intermediate;
  };
  for (const Size size : {Size{1, 1, 1}, Size{3, 17, 33}, Size{7, 33, 65}, Size{1, 768, 3072}, Size{13, 96, 384}}) {
    for (Activation activation : {Activation::GeluErf, Activation::Relu, Activation::GeluTanh, Activation::QuickGelu}) {
      CAPTURE(size.rows);
      CAPTURE(size.in);
      CAPTURE(size.intermediate);
      const LinearWeights fc1 = random_linear(size.intermediate, size.in, true, 10);
      const LinearWeights fc2 = random_linear(size.in, size.intermediate, true, 20);
      const Tensor<float> x = random_tensor(Shape{size.rows, size.in}, 1.0f, 30);
      Tensor<float> hidden(Shape{size.rows, size.intermediate}), reference_hidden(Shape{size.rows, size.intermediate});
      Tensor<float> y(Shape{size.rows, size.in}), reference(Shape{size.rows, size.in});
      feed_forward(x, fc1, activation, fc2, hidden, y);
      feed_forward_naive(x.data(), size.rows, fc1, activation, fc2, reference_hidden.data(), reference.data());
      const double w1 = max_row_norm(fc1);
      const Tensor<float> fc2_weight = fc2.unpacked_weight();
      for (std::int64_t r = 0; r < size.rows; ++r) {
        const double x_norm = row_norm(x.data() + r * size.in, size.in);
        const double h_norm = row_norm(reference_hidden.data() + r * size.intermediate, size.intermediate);
        for (std::int64_t o = 0; o < size.in; ++o) {
          const double w2 = row_norm(fc2_weight.data() + o * size.intermediate, size.intermediate);
          const double allowed = 4.0 * kEps * std::sqrt(static_cast<double>(size.intermediate)) * w2 *
                                 (1.13 * std::sqrt(static_cast<double>(size.in)) * x_norm * w1 + h_norm);
          CHECK(std::fabs(y.at(r, o) - reference.at(r, o)) <= allowed);
        }
      }
      // In place: y over x.
      Tensor<float> in_place = x.clone();
      feed_forward(in_place.data(), size.rows, fc1, activation, fc2, hidden.data(), in_place.data());
      for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(in_place.data()[i] == y.data()[i]);
    }
  }
}

TEST_CASE("gated_feed_forward (T5, gelu_new and gelu) matches the reference") {
  struct Size {
    std::int64_t rows, model, intermediate;
  };
  for (const Activation activation : {Activation::GeluTanh, Activation::GeluErf})
  for (const Size size : {Size{1, 16, 64}, Size{5, 31, 47}, Size{2, 512, 1024}}) {
    CAPTURE(activation_name(activation));
    CAPTURE(size.rows);
    CAPTURE(size.model);
    const LinearWeights wi_0 = random_linear(size.intermediate, size.model, false, 40);
    const LinearWeights wi_1 = random_linear(size.intermediate, size.model, false, 50);
    const LinearWeights wo = random_linear(size.model, size.intermediate, false, 60);
    const Tensor<float> x = random_tensor(Shape{size.rows, size.model}, 1.0f, 70);
    const std::int64_t hidden_count = size.rows * size.intermediate;
    Tensor<float> gate(Shape{hidden_count}), up(Shape{hidden_count}), y(Shape{size.rows, size.model});
    std::vector<float> reference_gate(hidden_count), reference_up(hidden_count), reference(size.rows * size.model);
    gated_feed_forward(x, wi_0, wi_1, activation, wo, gate, up, y);
    gated_feed_forward_naive(x.data(), size.rows, wi_0, wi_1, activation, wo, reference_gate.data(),
                             reference_up.data(), reference.data());
    // The gate g = wi_0·x and up u = wi_1·x themselves, for the bound.
    std::vector<float> g(hidden_count), u(hidden_count);
    linear_naive(x.data(), size.model, size.rows, wi_0, g.data(), size.intermediate);
    linear_naive(x.data(), size.model, size.rows, wi_1, u.data(), size.intermediate);
    const double w_in = std::max(max_row_norm(wi_0), max_row_norm(wi_1));
    const Tensor<float> wo_weight = wo.unpacked_weight();
    for (std::int64_t r = 0; r < size.rows; ++r) {
      // Each g_i, u_i is off by eps·E, E = √model·‖x_r‖·max‖W_i‖ (the Linear bound).
      const double input_error = std::sqrt(static_cast<double>(size.model)) * row_norm(x.data() + r * size.model, size.model) * w_in;
      const double g_norm = row_norm(g.data() + r * size.intermediate, size.intermediate);
      const double u_norm = row_norm(u.data() + r * size.intermediate, size.intermediate);
      const double p_norm = row_norm(reference_gate.data() + r * size.intermediate, size.intermediate);  // gelu(g)·u
      // ‖δ(gelu(g)·u)‖ <= eps·(E·(1.13‖u‖ + 1.13‖g‖) + ‖p‖), then wo adds eps·√I·‖p‖·‖wo_o‖.
      const double product_error = input_error * 1.13 * (u_norm + g_norm) + p_norm;
      for (std::int64_t o = 0; o < size.model; ++o) {
        const double w2 = row_norm(wo_weight.data() + o * size.intermediate, size.intermediate);
        const double allowed =
            4.0 * kEps * w2 * (product_error + std::sqrt(static_cast<double>(size.intermediate)) * p_norm);
        CHECK(std::fabs(y.at(r, o) - reference[r * size.model + o]) <= allowed);
      }
    }
  }
}

TEST_CASE("feed-forward shape errors name the layers") {
  const LinearWeights fc1 = random_linear(8, 4, true, 1), fc2 = random_linear(4, 6, true, 2);
  Tensor<float> x(Shape{2, 4}), hidden(Shape{2, 8}), y(Shape{2, 4});
  CHECK_THROWS_WITH_AS(feed_forward(x, fc1, Activation::GeluErf, fc2, hidden, y),
                       doctest::Contains("fc1 has 8 outputs but fc2 expects 6 inputs"), blip::Error);
  const LinearWeights fc2_ok = random_linear(4, 8, true, 3);
  CHECK_THROWS_WITH_AS(feed_forward(x, fc1, Activation::GeluErf, fc2_ok, Tensor<float>(Shape{3}), y),
                       doctest::Contains("hidden scratch has 3 elements, needs 16"), blip::Error);
}

}  // namespace kernels_feed_forward_test
