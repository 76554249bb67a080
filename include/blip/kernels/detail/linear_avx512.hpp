// blip/kernels/detail/linear_avx512.hpp: the AVX-512 Linear micro-kernels,
// one per weight precision (f32, bf16, f16, int8, int4; activations and sums f32).
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
// Narrow weights are widened to f32 as they are loaded: bf16 32 at a time by a
// shift and a mask (exact; see linear_micro_kernel_avx512_bf16_weights), f16 16
// at a time by vcvtph2ps (exact), int8 by a sign-extension and vcvtdq2ps
// (exact), so every path computes the f32 products of the stored weights; int8
// sums are multiplied by the feature's scale at the end.
//
// With bf16 activations (ActivationPrecision::BF16) on a CPU with AVX512-BF16,
// linear_micro_kernel_avx512_bf16_dot multiplies bf16 pairs with vdpbf16ps; with
// int8 activations (ActivationPrecision::Int8) on a CPU with AVX512-VNNI,
// linear_micro_kernel_avx512_int8_dot multiplies int8 quads with vpdpbusd, and
// linear_micro_kernel_avx512_int4_dot int4 weights by them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "blip/core/quantization.hpp"
#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

#if BLIP_X86_DISPATCH

namespace blip::kernels::detail {

inline constexpr int kAvx512MaxRows = 12;

// 16 packed weights widened to f32.
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const float* weights) { return _mm512_loadu_ps(weights); }
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const Float16* weights) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(weights)));
}
BLIP_TARGET_AVX512 inline __m512 load16_avx512(const std::int8_t* weights) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights))));
}

// The columns of a tile's two 16-float halves that exist: the last panel of a layer may be partial, and is read
// and written through masks.
struct TileMasks {
  __mmask16 low, high;
  explicit TileMasks(int columns)
      : low(columns >= 16 ? __mmask16(0xffff) : __mmask16((1u << columns) - 1u)),
        high(columns >= 32 ? __mmask16(0xffff) : columns > 16 ? __mmask16((1u << (columns - 16)) - 1u) : __mmask16(0)) {}
};

// A resumed tile's raw sums (MicroTile::resume), as the previous depth block left them in out: columns 0..15 in
// low[r], 16..31 in high[r] (f32 sums, or int8 quads' int32 sums as their bits); lanes past tile.columns are 0.
template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void load_raw_tile_avx512(const MicroTile& tile, __m512 (&low)[Rows],
                                                                __m512 (&high)[Rows]) {
  const TileMasks masks(tile.columns);
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const float* out = tile.out + r * tile.out_stride;
    low[r] = _mm512_maskz_loadu_ps(masks.low, out);
    high[r] = _mm512_maskz_loadu_ps(masks.high, out + 16);
  }
}

// Writes a tile: finished (sums · scale + bias), or, when another depth block follows (!tile.finish), the raw sums
// for it to resume from. low[r]: columns 0..15, high[r]: 16..31.
template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void store_tile_avx512(const MicroTile& tile, __m512 (&low)[Rows],
                                                             __m512 (&high)[Rows]) {
  const TileMasks masks(tile.columns);
  if (tile.finish && tile.scale != nullptr) {
    const __m512 scale_low = _mm512_loadu_ps(tile.scale);
    const __m512 scale_high = _mm512_loadu_ps(tile.scale + 16);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_mul_ps(low[r], scale_low);
      high[r] = _mm512_mul_ps(high[r], scale_high);
    }
  }
  if (tile.finish && tile.bias != nullptr) {
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
    _mm512_mask_storeu_ps(out, masks.low, low[r]);
    _mm512_mask_storeu_ps(out + 16, masks.high, high[r]);
  }
}

// The raw sums of a resumed tile, or zeros.
template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void start_tile_avx512(const MicroTile& tile, __m512 (&low)[Rows],
                                                             __m512 (&high)[Rows]) {
  if (tile.resume) {
    load_raw_tile_avx512<Rows>(tile, low, high);
  } else {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_setzero_ps();
      high[r] = _mm512_setzero_ps();
    }
  }
}

// Reorders two accumulators whose lanes hold the columns listed in `first_columns` / `second_columns`
// (first_columns[i]: the column of lane i of `first`) into columns 0..15 and 16..31.
struct ColumnOrder {
  alignas(64) std::int32_t to_low[16];   // for _mm512_permutex2var_ps(first, to_low, second)
  alignas(64) std::int32_t to_high[16];
  alignas(64) std::int32_t to_first[16];  // back: _mm512_permutex2var_ps(low, to_first, high)
  alignas(64) std::int32_t to_second[16];
  constexpr ColumnOrder(const int (&first_columns)[16], const int (&second_columns)[16])
      : to_low{}, to_high{}, to_first{}, to_second{} {
    for (int lane = 0; lane < 16; ++lane) {
      const int first = first_columns[lane], second = second_columns[lane];
      (first < 16 ? to_low[first] : to_high[first - 16]) = lane;
      (second < 16 ? to_low[second] : to_high[second - 16]) = 16 + lane;
      to_first[lane] = first;
      to_second[lane] = second;
    }
  }
};

// Permutes each row's pair of vectors (a[r]: lanes 0..15 of the pair, b[r]: 16..31) through two index tables.
template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void permute_vector_pairs_avx512(const std::int32_t (&to_a)[16],
                                                                       const std::int32_t (&to_b)[16],
                                                                       __m512 (&a)[Rows], __m512 (&b)[Rows]) {
  const __m512i indices_a = _mm512_load_si512(to_a), indices_b = _mm512_load_si512(to_b);
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const __m512 new_a = _mm512_permutex2var_ps(a[r], indices_a, b[r]);
    b[r] = _mm512_permutex2var_ps(a[r], indices_b, b[r]);
    a[r] = new_a;
  }
}

template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void reorder_columns_avx512(const ColumnOrder& order, __m512 (&first)[Rows],
                                                                  __m512 (&second)[Rows]) {
  permute_vector_pairs_avx512<Rows>(order.to_low, order.to_high, first, second);
}

// The inverse: column order back to the lanes `order` describes (a resumed tile's raw sums).
template <int Rows>
BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void restore_lane_order_avx512(const ColumnOrder& order, __m512 (&low)[Rows],
                                                                     __m512 (&high)[Rows]) {
  permute_vector_pairs_avx512<Rows>(order.to_first, order.to_second, low, high);
}

// The f32-activation kernel, over a weight format `Weights` that turns one panel row (one k, 32 columns) into two
// f32 vectors `first` and `second` (Weights::load), Weights::kRowBytes apart, whose lanes hold the columns
// Weights::kOrder says when Weights::kReordered (otherwise columns 0..15 and 16..31). Per k: the load, Rows
// broadcasts, 2 · Rows FMAs.
template <int Rows, class Weights>
BLIP_TARGET_AVX512 void linear_micro_kernel_avx512_widening(const MicroTile& tile) {
  static_assert(kPanelWidth == 32, "the AVX-512 tile holds two 16-float vectors per row");
  __m512 first[Rows], second[Rows];
  start_tile_avx512<Rows>(tile, first, second);
  if constexpr (Weights::kReordered) {
    if (tile.resume) restore_lane_order_avx512<Rows>(*Weights::kOrder, first, second);
  }
  const float* rows = tile.rows;
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  const std::int64_t row_stride = tile.row_stride;
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  for (std::int64_t k = 0; k < tile.depth; ++k) {
    if (stream) prefetch_panel_row<Weights::kRowBytes>(panel, k, prefetch);
    __m512 weights_first, weights_second;
    Weights::load(panel, weights_first, weights_second);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      const __m512 activation = _mm512_set1_ps(rows[r]);
      first[r] = _mm512_fmadd_ps(activation, weights_first, first[r]);
      second[r] = _mm512_fmadd_ps(activation, weights_second, second[r]);
    }
    rows += row_stride;
    panel += Weights::kRowBytes;
  }
  // A bool, not `kOrder != nullptr`: GCC does not fold the address of an inline variable against null under
  // -fsanitize=undefined (it keeps null checks), so that comparison is not a constant expression there.
  if constexpr (Weights::kReordered) reorder_columns_avx512<Rows>(*Weights::kOrder, first, second);
  store_tile_avx512<Rows>(tile, first, second);
}

// f32, f16, int8: 16 columns per widening load, in column order.
template <class Element>
struct Avx512Elements {
  static constexpr std::int64_t kRowBytes = kPanelWidth * static_cast<std::int64_t>(sizeof(Element));
  static constexpr bool kReordered = false;
  static constexpr const ColumnOrder* kOrder = nullptr;
  static BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void load(const std::uint8_t* row, __m512& first, __m512& second) {
    const Element* weights = reinterpret_cast<const Element*>(row);
    first = load16_avx512(weights);
    second = load16_avx512(weights + 16);
  }
};

// bf16 weights, f32 activations, widened without a shuffle: one 64-byte load holds the 32 columns' bf16 of one
// k, as 16 32-bit lanes (column 2i in the low half of lane i, column 2i + 1 in the high half). Shifting each lane
// left by 16 gives the even columns as f32, masking off the low half gives the odd ones: 2 one-cycle ALU
// instructions per 32 weights, against 2 zero-extending shuffles (one port on Intel) and 2 shifts when loading
// 16 columns at a time. The even/odd accumulators are put back in column order once, after the depth loop;
// every column's sum is the same sequence of FMAs as in the generic kernel, so results are bit-identical.
inline constexpr int kEvenColumns[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
inline constexpr int kOddColumns[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
inline constexpr ColumnOrder kEvenOddOrder{kEvenColumns, kOddColumns};

struct Avx512Bf16EvenOdd {
  static constexpr std::int64_t kRowBytes = kPanelWidth * 2;
  static constexpr bool kReordered = true;
  static constexpr const ColumnOrder* kOrder = &kEvenOddOrder;
  static BLIP_TARGET_AVX512 BLIP_ALWAYS_INLINE void load(const std::uint8_t* row, __m512& even, __m512& odd) {
    const __m512i weights = _mm512_loadu_si512(row);
    even = _mm512_castsi512_ps(_mm512_slli_epi32(weights, 16));
    odd = _mm512_castsi512_ps(_mm512_and_si512(weights, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
};

// Int4 weights (two per byte, weight_formats.hpp): one 16-byte load per k, zero-extended to 16 lanes; the low
// nibbles are columns 0..15, the high ones 16..31. Each weight is widened to its value, (q + 8 - 8) · scale, as
// it is loaded: one FMA per 16 columns, q_stored · scale - 8 · scale, with the scale of the current 32-input block
// (exact but for the one rounding of the product, as the scalar q · scale). The tile then sums x · w as the f32
// kernels do, so one call covers the whole depth and the accumulators stay in registers across blocks.
template <int Rows>
BLIP_TARGET_AVX512 void linear_micro_kernel_avx512_int4(const MicroTile& tile) {
  __m512 low[Rows], high[Rows];
  start_tile_avx512<Rows>(tile, low, high);
  const float* rows = tile.rows;
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  const float* block_scales = tile.block_scales;
  const std::int64_t row_stride = tile.row_stride;
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  const __m512i nibble = _mm512_set1_epi32(0x0f);
  const __m512 minus_offset = _mm512_set1_ps(-static_cast<float>(kInt4Offset));
  for (std::int64_t block_begin = 0; block_begin < tile.depth; block_begin += kInt4BlockSize) {
    if (stream) prefetch_streamed_block_scales(block_scales, prefetch);
    const __m512 scale_low = _mm512_loadu_ps(block_scales), scale_high = _mm512_loadu_ps(block_scales + 16);
    const __m512 offset_low = _mm512_mul_ps(scale_low, minus_offset);
    const __m512 offset_high = _mm512_mul_ps(scale_high, minus_offset);
    block_scales += kPanelWidth;
    const std::int64_t block_end = std::min(tile.depth, block_begin + kInt4BlockSize);
    for (std::int64_t k = block_begin; k < block_end; ++k) {
      if (stream) prefetch_panel_row<kPanelWidth / 2>(panel, k, prefetch);
      const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(panel)));
      const __m512 weights_low =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(bytes, nibble)), scale_low, offset_low);
      const __m512 weights_high =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4)), scale_high, offset_high);
      BLIP_UNROLL
      for (int r = 0; r < Rows; ++r) {
        const __m512 activation = _mm512_set1_ps(rows[r]);
        low[r] = _mm512_fmadd_ps(activation, weights_low, low[r]);
        high[r] = _mm512_fmadd_ps(activation, weights_high, high[r]);
      }
      rows += row_stride;
      panel += kPanelWidth / 2;
    }
  }
  store_tile_avx512<Rows>(tile, low, high);
}

template <class Element>
struct Avx512Kernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    if constexpr (std::is_same_v<Element, BFloat16>)
      linear_micro_kernel_avx512_widening<Rows, Avx512Bf16EvenOdd>(tile);
    else if constexpr (std::is_same_v<Element, Int4Pair>)
      linear_micro_kernel_avx512_int4<Rows>(tile);
    else
      linear_micro_kernel_avx512_widening<Rows, Avx512Elements<Element>>(tile);
  }
};

template <class Element>
MicroKernelSet linear_micro_kernels_avx512_for() {
  return MicroKernelSet{KernelPath::Avx512, kPrecisionOf<Element>, kAvx512MaxRows,
                        micro_kernel_table<Avx512Kernel<Element>>(std::make_integer_sequence<int, kAvx512MaxRows>{})};
}

inline MicroKernelSet linear_micro_kernels_avx512(WeightPrecision precision = WeightPrecision::F32) {
  return with_packed_element(precision, [](auto element) {
    return linear_micro_kernels_avx512_for<decltype(element)>();
  });
}

// ---- AVX512-BF16: bf16 weights times bf16 activations (ActivationPrecision::BF16) ----
//
// vdpbf16ps multiplies pairs: lane i of the result gains a[2i]·b[2i] + a[2i+1]·b[2i+1] (each product exact in
// f32; Intel's definition adds the odd product first, then the even one, rounding to nearest even, denormals
// flushed). The activations come packed as bf16 pairs (x[r, k], x[r, k + 1]) in one 32-bit word (RowPacking::
// BF16Pairs), broadcast to every lane. The weights stay in the usual panel layout ([k][32 columns] bf16); the
// pairs (w[k, c], w[k + 1, c]) are made per two k by interleaving the two 64-byte rows (vpunpcklwd / vpunpckhwd,
// two shuffles per 64 weights, against 2 · Rows dot products), which leaves the columns in the lanes as
//   first:  lane i -> column 8 · (i / 4) + i % 4          second: lane i -> column 8 · (i / 4) + 4 + i % 4
// (the interleave works within 128-bit lanes), put back in order once per tile. Per two k the tile does the
// work of 4 · Rows f32 FMAs in 2 · Rows instructions.
inline constexpr int kInterleavedFirstColumns[16] = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
inline constexpr int kInterleavedSecondColumns[16] = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
inline constexpr ColumnOrder kInterleavedOrder{kInterleavedFirstColumns, kInterleavedSecondColumns};

template <int Rows>
BLIP_TARGET_AVX512_BF16 void linear_micro_kernel_avx512_bf16_dot(const MicroTile& tile) {
  __m512 first[Rows], second[Rows];
  start_tile_avx512<Rows>(tile, first, second);
  if (tile.resume) restore_lane_order_avx512<Rows>(kInterleavedOrder, first, second);
  const std::uint32_t* pairs = reinterpret_cast<const std::uint32_t*>(tile.rows);
  const BFloat16* panel = static_cast<const BFloat16*>(tile.panel);
  const std::int64_t row_stride = tile.row_stride;
  const std::int64_t pair_count = (tile.depth + 1) / 2;
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  for (std::int64_t pair = 0; pair < pair_count; ++pair) {
    if (stream) prefetch_panel_row<4 * kPanelWidth>(panel, pair, prefetch);
    const __m512i even_k = _mm512_loadu_si512(panel);
    // An odd depth's last k has no partner row in the panel (the next one may be another panel or past the end).
    const bool has_odd_k = 2 * pair + 1 < tile.depth;
    const __m512i odd_k = has_odd_k ? _mm512_loadu_si512(panel + kPanelWidth) : _mm512_setzero_si512();
    const __m512bh weights_first = (__m512bh)_mm512_unpacklo_epi16(even_k, odd_k);
    const __m512bh weights_second = (__m512bh)_mm512_unpackhi_epi16(even_k, odd_k);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      const __m512bh activations = (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[r]));
      first[r] = _mm512_dpbf16_ps(first[r], weights_first, activations);
      second[r] = _mm512_dpbf16_ps(second[r], weights_second, activations);
    }
    pairs += row_stride;
    panel += 2 * kPanelWidth;
  }
  reorder_columns_avx512<Rows>(kInterleavedOrder, first, second);
  store_tile_avx512<Rows>(tile, first, second);
}

// The bf16 pairs of rows [0, rows) of x (RowPacking::BF16Pairs; linear.hpp: pack_row_bf16_pairs is the scalar
// reference, one row): words packed[i · packed_stride + r] = bf16(x[r, 2i]) | bf16(x[r, 2i + 1]) << 16 for
// i < ceil(depth / 2), the high half zero past the depth; nothing else of `packed` is written. f32_to_bf16's
// rounding on 16 lanes at a time, in integer arithmetic (round to nearest even; a NaN stays a quiet NaN with its
// sign and top payload bits), so the bits are the scalar code's, denormals included (vcvtneps2bf16 would flush
// those to zero).
//
// Eight rows at a time: each row's 16 inputs become 8 words, and an 8 x 8 transpose in registers turns them into
// 8 runs of 8 rows, one store each. The row-at-a-time packer this replaced wrote each word on its own through a
// stack copy of the vector and ran at about 0.9 ns per input on Zen 5 (6% of BLIP-base's vision encoder with bf16
// activations; kernels.md, "Packing the rows").
//
// bf16_bits_avx512: the bf16 bits of source[i] (zero for the lanes not in `valid`), each in the low half of a
// 32-bit lane; bf16_pair_words_avx512: the same narrowed to 16 bits, i.e. 8 pair words.
BLIP_TARGET_AVX512 inline __m512i bf16_bits_avx512(const float* source, __mmask16 valid) {
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), infinity = _mm512_set1_epi32(0x7f800000);
  const __m512i rounding = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  const __m512i bits = _mm512_castps_si512(_mm512_maskz_loadu_ps(valid, source));
  const __m512i upper = _mm512_srli_epi32(bits, 16);
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(rounding, _mm512_and_si512(upper, one))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, magnitude), infinity);
  return _mm512_mask_or_epi32(rounded, nan, upper, quiet);
}

BLIP_TARGET_AVX512 inline __m256i bf16_pair_words_avx512(const float* source, __mmask16 valid) {
  return _mm512_cvtepi32_epi16(bf16_bits_avx512(source, valid));
}

// words[0, count) to destination[0, count), count ≤ 8, with plain stores (no AVX512-VL masks needed).
BLIP_TARGET_AVX512 inline void store_first_words(std::uint32_t* destination, __m256i words, std::int64_t count) {
  if (count == 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(destination), words);
    return;
  }
  __m128i part = _mm256_castsi256_si128(words);
  if (count >= 4) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(destination), part);
    part = _mm256_extracti128_si256(words, 1);
    destination += 4;
    count -= 4;
  }
  if (count >= 2) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(destination), part);
    part = _mm_srli_si128(part, 8);
    destination += 2;
    count -= 2;
  }
  if (count == 1) *destination = static_cast<std::uint32_t>(_mm_cvtsi128_si32(part));
}

// rows[i] lane j -> rows[j] lane i, for 8 vectors of 8 32-bit lanes.
BLIP_TARGET_AVX512 inline void transpose_8x8_words(__m256i rows[8]) {
  __m256i pairs[8], quads[8];
  for (int i = 0; i < 8; i += 2) {
    pairs[i] = _mm256_unpacklo_epi32(rows[i], rows[i + 1]);
    pairs[i + 1] = _mm256_unpackhi_epi32(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    quads[i] = _mm256_unpacklo_epi64(pairs[i], pairs[i + 2]);
    quads[i + 1] = _mm256_unpackhi_epi64(pairs[i], pairs[i + 2]);
    quads[i + 2] = _mm256_unpacklo_epi64(pairs[i + 1], pairs[i + 3]);
    quads[i + 3] = _mm256_unpackhi_epi64(pairs[i + 1], pairs[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    rows[j] = _mm256_permute2x128_si256(quads[j], quads[j + 4], 0x20);
    rows[j + 4] = _mm256_permute2x128_si256(quads[j], quads[j + 4], 0x31);
  }
}

BLIP_TARGET_AVX512 inline void pack_rows_bf16_pairs_avx512(const float* x, std::int64_t x_stride, std::int64_t rows,
                                                           std::int64_t depth, std::uint32_t* packed,
                                                           std::int64_t packed_stride) {
  for (std::int64_t first_row = 0; first_row < rows; first_row += 8) {
    const std::int64_t group = std::min<std::int64_t>(8, rows - first_row);
    for (std::int64_t k = 0; k < depth; k += 16) {
      const std::int64_t left = depth - k;
      const __mmask16 valid = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
      __m256i words[8];
      BLIP_UNROLL
      for (int i = 0; i < 8; ++i)
        words[i] = i < group ? bf16_pair_words_avx512(x + (first_row + i) * x_stride + k, valid) : _mm256_setzero_si256();
      transpose_8x8_words(words);
      const std::int64_t word_count = left >= 16 ? 8 : (left + 1) / 2;
      std::uint32_t* destination = packed + k / 2 * packed_stride + first_row;
      for (std::int64_t j = 0; j < word_count; ++j) store_first_words(destination + j * packed_stride, words[j], group);
    }
  }
}

struct Avx512Bf16DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_avx512_bf16_dot<Rows>(tile);
  }
};

inline MicroKernelSet linear_micro_kernels_avx512_bf16_dot() {
  return MicroKernelSet{KernelPath::Avx512Bf16, WeightPrecision::BF16, kAvx512MaxRows,
                        micro_kernel_table<Avx512Bf16DotKernel>(std::make_integer_sequence<int, kAvx512MaxRows>{}),
                        RowPacking::BF16Pairs};
}

// ---- AVX512-VNNI: int8 weights times int8 activations (ActivationPrecision::Int8) ----
//
// vpdpbusd multiplies bytes in fours: lane i of the result gains Σ_j a[4i + j] · b[4i + j], j = 0..3, a unsigned,
// b signed, summed exactly in int32. The activations come as int8 quads (RowPacking::Int8Quads): q + 128 for
// four consecutive k of a row in one 32-bit word, broadcast to every lane. The weights stay in the int8 panel
// layout ([k][32 columns]); for each four k, one 64-byte load holds panel rows k and k + 1, the next one rows
// k + 2 and k + 3, and one vpermt2b (AVX512-VBMI) per 16 columns gathers each column's four weights into its lane,
// leaving the columns in order. The + 128 adds 128 · Σ_k w[k, c] to every sum of column c, which the tile
// subtracts: over a panel's whole depth (decode) with the weight sums packed at load (MicroTile::weight_sums),
// over a depth block with one more vpdpbusd per 16 columns and four k, by all-ones bytes. Per tile:
//   out[r, c] = float(Σ_k q[r, k] · w[k, c]) · row_scale[r] · scale[c] (+ bias[c])
// Integer sums are exact, so a result does not depend on blocking or on the other rows. They wrap modulo 2^32,
// offset included, so they are right while the true Σ q · w fits int32; run_tile splits depths longer than
// kInt8QuadMaxDepth (linear_microkernel.hpp) so that it always does. Per four k the tile does
// the work of 4 · Rows f32 FMAs in 2 · Rows instructions, and a decode step reads a quarter of f32's bytes with
// no widening on the way.

// vpermt2b indices over (rows k | k + 1) and (rows k + 2 | k + 3): byte j of lane i is w[k + j, column], at byte
// 32 j + column of the two tables (bytes 64.. select the second); `low` gathers columns 0..15, `high` 16..31.
struct Int8QuadGather {
  alignas(64) std::uint8_t low[64];
  alignas(64) std::uint8_t high[64];
  constexpr Int8QuadGather() : low{}, high{} {
    for (int lane = 0; lane < 16; ++lane) {
      for (int j = 0; j < 4; ++j) {
        low[4 * lane + j] = static_cast<std::uint8_t>(32 * j + lane);
        high[4 * lane + j] = static_cast<std::uint8_t>(32 * j + 16 + lane);
      }
    }
  }
};
inline constexpr Int8QuadGather kInt8QuadGather{};

// GCC 12 reports a false "used uninitialized" inside its own _mm512_slli_epi32 and _mm512_cvtepi32_ps (their
// _mm512_undefined pass-through operand) when they are inlined into this kernel; silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Sums: WeightSums::Summed, by a vpdpbusd per 16 columns and four k (a depth block), or Given, from
// tile.weight_sums (a tile over the panel's whole depth, as every decode tile is; 24 vpdpbusd per four k at 12 rows
// instead of 26, 7-11% less time per quad at 4-12 rows on Zen 5 with the panel in cache).
template <int Rows, WeightSums Sums>
BLIP_TARGET_AVX512_VNNI void linear_micro_kernel_avx512_int8_dot(const MicroTile& tile) {
  constexpr bool kSumWeights = Sums == WeightSums::Summed;
  static_assert(kPanelWidth == 32, "a panel row is 32 int8 weights: two of them per 64-byte load");
  // A resumed tile starts from the previous depth block's int32 sums (offset already taken off): integer sums are
  // exact, so the blocks add up to the one-call sums.
  __m512i first[Rows], second[Rows];
  {
    __m512 raw_low[Rows], raw_high[Rows];
    start_tile_avx512<Rows>(tile, raw_low, raw_high);
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      first[r] = _mm512_castps_si512(raw_low[r]);
      second[r] = _mm512_castps_si512(raw_high[r]);
    }
  }
  __m512i weight_sums_first = _mm512_setzero_si512(), weight_sums_second = _mm512_setzero_si512();
  const __m512i gather_low = _mm512_load_si512(kInt8QuadGather.low);
  const __m512i gather_high = _mm512_load_si512(kInt8QuadGather.high);
  [[maybe_unused]] const __m512i ones = _mm512_set1_epi8(1);  // WeightSums::Summed: bytes summed by vpdpbusd
  const std::uint32_t* quads = reinterpret_cast<const std::uint32_t*>(tile.rows);
  const std::int8_t* panel = static_cast<const std::int8_t*>(tile.panel);
  const std::int64_t row_stride = tile.row_stride;
  // A last quad of 1 to 3 k is read from a zero-padded copy of its own panel rows (the next ones may be another
  // panel, or past the end). Plain loads throughout: masked loads in the loop cost AMD CPUs half the speed, and
  // the loop body written once keeps GCC from spilling the accumulators.
  const std::int64_t full_quads = tile.depth / 4, left = tile.depth % 4;
  alignas(64) std::int8_t last_quad[4 * kPanelWidth] = {};
  if (left > 0) std::memcpy(last_quad, panel + full_quads * 4 * kPanelWidth, static_cast<std::size_t>(left * kPanelWidth));
  // Two runs of the same loop: the full quads in the panel, then the padded copy (if any). (A select of the
  // source inside one loop ran at half the speed at -O2, which does not split such a loop.)
  const std::int8_t* run_start[2] = {panel, last_quad};
  const std::int64_t run_quads[2] = {full_quads, left > 0 ? 1 : 0};
  const WeightPrefetch prefetch = tile.prefetch_weights;
  const bool stream = prefetch != WeightPrefetch::None;
  for (int run = 0; run < 2; ++run) {
    const std::int8_t* rows_k = run_start[run];
    for (std::int64_t quad = 0; quad < run_quads[run]; ++quad, rows_k += 4 * kPanelWidth) {
      if (stream) prefetch_panel_row<4 * kPanelWidth>(rows_k, quad, prefetch);
      const __m512i weights_01 = _mm512_loadu_si512(rows_k);                   // panel rows k, k + 1
      const __m512i weights_23 = _mm512_loadu_si512(rows_k + 2 * kPanelWidth);  // rows k + 2, k + 3
      const __m512i weights_first = _mm512_permutex2var_epi8(weights_01, gather_low, weights_23);
      const __m512i weights_second = _mm512_permutex2var_epi8(weights_01, gather_high, weights_23);
      if constexpr (kSumWeights) {
        weight_sums_first = _mm512_dpbusd_epi32(weight_sums_first, ones, weights_first);
        weight_sums_second = _mm512_dpbusd_epi32(weight_sums_second, ones, weights_second);
      }
      BLIP_UNROLL
      for (int r = 0; r < Rows; ++r) {
        const __m512i activations = _mm512_set1_epi32(static_cast<int>(quads[r]));
        first[r] = _mm512_dpbusd_epi32(first[r], activations, weights_first);
        second[r] = _mm512_dpbusd_epi32(second[r], activations, weights_second);
      }
      quads += row_stride;
    }
  }
  if constexpr (!kSumWeights) {
    weight_sums_first = _mm512_loadu_si512(tile.weight_sums);
    weight_sums_second = _mm512_loadu_si512(tile.weight_sums + 16);
  }
  const __m512i offset_first = _mm512_slli_epi32(weight_sums_first, 7);
  const __m512i offset_second = _mm512_slli_epi32(weight_sums_second, 7);
  __m512 low[Rows], high[Rows];
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const __m512i sums_low = _mm512_sub_epi32(first[r], offset_first);
    const __m512i sums_high = _mm512_sub_epi32(second[r], offset_second);
    if (tile.finish) {
      const __m512 row_scale = _mm512_set1_ps(tile.row_scales[r]);
      low[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(sums_low), row_scale);
      high[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(sums_high), row_scale);
    } else {  // the int32 sums themselves, for the next depth block
      low[r] = _mm512_castsi512_ps(sums_low);
      high[r] = _mm512_castsi512_ps(sums_high);
    }
  }
  store_tile_avx512<Rows>(tile, low, high);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The int8 quads of one activation row (RowPacking::Int8Quads; linear.hpp: pack_row_int8_quads is the scalar
// reference): words destination[i · stride] = bytes q[4i + j] + byte_offset for i < ceil(depth / 4), byte_offset
// past the depth (128: the unsigned bytes of Int8Quads; 0: the signed ones of Int8SignedQuads); returns the row's
// scale. The same scale and q as the scalar code, bit for bit: the maximum is exact, the division
// is IEEE's, and vcvtps2dq rounds to nearest even as std::nearbyint does in the default rounding mode. 16 inputs per
// step, so that quantizing a ViT row costs little next to its products.
BLIP_TARGET_AVX512 inline float pack_row_int8_quads_avx512(const float* source, std::int64_t depth,
                                                           std::uint32_t* destination, std::int64_t stride,
                                                           int byte_offset = 128) {
  __m512 largest = _mm512_setzero_ps();
  __mmask16 unordered = 0;
  for (std::int64_t k = 0; k < depth; k += 16) {
    const __mmask16 valid = depth - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (depth - k)) - 1u);
    const __m512 values = _mm512_maskz_loadu_ps(valid, source + k);
    unordered |= _mm512_cmp_ps_mask(values, values, _CMP_UNORD_Q);
    largest = _mm512_max_ps(largest, _mm512_abs_ps(values));
  }
  const float maximum = _mm512_reduce_max_ps(largest);
  const float scale = unordered == 0 && std::isfinite(maximum) ? quantization::int8_scale(maximum)
                                                                : std::numeric_limits<float>::quiet_NaN();
  const bool quantize = std::isfinite(scale) && scale > 0.0f;  // otherwise every q is 0
  const __m512 divisor = _mm512_set1_ps(scale);
  const __m512i lowest = _mm512_set1_epi32(-127), highest = _mm512_set1_epi32(127);
  const __m512i offset = _mm512_set1_epi32(byte_offset);
  for (std::int64_t k = 0; k < depth; k += 16) {
    const std::int64_t left = depth - k;
    const __mmask16 valid = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    __m512i q = _mm512_setzero_si512();
    if (quantize) {
      q = _mm512_cvtps_epi32(_mm512_div_ps(_mm512_maskz_loadu_ps(valid, source + k), divisor));
      q = _mm512_min_epi32(_mm512_max_epi32(q, lowest), highest);
    }
    alignas(16) std::uint32_t words[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(words), _mm512_cvtepi32_epi8(_mm512_add_epi32(q, offset)));
    const std::int64_t word_count = left >= 16 ? 4 : (left + 3) / 4;
    for (std::int64_t j = 0; j < word_count; ++j) destination[(k / 4 + j) * stride] = words[j];
  }
  return scale;
}

struct Avx512Int8DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    if (tile.weight_sums != nullptr)
      linear_micro_kernel_avx512_int8_dot<Rows, WeightSums::Given>(tile);
    else
      linear_micro_kernel_avx512_int8_dot<Rows, WeightSums::Summed>(tile);
  }
};

// 12 rows per tile, as the other AVX-512 kernels: 24 accumulators, the two weight sums, the two gathered vectors,
// the ones and a broadcast stay in registers; GCC reloads the two gather indices from the stack (L1) each k.
// (An earlier form, whose loop body was an inlined helper taking the accumulator arrays by reference, made GCC
// store accumulators to the stack every k: half the speed.)
inline MicroKernelSet linear_micro_kernels_avx512_int8_dot() {
  return MicroKernelSet{KernelPath::Avx512, WeightPrecision::Int8, kAvx512MaxRows,
                        micro_kernel_table<Avx512Int8DotKernel>(std::make_integer_sequence<int, kAvx512MaxRows>{}),
                        RowPacking::Int8Quads};
}

// ---- AVX512-VNNI: int4 weights times int8 activations (ActivationPrecision::Int8) ----
//
// The int4 panel layout as it is (weight_formats.hpp): per k, 16 bytes, byte j holding column j in its low nibble
// and column j + 16 in its high one, stored as q + 8 (0 .. 15). Four k are one 64-byte load; one vpermb
// (AVX512-VBMI) puts byte j of rows k .. k + 3 side by side in lane j, and a mask (low nibbles) or a shift and a
// mask (high nibbles) leaves, per lane, the four weights of column j or j + 16 as unsigned bytes: vpdpbusd's
// unsigned operand. The activations are the signed one (RowPacking::Int8SignedQuads: q itself, broadcast).
// So the integer sums are Σ q · (w + 8) = Σ q · w + 8 · Σ q; each block's sums start from the row's -8 · Σ q over
// that block (tile.row_block_offsets, computed when the rows are packed), which cancels the offset.
// Each 32-input block has its own scale per column, so the exact int32 sums of a block are turned to f32 and
// multiplied by it at the end of the block, into f32 sums:
//   out[r, c] = (Σ_blocks float(Σ_{k in block} q[r, k] · w[k, c]) · scale[block, c]) · row_scale[r] (+ bias[c])
// one FMA per block, in block order, so a result does not depend on the rows that come with it.
// Registers: per row two int32 and two f32 accumulators, so up to 6 rows keep everything in registers (24 of the
// 32 zmm); tiles of 7 and 8 rows keep their f32 sums in an L1 array instead (a load, an FMA and a store per block
// and 16 columns). 12 decode rows are two tiles (8 + 4), the second reading the panel again from L1 or L2; prefill
// takes tiles of 6 (linear_micro_kernels_avx512_int4_dot). Per four k of a tile of R rows: one load, one vpermb,
// one shift, two masks and 2 · R vpdpbusd; per block, 2 · R conversions and FMAs. Zen 5 (two vpdpbusd per cycle), one core, panels in L2, cycles per four k × 32 columns: 1 / 2 / 4 / 6
// / 8 rows 2.6 / 3.2 / 5.0 / 6.9 / 9.8 (2.0 / 4.0 / 8.0 at the vpdpbusd bound): docs/kernels.md.
struct Int4QuadGather {
  alignas(64) std::uint8_t bytes[64];  // byte 4 · lane + j = byte `lane` of panel row k + j: 16 · j + lane
  constexpr Int4QuadGather() : bytes{} {
    for (int lane = 0; lane < 16; ++lane)
      for (int j = 0; j < 4; ++j) bytes[4 * lane + j] = static_cast<std::uint8_t>(16 * j + lane);
  }
};
inline constexpr Int4QuadGather kInt4QuadGather{};
inline constexpr int kAvx512Int4DotMaxRows = 8;

// GCC 12 reports a false "may be used uninitialized" inside its own _mm512_permutexvar_epi8 (its _mm512_undefined
// pass-through operand) when it is inlined here at -O2 (as for the int8 kernel above); silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// One quad of the int4 x int8 tile: four k of the panel times four k of each row, into the block's int32 sums.
template <int Rows>
BLIP_TARGET_AVX512_VNNI BLIP_ALWAYS_INLINE void int4_dot_quad_step(const std::uint8_t* rows_k,
                                                                  const std::uint32_t* quad_rows, __m512i gather,
                                                                  __m512i nibble, WeightPrefetch prefetch,
                                                                  __m512i (&sums_low)[Rows], __m512i (&sums_high)[Rows]) {
  if (prefetch != WeightPrefetch::None) prefetch_streamed_weights(rows_k, prefetch);
  const __m512i gathered = _mm512_permutexvar_epi8(gather, _mm512_loadu_si512(rows_k));
  const __m512i weights_low = _mm512_and_si512(gathered, nibble);
  const __m512i weights_high = _mm512_and_si512(_mm512_srli_epi16(gathered, 4), nibble);
  BLIP_UNROLL
  for (int r = 0; r < Rows; ++r) {
    const __m512i activations = _mm512_set1_epi32(static_cast<int>(quad_rows[r]));
    sums_low[r] = _mm512_dpbusd_epi32(sums_low[r], weights_low, activations);
    sums_high[r] = _mm512_dpbusd_epi32(sums_high[r], weights_high, activations);
  }
}

// Rows of an int4 x int8 tile whose f32 sums stay in registers (2 int32 and 2 f32 accumulators per row, 24 of the
// 32 zmm at 6 rows); larger tiles keep them in an L1 array, read and written once per 32-input block.
inline constexpr int kInt4DotRowsWithSumsInRegisters = 6;

// The end of a 32-input block: its exact int32 sums, times the block's scales, added to the f32 sums (low and
// high, or the L1 array f32_sums for tiles of more than kInt4DotRowsWithSumsInRegisters rows).
template <int Rows>
BLIP_TARGET_AVX512_VNNI BLIP_ALWAYS_INLINE void int4_dot_finish_block(const float* block_scales,
                                                                     const __m512i (&sums_low)[Rows],
                                                                     const __m512i (&sums_high)[Rows],
                                                                     __m512 (&low)[Rows], __m512 (&high)[Rows],
                                                                     float* f32_sums) {
  const __m512 scale_low = _mm512_loadu_ps(block_scales), scale_high = _mm512_loadu_ps(block_scales + 16);
  if constexpr (Rows <= kInt4DotRowsWithSumsInRegisters) {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums_low[r]), scale_low, low[r]);
      high[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums_high[r]), scale_high, high[r]);
    }
  } else {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      float* row = f32_sums + r * kPanelWidth;
      _mm512_store_ps(row, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums_low[r]), scale_low, _mm512_load_ps(row)));
      _mm512_store_ps(row + 16,
                      _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums_high[r]), scale_high, _mm512_load_ps(row + 16)));
    }
    // Keeps GCC from holding the array in registers across the blocks (it then spills the int32 sums instead).
    asm volatile("" ::: "memory");
  }
}

template <int Rows>
BLIP_TARGET_AVX512_VNNI void linear_micro_kernel_avx512_int4_dot(const MicroTile& tile) {
  static_assert(kPanelWidth == 32 && kInt4BlockSize % 4 == 0, "a panel row is 16 bytes: four of them per load");
  constexpr std::int64_t kQuadBytes = Int4DepthBlocks::kQuadBytes;
  __m512 low[Rows], high[Rows];
  start_tile_avx512<Rows>(tile, low, high);
  alignas(64) float f32_sums[Rows > kInt4DotRowsWithSumsInRegisters ? Rows * kPanelWidth : 1];
  if constexpr (Rows > kInt4DotRowsWithSumsInRegisters) {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      _mm512_store_ps(f32_sums + r * kPanelWidth, low[r]);
      _mm512_store_ps(f32_sums + r * kPanelWidth + 16, high[r]);
    }
  }
  const __m512i gather = _mm512_load_si512(kInt4QuadGather.bytes);
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const std::uint32_t* quads = reinterpret_cast<const std::uint32_t*>(tile.rows);
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  const float* block_scales = tile.block_scales;
  const std::int32_t* block_offsets = tile.row_block_offsets;
  const std::int64_t row_stride = tile.row_stride;
  constexpr std::int64_t kQuadsPerBlock = Int4DepthBlocks::kQuadsPerBlock;
  const Int4DepthBlocks blocks(panel, tile.depth);  // whole blocks, then a short or zero-padded last one
  const WeightPrefetch prefetch = tile.prefetch_weights;
  // Full blocks (8 quads) have their quad loop unrolled. A loop inside the block loop, its int32 sums started
  // afresh each block, made GCC 12 -O2 copy every sum into another register and back each quad (24 moves per quad at
  // 6 rows, on the vector pipes) and spill half the f32 sums: 10.4 cycles per quad at 6 rows against 6.9 now. The
  // last block, if short or padded, takes the same steps in a loop.
  std::int64_t block_quad = 0;
  for (; block_quad < blocks.full_block_quads; block_quad += kQuadsPerBlock) {
    __m512i sums_low[Rows], sums_high[Rows];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) sums_low[r] = sums_high[r] = _mm512_set1_epi32(block_offsets[r]);
    block_offsets += row_stride;
    BLIP_UNROLL
    for (int quad = 0; quad < kQuadsPerBlock; ++quad) {
      int4_dot_quad_step<Rows>(panel + quad * kQuadBytes, quads, gather, nibble, prefetch, sums_low, sums_high);
      quads += row_stride;
    }
    panel += kQuadsPerBlock * kQuadBytes;
    if (prefetch != WeightPrefetch::None) prefetch_streamed_block_scales(block_scales, prefetch);
    int4_dot_finish_block<Rows>(block_scales, sums_low, sums_high, low, high, f32_sums);
    block_scales += kPanelWidth;
  }
  if (block_quad < blocks.quad_count) {
    __m512i sums_low[Rows], sums_high[Rows];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) sums_low[r] = sums_high[r] = _mm512_set1_epi32(block_offsets[r]);
    const std::uint8_t* rows_k = blocks.padded ? blocks.last_block : panel;
    for (std::int64_t quad = block_quad; quad < blocks.quad_count; ++quad, rows_k += kQuadBytes, quads += row_stride)
      int4_dot_quad_step<Rows>(rows_k, quads, gather, nibble, prefetch, sums_low, sums_high);
    int4_dot_finish_block<Rows>(block_scales, sums_low, sums_high, low, high, f32_sums);
    block_scales += kPanelWidth;
  }
  if constexpr (Rows > kInt4DotRowsWithSumsInRegisters) {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      low[r] = _mm512_load_ps(f32_sums + r * kPanelWidth);
      high[r] = _mm512_load_ps(f32_sums + r * kPanelWidth + 16);
    }
  }
  if (tile.finish) {
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      const __m512 row_scale = _mm512_set1_ps(tile.row_scales[r]);
      low[r] = _mm512_mul_ps(low[r], row_scale);
      high[r] = _mm512_mul_ps(high[r], row_scale);
    }
  }
  store_tile_avx512<Rows>(tile, low, high);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

struct Avx512Int4DotKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_avx512_int4_dot<Rows>(tile);
  }
};

inline MicroKernelSet linear_micro_kernels_avx512_int4_dot() {
  // Decode takes up to 8 rows in one tile (one pass over each panel from memory); prefill tiles of 6, whose sums
  // all stay in registers: cycles per row and four k, depth 384, panels in L2, 1.36 at 6 rows against 1.43 at 8.
  // 9-12 decode rows stay 8 + the rest (MicroKernelSet::balanced_decode_tiles false). Two tiles of 5-6 rows, all
  // sums in registers, were 1.06-1.14x faster on panels in cache, but streamed from memory 10 rows took 1.06x
  // longer as 5 + 5 than as 8 + 2, and 12 rows the same as 6 + 6 (Zen 5; docs/kernels.md, session 24): the first
  // tile's arithmetic overlaps the stream, the later tiles' does not, so the first tile should be the largest.
  return MicroKernelSet{
      KernelPath::Avx512, WeightPrecision::Int4, kAvx512Int4DotMaxRows,
      micro_kernel_table<Avx512Int4DotKernel>(std::make_integer_sequence<int, kAvx512Int4DotMaxRows>{}),
      RowPacking::Int8SignedQuads, kInt4DotRowsWithSumsInRegisters};
}

}  // namespace blip::kernels::detail

#endif  // BLIP_X86_DISPATCH
