// blip/kernels/detail/linear_avx512.hpp: the AVX-512 f32 Linear micro-kernel.
//
// Register tile: up to 12 rows × 32 output features = 24 zmm accumulators, plus
// the two weight vectors of the current k and one broadcast: 27 of the 32 zmm
// registers. Per k: 2 vector loads, Rows broadcasts, 2·Rows FMAs. On Zen 4
// (512-bit FMA issued as two 256-bit halves, effectively one zmm FMA per cycle,
// latency 4) the 24 independent accumulators keep the FMA pipes full, and the
// 14 load operations per 24 FMA cycles are far below the load ports' limit.
// With Rows = 1 (decode) the kernel is memory-bound: 128 bytes of weights per
// 2 FMAs, streamed once.
#pragma once

#include "blip/kernels/detail/linear_microkernel.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvx512MaxRows = 12;

template <int Rows>
BLIP_TARGET_AVX512 void linear_micro_kernel_avx512(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "the AVX-512 tile holds two 16-float vectors per row");
  __m512 low[Rows], high[Rows];
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    low[r] = _mm512_setzero_ps();
    high[r] = _mm512_setzero_ps();
  }
  const float* rows = tile.rows;
  const float* panel = tile.panel;
  const std::int64_t row_stride = tile.row_stride;
  for (std::int64_t k = 0; k < tile.depth; ++k) {
    const __m512 weight_low = _mm512_load_ps(panel);
    const __m512 weight_high = _mm512_load_ps(panel + 16);
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

inline MicroKernelSet linear_micro_kernels_avx512() {
  static const MicroKernel by_rows[kAvx512MaxRows] = {
      linear_micro_kernel_avx512<1>, linear_micro_kernel_avx512<2>,  linear_micro_kernel_avx512<3>,
      linear_micro_kernel_avx512<4>, linear_micro_kernel_avx512<5>,  linear_micro_kernel_avx512<6>,
      linear_micro_kernel_avx512<7>, linear_micro_kernel_avx512<8>,  linear_micro_kernel_avx512<9>,
      linear_micro_kernel_avx512<10>, linear_micro_kernel_avx512<11>, linear_micro_kernel_avx512<12>};
  return MicroKernelSet{KernelPath::Avx512, kAvx512MaxRows, by_rows};
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
