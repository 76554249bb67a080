// blip/kernels/detail/linear_microkernel.hpp: the contract between the Linear
// driver (blocking, packing, threads; linear.hpp) and the per-ISA micro-kernels
// (linear_avx512.hpp, linear_avx2.hpp, linear_avx2_integer.hpp, linear_amx.hpp, linear_portable.hpp).
//
// A micro-kernel computes one register tile of the output: `Rows` rows (1 ..
// the set's max_rows) by one weight panel of kPanelWidth output features, over
// a contiguous range of the input features ("depth"):
//
//   out[r, c] (+)= Σ_k rows[k * row_stride + r] · panel[k * kPanelWidth + c]  (+ bias[c])
//
// `rows` is packed by the driver so that the Rows values of one k are adjacent
// (one broadcast each); `panel` is the weight as prepared at load, the
// kPanelWidth output features of one k adjacent (one or two vector loads), in
// the precision of the kernel set (f32, bf16, f16, int8 or int4 elements; the kernel
// widens them to f32). Int8 panels come with one scale per output feature,
// applied to the finished sums: out = sums · scale (+ bias).
//
// How the driver packs the activation rows is part of a kernel set (RowPacking):
// f32 values; f32 values rounded to bf16 (ActivationPrecision::BF16 on CPUs
// without a bf16 dot product); or bf16 pairs, one 32-bit word per row and pair of
// inputs (x[r, 2i] in the low half, x[r, 2i + 1] in the high half, zero past the
// depth), which is what vdpbf16ps multiplies: then `rows` advances by
// row_stride words per PAIR of k, and depth blocks start at even k.
// Int8 activations (ActivationPrecision::Int8, int8 weights) are quantized per
// row over the whole depth (q = round(x / s), s = max|x| / 127): on CPUs with
// AVX512-VNNI and on the avx2 path as int8 quads, one 32-bit word per row and four inputs, each byte
// q + 128 (vpdpbusd multiplies an unsigned byte by a signed one; the kernel
// subtracts 128 · Σ w), 128 past the depth; `rows` then advances by row_stride
// words per QUAD of k, depth blocks start at multiples of 4, and the row scales
// follow the quads (tile.row_scales). Elsewhere as the f32 values q · s.
// Int8 activations meeting int4 weights, on the same CPUs: int8 signed quads, each byte q itself (the weights
// are the unsigned operand there), then per row and 32-input block the block's -8 · Σ q (tile.row_block_offsets:
// int32, [blocks][row_stride]; it cancels the weights' + 8 offset), then the row scales.
//
// Bf16 activations meeting bf16 weights on the amx path: per 16 inputs, two 16-row tiles of 32-bit words with the
// bf16 in the low and in the high half (RowPacking::BF16AmxTiles; linear_amx.hpp), every tile laid out for 16 rows
// (MicroKernelSet::packed_tile_rows) and depth blocks starting at multiples of 16.
//
// Int4 panels come with one scale per output feature and 32-input block
// (tile.block_scales); the kernel multiplies each widened q by its block's
// scale as it loads it, so one call covers any depth that starts on a block.
//
// In decode (tile.prefetch_weights) the panel is read once, straight from memory;
// the kernels then ask for it kStreamPrefetchBytes ahead of the loads
// (prefetch_streamed_weights).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "blip/core/dtype.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

namespace blip::kernels::detail {

// Output features per packed weight panel: two AVX-512 vectors, four AVX2 ones.
// Part of the packed weight layout, so every path uses the same value.
inline constexpr int kPanelWidth = 32;

// Bytes of one k of a panel: kPanelWidth elements, or 16 bytes of int4 pairs.
template <class Element>
inline constexpr std::int64_t kPanelRowBytes =
    std::is_same_v<Element, Int4Pair> ? kPanelWidth / 2 : kPanelWidth * static_cast<std::int64_t>(sizeof(Element));

// Whether and where a decode kernel asks for its panel ahead of the loads (MicroTile::prefetch_weights; see
// kStreamPrefetchBytes below).
enum class WeightPrefetch : std::uint8_t {
  None,         // prefill: the panel is re-read from cache by many row tiles, the hardware prefetchers suffice
  NonTemporal,  // decode, few rows: prefetchnta, into L1, not kept
  ToL2,         // decode, several rows: prefetcht2, into L2 (the loads then find it there)
};

struct MicroTile {
  std::int64_t depth = 0;            // input features summed over in this call
  const float* rows = nullptr;       // packed activations: [depth][row_stride], first `Rows` used
  std::int64_t row_stride = 0;       // floats between consecutive k in `rows`
  const void* panel = nullptr;       // packed weights: [depth][kPanelWidth] elements of the set's precision
  float* out = nullptr;              // output tile, row r at out + r * out_stride
  std::int64_t out_stride = 0;
  int columns = kPanelWidth;         // valid output features in this panel (the last one may be partial)
  const float* bias = nullptr;       // [kPanelWidth] zero-padded, aligned; added unless accumulating; may be null
  const float* scale = nullptr;      // [kPanelWidth] per-feature scales (int8 panels), else null
  const float* row_scales = nullptr; // int8 quads: the quantization scale of each row of the tile, else null
  const float* block_scales = nullptr;  // int4: [blocks][kPanelWidth] scales of the blocks from the tile's first input
  const std::int32_t* row_block_offsets = nullptr;  // int8 signed quads: [blocks][row_stride] -8 · Σ q, else null
  // Int8 quads over the panel's whole depth: [kPanelWidth] Σ_k w[k, c] (LinearWeights::int8_weight_sums), which
  // the kernels' + 128 offset needs; null: the kernel sums the weights of its depth itself.
  const std::int32_t* weight_sums = nullptr;
  // Depth blocks (linear_many_rows): a tile's sums may run over several calls, one per block of inputs. Each
  // call but the last writes its raw sums to `out` (finish = false: no scale, no bias; int8 quads: the int32 sums
  // as their bits), and the next one starts from them (resume) instead of from zero. So every output is the same
  // chain of operations as in one call over the whole depth, bit for bit: a row's result does not depend on
  // whether the driver blocked the depth, i.e. on how many rows came with it.
  bool resume = false;               // start from the raw sums in out (the previous block's), not from zero
  bool finish = true;                // write out = sums (· scales) (+ bias); false: the raw sums, for a resume
  WeightPrefetch prefetch_weights = WeightPrefetch::None;  // decode: the panel comes from memory, read once
};

// How far ahead of its loads a decode kernel asks for the weights (8 KiB: a few µs of streaming at one core's
// share of the bandwidth). With several rows per tile a decode step does enough arithmetic per weight byte that
// the hardware prefetchers alone fall behind: on Zen 5, 8 and 12 rows of every precision ran 11 to 22% faster
// with it (bench/linear_bench, beams8 and beams12 rows; docs/kernels.md).
// Where to (the driver's choice, linear_streamed_panels, per CPU: prefetch_to_l2_min_rows in linear.hpp): with one
// to three rows a step is a race to stream the weights, and prefetchnta, straight to L1, was the fastest (f32 and
// bf16 3-17% slower with prefetcht2 on Zen 4). From four rows on prefetcht2 (into L2 only; the loads then pull each
// line to L1) was never measurably slower on Zen 4 and up to 1.36x faster (every format on the AVX-512 path, f32
// and bf16 on AVX2), but 4-16% slower on Zen 5 (int8 and bf16): docs/kernels.md, "Decode prefetch into L2".
inline constexpr std::int64_t kStreamPrefetchBytes = 8192;

// Asks for the 64-byte line at `address` (never faults, so it may lie past the end of the weights).
BLIP_ALWAYS_INLINE void prefetch_line(const void* address, WeightPrefetch where) {
#if defined(__GNUC__) || defined(__clang__)
  if (where == WeightPrefetch::ToL2)
    __builtin_prefetch(address, 0, 1);  // locality 1: prefetcht2
  else
    __builtin_prefetch(address, 0, 0);  // locality 0: prefetchnta
#else
  (void)address;
  (void)where;
#endif
}

BLIP_ALWAYS_INLINE void prefetch_streamed_weights(const void* weights, WeightPrefetch where) {
  prefetch_line(static_cast<const char*>(weights) + kStreamPrefetchBytes, where);
}

// Int4 panels stream a second, smaller array beside their nibbles: each 32-input block's kPanelWidth scales (128
// bytes after every 512 bytes of nibbles; LinearWeights::int4_block_scales). A decode kernel asks for them as far
// ahead in time as for the nibbles (kStreamPrefetchBytes of nibbles: 16 blocks), both lines of a block's scales
// once per block. Before, the hardware prefetchers alone fetched the scales, from 4 KiB pages; with this and the
// scales on huge pages (LinearWeights::allocate_scales), int4 x int8 decode on Zen 5 ran 1.09x / 1.25x / 1.16x
// faster at 1 / 8 / 12 rows (medians of 6 paired runs), the avx2 path's 1.11-1.20x (docs/kernels.md, session 26).
inline constexpr std::int64_t kInt4StreamPrefetchBlocks =
    kStreamPrefetchBytes / (kInt4BlockSize * kPanelWidth / 2);

BLIP_ALWAYS_INLINE void prefetch_streamed_block_scales(const float* block_scales, WeightPrefetch where) {
  static_assert(kPanelWidth * sizeof(float) == 128, "a block's scales are two 64-byte lines");
  const float* ahead = block_scales + kInt4StreamPrefetchBlocks * kPanelWidth;
  prefetch_line(ahead, where);
  prefetch_line(ahead + 16, where);
}

// Decode: prefetches the panel row of input k (RowBytes long), one request per 64-byte line (rows shorter than a
// line: at every k that starts one), to `where` (not None: the kernels skip the call then).
template <std::int64_t RowBytes>
BLIP_ALWAYS_INLINE void prefetch_panel_row(const void* row, std::int64_t k, WeightPrefetch where) {
  if constexpr (RowBytes >= 64) {
    for (std::int64_t line = 0; line < RowBytes; line += 64)
      prefetch_streamed_weights(static_cast<const char*>(row) + line, where);
  } else {
    if (k % (64 / RowBytes) == 0) prefetch_streamed_weights(row, where);
  }
}

// Where an int8 x int8 kernel takes the weight sums its + 128 offset needs (MicroTile::weight_sums): summed as the
// panel goes by (a depth block), or given, packed at load (a tile over the panel's whole depth: every decode tile).
enum class WeightSums { Summed, Given };

using MicroKernel = void (*)(const MicroTile& tile);

// The most inputs one call over int8 quads may sum; the driver splits longer depths into calls of this many (a
// multiple of 4). The int32 sums wrap (vpdpbusd does not saturate) and the + 128 offset is subtracted modulo
// 2^32, so what must fit is the true Σ q · w: |q · w| ≤ 127 · 128 gives 132,000 inputs; this leaves a margin.
inline constexpr std::int64_t kInt8QuadMaxDepth = 32768;

enum class RowPacking { F32, F32RoundedToBF16, BF16Pairs, F32RoundedToInt8, Int8Quads, Int8SignedQuads, BF16AmxTiles };

// How an int4 x int8 kernel (AVX-512 and avx2 paths) walks a tile's depth: in quads of 4 inputs (one 64-byte
// read of four 16-byte int4 panel rows), 8 quads to a 32-input block. A depth that ends inside a quad (1 to 3 k)
// has its last block read from a zero-padded copy of its own panel rows (the rows after them may be another
// panel's, or past the end): the missing rows meet activations that are 0.
struct Int4DepthBlocks {
  static constexpr std::int64_t kQuadBytes = 4 * kPanelWidth / 2;
  static constexpr std::int64_t kQuadsPerBlock = kInt4BlockSize / 4;
  std::int64_t quad_count = 0;        // quads of the depth, the last one possibly partial
  std::int64_t full_block_quads = 0;  // quads in whole blocks read from the panel itself
  bool padded = false;                // the last block is read from last_block
  alignas(64) std::uint8_t last_block[kQuadsPerBlock * kQuadBytes];

  Int4DepthBlocks(const std::uint8_t* panel, std::int64_t depth) {
    quad_count = (depth + 3) / 4;
    const std::int64_t last_block_quad = (quad_count - 1) / kQuadsPerBlock * kQuadsPerBlock;
    padded = depth % 4 != 0;
    full_block_quads = padded ? last_block_quad : quad_count / kQuadsPerBlock * kQuadsPerBlock;
    if (padded) {
      const std::size_t bytes = static_cast<std::size_t>((depth - 4 * last_block_quad) * kPanelWidth / 2);
      std::memcpy(last_block, panel + last_block_quad * kQuadBytes, bytes);
      std::memset(last_block + bytes, 0, sizeof(last_block) - bytes);
    }
  }
};

// Builds the by-rows table of a kernel template: Kernel::run<Rows> for Rows = 1 .. sizeof...(RowIndices).
template <class Kernel, int... RowIndices>
const MicroKernel* micro_kernel_table(std::integer_sequence<int, RowIndices...>) {
  static const MicroKernel table[] = {&Kernel::template run<RowIndices + 1>...};
  return table;
}


// The micro-kernels of one ISA path, indexed by row count - 1.
struct MicroKernelSet {
  KernelPath path = KernelPath::Portable;
  WeightPrecision precision = WeightPrecision::F32;  // the panels' element type
  int max_rows = 1;
  const MicroKernel* by_rows = nullptr;
  RowPacking row_packing = RowPacking::F32;
  // Rows per tile when many rows share each panel (the depth-blocked driver); 0: max_rows. Smaller where the
  // largest tile streams a panel best but a smaller one does more per row from cache (int4 × int8).
  int prefill_rows = 0;
  int rows_per_prefill_tile() const { return prefill_rows > 0 ? prefill_rows : max_rows; }
  // Rows every packed tile is laid out for, whatever its row count; 0: as many as the tile has. (AMX tiles: 16,
  // a tile register's rows.)
  int packed_tile_rows = 0;
  std::int64_t rows_per_packed_tile(std::int64_t tile_rows) const {
    return packed_tile_rows > 0 ? packed_tile_rows : tile_rows;
  }
  // Decode with more rows than max_rows (linear_streamed_panels): false fills tiles of max_rows and leaves the rest
  // to the last one (4 rows in tiles of 3: 3 + 1); true splits the rows into as many tiles, of sizes at most one
  // apart (2 + 2). Which is faster depends on how a set's tiles scale with their rows, and streamed the first tile
  // is the one whose arithmetic overlaps the memory reads, so each set says (docs/kernels.md, "Zen 5, 2026-12-05
  // (session 24)").
  bool balanced_decode_tiles = false;
};

// The row tiles of a decode call (linear_streamed_panels): `count` tiles, tile t holding rows
// [first_row(t), first_row(t) + rows_of(t)), none of more than `largest` rows.
struct DecodeTiles {
  std::int64_t count = 1, largest = 1;
  std::int64_t base = 1, larger = 0;  // balanced: the first `larger` tiles hold base + 1 rows, the others base
  bool balanced = false;
  std::int64_t rows = 1;

  DecodeTiles(const MicroKernelSet& kernels, std::int64_t row_count) : rows(row_count) {
    largest = std::min<std::int64_t>(rows, kernels.max_rows);
    count = (rows + largest - 1) / largest;
    balanced = kernels.balanced_decode_tiles && count > 1;
    if (balanced) {
      base = rows / count;
      larger = rows % count;
      largest = base + (larger > 0 ? 1 : 0);
    }
  }
  std::int64_t first_row(std::int64_t tile) const {
    return balanced ? tile * base + std::min(tile, larger) : tile * largest;
  }
  std::int64_t rows_of(std::int64_t tile) const {
    return balanced ? base + (tile < larger ? 1 : 0) : std::min(largest, rows - first_row(tile));
  }
};

}  // namespace blip::kernels::detail
