// blip/kernels/detail/linear_avx512.hpp: the AVX-512 Linear micro-kernels,
// one per weight precision (f32, bf16, f16, int8; activations and sums f32).
//
// Register tile: up to 12 rows × 32 output features = 24 zmm accumulators, plus
// the two weight vectors of the current k and one broadcast: 27 of the 32 zmm
// registers. Per k: 2 vector loads, Rows broadcasts, 2·Rows FMAs. On Zen 4
// (512-bit FMA issued as two 256-bit halves, effectively one zmm FMA per cycle,
// latency 4) the 24 independent accumulators keep the FMA pipes full, and the
// 14 load operations per 24 FMA cycles are far below the load ports' limit.
// With Rows = 1 (decode) the kernel is memory-bound: 128 bytes of f32 weights
// per 2 FMAs, streamed once; bf16 / f16 halve that and int8 quarters it.
//
// Narrow weights are widened to f32 as they are loaded, 16 at a time: bf16 by
// a zero-extension and a 16-bit shift (exact), f16 by vcvtph2ps (exact), int8
// by a sign-extension and vcvtdq2ps (exact), so every path computes the f32
// products of the stored weights; int8 sums are multiplied by the feature's
// scale at the end. The widening costs 2 extra instructions per 2·Rows FMAs.
#pragma once

#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvx512MaxRows = 12;

// 16 packed weights widened to f32.
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const float* weights) { return _mm512_loadu_ps(weights); }
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const BFloat16* weights) {
  const __m512i widened = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(weights)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(widened, 16));
}
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const Float16* weights) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(weights)));
}
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const std::int8_t* weights) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights))));
}

template <int Rows, class Element>
BLIP_TARGET_AVX512 void linear_micro_kernel_avx512(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "the AVX-512 tile holds two 16-float vectors per row");
  __m512 low[Rows], high[Rows];
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    low[r] = _mm512_setzero_ps();
    high[r] = _mm512_setzero_ps();
  }
  const float* rows = tile.rows;
  const Element* panel = static_cast<const Element*>(tile.panel);
  const std::int64_t row_stride = tile.row_stride;
  for (std::int64_t k = 0; k < tile.depth; ++k) {
    const __m512 weight_low = load16_avx512(panel);
    const __m512 weight_high = load16_avx512(panel + 16);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      const __m512 activation = _mm512_set1_ps(rows[r]);
      low[r] = _mm512_fmadd_ps(activation, weight_low, low[r]);
      high[r] = _mm512_fmadd_ps(activation, weight_high, high[r]);
    }
    rows += row_stride;
    panel += kPanelWidth;
  }

  // Store: the last panel of a layer may be partial, written through masks.
  const int columns = tile.columns;
  const __mmask16 mask_low = columns >= 16 ? __mmask16(0xffff) : __mmask16((1u << columns) - 1u);
  const __mmask16 mask_high = columns >= 32 ? __mmask16(0xffff)
                              : columns > 16 ? __mmask16((1u << (columns - 16)) - 1u)
                                             : __mmask16(0);
  if (tile.scale != nullptr) {
    const __m512 scale_low = _mm512_loadu_ps(tile.scale);
    const __m512 scale_high = _mm512_loadu_ps(tile.scale + 16);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_mul_ps(low[r], scale_low);
      high[r] = _mm512_mul_ps(high[r], scale_high);
    }
  }
  if (!tile.accumulate && tile.bias != nullptr) {
    const __m512 bias_low = _mm512_load_ps(tile.bias);
    const __m512 bias_high = _mm512_load_ps(tile.bias + 16);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_add_ps(low[r], bias_low);
      high[r] = _mm512_add_ps(high[r], bias_high);
    }
  }
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    float* out = tile.out + r * tile.out_stride;
    if (tile.accumulate) {
      low[r] = _mm512_add_ps(low[r], _mm512_maskz_loadu_ps(mask_low, out));
      high[r] = _mm512_add_ps(high[r], _mm512_maskz_loadu_ps(mask_high, out + 16));
    }
    _mm512_mask_storeu_ps(out, mask_low, low[r]);
    _mm512_mask_storeu_ps(out + 16, mask_high, high[r]);
  }
}

template <class Element>
MicroKernelSet linear_micro_kernels_avx512_for() {
  static const MicroKernel by_rows[kAvx512MaxRows] = {
      linear_micro_kernel_avx512<1, Element>,  linear_micro_kernel_avx512<2, Element>,
      linear_micro_kernel_avx512<3, Element>,  linear_micro_kernel_avx512<4, Element>,
      linear_micro_kernel_avx512<5, Element>,  linear_micro_kernel_avx512<6, Element>,
      linear_micro_kernel_avx512<7, Element>,  linear_micro_kernel_avx512<8, Element>,
      linear_micro_kernel_avx512<9, Element>,  linear_micro_kernel_avx512<10, Element>,
      linear_micro_kernel_avx512<11, Element>, linear_micro_kernel_avx512<12, Element>};
  return MicroKernelSet{KernelPath::Avx512, kPrecisionOf<Element>, kAvx512MaxRows, by_rows};
}

inline MicroKernelSet linear_micro_kernels_avx512(WeightPrecision precision = WeightPrecision::F32) {
  return with_packed_element(precision, [](auto element) {
    return linear_micro_kernels_avx512_for<decltype(element)>();
  });
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
