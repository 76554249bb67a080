// blip/core/quantization.hpp: symmetric int8 and int4 weight quantization.
// These are the rules as numbers, with no memory layout attached. One
// definition is used in three places: packing Linear weights at load
// (kernels/linear.hpp), writing a quantized checkpoint (blip_weights convert
// --precision) and reading one back (StoredMatrix). Because all three share it,
// a checkpoint quantized ahead of time runs bit-identically to the same weights
// quantized at load.
//
// Int8, per output feature (torch's per-channel symmetric qint8 with the range [-127, 127]):
//   scale = max_k |w[o, k]| / 127            (f32 division; a zero row gets scale 0)
//   q     = round-half-even(w / scale)       (f32 division, then nearbyint), clamped to [-127, 127]
//   so |w - q · scale| ≤ scale / 2 for every weight of the row.
//
// Int4, in blocks of kInt4BlockSize = 32 input features of one output feature, llama.cpp's Q4_0 rule:
//   m     = the block's weight of largest magnitude (the first, if two tie), sign kept
//   scale = m / -8                            (exact; negative when m > 0; an all-zero block gets scale 0)
//   q     = round-half-even(w / scale), clamped to [-8, 7]
//   stored as the nibble q + 8 (0 .. 15)
// so m itself is q = -8 exactly and all 16 levels are used. The symmetric rule scale = max|w| / 7, q in [-7, 7]
// (this library's first, and torch's group-wise schemes) leaves the nibble 0 unused: its rounding error is 13%
// larger in RMS on Gaussian blocks of 32 (0.097 against 0.086 of the weights' standard deviation, 20,000 blocks;
// searching 61 scales around the extreme's, each refitted by least squares, gained under 0.2% more). Files quantized with either rule load alike.
//
// One output feature's row as a quantized checkpoint stores it (row-major, as
// the HF weight [out_features, in_features] it replaces; docs/weights.md):
//   int8: in_features int8 q, and one f32 scale per row
//   int4: ceil(in_features / 2) bytes, where byte j holds input 2j in its low
//         nibble and input 2j + 1 in its high one (an odd row ends with the
//         nibble 8, q = 0), and ceil(in_features / 32) f32 scales per row
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace blip::quantization {

inline constexpr std::int64_t kInt4BlockSize = 32;
inline constexpr int kInt4Offset = 8;  // stored nibble = q + 8

inline std::int64_t int4_blocks(std::int64_t in_features) { return (in_features + kInt4BlockSize - 1) / kInt4BlockSize; }
inline std::int64_t int4_row_bytes(std::int64_t in_features) { return (in_features + 1) / 2; }

// The int8 scale of one output feature from its largest weight magnitude, and one weight's q.
inline float int8_scale(float max_magnitude) { return max_magnitude / 127.0f; }
inline std::int8_t int8_quantize(float value, float scale) {
  const float q = scale > 0.0f ? std::nearbyint(value / scale) : 0.0f;
  return static_cast<std::int8_t>(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
}

// The int4 scale of one block from its weight of largest magnitude (sign kept), and one weight's q.
inline float int4_scale(float extreme) { return extreme / -8.0f; }
inline int int4_quantize(float value, float scale) {
  const float q = scale != 0.0f ? std::nearbyint(value / scale) : 0.0f;
  return static_cast<int>(q > 7.0f ? 7.0f : q < -8.0f ? -8.0f : q);
}

// The int8 scale of one row of activations (ActivationPrecision::Int8), quantized at a layer's input with the
// weights' rule: q = int8_quantize(x, scale). A row holding NaN or ±inf gets a NaN scale (and q = 0 through
// activation_int8_quantize), so its outputs are NaN, as in f32, rather than the garbage of a NaN cast to int.
inline float activation_int8_scale(const float* row, std::int64_t count) {
  float largest = 0.0f;
  for (std::int64_t k = 0; k < count; ++k) {
    const float magnitude = std::abs(row[k]);
    if (std::isnan(magnitude)) return std::numeric_limits<float>::quiet_NaN();
    largest = std::max(largest, magnitude);
  }
  return std::isfinite(largest) ? int8_scale(largest) : std::numeric_limits<float>::quiet_NaN();
}
inline std::int8_t activation_int8_quantize(float value, float scale) {
  return std::isfinite(scale) ? int8_quantize(value, scale) : std::int8_t{0};
}

// One row of `count` weights to int8: q[0 .. count), and the row's scale returned. A row holding NaN or ±inf
// gets a NaN scale and q = 0, so its outputs are NaN as they would be in f32 (the activations' rule above).
inline float quantize_row_int8(const float* row, std::int64_t count, std::int8_t* q) {
  float largest = 0.0f;
  bool finite = true;
  for (std::int64_t k = 0; k < count; ++k) {
    finite = finite && std::isfinite(row[k]);
    largest = std::max(largest, std::abs(row[k]));
  }
  const float scale = finite ? int8_scale(largest) : std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t k = 0; k < count; ++k) q[k] = finite ? int8_quantize(row[k], scale) : std::int8_t{0};
  return scale;
}

// One row of `count` weights to int4 in the checkpoint layout above: bytes[0 .. int4_row_bytes(count)),
// scales[0 .. int4_blocks(count)). A block holding NaN or ±inf gets a NaN scale and q = 0 (as int8's rows).
inline void quantize_row_int4(const float* row, std::int64_t count, std::uint8_t* bytes, float* scales) {
  std::fill(bytes, bytes + int4_row_bytes(count), static_cast<std::uint8_t>(kInt4Offset | kInt4Offset << 4));
  for (std::int64_t block = 0; block < int4_blocks(count); ++block) {
    const std::int64_t begin = block * kInt4BlockSize, end = std::min(count, begin + kInt4BlockSize);
    float extreme = 0.0f;
    bool finite = true;
    for (std::int64_t k = begin; k < end; ++k) {
      finite = finite && std::isfinite(row[k]);
      if (std::abs(row[k]) > std::abs(extreme)) extreme = row[k];
    }
    const float scale = !finite          ? std::numeric_limits<float>::quiet_NaN()
                        : extreme == 0.0f ? 0.0f  // not -0.0f
                                          : int4_scale(extreme);
    scales[block] = scale;
    for (std::int64_t k = begin; k < end; ++k) {
      const int nibble = (finite ? int4_quantize(row[k], scale) : 0) + kInt4Offset;
      std::uint8_t& byte = bytes[k / 2];
      byte = static_cast<std::uint8_t>(k % 2 == 0 ? (byte & 0xf0) | nibble : (byte & 0x0f) | nibble << 4);
    }
  }
}

// The q of input `k` in an int4 row of the checkpoint layout (-8 .. 7).
inline int int4_in_row(const std::uint8_t* bytes, std::int64_t k) {
  const std::uint8_t byte = bytes[k / 2];
  return static_cast<int>(k % 2 == 0 ? byte & 0x0f : byte >> 4) - kInt4Offset;
}

// A quantized row back to f32: w = q · scale.
inline void dequantize_row_int8(const std::int8_t* q, std::int64_t count, float scale, float* out) {
  for (std::int64_t k = 0; k < count; ++k) out[k] = static_cast<float>(q[k]) * scale;
}
inline void dequantize_row_int4(const std::uint8_t* bytes, std::int64_t count, const float* scales, float* out) {
  for (std::int64_t k = 0; k < count; ++k)
    out[k] = static_cast<float>(int4_in_row(bytes, k)) * scales[k / kInt4BlockSize];
}

}  // namespace blip::quantization
