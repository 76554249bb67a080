// blip/nn/cross_attention.hpp: the keys and values a decoder's cross-attention
// reads, computed once per request from the encoder states and shared by
// every decoding step and every beam.
//
// Who uses it: BLIP's text decoder and question encoder (image tokens, or the
// VQA question), and the T5 decoder (the encoder output over [queries ; prompt]).
// HF recomputes (or caches per beam) these projections; computing them once per
// source and letting the attention kernel read row r's keys from source
// r / rows_per_source (kv_group) gives the same numbers with one copy.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/kv_cache.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct CrossAttentionKV {
  std::int64_t sources = 0;                         // encoder sequences (images, questions, T5 inputs)
  std::int64_t tokens = 0;                          // encoder tokens per source
  std::vector<kernels::CrossAttentionCache> layers; // per decoder layer, [sources, heads, tokens, head_dim]
  // Additive mask over the encoder tokens [sources, tokens], or empty for
  // "attend to everything". HF: invert_attention_mask = (1 - mask) * finfo(float32).min.
  Tensor<float> additive_mask;
};

// One decoder layer's key and value projections of the encoder states.
struct CrossAttentionProjections {
  const LinearWeights* key = nullptr;    // [heads·head_dim, encoder width]
  const LinearWeights* value = nullptr;  // [heads·head_dim, encoder width]
};

// encoder_states [sources, tokens, width]; encoder_mask [sources, tokens]
// (1 = attend, 0 = padding) or null for all ones.
inline CrossAttentionKV compute_cross_attention_kv(Tensor<const float> encoder_states,
                                                   const std::vector<CrossAttentionProjections>& layers,
                                                   std::int64_t heads, std::int64_t head_dim,
                                                   const std::int64_t* encoder_mask = nullptr) {
  check(encoder_states.rank() == 3, "cross-attention: encoder states must be [sources, tokens, width], got ",
        encoder_states.shape());
  CrossAttentionKV cross;
  cross.sources = encoder_states.dim(0);
  cross.tokens = encoder_states.dim(1);
  const std::int64_t rows = cross.sources * cross.tokens, width = heads * head_dim;
  Tensor<float> keys(Shape{rows, width}), values(Shape{rows, width});
  cross.layers.resize(layers.size());
  for (std::size_t index = 0; index < layers.size(); ++index) {
    const CrossAttentionProjections& projections = layers[index];
    check(projections.key->in_features() == encoder_states.dim(2) && projections.key->out_features() == width &&
              projections.value->out_features() == width,
          "cross-attention layer ", index, ": key/value projections [", projections.key->out_features(), ", ",
          projections.key->in_features(), "] do not map encoder width ", encoder_states.dim(2), " to ", heads,
          " heads × ", head_dim);
    apply_linear(*projections.key, encoder_states.data(), rows, keys.data());
    apply_linear(*projections.value, encoder_states.data(), rows, values.data());
    cross.layers[index].allocate(cross.sources, heads, cross.tokens, head_dim);
    cross.layers[index].fill(keys.data(), values.data(), cross.tokens * width, width, cross.tokens);
  }
  if (encoder_mask) {
    cross.additive_mask = Tensor<float>(Shape{cross.sources, cross.tokens});
    for (std::int64_t i = 0; i < rows; ++i) {
      cross.additive_mask.data()[i] = encoder_mask[i] ? 0.0f : std::numeric_limits<float>::lowest();
    }
  }
  return cross;
}

// Attention options that read `cross` for query rows grouped rows_per_source
// to a source (beams of one image), with its padding mask when it has one.
inline kernels::AttentionOptions cross_attention_options(const CrossAttentionKV& cross, float scale,
                                                         std::int64_t rows_per_source) {
  kernels::AttentionOptions options;
  options.scale = scale;
  options.kv_group = rows_per_source;
  if (!cross.additive_mask.empty()) {
    options.additive_mask = cross.additive_mask.data();
    options.mask_group = rows_per_source;
    options.mask_query_tokens = 1;
  }
  return options;
}

}  // namespace blip::nn
