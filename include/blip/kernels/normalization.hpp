// blip/kernels/normalization.hpp: LayerNorm (ViT, BERT, Q-Former, OPT) and
// T5's RMS norm, over the last dimension of a [rows, width] matrix.
//
//   layer_norm: y = (x - mean) / sqrt(var + eps) · gamma + beta,
//               var the BIASED variance (divide by width), as torch.nn.LayerNorm.
//   rms_norm:   y = weight · (x · rsqrt(mean(x²) + eps))       (HF T5LayerNorm:
//               no mean subtraction, no bias; mean(x²) in float32)
//
// eps is per model and matters (HF configs): BLIP vision 1e-5, BLIP-2 vision
// 1e-6, BERT / Q-Former text 1e-12, OPT 1e-5, T5 1e-6.
//
// Precision: statistics are accumulated in float, in 4 vectors of partial sums
// (detail/vector_math.hpp, compiled per instruction-set path and chosen at run
// time: 64 partial sums with AVX-512), added in a fixed order that depends only
// on the width, so a row's result never depends on its address (with Eigen's
// sums, which peel an unaligned head, it did). The mean is refined once (mean += Σ(x - mean) / width, the
// "corrected two-pass" algorithm) so that a constant row gets exactly zero
// variance: with eps = 1e-12 a residual of 1e-9 in x - mean would otherwise be
// amplified a millionfold.
// Tests compare against the double `_naive` versions with
//   |y - y_ref| ≤ 16·FLT_EPSILON·(|gamma|·(|x̂| + 1) + |beta|)   per element (x̂ = normalised x).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"
#include "blip/kernels/detail/vector_math.hpp"

namespace blip::kernels {

namespace detail {
// Enough elements per thread to be worth a fork (a LayerNorm row is cheap).
inline std::int64_t normalization_rows_per_thread(std::int64_t width) {
  return std::max<std::int64_t>(1, (std::int64_t{1} << 15) / std::max<std::int64_t>(width, 1));
}

inline void layer_norm_row(const ElementwiseKernels& kernels, const float* x, std::int64_t width, const float* gamma,
                           const float* beta, float eps, float* y) {
  float mean = kernels.sum_shifted(x, width, 0.0f) / static_cast<float>(width);
  mean += kernels.sum_shifted(x, width, mean) / static_cast<float>(width);
  const float variance = kernels.sum_squares_shifted(x, width, mean) / static_cast<float>(width);
  const float inverse_std = 1.0f / std::sqrt(variance + eps);
  // Element-wise so that y may alias x (each y[i] depends on x[i] only now).
  if (gamma && beta) {
    for (std::int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inverse_std * gamma[i] + beta[i];
  } else if (gamma) {
    for (std::int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inverse_std * gamma[i];
  } else if (beta) {
    for (std::int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inverse_std + beta[i];
  } else {
    for (std::int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inverse_std;
  }
}

inline void rms_norm_row(const ElementwiseKernels& kernels, const float* x, std::int64_t width, const float* weight,
                         float eps, float* y) {
  const float variance = kernels.sum_squares_shifted(x, width, 0.0f) / static_cast<float>(width);
  const float inverse_rms = 1.0f / std::sqrt(variance + eps);  // torch.rsqrt
  // HF order: weight * (x * rsqrt(variance + eps)).
  if (weight) {
    for (std::int64_t i = 0; i < width; ++i) y[i] = weight[i] * (x[i] * inverse_rms);
  } else {
    for (std::int64_t i = 0; i < width; ++i) y[i] = x[i] * inverse_rms;
  }
}

inline void check_normalization_arguments(const char* name, const float* x, std::int64_t rows, std::int64_t width,
                                          float eps, const float* y) {
  check(rows >= 0 && width > 0, name, ": need rows >= 0 and width > 0, got rows ", rows, ", width ", width);
  check(rows == 0 || (x != nullptr && y != nullptr), name, ": null input or output");
  check(eps >= 0.0f, name, ": eps must be >= 0, got ", eps);
}
}  // namespace detail

// LayerNorm over each row of x [rows, width] (contiguous). gamma / beta
// [width] may be null (no elementwise affine). y may alias x. `path`: whose
// sums (default: the active path; tests run each).
inline void layer_norm(const float* x, std::int64_t rows, std::int64_t width, const float* gamma, const float* beta,
                       float eps, float* y, KernelPath path = active_kernel_path()) {
  detail::check_normalization_arguments("layer_norm", x, rows, width, eps, y);
  const detail::ElementwiseKernels kernels = detail::elementwise_kernels(path);
  parallel_for(
      0, rows,
      [&](std::int64_t row) {
        detail::layer_norm_row(kernels, x + row * width, width, gamma, beta, eps, y + row * width);
      },
      detail::normalization_rows_per_thread(width));
}

// Tensor form: x and y of the same shape, normalised over the last dimension;
// gamma / beta of shape [width] or empty.
inline void layer_norm(Tensor<const float> x, Tensor<const float> gamma, Tensor<const float> beta, float eps,
                       Tensor<float> y) {
  check(x.rank() >= 1 && x.shape() == y.shape(), "layer_norm: input ", x.shape(), " and output ", y.shape(),
        " must have the same shape");
  const std::int64_t width = x.dim(-1);
  check(gamma.empty() || gamma.numel() == width, "layer_norm: weight has ", gamma.numel(), " elements, expected ",
        width);
  check(beta.empty() || beta.numel() == width, "layer_norm: bias has ", beta.numel(), " elements, expected ", width);
  layer_norm(x.data(), width == 0 ? 0 : x.numel() / width, width, gamma.empty() ? nullptr : gamma.data(),
             beta.empty() ? nullptr : beta.data(), eps, y.data());
}

// T5LayerNorm over each row; weight [width] may be null. y may alias x.
inline void rms_norm(const float* x, std::int64_t rows, std::int64_t width, const float* weight, float eps, float* y,
                     KernelPath path = active_kernel_path()) {
  detail::check_normalization_arguments("rms_norm", x, rows, width, eps, y);
  const detail::ElementwiseKernels kernels = detail::elementwise_kernels(path);
  parallel_for(
      0, rows,
      [&](std::int64_t row) { detail::rms_norm_row(kernels, x + row * width, width, weight, eps, y + row * width); },
      detail::normalization_rows_per_thread(width));
}

inline void rms_norm(Tensor<const float> x, Tensor<const float> weight, float eps, Tensor<float> y) {
  check(x.rank() >= 1 && x.shape() == y.shape(), "rms_norm: input ", x.shape(), " and output ", y.shape(),
        " must have the same shape");
  const std::int64_t width = x.dim(-1);
  check(weight.empty() || weight.numel() == width, "rms_norm: weight has ", weight.numel(), " elements, expected ",
        width);
  rms_norm(x.data(), width == 0 ? 0 : x.numel() / width, width, weight.empty() ? nullptr : weight.data(), eps,
           y.data());
}

// ---- double-precision references ------------------------------------------

inline void layer_norm_naive(const float* x, std::int64_t rows, std::int64_t width, const float* gamma,
                             const float* beta, float eps, float* y) {
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* in = x + row * width;
    float* out = y + row * width;
    double mean = 0.0;
    for (std::int64_t i = 0; i < width; ++i) mean += in[i];
    mean /= static_cast<double>(width);
    double variance = 0.0;
    for (std::int64_t i = 0; i < width; ++i) variance += (in[i] - mean) * (in[i] - mean);
    variance /= static_cast<double>(width);
    const double inverse_std = 1.0 / std::sqrt(variance + static_cast<double>(eps));
    for (std::int64_t i = 0; i < width; ++i) {
      double value = (in[i] - mean) * inverse_std;
      if (gamma) value *= gamma[i];
      if (beta) value += beta[i];
      out[i] = static_cast<float>(value);
    }
  }
}

inline void rms_norm_naive(const float* x, std::int64_t rows, std::int64_t width, const float* weight, float eps,
                           float* y) {
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* in = x + row * width;
    float* out = y + row * width;
    double mean_square = 0.0;
    for (std::int64_t i = 0; i < width; ++i) mean_square += static_cast<double>(in[i]) * in[i];
    mean_square /= static_cast<double>(width);
    const double inverse_rms = 1.0 / std::sqrt(mean_square + static_cast<double>(eps));
    for (std::int64_t i = 0; i < width; ++i) out[i] = static_cast<float>((weight ? weight[i] : 1.0) * in[i] * inverse_rms);
  }
}

}  // namespace blip::kernels
