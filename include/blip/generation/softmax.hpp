// blip/generation/softmax.hpp: softmax and log_softmax over one row of scores, as torch's CPU kernels.
//
// torch computes log_softmax as (x - max) - log(sum(exp(x - max))) and softmax as exp(x - max) * (1 / sum),
// in float32 with SLEEF's vectorised exp (within 1 ulp) and float lanes for the sum. We keep the same formulas
// and float32 rounding of every step, use the kernels' vectorised float exp (also within ~1 ulp, exactly 0 for
// -inf and on underflow, the same bits wherever the row lives) and sum in double. Results may therefore differ from torch's by an ulp or so, never more.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "blip/kernels/softmax.hpp"

namespace blip::generation {

inline constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// Once Eigen's AVX-512 exp is inlined here, GCC 12 reports false "may be used uninitialized" and, for rows it
// can see are short, "array subscript partly outside array bounds" (Eigen only touches whole packets inside
// the row and handles the tail separately).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

namespace detail {
using kernels::detail::row_maximum;

// exp(x - shift) element by element: the kernels' version, which gives the
// same bits whatever the buffers' addresses and exactly 0 for -inf.
using kernels::detail::exp_shifted;

// Sum in double over 8 independent lanes (vectorisable without reassociating a single chain).
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

// sum_i exp(in[i] - shift) without writing anything but a stack block.
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
}  // namespace detail

// out = log_softmax(in), as torch's CPU kernel: (x - max) - log(sum(exp(x - max))), in float32. exp is
// Eigen's vectorised one (within ~1 ulp, like torch's SLEEF exp); the sum is accumulated in double (torch: float
// lanes). Those two are the only places results may differ from torch, by an ulp or so. `in` may equal `out`.
inline void log_softmax(const float* in, float* out, std::int64_t count) {
  const float maximum = detail::row_maximum(in, count);
  const float log_sum = static_cast<float>(std::log(detail::sum_exp_shifted(in, count, maximum)));
  for (std::int64_t i = 0; i < count; ++i) out[i] = (in[i] - maximum) - log_sum;
}

// out = softmax(in) in float32: exp(x - max) * (1 / sum), as torch's kernel (sum in double). `in` may equal `out`.
inline void softmax(const float* in, float* out, std::int64_t count) {
  const float maximum = detail::row_maximum(in, count);
  detail::exp_shifted(in, out, count, maximum);
  const float inverse_sum = static_cast<float>(1.0 / detail::sum_in_double(out, count));
  for (std::int64_t i = 0; i < count; ++i) out[i] *= inverse_sum;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// References for the two above: libm exp and a plain double sum, one element at a time.
inline void log_softmax_naive(const float* in, float* out, std::int64_t count) {
  const float maximum = detail::row_maximum(in, count);
  double sum = 0.0;
  for (std::int64_t i = 0; i < count; ++i) sum += std::exp(static_cast<double>(in[i] - maximum));
  const float log_sum = static_cast<float>(std::log(sum));
  for (std::int64_t i = 0; i < count; ++i) out[i] = (in[i] - maximum) - log_sum;
}

inline void softmax_naive(const float* in, float* out, std::int64_t count) {
  const float maximum = detail::row_maximum(in, count);
  double sum = 0.0;
  for (std::int64_t i = 0; i < count; ++i) sum += std::exp(static_cast<double>(in[i] - maximum));
  for (std::int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(std::exp(static_cast<double>(in[i] - maximum)) / sum);
}

}  // namespace blip::generation
