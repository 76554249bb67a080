// blip/generation/softmax.hpp: softmax and log_softmax over one row of scores, as torch's CPU kernels.
//
// torch computes log_softmax as (x - max) - log(sum(exp(x - max))) and softmax as exp(x - max) * (1 / sum),
// in float32 with SLEEF's vectorised exp (within 1 ulp) and float lanes for the sum. We keep the same formulas
// and float32 rounding of every step, use the kernels' vectorised float exp (within 1 ulp, exactly 0 for
// -inf and on underflow, the same bits wherever the row lives) and sum in double. Results may therefore differ from torch's by an ulp or so, never more.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "blip/kernels/softmax.hpp"

namespace blip::generation {

inline constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

namespace detail {
using kernels::detail::row_maximum;

// exp(x - shift) element by element: the kernels' version, which gives the
// same bits whatever the buffers' addresses and exactly 0 for -inf.
using kernels::detail::exp_shifted;

using kernels::detail::sum_exp_shifted;
using kernels::detail::sum_in_double;
}  // namespace detail

// out = log_softmax(in), as torch's CPU kernel: (x - max) - log(sum(exp(x - max))), in float32 but for the sum
// (double; torch: float lanes) and exp (kernels/detail/vector_math.hpp's, within 1 ulp like torch's SLEEF exp): the only
// places results may differ from torch, by an ulp or so. `in` may equal `out`.
inline void log_softmax(const float* in, float* out, std::int64_t count) {
  if (in != out) std::copy_n(in, count, out);
  kernels::detail::log_softmax_row(out, count);
}

// out = softmax(in) in float32: exp(x - max) * (1 / sum), as torch's kernel (sum in double). `in` may equal `out`.
inline void softmax(const float* in, float* out, std::int64_t count) {
  const float maximum = detail::row_maximum(in, count);
  detail::exp_shifted(in, out, count, maximum);
  const float inverse_sum = static_cast<float>(1.0 / detail::sum_in_double(out, count));
  for (std::int64_t i = 0; i < count; ++i) out[i] *= inverse_sum;
}

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
