// blip/io/quantized_checkpoint.hpp: how a quantized checkpoint (written by
// `blip_weights convert --precision int8|int4`) marks itself and stores its
// Linear weights. docs/weights.md documents the format for other readers.
//
// The file is an ordinary safetensors file (or shards and an index). The HF
// names are kept; only the Linear weights the model packs at load change:
//   <name>         int8: I8 [out, in]                 q
//                  int4: U8 [out, ceil(in / 2)]       two q + 8 per byte (core/quantization.hpp)
//   <name>_scale   int8: F32 [out]                    one scale per output feature
//                  int4: F32 [out, ceil(in / 32)]     one scale per 32 inputs of a feature
// Every other tensor (embeddings, norms, biases, convolutions, and a weight
// the model also reads as floats, such as a tied embedding) is as it was.
// Each file's __metadata__ says what was done:
//   "blipcpp_quantization":        "int8" or "int4"
//   "blipcpp_quantization_format": "1"
//   "blipcpp_quantized_from":      the source tensors' dtypes, e.g. "F32"
//   "blipcpp_quantization_method": the rule, in words
// A reader that does not know the keys sees integer tensors that are not the
// model's weights. transformers cannot load such a file, and blipcpp refuses
// one whose keys it does not know.
#pragma once

#include <map>
#include <string>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/core/quantization.hpp"
#include "blip/core/tensor.hpp"

namespace blip {

inline constexpr const char* kQuantizationKey = "blipcpp_quantization";
inline constexpr const char* kQuantizationFormatKey = "blipcpp_quantization_format";
inline constexpr const char* kQuantizedFromKey = "blipcpp_quantized_from";
inline constexpr const char* kQuantizationMethodKey = "blipcpp_quantization_method";
inline constexpr const char* kQuantizationFormatVersion = "1";
inline constexpr const char* kQuantizationScaleSuffix = "_scale";

// The precisions a checkpoint can be quantized to.
inline bool is_checkpoint_quantization(WeightPrecision precision) {
  return precision == WeightPrecision::Int8 || precision == WeightPrecision::Int4;
}

// What a file's metadata says: Int8 or Int4, or AsStored for a file that is not quantized. An unknown value or
// format version is an error naming the file (`source`).
inline WeightPrecision quantization_from_metadata(const std::map<std::string, std::string>& metadata,
                                                  const std::string& source) {
  const auto found = metadata.find(kQuantizationKey);
  if (found == metadata.end()) return WeightPrecision::AsStored;
  WeightPrecision precision = WeightPrecision::AsStored;
  if (!parse_weight_precision(found->second, precision) || !is_checkpoint_quantization(precision))
    fail(source, ": __metadata__ \"", kQuantizationKey, "\" is '", clip(found->second),
         "'; this blipcpp reads quantized checkpoints in int8 or int4");
  const auto format = metadata.find(kQuantizationFormatKey);
  if (format == metadata.end() || format->second != kQuantizationFormatVersion)
    fail(source, ": a quantized checkpoint (", kQuantizationKey, " ", found->second, ") of format '",
         format == metadata.end() ? std::string("(none)") : clip(format->second), "'; this blipcpp reads format ",
         kQuantizationFormatVersion, " (write the file again with this version's blip_weights convert)");
  return precision;
}

// The method a quantized file records (kQuantizationMethodKey).
inline std::string quantization_method(WeightPrecision precision) {
  return precision == WeightPrecision::Int8
             ? "symmetric per output feature: scale = max|w| / 127, q = round-half-even(w / scale) in [-127, 127]"
             : "per 32 inputs of an output feature (llama.cpp Q4_0): scale = m / -8 for the block's weight m of "
               "largest magnitude, q = round-half-even(w / scale) in [-8, 7], stored as q + 8, two per byte (low "
               "nibble: the even input)";
}

// The element type and shapes a Linear weight [rows, columns] has in a checkpoint quantized to `precision`.
inline DType quantized_weight_dtype(WeightPrecision precision) {
  return precision == WeightPrecision::Int8 ? DType::I8 : DType::U8;
}
inline Shape quantized_weight_shape(WeightPrecision precision, std::int64_t rows, std::int64_t columns) {
  return precision == WeightPrecision::Int8 ? Shape{rows, columns} : Shape{rows, quantization::int4_row_bytes(columns)};
}
inline Shape quantized_scale_shape(WeightPrecision precision, std::int64_t rows, std::int64_t columns) {
  return precision == WeightPrecision::Int8 ? Shape{rows} : Shape{rows, quantization::int4_blocks(columns)};
}

}  // namespace blip
