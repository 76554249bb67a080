// blip/core/stored_matrix.hpp: a weight matrix in its checkpoint's own
// element type, read row by row as f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/core/quantization.hpp"

namespace blip {

// A weight matrix [rows, columns] row-major in a checkpoint's own element
// type (f32, f16 or bf16, or quantized by blip_weights convert --precision),
// e.g. a view of a mapped safetensors file: what LinearWeights packs from
// without an f32 copy in between.
struct StoredMatrix {
  DType dtype = DType::F32;
  const void* data = nullptr;
  std::int64_t rows = 0, columns = 0;
  std::shared_ptr<const void> owner;  // keeps `data` (and `scales`) alive when not a view of a live mapping
  // A quantized checkpoint's weight (core/quantization.hpp has the layouts), else AsStored:
  //   Int8: data int8 [rows, columns] (dtype I8), scales [rows]
  //   Int4: data bytes [rows, int4_row_bytes(columns)] (dtype U8), scales [rows, int4_blocks(columns)]
  WeightPrecision quantization = WeightPrecision::AsStored;
  const float* scales = nullptr;

  static StoredMatrix of(const float* values, std::int64_t rows, std::int64_t columns) {
    return StoredMatrix{DType::F32, values, rows, columns, nullptr};
  }

  bool quantized() const { return quantization != WeightPrecision::AsStored; }

  // Bytes of `data`.
  std::size_t bytes() const {
    const std::int64_t row_bytes = quantization == WeightPrecision::Int4
                                       ? quantization::int4_row_bytes(columns)
                                       : columns * static_cast<std::int64_t>(dtype_size(dtype));
    return static_cast<std::size_t>(rows * row_bytes);
  }

  // Quantized rows as stored: int8 q of row `row` / its scale; int4 bytes of row `row` / its block scales.
  const std::int8_t* int8_row(std::int64_t row) const { return static_cast<const std::int8_t*>(data) + row * columns; }
  float int8_scale(std::int64_t row) const { return scales[row]; }
  const std::uint8_t* int4_row(std::int64_t row) const {
    return static_cast<const std::uint8_t*>(data) + row * quantization::int4_row_bytes(columns);
  }
  const float* int4_scales(std::int64_t row) const { return scales + row * quantization::int4_blocks(columns); }

  // Row `row` as f32 into out[0 .. columns) (exact for f32, f16 and bf16; q · scale when quantized).
  void read_row(std::int64_t row, float* out) const {
    if (quantization == WeightPrecision::Int8) return quantization::dequantize_row_int8(int8_row(row), columns, int8_scale(row), out);
    if (quantization == WeightPrecision::Int4) return quantization::dequantize_row_int4(int4_row(row), columns, int4_scales(row), out);
    const std::int64_t first = row * columns;
    switch (dtype) {
      case DType::F32: {
        const float* source = static_cast<const float*>(data) + first;
        for (std::int64_t i = 0; i < columns; ++i) out[i] = source[i];
        return;
      }
      case DType::BF16: {
        const BFloat16* source = static_cast<const BFloat16*>(data) + first;
        for (std::int64_t i = 0; i < columns; ++i) out[i] = bf16_to_f32(source[i]);
        return;
      }
      case DType::F16: {
        const Float16* source = static_cast<const Float16*>(data) + first;
        for (std::int64_t i = 0; i < columns; ++i) out[i] = f16_to_f32(source[i]);
        return;
      }
      default: break;
    }
    fail("StoredMatrix: element type ", dtype_name(dtype), " is not a weight type (f32, f16, bf16, or int8 / int4 with scales)");
  }
};

}  // namespace blip
