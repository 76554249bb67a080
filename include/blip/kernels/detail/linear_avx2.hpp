// blip/kernels/detail/linear_avx2.hpp: the Linear micro-kernel of the avx2 path,
// written for AVX2 + FMA (Haswell .. Zen 3 and every later x86 core): 16 ymm
// registers of 8 floats, no embedded broadcast, no masks.
//
// Tiles. The weight panels are 32 output features wide (kPanelWidth, shared by
// every path). AVX2's 16 registers hold:
//   * 4 to 6 rows: a 6 × 16 tile (12 accumulators, 2 weight vectors, 1 broadcast),
//     the panel done in two passes of 16 columns (BLIS's Haswell shape). The
//     second pass reads the panel rows again from L1/L2.
//   * 1 to 3 rows (decode, tails): the whole 32-column panel in one pass (up to 12
//     accumulators and 4 weight vectors), so a streamed panel is read once.
// Per k and pass: one load per 8 weights, one vbroadcastss per row, 2 FMAs per
// row. The k loop is unrolled by two (not for int4, below): fewer loop and
// address instructions per FMA, which is what an AVX2 core's dispatch runs short
// of (an AVX-512 kernel does twice the work per instruction).
//
// Measured (Zen 4 with the avx2 path forced, a default build: no -march=native,
// so 16 ymm registers as on an AVX2-only CPU; docs/kernels.md, "The AVX2
// kernel", has every figure): one 6-row f32 tile alone 93–110 GFLOP/s per core
// (the FMA peak is ~115), where the portable C++ kernel compiled for AVX2 that
// the path ran until session 13 swung between 80 and 113 from one run to the
// next; in full GEMMs int8 1.03–1.28× and int4 1.15–1.36× the old kernel (whose
// int4 scale vectors in registers made GCC spill accumulators).
// (A -march=native build on an AVX-512 CPU lets the compiler use AVX-512VL's
// ymm16–31 here too; such a binary runs only on such CPUs anyway.)
//
// Weight precisions: the same templates over the packed element (f32, bf16, f16,
// int8, int4), each widened to f32 as it is loaded (Avx2Widen below); sums in
// f32; int8 sums times the feature's scale at the store; int4 weights times
// their 32-input block's scale as loaded. Outputs are stored in whole vectors,
// a partial last panel through vmaskmovps.
//
// Determinism: each output element is one chain of FMAs in k order whatever the
// tile (one pass of 32 columns or two of 16 do the same sequence per element), so a row's
// result does not depend on how many rows come with it (tested).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvx2MaxRows = 6;

// Eight weights of a panel row widened to f32.
struct Avx2Widen {
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256 load(const float* weights) { return _mm256_loadu_ps(weights); }
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256 load(const BFloat16* weights) {
    // A bf16 is the upper half of an f32: zero-extend to 32 bits, shift up.
    const __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16));
  }
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256 load(const Float16* weights) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights)));  // F16C: every AVX2 CPU
  }
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256 load(const std::int8_t* weights) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(weights))));
  }
  // Int4: columns [column, column + 8) of a panel row (16 bytes: low nibbles columns 0-15, high ones 16-31) times
  // their block's scales: the stored q + 8 made q as integers, converted exactly, times the scale (rounded once:
  // the f32 product q · scale). The scales are read from memory (L1) by the multiply: kept in registers they
  // pushed a 6-row tile's accumulators onto the stack.
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256 load_int4(const std::uint8_t* row, int column,
                                                              const float* scales) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + column % 16)));
    const __m256i nibbles = column < 16 ? _mm256_and_si256(bytes, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(bytes, 4);
    const __m256i q = _mm256_sub_epi32(nibbles, _mm256_set1_epi32(kInt4Offset));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(scales));
  }
};

// Lanes [0, valid) set: the columns of a partial vector.
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256i avx2_lane_mask(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Writes one row of a pass: out = sums (· scale) (+ bias), or the raw sums when another depth block follows
// (!tile.finish); `columns` of the pass's Vectors × 8 valid. The same operations in the same order as store_row
// (linear_portable.hpp).
template <int Vectors>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void store_row_avx2(const MicroTile& tile, __m256 (&sums)[Vectors],
                                                        int first_column, int columns, float* out) {
  const float* scale = tile.finish ? tile.scale : nullptr;
  const float* bias = tile.finish ? tile.bias : nullptr;
  BLIP_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    const int valid = columns - 8 * v;
    if (valid <= 0) break;
    const int column = first_column + 8 * v;
    __m256 value = sums[v];
    if (valid >= 8) {
      if (scale != nullptr) value = _mm256_mul_ps(value, _mm256_loadu_ps(scale + column));
      if (bias != nullptr) value = _mm256_add_ps(value, _mm256_loadu_ps(bias + column));
      _mm256_storeu_ps(out + 8 * v, value);
    } else {
      const __m256i mask = avx2_lane_mask(valid);
      if (scale != nullptr) value = _mm256_mul_ps(value, _mm256_maskload_ps(scale + column, mask));
      if (bias != nullptr) value = _mm256_add_ps(value, _mm256_maskload_ps(bias + column, mask));
      _mm256_maskstore_ps(out + 8 * v, mask, value);
    }
  }
}

// A resumed row's raw sums (MicroTile::resume), as the previous depth block left them: `columns` of the pass's
// Vectors × 8 from out, the rest 0.
template <int Vectors>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void load_raw_row_avx2(__m256 (&sums)[Vectors], int columns, const float* out) {
  BLIP_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    const int valid = columns - 8 * v;
    sums[v] = valid >= 8 ? _mm256_loadu_ps(out + 8 * v)
              : valid > 0 ? _mm256_maskload_ps(out + 8 * v, avx2_lane_mask(valid))
                          : _mm256_setzero_ps();
  }
}

// One k of a pass: widen the pass's weights of panel row `panel_row`, then every row's activation (broadcast)
// times them.
template <int Rows, int Vectors, class Element>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void linear_step_avx2(__m256 (&sums)[Rows][Vectors], const std::uint8_t* panel_row,
                                                          const float* rows_k, int first_column,
                                                          const float* block_scales) {
  __m256 weights[Vectors];
  BLIP_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    if constexpr (std::is_same_v<Element, Int4Pair>)
      weights[v] = Avx2Widen::load_int4(panel_row, first_column + 8 * v, block_scales + 8 * v);
    else
      weights[v] = Avx2Widen::load(reinterpret_cast<const Element*>(panel_row) + first_column + 8 * v);
  }
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const __m256 activation = _mm256_broadcast_ss(rows_k + r);
    BLIP_UNROLL
    for (int v = 0; v < Vectors; ++v) sums[r][v] = _mm256_fmadd_ps(activation, weights[v], sums[r][v]);
  }
}

// One pass of a tile: Rows rows × Vectors · 8 columns from first_column on, over the tile's whole depth.
template <int Rows, int Vectors, class Element>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void linear_pass_avx2(const MicroTile& tile, int first_column) {
  constexpr std::int64_t kRowBytes = kPanelRowBytes<Element>;
  constexpr bool kInt4 = std::is_same_v<Element, Int4Pair>;
  // Two k per loop iteration, except int4: its widening needs registers of its own, and GCC then kept the
  // accumulators of two k on the stack (45 against 70 GFLOP/s, Zen 4).
  constexpr bool kUnrollTwo = !kInt4;
  const int columns = std::min(tile.columns - first_column, 8 * Vectors);
  __m256 sums[Rows][Vectors];
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    if (tile.resume) {
      load_raw_row_avx2(sums[r], columns, tile.out + r * tile.out_stride + first_column);
    } else {
      BLIP_UNROLL
      for (int v = 0; v < Vectors; ++v) sums[r][v] = _mm256_setzero_ps();
    }
  }
  const float* rows = tile.rows;
  const std::int64_t row_stride = tile.row_stride;
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  // Int4 scales change every kInt4BlockSize inputs (the tile starts on a block); the other precisions are one block.
  const std::int64_t block_size = kInt4 ? kInt4BlockSize : std::max<std::int64_t>(tile.depth, 1);
  for (std::int64_t block_begin = 0; block_begin < tile.depth; block_begin += block_size) {
    // Int4: the scales of this block's columns of the pass (int4 panels come with them; others: unused).
    const float* block_scales =
        kInt4 ? tile.block_scales + block_begin / kInt4BlockSize * kPanelWidth + first_column : nullptr;
    if (kInt4 && stream && first_column == 0) prefetch_streamed_block_scales(block_scales, prefetch);
    const std::int64_t block_end = std::min(tile.depth, block_begin + block_size);
    std::int64_t k = block_begin;
    if constexpr (kUnrollTwo) {
      for (; k + 2 <= block_end; k += 2) {
        if (stream) {
          prefetch_panel_row<kRowBytes>(panel, k, prefetch);
          prefetch_panel_row<kRowBytes>(panel + kRowBytes, k + 1, prefetch);
        }
        linear_step_avx2<Rows, Vectors, Element>(sums, panel, rows, first_column, block_scales);
        linear_step_avx2<Rows, Vectors, Element>(sums, panel + kRowBytes, rows + row_stride, first_column,
                                                 block_scales);
        panel += 2 * kRowBytes;
        rows += 2 * row_stride;
      }
    }
    for (; k < block_end; ++k) {
      if (stream) prefetch_panel_row<kRowBytes>(panel, k, prefetch);
      linear_step_avx2<Rows, Vectors, Element>(sums, panel, rows, first_column, block_scales);
      panel += kRowBytes;
      rows += row_stride;
    }
  }
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r)
    store_row_avx2(tile, sums[r], first_column, columns, tile.out + r * tile.out_stride + first_column);
}

// One pass of 32 columns for 1-2 rows, and for 3 rows of f32 weights (which the FMAs read from memory); narrow
// weights need registers to widen them, and 3 rows x 4 accumulators + 4 weights + a broadcast are 17 of the 16
// ymm: GCC spilled, and a 3-row tile took longer than a 6-row one (Zen 5 with the avx2 path forced, one core,
// panels in L2, cycles per 4 k x 32 columns, bf16: 52.9 in one pass, 36.5 in two; 2 rows 20.3, 6 rows 49.2).
// Either way each output is the same chain of FMAs in k order.
template <int Rows, class Element>
BLIP_TARGET_AVX2 void linear_micro_kernel_avx2(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "the AVX2 tiles cover a 32-column panel in one pass or two of 16");
  if constexpr (Rows <= 2 || (Rows == 3 && std::is_same_v<Element, float>)) {
    linear_pass_avx2<Rows, 4, Element>(tile, 0);
  } else {
    linear_pass_avx2<Rows, 2, Element>(tile, 0);
    if (tile.columns > 16) linear_pass_avx2<Rows, 2, Element>(tile, 16);
  }
}

template <class Element>
struct Avx2Kernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_avx2<Rows, Element>(tile);
  }
};

template <class Element>
MicroKernelSet linear_micro_kernels_avx2_for() {
  return MicroKernelSet{KernelPath::Avx2, kPrecisionOf<Element>, kAvx2MaxRows,
                        micro_kernel_table<Avx2Kernel<Element>>(std::make_integer_sequence<int, kAvx2MaxRows>{})};
}

inline MicroKernelSet linear_micro_kernels_avx2(WeightPrecision precision = WeightPrecision::F32) {
  return with_packed_element(precision, [](auto element) {
    return linear_micro_kernels_avx2_for<decltype(element)>();
  });
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
