// blip/kernels/attention.hpp: multi-head scaled-dot-product attention over
// strided views of the heads, so that splitting and merging heads (HF's
// view + permute + contiguous) costs no copy.
//
// For every row r (a sequence of the batch), head h and query token i:
//   s_j   = scale · q·k_j  (+ position_bias[h, i, j] + additive mask)   for the keys j
//   p     = softmax(s)
//   out_i = Σ_j p_j · v_j
// with key / value row r / kv_group (beams of one image share its
// cross-attention keys and values): HF's eager float32 attention of the BLIP
// ViT and text models, the Q-Former, OPT and T5, up to rounding order (HF's
// BERT divides by √d where we multiply by 1/√d; OPT scales q before the
// product: a model wanting that exact rounding scales its q and passes scale 1).
//
// Masks, the way HF combines them:
// - additive_mask: [mask_rows, mask_query_tokens, key_tokens] (mask_query_tokens
//   is 1 for a padding mask broadcast over queries, or Tq), query row r reads
//   mask row r / mask_group; 0 keeps a key, a large negative number drops it
//   (BLIP/BERT use (1 - mask)·-10000, OPT and T5 finfo(float32).min).
// - position_bias (T5): [heads, Tq, key_tokens], shared by all rows, added as
//   (position_bias + mask) the way T5Attention adds `position_bias_masked`.
// - causal: key j is hidden from query i when j > i + causal_offset
//   (causal_offset = tokens already cached). A causally hidden key gets
//   causal_mask_value INSTEAD of its additive-mask value (not their sum),
//   because every HF model here builds ONE mask value for "padding or future":
//   BLIP text (1 - causal·padding)·-10000, OPT masked_fill(finfo.min),
//   T5 (1 - causal·padding)·finfo.min. Set causal_mask_value to the model's
//   value (-10000 for BLIP/BERT, the default lowest float for OPT/T5).
// - After adding the mask, scores are clamped to >= the lowest float, as OPT's
//   torch.max(weights + mask, finfo.min): a no-op unless the sum overflows to
//   -inf, so a row with every key masked never yields NaN. Such a row gets
//   what HF's float32 arithmetic gives: with finfo.min every masked score
//   rounds to the same value and the weights are uniform; with -10000 the
//   scores survive to within ulp(10000) ≈ 1e-3 and the softmax is over those.
//
// Layout of a HeadsView: element (row r, head h, token t, dim d) at
//   data[r·row_stride + h·head_stride + t·token_stride + d]
// (the head_dim values of one token and head are contiguous). Two helpers
// build views: heads_view over a projected [rows, tokens, heads·head_dim]
// buffer (token_stride = heads·head_dim, head_stride = head_dim, or a fused
// qkv buffer with token_stride 3·hidden), and head_major_view over a cache
// [rows, heads, capacity, head_dim].
//
// Implementation: one work item per (key row, head, block of at most 128
// query tokens), spread over OpenMP threads. With more than one query token
// (a prefill) both products run on Linear's micro-kernels for the active path:
// K and V are packed once per call into Linear's panel layout (f32, or bf16
// for bf16 products on a CPU with AVX512-BF16), and each item packs its
// queries, computes the score block Q·Kᵀ, applies the mask and the softmax
// row by row in a per-thread scratch buffer (grown once, then reused: no
// allocation per call once warm), packs the softmax weights and multiplies
// them by V straight into the output view (see "the products of a prefill"
// below). Decoding one token, Eigen's GEMVs do the two products on the views.
// When decoding (Tq = 1) with kv_group > 1, the kv_group query rows that share
// keys form one item (processed one after the other), so the shared
// keys/values come from memory once per group and then from that core's cache.
// The output may be the query view itself (each item reads its queries before
// writing the same positions). bf16 products (AttentionOptions::products,
// prefill only) multiply operands rounded to bf16 with f32 sums: by vdpbf16ps
// where the CPU has AVX512-BF16, elsewhere by the f32 kernels on the rounded
// values (the same operands, at about the cost of f32 attention).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/linear.hpp"
#include "blip/kernels/softmax.hpp"

namespace blip::kernels {

struct HeadsView {
  float* data = nullptr;
  std::int64_t rows = 0, heads = 0, tokens = 0, head_dim = 0;
  std::int64_t row_stride = 0, head_stride = 0, token_stride = 0;

  float* at(std::int64_t row, std::int64_t head, std::int64_t token) const {
    return data + row * row_stride + head * head_stride + token * token_stride;
  }
};

// View over a projected buffer [rows, tokens, heads·head_dim] (HF's
// `view(B, T, heads, head_dim)` before `permute(0, 2, 1, 3)`). token_stride
// defaults to heads·head_dim (pass 3·hidden for a fused qkv buffer, offset
// data by hidden / 2·hidden for k / v); row_stride defaults to tokens·token_stride.
inline HeadsView heads_view(float* data, std::int64_t rows, std::int64_t tokens, std::int64_t heads,
                            std::int64_t head_dim, std::int64_t token_stride = -1, std::int64_t row_stride = -1) {
  HeadsView view;
  view.data = data;
  view.rows = rows;
  view.heads = heads;
  view.tokens = tokens;
  view.head_dim = head_dim;
  view.token_stride = token_stride < 0 ? heads * head_dim : token_stride;
  view.head_stride = head_dim;
  view.row_stride = row_stride < 0 ? tokens * view.token_stride : row_stride;
  return view;
}

// View over the first `tokens` tokens of a head-major buffer
// [rows, heads, capacity, head_dim] (the KV caches' layout).
inline HeadsView head_major_view(float* data, std::int64_t rows, std::int64_t heads, std::int64_t capacity,
                                 std::int64_t head_dim, std::int64_t tokens) {
  HeadsView view;
  view.data = data;
  view.rows = rows;
  view.heads = heads;
  view.tokens = tokens;
  view.head_dim = head_dim;
  view.token_stride = head_dim;
  view.head_stride = capacity * head_dim;
  view.row_stride = heads * capacity * head_dim;
  return view;
}

struct AttentionOptions {
  // Multiplies q·k: 1/sqrt(head_dim) for BLIP / ViT / Q-Former / OPT, 1 for T5
  // (T5 folds it into its weights).
  float scale = 1.0f;
  // Query row r reads key/value row r / kv_group.
  std::int64_t kv_group = 1;
  // Optional additive mask [mask_rows, mask_query_tokens, key tokens] (see the
  // header comment); row r uses mask row r / mask_group. Consecutive
  // (row, query) mask lines are mask_key_stride floats apart (0: key tokens),
  // so a [rows, capacity] decode mask can be used while the cache fills.
  const float* additive_mask = nullptr;
  std::int64_t mask_group = 1;
  std::int64_t mask_query_tokens = 1;
  std::int64_t mask_key_stride = 0;
  // Optional [heads, Tq, key tokens] bias added to every row's scores (T5).
  const float* position_bias = nullptr;
  // Built-in causal mask: key j hidden from query i when j > i + causal_offset;
  // such keys get causal_mask_value in place of the additive mask.
  bool causal = false;
  std::int64_t causal_offset = 0;
  float causal_mask_value = std::numeric_limits<float>::lowest();
  // What the two products Q·Kᵀ and P·V multiply. BF16 (a model run with bf16
  // activations, as PyTorch runs its bf16 path): when more than one query
  // token is attended, q, k, the softmax weights and v are rounded to bf16 and
  // multiplied with f32 sums: by vdpbf16ps on CPUs with AVX512-BF16, else by
  // f32 kernels on the rounded values (the same operands on every CPU, as for
  // Linear). A one-token decode step stays f32: it is bound by reading the
  // cache, not by arithmetic. Scale, bias, mask and softmax are f32 either way.
  ActivationPrecision products = ActivationPrecision::F32;
};

namespace detail {

using RowMajorMatrixf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedConstMatrix = Eigen::Map<const RowMajorMatrixf, Eigen::Unaligned, Eigen::OuterStride<>>;
using StridedMatrix = Eigen::Map<RowMajorMatrixf, Eigen::Unaligned, Eigen::OuterStride<>>;

constexpr std::int64_t kAttentionQueryBlock = 128;
// Multiply-adds per thread before a parallel region pays for itself.
constexpr double kAttentionWorkPerThread = 3.0e4;

// Per-thread buffers, grown to the largest block seen and then reused: the
// scores (kScoreScratch) and, for a prefill, the block's packed rows
// (kPackedRowsScratch).
// Each grows at least twofold (and to 4096 floats at first), so a decoder
// whose keys grow by one token per step reallocates a handful of times per
// thread, not once per token.
enum ScratchSlot { kScoreScratch, kPackedRowsScratch };
template <ScratchSlot Slot>
inline float* attention_scratch(std::int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<std::int64_t>(buffer.size()) < floats) {
    buffer.resize(
        static_cast<std::size_t>(std::max<std::int64_t>({floats, 2 * static_cast<std::int64_t>(buffer.size()), 4096})));
  }
  return buffer.data();
}

inline void check_attention_arguments(const HeadsView& query, const HeadsView& key, const HeadsView& value,
                                      const AttentionOptions& options, const HeadsView& output) {
  check(query.data && key.data && value.data && output.data, "attention: a query/key/value/output view is null");
  check(options.kv_group >= 1, "attention: kv_group must be >= 1, got ", options.kv_group);
  check(query.rows >= 0 && query.heads > 0 && query.tokens >= 0 && query.head_dim > 0,
        "attention: invalid query view (rows ", query.rows, ", heads ", query.heads, ", tokens ", query.tokens,
        ", head_dim ", query.head_dim, ")");
  check(output.rows == query.rows && output.heads == query.heads && output.tokens == query.tokens,
        "attention: output view [rows ", output.rows, ", heads ", output.heads, ", tokens ", output.tokens,
        "] does not match the query view [", query.rows, ", ", query.heads, ", ", query.tokens, "]");
  const std::int64_t key_rows = (query.rows + options.kv_group - 1) / options.kv_group;
  check(key.rows == key_rows && value.rows == key_rows, "attention: ", query.rows, " query rows with kv_group ",
        options.kv_group, " need ", key_rows, " key/value rows, got ", key.rows, " / ", value.rows);
  check(key.heads == query.heads && value.heads == query.heads, "attention: head counts differ (query ", query.heads,
        ", key ", key.heads, ", value ", value.heads, ")");
  check(key.head_dim == query.head_dim, "attention: key head_dim ", key.head_dim, " != query head_dim ",
        query.head_dim);
  check(value.head_dim == output.head_dim, "attention: value head_dim ", value.head_dim, " != output head_dim ",
        output.head_dim);
  check(key.tokens >= 1 && key.tokens == value.tokens, "attention: key tokens ", key.tokens, " and value tokens ",
        value.tokens, " must be equal and >= 1");
  check(options.mask_group >= 1, "attention: mask_group must be >= 1, got ", options.mask_group);
  check(!options.additive_mask || options.mask_query_tokens == 1 || options.mask_query_tokens == query.tokens,
        "attention: mask_query_tokens must be 1 or the query length ", query.tokens, ", got ",
        options.mask_query_tokens);
  check(!options.additive_mask || options.mask_key_stride == 0 || options.mask_key_stride >= key.tokens,
        "attention: mask_key_stride ", options.mask_key_stride, " is shorter than the ", key.tokens, " key tokens");
}

// Adds scale, bias and mask to one row of raw scores q·k (HF order:
// scores·scale + (position_bias + mask)), then clamps at the lowest float.
inline void finish_score_row(float* scores, std::int64_t key_tokens, float scale, const float* mask_row,
                             const float* bias_row, std::int64_t visible_keys, float causal_mask_value) {
  constexpr float lowest = std::numeric_limits<float>::lowest();
  const bool masked = mask_row != nullptr || visible_keys < key_tokens;
  if (mask_row && bias_row) {
    for (std::int64_t j = 0; j < visible_keys; ++j)
      scores[j] = std::max(scores[j] * scale + (bias_row[j] + mask_row[j]), lowest);
  } else if (mask_row) {
    for (std::int64_t j = 0; j < visible_keys; ++j) scores[j] = std::max(scores[j] * scale + mask_row[j], lowest);
  } else if (bias_row) {
    if (masked) {
      for (std::int64_t j = 0; j < visible_keys; ++j) scores[j] = std::max(scores[j] * scale + bias_row[j], lowest);
    } else {
      for (std::int64_t j = 0; j < visible_keys; ++j) scores[j] = scores[j] * scale + bias_row[j];
    }
  } else {
    for (std::int64_t j = 0; j < visible_keys; ++j) scores[j] *= scale;
  }
  // Causally hidden keys: the causal value replaces the additive mask.
  if (bias_row) {
    for (std::int64_t j = visible_keys; j < key_tokens; ++j)
      scores[j] = std::max(scores[j] * scale + (bias_row[j] + causal_mask_value), lowest);
  } else {
    for (std::int64_t j = visible_keys; j < key_tokens; ++j)
      scores[j] = std::max(scores[j] * scale + causal_mask_value, lowest);
  }
}

// Where the additive mask / position bias line of (query row, query token) starts.
inline const float* mask_line(const AttentionOptions& options, std::int64_t row, std::int64_t token,
                              std::int64_t key_tokens) {
  if (!options.additive_mask) return nullptr;
  const std::int64_t stride = options.mask_key_stride > 0 ? options.mask_key_stride : key_tokens;
  const std::int64_t mask_row = row / options.mask_group;
  const std::int64_t mask_token = options.mask_query_tokens == 1 ? 0 : token;
  return options.additive_mask + (mask_row * options.mask_query_tokens + mask_token) * stride;
}
inline const float* bias_line(const AttentionOptions& options, std::int64_t head, std::int64_t token,
                              std::int64_t query_tokens, std::int64_t key_tokens) {
  if (!options.position_bias) return nullptr;
  return options.position_bias + (head * query_tokens + token) * key_tokens;
}
inline std::int64_t visible_key_count(const AttentionOptions& options, std::int64_t token, std::int64_t key_tokens) {
  if (!options.causal) return key_tokens;
  return std::clamp<std::int64_t>(token + options.causal_offset + 1, 0, key_tokens);
}

// ---- the products of a prefill (more than one query token) on Linear's micro-kernels ----
//
// Both products are Linear layers in disguise, so they run on Linear's micro-kernels for the active path
// (compiled for AVX-512 / AVX2 whatever the build flags; Eigen's products are compiled for the build's own ISA,
// SSE2 in a default build): scores = Q · Kᵀ is x · Wᵀ with x = the block's queries and W = K [key tokens,
// head_dim]; out = P · V is x · Wᵀ with x = the softmax weights and W = Vᵀ [head_dim, key tokens]. The
// "weights" are packed once per call and (key row, head) into Linear's panel layout, 32 output columns side by
// side per depth step (zero-padded past the last key / value column):
//   key panel j:   [head_dim][32] = K[32j + c, d]      (columns: keys; depth: head_dim)
//   value panel p: [key tokens][32] = V[t, 32p + c]     (columns: value dims; depth: keys)
// and the rows (queries, then softmax weights) are packed per block as Linear packs its input. Panel elements:
// - f32 products: f32, on the f32 kernels;
// - bf16 products with AVX512-BF16: bf16, on the vdpbf16ps kernels (rows packed as bf16 pairs);
// - bf16 products elsewhere: f32 values rounded to bf16, on the f32 kernels (rows rounded as packed): the same
//   operands, at about the cost of f32 attention.
// A one-token decode step keeps Eigen's GEMV: packing the growing cache every step would cost what the product
// does.

// Linear's micro-kernels for attention's products of `products` operands on `path` (see above); every supported
// path's are set up once, on first use.
inline const MicroKernelSet& attention_product_kernels(ActivationPrecision products, KernelPath path) {
  static const auto table = [] {
    std::array<std::array<MicroKernelSet, 2>, std::size(kAllKernelPaths)> kernels{};
    for (KernelPath each : kAllKernelPaths) {
      if (!kernel_path_supported(each)) continue;
      auto& of_path = kernels[static_cast<std::size_t>(each)];
      // The amx path's products are avx512-bf16's: its tiles' packing is Linear's alone (linear_amx.hpp).
      const KernelPath products_path = each == KernelPath::Amx ? KernelPath::Avx512Bf16 : each;
      of_path[0] = linear_micro_kernels(products_path);
      of_path[1] = linear_micro_kernels(products_path, WeightPrecision::BF16, ActivationPrecision::BF16);
      if (of_path[1].row_packing != RowPacking::BF16Pairs) {  // no vdpbf16ps: f32 kernels on rounded operands
        of_path[1] = of_path[0];
        of_path[1].row_packing = RowPacking::F32RoundedToBF16;
      }
    }
    return kernels;
  }();
  check(kernel_path_supported(path), "attention: kernel path '", kernel_path_name(path),
        "' is not supported by this CPU or build");
  return table[static_cast<std::size_t>(path)][products == ActivationPrecision::BF16 ? 1 : 0];
}
inline bool bf16_attention_uses_dot_product(KernelPath path = active_kernel_path()) {
  return attention_product_kernels(ActivationPrecision::BF16, path).row_packing == RowPacking::BF16Pairs;
}

// K and V of one call in Linear's panel layout, in the calling thread's scratch (grown, then reused).
struct KeyValuePanels {
  std::uint8_t* keys = nullptr;    // [key rows][heads][key_panels][head_dim][kPanelWidth]
  std::uint8_t* values = nullptr;  // [key rows][heads][value_panels][key tokens][kPanelWidth]
  std::int64_t element_bytes = 4, heads = 0, head_dim = 0, key_tokens = 0, key_panels = 0, value_panels = 0;

  void* key_panel(std::int64_t key_row, std::int64_t head, std::int64_t panel) const {
    return keys + ((key_row * heads + head) * key_panels + panel) * head_dim * kPanelWidth * element_bytes;
  }
  void* value_panel(std::int64_t key_row, std::int64_t head, std::int64_t panel) const {
    return values + ((key_row * heads + head) * value_panels + panel) * key_tokens * kPanelWidth * element_bytes;
  }
};

inline ScratchBuffer& key_value_panel_scratch() {
  thread_local ScratchBuffer buffer;
  return buffer;
}

// Writes K and V into `panels` as Element, each value through `convert` (as is, rounded to bf16, or to bf16
// storage), zeros in the padding columns; the (key row, head) pairs spread over the threads.
template <class Element, class Convert>
void pack_key_value_panels_as(const HeadsView& key, const HeadsView& value, const KeyValuePanels& panels,
                              Convert convert) {
  const std::int64_t key_tokens = key.tokens, head_dim = key.head_dim, value_dim = value.head_dim;
  const double elements_per_item = static_cast<double>(key_tokens) * (head_dim + value_dim);
  parallel_for(
      0, key.rows * key.heads,
      [&](std::int64_t item) {
        const std::int64_t key_row = item / key.heads, head = item % key.heads;
        for (std::int64_t panel = 0; panel < panels.key_panels; ++panel) {
          Element* destination = static_cast<Element*>(panels.key_panel(key_row, head, panel));
          const std::int64_t first = panel * kPanelWidth;
          for (std::int64_t c = 0; c < kPanelWidth; ++c) {
            const float* k = first + c < key_tokens ? key.at(key_row, head, first + c) : nullptr;
            for (std::int64_t d = 0; d < head_dim; ++d) destination[d * kPanelWidth + c] = k ? convert(k[d]) : Element{};
          }
        }
        for (std::int64_t panel = 0; panel < panels.value_panels; ++panel) {
          Element* destination = static_cast<Element*>(panels.value_panel(key_row, head, panel));
          const std::int64_t first = panel * kPanelWidth, width = std::min<std::int64_t>(kPanelWidth, value_dim - first);
          for (std::int64_t t = 0; t < key_tokens; ++t) {
            const float* v = value.at(key_row, head, t) + first;
            Element* row = destination + t * kPanelWidth;
            for (std::int64_t c = 0; c < width; ++c) row[c] = convert(v[c]);
            for (std::int64_t c = width; c < kPanelWidth; ++c) row[c] = Element{};
          }
        }
      },
      std::max<std::int64_t>(1, static_cast<std::int64_t>(kAttentionWorkPerThread / std::max(elements_per_item, 1.0))));
}

// Packs K and V for `kernels`: bf16 for the vdpbf16ps kernels, f32 (rounded to bf16 when the rows are) otherwise.
inline KeyValuePanels pack_key_value_panels(const MicroKernelSet& kernels, const HeadsView& key,
                                            const HeadsView& value) {
  KeyValuePanels panels;
  const bool bf16_panels = kernels.precision == WeightPrecision::BF16;
  panels.element_bytes = bf16_panels ? 2 : 4;
  panels.heads = key.heads;
  panels.head_dim = key.head_dim;
  panels.key_tokens = key.tokens;
  panels.key_panels = (key.tokens + kPanelWidth - 1) / kPanelWidth;
  panels.value_panels = (value.head_dim + kPanelWidth - 1) / kPanelWidth;
  const std::int64_t key_bytes = key.rows * key.heads * panels.key_panels * key.head_dim * kPanelWidth * panels.element_bytes;
  const std::int64_t value_bytes = key.rows * key.heads * panels.value_panels * key.tokens * kPanelWidth * panels.element_bytes;
  // Both parts start on a 64-byte line, as Linear's panels do.
  const std::int64_t key_floats = (key_bytes + 63) / 64 * 16, value_floats = (value_bytes + 63) / 64 * 16;
  float* storage = key_value_panel_scratch().reserve(static_cast<std::size_t>(key_floats + value_floats));
  panels.keys = reinterpret_cast<std::uint8_t*>(storage);
  panels.values = reinterpret_cast<std::uint8_t*>(storage + key_floats);
  if (bf16_panels) {
    pack_key_value_panels_as<BFloat16>(key, value, panels, [](float x) { return f32_to_bf16(x); });
  } else if (kernels.row_packing == RowPacking::F32RoundedToBF16) {
    pack_key_value_panels_as<float>(key, value, panels, [](float x) { return bf16_to_f32(f32_to_bf16(x)); });
  } else {
    pack_key_value_panels_as<float>(key, value, panels, [](float x) { return x; });
  }
  return panels;
}

// out[m, c] = Σ_k x[m, k] · W[c, k] over one block of rows on `kernels`: `packed` holds the block's rows as the
// kernels read them (pack_rows with kernels.row_packing: [depth][rows] floats, or [ceil(depth / 2)][rows] bf16
// pairs), `panel(j)` the packed W of output columns [32j, 32j + 32); rows m of the result at out + m · out_stride.
template <class PanelAt>
void block_product(const MicroKernelSet& kernels, const float* packed, std::int64_t rows, std::int64_t depth,
                   std::int64_t columns, PanelAt&& panel, float* out, std::int64_t out_stride) {
  for (std::int64_t first = 0; first < rows; first += kernels.max_rows) {
    const std::int64_t tile_rows = std::min<std::int64_t>(kernels.max_rows, rows - first);
    const MicroKernel kernel = kernels.by_rows[tile_rows - 1];
    for (std::int64_t j = 0; j * kPanelWidth < columns; ++j) {
      MicroTile tile;
      tile.depth = depth;
      tile.rows = packed + first;  // 32-bit elements: f32 values or bf16 pairs
      tile.row_stride = rows;
      tile.panel = panel(j);
      tile.out = out + first * out_stride + j * kPanelWidth;
      tile.out_stride = out_stride;
      tile.columns = static_cast<int>(std::min<std::int64_t>(kPanelWidth, columns - j * kPanelWidth));
      kernel(tile);
    }
  }
}

}  // namespace detail

// Multi-head attention; see the header comment for the exact semantics. `path`: whose micro-kernels a prefill's
// products run on (default: the active path; tests run each).
inline void attention(const HeadsView& query, const HeadsView& key, const HeadsView& value,
                      const AttentionOptions& options, const HeadsView& output, KernelPath path = active_kernel_path()) {
  detail::check_attention_arguments(query, key, value, options, output);
  const std::int64_t heads = query.heads, query_tokens = query.tokens, key_tokens = key.tokens;
  const std::int64_t head_dim = query.head_dim, value_dim = value.head_dim;
  if (query.rows == 0 || query_tokens == 0) return;

  // A work item is (key row, head, block of up to 128 query tokens of one query
  // row). Decoding (one query token) with shared keys, an item is instead all
  // kv_group query rows of the group, so the shared keys are read by one core.
  const bool group_per_item = query_tokens == 1 && options.kv_group > 1;
  const std::int64_t key_rows = key.rows;
  const std::int64_t blocks_per_row = (query_tokens + detail::kAttentionQueryBlock - 1) / detail::kAttentionQueryBlock;
  const std::int64_t block_size = (query_tokens + blocks_per_row - 1) / blocks_per_row;  // balanced blocks
  // Items per (key row, head): one per group, or one per (row in group, token block).
  const std::int64_t items_per_key_row_head = group_per_item ? 1 : options.kv_group * blocks_per_row;
  const std::int64_t items = key_rows * heads * items_per_key_row_head;

  // More than one query token: both products on Linear's micro-kernels, K and V packed once for every block
  // that reads them (see "the products of a prefill" above). One token: Eigen's GEMVs on the views.
  const detail::MicroKernelSet* kernels =
      query_tokens > 1 ? &detail::attention_product_kernels(options.products, path) : nullptr;
  const detail::KeyValuePanels panels =
      kernels ? detail::pack_key_value_panels(*kernels, key, value) : detail::KeyValuePanels{};

  // Scores, mask, softmax and the product with V for query tokens
  // [first_token, first_token + block_rows) of query row `row`, head `head`,
  // reading the keys of key_row.
  auto attend_block = [&](std::int64_t key_row, std::int64_t head, std::int64_t row, std::int64_t first_token,
                          std::int64_t block_rows) {
    float* scores = detail::attention_scratch<detail::kScoreScratch>(block_size * key_tokens);
    float* packed = nullptr;
    if (kernels) {
      // The block's queries packed as the kernels read them, then scores = Q · Kᵀ.
      packed = detail::attention_scratch<detail::kPackedRowsScratch>(block_size * std::max(head_dim, key_tokens));
      detail::pack_rows(query.at(row, head, first_token), query.token_stride, block_rows, head_dim, packed,
                        block_rows, kernels->row_packing, kernels->path);
      detail::block_product(
          *kernels, packed, block_rows, head_dim, key_tokens,
          [&](std::int64_t panel) { return panels.key_panel(key_row, head, panel); }, scores, key_tokens);
    } else {
      detail::StridedConstMatrix queries(query.at(row, head, first_token), block_rows, head_dim,
                                         Eigen::OuterStride<>(query.token_stride));
      detail::StridedConstMatrix keys(key.at(key_row, head, 0), key_tokens, head_dim,
                                      Eigen::OuterStride<>(key.token_stride));
      Eigen::Map<detail::RowMajorMatrixf>(scores, block_rows, key_tokens).noalias() = queries * keys.transpose();
    }
    for (std::int64_t m = 0; m < block_rows; ++m) {
      const std::int64_t token = first_token + m;
      float* score_row = scores + m * key_tokens;
      detail::finish_score_row(score_row, key_tokens, options.scale, detail::mask_line(options, row, token, key_tokens),
                               detail::bias_line(options, head, token, query_tokens, key_tokens),
                               detail::visible_key_count(options, token, key_tokens), options.causal_mask_value);
      detail::softmax_row(score_row, key_tokens);
    }
    if (kernels) {
      // The softmax weights packed, then out = P · V, into the output view.
      detail::pack_rows(scores, key_tokens, block_rows, key_tokens, packed, block_rows, kernels->row_packing,
                        kernels->path);
      detail::block_product(
          *kernels, packed, block_rows, key_tokens, value_dim,
          [&](std::int64_t panel) { return panels.value_panel(key_row, head, panel); },
          output.at(row, head, first_token), output.token_stride);
      return;
    }
    detail::StridedConstMatrix values(value.at(key_row, head, 0), key_tokens, value_dim,
                                      Eigen::OuterStride<>(value.token_stride));
    detail::StridedMatrix outputs(output.at(row, head, first_token), block_rows, value_dim,
                                  Eigen::OuterStride<>(output.token_stride));
    outputs.noalias() = Eigen::Map<const detail::RowMajorMatrixf>(scores, block_rows, key_tokens) * values;
  };

  auto run_item = [&](std::int64_t item) {
    const std::int64_t key_row = item / (heads * items_per_key_row_head);
    const std::int64_t head = (item / items_per_key_row_head) % heads;
    const std::int64_t within = item % items_per_key_row_head;
    if (group_per_item) {
      // The group's rows one after the other (GEMVs: Eigen's GEMM would pack
      // the keys for a handful of rows), while the shared keys and values stay
      // in this core's cache.
      const std::int64_t first_row = key_row * options.kv_group;
      const std::int64_t group_rows = std::min(options.kv_group, query.rows - first_row);
      for (std::int64_t m = 0; m < group_rows; ++m) attend_block(key_row, head, first_row + m, 0, 1);
      return;
    }
    const std::int64_t row = key_row * options.kv_group + within / blocks_per_row;
    if (row >= query.rows) return;  // the last group may be partial
    const std::int64_t first_token = (within % blocks_per_row) * block_size;
    const std::int64_t block_rows = std::min(block_size, query_tokens - first_token);
    if (block_rows > 0) attend_block(key_row, head, row, first_token, block_rows);
  };

  const double work_per_item =
      static_cast<double>(group_per_item ? options.kv_group : block_size) * key_tokens * (head_dim + value_dim);
  const std::int64_t min_items_per_thread = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(detail::kAttentionWorkPerThread / std::max(work_per_item, 1.0)));
  parallel_for(0, items, run_item, min_items_per_thread);
}

// Double-precision reference with the same semantics. The scaled score is
// rounded to float before the bias and mask are added, because that float
// addition is part of HF's result (it is what makes fully masked rows
// uniform with finfo.min); the softmax and both products are in double.
// With options.products == BF16 and more than one query token it rounds as the
// bf16 products do: q, k and v to bf16, and each softmax weight to float, then
// bf16.
inline void attention_naive(const HeadsView& query, const HeadsView& key, const HeadsView& value,
                            const AttentionOptions& options, const HeadsView& output) {
  detail::check_attention_arguments(query, key, value, options, output);
  const std::int64_t key_tokens = key.tokens;
  std::vector<float> scores(static_cast<std::size_t>(key_tokens));
  std::vector<double> probabilities(static_cast<std::size_t>(key_tokens));
  std::vector<double> result(static_cast<std::size_t>(value.head_dim));
  constexpr float lowest = std::numeric_limits<float>::lowest();
  const bool bf16 = options.products == ActivationPrecision::BF16 && query.tokens > 1;
  auto operand = [bf16](float x) { return bf16 ? static_cast<double>(bf16_to_f32(f32_to_bf16(x))) : x; };
  for (std::int64_t row = 0; row < query.rows; ++row) {
    const std::int64_t key_row = row / options.kv_group;
    for (std::int64_t head = 0; head < query.heads; ++head) {
      for (std::int64_t token = 0; token < query.tokens; ++token) {
        const float* q = query.at(row, head, token);
        const float* mask = detail::mask_line(options, row, token, key_tokens);
        const float* bias = detail::bias_line(options, head, token, query.tokens, key_tokens);
        const std::int64_t visible = detail::visible_key_count(options, token, key_tokens);
        for (std::int64_t j = 0; j < key_tokens; ++j) {
          const float* k = key.at(key_row, head, j);
          double dot = 0.0;
          for (std::int64_t d = 0; d < query.head_dim; ++d) dot += operand(q[d]) * operand(k[d]);
          float score = static_cast<float>(dot * options.scale);
          const bool hidden = j >= visible;
          const bool has_mask = mask != nullptr || hidden;
          float term = hidden ? options.causal_mask_value : (mask ? mask[j] : 0.0f);
          if (bias) term = bias[j] + term;
          if (bias || has_mask) score = score + term;
          scores[j] = has_mask ? std::max(score, lowest) : score;
        }
        double maximum = scores[0];
        for (std::int64_t j = 1; j < key_tokens; ++j) maximum = std::max<double>(maximum, scores[j]);
        double sum = 0.0;
        for (std::int64_t j = 0; j < key_tokens; ++j) sum += probabilities[j] = std::exp(scores[j] - maximum);
        std::fill(result.begin(), result.end(), 0.0);
        for (std::int64_t j = 0; j < key_tokens; ++j) {
          const float* v = value.at(key_row, head, j);
          const double weight = bf16 ? operand(static_cast<float>(probabilities[j] / sum)) : probabilities[j] / sum;
          for (std::int64_t d = 0; d < value.head_dim; ++d) result[d] += weight * operand(v[d]);
        }
        float* out = output.at(row, head, token);
        for (std::int64_t d = 0; d < value.head_dim; ++d) out[d] = static_cast<float>(result[d]);
      }
    }
  }
}

}  // namespace blip::kernels
