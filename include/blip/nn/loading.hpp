// blip/nn/loading.hpp: the small weight bundles every block is made of, and
// how they are fetched from a checkpoint by their Hugging Face names.
//
// A block's Weights struct is built once at load time: each Linear is
// prepared into the layout the GEMM kernel reads fastest, each LayerNorm keeps
// its parameters (copies, or zero-copy views under WeightResidency::Mapped).
// The checkpoint name of every tensor is given by the `prefix` (e.g.
// "vision_model.encoder.layers.3.") plus the module path HF uses, so a missing
// or mis-shaped tensor is reported with its full checkpoint name by
// WeightStore.
#pragma once

#include <cstdint>
#include <string>

#include "blip/core/tensor.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/kernels/embedding.hpp"
#include "blip/kernels/linear.hpp"
#include "blip/kernels/normalization.hpp"

namespace blip::nn {

using kernels::LinearWeights;

// nn.LayerNorm(width, eps): weight and bias [width].
struct LayerNormWeights {
  Tensor<const float> weight;  // <prefix>.weight [width]
  Tensor<const float> bias;    // <prefix>.bias   [width]
  float eps = 1e-5f;
  std::int64_t width() const { return weight.numel(); }
};

// nn.Linear(in_features, out_features[, bias]): "<prefix>.weight" [out, in], "<prefix>.bias" [out].
// The weight is packed straight from its stored type in the store's Linear
// precision (WeightOptions::linear_precision, as stored unless asked).
inline LinearWeights load_linear(const WeightStore& store, const std::string& prefix, std::int64_t out_features,
                                 std::int64_t in_features, bool has_bias = true) {
  const std::string name = prefix + ".weight";
  const StoredMatrix weight = store.get_matrix_for_repacking(name, out_features, in_features);
  Tensor<const float> bias;
  if (has_bias) bias = store.get(prefix + ".bias", Shape{out_features});
  return LinearWeights::prepare(weight, bias, store.linear_precision(name), store.linear_activations());
}

// A token embedding table [vocab, width], kept in its checkpoint's float type (kernels/embedding.hpp).
inline kernels::EmbeddingTable load_embedding_table(const WeightStore& store, const std::string& name,
                                                    std::int64_t vocab, std::int64_t width) {
  return kernels::EmbeddingTable(store.get_table(name, vocab, width));
}

// A token embedding table, and when `tied` the LM head that is the same
// matrix (HF tie_word_embeddings: the checkpoint stores `name` once, and HF's
// lm_head is that Parameter), packed in the precision the store gives `name`.
// When that packing loses nothing (f32 panels, or the stored bf16 / f16 kept),
// the lookups read the head's panels and the matrix is held once; otherwise (a
// quantized head, or an f32 table run in bf16) the table is kept beside the
// head in its stored type, so lookups always return the checkpoint's values.
struct TokenEmbedding {
  kernels::EmbeddingTable table;
  LinearWeights tied_head;  // empty unless tied
};
inline TokenEmbedding load_token_embedding(const WeightStore& store, const std::string& name, std::int64_t vocab,
                                           std::int64_t width, bool tied) {
  if (!tied) return {load_embedding_table(store, name, vocab, width), LinearWeights()};
  const WeightPrecision precision = store.linear_precision(name);
  if (!store.is_recording()) {
    const StoredMatrix stored = store.get_matrix_for_repacking(name, vocab, width);
    const WeightPrecision packed = resolve_weight_precision(precision, stored.dtype);
    const bool lossless = !stored.quantized() && (packed == WeightPrecision::F32 ||
                                                  (packed == WeightPrecision::BF16 && stored.dtype == DType::BF16) ||
                                                  (packed == WeightPrecision::F16 && stored.dtype == DType::F16));
    if (lossless) {
      LinearWeights head = LinearWeights::prepare(stored, {}, precision, store.linear_activations());
      return {kernels::EmbeddingTable::reading_head(head), head};
    }
  }
  TokenEmbedding embedding;
  embedding.table = load_embedding_table(store, name, vocab, width);
  embedding.tied_head = LinearWeights::prepare(embedding.table.stored(), {}, precision, store.linear_activations());
  return embedding;
}

inline LayerNormWeights load_layer_norm(const WeightStore& store, const std::string& prefix, std::int64_t width,
                                        float eps) {
  LayerNormWeights norm;
  norm.weight = store.get(prefix + ".weight", Shape{width});
  norm.bias = store.get(prefix + ".bias", Shape{width});
  norm.eps = eps;
  return norm;
}

// y = LayerNorm(x) over the last dimension; y may be x.
inline void apply_layer_norm(const LayerNormWeights& norm, const float* x, std::int64_t rows, float* y) {
  kernels::layer_norm(x, rows, norm.width(), norm.weight.data(), norm.bias.data(), norm.eps, y);
}

// y[rows, out] = x[rows, in] · Wᵀ + b for contiguous rows.
inline void apply_linear(const LinearWeights& linear, const float* x, std::int64_t rows, float* y) {
  kernels::linear(x, linear.in_features(), rows, linear, y, linear.out_features());
}

// Attention's query, key and value projections of the same rows x [rows, in]: each into its own [rows, out]. A
// decode step streams the three weights in one Linear call (kernels::linear_shared_input); the values are those of
// three apply_linear calls.
inline void apply_query_key_value(const LinearWeights& query, const LinearWeights& key, const LinearWeights& value,
                                  const float* x, std::int64_t rows, float* query_out, float* key_out,
                                  float* value_out) {
  check(key.in_features() == query.in_features() && value.in_features() == query.in_features(),
        "apply_query_key_value: query, key and value take ", query.in_features(), ", ", key.in_features(), " and ",
        value.in_features(), " inputs; they must take the same rows");
  kernels::linear_shared_input(x, query.in_features(), rows,
                               {{&query, query_out, query.out_features()},
                                {&key, key_out, key.out_features()},
                                {&value, value_out, value.out_features()}});
}

// destination += source, elementwise (residual connections).
using kernels::add_in_place;

}  // namespace blip::nn
