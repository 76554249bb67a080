// blip/kernels/detail/linear_portable.hpp: the C++ Linear micro-kernel without
// intrinsics: the portable path, for whatever the translation unit targets (SSE2
// at least on x86-64, NEON on arm64). x86 CPUs run it only when forced
// (BLIP_KERNEL=portable): every x86-64 CPU blipcpp meets has AVX2, whose kernel
// is linear_avx2.hpp (until session 13 the avx2 path was this code compiled for
// AVX2).
//
// The accumulators are GCC/Clang vector-extension values (4 floats: one xmm /
// NEON register) rather than a float array: both compilers keep them in
// registers, whereas Clang leaves a local `float sums[r][c]` array in memory and
// runs 10x slower. Compilers without the extension get the same algorithm with
// plain arrays (linear_micro_kernel_plain, also tested here).
//
// With more than a few rows the 32-feature panel is processed as two
// 16-feature halves so that the accumulator tile (3 rows × 16 = 12 registers)
// fits the 16 vector registers with the weight vectors and the broadcast; the
// second half re-reads the packed rows and the panel from L1/L2.
//
// Weight precisions: the kernels are templates over the packed element type
// (weight_formats.hpp). A loader widens one vector's worth of weights to f32 in
// plain lane loops (bf16: zero-extend and shift; int8: sign-extend and convert;
// f16: the scalar conversion). Int8 sums are multiplied by the feature's scale
// when stored; int4 panels (two weights per byte) are read by load_int4 and
// multiplied by their 32-input block's scales as they are loaded.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define BLIP_HAVE_VECTOR_EXTENSIONS 1
#else
#define BLIP_HAVE_VECTOR_EXTENSIONS 0
#endif

namespace blip::kernels::detail {

// Row tiles: with SSE's 16 xmm registers 3 rows × 4 Float4 accumulators (16
// features) is the largest tile that does not spill.
inline constexpr int kPortableMaxRows = 3;
inline constexpr int kPortableHalfWidth = kPanelWidth / 2;

// to[0, count) = from[0, count), as bytes, for count <= Width (the row buffer's floats). A full row is copied
// with a constant size: GCC 12 compiled a run-time-sized memcpy of at most a pass into `rep movs`, a few dozen
// cycles per row of every tile (the same slowdown as softmax's exp had, vector_math.hpp). The size is the
// buffer's own, so no branch copies more than the buffer holds (a 32-float case on 16-float buffers made GCC
// warn -Warray-bounds at every inlined call, though the count never reached it).
template <int Width>
inline void copy_row_floats(float* to, const float* from, int count) {
  if (count == Width)
    std::memcpy(to, from, Width * sizeof(float));
  else
    std::memcpy(to, from, static_cast<std::size_t>(count) * sizeof(float));
}

// Writes one row of a tile: out = sums (· scale) (+ bias), or the raw sums when another depth block follows
// (!tile.finish: MicroTile::resume); `columns` (<= Width) of sums valid.
template <int Width>
inline void store_row(const MicroTile& tile, float (&sums)[Width], int first_column, int columns, float* out) {
  if (tile.finish && tile.scale != nullptr) {
    for (int c = 0; c < columns; ++c) sums[c] *= tile.scale[first_column + c];
  }
  if (!tile.finish) {  // copied as bytes: the raw sums of int8 quads are int32 bits
    copy_row_floats<Width>(out, sums, columns);
  } else if (tile.bias != nullptr) {
    for (int c = 0; c < columns; ++c) out[c] = sums[c] + tile.bias[first_column + c];
  } else {
    for (int c = 0; c < columns; ++c) out[c] = sums[c];
  }
}

// A resumed row's raw sums (MicroTile::resume): `columns` of the row from out (as bytes), the rest 0.
template <int Width>
inline void load_raw_row(float (&sums)[Width], int columns, const float* out) {
  copy_row_floats<Width>(sums, out, columns);
  for (int c = columns; c < Width; ++c) sums[c] = 0.0f;
}

// Weight `column` (0 .. 31) of one panel row as f32 (int8: q, the scale comes at the store; int4: q · the block's
// scale of that column, `block_scales`).
template <class Element>
inline float panel_weight(const std::uint8_t* row, int column, const float* block_scales) {
  if constexpr (std::is_same_v<Element, Int4Pair>)
    return static_cast<float>(int4_at(row, column)) * block_scales[column];
  else
    return widen(reinterpret_cast<const Element*>(row)[column], 1.0f);
}

// Int4 panels are read in blocks of 32 inputs (one scale per column and block); the other precisions in one block.
template <class Element>
inline std::int64_t input_block_size(const MicroTile& tile) {
  return std::is_same_v<Element, Int4Pair> ? kInt4BlockSize : std::max<std::int64_t>(tile.depth, 1);
}

// The same computation with plain float arrays (compilers without vector extensions).
template <int Rows, class Element = float>
void linear_micro_kernel_plain(const MicroTile& tile) {
  for (int first_column = 0; first_column < tile.columns; first_column += kPortableHalfWidth) {
    const int columns = std::min(tile.columns - first_column, kPortableHalfWidth);
    float sums[Rows][kPortableHalfWidth] = {};
    if (tile.resume) {
      for (int r = 0; r < Rows; ++r)
        load_raw_row(sums[r], columns, tile.out + r * tile.out_stride + first_column);
    }
    const float* rows = tile.rows;
    const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
    for (std::int64_t k = 0; k < tile.depth; ++k) {
      const float* block_scales =
          tile.block_scales != nullptr ? tile.block_scales + k / kInt4BlockSize * kPanelWidth : nullptr;
      for (int r = 0; r < Rows; ++r) {
        const float activation = rows[r];
        for (int c = 0; c < kPortableHalfWidth; ++c)
          sums[r][c] += activation * panel_weight<Element>(panel, first_column + c, block_scales);
      }
      rows += tile.row_stride;
      panel += kPanelRowBytes<Element>;
    }
    for (int r = 0; r < Rows; ++r)
      store_row(tile, sums[r], first_column, columns, tile.out + r * tile.out_stride + first_column);
  }
}

#if BLIP_HAVE_VECTOR_EXTENSIONS
// Four floats; the compiler maps them onto one vector register (xmm / NEON q).
typedef float Float4 __attribute__((vector_size(16)));

// One vector of weights widened to f32, in plain lane loops.
template <class Vector>
struct LaneLoader {
  static constexpr int kLanes = static_cast<int>(sizeof(Vector) / sizeof(float));
  static BLIP_ALWAYS_INLINE void load(const float* weights, Vector& vector) {
    std::memcpy(&vector, weights, sizeof vector);
  }
  static BLIP_ALWAYS_INLINE void load(const BFloat16* weights, Vector& vector) {
    std::uint32_t bits[kLanes];
    BLIP_UNROLL
    for (int i = 0; i < kLanes; ++i) bits[i] = static_cast<std::uint32_t>(weights[i].bits) << 16;
    std::memcpy(&vector, bits, sizeof vector);
  }
  static BLIP_ALWAYS_INLINE void load(const Float16* weights, Vector& vector) {
    BLIP_UNROLL
    for (int i = 0; i < kLanes; ++i) vector[i] = f16_to_f32(weights[i]);
  }
  static BLIP_ALWAYS_INLINE void load(const std::int8_t* weights, Vector& vector) {
    BLIP_UNROLL
    for (int i = 0; i < kLanes; ++i) vector[i] = static_cast<float>(weights[i]);
  }
  // Int4: columns [column, column + kLanes) of a panel row (never across column 16) times their block's scales.
  static BLIP_ALWAYS_INLINE void load_int4(const std::uint8_t* row, int column, const Vector& scale, Vector& vector) {
    BLIP_UNROLL
    for (int i = 0; i < kLanes; ++i) vector[i] = static_cast<float>(int4_at(row, column + i));
    vector *= scale;
  }
};

// The register tile is Rows × kWidth: the whole 32-feature panel when its
// accumulators fit in 12 vector registers (e.g. decode, 1 row: the panel is then
// read once), else half of it per pass.
template <int Rows, class Vector, class Element, class Loader>
BLIP_ALWAYS_INLINE void linear_micro_kernel_generic(const MicroTile& tile) {
  constexpr int kLanes = static_cast<int>(sizeof(Vector) / sizeof(float));
  constexpr int kWidth = Rows * (kPanelWidth / kLanes) <= 12 ? kPanelWidth : kPortableHalfWidth;
  constexpr int kVectors = kWidth / kLanes;  // per row of the tile
  for (int first_column = 0; first_column < tile.columns; first_column += kWidth) {
    const int columns = std::min(tile.columns - first_column, kWidth);
    Vector sums[Rows][kVectors];
    BLIP_UNROLL
    for (int r = 0; r < Rows; ++r) {
      if (tile.resume) {
        float values[kWidth];
        load_raw_row(values, columns, tile.out + r * tile.out_stride + first_column);
        std::memcpy(&sums[r][0], values, sizeof values);
      } else {
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) sums[r][v] = Vector{};
      }
    }
    const float* rows = tile.rows;
    const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
    const WeightPrefetch prefetch = tile.prefetch_weights;
    const bool stream = prefetch != WeightPrefetch::None;
    const std::int64_t block_size = input_block_size<Element>(tile);
    for (std::int64_t block_begin = 0; block_begin < tile.depth; block_begin += block_size) {
      // Int4: this block's scales of the tile's columns, one vector per weight vector.
      Vector block_scales[kVectors];
      if constexpr (std::is_same_v<Element, Int4Pair>) {
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) {
          std::memcpy(&block_scales[v], tile.block_scales + block_begin / kInt4BlockSize * kPanelWidth +
                                            first_column + v * kLanes, sizeof(Vector));
        }
      }
      const std::int64_t block_end = std::min(tile.depth, block_begin + block_size);
      for (std::int64_t k = block_begin; k < block_end; ++k) {
        if (stream) prefetch_panel_row<kPanelRowBytes<Element>>(panel, k, prefetch);
        Vector weights[kVectors];
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) {
          if constexpr (std::is_same_v<Element, Int4Pair>) {
            Loader::load_int4(panel, first_column + v * kLanes, block_scales[v], weights[v]);
          } else {
            Loader::load(reinterpret_cast<const Element*>(panel) + first_column + v * kLanes, weights[v]);
          }
        }
        BLIP_UNROLL
        for (int r = 0; r < Rows; ++r) {
          const float activation = rows[r];
          BLIP_UNROLL
          for (int v = 0; v < kVectors; ++v) sums[r][v] += activation * weights[v];
        }
        rows += tile.row_stride;
        panel += kPanelRowBytes<Element>;
      }
    }
    for (int r = 0; r < Rows; ++r) {
      float values[kWidth];
      std::memcpy(values, &sums[r][0], sizeof values);
      store_row(tile, values, first_column, columns, tile.out + r * tile.out_stride + first_column);
    }
  }
}

template <int Rows, class Element>
void linear_micro_kernel_portable(const MicroTile& tile) {
  linear_micro_kernel_generic<Rows, Float4, Element, LaneLoader<Float4>>(tile);
}
#else
template <int Rows, class Element>
void linear_micro_kernel_portable(const MicroTile& tile) {
  linear_micro_kernel_plain<Rows, Element>(tile);
}
#endif

template <class Element>
struct PortableKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_portable<Rows, Element>(tile);
  }
};

template <class Element>
MicroKernelSet linear_micro_kernels_portable_for() {
  return MicroKernelSet{KernelPath::Portable, kPrecisionOf<Element>, kPortableMaxRows,
                        micro_kernel_table<PortableKernel<Element>>(std::make_integer_sequence<int, kPortableMaxRows>{})};
}

inline MicroKernelSet linear_micro_kernels_portable(WeightPrecision precision = WeightPrecision::F32) {
  return with_packed_element(precision, [](auto element) {
    return linear_micro_kernels_portable_for<decltype(element)>();
  });
}

// The plain-array kernels as a set, so tests cover them on every compiler.
template <class Element>
struct PlainKernel {
  template <int Rows>
  static void run(const MicroTile& tile) {
    linear_micro_kernel_plain<Rows, Element>(tile);
  }
};

template <class Element>
MicroKernelSet linear_micro_kernels_plain_for() {
  return MicroKernelSet{KernelPath::Portable, kPrecisionOf<Element>, kPortableMaxRows,
                        micro_kernel_table<PlainKernel<Element>>(std::make_integer_sequence<int, kPortableMaxRows>{})};
}

inline MicroKernelSet linear_micro_kernels_plain(WeightPrecision precision = WeightPrecision::F32) {
  return with_packed_element(precision, [](auto element) {
    return linear_micro_kernels_plain_for<decltype(element)>();
  });
}

}  // namespace blip::kernels::detail
