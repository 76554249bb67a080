// tests/parity/precision_accuracy.hpp: what a reduced Linear precision costs against Hugging Face's own f32
// outputs on a case (fixture-sized or full-size: the oracle makes both). A case is recomputed with its Linear
// weights (and activations) in one precision and compared with the case's outputs.safetensors:
//   - logits (every output whose name ends in "logits": teacher-forced LM logits, VQA answer logits, ITM logits):
//     max |diff| / max |ref| and mean |diff| / mean |ref| over all positions; top-1 agreement (the share of
//     positions whose arg-max is the same); and, where they part, the largest margin HF's own top two logits had
//     there (a small one says the position was a near-tie that rounding decided, as random weights leave many);
//   - generated ids: how many sequences of every *_ids output are identical to HF's.
// Used by precision_accuracy_test (the fixtures; docs/kernels.md's table) and `blip_run_case --accuracy` (any
// case folder, the full-size ones of docs/performance.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/io/safetensors.hpp"
#include "parity/case_runner.hpp"

namespace blip::parity {

// One way to run the Linear layers: weights in `weights`, their inputs in `activations`.
struct PrecisionSetting {
  const char* name;  // as the tables print it, e.g. "int8 x int8 activations"
  WeightPrecision weights;
  ActivationPrecision activations;
};

// Every setting the library offers, in the tables' order.
inline const std::vector<PrecisionSetting>& precision_settings() {
  static const std::vector<PrecisionSetting> settings{
      {"f32", WeightPrecision::F32, ActivationPrecision::F32},
      {"f16", WeightPrecision::F16, ActivationPrecision::F32},
      {"bf16", WeightPrecision::BF16, ActivationPrecision::F32},
      {"bf16 x bf16 activations", WeightPrecision::BF16, ActivationPrecision::BF16},
      {"int8", WeightPrecision::Int8, ActivationPrecision::F32},
      {"int8 x int8 activations", WeightPrecision::Int8, ActivationPrecision::Int8},
      {"int4", WeightPrecision::Int4, ActivationPrecision::F32},
      {"int4 x int8 activations", WeightPrecision::Int4, ActivationPrecision::Int8},
  };
  return settings;
}

// "bf16" or "bf16:bf16" (weights, then activations; f32 activations when there is no colon), as --settings takes
// them; false if either half is not a precision or the activations do not apply to those weights.
inline bool parse_precision_setting(const std::string& text, PrecisionSetting& out) {
  const std::size_t colon = text.find(':');
  WeightPrecision weights{};
  ActivationPrecision activations = ActivationPrecision::F32;
  if (!parse_weight_precision(text.substr(0, colon), weights) || weights == WeightPrecision::AsStored) return false;
  if (colon != std::string::npos && !parse_activation_precision(text.substr(colon + 1), activations)) return false;
  for (const PrecisionSetting& setting : precision_settings())
    if (setting.weights == weights && setting.activations == activations) {
      out = setting;
      return true;
    }
  return false;
}

struct PrecisionAccuracy {
  double max_error = 0;  // the largest, over the logits outputs compared, of that output's max |diff| / max |ref|
  double error_sum = 0, reference_sum = 0;
  std::int64_t positions = 0, top1_agreements = 0;
  double largest_gap_where_parted = 0;  // HF's top-1 minus top-2 logit at the worst position whose arg-max differs
  std::int64_t sequences = 0, identical_sequences = 0;

  double mean_error() const { return error_sum / std::max(reference_sum, 1e-30); }
  double top1_agreement() const { return positions == 0 ? 0.0 : static_cast<double>(top1_agreements) / positions; }
};

// The largest minus the second-largest value of a row of `width`.
inline double top_two_gap(const float* row, std::int64_t width) {
  double first = -INFINITY, second = -INFINITY;
  for (std::int64_t i = 0; i < width; ++i) {
    const double value = row[i];
    if (value > first) {
      second = first;
      first = value;
    } else if (value > second) {
      second = value;
    }
  }
  return width < 2 ? 0.0 : first - second;
}

// Logits [..., V]: every element's error, and each row's arg-max.
inline void compare_logits(const std::string& name, const Tensor<float>& actual, const Tensor<const float>& reference,
                           PrecisionAccuracy& accuracy) {
  check(actual.numel() == reference.numel() && reference.rank() >= 1, "'", name, "': blipcpp computed ",
        actual.numel(), " logits, the case holds ", reference.numel());
  const std::int64_t width = reference.shape().dim(-1), rows = width == 0 ? 0 : reference.numel() / width;
  // Each output relative to its own largest logit: ITM's two logits and a vocabulary's are on other scales.
  double largest_error = 0, largest_reference = 0;
  for (std::int64_t i = 0; i < reference.numel(); ++i) {
    const double error = std::abs(static_cast<double>(actual.data()[i]) - reference.data()[i]);
    largest_error = std::max(largest_error, std::isnan(error) ? INFINITY : error);
    largest_reference = std::max(largest_reference, static_cast<double>(std::abs(reference.data()[i])));
    accuracy.error_sum += error;
    accuracy.reference_sum += std::abs(reference.data()[i]);
  }
  accuracy.max_error = std::max(accuracy.max_error, largest_error / std::max(largest_reference, 1e-30));
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* got = actual.data() + row * width;
    const float* want = reference.data() + row * width;
    const bool same = std::max_element(got, got + width) - got == std::max_element(want, want + width) - want;
    accuracy.top1_agreements += same;
    if (!same) accuracy.largest_gap_where_parted = std::max(accuracy.largest_gap_where_parted, top_two_gap(want, width));
    ++accuracy.positions;
  }
}

// Sequences [S, T]: how many rows are identical (all of them differ when the shapes do).
inline void compare_ids(const Tensor<std::int64_t>& actual, const Tensor<std::int64_t>& reference,
                        PrecisionAccuracy& accuracy) {
  const std::int64_t sequences = reference.rank() == 0 ? 0 : reference.shape().dim(0);
  accuracy.sequences += sequences;
  if (actual.shape() != reference.shape() || sequences == 0) return;
  const std::int64_t length = reference.numel() / sequences;
  for (std::int64_t s = 0; s < sequences; ++s)
    accuracy.identical_sequences += std::equal(actual.data() + s * length, actual.data() + (s + 1) * length,
                                               reference.data() + s * length);
}

// Runs the case in `case_dir` with `setting` and adds its logits and ids, against outputs.safetensors, to
// `accuracy`.
inline void measure_case_accuracy(const std::string& case_dir, const PrecisionSetting& setting,
                                  PrecisionAccuracy& accuracy) {
  WeightOptions options;
  options.linear_precision = setting.weights;
  options.linear_activations = setting.activations;
  const CaseOutputs outputs = CaseRunner(case_dir, options).run();
  const SafetensorsFile expected = SafetensorsFile::open(case_dir + "/outputs.safetensors");
  for (const std::string& name : outputs.names) {
    const CaseTensor& actual = outputs.tensors.at(name);
    if (ends_with(name, "logits") && std::holds_alternative<Tensor<float>>(actual))
      compare_logits(name, std::get<Tensor<float>>(actual), expected.to_f32(name), accuracy);
    else if (ends_with(name, "_ids") && std::holds_alternative<Tensor<std::int64_t>>(actual))
      compare_ids(std::get<Tensor<std::int64_t>>(actual), expected.to_i64(name), accuracy);
  }
}

}  // namespace blip::parity
