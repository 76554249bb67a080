// blip/core/stored_matrix.hpp: a weight matrix in its checkpoint's own
// element type, read row by row as f32.
#pragma once

#include <cstdint>
#include <memory>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"

namespace blip {

// A weight matrix [rows, columns] row-major in a checkpoint's own element
// type (f32, f16 or bf16), e.g. a view of a mapped safetensors file: what
// LinearWeights packs from without an f32 copy in between.
struct StoredMatrix {
  DType dtype = DType::F32;
  const void* data = nullptr;
  std::int64_t rows = 0, columns = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive when it is not a view of a live mapping

  static StoredMatrix of(const float* values, std::int64_t rows, std::int64_t columns) {
    return StoredMatrix{DType::F32, values, rows, columns, nullptr};
  }

  // Row `row` as f32 into out[0 .. columns) (exact for f32, f16 and bf16).
  void read_row(std::int64_t row, float* out) const {
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
    fail("StoredMatrix: element type ", dtype_name(dtype), " is not a weight type (f32, f16, bf16)");
  }
};

}  // namespace blip
