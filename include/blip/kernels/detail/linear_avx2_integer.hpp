// blip/kernels/detail/linear_avx2_integer.hpp: int8 activations times int8 or int4 weights on the avx2 path,
// as exact integer sums, on every AVX2 CPU: with AVX-VNNI's vpdpbusd where the CPU has it, else with vpmaddubsw.
//
// Two ways to multiply four unsigned bytes by four signed bytes and add them into a 32-bit lane (the Dot
// parameter of the kernels below):
//   AvxVnniDot   AVX-VNNI's VEX-encoded 256-bit vpdpbusd (Alder Lake and later Intel cores, Zen 5:
//                avx2_int8_dot_supported()): one instruction.
//   Avx2MaddDot  every AVX2 CPU (Haswell .. Zen 3): vpmaddubsw (u8 · s8, adjacent pairs summed into int16,
//                saturating), then vpmaddwd by ones (adjacent int16 pairs summed into int32). Exact only while no
//                int16 sum passes 32,767, which decides how each kernel uses it:
//
// int8 weights (linear_micro_kernel_avx2_int8_dot): activations packed as for the AVX-512 kernel
// (RowPacking::Int8Quads, bytes q + 128), weights as stored in the int8 panel layout.
//   VNNI  Σ (q + 128) · w by vpdpbusd, minus 128 · Σ w (the weight sums: over a panel's whole depth, packed at
//         load, MicroTile::weight_sums; over a depth block, also by vpdpbusd, with ones).
//   Madd  (q + 128) · w reaches 2 · 255 · 127 = 64,770 per pair: int16 would saturate. So the kernel takes q back
//         (the byte XOR 0x80) and multiplies |w| (unsigned, at most 127; once per quad, shared by the rows) by q
//         carrying w's sign (vpsignb): a pair then reaches 2 · 127 · 127 = 32,258, exact, because weights and
//         activations are in [-127, 127] (symmetric quantization; a quantized checkpoint holding -128 is refused
//         at load, io/weight_store.hpp). Then vpmaddwd by ones and vpaddd: 4 instructions per 8 columns and 4 k
//         where VNNI takes one.
// int4 weights (linear_micro_kernel_avx2_int4_dot): activations as for the AVX-512 int4 kernel
// (RowPacking::Int8SignedQuads: q itself, then each 32-input block's -8 · Σ q), the stored nibbles (w + 8,
// 0 .. 15) the unsigned operand, so Σ q · (w + 8) - 8 · Σ q = Σ q · w.
//   VNNI  vpdpbusd, each block's sums starting from its offset.
//   Madd  a pair reaches 2 · 15 · 127 = 3,810, so vpmaddubsw's int16 sums are added as int16 (vpaddw) over a
//         whole 32-input block (8 quads: 16 products per int16 lane, at most 30,480) and widened once per block
//         by vpmaddwd with ones: 2 instructions per 8 columns and 4 k.
// Either way every block's int32 sum is exact, then handled as in the AVX-512 kernels (int8: times the row scale,
// then the feature scale; int4: converted and FMA'd by the block's scales into f32 sums, in block order, times
// the row scale at the end), so all of them give the same bits (tested). (AVX-512 CPUs without AVX512-VNNI and
// VBMI, e.g. Skylake-X and Cascade Lake, run int8 activations on the avx512 path's f32 kernels: the same values
// to f32 rounding, not the same bits.)
//
// Weights: a column's four weights of k .. k + 3 must sit in one 32-bit lane, and AVX2 has no byte permute
// across 128-bit lanes: per four k and 16 byte columns, 10 shuffles for int8 (gather_quads_avx2), 6 for int4
// (gather_int4_quads_avx2), shared by the tile's rows. An int8 panel row is two such groups (columns 0-15,
// 16-31); an int4 panel row is one, each byte holding column j (low nibble) and j + 16 (high nibble), split by a
// mask and a shift.
//
// Registers (16 ymm): int8 with several rows, two passes of 16 columns, 4 rows (8 accumulators); one row takes all
// 32 columns in one pass (in halves, each accumulator waited for its previous vpdpbusd every four k: one row
// streamed 61% of the bandwidth, in one pass 89%, Zen 5). 5 to 12 rows with vpdpbusd (decode with beams or a
// batch): one call, its rows in groups of at most 4 over chunks of 8 KiB of panel, so that the panel comes from
// memory once and every other group and half reads it from L1 (linear_micro_kernel_avx2_int8_dot_chunked).
// Int4: up to 2 rows take all 32 columns (4 accumulators per row), 3 rows two passes (low nibbles, then high ones),
// each gathering the panel rows again; the f32 sums live in an L1 array, read and written once per block. (Int4
// tiles of more rows in chunks, as int8's, were tried: no faster at 8 and 12 rows on Zen 5, whose 48 KiB L1 holds a
// whole int4 panel of 2,560 inputs; docs/kernels.md, session 23.)
//
// Both Dot kinds are compiled with the AVX-VNNI target attribute, so that one kernel body serves both; the Madd
// instantiations hold no VNNI instruction (none is asked for, and GCC 12 / clang 14 emit none: checked in the
// disassembly), so they run on AVX2 CPUs without it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "blip/core/quantization.hpp"
#include "blip/kernels/detail/linear_avx2.hpp"
#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/linear_portable.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvx2Int8WideMaxRows = 4;
// Int4 tiles of up to kAvx2Int4OnePassRows rows take the whole panel in one pass (4 int32 or int16 accumulators
// per row), 3 rows two passes. Single core, panel in L1, GCC 12 default build, Zen 5, ns per row and quad of the
// panel with AVX-VNNI: 1 row 1.58, 2 rows 1.10, 3 rows 1.14, 4 rows 1.31 (which is why 4 is not used: 8 decode
// rows take 3 + 3 + 2); vpmaddubsw 2.23 / 1.67 / 1.74 / 1.71.
inline constexpr int kAvx2Int4DotMaxRows = 3;
inline constexpr int kAvx2Int4OnePassRows = 2;

// The four bytes of byte columns [0, 16) of panel rows k .. k + 3 (rows_k, RowBytes apart), one column per 32-bit
// lane: columns 0 .. 7 in `first`, 8 .. 15 in `second`. Four 16-byte loads, byte then word unpacks, two
// vinserti128: 10 shuffles. (The int4 order below in 8, with a load and a vinserti128 per two rows, was 10-20%
// slower at 2 to 4 rows in the int8 kernel: it needs one more register there.)
template <std::int64_t RowBytes>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void gather_quads_avx2(const void* rows_k, __m256i& first, __m256i& second) {
  const auto* bytes = static_cast<const std::uint8_t*>(rows_k);
  const __m128i row0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  const __m128i row1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + RowBytes));
  const __m128i row2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 2 * RowBytes));
  const __m128i row3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 3 * RowBytes));
  const __m128i pairs01_low = _mm_unpacklo_epi8(row0, row1), pairs01_high = _mm_unpackhi_epi8(row0, row1);
  const __m128i pairs23_low = _mm_unpacklo_epi8(row2, row3), pairs23_high = _mm_unpackhi_epi8(row2, row3);
  first = _mm256_set_m128i(_mm_unpackhi_epi16(pairs01_low, pairs23_low), _mm_unpacklo_epi16(pairs01_low, pairs23_low));
  second =
      _mm256_set_m128i(_mm_unpackhi_epi16(pairs01_high, pairs23_high), _mm_unpacklo_epi16(pairs01_high, pairs23_high));
}

// The same for an int4 panel, whose four 16-byte rows are 64 contiguous bytes, in 6 shuffles. With A = rows 0 | 1
// and B = rows 2 | 3 (one 32-byte load each), vpunpcklbw (A, B) holds, per 128-bit lane, the byte pairs (row 0,
// row 2) of columns 0-7 and (row 1, row 3) of the same columns; vpermq puts columns 0-3 of both in the low lane and
// 4-7 in the high one, and vpshufb (kInt4QuadOrder) orders each column's bytes as rows 0, 1, 2, 3. vpunpckhbw
// does the same for columns 8-15.
struct Int4QuadOrder {
  alignas(32) std::int8_t bytes[32];  // per 128-bit lane: column j's dword from the words j (rows 0, 2), 4 + j (1, 3)
  constexpr Int4QuadOrder() : bytes{} {
    for (int lane = 0; lane < 2; ++lane)
      for (int column = 0; column < 4; ++column) {
        std::int8_t* quad = bytes + 16 * lane + 4 * column;
        quad[0] = static_cast<std::int8_t>(2 * column);
        quad[1] = static_cast<std::int8_t>(8 + 2 * column);
        quad[2] = static_cast<std::int8_t>(2 * column + 1);
        quad[3] = static_cast<std::int8_t>(9 + 2 * column);
      }
  }
};
inline constexpr Int4QuadOrder kInt4QuadOrder{};

BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void gather_int4_quads_avx2(const std::uint8_t* rows_k, __m256i& first,
                                                               __m256i& second) {
  const __m256i order = _mm256_load_si256(reinterpret_cast<const __m256i*>(kInt4QuadOrder.bytes));
  const __m256i rows01 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows_k));
  const __m256i rows23 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows_k + 32));
  first = _mm256_shuffle_epi8(_mm256_permute4x64_epi64(_mm256_unpacklo_epi8(rows01, rows23), 0xd8), order);
  second = _mm256_shuffle_epi8(_mm256_permute4x64_epi64(_mm256_unpackhi_epi8(rows01, rows23), 0xd8), order);
}

// vpdpbusd (AVX-VNNI): int32 sums throughout.
struct AvxVnniDot {
  // Int4: a block's sums start from its offset, and are its exact sum at the end.
  static BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE __m256i block_start(std::int32_t offset) {
    return _mm256_set1_epi32(offset);
  }
  static BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE __m256i add_products(__m256i sums, __m256i unsigned_bytes,
                                                                     __m256i signed_bytes) {
    return _mm256_dpbusd_avx_epi32(sums, unsigned_bytes, signed_bytes);
  }
  static BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE __m256i block_total(__m256i sums, std::int32_t) { return sums; }
};

// vpmaddubsw + vpmaddwd (plain AVX2): int4 blocks summed in int16, widened at the block's end.
struct Avx2MaddDot {
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256i block_start(std::int32_t) { return _mm256_setzero_si256(); }
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256i add_products(__m256i sums, __m256i unsigned_bytes,
                                                                 __m256i signed_bytes) {
    return _mm256_add_epi16(sums, _mm256_maddubs_epi16(unsigned_bytes, signed_bytes));
  }
  static BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE __m256i block_total(__m256i sums, std::int32_t offset) {
    return _mm256_add_epi32(_mm256_madd_epi16(sums, _mm256_set1_epi16(1)), _mm256_set1_epi32(offset));
  }
};

// Int8 tiles of up to kAvx2Int8WideMaxRows rows: linear_micro_kernel_avx2_int8_dot below. More rows (decode with
// beams or a batch) with vpdpbusd: linear_micro_kernel_avx2_int8_dot_chunked, groups of at most 4 rows over chunks
// of the depth. The vpmaddubsw kernels stay at 4-row tiles: their arithmetic (4 instructions where vpdpbusd takes
// one) bounds them, not where the panel comes from, and the chunked tiles were no faster there (8 rows 3-5% slower,
// 12 rows equal; Zen 5, 2 threads, linear_bench beams8 / beams12, 2026-12-05).
inline constexpr int kAvx2Int8ChunkedMaxRows = 12;
template <class Dot>
inline constexpr int kAvx2Int8DotMaxRows =
    std::is_same_v<Dot, AvxVnniDot> ? kAvx2Int8ChunkedMaxRows : kAvx2Int8WideMaxRows;
// Quads of a chunked tile's depth chunk: 8 KiB of panel, which stays in L1 while every row group reads it.
inline constexpr std::int64_t kAvx2Int8ChunkQuads = 64;

// One row of an int8 tile's exact int32 sums (8 · Vectors columns from first_column) to its outputs: minus
// `offsets` (vpdpbusd: the + 128 of every activation added 128 · Σ w to each column; vpmaddubsw: zeros), then times
// the row scale and (store_row) the feature scale and the bias, in the AVX-512 kernel's order; another depth block
// to follow (!tile.finish): the int32 sums as they are.
template <int Vectors>
BLIP_TARGET_AVX2 BLIP_ALWAYS_INLINE void store_int8_row_avx2(const MicroTile& tile, const __m256i (&sums)[Vectors],
                                                            const __m256i (&offsets)[Vectors], float row_scale,
                                                            int first_column, int columns, float* out) {
  const __m256 scale = _mm256_set1_ps(row_scale);
  alignas(32) float values[8 * Vectors];
  BLIP_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    const __m256i exact = _mm256_sub_epi32(sums[v], offsets[v]);
    _mm256_store_ps(values + 8 * v, tile.finish ? _mm256_mul_ps(_mm256_cvtepi32_ps(exact), scale)
                                                : _mm256_castsi256_ps(exact));
  }
  store_row(tile, values, first_column, columns, out);
}

// Sums (VNNI only; Madd ignores it): WeightSums::Summed, by vpdpbusd as the panel goes by (a depth block), or
// Given, from tile.weight_sums (a tile over the panel's whole depth: every decode tile).
template <int Rows, class Dot, WeightSums Sums>
BLIP_TARGET_AVX_VNNI void linear_micro_kernel_avx2_int8_dot(const MicroTile& tile) {
  constexpr bool kSumWeights = Sums == WeightSums::Summed;
  static_assert(kPanelWidth == 32, "a panel row is 32 int8 weights: two groups of 16");
  constexpr bool kVnni = std::is_same_v<Dot, AvxVnniDot>;
  constexpr std::int64_t kQuadBytes = 4 * kPanelWidth;
  // One row (decode) takes the whole panel in one pass: 4 accumulators, so each waits for its previous
  // vpdpbusd only every four k, and the panel is read once. More rows take it in halves (registers).
  static_assert(Rows <= kAvx2Int8WideMaxRows, "more rows take the chunked kernel");
  constexpr int kPassColumns = Rows == 1 ? kPanelWidth : kPortableHalfWidth;
  constexpr int kVectors = kPassColumns / 8;
  const std::int8_t* panel = static_cast<const std::int8_t*>(tile.panel);
  // A last quad of 1 to 3 k is read from a zero-padded copy of its own panel rows (the next ones may be another
  // panel, or past the end); as in the AVX-512 kernel, the full quads and the copy are two runs of one loop.
  const std::int64_t full_quads = tile.depth / 4, left = tile.depth % 4;
  alignas(32) std::int8_t last_quad[kQuadBytes] = {};
  if (left > 0) std::memcpy(last_quad, panel + full_quads * kQuadBytes, static_cast<std::size_t>(left * kPanelWidth));
  const std::int64_t run_quads[2] = {full_quads, left > 0 ? 1 : 0};
  const __m256i ones = _mm256_set1_epi8(1);          // VNNI: the weight sums
  const __m256i word_ones = _mm256_set1_epi16(1);    // Madd: int16 pairs to int32
  const __m256i sign_bit = _mm256_set1_epi8(-128);   // Madd: q + 128 back to q
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  for (int first_column = 0; first_column < tile.columns; first_column += kPassColumns) {
    const int columns = std::min(tile.columns - first_column, kPassColumns);
    // A resumed tile starts from the previous depth block's int32 sums (offset already taken off; exact).
    __m256i sums[Rows][kVectors];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      alignas(32) float raw[kPassColumns] = {};
      if (tile.resume) load_raw_row(raw, columns, tile.out + r * tile.out_stride + first_column);
      BLIP_UNROLL
      for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm256_castps_si256(_mm256_load_ps(raw + 8 * v));
    }
    __m256i weight_sums[kVectors];  // VNNI only
    BLIP_UNROLL
    for (int v = 0; v < kVectors; ++v) weight_sums[v] = _mm256_setzero_si256();
    const std::uint32_t* quads = reinterpret_cast<const std::uint32_t*>(tile.rows);
    const std::int8_t* run_start[2] = {panel + first_column, last_quad + first_column};
    for (int run = 0; run < 2; ++run) {
      const std::int8_t* rows_k = run_start[run];
      for (std::int64_t quad = 0; quad < run_quads[run]; ++quad, rows_k += kQuadBytes) {
        // The first pass streams the panel from memory: it asks for all of each quad's lines.
        if (stream && first_column == 0) prefetch_panel_row<kQuadBytes>(rows_k, quad, prefetch);
        __m256i weights[kVectors], weight_signs[kVectors];
        BLIP_UNROLL
        for (int group = 0; group < kVectors / 2; ++group)
          gather_quads_avx2<kPanelWidth>(rows_k + 16 * group, weights[2 * group], weights[2 * group + 1]);
        if constexpr (kVnni) {
          if constexpr (kSumWeights) {
            BLIP_UNROLL
            for (int v = 0; v < kVectors; ++v) weight_sums[v] = _mm256_dpbusd_avx_epi32(weight_sums[v], ones, weights[v]);
          }
        } else {
          // Madd: |w| (shared by the rows) is the unsigned operand, q with w's sign the signed one.
          BLIP_UNROLL
          for (int v = 0; v < kVectors; ++v) {
            weight_signs[v] = weights[v];
            weights[v] = _mm256_abs_epi8(weights[v]);
          }
        }
        BLIP_UNROLL
        for (int r = 0; r < Rows; ++r) {
          const __m256i activations = _mm256_set1_epi32(static_cast<int>(quads[r]));
          if constexpr (kVnni) {
            BLIP_UNROLL
            for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm256_dpbusd_avx_epi32(sums[r][v], activations, weights[v]);
          } else {
            const __m256i q = _mm256_xor_si256(activations, sign_bit);
            BLIP_UNROLL
            for (int v = 0; v < kVectors; ++v) {
              const __m256i pairs = _mm256_maddubs_epi16(weights[v], _mm256_sign_epi8(q, weight_signs[v]));
              sums[r][v] = _mm256_add_epi32(sums[r][v], _mm256_madd_epi16(pairs, word_ones));
            }
          }
        }
        quads += tile.row_stride;
      }
    }
    // VNNI: each column's 128 · Σ w (Madd's sums are exact as they are).
    __m256i offsets[kVectors];
    BLIP_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      if constexpr (!kVnni)
        offsets[v] = _mm256_setzero_si256();
      else if constexpr (kSumWeights)
        offsets[v] = _mm256_slli_epi32(weight_sums[v], 7);
      else
        offsets[v] = _mm256_slli_epi32(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile.weight_sums + first_column + 8 * v)), 7);
    }
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r)
      store_int8_row_avx2(tile, sums[r], offsets, tile.row_scales[r], first_column, columns,
                          tile.out + r * tile.out_stride + first_column);
  }
}

// One half (16 columns) of one row group of a chunked tile (linear_micro_kernel_avx2_int8_dot_chunked): `quads`
// quads of the panel from rows_k (the half's first column) times rows [Begin, End) of the tile, the int32 sums
// loaded from and stored back to `raw` (the tile's rows, 32 columns each). Not inlined: inlined, GCC 12 promoted the
// caller's `raw` to registers and spilled it inside this loop (a store and a load per vpdpbusd chain and quad).
template <int Begin, int End, bool SumWeights>
BLIP_TARGET_AVX_VNNI BLIP_NOINLINE void int8_dot_chunk_half_avx2(const std::int8_t* rows_k, std::int64_t quads,
                                                                const std::uint32_t* quad_rows,
                                                                std::int64_t row_stride, WeightPrefetch prefetch,
                                                                int half, std::int32_t (*raw)[kPanelWidth],
                                                                std::int32_t* weight_sums) {
  constexpr int kRows = End - Begin;
  constexpr std::int64_t kQuadBytes = 4 * kPanelWidth;
  __m256i sums[kRows][2];
  BLIP_UNROLL
  for (int r = 0; r < kRows; ++r) {
    BLIP_UNROLL
    for (int v = 0; v < 2; ++v)
      sums[r][v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(raw[Begin + r] + 16 * half + 8 * v));
  }
  __m256i summed[2];
  if constexpr (SumWeights) {
    BLIP_UNROLL
    for (int v = 0; v < 2; ++v) summed[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(weight_sums + 8 * v));
  }
  const std::uint32_t* rows = quad_rows + Begin;
  for (std::int64_t quad = 0; quad < quads; ++quad, rows_k += kQuadBytes, rows += row_stride) {
    if (prefetch != WeightPrefetch::None) prefetch_panel_row<kQuadBytes>(rows_k, quad, prefetch);
    __m256i weights[2];
    gather_quads_avx2<kPanelWidth>(rows_k, weights[0], weights[1]);
    if constexpr (SumWeights) {
      BLIP_UNROLL
      for (int v = 0; v < 2; ++v) summed[v] = _mm256_dpbusd_avx_epi32(summed[v], _mm256_set1_epi8(1), weights[v]);
    }
    BLIP_UNROLL
    for (int r = 0; r < kRows; ++r) {
      const __m256i activations = _mm256_set1_epi32(static_cast<int>(rows[r]));
      BLIP_UNROLL
      for (int v = 0; v < 2; ++v) sums[r][v] = _mm256_dpbusd_avx_epi32(sums[r][v], activations, weights[v]);
    }
  }
  BLIP_UNROLL
  for (int r = 0; r < kRows; ++r) {
    BLIP_UNROLL
    for (int v = 0; v < 2; ++v)
      _mm256_store_si256(reinterpret_cast<__m256i*>(raw[Begin + r] + 16 * half + 8 * v), sums[r][v]);
  }
  if constexpr (SumWeights) {
    BLIP_UNROLL
    for (int v = 0; v < 2; ++v) _mm256_store_si256(reinterpret_cast<__m256i*>(weight_sums + 8 * v), summed[v]);
  }
}

// Every row group times `quads` quads of one chunk, a half at a time; the first group's first half streams the
// chunk from memory (prefetch) and, Summed, the first group sums the weights.
template <int Rows, int Groups, bool SumWeights, int... Group>
BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE void int8_dot_chunk_avx2(std::integer_sequence<int, Group...>,
                                                                const std::int8_t* rows_k, std::int64_t quads,
                                                                const std::uint32_t* quad_rows,
                                                                std::int64_t row_stride, WeightPrefetch prefetch,
                                                                int halves, std::int32_t (*raw)[kPanelWidth],
                                                                std::int32_t* weight_sums) {
  for (int half = 0; half < halves; ++half)
    (int8_dot_chunk_half_avx2<Group * Rows / Groups, (Group + 1) * Rows / Groups, SumWeights && Group == 0>(
         rows_k + 16 * half, quads, quad_rows, row_stride,
         Group == 0 && half == 0 ? prefetch : WeightPrefetch::None, half, raw, weight_sums + 16 * half),
     ...);
}

// Int8 tiles of kAvx2Int8WideMaxRows + 1 .. kAvx2Int8ChunkedMaxRows rows with vpdpbusd (decode with beams or a
// batch). The wide kernel takes them as tiles of at most 4 rows (registers), each over the panel's whole depth in
// two passes of 16 columns, so a panel (80 KiB at 2560 inputs) came from memory once and from L2 three (8 rows) or
// five (12 rows) more times. Here one call takes all the rows, the depth in chunks of kAvx2Int8ChunkQuads quads
// (8 KiB of panel): the first row group's first half streams the chunk from memory (and asks for the next one),
// the other groups and halves find it in L1; each row's int32 sums wait in an L1 array between chunks. The
// groups are the wide kernel's tiles (at most 4 rows, 8 accumulators, the same gathers and vpdpbusd), so the
// arithmetic per row is the same; only where the panel comes from changes. The same exact int32 sums as the wide
// kernel and the AVX-512 one, scaled in the same order: the same bits.
template <int Rows, WeightSums Sums>
BLIP_TARGET_AVX_VNNI void linear_micro_kernel_avx2_int8_dot_chunked(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "a panel row is 32 int8 weights: two halves of 16");
  constexpr bool kSumWeights = Sums == WeightSums::Summed;
  constexpr int kGroups = (Rows + kAvx2Int8WideMaxRows - 1) / kAvx2Int8WideMaxRows;
  constexpr std::int64_t kQuadBytes = 4 * kPanelWidth;
  const std::int8_t* panel = static_cast<const std::int8_t*>(tile.panel);
  // A last quad of 1 to 3 k: from a zero-padded copy of its panel rows, as in the wide kernel.
  const std::int64_t full_quads = tile.depth / 4, left = tile.depth % 4;
  alignas(32) std::int8_t last_quad[kQuadBytes] = {};
  if (left > 0) std::memcpy(last_quad, panel + full_quads * kQuadBytes, static_cast<std::size_t>(left * kPanelWidth));
  const int columns = std::min(tile.columns, kPanelWidth);
  const int halves = columns > 16 ? 2 : 1;
  // Each row's int32 sums of all 32 columns (a resumed tile starts from the previous depth block's, stored as
  // their bits), and (Summed) the weight sums.
  alignas(32) std::int32_t raw[Rows][kPanelWidth] = {};
  if (tile.resume) {
    for (int r = 0; r < Rows; ++r)
      std::memcpy(raw[r], tile.out + r * tile.out_stride, static_cast<std::size_t>(columns) * sizeof(float));
  }
  alignas(32) std::int32_t summed_weights[kPanelWidth] = {};
  const auto groups = std::make_integer_sequence<int, kGroups>{};
  const std::uint32_t* chunk_rows = reinterpret_cast<const std::uint32_t*>(tile.rows);
  for (std::int64_t chunk = 0; chunk < full_quads; chunk += kAvx2Int8ChunkQuads) {
    const std::int64_t quads = std::min(full_quads - chunk, kAvx2Int8ChunkQuads);
    int8_dot_chunk_avx2<Rows, kGroups, kSumWeights>(groups, panel + chunk * kQuadBytes, quads, chunk_rows,
                                                    tile.row_stride, tile.prefetch_weights, halves, raw,
                                                    summed_weights);
    chunk_rows += quads * tile.row_stride;
  }
  if (left > 0)
    int8_dot_chunk_avx2<Rows, kGroups, kSumWeights>(groups, last_quad, 1, chunk_rows, tile.row_stride,
                                                    WeightPrefetch::None, halves, raw, summed_weights);
  // Each column's 128 · Σ w, then each row to its outputs (store_int8_row_avx2).
  const std::int32_t* column_weight_sums = kSumWeights ? summed_weights : tile.weight_sums;
  __m256i offsets[4];
  BLIP_UNROLL
  for (int v = 0; v < 4; ++v)
    offsets[v] =
        _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(column_weight_sums + 8 * v)), 7);
  for (int r = 0; r < Rows; ++r) {
    __m256i sums[4];
    BLIP_UNROLL
    for (int v = 0; v < 4; ++v) sums[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(raw[r] + 8 * v));
    store_int8_row_avx2(tile, sums, offsets, tile.row_scales[r], 0, columns, tile.out + r * tile.out_stride);
  }
}

// One quad of the int4 x int8 tile: four k of the panel (rows_k: 64 bytes) times four k of each row, into the
// block's sums. Vectors 4: all 32 columns (low nibbles: columns 0-15, high: 16-31); 2: the low (pass 0) or the
// high (pass 1) nibbles only.
template <int Rows, int Vectors, class Dot>
BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE void int4_dot_quad_step_avx2(const std::uint8_t* rows_k,
                                                                    const std::uint32_t* quad_rows, int pass,
                                                                    WeightPrefetch prefetch,
                                                                    __m256i (&sums)[Rows][Vectors]) {
  if (prefetch != WeightPrefetch::None) prefetch_streamed_weights(rows_k, prefetch);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  __m256i first, second;
  gather_int4_quads_avx2(rows_k, first, second);
  __m256i weights[Vectors];
  if (Vectors == 4 || pass == 0) {
    weights[0] = _mm256_and_si256(first, nibble);
    weights[1] = _mm256_and_si256(second, nibble);
  }
  if (Vectors == 4 || pass == 1) {
    weights[Vectors - 2] = _mm256_and_si256(_mm256_srli_epi16(first, 4), nibble);
    weights[Vectors - 1] = _mm256_and_si256(_mm256_srli_epi16(second, 4), nibble);
  }
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const __m256i activations = _mm256_set1_epi32(static_cast<int>(quad_rows[r]));
    BLIP_UNROLL
    for (int v = 0; v < Vectors; ++v) sums[r][v] = Dot::add_products(sums[r][v], weights[v], activations);
  }
}

// The end of a 32-input block: its exact int32 sums, times the block's scales (block_scales: the pass's first
// column), added to the f32 sums.
template <int Rows, int Vectors, class Dot>
BLIP_TARGET_AVX_VNNI BLIP_ALWAYS_INLINE void int4_dot_finish_block_avx2(const __m256i (&sums)[Rows][Vectors],
                                                                       const std::int32_t* block_offsets,
                                                                       const float* block_scales,
                                                                       float (&f32_sums)[Rows][8 * Vectors]) {
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    BLIP_UNROLL
    for (int v = 0; v < Vectors; ++v) {
      const __m256 exact = _mm256_cvtepi32_ps(Dot::block_total(sums[r][v], block_offsets[r]));
      float* running = f32_sums[r] + 8 * v;
      _mm256_store_ps(running, _mm256_fmadd_ps(exact, _mm256_loadu_ps(block_scales + 8 * v), _mm256_load_ps(running)));
    }
  }
}

template <int Rows, class Dot>
BLIP_TARGET_AVX_VNNI void linear_micro_kernel_avx2_int4_dot(const MicroTile& tile) {
  static_assert(kPanelWidth == 32 && kInt4BlockSize == 32, "a panel row is 16 bytes; a block 8 quads");
  constexpr int kPasses = Rows <= kAvx2Int4OnePassRows ? 1 : 2;
  constexpr int kPassColumns = kPanelWidth / kPasses;
  constexpr int kVectors = kPassColumns / 8;
  constexpr std::int64_t kQuadBytes = Int4DepthBlocks::kQuadBytes;
  constexpr std::int64_t kQuadsPerBlock = Int4DepthBlocks::kQuadsPerBlock;
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  const Int4DepthBlocks blocks(panel, tile.depth);  // whole blocks, then a short or zero-padded last one
  // Full blocks have their 8 quads unrolled (as in the AVX-512 kernel: a loop there made GCC copy the sums each
  // quad); a short or padded last block takes the same steps in a loop.
  const std::int64_t row_stride = tile.row_stride;
  for (int pass = 0; pass < kPasses; ++pass) {
    const int first_column = pass * kPassColumns;
    if (first_column >= tile.columns) break;
    const int columns = std::min(tile.columns - first_column, kPassColumns);
    alignas(32) float f32_sums[Rows][kPassColumns];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      if (tile.resume)
        load_raw_row(f32_sums[r], columns, tile.out + r * tile.out_stride + first_column);
      else
        std::fill(f32_sums[r], f32_sums[r] + kPassColumns, 0.0f);
    }
    // The first pass streams the panel from memory; a second one finds it in L1 / L2.
    const WeightPrefetch prefetch = pass == 0 ? tile.prefetch_weights : WeightPrefetch::None;
    const std::uint32_t* quads = reinterpret_cast<const std::uint32_t*>(tile.rows);
    const std::int32_t* block_offsets = tile.row_block_offsets;
    const float* block_scales = tile.block_scales + first_column;
    const std::uint8_t* block_panel = panel;
    std::int64_t block_quad = 0;
    for (; block_quad < blocks.full_block_quads; block_quad += kQuadsPerBlock) {
      __m256i sums[Rows][kVectors];
      BLIP_UNROLL
      for (int r = 0; r < Rows; ++r) {
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) sums[r][v] = Dot::block_start(block_offsets[r]);
      }
      BLIP_UNROLL
      for (int quad = 0; quad < kQuadsPerBlock; ++quad) {
        int4_dot_quad_step_avx2<Rows, kVectors, Dot>(block_panel + quad * kQuadBytes, quads, pass, prefetch, sums);
        quads += row_stride;
      }
      if (prefetch != WeightPrefetch::None) prefetch_streamed_block_scales(block_scales - first_column, prefetch);
      int4_dot_finish_block_avx2<Rows, kVectors, Dot>(sums, block_offsets, block_scales, f32_sums);
      block_panel += kQuadsPerBlock * kQuadBytes;
      block_offsets += row_stride;
      block_scales += kPanelWidth;
    }
    if (block_quad < blocks.quad_count) {
      __m256i sums[Rows][kVectors];
      BLIP_UNROLL
      for (int r = 0; r < Rows; ++r) {
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) sums[r][v] = Dot::block_start(block_offsets[r]);
      }
      const std::uint8_t* rows_k = blocks.padded ? blocks.last_block : block_panel;
      for (std::int64_t quad = block_quad; quad < blocks.quad_count; ++quad, rows_k += kQuadBytes, quads += row_stride)
        int4_dot_quad_step_avx2<Rows, kVectors, Dot>(rows_k, quads, pass, prefetch, sums);
      int4_dot_finish_block_avx2<Rows, kVectors, Dot>(sums, block_offsets, block_scales, f32_sums);
    }
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      if (tile.finish) {
        const __m256 row_scale = _mm256_set1_ps(tile.row_scales[r]);
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v)
          _mm256_store_ps(f32_sums[r] + 8 * v, _mm256_mul_ps(_mm256_load_ps(f32_sums[r] + 8 * v), row_scale));
      }
      store_row(tile, f32_sums[r], first_column, columns, tile.out + r * tile.out_stride + first_column);
    }
  }
}

// The Int8Quads words of one row (destination[i · stride], i < ceil(depth / 4)), each byte q + byte_offset (128:
// Int8Quads, 0: Int8SignedQuads), and its scale: pack_row_int8_quads (linear.hpp) with AVX2, 8 inputs per step,
// for the avx2 path (pack_rows). The same scale and q as the scalar code, bit for bit (tested): the maximum is
// exact, the division IEEE's, and vcvtps2dq rounds to nearest even as std::nearbyint does in the default rounding
// mode. Inputs past the depth are read as 0 (masked loads), so their bytes are byte_offset, as the scalar code's.
BLIP_TARGET_AVX2 inline float pack_row_int8_quads_avx2(const float* source, std::int64_t depth,
                                                      std::uint32_t* destination, std::int64_t stride,
                                                      int byte_offset = 128) {
  const __m256 magnitude_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 largest = _mm256_setzero_ps(), unordered = _mm256_setzero_ps();
  for (std::int64_t k = 0; k < depth; k += 8) {
    const int valid = static_cast<int>(std::min<std::int64_t>(8, depth - k));
    const __m256 values = _mm256_maskload_ps(source + k, avx2_lane_mask(valid));
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(values, values, _CMP_UNORD_Q));
    largest = _mm256_max_ps(largest, _mm256_and_ps(values, magnitude_bits));
  }
  __m128 maximum4 = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
  maximum4 = _mm_max_ps(maximum4, _mm_movehl_ps(maximum4, maximum4));
  const float maximum = _mm_cvtss_f32(_mm_max_ss(maximum4, _mm_shuffle_ps(maximum4, maximum4, 1)));
  const float scale = _mm256_movemask_ps(unordered) == 0 && std::isfinite(maximum)
                          ? quantization::int8_scale(maximum)
                          : std::numeric_limits<float>::quiet_NaN();
  const bool quantize = std::isfinite(scale) && scale > 0.0f;  // otherwise every q is 0
  const __m256 divisor = _mm256_set1_ps(scale);
  const __m256i lowest = _mm256_set1_epi32(-127), highest = _mm256_set1_epi32(127);
  const __m256i offset = _mm256_set1_epi32(byte_offset);
  const __m128i low_bytes = _mm_set1_epi16(0xff);
  for (std::int64_t k = 0; k < depth; k += 8) {
    const std::int64_t left = depth - k;
    __m256i q = _mm256_setzero_si256();
    if (quantize) {
      const int valid = static_cast<int>(std::min<std::int64_t>(8, left));
      q = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_maskload_ps(source + k, avx2_lane_mask(valid)), divisor));
      q = _mm256_min_epi32(_mm256_max_epi32(q, lowest), highest);
    }
    // q + offset (-127 .. 255) fits int16 exactly; its low byte is the stored one.
    const __m256i biased = _mm256_add_epi32(q, offset);
    const __m128i halves = _mm_packs_epi32(_mm256_castsi256_si128(biased), _mm256_extracti128_si256(biased, 1));
    alignas(16) std::uint32_t words[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(words), _mm_packus_epi16(_mm_and_si128(halves, low_bytes), halves));
    const std::int64_t word_count = left >= 8 ? 2 : (left + 3) / 4;
    for (std::int64_t j = 0; j < word_count; ++j) destination[(k / 4 + j) * stride] = words[j];
  }
  return scale;
}

template <class Dot>
struct Avx2Int8DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    const bool given = std::is_same_v<Dot, AvxVnniDot> && tile.weight_sums != nullptr;
    if constexpr (Rows <= kAvx2Int8WideMaxRows) {
      if (given)
        linear_micro_kernel_avx2_int8_dot<Rows, Dot, WeightSums::Given>(tile);
      else
        linear_micro_kernel_avx2_int8_dot<Rows, Dot, WeightSums::Summed>(tile);
    } else {
      static_assert(std::is_same_v<Dot, AvxVnniDot>, "vpmaddubsw tiles stop at kAvx2Int8WideMaxRows rows");
      if (given)
        linear_micro_kernel_avx2_int8_dot_chunked<Rows, WeightSums::Given>(tile);
      else
        linear_micro_kernel_avx2_int8_dot_chunked<Rows, WeightSums::Summed>(tile);
    }
  }
};

template <class Dot>
struct Avx2Int4DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_avx2_int4_dot<Rows, Dot>(tile);
  }
};

// The avx2 path's kernels for int8 activations times `precision` (Int8 or Int4) weights, with `Dot`.
template <class Dot>
MicroKernelSet linear_micro_kernels_avx2_integer(WeightPrecision precision) {
  if (precision == WeightPrecision::Int8)
    return MicroKernelSet{
        KernelPath::Avx2, WeightPrecision::Int8, kAvx2Int8DotMaxRows<Dot>,
        micro_kernel_table<Avx2Int8DotKernel<Dot>>(std::make_integer_sequence<int, kAvx2Int8DotMaxRows<Dot>>{}),
        RowPacking::Int8Quads, kAvx2Int8WideMaxRows};
  MicroKernelSet set{
      KernelPath::Avx2, WeightPrecision::Int4, kAvx2Int4DotMaxRows,
      micro_kernel_table<Avx2Int4DotKernel<Dot>>(std::make_integer_sequence<int, kAvx2Int4DotMaxRows>{}),
      RowPacking::Int8SignedQuads};
  // 4 decode rows as 2 + 2 rather than 3 + 1, 7 as 3 + 2 + 2, 10 as 3 + 3 + 2 + 2: a one-row int4 tile does little
  // per pass over the panel. Streamed from memory (Zen 5's 256-bit units, one core, paired runs): 4 rows 1.26x
  // faster with AVX-VNNI and 1.15x with vpmaddubsw, 7 rows 1.14x / 1.09x, 10 rows 1.07x / 1.02x; 2 threads,
  // AVX-VNNI: 1.30x, 1.15x, 1.02x (docs/kernels.md, session 24).
  set.balanced_decode_tiles = true;
  return set;
}

// The CPU's: vpdpbusd where it has AVX-VNNI, else vpmaddubsw.
inline MicroKernelSet linear_micro_kernels_avx2_integer_for_cpu(WeightPrecision precision) {
  return avx2_int8_dot_supported() ? linear_micro_kernels_avx2_integer<AvxVnniDot>(precision)
                                   : linear_micro_kernels_avx2_integer<Avx2MaddDot>(precision);
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
