// Activations and softmax: the fast kernels against the double-precision
// `_naive` references (tolerances scaled by each function's conditioning, see
// the bounds below and in activations.hpp), plus values printed by torch /
// HF's ACT2FN so that the formulas themselves are pinned.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blip/kernels/activations.hpp"
#include "blip/kernels/softmax.hpp"
#include "test_support.hpp"

namespace kernels_activations_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;
using namespace blip::kernels;

namespace {

constexpr double kEps = FLT_EPSILON;  // 2^-23

std::vector<float> activation_test_points() {
  std::vector<float> points;
  std::mt19937 generator(1234);
  std::uniform_real_distribution<float> wide(-20.0f, 20.0f);
  std::normal_distribution<float> typical(0.0f, 2.0f);
  for (int i = 0; i < 500000; ++i) points.push_back(wide(generator));
  for (int i = 0; i < 500000; ++i) points.push_back(typical(generator));
  // Special values: zero, tiny, the cut-off thresholds, beyond the exp range.
  for (float value : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 13.19f, -13.19f, 13.2f, -13.2f, 9.99f, -9.99f,
                      50.0f, -50.0f, 1e4f, -1e4f, 3e38f, -3e38f})
    points.push_back(value);
  points.push_back(17.0f);  // an odd count: the last chunk is partial
  return points;
}

// The exponent magnitude `a` of each function (see activations.hpp).
double exponent_magnitude(Activation activation, double x) {
  switch (activation) {
    case Activation::GeluErf: return 0.5 * x * x;
    case Activation::GeluTanh: return 2.0 * std::sqrt(2.0 / M_PI) * std::fabs(x + 0.044715 * x * x * x);
    case Activation::QuickGelu: return 1.702 * std::fabs(x);
    case Activation::Relu: return 0.0;
  }
  return 0.0;
}

// Max of |fast - exact| / (eps·(1 + a)·|exact| + 1e-37) over the points; must be <= 8.
double worst_scaled_error(Activation activation, const std::vector<float>& points, KernelPath path) {
  std::vector<float> fast = points, reference = points;
  apply_activation(activation, fast.data(), static_cast<std::int64_t>(fast.size()), path);
  apply_activation_naive(activation, reference.data(), static_cast<std::int64_t>(reference.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double allowed = kEps * (1.0 + exponent_magnitude(activation, points[i])) * std::fabs(reference[i]) + 1e-37;
    const double error = std::fabs(static_cast<double>(fast[i]) - reference[i]);
    worst = std::max(worst, error / allowed);
    if (!(error <= 8.0 * allowed)) {
      INFO("activation ", std::string(activation_name(activation)), " path ", std::string(kernel_path_name(path)),
           " x = ", points[i], " fast ",
           fast[i], " exact ", reference[i]);
      CHECK(error <= 8.0 * allowed);
      break;
    }
  }
  return worst;
}

void check_torch_values(Activation activation, const std::vector<float>& torch_values) {
  const std::vector<float> inputs = {-6.0f, -3.0f, -1.0f, -0.5f, -1e-3f, 0.0f, 1e-3f, 0.5f, 1.0f, 2.5f, 6.0f};
  std::vector<float> values = inputs;
  apply_activation(activation, values.data(), static_cast<std::int64_t>(values.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    INFO(activation_name(activation), "(", inputs[i], ") = ", values[i], ", torch ", torch_values[i]);
    // torch computes 1 + erf / 1 + tanh in float: ~1e-7 absolute per unit of |x|.
    CHECK(std::fabs(values[i] - torch_values[i]) <= 2e-7 * std::max(1.0f, std::fabs(inputs[i])));
  }
}

}  // namespace

TEST_CASE("activation names follow HF ACT2FN, unknown names are reported") {
  CHECK(parse_activation("gelu") == Activation::GeluErf);
  CHECK(parse_activation("gelu_python") == Activation::GeluErf);
  CHECK(parse_activation("gelu_new") == Activation::GeluTanh);
  CHECK(parse_activation("gelu_pytorch_tanh") == Activation::GeluTanh);
  CHECK(parse_activation("gelu_fast") == Activation::GeluTanh);
  CHECK(parse_activation("relu") == Activation::Relu);
  CHECK(parse_activation("quick_gelu") == Activation::QuickGelu);
  CHECK_THROWS_WITH_AS(parse_activation("swiglu"), doctest::Contains("\"swiglu\""), blip::Error);
}

TEST_CASE("activations match the double references within the documented bound, on every kernel path") {
  const std::vector<float> points = activation_test_points();
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    for (Activation activation : {Activation::GeluErf, Activation::GeluTanh, Activation::QuickGelu, Activation::Relu}) {
      const double worst = worst_scaled_error(activation, points, path);
      MESSAGE(std::string(kernel_path_name(path)), " ", std::string(activation_name(activation)), ": worst error = ", worst,
              " × FLT_EPSILON·(1 + a)·|exact|");
      CHECK(worst <= 8.0);
    }
  }
}

TEST_CASE("the vector exp is within 1 ulp of exp on every kernel path, 0 / inf / NaN at the edges, whatever the offset") {
  // Every float step of 2^-10 over the whole range, plus the edges.
  std::vector<float> arguments;
  for (double x = -110.0; x <= 90.0; x += 1.0 / 1024) arguments.push_back(static_cast<float>(x));
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float overflow = 88.72283935546875f;  // exp rounds to +inf from here on
  const float largest_finite = std::nextafter(overflow, 0.0f);
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    INFO("path ", std::string(kernel_path_name(path)));
    const auto kernels = kernels::detail::elementwise_kernels(path);
    std::vector<float> out(arguments.size());
    kernels.exp_shifted(arguments.data(), out.data(), static_cast<std::int64_t>(arguments.size()), 0.0f);
    double worst_ulp = 0.0;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
      const double exact = std::exp(static_cast<double>(arguments[i]));
      if (exact > FLT_MAX) {  // beyond the largest float (and its half ulp: 88.7228394 is the first such float)
        CHECK(out[i] == inf);
        continue;
      }
      if (exact < FLT_MIN) {
        // Subnormal results: right to their own precision (2^-149 steps), exactly 0 below -104.
        if (arguments[i] < -104.0f) CHECK(out[i] == 0.0f);
        else CHECK(std::fabs(out[i] - exact) <= 2.0 * std::ldexp(1.0, -149) + 1e-6 * exact);
        continue;
      }
      const double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
      worst_ulp = std::max(worst_ulp, std::fabs(out[i] - exact) / ulp);
    }
    MESSAGE(std::string(kernel_path_name(path)), ": exp worst error ", worst_ulp, " ulp");
    CHECK(worst_ulp <= 1.0);
    // Edges, and a shift: exp(x - shift).
    const std::vector<float> edges = {-inf, inf, nan, overflow, largest_finite, -104.5f, 0.0f, -0.0f, 1.0f};
    std::vector<float> edge_out(edges.size());
    kernels.exp_shifted(edges.data(), edge_out.data(), static_cast<std::int64_t>(edges.size()), 0.0f);
    CHECK(edge_out[0] == 0.0f);
    CHECK(edge_out[1] == inf);
    CHECK(std::isnan(edge_out[2]));
    CHECK(edge_out[3] == inf);
    CHECK(std::isfinite(edge_out[4]));
    CHECK(edge_out[4] > 3.4e38f);
    CHECK(edge_out[5] == 0.0f);
    CHECK(edge_out[6] == 1.0f);
    CHECK(edge_out[7] == 1.0f);
    kernels.exp_shifted(edges.data() + 8, edge_out.data(), 1, 1.0f);
    CHECK(edge_out[0] == 1.0f);
    // The same bits wherever a value sits: every offset and length of a 40-float window, in place too.
    std::vector<float> whole(40), piece(40);
    for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = -3.0f + 0.37f * static_cast<float>(i);
    std::vector<float> expected(whole.size());
    kernels.exp_shifted(whole.data(), expected.data(), 40, 0.5f);
    for (std::int64_t offset = 0; offset < 40; ++offset) {
      for (std::int64_t length = 1; offset + length <= 40; length += 7) {
        std::vector<float> in_place(whole.begin() + offset, whole.begin() + offset + length);
        kernels.exp_shifted(in_place.data(), in_place.data(), length, 0.5f);
        for (std::int64_t i = 0; i < length; ++i) CHECK(in_place[i] == expected[offset + i]);
      }
    }
  }
}

TEST_CASE("the vector maximum equals the scalar scan's bits on every kernel path: NaNs skipped, the first of two zeros") {
  // The scan softmax used before: maximum = std::max(maximum, x[i]) from -inf.
  auto scan = [](const float* x, std::int64_t count) {
    float maximum = -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < count; ++i) maximum = std::max(maximum, x[i]);
    return maximum;
  };
  auto same_bits = [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; };
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::mt19937 generator(77);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  for (KernelPath path : blip::test::supported_kernel_paths()) {
    INFO("path ", std::string(kernel_path_name(path)));
    const auto kernels = kernels::detail::elementwise_kernels(path);
    // Every length up to 3 vectors of 16 and past them, the maximum at every position in turn.
    for (std::int64_t count = 0; count <= 70; ++count) {
      std::vector<float> x(static_cast<std::size_t>(count));
      for (float& value : x) value = normal(generator);
      CHECK(same_bits(kernels.maximum(x.data(), count), scan(x.data(), count)));
      for (std::int64_t at = 0; at < count; ++at) {
        std::vector<float> with_peak = x;
        with_peak[at] = 1000.0f;
        CHECK(kernels.maximum(with_peak.data(), count) == 1000.0f);
      }
    }
    // NaNs are skipped wherever they are; all NaN or all -inf gives -inf.
    std::vector<float> with_nan = {nan, -5.0f, nan, 3.0f, -2.0f, nan};
    for (int repeat = 0; repeat < 5; ++repeat) with_nan.insert(with_nan.end(), with_nan.begin(), with_nan.begin() + 6);
    CHECK(kernels.maximum(with_nan.data(), static_cast<std::int64_t>(with_nan.size())) == 3.0f);
    const std::vector<float> all_nan(37, nan), all_lowest(37, -inf);
    CHECK(kernels.maximum(all_nan.data(), 37) == -inf);
    CHECK(kernels.maximum(all_lowest.data(), 37) == -inf);
    const std::vector<float> with_inf = {1.0f, inf, 2.0f};
    CHECK(kernels.maximum(with_inf.data(), 3) == inf);
    // A zero maximum keeps the first zero's sign, as the scan does, whichever lane the zeros fall in.
    for (std::int64_t count : {3, 17, 40}) {
      for (std::int64_t first = 0; first + 1 < count; first += 5) {
        std::vector<float> zeros(static_cast<std::size_t>(count), -1.0f);
        zeros[first] = -0.0f;
        zeros[count - 1] = 0.0f;
        CHECK(same_bits(kernels.maximum(zeros.data(), count), -0.0f));
        zeros[first] = 0.0f;
        zeros[count - 1] = -0.0f;
        CHECK(same_bits(kernels.maximum(zeros.data(), count), 0.0f));
      }
    }
  }
}

TEST_CASE("activations keep a few-ulp relative accuracy where values are not tiny") {
  // |x| <= 3: the region that matters; here the bound is ~1e-6 relative.
  std::vector<float> points;
  for (int i = -30000; i <= 30000; ++i) points.push_back(static_cast<float>(i) * 1e-4f);
  for (KernelPath path : blip::test::supported_kernel_paths())
  for (Activation activation : {Activation::GeluErf, Activation::GeluTanh, Activation::QuickGelu}) {
    std::vector<float> fast = points, reference = points;
    apply_activation(activation, fast.data(), static_cast<std::int64_t>(fast.size()), path);
    apply_activation_naive(activation, reference.data(), static_cast<std::int64_t>(reference.size()));
    double worst_relative = 0.0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (reference[i] == 0.0f) {
        CHECK(fast[i] == 0.0f);
        continue;
      }
      worst_relative = std::max(worst_relative, std::fabs(static_cast<double>(fast[i]) - reference[i]) / std::fabs(reference[i]));
    }
    MESSAGE(std::string(kernel_path_name(path)), " ", std::string(activation_name(activation)),
            ": worst relative error on [-3, 3] = ", worst_relative);
    CHECK(worst_relative < 1.5e-6);
  }
}

TEST_CASE("activations agree with torch / HF ACT2FN values") {
  check_torch_values(Activation::GeluErf, {0.0f, -0.00404986739f, -0.158655286f, -0.154268786f, -0.000499601127f, 0.0f,
                                           0.000500398921f, 0.345731199f, 0.841344714f, 2.48447585f, 6.0f});
  check_torch_values(Activation::GeluTanh, {-0.0f, -0.00363743305f, -0.158807993f, -0.154285997f, -0.000499601068f, 0.0f,
                                            0.000500398979f, 0.345714003f, 0.841192007f, 2.48491573f, 6.0f});
  check_torch_values(Activation::QuickGelu, {-0.00022035357f, -0.0180713106f, -0.154204234f, -0.149611562f,
                                             -0.000499574526f, 0.0f, 0.000500425522f, 0.350388438f, 0.845795751f,
                                             2.46501398f, 5.9997797f});
  check_torch_values(Activation::Relu, {0, 0, 0, 0, 0, 0, 0.00100000005f, 0.5f, 1.0f, 2.5f, 6.0f});
}

TEST_CASE("the exp-based gelu_tanh equals the textbook 0.5x(1 + tanh(u)) in double") {
  for (double x = -4.0; x <= 4.0; x += 0.01) {
    const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
    CHECK(gelu_tanh_exact(x) == doctest::Approx(0.5 * x * (1.0 + std::tanh(u))).epsilon(1e-12));
    CHECK(gelu_erf_exact(x) == doctest::Approx(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)))).epsilon(1e-12));
  }
}

TEST_CASE("activations propagate NaN and handle infinities like torch") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (KernelPath path : blip::test::supported_kernel_paths())
  for (Activation activation : {Activation::GeluErf, Activation::GeluTanh, Activation::QuickGelu, Activation::Relu}) {
    float values[3] = {nan, inf, 1.0f};
    apply_activation(activation, values, 3, path);
    CHECK(std::isnan(values[0]));
    CHECK(values[1] == inf);
  }
}

TEST_CASE("gated_activation = act(gate) * up (T5 gelu_new and gelu), at odd sizes, also in place") {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (const Activation activation : {Activation::GeluTanh, Activation::GeluErf})
  for (std::int64_t n : {1, 15, 256, 257, 1000, 5121}) {
    CAPTURE(activation_name(activation));
    std::vector<float> gate(n), up(n), out(n), reference(n);
    for (auto& v : gate) v = normal(generator);
    for (auto& v : up) v = normal(generator);
    gated_activation(activation, gate.data(), up.data(), out.data(), n);
    gated_activation_naive(activation, gate.data(), up.data(), reference.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      const double a = exponent_magnitude(activation, gate[i]);
      CHECK(std::fabs(out[i] - reference[i]) <= 8.0 * kEps * (1.0 + a) * std::fabs(reference[i]) + 1e-37);
    }
    gated_activation(activation, gate.data(), up.data(), gate.data(), n);  // out aliases gate
    CHECK(gate == out);
  }
}

// ---- softmax -----------------------------------------------------------------

namespace {
std::vector<float> random_logits(std::int64_t count, float scale, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (auto& v : values) v = normal(generator);
  return values;
}
double row_max(const float* row, std::int64_t width) {
  double maximum = row[0];
  for (std::int64_t j = 1; j < width; ++j) maximum = std::max<double>(maximum, row[j]);
  return maximum;
}
}  // namespace

TEST_CASE("softmax_rows matches the double reference at odd sizes and large logits") {
  // Bound per element: |p - p_ref| <= 8·eps·(4 + log2(width) + |x_j - max|)·p_ref + 1e-37:
  // exp's argument x_j - max is rounded to float (relative error eps·|x_j - max|
  // in exp), the row sum carries ~log2(width)·eps.
  for (std::int64_t width : {1, 2, 7, 16, 33, 100, 577, 1000, 30524}) {
    for (float scale : {1.0f, 10.0f, 200.0f}) {
      const std::int64_t rows = width > 5000 ? 2 : 5;
      std::vector<float> input = random_logits(rows * width, scale, static_cast<std::uint32_t>(width * 7 + scale));
      input[0] += 1000.0f;  // a large offset in one row: the max subtraction must handle it
      std::vector<float> fast = input, reference = input;
      softmax_rows(fast.data(), rows, width);
      softmax_rows_naive(reference.data(), rows, width);
      for (std::int64_t r = 0; r < rows; ++r) {
        const double maximum = row_max(input.data() + r * width, width);
        double sum = 0.0;
        for (std::int64_t j = 0; j < width; ++j) {
          const std::int64_t i = r * width + j;
          const double allowed =
              8.0 * kEps * (4.0 + std::log2(static_cast<double>(width)) + (maximum - input[i])) * reference[i] + 1e-37;
          if (!(std::fabs(fast[i] - reference[i]) <= allowed)) {
            INFO("width ", width, " scale ", scale, " row ", r, " j ", j, ": ", fast[i], " vs ", reference[i]);
            CHECK(std::fabs(fast[i] - reference[i]) <= allowed);
          }
          sum += fast[i];
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("log_softmax_rows matches the double reference and torch") {
  for (std::int64_t width : {1, 3, 17, 64, 1000, 30524}) {
    for (float scale : {1.0f, 30.0f}) {
      const std::int64_t rows = 3;
      std::vector<float> input = random_logits(rows * width, scale, static_cast<std::uint32_t>(width + 11));
      std::vector<float> fast = input, reference = input;
      log_softmax_rows(fast.data(), rows, width);
      log_softmax_rows_naive(reference.data(), rows, width);
      for (std::int64_t r = 0; r < rows; ++r) {
        const double maximum = row_max(input.data() + r * width, width);
        const double log_sum = (input[r * width] - maximum) - reference[r * width];  // out = (x - max) - log_sum
        for (std::int64_t j = 0; j < width; ++j) {
          const std::int64_t i = r * width + j;
          // (x - max) and log_sum are each rounded once, the sum inside log carries log2(width)·eps.
          const double allowed =
              4.0 * kEps * ((maximum - input[i]) + std::fabs(log_sum) + 4.0 + std::log2(static_cast<double>(width)));
          CHECK(std::fabs(fast[i] - reference[i]) <= allowed);
        }
      }
    }
  }
  // torch.log_softmax / torch.softmax of two small rows (values printed by torch 1.13).
  std::vector<float> x = {1.0f, 2.0f, 3.0f, -1.0f, 1000.0f, 1001.0f, 999.0f, -5.0f};
  std::vector<float> p = x;
  log_softmax_rows(x.data(), 2, 4);
  const float torch_log[8] = {-2.4197165966033936f, -1.4197165966033936f, -0.41971665620803833f, -4.419716835021973f,
                              -1.4076058864593506f, -0.40760594606399536f, -2.4076058864593506f, -1006.4075927734375f};
  for (int i = 0; i < 8; ++i) CHECK(x[i] == doctest::Approx(torch_log[i]).epsilon(1e-6));
  softmax_rows(p.data(), 2, 4);
  const float torch_softmax[8] = {0.08894681185483932f, 0.2417825162410736f, 0.6572329998016357f, 0.012037642300128937f,
                                  0.2447284758090973f, 0.6652409434318542f, 0.09003057330846786f, 0.0f};
  for (int i = 0; i < 8; ++i) CHECK(p[i] == doctest::Approx(torch_softmax[i]).epsilon(1e-6));
  CHECK(p[7] < 1e-37f);
}

TEST_CASE("masked_softmax_rows: -10000, finfo.min and -inf masks, fully masked rows give no NaN") {
  const std::int64_t width = 5;
  const float lowest = std::numeric_limits<float>::lowest();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> mask = {0, 0, -10000, 0, -10000,  // mask row 0
                             lowest, lowest, lowest, lowest, lowest,  // row 1: everything masked with finfo.min
                             -inf, 0, -inf, -inf, -inf};              // row 2: -inf masks
  std::vector<float> x = random_logits(6 * width, 1.0f, 99);
  std::vector<float> fast = x, reference = x;
  masked_softmax_rows(fast.data(), 6, width, mask.data(), 2);  // rows 2r, 2r+1 share mask row r
  masked_softmax_rows_naive(reference.data(), 6, width, mask.data(), 2);
  for (std::size_t i = 0; i < fast.size(); ++i) {
    CHECK(!std::isnan(fast[i]));
    CHECK(std::fabs(fast[i] - reference[i]) <= 64 * kEps * std::max(reference[i], 1e-30f) + 1e-37);
  }
  // Masked keys get (essentially) zero weight.
  CHECK(fast[2] < 1e-30f);
  CHECK(fast[4] < 1e-30f);
  // finfo.min everywhere: every score rounds to finfo.min, so the weights are uniform (as in HF).
  for (std::int64_t j = 0; j < width; ++j) CHECK(fast[2 * width + j] == doctest::Approx(0.2).epsilon(1e-6));
  // -inf masks are clamped to finfo.min: the one open key gets everything.
  CHECK(fast[4 * width + 1] == doctest::Approx(1.0).epsilon(1e-6));
}

}  // namespace kernels_activations_test
