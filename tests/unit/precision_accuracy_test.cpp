// What each reduced precision costs against f32, measured on the fixture cases: every case run with its Linear
// weights in f32, bf16, f16, int8 and int4 (and bf16 weights times bf16 activations), compared with HF's own f32
// outputs (the fixture's outputs.safetensors):
//   - logits (every output whose name ends in "logits": teacher-forced LM logits, VQA answer logits, ITM logits):
//     max |diff| / max |ref| and mean |diff| / mean |ref| over all positions, and top-1 agreement (the share of
//     positions whose arg-max is the same);
//   - generated ids: how many sequences of every *_ids output are identical to HF's f32 ones.
// The table docs/kernels.md shows is this test's output ("precision accuracy" lines). The assertions are sanity
// bounds, loose enough for the tiny random models and tight enough to catch a broken format: f32 matches HF
// (1e-4), and each narrower format's error is below a bound that grows with its quantization step.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "parity/case_runner.hpp"
#include "test_support.hpp"

namespace precision_accuracy_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::ends_with;

namespace {

struct Setting {
  const char* name;
  blip::WeightPrecision weights;
  blip::ActivationPrecision activations;
  double max_error_bound;  // max |diff| / max |ref| over the logits
};

struct Accuracy {
  double max_error = 0, mean_error_sum = 0, mean_reference_sum = 0;
  std::int64_t positions = 0, top1_agreements = 0;
  std::int64_t sequences = 0, identical_sequences = 0;
};

void compare_logits(const blip::Tensor<float>& actual, const blip::Tensor<const float>& reference, Accuracy& accuracy) {
  REQUIRE(actual.numel() == reference.numel());
  const std::int64_t width = reference.shape().dim(-1), rows = reference.numel() / width;
  double largest = 0, difference = 0;
  for (std::int64_t i = 0; i < reference.numel(); ++i) {
    largest = std::max(largest, static_cast<double>(std::abs(reference.data()[i])));
    const double error = std::abs(static_cast<double>(actual.data()[i]) - reference.data()[i]);
    difference = std::max(difference, std::isnan(error) ? INFINITY : error);
    accuracy.mean_error_sum += error;
    accuracy.mean_reference_sum += std::abs(reference.data()[i]);
  }
  accuracy.max_error = std::max(accuracy.max_error, difference / std::max(largest, 1e-30));
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* got = actual.data() + row * width;
    const float* want = reference.data() + row * width;
    accuracy.top1_agreements += std::max_element(got, got + width) - got == std::max_element(want, want + width) - want;
    ++accuracy.positions;
  }
}

void compare_ids(const blip::Tensor<std::int64_t>& actual, const blip::Tensor<std::int64_t>& reference,
                 Accuracy& accuracy) {
  const std::int64_t sequences = reference.shape().dim(0);
  accuracy.sequences += sequences;
  if (actual.shape() != reference.shape()) return;
  const std::int64_t length = reference.numel() / sequences;
  for (std::int64_t s = 0; s < sequences; ++s)
    accuracy.identical_sequences += std::equal(actual.data() + s * length, actual.data() + (s + 1) * length,
                                               reference.data() + s * length);
}

}  // namespace

TEST_CASE("precision accuracy: each Linear precision against HF's f32 outputs on the fixtures (logits and ids)") {
  if (!blip::test::have_or_skip(blip::test::fixtures_dir(), "fixtures folder")) return;
  const Setting settings[] = {
      {"f32", blip::WeightPrecision::F32, blip::ActivationPrecision::F32, 1e-4},
      {"bf16", blip::WeightPrecision::BF16, blip::ActivationPrecision::F32, 0.05},
      {"bf16 x bf16 activations", blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16, 0.08},
      {"f16", blip::WeightPrecision::F16, blip::ActivationPrecision::F32, 0.01},
      {"int8", blip::WeightPrecision::Int8, blip::ActivationPrecision::F32, 0.1},
      {"int8 x int8 activations", blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8, 0.15},
      // 15 levels per block of 32 inputs: on models 16 .. 64 wide that is a coarse weight, and logit errors of the
      // order of the logits themselves are expected (its exactness is precision_fixtures_test's job).
      {"int4", blip::WeightPrecision::Int4, blip::ActivationPrecision::F32, 2.0},
      {"int4 x int8 activations", blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8, 2.0},
  };
  const char* cases[] = {"blip_caption", "blip_vqa", "blip_itm", "blip2_opt", "blip2_opt_imgtok", "blip2_t5", "blip2_itm"};
  std::printf("precision accuracy | setting | logits max rel. error | mean rel. error | top-1 agreement | identical "
              "generated sequences |\n");
  for (const Setting& setting : settings) {
    Accuracy accuracy;
    for (const char* case_name : cases) {
      const std::string directory = blip::test::fixture(case_name);
      if (!std::filesystem::exists(directory + "/case.json")) continue;
      blip::WeightOptions options;
      options.linear_precision = setting.weights;
      options.linear_activations = setting.activations;
      const blip::parity::CaseOutputs outputs = blip::parity::CaseRunner(directory, options).run();
      const blip::SafetensorsFile expected = blip::SafetensorsFile::open(directory + "/outputs.safetensors");
      for (const std::string& name : outputs.names) {
        INFO(case_name, " ", setting.name, " ", name);
        const auto& actual = outputs.tensors.at(name);
        if (ends_with(name, "logits") && std::holds_alternative<blip::Tensor<float>>(actual))
          compare_logits(std::get<blip::Tensor<float>>(actual), expected.to_f32(name), accuracy);
        else if (ends_with(name, "_ids") && std::holds_alternative<blip::Tensor<std::int64_t>>(actual))
          compare_ids(std::get<blip::Tensor<std::int64_t>>(actual), expected.to_i64(name), accuracy);
      }
    }
    if (accuracy.positions == 0) continue;
    const double mean_error = accuracy.mean_error_sum / std::max(accuracy.mean_reference_sum, 1e-30);
    const double agreement = static_cast<double>(accuracy.top1_agreements) / accuracy.positions;
    std::printf("precision accuracy | %s | %.2e | %.2e | %.1f%% (%lld positions) | %lld of %lld |\n", setting.name,
                accuracy.max_error, mean_error, 100.0 * agreement, static_cast<long long>(accuracy.positions),
                static_cast<long long>(accuracy.identical_sequences), static_cast<long long>(accuracy.sequences));
    CAPTURE(setting.name);
    CHECK(accuracy.max_error <= setting.max_error_bound);
    if (setting.weights == blip::WeightPrecision::F32) {
      CHECK(agreement == 1.0);
      CHECK(accuracy.identical_sequences == accuracy.sequences);
    }
  }
}

}  // namespace precision_accuracy_test
