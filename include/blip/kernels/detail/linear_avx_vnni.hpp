// blip/kernels/detail/linear_avx_vnni.hpp: int8 weights times int8 activations
// on the AVX2 path, with AVX-VNNI's 256-bit vpdpbusd (Alder Lake and later Intel
// cores, Zen 5; avx2_int8_dot_supported()).
//
// The same arithmetic as the AVX-512 kernel (linear_avx512.hpp:
// linear_micro_kernel_avx512_int8_dot): activations packed as int8 quads (q + 128,
// RowPacking::Int8Quads), weights as stored in the int8 panel layout, exact int32
// sums, minus 128 · Σ w, times the row and feature scales. What differs is how
// a column's four weights reach its lane without AVX-512's vpermt2b: per four k
// and 16 columns, four 16-byte loads (panel rows k .. k + 3), then
//   vpunpcklbw / vpunpckhbw (rows k, k + 1) and (rows k + 2, k + 3): byte pairs,
//   vpunpcklwd / vpunpckhwd of those: the quads of columns 0-3, 4-7, 8-11, 12-15,
//   two vinserti128: columns 0-7 and 8-15 in order, one column per 32-bit lane:
// 10 shuffles per 4 k and 16 columns, shared by the tile's rows.
// Registers (16 ymm): with several rows the panel is done in two halves of 16
// columns, 4 rows per tile: 8 accumulators, two weight sums, two weight
// vectors, the ones and a broadcast; the second half reads the panel rows again
// from L1 / L2. One row takes all 32 columns in one pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/linear_portable.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvxVnniMaxRows = 4;

// The four weights of columns [column, column + 16) of panel rows k .. k + 3 (rows_k), one column per 32-bit lane:
// columns column .. column + 7 in `first`, the next 8 in `second`.
BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE void gather_int8_quads_avx2(const std::int8_t* rows_k, __m256i& first,
                                                                   __m256i& second) {
  const __m128i row0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows_k));
  const __m128i row1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows_k + kPanelWidth));
  const __m128i row2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows_k + 2 * kPanelWidth));
  const __m128i row3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows_k + 3 * kPanelWidth));
  const __m128i pairs01_low = _mm_unpacklo_epi8(row0, row1), pairs01_high = _mm_unpackhi_epi8(row0, row1);
  const __m128i pairs23_low = _mm_unpacklo_epi8(row2, row3), pairs23_high = _mm_unpackhi_epi8(row2, row3);
  first = _mm256_set_m128i(_mm_unpackhi_epi16(pairs01_low, pairs23_low), _mm_unpacklo_epi16(pairs01_low, pairs23_low));
  second =
      _mm256_set_m128i(_mm_unpackhi_epi16(pairs01_high, pairs23_high), _mm_unpacklo_epi16(pairs01_high, pairs23_high));
}

template <int Rows>
BLIP_TARGET_AVX_VNNI void linear_micro_kernel_avx2_int8_dot(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "a panel row is 32 int8 weights: two groups of 16");
  constexpr std::int64_t kQuadBytes = 4 * kPanelWidth;
  // One row (decode) takes the whole panel in one pass: 4 accumulators and 4 weight sums, so each waits for its
  // previous vpdpbusd only every four k, and the panel is read once. More rows take it in halves (registers).
  constexpr int kPassColumns = Rows == 1 ? kPanelWidth : kPortableHalfWidth;
  constexpr int kVectors = kPassColumns / 8;
  const std::int8_t* panel = static_cast<const std::int8_t*>(tile.panel);
  // A last quad of 1 to 3 k is read from a zero-padded copy of its own panel rows (the next ones may be another
  // panel, or past the end); as in the AVX-512 kernel, the full quads and the copy are two runs of one loop.
  const std::int64_t full_quads = tile.depth / 4, left = tile.depth % 4;
  alignas(32) std::int8_t last_quad[kQuadBytes] = {};
  if (left > 0) std::memcpy(last_quad, panel + full_quads * kQuadBytes, static_cast<std::size_t>(left * kPanelWidth));
  const std::int64_t run_quads[2] = {full_quads, left > 0 ? 1 : 0};
  const __m256i ones = _mm256_set1_epi8(1);
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  for (int first_column = 0; first_column < tile.columns; first_column += kPassColumns) {
    const int columns = std::min(tile.columns - first_column, kPassColumns);
    // A resumed tile starts from the previous depth block's int32 sums (offset already taken off; exact).
    __m256i sums[Rows][kVectors];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      alignas(32) float raw[kPassColumns] = {};
      if (tile.resume) load_raw_row(raw, kPassColumns, columns, tile.out + r * tile.out_stride + first_column);
      BLIP_UNROLL
      for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm256_castps_si256(_mm256_load_ps(raw + 8 * v));
    }
    __m256i weight_sums[kVectors];
    BLIP_UNROLL
    for (int v = 0; v < kVectors; ++v) weight_sums[v] = _mm256_setzero_si256();
    const std::uint32_t* quads = reinterpret_cast<const std::uint32_t*>(tile.rows);
    const std::int8_t* run_start[2] = {panel + first_column, last_quad + first_column};
    for (int run = 0; run < 2; ++run) {
      const std::int8_t* rows_k = run_start[run];
      for (std::int64_t quad = 0; quad < run_quads[run]; ++quad, rows_k += kQuadBytes) {
        // The first pass streams the panel from memory: it asks for all of each quad's lines.
        if (stream && first_column == 0) prefetch_panel_row<kQuadBytes>(rows_k, quad, prefetch);
        __m256i weights[kVectors];
        BLIP_UNROLL
        for (int group = 0; group < kVectors / 2; ++group)
          gather_int8_quads_avx2(rows_k + 16 * group, weights[2 * group], weights[2 * group + 1]);
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) weight_sums[v] = _mm256_dpbusd_avx_epi32(weight_sums[v], ones, weights[v]);
        BLIP_UNROLL
        for (int r = 0; r < Rows; ++r) {
          const __m256i activations = _mm256_set1_epi32(static_cast<int>(quads[r]));
          BLIP_UNROLL
          for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm256_dpbusd_avx_epi32(sums[r][v], activations, weights[v]);
        }
        quads += tile.row_stride;
      }
    }
    // The + 128 of every activation added 128 · Σ w to each column; the row scale, then (store_row) the feature
    // scale and the bias, in the AVX-512 kernel's order. Another depth block to follow: the int32 sums as they are.
    __m256i offsets[kVectors];
    BLIP_UNROLL
    for (int v = 0; v < kVectors; ++v) offsets[v] = _mm256_slli_epi32(weight_sums[v], 7);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      const __m256 row_scale = _mm256_set1_ps(tile.row_scales[r]);
      alignas(32) float values[kPassColumns];
      BLIP_UNROLL
      for (int v = 0; v < kVectors; ++v) {
        const __m256i exact = _mm256_sub_epi32(sums[r][v], offsets[v]);
        _mm256_store_ps(values + 8 * v, tile.finish ? _mm256_mul_ps(_mm256_cvtepi32_ps(exact), row_scale)
                                                    : _mm256_castsi256_ps(exact));
      }
      store_row(tile, values, first_column, columns, tile.out + r * tile.out_stride + first_column);
    }
  }
}

struct Avx2Int8DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_avx2_int8_dot<Rows>(tile);
  }
};

inline MicroKernelSet linear_micro_kernels_avx2_int8_dot() {
  return MicroKernelSet{KernelPath::Avx2, WeightPrecision::Int8, kAvxVnniMaxRows,
                        micro_kernel_table<Avx2Int8DotKernel>(std::make_integer_sequence<int, kAvxVnniMaxRows>{}),
                        RowPacking::Int8Quads};
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
