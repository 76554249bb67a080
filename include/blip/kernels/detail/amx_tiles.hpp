// blip/kernels/detail/amx_tiles.hpp: Intel AMX (Advanced Matrix Extensions) tiles, the few instructions the
// AMX kernels use, in two interchangeable backends:
//   * AmxHardwareTiles: the instructions themselves (ldtilecfg, tileloadd, tilestored, tilezero, tdpbf16ps),
//     on CPUs with AMX-TILE and AMX-BF16 (Sapphire Rapids and later Xeons) once the OS has granted this
//     process the tile state (amx_bf16_supported());
//   * AmxEmulatedTiles: the naive reference, a scalar model of the same instructions after Intel's pseudocode
//     (Intel SDM, "TDPBF16PS"), so the kernels' logic (tile shapes, packing, tails, depth blocks) is tested on
//     every CPU, and a CPU with AMX checks the hardware against it.
//
// What a tile is: one of 8 registers tmm0..tmm7 of up to 16 rows × 64 bytes, each given its shape (rows, bytes
// per row) by a 64-byte configuration loaded with ldtilecfg (palette 1). Loads and stores take a base address
// and a stride in bytes between rows. TDPBF16PS C, A, B (C: rows × 16 f32; A: rows × 16 pairs of bf16; B: 16
// rows × 16 pairs of bf16) does, for every row m of C and column n:
//     C[m][n] += A[m][2k] · B[k][2n] + A[m][2k + 1] · B[k][2n + 1]     for k = 0 .. 15, in that order,
// products exact in f32, each sum rounded to nearest even, bf16 denormal inputs read as zero and denormal
// results flushed to zero (MXCSR is not consulted).
//
// Whether the CPU and OS allow the tiles: amx_bf16_supported() (cpu_dispatch.hpp), which also asks Linux for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "blip/kernels/detail/cpu_dispatch.hpp"  // BLIP_AMX_HARDWARE, amx_bf16_supported

namespace blip::kernels::detail {

// Every tile the kernels use has the same shape: 16 rows of 64 bytes (16 f32, 16 bf16 pairs).
inline constexpr int kAmxTileRows = 16;
inline constexpr int kAmxTileRowBytes = 64;

// ldtilecfg's operand (palette 1): byte 0 the palette, bytes 16..47 the bytes per row of tiles 0..15 (16-bit),
// bytes 48..63 the rows of tiles 0..15; the rest zero.
struct alignas(64) AmxTileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};
static_assert(sizeof(AmxTileConfig) == 64, "ldtilecfg reads exactly 64 bytes");

// The kernels' configuration: the first `tiles` tiles all 16 × 64 bytes.
inline AmxTileConfig uniform_amx_tile_config(int tiles) {
  AmxTileConfig config;
  for (int tile = 0; tile < tiles; ++tile) {
    config.bytes_per_row[tile] = kAmxTileRowBytes;
    config.rows[tile] = kAmxTileRows;
  }
  return config;
}

#if BLIP_AMX_HARDWARE
// The instructions, in inline assembly (GCC's own AMX intrinsics are asm without a memory operand, so the
// compiler may move stores to a buffer past the tileloadd that reads it; these say they touch memory).
// Tile numbers are part of the encoding, hence template arguments.
struct AmxHardwareTiles {
  static void configure(const AmxTileConfig& config) { __asm__ volatile("ldtilecfg %0" ::"m"(config) : "memory"); }
  template <int Tile>
  static void load(const void* base, std::size_t stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride), "i"(Tile) : "memory");
  }
  template <int Tile>
  static void store(void* base, std::size_t stride) {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(base), "r"(stride), "i"(Tile) : "memory");
  }
  template <int Tile>
  static void zero() {
    __asm__ volatile("tilezero %%tmm%c0" ::"i"(Tile));
  }
  // C += A · B (TDPBF16PS; AT&T operand order: B, A, C).
  template <int C, int A, int B>
  static void dot_bf16() {
    __asm__ volatile("tdpbf16ps %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
  }
};
#endif

// The scalar model (see the top of this file): each thread has its own 8 tiles and configuration.
struct AmxEmulatedTiles {
  struct State {
    std::uint8_t data[8][kAmxTileRows * kAmxTileRowBytes] = {};
    AmxTileConfig config;
  };
  static State& state() {
    thread_local State tiles;
    return tiles;
  }
  static void configure(const AmxTileConfig& config) {
    State& tiles = state();
    tiles.config = config;
    std::memset(tiles.data, 0, sizeof(tiles.data));  // ldtilecfg zeroes the tiles
  }
  template <int Tile>
  static void load(const void* base, std::size_t stride) {
    State& tiles = state();
    const int rows = tiles.config.rows[Tile], bytes = tiles.config.bytes_per_row[Tile];
    std::memset(tiles.data[Tile], 0, sizeof(tiles.data[Tile]));
    for (int r = 0; r < rows; ++r)
      std::memcpy(tiles.data[Tile] + r * kAmxTileRowBytes, static_cast<const std::uint8_t*>(base) + r * stride,
                  static_cast<std::size_t>(bytes));
  }
  template <int Tile>
  static void store(void* base, std::size_t stride) {
    State& tiles = state();
    const int rows = tiles.config.rows[Tile], bytes = tiles.config.bytes_per_row[Tile];
    for (int r = 0; r < rows; ++r)
      std::memcpy(static_cast<std::uint8_t*>(base) + r * stride, tiles.data[Tile] + r * kAmxTileRowBytes,
                  static_cast<std::size_t>(bytes));
  }
  template <int Tile>
  static void zero() {
    std::memset(state().data[Tile], 0, sizeof(state().data[Tile]));
  }
  // A bf16 as TDPBF16PS reads it: denormals as zero of the same sign.
  static float bf16_input(std::uint16_t bits) {
    if ((bits & 0x7f80u) == 0) bits &= 0x8000u;
    const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &wide, sizeof(value));
    return value;
  }
  // A sum as TDPBF16PS writes it: denormals flushed to zero of the same sign.
  static float flush_denormal(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    if ((bits & 0x7f800000u) == 0) bits &= 0x80000000u;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  }
  template <int C, int A, int B>
  static void dot_bf16() {
    State& tiles = state();
    const int rows = tiles.config.rows[C], columns = tiles.config.bytes_per_row[C] / 4;
    const int pairs = tiles.config.bytes_per_row[A] / 4;
    std::uint16_t b[kAmxTileRows][2 * kAmxTileRows];
    std::memcpy(b, tiles.data[B], sizeof(b));
    for (int m = 0; m < rows; ++m) {
      float sums[kAmxTileRows];
      std::uint16_t a[2 * kAmxTileRows];
      std::memcpy(sums, tiles.data[C] + m * kAmxTileRowBytes, sizeof(sums));
      std::memcpy(a, tiles.data[A] + m * kAmxTileRowBytes, sizeof(a));
      for (int k = 0; k < pairs; ++k)
        for (int n = 0; n < columns; ++n) {
          sums[n] = flush_denormal(sums[n] + bf16_input(a[2 * k]) * bf16_input(b[k][2 * n]));
          sums[n] = flush_denormal(sums[n] + bf16_input(a[2 * k + 1]) * bf16_input(b[k][2 * n + 1]));
        }
      std::memcpy(tiles.data[C] + m * kAmxTileRowBytes, sums, sizeof(sums));
    }
  }
};

}  // namespace blip::kernels::detail
