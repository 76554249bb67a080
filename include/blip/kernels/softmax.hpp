// blip/kernels/softmax.hpp: softmax and log-softmax over the rows of a matrix.
//
//   softmax(x)_j     = exp(x_j - max) / Σ_k exp(x_k - max)
//   log_softmax(x)_j = (x_j - max) - log(Σ_k exp(x_k - max))
//
// Both subtract the row maximum first, as torch does, so that large logits do
// not overflow exp. log_softmax keeps torch's order of operations
// ((x - max) - log_sum); generation uses it for beam scores, where a one-ulp
// difference can reorder two nearly tied beams.
//
// The exponentials are detail/vector_math.hpp's (Cephes polynomial, within 1
// ulp), compiled for each instruction-set path and chosen at run time: a result
// never depends on where a buffer happens to sit in memory, so a request gives
// the same bits in any thread, and exp(-inf) is exactly 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/detail/vector_math.hpp"

namespace blip::kernels {

namespace detail {
// Rows are spread over threads only when there is enough work to pay for
// starting them (a few microseconds): about this many elements per thread.
constexpr std::int64_t kElementsPerThread = 1 << 15;

inline std::int64_t rows_per_thread(std::int64_t width) {
  return std::max<std::int64_t>(1, kElementsPerThread / std::max<std::int64_t>(width, 1));
}

// out[i] = exp(in[i] - shift) on the active path's vector kernel; `in` may equal `out`.
inline void exp_shifted(const float* in, float* out, std::int64_t count, float shift) {
  active_elementwise_kernels().exp_shifted(in, out, count, shift);
}

// Sum in a fixed order over 16 float lanes (vectorisable without
// reassociation), like torch's float lanes; the same bits wherever x lives.
inline float sum_in_lanes(const float* x, std::int64_t count) {
  float lanes[16] = {};
  std::int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    for (int lane = 0; lane < 16; ++lane) lanes[lane] += x[i + lane];
  }
  for (int lane = 0; i < count; ++i, ++lane) lanes[lane] += x[i];
  for (int width = 8; width >= 1; width /= 2) {
    for (int lane = 0; lane < width; ++lane) lanes[lane] += lanes[lane + width];
  }
  return lanes[0];
}

// The largest of x[0, count), NaNs skipped (-inf if there is no other): std::max(maximum, x[i]) over the row, on
// the active path's vector kernel (GCC does not vectorise that scan itself: it may not reorder the comparisons).
inline float row_maximum(const float* x, std::int64_t count) {
  return active_elementwise_kernels().maximum(x, count);
}

// Softmax of one row in place; the row then sums to 1.
inline void softmax_row(float* row, std::int64_t width) {
  if (width <= 0) return;
  exp_shifted(row, row, width, row_maximum(row, width));
  const float inverse_sum = 1.0f / sum_in_lanes(row, width);
  for (std::int64_t j = 0; j < width; ++j) row[j] *= inverse_sum;
}

// Sum in double over 8 independent lanes (vectorisable without reassociating
// a single chain); the same bits wherever the values live.
template <class T>
double sum_in_double(const T* values, std::int64_t count) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    for (int lane = 0; lane < 8; ++lane) lanes[lane] += static_cast<double>(values[i + lane]);
  }
  double sum = 0.0;
  for (; i < count; ++i) sum += static_cast<double>(values[i]);
  for (double lane : lanes) sum += lane;
  return sum;
}

// sum_i exp(in[i] - shift), in double, writing nothing but a stack block.
inline double sum_exp_shifted(const float* in, std::int64_t count, float shift) {
  constexpr std::int64_t kBlock = 512;
  alignas(64) float block[kBlock];
  double sum = 0.0;
  for (std::int64_t start = 0; start < count; start += kBlock) {
    const std::int64_t size = std::min(kBlock, count - start);
    exp_shifted(in + start, block, size, shift);
    sum += sum_in_double(block, size);
  }
  return sum;
}

// log_softmax of one row in place, torch's order: (x - max) - log(sum exp(x - max)),
// in float32 but for the sum, which is accumulated in double (torch: float
// lanes): beam search adds these to running scores, where an ulp can reorder
// two nearly tied beams, so the sum is made as exact as is cheap.
inline void log_softmax_row(float* row, std::int64_t width) {
  if (width <= 0) return;
  const float maximum = row_maximum(row, width);
  const float log_sum = static_cast<float>(std::log(sum_exp_shifted(row, width, maximum)));
  for (std::int64_t j = 0; j < width; ++j) row[j] = (row[j] - maximum) - log_sum;
}

}  // namespace detail

// Softmax over each of `rows` rows of `width` contiguous floats, in place.
inline void softmax_rows(float* x, std::int64_t rows, std::int64_t width) {
  check(rows >= 0 && width >= 0, "softmax_rows: negative size (rows ", rows, ", width ", width, ")");
  parallel_for(
      0, rows, [&](std::int64_t row) { detail::softmax_row(x + row * width, width); },
      detail::rows_per_thread(width));
}

// log_softmax over each row, in place (torch.log_softmax(x, dim=-1)).
inline void log_softmax_rows(float* x, std::int64_t rows, std::int64_t width) {
  check(rows >= 0 && width >= 0, "log_softmax_rows: negative size (rows ", rows, ", width ", width, ")");
  parallel_for(
      0, rows, [&](std::int64_t row) { detail::log_softmax_row(x + row * width, width); },
      detail::rows_per_thread(width));
}

// softmax(x + mask) over each row, in place: the additive-mask form attention
// uses (mask value 0 = keep, -10000 or finfo(float32).min = drop). Row r adds
// mask row r / mask_group (mask is [ceil(rows / mask_group), width]). The sum
// is formed in float, as HF does, so a row whose every entry is masked with
// the same finite value gets HF's result (the softmax of the float-rounded
// sums), not NaN. Sums below the lowest float are clamped to it, as OPT does
// (torch.max(weights + mask, finfo.min)), so even -inf masks give no NaN.
inline void masked_softmax_rows(float* x, std::int64_t rows, std::int64_t width, const float* mask,
                                std::int64_t mask_group = 1) {
  check(rows >= 0 && width >= 0, "masked_softmax_rows: negative size (rows ", rows, ", width ", width, ")");
  check(mask != nullptr, "masked_softmax_rows: mask is null");
  check(mask_group >= 1, "masked_softmax_rows: mask_group must be >= 1, got ", mask_group);
  parallel_for(
      0, rows,
      [&](std::int64_t row) {
        float* values = x + row * width;
        const float* mask_row = mask + (row / mask_group) * width;
        constexpr float lowest = std::numeric_limits<float>::lowest();
        for (std::int64_t j = 0; j < width; ++j) values[j] = std::max(values[j] + mask_row[j], lowest);
        detail::softmax_row(values, width);
      },
      detail::rows_per_thread(width));
}

// Tensor forms: over the last dimension of x (any rank >= 1).
inline void softmax_rows(Tensor<float> x) {
  check(x.rank() >= 1, "softmax_rows: tensor of rank 0");
  softmax_rows(x.data(), x.numel() / std::max<std::int64_t>(x.dim(-1), 1), x.dim(-1));
}
inline void log_softmax_rows(Tensor<float> x) {
  check(x.rank() >= 1, "log_softmax_rows: tensor of rank 0");
  log_softmax_rows(x.data(), x.numel() / std::max<std::int64_t>(x.dim(-1), 1), x.dim(-1));
}

// ---- double-precision references ------------------------------------------

inline void softmax_rows_naive(float* x, std::int64_t rows, std::int64_t width) {
  for (std::int64_t row = 0; row < rows; ++row) {
    float* values = x + row * width;
    if (width == 0) continue;
    double maximum = values[0];
    for (std::int64_t j = 1; j < width; ++j) maximum = std::max<double>(maximum, values[j]);
    double sum = 0.0;
    for (std::int64_t j = 0; j < width; ++j) sum += std::exp(static_cast<double>(values[j]) - maximum);
    for (std::int64_t j = 0; j < width; ++j)
      values[j] = static_cast<float>(std::exp(static_cast<double>(values[j]) - maximum) / sum);
  }
}

inline void log_softmax_rows_naive(float* x, std::int64_t rows, std::int64_t width) {
  for (std::int64_t row = 0; row < rows; ++row) {
    float* values = x + row * width;
    if (width == 0) continue;
    double maximum = values[0];
    for (std::int64_t j = 1; j < width; ++j) maximum = std::max<double>(maximum, values[j]);
    double sum = 0.0;
    for (std::int64_t j = 0; j < width; ++j) sum += std::exp(static_cast<double>(values[j]) - maximum);
    const double log_sum = std::log(sum);
    for (std::int64_t j = 0; j < width; ++j)
      values[j] = static_cast<float>(static_cast<double>(values[j]) - maximum - log_sum);
  }
}

// The mask is added in float (as HF and the fast kernel do, see above), the
// softmax is then taken in double.
inline void masked_softmax_rows_naive(float* x, std::int64_t rows, std::int64_t width, const float* mask,
                                      std::int64_t mask_group = 1) {
  for (std::int64_t row = 0; row < rows; ++row) {
    float* values = x + row * width;
    const float* mask_row = mask + (row / mask_group) * width;
    for (std::int64_t j = 0; j < width; ++j)
      values[j] = std::max(values[j] + mask_row[j], std::numeric_limits<float>::lowest());
  }
  softmax_rows_naive(x, rows, width);
}

}  // namespace blip::kernels
