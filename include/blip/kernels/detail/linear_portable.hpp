// blip/kernels/detail/linear_portable.hpp: the C++ Linear micro-kernel without
// intrinsics, compiled twice: as is (the portable path, for whatever the
// translation unit targets: SSE2 at least on x86-64, NEON on arm64) and inlined
// into an AVX2+FMA target function (the AVX2 path), so an AVX2-only CPU gets
// 256-bit FMAs from a binary built without -march flags.
//
// The accumulators are GCC/Clang vector-extension values (4 floats on the
// portable path: one xmm / NEON register; 8 on the AVX2 path: one ymm) rather
// than a float array: both compilers keep
// them in registers, whereas Clang leaves a local `float sums[r][c]` array in
// memory and runs 10x slower. Compilers without the extension get the same
// algorithm with plain arrays (linear_micro_kernel_plain, also tested here).
//
// With more than a few rows the 32-feature panel is processed as two
// 16-feature halves so that the accumulator tile (up to 6 rows × 16 = 12 ymm
// with AVX2) fits the 16 vector registers with the weight vectors and the
// broadcast; the second half re-reads the packed rows and the panel from L1/L2.
//
// Weight precisions: the kernels are templates over the packed element type
// (weight_formats.hpp). A loader widens one vector's worth of weights to f32:
// plain lane loops the compiler vectorises (bf16: zero-extend and shift; int8:
// sign-extend and convert), and on the AVX2 path F16C's vcvtph2ps for f16
// (every AVX2 CPU has F16C). Int8 sums are multiplied by the feature's scale
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
// features) is the largest tile that does not spill; AVX2 fits 6 rows × 2 Float8.
inline constexpr int kPortableMaxRows = 3;
inline constexpr int kAvx2MaxRows = 6;
inline constexpr int kPortableHalfWidth = kPanelWidth / 2;

// Writes one row of a tile: out = sums (· scale) (+ bias), or out += sums (· scale).
inline void store_row(const MicroTile& tile, float* sums, int first_column, int columns, float* out) {
  if (tile.scale != nullptr) {
    for (int c = 0; c < columns; ++c) sums[c] *= tile.scale[first_column + c];
  }
  if (tile.accumulate) {
    for (int c = 0; c < columns; ++c) out[c] += sums[c];
  } else if (tile.bias != nullptr) {
    for (int c = 0; c < columns; ++c) out[c] = sums[c] + tile.bias[first_column + c];
  } else {
    for (int c = 0; c < columns; ++c) out[c] = sums[c];
  }
}

// Bytes of one k of a panel: kPanelWidth elements, or 16 bytes of int4 pairs.
template <class Element>
inline constexpr std::int64_t kPanelRowBytes =
    std::is_same_v<Element, Int4Pair> ? kPanelWidth / 2 : kPanelWidth * static_cast<std::int64_t>(sizeof(Element));

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
// Four and eight floats; the compiler maps them onto the target's vector
// registers (Float4: one xmm / NEON q register; Float8: one ymm).
typedef float Float4 __attribute__((vector_size(16)));
typedef float Float8 __attribute__((vector_size(32)));

// One vector of weights widened to f32, in plain lane loops.
template <class Vector>
struct LaneLoader {
  static constexpr int kLanes = static_cast<int>(sizeof(Vector) / sizeof(float));
  // (Out-parameters rather than returned vectors: a function without the AVX target returning a ymm value
  // would change the calling convention, -Wpsabi.)
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
  // Int4: columns [column, column + kLanes) of a panel row (never across column 16) times their block's scales:
  // q · scale (`offset`, -8 · scale, is for the FMA form of the AVX2 loader).
  static BLIP_ALWAYS_INLINE void load_int4(const std::uint8_t* row, int column, const Vector& scale, const Vector&,
                                           Vector& vector) {
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
      BLIP_UNROLL
      for (int v = 0; v < kVectors; ++v) sums[r][v] = Vector{};
    }
    const float* rows = tile.rows;
    const std::uint8_t* panel = static_cast<const std::uint8_t*>(tile.panel);
    const bool stream = tile.stream_weights;
    const std::int64_t block_size = input_block_size<Element>(tile);
    for (std::int64_t block_begin = 0; block_begin < tile.depth; block_begin += block_size) {
      // Int4: this block's scales of the tile's columns (and -8 times them), one vector per weight vector.
      Vector block_scales[kVectors], block_offsets[kVectors];
      if constexpr (std::is_same_v<Element, Int4Pair>) {
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) {
          std::memcpy(&block_scales[v], tile.block_scales + block_begin / kInt4BlockSize * kPanelWidth +
                                            first_column + v * kLanes, sizeof(Vector));
          block_offsets[v] = block_scales[v] * -static_cast<float>(kInt4Offset);
        }
      }
      const std::int64_t block_end = std::min(tile.depth, block_begin + block_size);
      for (std::int64_t k = block_begin; k < block_end; ++k) {
        if (stream) prefetch_panel_row<kPanelRowBytes<Element>>(panel, k);
        Vector weights[kVectors];
        BLIP_UNROLL
        for (int v = 0; v < kVectors; ++v) {
          if constexpr (std::is_same_v<Element, Int4Pair>) {
            Loader::load_int4(panel, first_column + v * kLanes, block_scales[v], block_offsets[v], weights[v]);
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

#if BLIP_X86_DISPATCH
// The AVX2 loader: f32 as LaneLoader<Float8>; the narrow types with explicit widening instructions (GCC does
// not vectorise the int8 lane loop: 4x slower), F16C for f16 (every AVX2 CPU has F16C).
struct Avx2Loader : LaneLoader<Float8> {
  using LaneLoader<Float8>::load;
  static BLIP_TARGET_AVX2 inline void load(const BFloat16* weights, Float8& vector) {
    const __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights)));
    const __m256 value = _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16));
    std::memcpy(&vector, &value, sizeof vector);
  }
  static BLIP_TARGET_AVX2 inline void load(const Float16* weights, Float8& vector) {
    const __m256 widened = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(weights)));
    std::memcpy(&vector, &widened, sizeof vector);
  }
  static BLIP_TARGET_AVX2 inline void load(const std::int8_t* weights, Float8& vector) {
    const __m256i widened = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(weights)));
    const __m256 value = _mm256_cvtepi32_ps(widened);
    std::memcpy(&vector, &value, sizeof vector);
  }
  // Int4: 8 bytes zero-extended; the low nibbles are columns < 16, the high ones the rest. The stored q + 8 times
  // the scale plus -8 · scale in one FMA: (q + 8) · scale - 8 · scale, rounded once, is q · scale.
  static BLIP_TARGET_AVX2 inline void load_int4(const std::uint8_t* row, int column, const Float8& scale,
                                                const Float8& offset, Float8& vector) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + column % 16)));
    const __m256i nibbles = column < 16 ? _mm256_and_si256(bytes, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(bytes, 4);
    __m256 scale_vector, offset_vector;
    std::memcpy(&scale_vector, &scale, sizeof scale_vector);
    std::memcpy(&offset_vector, &offset, sizeof offset_vector);
    const __m256 value = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nibbles), scale_vector, offset_vector);
    std::memcpy(&vector, &value, sizeof vector);
  }
};

template <int Rows, class Element>
BLIP_TARGET_AVX2 void linear_micro_kernel_avx2(const MicroTile& tile) {
  linear_micro_kernel_generic<Rows, Float8, Element, Avx2Loader>(tile);
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
#endif

}  // namespace blip::kernels::detail
