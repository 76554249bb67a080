// blip/kernels/detail/weight_formats.hpp: how one packed Linear weight is
// stored in each precision, in scalar code (packing at load, the naive
// reference, tests). The micro-kernels read the same bits with vector loads.
//
//   F32   float
//   BF16  blip::BFloat16: the upper 16 bits of the f32 (widened by a shift)
//   F16   blip::Float16: IEEE binary16 (widened by vcvtph2ps / F16C)
//   Int8  std::int8_t q with one f32 scale per output feature: w ≈ q · scale
//
// Int8 and int4 quantization (which scale, which q) is core/quantization.hpp's;
// what this file adds is where the q and scales sit in a packed panel:
//   Int8: q in the panel like any element, scales [panel_count · 32] per output feature.
//   Int4: two weights per byte, as q + 8 (0 .. 15): in a panel's row of one k (16 bytes),
//         byte j holds column j in its low nibble and column j + 16 in its high one, so
//         one 16-byte load widens to the panel's two halves with a mask and a shift.
//         The scales are f32, [panel][block][32 columns]; a block past in_features is
//         zero-padded. The kernels widen each q to q · scale with its block's scale as they
//         load it (MicroTile::block_scales), then sum x · w as for the other precisions.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/core/quantization.hpp"
#include "blip/core/stored_matrix.hpp"

namespace blip::kernels::detail {

// The C++ type of one packed weight in `precision` (never AsStored).
template <WeightPrecision Precision> struct PackedElement;
template <> struct PackedElement<WeightPrecision::F32> { using type = float; };
template <> struct PackedElement<WeightPrecision::BF16> { using type = BFloat16; };
template <> struct PackedElement<WeightPrecision::F16> { using type = Float16; };
template <> struct PackedElement<WeightPrecision::Int8> { using type = std::int8_t; };
// Int4: one byte holding two columns' weights (see above); never indexed per column.
struct Int4Pair {
  std::uint8_t bits = 0x88;  // two zeros
};
template <> struct PackedElement<WeightPrecision::Int4> { using type = Int4Pair; };

using quantization::kInt4BlockSize;
using quantization::kInt4Offset;

// The precision whose packed element is `Element`.
template <class Element> inline constexpr WeightPrecision kPrecisionOf = WeightPrecision::F32;
template <> inline constexpr WeightPrecision kPrecisionOf<BFloat16> = WeightPrecision::BF16;
template <> inline constexpr WeightPrecision kPrecisionOf<Float16> = WeightPrecision::F16;
template <> inline constexpr WeightPrecision kPrecisionOf<std::int8_t> = WeightPrecision::Int8;
template <> inline constexpr WeightPrecision kPrecisionOf<Int4Pair> = WeightPrecision::Int4;

// Calls `action(Element{})` with the packed element type of `precision` (AsStored: f32): the one place that
// turns the run-time precision into the type the kernels and the packing are instantiated for.
template <class Action>
decltype(auto) with_packed_element(WeightPrecision precision, Action&& action) {
  switch (precision) {
    case WeightPrecision::BF16: return action(BFloat16{});
    case WeightPrecision::F16: return action(Float16{});
    case WeightPrecision::Int8: return action(std::int8_t{});
    case WeightPrecision::Int4: return action(Int4Pair{});
    default: return action(float{});
  }
}

// Bits per packed weight (scales not counted).
inline int packed_weight_bits(WeightPrecision precision) {
  switch (precision) {
    case WeightPrecision::F32: return 32;
    case WeightPrecision::BF16:
    case WeightPrecision::F16: return 16;
    case WeightPrecision::Int8: return 8;
    case WeightPrecision::Int4: return 4;
    case WeightPrecision::AsStored: break;
  }
  fail("packed_weight_bits: precision '", weight_precision_name(precision), "' is not a packed format");
}

// One stored weight as f32 (scale: the feature's int8 scale, ignored otherwise).
inline float widen(float value, float) { return value; }
inline float widen(BFloat16 value, float) { return bf16_to_f32(value); }
inline float widen(Float16 value, float) { return f16_to_f32(value); }
inline float widen(std::int8_t value, float scale) { return static_cast<float>(value) * scale; }

// One f32 weight in a packed element type (round to nearest even; int8 as above).
inline void narrow(float value, float, float& out) { out = value; }
inline void narrow(float value, float, BFloat16& out) { out = f32_to_bf16(value); }
inline void narrow(float value, float, Float16& out) { out = f32_to_f16(value); }
inline void narrow(float value, float scale, std::int8_t& out) { out = quantization::int8_quantize(value, scale); }

// Int4: the q of column `column` (0 .. 31) in a panel row of 16 bytes.
inline int int4_at(const std::uint8_t* row, int column) {
  const std::uint8_t byte = row[column % 16];
  return static_cast<int>(column < 16 ? byte & 0x0f : byte >> 4) - kInt4Offset;
}

using ::blip::StoredMatrix;

}  // namespace blip::kernels::detail
