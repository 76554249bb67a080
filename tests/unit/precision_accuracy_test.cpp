// What each reduced precision costs against f32, measured on the fixture cases: every case run with its Linear
// weights in f32, f16, bf16, int8 and int4 (and with bf16 or int8 activations), compared with HF's own f32
// outputs (the fixture's outputs.safetensors) by parity/precision_accuracy.hpp: the logits' max and mean relative
// error and top-1 agreement, and how many generated sequences stay identical. The table docs/kernels.md shows is
// this test's output ("precision accuracy" lines); `blip_run_case --accuracy` prints the same for any case folder
// (the full-size ones in docs/performance.md). The assertions are sanity bounds, loose enough for the tiny random
// models and tight enough to catch a broken format: f32 matches HF (1e-4), and each narrower format's error is
// below a bound that grows with its quantization step.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "parity/precision_accuracy.hpp"
#include "test_support.hpp"

namespace precision_accuracy_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::parity::PrecisionAccuracy;
using blip::parity::PrecisionSetting;

// max |diff| / max |ref| over the fixtures' logits that each setting must stay below.
double max_error_bound(const PrecisionSetting& setting) {
  switch (setting.weights) {
    case blip::WeightPrecision::F32: return 1e-4;
    case blip::WeightPrecision::F16: return 0.01;
    case blip::WeightPrecision::BF16: return setting.activations == blip::ActivationPrecision::BF16 ? 0.08 : 0.05;
    case blip::WeightPrecision::Int8: return setting.activations == blip::ActivationPrecision::Int8 ? 0.15 : 0.1;
    // 15 levels per block of 32 inputs: on models 16 .. 64 wide that is a coarse weight, and logit errors of the
    // order of the logits themselves are expected (its exactness is precision_fixtures_test's job).
    default: return 2.0;
  }
}

TEST_CASE("precision accuracy: each Linear precision against HF's f32 outputs on the fixtures (logits and ids)") {
  if (!blip::test::have_or_skip(blip::test::fixtures_dir(), "fixtures folder")) return;
  const char* cases[] = {"blip_caption", "blip_vqa", "blip_itm", "blip2_opt", "blip2_opt_imgtok", "blip2_t5", "blip2_itm"};
  std::printf("precision accuracy | setting | logits max rel. error | mean rel. error | top-1 agreement | identical "
              "generated sequences |\n");
  for (const PrecisionSetting& setting : blip::parity::precision_settings()) {
    PrecisionAccuracy accuracy;
    for (const char* case_name : cases) {
      const std::string directory = blip::test::fixture(case_name);
      if (!std::filesystem::exists(directory + "/case.json")) continue;
      INFO(case_name, " ", setting.name);
      blip::parity::measure_case_accuracy(directory, setting, accuracy);
    }
    if (accuracy.positions == 0) continue;
    std::printf("precision accuracy | %s | %.2e | %.2e | %.1f%% (%lld positions) | %lld of %lld |\n", setting.name,
                accuracy.max_error, accuracy.mean_error(), 100.0 * accuracy.top1_agreement(),
                static_cast<long long>(accuracy.positions), static_cast<long long>(accuracy.identical_sequences),
                static_cast<long long>(accuracy.sequences));
    CAPTURE(setting.name);
    CHECK(accuracy.max_error <= max_error_bound(setting));
    if (setting.weights == blip::WeightPrecision::F32) {
      CHECK(accuracy.top1_agreement() == 1.0);
      CHECK(accuracy.identical_sequences == accuracy.sequences);
    }
  }
}

TEST_CASE("precision accuracy: settings parse as WEIGHTS[:ACTIVATIONS], and nothing else") {
  PrecisionSetting setting{};
  REQUIRE(blip::parity::parse_precision_setting("int8:int8", setting));
  CHECK(setting.weights == blip::WeightPrecision::Int8);
  CHECK(setting.activations == blip::ActivationPrecision::Int8);
  REQUIRE(blip::parity::parse_precision_setting("bf16", setting));
  CHECK(setting.activations == blip::ActivationPrecision::F32);
  CHECK(std::string(setting.name) == "bf16");
  CHECK_FALSE(blip::parity::parse_precision_setting("f32:int8", setting));  // int8 activations need int8/int4 weights
  CHECK_FALSE(blip::parity::parse_precision_setting("as-stored", setting));
  CHECK_FALSE(blip::parity::parse_precision_setting("int3", setting));
  CHECK_FALSE(blip::parity::parse_precision_setting("bf16:", setting));
  CHECK_FALSE(blip::parity::parse_precision_setting("", setting));
}

TEST_CASE("precision accuracy: the comparison counts what differs") {
  blip::Tensor<float> reference(blip::Shape{2, 3});
  const float values[] = {1, 3, 2, -4, 0, 1};
  std::copy(values, values + 6, reference.data());
  blip::Tensor<float> actual(blip::Shape{2, 3});
  const float changed[] = {1, 2.4f, 2.5f, -4, 0, 1};  // row 0's arg-max moves (HF's gap there: 1); row 1 equal
  std::copy(changed, changed + 6, actual.data());
  PrecisionAccuracy accuracy;
  blip::parity::compare_logits("logits", actual, reference, accuracy);
  CHECK(accuracy.max_error == doctest::Approx(0.6 / 4));
  CHECK(accuracy.mean_error() == doctest::Approx(1.1 / 11));
  CHECK(accuracy.positions == 2);
  CHECK(accuracy.top1_agreements == 1);
  CHECK(accuracy.largest_gap_where_parted == doctest::Approx(1.0));
  blip::Tensor<std::int64_t> ids(blip::Shape{2, 2}), other(blip::Shape{2, 2});
  const std::int64_t a[] = {5, 6, 7, 8}, b[] = {5, 6, 7, 9};
  std::copy(a, a + 4, ids.data());
  std::copy(b, b + 4, other.data());
  blip::parity::compare_ids(other, ids, accuracy);
  CHECK(accuracy.sequences == 2);
  CHECK(accuracy.identical_sequences == 1);
  blip::Tensor<std::int64_t> longer(blip::Shape{2, 3});
  blip::parity::compare_ids(longer, ids, accuracy);  // another length: both rows differ
  CHECK(accuracy.sequences == 4);
  CHECK(accuracy.identical_sequences == 1);
  CHECK_THROWS_WITH_AS(blip::parity::compare_logits("tf_logits", blip::Tensor<float>(blip::Shape{2, 2}), reference, accuracy),
                       doctest::Contains("'tf_logits'"), blip::Error);
}

}  // namespace precision_accuracy_test
