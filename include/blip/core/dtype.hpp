// blip/core/dtype.hpp: element types and exact f16 / bf16 <-> f32 conversion.
//
// Checkpoints arrive in f32, f16 or bf16. The conversions here are bit-exact
// with IEEE 754 / PyTorch: round to nearest, ties to even; f16 subnormals are
// produced and read correctly; Inf stays Inf; NaN stays NaN (made quiet, sign
// kept). They are plain integer code so they behave the same on every CPU.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "blip/core/error.hpp"

namespace blip {

// IEEE 754 binary16, stored as its bit pattern.
struct Float16 {
  std::uint16_t bits = 0;
};
// bfloat16 (the upper half of an f32), stored as its bit pattern.
struct BFloat16 {
  std::uint16_t bits = 0;
};

enum class DType : std::uint8_t { F32, F16, BF16, I8, U8, I32, I64 };

inline constexpr std::size_t dtype_size(DType type) {
  switch (type) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

// The spelling used by the safetensors header ("F32", "BF16", ...).
inline constexpr const char* dtype_name(DType type) {
  switch (type) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

// Parses a safetensors dtype name; returns false for names this library does
// not support (F64, BOOL, F8_*, ...), so the caller can report the tensor.
inline bool parse_dtype(std::string_view name, DType& out) {
  static constexpr DType all[] = {DType::F32, DType::F16, DType::BF16, DType::I8,
                                  DType::U8,  DType::I32, DType::I64};
  for (DType type : all) {
    if (name == dtype_name(type)) {
      out = type;
      return true;
    }
  }
  return false;
}

// Maps a C++ element type to its DType (const is ignored).
template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<Float16> { static constexpr DType value = DType::F16; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::BF16; };
template <> struct DTypeOf<std::int8_t> { static constexpr DType value = DType::I8; };
template <> struct DTypeOf<std::uint8_t> { static constexpr DType value = DType::U8; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<std::int64_t> { static constexpr DType value = DType::I64; };
template <class T> struct DTypeOf<const T> : DTypeOf<T> {};
template <class T> inline constexpr DType dtype_of = DTypeOf<T>::value;

inline std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
inline float bits_to_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// ---- bfloat16 -------------------------------------------------------------

inline float bf16_to_f32(BFloat16 value) {
  return bits_to_float(static_cast<std::uint32_t>(value.bits) << 16);
}

// Round to nearest even, as torch's `tensor.to(torch.bfloat16)`. NaN keeps its
// sign and becomes quiet (a truncated NaN payload could otherwise become Inf).
inline BFloat16 f32_to_bf16(float value) {
  std::uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return BFloat16{static_cast<std::uint16_t>((bits >> 16) | 0x0040u)};
  }
  const std::uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7fffu + lsb;
  return BFloat16{static_cast<std::uint16_t>(bits >> 16)};
}

// destination[i] = bf16_to_f32(f32_to_bf16(source[i])) for i < count (may be in place), the same bits, written
// without branches or calls so that the compiler vectorizes it: rounding whole blocks of activations costs a few
// cycles per vector, not per value.
inline void round_to_bf16(const float* source, float* destination, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, source + i, sizeof bits);
    const std::uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
    const std::uint32_t quiet_nan = (bits | 0x00400000u) & 0xffff0000u;
    const std::uint32_t result = (bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
    std::memcpy(destination + i, &result, sizeof result);
  }
}

// ---- float16 (IEEE binary16) ----------------------------------------------

inline float f16_to_f32(Float16 value) {
  const std::uint32_t sign = static_cast<std::uint32_t>(value.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (value.bits >> 10) & 0x1fu;
  std::uint32_t mantissa = value.bits & 0x3ffu;
  if (exponent == 0x1f) {  // Inf or NaN: keep the payload, quiet NaNs stay NaN.
    return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return bits_to_float(sign);  // signed zero
    // Subnormal: value = mantissa * 2^-24, exact in f32.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3ffu;
    const std::uint32_t f32_exponent = static_cast<std::uint32_t>(127 - 15 + 1 - shift);
    return bits_to_float(sign | (f32_exponent << 23) | (mantissa << 13));
  }
  return bits_to_float(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

// Round to nearest even, overflow to Inf, gradual underflow to f16 subnormals.
inline Float16 f32_to_f16(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {  // NaN: quiet, keep the top payload bits.
    return Float16{static_cast<std::uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu))};
  }
  if (magnitude >= 0x477ff000u) {  // >= 65520 rounds to Inf (65504 is the largest f16).
    return Float16{static_cast<std::uint16_t>(sign | 0x7c00u)};
  }
  if (magnitude < 0x38800000u) {  // below 2^-14: subnormal f16 or zero
    if (magnitude < 0x33000000u) return Float16{sign};  // < 2^-25 rounds to zero
    // f16 subnormal = round(x / 2^-24); x = mantissa24 * 2^(exponent - 150),
    // so the quotient is mantissa24 >> (126 - exponent), 14..24 bits dropped.
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t dropped_bits = 126u - exponent;
    std::uint32_t result = mantissa >> dropped_bits;
    const std::uint32_t remainder = mantissa & ((1u << dropped_bits) - 1u);
    const std::uint32_t halfway = 1u << (dropped_bits - 1u);
    if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
    return Float16{static_cast<std::uint16_t>(sign | result)};
  }
  // Normal range: rebias the exponent, round the 13 dropped mantissa bits.
  std::uint32_t result = magnitude - ((127u - 15u) << 23);
  const std::uint32_t remainder = result & 0x1fffu;
  result >>= 13;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) ++result;  // may carry into Inf: correct
  return Float16{static_cast<std::uint16_t>(sign | result)};
}

// ---- the precision Linear weights are held and multiplied in --------------

// What LinearWeights keeps and its kernels read (kernels/linear.hpp). Activations
// and sums stay f32 on every path; only the weights' storage changes, so a
// decode step (bound by how fast the weights stream from memory) moves half
// (BF16, F16) or a quarter (Int8) of the bytes.
//   AsStored  the checkpoint's own type: f32 stays f32, bf16 stays bf16, f16
//             stays f16 (bit-exact: the kernels widen each weight to f32, so the
//             results are those of f32 arithmetic on the stored weights);
//   F32 / BF16 / F16  converted at load, round to nearest even as torch's .to();
//   Int8      symmetric, one f32 scale per output feature: scale = max|w| / 127,
//             q = round-half-even(w / scale) in [-127, 127] (kernels/detail/weight_formats.hpp);
//   Int4      one f32 scale per block of 32 consecutive input features of an output feature, as
//             llama.cpp's Q4_0: scale = m / -8 for the block's weight m of largest magnitude,
//             q = round-half-even(w / scale) in [-8, 7] (core/quantization.hpp), two weights per
//             byte (5 bits per weight with the scales: a sixth of f32).
enum class WeightPrecision : std::uint8_t { AsStored, F32, BF16, F16, Int8, Int4 };

inline constexpr const char* weight_precision_name(WeightPrecision precision) {
  switch (precision) {
    case WeightPrecision::AsStored: return "as-stored";
    case WeightPrecision::F32: return "f32";
    case WeightPrecision::BF16: return "bf16";
    case WeightPrecision::F16: return "f16";
    case WeightPrecision::Int8: return "int8";
    case WeightPrecision::Int4: return "int4";
  }
  return "?";
}

// "as-stored", "f32", "bf16", "f16", "int8" or "int4"; false for anything else.
inline bool parse_weight_precision(std::string_view name, WeightPrecision& out) {
  for (WeightPrecision precision : {WeightPrecision::AsStored, WeightPrecision::F32, WeightPrecision::BF16,
                                    WeightPrecision::F16, WeightPrecision::Int8, WeightPrecision::Int4}) {
    if (name == weight_precision_name(precision)) {
      out = precision;
      return true;
    }
  }
  return false;
}

// AsStored resolved for a tensor stored as `stored`: floating types keep
// their own, anything else becomes F32; other choices are returned as given.
inline WeightPrecision resolve_weight_precision(WeightPrecision requested, DType stored) {
  if (requested != WeightPrecision::AsStored) return requested;
  switch (stored) {
    case DType::BF16: return WeightPrecision::BF16;
    case DType::F16: return WeightPrecision::F16;
    default: return WeightPrecision::F32;
  }
}

// What a Linear layer multiplies its weights by:
//   F32   the f32 activations as they are (the default): the products are exact f32 products of the stored
//         weights, the same on every CPU, and match HF run in f32 on the bf16-rounded weights;
//   BF16  for bf16 weights: the activations rounded to bf16 (round to nearest even) at the input of each such
//         layer, sums in f32: what AVX512-BF16's vdpbf16ps multiplies (two products per lane, twice the f32 FMA
//         rate), and what PyTorch's bf16 matmuls do. CPUs without it round the same way and multiply in f32,
//         so results agree across CPUs up to the order of the sums. A vision transformer whose layers take
//         bf16 activations multiplies its attention's Q·Kᵀ and P·V on bf16 operands too (AttentionOptions::
//         products, kernels/attention.hpp);
//   Int8  for int8 and int4 weights: each input row quantized to int8 at the input of each such layer,
//         symmetric, one scale per row (its largest magnitude / 127, round to nearest even: the weights' own
//         rule), sums exact in int32 (int8 weights: over the whole row; int4: over each 32-input block, then
//         times the block's scale in f32) and scaled once: what AVX512-VNNI's vpdpbusd multiplies (four products
//         per lane), the scheme of llama.cpp's q8 activations and PyTorch's dynamic quantization. CPUs without
//         it quantize the same way and multiply q · scale in f32.
// Each applies to layers with weights of its precisions only (activations_apply_to); others keep f32 activations.
enum class ActivationPrecision : std::uint8_t { F32, BF16, Int8 };

inline constexpr const char* activation_precision_name(ActivationPrecision precision) {
  return precision == ActivationPrecision::BF16 ? "bf16" : precision == ActivationPrecision::Int8 ? "int8" : "f32";
}

// "f32", "bf16" or "int8"; false for anything else.
inline bool parse_activation_precision(std::string_view name, ActivationPrecision& out) {
  if (name == "f32") out = ActivationPrecision::F32;
  else if (name == "bf16") out = ActivationPrecision::BF16;
  else if (name == "int8") out = ActivationPrecision::Int8;
  else return false;
  return true;
}

// Whether Linear layers with `weights` (a resolved precision, not AsStored) take `activations`: bf16
// activations go with bf16 weights, int8 ones with int8 and int4 weights (the precisions their dot-product
// kernels multiply), f32 with every layer.
inline constexpr bool activations_apply_to(ActivationPrecision activations, WeightPrecision weights) {
  switch (activations) {
    case ActivationPrecision::BF16: return weights == WeightPrecision::BF16;
    case ActivationPrecision::Int8: return weights == WeightPrecision::Int8 || weights == WeightPrecision::Int4;
    case ActivationPrecision::F32: break;
  }
  return true;
}

// The weight precisions an activation precision applies to, for messages ("bf16", "int8 or int4").
inline constexpr const char* weights_for_activations_name(ActivationPrecision activations) {
  return activations == ActivationPrecision::BF16   ? "bf16"
         : activations == ActivationPrecision::Int8 ? "int8 or int4"
                                                    : "any";
}

// Any element type to f32 (used by generic readers and writers).
template <class T>
inline float to_f32(T value) { return static_cast<float>(value); }
template <>
inline float to_f32<Float16>(Float16 value) { return f16_to_f32(value); }
template <>
inline float to_f32<BFloat16>(BFloat16 value) { return bf16_to_f32(value); }

}  // namespace blip
