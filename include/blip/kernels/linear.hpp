// blip/kernels/linear.hpp: y = x · Wᵀ + b, PyTorch's nn.Linear, with f32
// activations and f32, bf16, f16, int8 or int4 weights.
//
// Every Linear in BLIP / BLIP-2 goes through here, so this is where most of the
// time is spent: the vision transformer's prefill (hundreds of rows, compute-
// bound) and the text decoders' per-token steps (1 row per beam, bound by how
// fast the weights stream from memory).
//
// How it is fast (the BLIS recipe, with the weight side done once at load):
//   * LinearWeights::prepare repacks W [out, in] into panels of 32 output
//     features: panel j holds, for k = 0 .. in-1, the 32 weights W[32j .. 32j+31, k]
//     side by side (zero-padded past `out`). A micro-kernel then reads the
//     weights as one sequential stream of aligned vectors.
//   * Weight precision (core/dtype.hpp: WeightPrecision): the panels hold f32,
//     bf16, f16, int8 (+ one f32 scale per output feature) or int4 (two per
//     byte, + one f32 scale per 32 inputs of a feature) elements, packed
//     straight from the checkpoint's own type (detail/weight_formats.hpp). The
//     micro-kernels widen each weight to f32 as it is loaded, so activations
//     and sums are f32 on every path and a narrower weight only changes how
//     many bytes a decode step streams (bf16 / f16: half, int8: a quarter).
//   * Per call, the rows of x are packed into tiles of up to 12 rows (AVX-512)
//     with the 12 values of one k adjacent (one broadcast each).
//   * Activation precision (core/dtype.hpp: ActivationPrecision): a layer with
//     bf16 weights may be told to round its input to bf16; then on CPUs with
//     AVX512-BF16 the rows are packed as bf16 pairs and vdpbf16ps multiplies two
//     k per instruction (detail/linear_avx512.hpp); elsewhere the rows are
//     rounded as they are packed and the f32 kernels run. Likewise a layer with
//     int8 weights may be told to quantize its input to int8 per row; then on
//     CPUs with AVX512-VNNI and VBMI, and on the avx2 path, the rows are packed
//     as int8 quads and multiplied exactly, in int32: vpdpbusd, four k per
//     instruction (on the avx2 path without AVX-VNNI, vpmaddubsw and vpmaddwd);
//     int4 weights take int8 activations too (detail/linear_avx2_integer.hpp
//     on the avx2 path).
//   * A micro-kernel (detail/linear_avx512.hpp, detail/linear_avx2.hpp, detail/linear_portable.hpp)
//     keeps a tile of y in registers over a whole depth block (AVX-512: 12 × 32; AVX2: 6 × 16).
//   * Blocking: rows are packed one row block (~192 rows) at a time; per depth
//     block (≤ 384) its packed slice (~300 KiB) stays in L2 and is reused by
//     several weight panels, and each panel's depth block (48 KiB) is reused by
//     every row tile of the block.
//   * Threads take work items (runs of weight panels) dynamically, so an
//     uneven split or a thread delayed by the OS costs at most one item; one
//     barrier per row block (two packing buffers alternate).
//   * Decode (rows ≤ one register tile, e.g. 1 token × up to 12 beams): no depth
//     blocking, so every weight is read from memory exactly once per call, and
//     the threads split the output features into contiguous runs of panels; the
//     kernels prefetch each panel 8 KiB ahead (MicroTile::prefetch_weights).
//     Layers of the same input (linear_shared_input: q, k and v) stream as one.
//   * Results do not depend on the thread count: every output element is
//     computed by the same sequence of operations whichever thread runs it.
//     Nor on the other rows of the call: a tile's later depth blocks resume the
//     raw sums of the earlier ones (MicroTile::resume), so the depth-blocked
//     driver performs the streamed driver's single chain per output, and an
//     image's or a beam's outputs are the same bits in a batch of any size.
//   * Weights are held once: the original W is not kept, and when it is a view
//     of a mapped checkpoint, prepare hands its pages back after packing
//     (release_mapped_pages), so RAM holds the packed panels only. The naive
//     reference reads the panels too (weight_value), widened by scalar code.
// The instruction set is chosen at run time (detail/cpu_dispatch.hpp).
//
// The amx path (detail/linear_amx.hpp) multiplies bf16 weights by bf16 activations
// on Intel's AMX tiles, reading the same panels. Roadmap: measure it on an AMX
// CPU and make it the default there; int8 tiles.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/mapped_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"
#include "blip/kernels/detail/linear_amx.hpp"
#include "blip/kernels/detail/linear_avx2.hpp"
#include "blip/kernels/detail/linear_avx2_integer.hpp"
#include "blip/kernels/detail/linear_avx512.hpp"
#include "blip/kernels/detail/linear_microkernel.hpp"
#include "blip/kernels/detail/linear_portable.hpp"
#include "blip/kernels/detail/weight_formats.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace blip::kernels {

namespace detail {
// Storage for packed weights: zero-filled, 64-byte aligned, and for large
// layers 2 MiB aligned with transparent huge pages requested (Linux). A decode
// step streams every weight from memory; with 4 KiB pages the hardware
// prefetchers stop at each page boundary and every 4 KiB costs a TLB miss.
// Huge pages cover the whole 2 MiB runs only: the rest (< 2 MiB) stays in
// 4 KiB pages and the rounding past the end is never touched, so it costs no
// RAM (for BLIP-2 OPT-2.7b, whose Q-Former matrices are 2.4 MB, rounding every
// layer up to whole huge pages held 0.4 GB more).
inline std::shared_ptr<void> allocate_packed_weights(std::size_t bytes) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHugePage) {
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* memory = std::aligned_alloc(kHugePage, rounded);
    if (memory == nullptr) throw std::bad_alloc();
    ::madvise(memory, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advisory: ignored where THP is disabled
    std::memset(memory, 0, bytes);
    return std::shared_ptr<void>(memory, [](void* pointer) { std::free(pointer); });
  }
#endif
  (void)kHugePage;
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  void* memory = std::aligned_alloc(64, rounded);
  if (memory == nullptr) throw std::bad_alloc();
  std::memset(memory, 0, rounded);
  return std::shared_ptr<void>(memory, [](void* pointer) { std::free(pointer); });
}
}  // namespace detail

// A Linear layer's weight, prepared once at load into the layout the fast
// kernel reads, in one of the weight precisions (core/dtype.hpp:
// WeightPrecision; f32 unless asked). Immutable after prepare; copies share
// the packed data, and any number of threads may use one concurrently.
class LinearWeights {
 public:
  LinearWeights() = default;

  // weight: [out_features, in_features] exactly as PyTorch nn.Linear stores it;
  // bias: [out_features] or empty, kept as given (it is small). The weight is
  // packed in `precision` (AsStored means F32 here) and not kept: when it is a
  // view of a mapped checkpoint its pages are released (see the top of this file).
  static LinearWeights prepare(Tensor<const float> weight, Tensor<const float> bias,
                               WeightPrecision precision = WeightPrecision::F32,
                               ActivationPrecision activations = ActivationPrecision::F32) {
    check(weight.rank() == 2, "LinearWeights::prepare: weight must be [out_features, in_features], got shape ",
          weight.shape());
    return prepare(detail::StoredMatrix::of(weight.data(), weight.dim(0), weight.dim(1)), bias, precision,
                   activations);
  }

  // The same from a weight in its checkpoint's own type (f32, f16 or bf16),
  // e.g. a view of a mapped bf16 checkpoint, packed straight into `precision`
  // (AsStored: the stored type) with no f32 copy in between. `activations`:
  // what the layer multiplies bf16 weights by (ignored for other precisions).
  static LinearWeights prepare(const detail::StoredMatrix& weight, Tensor<const float> bias,
                               WeightPrecision precision,
                               ActivationPrecision activations = ActivationPrecision::F32) {
    const std::int64_t out_features = weight.rows, in_features = weight.columns;
    check(out_features > 0 && in_features > 0, "LinearWeights::prepare: weight shape [", out_features, ", ",
          in_features, "] has an empty dimension");
    check(weight.data != nullptr, "LinearWeights::prepare: weight has no data");
    const bool has_bias = bias.data() != nullptr || bias.rank() > 0;
    if (has_bias) {
      check(bias.rank() == 1 && bias.dim(0) == out_features, "LinearWeights::prepare: bias must be [",
            out_features, "] to match weight [", out_features, ", ", in_features, "], got shape ", bias.shape());
    }
    // AsStored: the stored type, or the precision a quantized checkpoint holds (packed from its q and scales
    // as stored, so bit-identical to quantizing the original weights here). Another precision than a quantized
    // weight's goes through its q · scale.
    precision = weight.quantized() && precision == WeightPrecision::AsStored
                    ? weight.quantization
                    : resolve_weight_precision(precision, weight.dtype);

    LinearWeights prepared;
    prepared.precision_ = precision;
    prepared.activations_ = activations_apply_to(activations, precision) ? activations : ActivationPrecision::F32;
    prepared.bias_ = has_bias ? bias : Tensor<const float>();
    prepared.in_features_ = in_features;
    prepared.out_features_ = out_features;
    prepared.panel_count_ = (out_features + detail::kPanelWidth - 1) / detail::kPanelWidth;
    prepared.row_bytes_ = static_cast<std::size_t>(detail::kPanelWidth * detail::packed_weight_bits(precision) / 8);
    detail::with_packed_element(precision, [&](auto element) { prepared.pack<decltype(element)>(weight); });
    // From here on the kernels read only the panels; when `weight` is a view
    // of a mapped checkpoint, its resident pages go (a no-op for other memory).
    release_mapped_pages(weight.data, weight.bytes());

    if (has_bias) {
      Tensor<float> padded_bias(Shape{prepared.panel_count_ * detail::kPanelWidth});
      std::copy(bias.data(), bias.data() + out_features, padded_bias.data());
      prepared.packed_bias_ = padded_bias;
    }
    return prepared;
  }

  bool empty() const { return packed_ == nullptr; }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  bool has_bias() const { return packed_bias_.data() != nullptr; }
  WeightPrecision precision() const { return precision_; }
  // F32, or BF16 when the layer rounds its input to bf16 (bf16 weights only).
  ActivationPrecision activation_precision() const { return activations_; }
  // [out] or empty.
  const Tensor<const float>& bias() const { return bias_; }
  // Memory held by the packed copy (for RAM accounting).
  std::size_t packed_bytes() const {
    // (A default Tensor is a rank-0 scalar whose bytes() is one element: count only tensors that exist.)
    return packed_size_ + (has_bias() ? packed_bias_.bytes() : 0) +
           (packed_scales_.data() != nullptr ? packed_scales_.bytes() : 0) +
           (int8_weight_sums_.data() != nullptr ? int8_weight_sums_.bytes() : 0);
  }

  // The weight W[output, input] the kernels multiply by, widened to f32 from
  // the packed copy (the stored weight rounded to `precision`, int8 and int4 as
  // q · scale). For the naive reference and tests; slow.
  float weight_value(std::int64_t output, std::int64_t input) const {
    const std::int64_t panel = output / detail::kPanelWidth, column = output % detail::kPanelWidth;
    return detail::with_packed_element(precision_, [&](auto element) -> float {
      using Element = decltype(element);
      if constexpr (std::is_same_v<Element, detail::Int4Pair>) {
        const float scale = int4_block_scales(panel, input / detail::kInt4BlockSize)[column];
        const auto* row = static_cast<const std::uint8_t*>(panel_at(panel, input));
        return static_cast<float>(detail::int4_at(row, static_cast<int>(column))) * scale;
      } else {
        const float scale = precision_ == WeightPrecision::Int8 ? packed_scales_.data()[output] : 1.0f;
        return detail::widen(static_cast<const Element*>(panel_at(panel, input))[column], scale);
      }
    });
  }
  // Row `output` of W (in_features values) as weight_value gives it, into out: one weight per
  // panel row, so it reads in_features cache lines. A tied LM head packed without loss serves
  // its embedding table's lookups this way (kernels/embedding.hpp: EmbeddingTable).
  void weight_row(std::int64_t output, float* out) const {
    check(0 <= output && output < out_features_, "LinearWeights::weight_row: output feature ", output,
          " is outside [0, ", out_features_, ")");
    const std::int64_t panel = output / detail::kPanelWidth;
    const int column = static_cast<int>(output % detail::kPanelWidth);
    detail::with_packed_element(precision_, [&](auto element) {
      using Element = decltype(element);
      if constexpr (std::is_same_v<Element, detail::Int4Pair>) {
        const auto* rows = static_cast<const std::uint8_t*>(panel_at(panel, 0));
        for (std::int64_t k = 0; k < in_features_; ++k)
          out[k] = static_cast<float>(detail::int4_at(rows + k * row_bytes_, column)) *
                   int4_block_scales(panel, k / detail::kInt4BlockSize)[column];
      } else {
        const float scale = precision_ == WeightPrecision::Int8 ? packed_scales_.data()[output] : 1.0f;
        const Element* weights = static_cast<const Element*>(panel_at(panel, 0)) + column;
        for (std::int64_t k = 0; k < in_features_; ++k) out[k] = detail::widen(weights[k * detail::kPanelWidth], scale);
      }
    });
  }
  // All of W [out, in] as weight_value gives it (tests, references).
  Tensor<float> unpacked_weight() const {
    Tensor<float> weight(Shape{out_features_, in_features_});
    for (std::int64_t o = 0; o < out_features_; ++o) weight_row(o, weight.data() + o * in_features_);
    return weight;
  }

  // ---- packed layout, read by the kernels ----
  std::int64_t panel_count() const { return empty() ? 0 : panel_count_; }
  // Bytes of one input's row of a panel (kPanelWidth weights): a depth range of a panel is contiguous.
  std::int64_t panel_row_bytes() const { return static_cast<std::int64_t>(row_bytes_); }
  // The packed weights of output features [32 · panel, 32 · panel + 32) from input `input` on:
  // [in_features - input][kPanelWidth] elements of `precision()`.
  const void* panel_at(std::int64_t panel, std::int64_t input) const {
    return packed_ + static_cast<std::size_t>(panel * in_features_ + input) * row_bytes_;
  }
  // [panel_count * kPanelWidth], zero-padded; null without bias.
  const float* packed_bias() const { return packed_bias_.data(); }
  // Int8: [panel_count * kPanelWidth] per-feature scales, zero-padded; null otherwise.
  const float* packed_scales() const { return precision_ == WeightPrecision::Int8 ? packed_scales_.data() : nullptr; }
  // Int8: [panel_count * kPanelWidth] Σ_k q[k, output] over all inputs, zero-padded; null otherwise. An int8 x
  // int8 kernel over a panel's whole depth takes its weight sums from here rather than summing them as it goes
  // (MicroTile::weight_sums; the decode step's every tile).
  const std::int32_t* int8_weight_sums() const {
    return precision_ == WeightPrecision::Int8 ? int8_weight_sums_.data() : nullptr;
  }
  // Int4: the kPanelWidth scales of block `block` (inputs [32 · block, 32 · block + 32)) of panel `panel`.
  const float* int4_block_scales(std::int64_t panel, std::int64_t block) const {
    return packed_scales_.data() + (panel * int4_blocks() + block) * detail::kPanelWidth;
  }
  std::int64_t int4_blocks() const { return (in_features_ + detail::kInt4BlockSize - 1) / detail::kInt4BlockSize; }

 private:
  // The weight packed as the kernels of Element read it.
  template <class Element>
  void pack(const detail::StoredMatrix& weight) {
    if constexpr (std::is_same_v<Element, detail::Int4Pair>)
      pack_int4(weight);
    else
      pack_elements<Element>(weight);
  }

  // Panels [panel_count][in_features][kPanelWidth] of Element, zero-padded past out_features; int8 scales
  // (quantized per row here, or taken as stored from an int8 checkpoint).
  template <class Element>
  void pack_elements(const detail::StoredMatrix& weight) {
    Element* packed = static_cast<Element*>(allocate_panels(
        static_cast<std::size_t>(panel_count_ * in_features_ * detail::kPanelWidth) * sizeof(Element)));
    constexpr bool int8 = std::is_same_v<Element, std::int8_t>;
    float* scales = int8 ? allocate_scales(panel_count_ * detail::kPanelWidth) : nullptr;
    std::int32_t* weight_sums = nullptr;
    if constexpr (int8) {
      Tensor<std::int32_t> sums(Shape{panel_count_ * detail::kPanelWidth});
      std::fill(sums.data(), sums.data() + sums.numel(), 0);
      int8_weight_sums_ = sums;
      weight_sums = sums.data();
    }
    const bool stored_int8 = int8 && weight.quantization == WeightPrecision::Int8;
    const std::int64_t in_features = in_features_;
    for_each_weight_row(weight, /*read_as_f32=*/!stored_int8,
                        [&](std::int64_t panel, std::int64_t column, std::int64_t output, const std::vector<float>& row) {
      Element* destination = packed + panel * in_features * detail::kPanelWidth + column;
      if constexpr (int8) {
        thread_local std::vector<std::int8_t> quantized;
        const std::int8_t* q = nullptr;
        float scale = 0.0f;
        if (stored_int8) {
          q = weight.int8_row(output);
          scale = weight.int8_scale(output);
        } else {
          quantized.resize(static_cast<std::size_t>(in_features));
          scale = quantization::quantize_row_int8(row.data(), in_features, quantized.data());
          q = quantized.data();
        }
        scales[panel * detail::kPanelWidth + column] = scale;
        std::int32_t sum = 0;  // |Σ q| ≤ 127 · in_features
        for (std::int64_t k = 0; k < in_features; ++k) {
          destination[k * detail::kPanelWidth] = q[k];
          sum += q[k];
        }
        weight_sums[panel * detail::kPanelWidth + column] = sum;
      } else {
        for (std::int64_t k = 0; k < in_features; ++k)
          detail::narrow(row[static_cast<std::size_t>(k)], 1.0f, destination[k * detail::kPanelWidth]);
      }
    });
  }

  // Int4 panels (two weights per byte, weight_formats.hpp) and their block scales (quantized per row here, or
  // taken as stored from an int4 checkpoint).
  void pack_int4(const detail::StoredMatrix& weight) {
    const std::int64_t blocks = int4_blocks();
    const std::size_t row_bytes = row_bytes_;
    auto* packed = static_cast<std::uint8_t*>(allocate_panels(static_cast<std::size_t>(panel_count_ * in_features_) * row_bytes));
    std::memset(packed, 0x88, packed_size_);  // q = 0 in both nibbles, also for the padding columns
    float* scales = allocate_scales(panel_count_ * blocks * detail::kPanelWidth);
    const bool stored_int4 = weight.quantization == WeightPrecision::Int4;
    const std::int64_t in_features = in_features_;
    for_each_weight_row(weight, /*read_as_f32=*/!stored_int4,
                        [&](std::int64_t panel, std::int64_t column, std::int64_t output, const std::vector<float>& row) {
      thread_local std::vector<std::uint8_t> quantized;
      thread_local std::vector<float> quantized_scales;
      const std::uint8_t* q = nullptr;
      const float* row_scales = nullptr;
      if (stored_int4) {
        q = weight.int4_row(output);
        row_scales = weight.int4_scales(output);
      } else {
        quantized.resize(static_cast<std::size_t>(quantization::int4_row_bytes(in_features)));
        quantized_scales.resize(static_cast<std::size_t>(blocks));
        quantization::quantize_row_int4(row.data(), in_features, quantized.data(), quantized_scales.data());
        q = quantized.data();
        row_scales = quantized_scales.data();
      }
      for (std::int64_t block = 0; block < blocks; ++block)
        scales[(panel * blocks + block) * detail::kPanelWidth + column] = row_scales[block];
      std::uint8_t* destination = packed + static_cast<std::size_t>(panel * in_features) * row_bytes + column % 16;
      const int shift = column < 16 ? 0 : 4;
      const std::uint8_t keep = column < 16 ? 0xf0 : 0x0f;
      for (std::int64_t k = 0; k < in_features; ++k) {
        const int nibble = quantization::int4_in_row(q, k) + detail::kInt4Offset;
        std::uint8_t& byte = destination[static_cast<std::size_t>(k) * row_bytes];
        byte = static_cast<std::uint8_t>((byte & keep) | (nibble << shift));
      }
    });
  }

  // Zero-filled panel storage of `bytes` (allocate_packed_weights), kept by this object.
  void* allocate_panels(std::size_t bytes) {
    packed_size_ = bytes;
    packed_owner_ = detail::allocate_packed_weights(bytes);
    packed_ = static_cast<const std::uint8_t*>(packed_owner_.get());
    return packed_owner_.get();
  }

  // `count` zero scales, kept by this object. Stored as the panels are (allocate_packed_weights: huge pages from 2
  // MiB on), because an int4 layer's block scales are a stream of their own beside its nibbles, a fifth of its
  // bytes (3.3 of 16.4 MB for OPT-2.7b's fc1), read once per decode step.
  float* allocate_scales(std::int64_t count) {
    std::shared_ptr<void> storage = detail::allocate_packed_weights(static_cast<std::size_t>(count) * sizeof(float));
    packed_scales_ = Tensor<float>::view(static_cast<float*>(storage.get()), Shape{count}, storage);
    return static_cast<float*>(storage.get());
  }

  // Calls visit(panel, column, output, row) for every output feature `output` (column: its place in the
  // panel), with its weight row read as f32 into `row` when `read_as_f32` (else `row` is empty: the visitor
  // reads the stored row itself); the panels in parallel, each thread with its own row buffer.
  template <class Visit>
  void for_each_weight_row(const detail::StoredMatrix& weight, bool read_as_f32, Visit&& visit) const {
    const std::int64_t in_features = in_features_, out_features = out_features_;
    parallel_for(
        0, panel_count_,
        [&](std::int64_t panel) {
          thread_local std::vector<float> row;
          row.resize(read_as_f32 ? static_cast<std::size_t>(in_features) : 0);
          const std::int64_t first_output = panel * detail::kPanelWidth;
          const std::int64_t columns = std::min<std::int64_t>(detail::kPanelWidth, out_features - first_output);
          for (std::int64_t column = 0; column < columns; ++column) {
            if (read_as_f32) weight.read_row(first_output + column, row.data());
            visit(panel, column, first_output + column, row);
          }
          // This panel's rows are packed: where they are a mapped checkpoint, their pages go now, so a large
          // matrix is not in RAM twice while it is packed (BLIP-base's 94 MB f32 LM head was 89 MiB of its
          // loading peak). Pages shared with the next panel's rows stay until prepare releases the whole matrix.
          const std::size_t row_bytes = weight.bytes() / static_cast<std::size_t>(out_features);
          release_mapped_pages(static_cast<const std::uint8_t*>(weight.data) + first_output * row_bytes,
                               static_cast<std::size_t>(columns) * row_bytes);
        },
        4);
  }

  WeightPrecision precision_ = WeightPrecision::F32;
  ActivationPrecision activations_ = ActivationPrecision::F32;
  Tensor<const float> bias_;
  std::shared_ptr<void> packed_owner_;
  const std::uint8_t* packed_ = nullptr;
  std::size_t packed_size_ = 0;
  std::size_t row_bytes_ = 4 * detail::kPanelWidth;  // bytes of one k of one panel
  Tensor<const float> packed_bias_;
  Tensor<const float> packed_scales_;
  Tensor<const std::int32_t> int8_weight_sums_;
  std::int64_t in_features_ = 0;
  std::int64_t out_features_ = 0;
  std::int64_t panel_count_ = 0;
};

// One of several Linear layers applied to the same input (linear_shared_input): its weights and where its
// output rows go (y row r at y + r * y_stride).
struct LinearProduct {
  const LinearWeights* weights = nullptr;
  float* y = nullptr;
  std::int64_t y_stride = 0;
};

namespace detail {

// Blocking limits (see the header comment); tuned on Zen 4 (1 MiB L2 per core).
// Blocks are split evenly and row blocks rounded up to whole register tiles, so
// a row block can exceed kMaxRowBlock by less than one tile (577 rows: 3 × 204).
inline constexpr std::int64_t kMaxDepthBlock = 384;
inline constexpr std::int64_t kMaxRowBlock = 192;
// Row tiles per block from which the prefill driver asks for the next panel and row tile ahead (linear_many_rows).
inline constexpr std::int64_t kMinRowTilesToPrefetch = 8;
// Below this many multiply-adds per thread, starting threads costs more than it saves.
inline constexpr std::int64_t kMinMultiplyAddsPerThread = std::int64_t{1} << 15;

// A grow-only, 64-byte aligned float buffer. One per thread (thread_local), so
// steady-state calls never allocate.
class ScratchBuffer {
 public:
  float* reserve(std::size_t count) {
    if (count > capacity_) {
      storage_ = ::blip::detail::allocate_aligned(count * sizeof(float));
      capacity_ = count;
    }
    return static_cast<float*>(storage_.get());
  }

 private:
  std::shared_ptr<void> storage_;
  std::size_t capacity_ = 0;
};

inline ScratchBuffer& linear_packing_scratch() {
  thread_local ScratchBuffer buffer;
  return buffer;
}

// Splits `total` into equal blocks of at most `limit`, each a multiple of
// `granule` (so 577 rows become 3 blocks of 204, not 192 + 192 + 192 + 1).
inline std::int64_t balanced_block(std::int64_t total, std::int64_t limit, std::int64_t granule) {
  const std::int64_t blocks = (total + limit - 1) / limit;
  const std::int64_t size = (total + blocks - 1) / blocks;
  return (size + granule - 1) / granule * granule;
}

// Asks for part `part` of `parts` equal slices (whole 64-byte lines) of [begin, begin + bytes) to be brought into
// L2 (prefetcht1 on x86). The prefill driver spreads a block it will read next over the calls before it, so the
// requests go out a few at a time while the cores compute (linear_many_rows).
inline void prefetch_part_to_l2(const void* begin, std::int64_t bytes, std::int64_t part, std::int64_t parts) {
#if defined(__GNUC__) || defined(__clang__)
  const std::int64_t slice = (bytes / parts + 63) / 64 * 64;
  const char* first = static_cast<const char*>(begin);
  for (std::int64_t line = part * slice; line < std::min(bytes, (part + 1) * slice); line += 64)
    __builtin_prefetch(first + line, 0, 2);  // locality 2: prefetcht1
#else
  (void)begin;
  (void)bytes;
  (void)part;
  (void)parts;
#endif
}

// Packs rows [0, rows) of x for the micro-kernels, as `packing` says (linear_microkernel.hpp):
//   F32               packed[k * packed_stride + r] = x[r * x_stride + k] for k < depth;
//   F32RoundedToBF16  the same values rounded to bf16 (round to nearest even) and widened back;
//   BF16Pairs         32-bit words packed[i * packed_stride + r] = bf16(x[r, 2i]) | bf16(x[r, 2i + 1]) << 16
//                     for i < ceil(depth / 2), the high half zero past the depth;
//   F32RoundedToInt8  q · s, each row quantized to int8 over the whole depth with its own scale s;
//   Int8Quads         32-bit words packed[i * packed_stride + r] holding the bytes q[r, 4i + j] + 128, j = 0..3
//                     (byte j = bits 8j..8j+7), 128 past the depth, for i < ceil(depth / 4); then the row
//                     scales, as floats, at packed[ceil(depth / 4) * packed_stride + r].
//   Int8SignedQuads   the same words with the bytes q[r, 4i + j] themselves (two's complement, 0 past the depth);
//                     then per 32-input block b the int32 -8 · Σ_{k in b} q[r, k] at
//                     packed[(ceil(depth / 4) + b) * packed_stride + r]; then the row scales, after those blocks.
inline std::int64_t int8_quads(std::int64_t depth) { return (depth + 3) / 4; }

// Floats one packed tile of `tile_rows` rows over `depth` inputs takes: at most depth words per row, + 2: a bf16
// pair past an odd depth, or an int8 tile's row scales and (signed quads) block offsets; AMX tiles two words per
// input of each of their 16 rows, the depth rounded up to 16.
inline std::int64_t packed_tile_floats(std::int64_t depth, std::int64_t tile_rows, RowPacking packing) {
  if (packing == RowPacking::BF16AmxTiles) return amx_groups(depth) * kAmxGroupWords;
  return tile_rows * (depth + 2);
}

// Words of a packed tile (laid out for `tile_rows` rows) before input `depth_begin` (a multiple of the packing's
// inputs per word; of 16 for AMX tiles).
inline std::int64_t packed_words_before(RowPacking packing, std::int64_t depth_begin, std::int64_t tile_rows) {
  switch (packing) {
    case RowPacking::BF16Pairs: return depth_begin / 2 * tile_rows;
    case RowPacking::Int8Quads:
    case RowPacking::Int8SignedQuads: return depth_begin / 4 * tile_rows;
    case RowPacking::BF16AmxTiles: return depth_begin / kAmxGroupInputs * kAmxGroupWords;
    default: return depth_begin * tile_rows;
  }
}

// The Int8Quads words of one row (destination[i · stride], i < int8_quads(depth)), each byte q + byte_offset (128:
// Int8Quads, 0: Int8SignedQuads); returns its scale. The scalar reference of pack_row_int8_quads_avx512
// (detail/linear_avx512.hpp), which pack_rows uses on x86.
inline float pack_row_int8_quads(const float* source, std::int64_t depth, std::uint32_t* destination,
                                 std::int64_t stride, int byte_offset = 128) {
  const float scale = quantization::activation_int8_scale(source, depth);
  for (std::int64_t k = 0; k < depth; k += 4) {
    std::uint32_t word = 0;
    for (std::int64_t j = 0; j < 4; ++j) {
      const int q = k + j < depth ? quantization::activation_int8_quantize(source[k + j], scale) : 0;
      word |= (static_cast<std::uint32_t>(q + byte_offset) & 0xffu) << (8 * j);
    }
    destination[k / 4 * stride] = word;
  }
  return scale;
}

// Int8SignedQuads: from a row's signed quads (quads[i · stride]), each 32-input block's -8 · Σ q
// (offsets[b · stride]): what the int4 dot-product kernel's sums start from, to cancel the + 8 its unsigned
// weights carry (detail/linear_avx512.hpp: linear_micro_kernel_avx512_int4_dot).
inline void int4_block_offsets(const std::uint32_t* quads, std::int64_t depth, std::int64_t stride,
                               std::int32_t* offsets) {
  constexpr std::int64_t kQuadsPerBlock = kInt4BlockSize / 4;
  const std::int64_t quad_count = int8_quads(depth);
  for (std::int64_t first = 0; first < quad_count; first += kQuadsPerBlock) {
    std::int32_t sum = 0;
    for (std::int64_t i = first; i < std::min(quad_count, first + kQuadsPerBlock); ++i)
      for (int j = 0; j < 4; ++j) sum += static_cast<std::int8_t>(quads[i * stride] >> (8 * j) & 0xffu);
    offsets[first / kQuadsPerBlock * stride] = -kInt4Offset * sum;
  }
}

// The BF16Pairs words of one row (destination[i · stride], i < ceil(depth / 2)). The scalar reference of
// pack_rows_bf16_pairs_avx512 (detail/linear_avx512.hpp), which pack_rows uses on x86.
inline void pack_row_bf16_pairs(const float* source, std::int64_t depth, std::uint32_t* destination,
                                std::int64_t stride) {
  for (std::int64_t k = 0; k < depth; k += 2) {
    const std::uint32_t even = f32_to_bf16(source[k]).bits;
    const std::uint32_t odd = k + 1 < depth ? f32_to_bf16(source[k + 1]).bits : 0u;
    destination[k / 2 * stride] = even | odd << 16;
  }
}

// `path`: the kernel set's, whose vector code packs int8 quads (so that a path forced with BLIP_KERNEL packs as a
// CPU with only that path would; every packer gives the same bits).
inline void pack_rows(const float* x, std::int64_t x_stride, std::int64_t rows, std::int64_t depth, float* packed,
                      std::int64_t packed_stride, RowPacking packing, KernelPath path) {
#if BLIP_X86_DISPATCH
  // Bf16 pairs come with the vdpbf16ps kernels, so with AVX-512: its packer gives the scalar one's bits, eight
  // rows at a time.
  if (packing == RowPacking::BF16Pairs) {
    pack_rows_bf16_pairs_avx512(x, x_stride, rows, depth, reinterpret_cast<std::uint32_t*>(packed), packed_stride);
    return;
  }
#endif
  if (packing == RowPacking::BF16AmxTiles) {  // always laid out for 16 rows (packed_stride)
    check(packed_stride == kAmxTileRows && rows <= kAmxTileRows, "linear: AMX tiles pack ", rows, " rows for ",
          packed_stride);
    pack_rows_bf16_amx(x, x_stride, rows, depth, reinterpret_cast<std::uint32_t*>(packed));
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* source = x + r * x_stride;
    switch (packing) {
      case RowPacking::F32: {
        float* destination = packed + r;
        for (std::int64_t k = 0; k < depth; ++k) destination[k * packed_stride] = source[k];
        break;
      }
      case RowPacking::F32RoundedToBF16: {
        float* destination = packed + r;
        for (std::int64_t k = 0; k < depth; ++k) destination[k * packed_stride] = bf16_to_f32(f32_to_bf16(source[k]));
        break;
      }
      case RowPacking::BF16Pairs:
        // The buffer is raw storage (ScratchBuffer), written and read as 32-bit words.
        pack_row_bf16_pairs(source, depth, reinterpret_cast<std::uint32_t*>(packed) + r, packed_stride);
        break;
      case RowPacking::BF16AmxTiles: break;  // above
      case RowPacking::F32RoundedToInt8: {
        const float scale = quantization::activation_int8_scale(source, depth);
        float* destination = packed + r;
        for (std::int64_t k = 0; k < depth; ++k)
          destination[k * packed_stride] = quantization::activation_int8_quantize(source[k], scale) * scale;
        break;
      }
      case RowPacking::Int8Quads:
      case RowPacking::Int8SignedQuads: {
        const bool signed_bytes = packing == RowPacking::Int8SignedQuads;
        std::uint32_t* destination = reinterpret_cast<std::uint32_t*>(packed) + r;
        const int byte_offset = signed_bytes ? 0 : 128;
        // Int8 quads come with the integer kernels of the AVX-512 and avx2 paths, whose packers give the scalar
        // one's bits, faster (scalar, quantizing took about a quarter of the AVX-512 kernel's time at ViT shapes).
#if BLIP_X86_DISPATCH
        const float scale =
            is_avx512_path(path) ? pack_row_int8_quads_avx512(source, depth, destination, packed_stride, byte_offset)
            : path == KernelPath::Avx2
                ? pack_row_int8_quads_avx2(source, depth, destination, packed_stride, byte_offset)
                : pack_row_int8_quads(source, depth, destination, packed_stride, byte_offset);
#else
        (void)path;
        const float scale = pack_row_int8_quads(source, depth, destination, packed_stride, byte_offset);
#endif
        std::int64_t scale_word = int8_quads(depth);
        if (signed_bytes) {
          int4_block_offsets(destination, depth, packed_stride,
                             reinterpret_cast<std::int32_t*>(packed + scale_word * packed_stride) + r);
          scale_word += (depth + kInt4BlockSize - 1) / kInt4BlockSize;
        }
        packed[scale_word * packed_stride + r] = scale;
        break;
      }
    }
  }
}

// The micro-kernels of `path` for weights packed in `precision`, multiplied by activations in `activations`
// (bf16 with bf16 weights, int8 with int8 or int4 weights): the dot-product instructions where the CPU has them
// (AMX tiles on the amx path, vdpbf16ps on the avx512-bf16 path; vpdpbusd on the AVX-512 paths with VNNI and
// VBMI; on the avx2 path AVX-VNNI's vpdpbusd, or vpmaddubsw without it), else the f32 kernels on rounded or
// quantized rows (bf16 without vdpbf16ps; int8 on AVX-512 without VNNI or VBMI, and on the portable path).
inline MicroKernelSet linear_micro_kernels(KernelPath path, WeightPrecision precision = WeightPrecision::F32,
                                           ActivationPrecision activations = ActivationPrecision::F32) {
  check(kernel_path_supported(path), "linear: kernel path '", kernel_path_name(path),
        "' is not supported by this CPU or build");
  const bool bf16_activations = precision == WeightPrecision::BF16 && activations == ActivationPrecision::BF16;
  const bool int8_activations = activations == ActivationPrecision::Int8 &&
                                (precision == WeightPrecision::Int8 || precision == WeightPrecision::Int4);
  MicroKernelSet kernels;
  switch (path) {
#if BLIP_X86_DISPATCH
    case KernelPath::Amx:
#if BLIP_AMX_HARDWARE
      if (bf16_activations) return linear_micro_kernels_amx_bf16();
#endif
      [[fallthrough]];  // every other kernel of amx is avx512-bf16's
    case KernelPath::Avx512Bf16:
      if (bf16_activations) return linear_micro_kernels_avx512_bf16_dot();
      [[fallthrough]];  // every other kernel of avx512-bf16 is avx512's
    case KernelPath::Avx512:
      if (int8_activations && avx512_int8_dot_supported())
        return precision == WeightPrecision::Int8 ? linear_micro_kernels_avx512_int8_dot()
                                                  : linear_micro_kernels_avx512_int4_dot();
      kernels = linear_micro_kernels_avx512(precision);
      break;
    case KernelPath::Avx2:
      if (int8_activations) return linear_micro_kernels_avx2_integer_for_cpu(precision);
      kernels = linear_micro_kernels_avx2(precision);
      break;
#endif
    default: kernels = linear_micro_kernels_portable(precision); break;
  }
  if (bf16_activations) kernels.row_packing = RowPacking::F32RoundedToBF16;
  if (int8_activations) kernels.row_packing = RowPacking::F32RoundedToInt8;
  return kernels;
}

// Threads worth using for `multiply_adds` of work (1 inside a parallel region:
// a caller that parallelises over requests already uses the cores).
inline int linear_threads(double multiply_adds, std::int64_t work_items) {
  int threads = num_threads();
#ifdef _OPENMP
  if (omp_in_parallel()) threads = 1;
#endif
  threads = static_cast<int>(std::min<double>(threads, std::max(1.0, multiply_adds / kMinMultiplyAddsPerThread)));
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, work_items)));
}

// Work items per thread: threads take the next item when done (dynamic
// schedule), so an unequal split or a thread the OS delays costs at most one item.
inline constexpr std::int64_t kItemsPerThread = 4;
// Decode (linear_streamed_panels): fewer, longer items, because each item is a stream of its own that the
// prefetchers must pick up again. Zen 5, 2 threads, the driver's loop with 2, 4 and 8 items per thread interleaved
// call by call (1, 8 and 12 rows; bf16 x bf16 and int8 x int8; 2,560 -> 2,560 and 2,560 -> 10,240): 2 was the
// fastest or within 1% everywhere, up to 9% faster than 8 at 2,560 x 2,560 int8, and 16 or 32 were slower still
// (docs/kernels.md, session 22). A thread the OS delays still costs at most one item: a quarter of the call.
inline constexpr std::int64_t kDecodeItemsPerThread = 2;

inline std::int64_t panels_per_item(std::int64_t panel_count, int threads, std::int64_t items_per_thread) {
  return std::max<std::int64_t>(1, panel_count / (items_per_thread * threads));
}

// Where an int8 tile's row scales and block offsets sit after its quads (pack_rows), for the drivers.
struct IntegerRowLayout {
  std::int64_t scales_at = -1;         // floats from the tile's start to its row scales; -1: not int8 quads
  std::int64_t block_offsets_at = -1;  // floats from the tile's start to its block offsets; -1: none
  std::int64_t tile_rows = 0;
  // Sets micro.row_scales and micro.row_block_offsets for the tile at `packed_tile` from input depth_begin on
  // (a multiple of 32 with block offsets).
  void point(MicroTile& micro, const float* packed_tile, std::int64_t depth_begin) const {
    micro.row_scales = scales_at >= 0 ? packed_tile + scales_at : nullptr;
    micro.row_block_offsets =
        block_offsets_at >= 0
            ? reinterpret_cast<const std::int32_t*>(packed_tile + block_offsets_at) + depth_begin / kInt4BlockSize * tile_rows
            : nullptr;
  }
};

inline IntegerRowLayout integer_row_layout(RowPacking packing, std::int64_t depth, std::int64_t tile_rows) {
  IntegerRowLayout layout;
  layout.tile_rows = tile_rows;
  if (packing == RowPacking::Int8Quads) layout.scales_at = int8_quads(depth) * tile_rows;
  if (packing == RowPacking::Int8SignedQuads) {
    layout.block_offsets_at = int8_quads(depth) * tile_rows;
    layout.scales_at = (int8_quads(depth) + (depth + kInt4BlockSize - 1) / kInt4BlockSize) * tile_rows;
  }
  return layout;
}

// The most rows of any micro-kernel set's tile.
inline constexpr int kMaxTileRows = 12;

// Runs `kernel` (`tile_rows` rows) for one tile over inputs [depth_begin, depth_begin + depth_count) of weight
// panel `panel`. `micro` comes with rows (at depth_begin), row_stride, out, columns, bias and int8 scale set.
// `resume`: the tile continues the raw sums the previous depth block left in out; `finish`: this block ends the
// depth, so the outputs are finished (MicroTile). Int4 panels also get the scales of their blocks from depth_begin
// on, which is then a multiple of 32 (weight_formats.hpp).
inline void run_tile(MicroKernel kernel, MicroTile& micro, std::int64_t tile_rows, const LinearWeights& weights,
                     std::int64_t panel, std::int64_t depth_begin, std::int64_t depth_count, bool resume, bool finish) {
  if (micro.row_scales != nullptr && micro.row_block_offsets == nullptr && depth_count > kInt8QuadMaxDepth) {
    // Int8 quads: int32 sums hold kInt8QuadMaxDepth inputs at most (linear_avx512.hpp); longer depths go in pieces,
    // each finished (scaled) and added in f32: the first, with the bias, into out, the others through a scratch
    // tile. Both drivers give such a layer to one call over its whole depth (never resumed), so a row's result
    // still does not depend on the driver. (Signed quads for int4 weights sum 32 inputs at a time.)
    check(!resume && finish && tile_rows <= kMaxTileRows, "linear: int8 quads over ", depth_count,
          " inputs must be one call over the whole depth");
    MicroTile piece = micro;
    alignas(64) float piece_out[kMaxTileRows * kPanelWidth];
    piece.out = piece_out;
    piece.out_stride = kPanelWidth;
    piece.bias = nullptr;
    run_tile(kernel, micro, tile_rows, weights, panel, depth_begin, kInt8QuadMaxDepth, false, true);
    for (std::int64_t begin = kInt8QuadMaxDepth; begin < depth_count; begin += kInt8QuadMaxDepth) {
      piece.rows = micro.rows + begin / 4 * micro.row_stride;
      run_tile(kernel, piece, tile_rows, weights, panel, depth_begin + begin,
               std::min(kInt8QuadMaxDepth, depth_count - begin), false, true);
      for (std::int64_t r = 0; r < tile_rows; ++r)
        for (int c = 0; c < micro.columns; ++c) micro.out[r * micro.out_stride + c] += piece_out[r * kPanelWidth + c];
    }
    return;
  }
  micro.panel = weights.panel_at(panel, depth_begin);
  micro.depth = depth_count;
  // Int8 quads over the whole depth (every decode tile): the panel's weight sums as packed, so the kernel does
  // not sum them again. (A depth block sums its own.)
  const std::int32_t* weight_sums = weights.int8_weight_sums();
  micro.weight_sums = weight_sums != nullptr && micro.row_scales != nullptr && micro.row_block_offsets == nullptr &&
                              depth_begin == 0 && depth_count == weights.in_features()
                          ? weight_sums + panel * kPanelWidth
                          : nullptr;
  micro.resume = resume;
  micro.finish = finish;
  micro.block_scales = weights.precision() == WeightPrecision::Int4
                           ? weights.int4_block_scales(panel, depth_begin / kInt4BlockSize)
                           : nullptr;
  kernel(micro);
}

// Rows up to which Linear streams each weight panel once, whole (decode: 1 token × up to 12 beams, or a
// few images' beams). Above it the many-rows driver blocks the depth instead.
inline constexpr std::int64_t kMaxStreamedRows = 12;

// Rows from which a decode step prefetches its weights into L2 (prefetcht2) rather than non-temporally into L1
// (prefetchnta); kNeverPrefetchToL2: never. Chosen per microarchitecture, because the two measured oppositely
// (docs/kernels.md, "Decode prefetch into L2"; each the median of paired ratios with both instructions interleaved
// in one process): on Zen 4 (AMD family 0x19 with AVX-512) L2 was up to 1.36x faster from 4 rows on and never
// measurably slower; on Zen 5 (family 0x1a) it was 4-16% slower at 4-12 rows for int8 and bf16. Elsewhere (Zen 3,
// Intel) it has not been measured, so those keep prefetchnta, the rule every CPU had before session 16.
inline constexpr std::int64_t kNeverPrefetchToL2 = std::numeric_limits<std::int64_t>::max();

inline std::int64_t prefetch_to_l2_min_rows_for(const CpuModel& cpu, bool avx512) {
  return cpu.amd && cpu.family == 0x19 && avx512 ? 4 : kNeverPrefetchToL2;
}

inline std::int64_t prefetch_to_l2_min_rows() {
  static const std::int64_t rows =
      prefetch_to_l2_min_rows_for(cpu_model(), kernel_path_supported(KernelPath::Avx512));
  return rows;
}

// Decode: few rows. No depth blocking: each weight panel is streamed from memory once, front to back, and
// every row tile multiplies it in turn. AVX-512's tile holds all 12 rows; AVX2's holds 6 and the portable
// kernel's 3, so there the second and later tiles read the panel again from L1/L2 (a panel is in × 32
// weights: 320 KiB for 2560 f32 inputs), not from memory. (Given to the depth-blocked driver instead, 8 rows
// on AVX2 ran at a quarter of the bandwidth.) How the rows are split into tiles is the kernel set's choice
// (DecodeTiles: full tiles first, or balanced for the avx2 path's int4 tiles). Each (row, output) sum runs over
// the whole depth in one call, as with one tile, so a row's results do not depend on how many rows come with it.
// The threads take contiguous runs of panels (a few MB each).
//
// Several layers over the same input (`products`: attention's q, k and v projections) go through one call: the
// rows are packed once, and their panels are one list that the threads share out, so the three short streams
// are one long one (one parallel region, one end to drain instead of three). Each output is computed exactly as
// in a call of its own.
inline void linear_streamed_panels(const MicroKernelSet& kernels, const float* x, std::int64_t x_stride,
                                   std::int64_t rows, const LinearProduct* products, std::size_t product_count) {
  const std::int64_t depth = products[0].weights->in_features();
  std::int64_t panel_count = 0;
  double multiply_adds = 0;
  for (std::size_t i = 0; i < product_count; ++i) {
    panel_count += products[i].weights->panel_count();
    multiply_adds += static_cast<double>(rows) * products[i].weights->out_features() * depth;
  }
  const DecodeTiles tiles(kernels, rows);
  const std::int64_t packed_stride = kernels.rows_per_packed_tile(tiles.largest);
  // One f32 row is already laid out as a packed tile; anything else is packed here, tile after tile, by the
  // calling thread (≤ 12 × in floats, microseconds), so the threads never wait for each other.
  const float* packed_rows = x;
  std::int64_t row_stride = 1, packed_tile_size = 0;
  if (rows > 1 || kernels.row_packing != RowPacking::F32) {
    packed_tile_size = packed_tile_floats(depth, packed_stride, kernels.row_packing);
    float* packed = linear_packing_scratch().reserve(static_cast<std::size_t>(tiles.count * packed_tile_size));
    for (std::int64_t tile = 0; tile < tiles.count; ++tile)
      pack_rows(x + tiles.first_row(tile) * x_stride, x_stride, tiles.rows_of(tile), depth,
                packed + tile * packed_tile_size, packed_stride, kernels.row_packing, kernels.path);
    packed_rows = packed;
    row_stride = packed_stride;
  }
  const IntegerRowLayout integer_rows = integer_row_layout(kernels.row_packing, depth, packed_stride);
  const int threads = linear_threads(multiply_adds, panel_count);
  const std::int64_t item_panels = panels_per_item(panel_count, threads, kDecodeItemsPerThread);
  const std::int64_t items = (panel_count + item_panels - 1) / item_panels;
  const std::int64_t prefetch_l2_from = prefetch_to_l2_min_rows();

#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
#endif
  for (std::int64_t item = 0; item < items; ++item) {
    MicroTile micro;
    micro.row_stride = row_stride;
    micro.prefetch_weights = rows >= prefetch_l2_from ? WeightPrefetch::ToL2 : WeightPrefetch::NonTemporal;
    // This item's panels [first, last) of the products' panels in turn: each product's part of that range.
    const std::int64_t first = item * item_panels, last = std::min(panel_count, first + item_panels);
    std::int64_t product_first = 0;  // where the product's panels start in the list
    for (std::size_t product = 0; product < product_count && product_first < last; ++product) {
      const LinearWeights& weights = *products[product].weights;
      const std::int64_t begin = std::max(first, product_first) - product_first;
      const std::int64_t end = std::min(last, product_first + weights.panel_count()) - product_first;
      product_first += weights.panel_count();
      micro.out_stride = products[product].y_stride;
      for (std::int64_t panel = begin; panel < end; ++panel) {
        const std::int64_t first_output = panel * kPanelWidth;
        micro.columns = static_cast<int>(std::min<std::int64_t>(kPanelWidth, weights.out_features() - first_output));
        micro.bias = weights.packed_bias() ? weights.packed_bias() + first_output : nullptr;
        micro.scale = weights.packed_scales() ? weights.packed_scales() + first_output : nullptr;
        for (std::int64_t tile = 0; tile < tiles.count; ++tile) {
          micro.rows = packed_rows + tile * packed_tile_size;
          integer_rows.point(micro, micro.rows, 0);
          micro.out = products[product].y + tiles.first_row(tile) * micro.out_stride + first_output;
          const std::int64_t rows_here = tiles.rows_of(tile);
          run_tile(kernels.by_rows[rows_here - 1], micro, rows_here, weights, panel, 0, depth, false, true);
        }
      }
    }
  }
}

inline void linear_streamed_panels(const MicroKernelSet& kernels, const float* x, std::int64_t x_stride,
                                   std::int64_t rows, const LinearWeights& weights, float* y, std::int64_t y_stride) {
  const LinearProduct product{&weights, y, y_stride};
  linear_streamed_panels(kernels, x, x_stride, rows, &product, 1);
}

// Prefill: rows in blocks of ~kMaxRowBlock; each row block is packed once
// (all depth) into one of two buffers, then its work items (runs of weight
// panels × all row tiles) are shared out dynamically. Inside an item, per depth
// block of ≤ kMaxDepthBlock: the row block's packed slice (~300 KiB) stays in
// L2 across the item's panels, and each panel's depth block (48 KiB) in L1/L2
// across the row tiles; a tile's sums go to y raw between depth blocks and are
// finished (scales, bias) by the last one. Each call asks for a slice of what
// comes next into L2 (the next panel's block, the next row tile's rows). Two
// buffers let a thread pack the next row block while the other still computes:
// one barrier per row block.
inline void linear_many_rows(const MicroKernelSet& kernels, const float* x, std::int64_t x_stride, std::int64_t rows,
                             const LinearWeights& weights, float* y, std::int64_t y_stride) {
  const std::int64_t depth = weights.in_features(), outputs = weights.out_features();
  const std::int64_t panel_count = weights.panel_count();
  const std::int64_t tile_rows = kernels.rows_per_prefill_tile();
  // bf16 pairs / int8 quads / AMX tiles: every depth block but the last starts and ends at an even k / a multiple
  // of 4 k / of 16 k, where a packed k-pair / k-quad / group of 16 k begins (packed_words_before).
  const bool pairs = kernels.row_packing == RowPacking::BF16Pairs;
  const bool quads = kernels.row_packing == RowPacking::Int8Quads || kernels.row_packing == RowPacking::Int8SignedQuads;
  const bool amx_tiles = kernels.row_packing == RowPacking::BF16AmxTiles;
  const std::int64_t packing_granule = pairs ? 2 : quads ? 4 : amx_tiles ? kAmxGroupInputs : 1;
  // Int4: depth blocks of whole scale blocks.
  const std::int64_t depth_granule = weights.precision() == WeightPrecision::Int4 ? kInt4BlockSize : packing_granule;
  // Each depth block resumes the sums of the one before (MicroTile::resume), so a row's outputs are the same
  // operations as in the streamed driver's one call over the whole depth. Int8 quads deeper than an int32 sum
  // holds are the exception: one call each, which sums them in pieces (run_tile).
  const std::int64_t depth_block = kernels.row_packing == RowPacking::Int8Quads && depth > kInt8QuadMaxDepth
                                       ? depth
                                       : balanced_block(depth, kMaxDepthBlock, depth_granule);
  const std::int64_t row_block = balanced_block(rows, kMaxRowBlock, tile_rows);
  const std::int64_t tiles_per_block = (row_block + tile_rows - 1) / tile_rows;
  const std::int64_t packed_stride = kernels.rows_per_packed_tile(tile_rows);
  const std::int64_t packed_tile_size = packed_tile_floats(depth, packed_stride, kernels.row_packing);
  const IntegerRowLayout integer_rows = integer_row_layout(kernels.row_packing, depth, packed_stride);
  const std::int64_t buffer_size = tiles_per_block * packed_tile_size;
  // With few row tiles per panel the next panel is needed soon after the request, and the hardware prefetchers
  // keep up as they do in decode: there the requests only cost (BERT's 40 rows x 768 -> 3,072: 0.93-0.97x with
  // them, every format).
  const bool prefetch_ahead = tiles_per_block >= kMinRowTilesToPrefetch;
  // A row block's packed rows that fill at most 3/4 of the L2 stay there from one of a thread's items to the next
  // (beside an item's outputs and two panels' blocks); larger ones are asked for again by every item.
  const bool rows_stay_in_l2 = tiles_per_block * packed_words_before(kernels.row_packing, depth, packed_stride) *
                                   static_cast<std::int64_t>(sizeof(float)) <=
                               l2_cache_bytes() / 4 * 3;
  float* buffers = linear_packing_scratch().reserve(static_cast<std::size_t>(2 * buffer_size));
  const float* bias = weights.packed_bias();
  const float* scales = weights.packed_scales();
  const std::int64_t row_blocks = (rows + row_block - 1) / row_block;
  const int threads = linear_threads(static_cast<double>(rows) * outputs * depth, panel_count * tiles_per_block);
  const std::int64_t item_panels = panels_per_item(panel_count, threads, kItemsPerThread);
  const std::int64_t items = (panel_count + item_panels - 1) / item_panels;

#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
  {
#ifdef _OPENMP
    const std::int64_t thread = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const std::int64_t thread = 0, team = 1;
#endif
    for (std::int64_t block = 0; block < row_blocks; ++block) {
      const std::int64_t row_begin = block * row_block;
      const std::int64_t block_rows = std::min(row_block, rows - row_begin);
      const std::int64_t block_tiles = (block_rows + tile_rows - 1) / tile_rows;
      float* packed = buffers + (block % 2) * buffer_size;
      std::int64_t items_done_in_block = 0;
      for (std::int64_t tile = thread; tile < block_tiles; tile += team) {
        const std::int64_t first_row = row_begin + tile * tile_rows;
        pack_rows(x + first_row * x_stride, x_stride, std::min(tile_rows, rows - first_row), depth,
                  packed + tile * packed_tile_size, packed_stride, kernels.row_packing, kernels.path);
      }
      // Every thread has finished packing this block, and (before packing it)
      // its items of the previous block, whose buffer the next block reuses.
#ifdef _OPENMP
#pragma omp barrier
#pragma omp for schedule(dynamic, 1) nowait
#endif
      for (std::int64_t item = 0; item < items; ++item) {
        // This thread's first item of the row block reads its packed rows from L3 (another thread may have packed
        // them); later items find them in L2 if the block is small enough to stay there.
        const bool prefetch_rows = prefetch_ahead && (items_done_in_block == 0 || !rows_stay_in_l2);
        ++items_done_in_block;
        const std::int64_t first_panel = item * item_panels;
        const std::int64_t last_panel = std::min(panel_count, first_panel + item_panels);
        MicroTile micro;
        micro.row_stride = packed_stride;
        micro.out_stride = y_stride;
        for (std::int64_t depth_begin = 0; depth_begin < depth; depth_begin += depth_block) {
          const std::int64_t depth_count = std::min(depth_block, depth - depth_begin);
          // Where this depth block starts in each packed row tile, and its bytes there.
          const std::int64_t rows_words_before = packed_words_before(kernels.row_packing, depth_begin, packed_stride);
          const std::int64_t tile_block_bytes =
              (packed_words_before(kernels.row_packing, depth_begin + depth_count, packed_stride) - rows_words_before) *
              static_cast<std::int64_t>(sizeof(float));
          for (std::int64_t panel = first_panel; panel < last_panel; ++panel) {
            // The weights this item multiplies after this panel: the next panel's same depth block, or, after
            // the item's last panel, its first panel's next depth block (none after the last).
            const bool next_in_block = panel + 1 < last_panel;
            const std::int64_t next_depth_begin = next_in_block ? depth_begin : depth_begin + depth_block;
            const void* next_weights =
                prefetch_ahead && next_depth_begin < depth
                    ? weights.panel_at(next_in_block ? panel + 1 : first_panel, next_depth_begin)
                    : nullptr;
            const std::int64_t next_weight_bytes =
                next_weights ? std::min(depth_block, depth - next_depth_begin) * weights.panel_row_bytes() : 0;
            const std::int64_t first_output = panel * kPanelWidth;
            micro.columns = static_cast<int>(std::min<std::int64_t>(kPanelWidth, outputs - first_output));
            micro.bias = bias ? bias + first_output : nullptr;
            micro.scale = scales ? scales + first_output : nullptr;
            for (std::int64_t tile = 0; tile < block_tiles; ++tile) {
              const std::int64_t first_row = row_begin + tile * tile_rows;
              const float* packed_tile = packed + tile * packed_tile_size;
              micro.rows = packed_tile + rows_words_before;
              integer_rows.point(micro, packed_tile, depth_begin);
              micro.out = y + first_row * y_stride + first_output;
              const std::int64_t rows_here = std::min(tile_rows, rows - first_row);
              // What the next calls read first from L3 or memory, asked into L2 while this one computes (the
              // weights were packed at load, so unlike a BLAS, which packs them per call, nothing else brings
              // them near): a slice of the next panel's block per row tile, and, on the item's first panel of a
              // depth block, the next row tile's slice of it. A panel's block is 12-48 KiB, and without this
              // the first row tile after each change of panel waited for it: one 6-row AVX2 tile cycling over
              // 96 panels of 768 inputs ran at 0.82-0.85x its speed over 12, the AVX-512 tile over 192 panels of
              // 1408 at 0.81x. Measured in full GEMMs: docs/kernels.md, session 25.
              if (next_weights != nullptr) prefetch_part_to_l2(next_weights, next_weight_bytes, tile, block_tiles);
              if (prefetch_rows && panel == first_panel && tile + 1 < block_tiles)
                prefetch_part_to_l2(packed_tile + packed_tile_size + rows_words_before, tile_block_bytes, 0, 1);
              run_tile(kernels.by_rows[rows_here - 1], micro, rows_here, weights, panel, depth_begin, depth_count,
                       depth_begin > 0, depth_begin + depth_count == depth);
            }
          }
        }
      }
    }
  }
}

// The threaded driver around one ISA's micro-kernels.
inline void linear_blocked(const MicroKernelSet& kernels, const float* x, std::int64_t x_stride, std::int64_t rows,
                           const LinearWeights& weights, float* y, std::int64_t y_stride) {
  check(kernels.precision == weights.precision(), "linear: ", weight_precision_name(kernels.precision),
        " micro-kernels given ", weight_precision_name(weights.precision()), " weights");
  const ActivationPrecision kernel_activations =
      kernels.row_packing == RowPacking::F32                                                   ? ActivationPrecision::F32
      : kernels.row_packing == RowPacking::F32RoundedToInt8 || kernels.row_packing == RowPacking::Int8Quads ||
              kernels.row_packing == RowPacking::Int8SignedQuads
          ? ActivationPrecision::Int8
          : ActivationPrecision::BF16;
  check(kernel_activations == weights.activation_precision(), "linear: micro-kernels for ",
        activation_precision_name(kernel_activations), " activations given a layer with ",
        activation_precision_name(weights.activation_precision()), " activations");
  if (rows == 0) return;
  if (rows <= std::max<std::int64_t>(kernels.max_rows, kMaxStreamedRows))
    linear_streamed_panels(kernels, x, x_stride, rows, weights, y, y_stride);
  else
    linear_many_rows(kernels, x, x_stride, rows, weights, y, y_stride);
}

inline void check_linear_arguments(const float* x, std::int64_t x_stride, std::int64_t rows,
                                   const LinearWeights& weights, const float* y, std::int64_t y_stride) {
  check(!weights.empty(), "linear: LinearWeights used before LinearWeights::prepare");
  check(rows >= 0, "linear: negative row count ", rows);
  check(x_stride >= weights.in_features(), "linear: x_stride ", x_stride, " is smaller than in_features ",
        weights.in_features());
  check(y_stride >= weights.out_features(), "linear: y_stride ", y_stride, " is smaller than out_features ",
        weights.out_features());
  check(rows == 0 || (x != nullptr && y != nullptr), "linear: null x or y with ", rows, " rows");
}

// linear() with an explicitly chosen instruction-set path (tests, benchmarks).
inline void linear_using(KernelPath path, const float* x, std::int64_t x_stride, std::int64_t rows,
                         const LinearWeights& weights, float* y, std::int64_t y_stride) {
  check_linear_arguments(x, x_stride, rows, weights, y, y_stride);
  linear_blocked(linear_micro_kernels(path, weights.precision(), weights.activation_precision()), x, x_stride, rows,
                 weights, y, y_stride);
}

// linear_shared_input with an explicitly chosen instruction-set path (tests, benchmarks).
inline void linear_shared_input_using(KernelPath path, const float* x, std::int64_t x_stride, std::int64_t rows,
                                      const LinearProduct* products, std::size_t product_count) {
  check(product_count > 0, "linear_shared_input: no layers given");
  for (std::size_t i = 0; i < product_count; ++i) {
    check(products[i].weights != nullptr, "linear_shared_input: layer ", i, " has no weights");
    check_linear_arguments(x, x_stride, rows, *products[i].weights, products[i].y, products[i].y_stride);
  }
  if (rows == 0) return;
  // One streamed call needs one kernel set and one depth: the same in_features, weight and activation precision.
  const LinearWeights& first = *products[0].weights;
  bool together = rows <= kMaxStreamedRows && product_count > 1;
  for (std::size_t i = 1; i < product_count && together; ++i) {
    const LinearWeights& other = *products[i].weights;
    together = other.in_features() == first.in_features() && other.precision() == first.precision() &&
               other.activation_precision() == first.activation_precision();
  }
  if (!together) {
    for (std::size_t i = 0; i < product_count; ++i)
      linear_using(path, x, x_stride, rows, *products[i].weights, products[i].y, products[i].y_stride);
    return;
  }
  linear_streamed_panels(linear_micro_kernels(path, first.precision(), first.activation_precision()), x, x_stride,
                         rows, products, product_count);
}

inline void check_linear_shapes(const Shape& x, const LinearWeights& weights, const Shape& y) {
  check(!weights.empty(), "linear: LinearWeights used before LinearWeights::prepare");
  check(x.rank() >= 1 && x.dim(-1) == weights.in_features(), "linear: input x has shape ", x,
        ", expected [..., ", weights.in_features(), "] (in_features)");
  bool leading_match = y.rank() == x.rank() && y.dim(-1) == weights.out_features();
  for (int axis = 0; leading_match && axis + 1 < x.rank(); ++axis) leading_match = x[axis] == y[axis];
  if (!leading_match) {
    Shape expected;
    for (int axis = 0; axis + 1 < x.rank(); ++axis) expected.push_back(x[axis]);
    expected.push_back(weights.out_features());
    fail("linear: output y has shape ", y, ", expected ", expected, " for input ", x);
  }
}

}  // namespace detail

// y[r, :] = x[r, :] · Wᵀ + b for r in [0, rows); x row r starts at x + r*x_stride,
// y row r at y + r*y_stride (strides in floats). x and y must not overlap.
inline void linear(const float* x, std::int64_t x_stride, std::int64_t rows, const LinearWeights& weights, float* y,
                   std::int64_t y_stride) {
  detail::linear_using(active_kernel_path(), x, x_stride, rows, weights, y, y_stride);
}

// Several layers of the same input, e.g. attention's q, k and v projections: y_i = x · W_iᵀ + b_i for each
// LinearProduct {&W_i, y_i, y_i_stride}, the same values as a linear() call for each. A decode step (rows ≤ 12)
// with layers of one precision and depth streams all their panels in one call: the rows are packed once and the
// threads share one list of panels, instead of three short calls each starting and draining on its own (a
// 2,560 x 2,560 bf16 layer alone streams 15-20% slower than one three times as wide; docs/kernels.md, session 22).
// Otherwise, one call per layer.
inline void linear_shared_input(const float* x, std::int64_t x_stride, std::int64_t rows,
                                std::initializer_list<LinearProduct> products) {
  detail::linear_shared_input_using(active_kernel_path(), x, x_stride, rows, products.begin(), products.size());
}

// x [..., in] -> y [..., out] (same leading dimensions).
inline void linear(Tensor<const float> x, const LinearWeights& weights, Tensor<float> y) {
  detail::check_linear_shapes(x.shape(), weights, y.shape());
  const std::int64_t in = weights.in_features(), out = weights.out_features();
  linear(x.data(), in, x.numel() / in, weights, y.data(), out);
}

// The reference: plain loops over the weight as the kernels see it (the
// stored weight in its precision, weight_value) and the input as the layer
// rounds it (bf16, or int8 q · scale), accumulated in double, so its own rounding
// error is negligible next to the f32 kernels'.
inline void linear_naive(const float* x, std::int64_t x_stride, std::int64_t rows, const LinearWeights& weights,
                         float* y, std::int64_t y_stride) {
  detail::check_linear_arguments(x, x_stride, rows, weights, y, y_stride);
  const std::int64_t in = weights.in_features(), out = weights.out_features();
  const Tensor<float> unpacked = weights.unpacked_weight();
  const float* weight = unpacked.data();
  const float* bias = weights.bias().data();
  const ActivationPrecision activations = weights.activation_precision();
  std::vector<double> input(static_cast<std::size_t>(in));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float int8_scale =
        activations == ActivationPrecision::Int8 ? quantization::activation_int8_scale(x + r * x_stride, in) : 0.0f;
    for (std::int64_t k = 0; k < in; ++k) {
      const float value = x[r * x_stride + k];
      input[static_cast<std::size_t>(k)] =
          activations == ActivationPrecision::BF16   ? bf16_to_f32(f32_to_bf16(value))
          : activations == ActivationPrecision::Int8 ? quantization::activation_int8_quantize(value, int8_scale) *
                                                           static_cast<double>(int8_scale)
                                                     : value;
    }
    for (std::int64_t o = 0; o < out; ++o) {
      double sum = bias ? static_cast<double>(bias[o]) : 0.0;
      for (std::int64_t k = 0; k < in; ++k)
        sum += input[static_cast<std::size_t>(k)] * static_cast<double>(weight[o * in + k]);
      y[r * y_stride + o] = static_cast<float>(sum);
    }
  }
}

inline void linear_naive(Tensor<const float> x, const LinearWeights& weights, Tensor<float> y) {
  detail::check_linear_shapes(x.shape(), weights, y.shape());
  const std::int64_t in = weights.in_features(), out = weights.out_features();
  linear_naive(x.data(), in, x.numel() / in, weights, y.data(), out);
}

}  // namespace blip::kernels
