// blip/kernels/detail/linear_amx.hpp: Linear's micro-kernel for bf16 weights times bf16 activations on Intel
// AMX tiles (the amx kernel path; detail/amx_tiles.hpp has the instructions and their scalar model).
//
// TDPBF16PS multiplies a tile A of 16 rows × 16 bf16 pairs by a tile B of 16 rows × 16 columns of bf16 pairs:
//     C[m][n] += A[m][2k] · B[k][2n] + A[m][2k + 1] · B[k][2n + 1],   k = 0 .. 15.
// B row k would have to hold the weights of two inputs for each of 16 output features (the "VNNI" layout). The
// panels hold one input's 32 features per 64-byte row instead ([k][32] bf16, what every other kernel reads), so
// a row of a panel loaded as B row k gives B[k][2n] = w[k, 2n] and B[k][2n + 1] = w[k, 2n + 1]: a B tile is 16
// consecutive panel rows, one contiguous kilobyte, loaded as it is. The activations then carry the pairing:
//     A_even[m][k] = (x[m, k], 0)   gives   C_even[m][n] += x[m, k] · w[k, 2n]       (the even features)
//     A_odd[m][k]  = (0, x[m, k])   gives   C_odd[m][n]  += x[m, k] · w[k, 2n + 1]   (the odd features)
// so per 16 inputs a tile of 16 rows × 32 features is two TDPBF16PS on one B load, and (the other product
// always being zero) each sum is a plain chain of one f32 add per input, rounded to nearest even. Half of each
// instruction's products are zeros: the price of reading the panels as they are, shared by every path; it keeps
// a row's result independent of the other rows and of the depth blocking, as on every path, and leaves the
// layer's memory as it is. (A panel layout in k-pairs would use the whole instruction; measuring that against
// this needs an AMX CPU: roadmap.)
//
// The rows come packed per 16 inputs as the two A tiles (RowPacking::BF16AmxTiles): for group g of 16 inputs,
// 16 rows × 16 words of (x, 0), then 16 rows × 16 words of (0, x), i.e. the bf16 bits in the low or high half of
// each 32-bit word, zero past the depth; of a tile of fewer rows only its rows are written. A tile covers up to
// 16 rows and the 32 features of one panel; C_even and C_odd go back to `out` in the features' order.
//
// Tiles: 0 = C_even, 1 = C_odd, 2 = A_even, 3 = A_odd (as many rows as the tile: one decode row is one row of
// work, not sixteen), 4 = B. The configuration is loaded at every call, so code between two calls (another
// library's AMX kernels) may use the tiles as it likes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "blip/core/dtype.hpp"
#include "blip/kernels/detail/amx_tiles.hpp"
#include "blip/kernels/detail/linear_avx512.hpp"
#include "blip/kernels/detail/linear_microkernel.hpp"

namespace blip::kernels::detail {

inline constexpr int kAmxMaxRows = kAmxTileRows;
// Inputs per A and B tile: 16 words of A, 16 rows of B.
inline constexpr std::int64_t kAmxGroupInputs = 16;
// 32-bit words one group of a packed tile takes: two A tiles of 16 × 16 words.
inline constexpr std::int64_t kAmxGroupWords = 2 * kAmxTileRows * 16;

inline std::int64_t amx_groups(std::int64_t depth) { return (depth + kAmxGroupInputs - 1) / kAmxGroupInputs; }

// Rows [0, rows) (rows ≤ 16) of x as RowPacking::BF16AmxTiles (see the top of this file), into packed
// [amx_groups(depth)][2][16][16] words, of which rows [rows, 16) are not written. The scalar reference of
// pack_rows_bf16_amx_tiles_avx512.
inline void pack_rows_bf16_amx_tiles(const float* x, std::int64_t x_stride, std::int64_t rows, std::int64_t depth,
                                     std::uint32_t* packed) {
  const std::int64_t groups = amx_groups(depth);
  for (std::int64_t group = 0; group < groups; ++group) {
    std::uint32_t* even = packed + group * kAmxGroupWords;
    std::uint32_t* odd = even + kAmxGroupWords / 2;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < kAmxGroupInputs; ++j) {
        const std::int64_t k = group * kAmxGroupInputs + j;
        const std::uint32_t bits = k < depth ? f32_to_bf16(x[r * x_stride + k]).bits : 0u;
        even[r * 16 + j] = bits;
        odd[r * 16 + j] = bits << 16;
      }
  }
}

#if BLIP_X86_DISPATCH
// The same bits, 16 inputs per vector (every AMX CPU has AVX-512).
BLIP_TARGET_AVX512 inline void pack_rows_bf16_amx_tiles_avx512(const float* x, std::int64_t x_stride, std::int64_t rows,
                                                               std::int64_t depth, std::uint32_t* packed) {
  const std::int64_t groups = amx_groups(depth);
  for (std::int64_t group = 0; group < groups; ++group) {
    std::uint32_t* even = packed + group * kAmxGroupWords;
    std::uint32_t* odd = even + kAmxGroupWords / 2;
    const std::int64_t left = depth - group * kAmxGroupInputs;
    const __mmask16 valid = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    for (std::int64_t r = 0; r < rows; ++r) {
      const __m512i bits = bf16_bits_avx512(x + r * x_stride + group * kAmxGroupInputs, valid);
      _mm512_storeu_si512(even + r * 16, bits);
      _mm512_storeu_si512(odd + r * 16, _mm512_slli_epi32(bits, 16));
    }
  }
}
#endif

inline void pack_rows_bf16_amx(const float* x, std::int64_t x_stride, std::int64_t rows, std::int64_t depth,
                               std::uint32_t* packed) {
#if BLIP_X86_DISPATCH
  static const bool vector = kernel_path_supported(KernelPath::Avx512);
  if (vector) {
    pack_rows_bf16_amx_tiles_avx512(x, x_stride, rows, depth, packed);
    return;
  }
#endif
  pack_rows_bf16_amx_tiles(x, x_stride, rows, depth, packed);
}

// The tiles of a call over `rows` rows: C and A tiles of `rows` rows, B of 16, all rows 64 bytes.
inline AmxTileConfig amx_linear_tile_config(int rows) {
  AmxTileConfig config = uniform_amx_tile_config(5);
  for (int tile = 0; tile < 4; ++tile) config.rows[tile] = static_cast<std::uint8_t>(rows);
  return config;
}

// One tile (see the top of this file) with the instructions of `Tiles` (AmxHardwareTiles or AmxEmulatedTiles).
template <class Tiles>
BLIP_ALWAYS_INLINE void linear_micro_kernel_amx_bf16_body(const MicroTile& tile, int rows) {
  const AmxTileConfig config = amx_linear_tile_config(rows);
  Tiles::configure(config);
  alignas(64) float sums[2][kAmxTileRows][16];  // [even / odd features][row][feature / 2]
  const int columns = tile.columns;
  if (tile.resume) {
    std::memset(sums, 0, sizeof(sums));  // the features a partial panel lacks
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < columns; ++c) sums[c & 1][r][c >> 1] = tile.out[r * tile.out_stride + c];
    Tiles::template load<0>(sums[0], 64);
    Tiles::template load<1>(sums[1], 64);
  } else {
    Tiles::template zero<0>();
    Tiles::template zero<1>();
  }
  const std::uint32_t* words = reinterpret_cast<const std::uint32_t*>(tile.rows);
  const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
  constexpr std::int64_t kGroupPanelBytes = kAmxGroupInputs * kPanelWidth * 2;  // 16 rows of 32 bf16
  const std::int64_t full_groups = tile.depth / kAmxGroupInputs;
  const WeightPrefetch prefetch = tile.prefetch_weights;
  for (std::int64_t group = 0; group < full_groups; ++group) {
    const std::uint8_t* weights = panel + group * kGroupPanelBytes;
    if (prefetch != WeightPrefetch::None)  // decode: 8 KiB ahead, as the other kernels (linear_microkernel.hpp)
      for (std::int64_t line = 0; line < kGroupPanelBytes; line += 64)
        prefetch_streamed_weights(weights + line, prefetch);
    Tiles::template load<4>(weights, 64);
    Tiles::template load<2>(words + group * kAmxGroupWords, 64);
    Tiles::template load<3>(words + group * kAmxGroupWords + kAmxGroupWords / 2, 64);
    Tiles::template dot_bf16<0, 2, 4>();
    Tiles::template dot_bf16<1, 3, 4>();
  }
  if (const std::int64_t tail = tile.depth - full_groups * kAmxGroupInputs; tail > 0) {
    // The panel rows past the depth are another panel's, or past the end of the layer: the last group's B tile
    // comes from a copy with zeros there (the activations are zero there too, and 0 · a NaN would be a NaN).
    alignas(64) std::uint8_t last[kGroupPanelBytes] = {};
    std::memcpy(last, panel + full_groups * kGroupPanelBytes, static_cast<std::size_t>(tail * kPanelWidth * 2));
    Tiles::template load<4>(last, 64);
    Tiles::template load<2>(words + full_groups * kAmxGroupWords, 64);
    Tiles::template load<3>(words + full_groups * kAmxGroupWords + kAmxGroupWords / 2, 64);
    Tiles::template dot_bf16<0, 2, 4>();
    Tiles::template dot_bf16<1, 3, 4>();
  }
  Tiles::template store<0>(sums[0], 64);
  Tiles::template store<1>(sums[1], 64);
  const float* bias = tile.finish ? tile.bias : nullptr;
  for (int r = 0; r < rows; ++r) {
    float* out = tile.out + r * tile.out_stride;
    for (int c = 0; c < columns; ++c) out[c] = bias ? sums[c & 1][r][c >> 1] + bias[c] : sums[c & 1][r][c >> 1];
  }
}

// The kernel table of one backend (the interleaving store is plain C++: 512 floats a call, next to the tile work).
template <class Tiles>
struct AmxBf16Kernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_amx_bf16_body<Tiles>(tile, Rows);
  }
};

template <class Tiles>
MicroKernelSet linear_micro_kernels_amx_bf16_on(KernelPath path) {
  MicroKernelSet kernels{path, WeightPrecision::BF16, kAmxMaxRows,
                         micro_kernel_table<AmxBf16Kernel<Tiles>>(std::make_integer_sequence<int, kAmxMaxRows>{}),
                         RowPacking::BF16AmxTiles};
  kernels.packed_tile_rows = kAmxTileRows;
  return kernels;
}

#if BLIP_AMX_HARDWARE
// The amx path's kernels for bf16 weights × bf16 activations: every row count, decode included, so a row's
// result does not depend on how many rows come with it.
inline MicroKernelSet linear_micro_kernels_amx_bf16() {
  return linear_micro_kernels_amx_bf16_on<AmxHardwareTiles>(KernelPath::Amx);
}
#endif

// The same kernel on the scalar model of the tiles (amx_tiles.hpp), for the tests on any CPU; slow.
inline MicroKernelSet linear_micro_kernels_amx_bf16_emulated() {
  return linear_micro_kernels_amx_bf16_on<AmxEmulatedTiles>(KernelPath::Portable);
}

}  // namespace blip::kernels::detail
