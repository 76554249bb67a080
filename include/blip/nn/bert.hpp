// blip/nn/bert.hpp: the BERT-style text transformer of BLIP, with optional
// cross-attention to image (or question) embeddings in every layer.
//
//   ids -> word + absolute position embeddings -> LayerNorm
//       -> L × post-LN BERT layer:
//            x = LN(x + dense(self_attention(x)))            causal in the decoder
//            x = LN(x + dense(cross_attention(x, image)))    when encoder states are given
//            x = LN(x + output(gelu(intermediate(x))))
//
// Mirrors HF BlipTextModel / BlipTextLayer (modeling_blip_text.py), which is
// BERT with a cross-attention block. The same code serves the text encoder
// (ITM, ITC, the VQA question encoder) and the decoder (captions, answers):
// every call appends the new tokens' keys/values to a per-layer
// self-attention cache and attends over the cache, so a full forward pass is
// just "append everything at once" and generation appends one token per step.
// Cross-attention keys/values are computed once per image (CrossAttentionKV)
// and shared by all beams of that image.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/kernels/activations.hpp"
#include "blip/kernels/attention.hpp"
#include "blip/kernels/embedding.hpp"
#include "blip/kernels/feed_forward.hpp"
#include "blip/kernels/kv_cache.hpp"
#include "blip/nn/cached_sequences.hpp"
#include "blip/nn/cross_attention.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct BertConfig {
  std::int64_t vocab_size = 30524;
  std::int64_t hidden_size = 768;
  std::int64_t encoder_hidden_size = 768;  // width of the states cross-attention reads (image or question)
  std::int64_t intermediate_size = 3072;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t max_position_embeddings = 512;
  float layer_norm_eps = 1e-12f;
  kernels::Activation activation = kernels::Activation::GeluErf;  // hidden_act
  bool has_cross_attention = true;  // HF builds `crossattention` when config.is_decoder (BLIP's default: True)

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// BlipTextAttention: self or cross.
struct BertAttentionWeights {     // prefix: ...layer.{i}.attention. or ...layer.{i}.crossattention.
  LinearWeights query;            // self.query.weight [H, H]
  LinearWeights key;              // self.key.weight   [H, H] (cross: [H, encoder_hidden])
  LinearWeights value;            // self.value.weight [H, H] (cross: [H, encoder_hidden])
  LinearWeights output_dense;     // output.dense.weight [H, H]
  LayerNormWeights output_norm;   // output.LayerNorm.{weight,bias} [H]
};

struct BertLayerWeights {               // prefix: <model>.encoder.layer.{i}.
  BertAttentionWeights self_attention;  // attention.*
  BertAttentionWeights cross_attention; // crossattention.* (only when config.has_cross_attention)
  LinearWeights intermediate;           // intermediate.dense.weight [I, H]
  LinearWeights output;                 // output.dense.weight [H, I]
  LayerNormWeights output_norm;         // output.LayerNorm.{weight,bias} [H]
};

struct BertWeights {                        // prefix: e.g. "text_decoder.bert." or "text_encoder."
  kernels::EmbeddingTable word_embeddings;  // embeddings.word_embeddings.weight [V, H]
  Tensor<const float> position_embeddings;  // embeddings.position_embeddings.weight [max_positions, H]
  LayerNormWeights embedding_norm;          // embeddings.LayerNorm.{weight,bias} [H]
  std::vector<BertLayerWeights> layers;     // encoder.layer.{i}.*
};

inline BertAttentionWeights load_bert_attention(const WeightStore& store, const std::string& prefix,
                                                const BertConfig& config, std::int64_t key_value_width) {
  const std::int64_t hidden = config.hidden_size;
  BertAttentionWeights attention;
  attention.query = load_linear(store, prefix + "self.query", hidden, hidden);
  attention.key = load_linear(store, prefix + "self.key", hidden, key_value_width);
  attention.value = load_linear(store, prefix + "self.value", hidden, key_value_width);
  attention.output_dense = load_linear(store, prefix + "output.dense", hidden, hidden);
  attention.output_norm = load_layer_norm(store, prefix + "output.LayerNorm", hidden, config.layer_norm_eps);
  return attention;
}

inline BertWeights load_bert(const WeightStore& store, const std::string& prefix, const BertConfig& config) {
  check(config.hidden_size % config.num_attention_heads == 0, "text config: hidden_size ", config.hidden_size,
        " is not a multiple of num_attention_heads ", config.num_attention_heads);
  const std::int64_t hidden = config.hidden_size;
  BertWeights weights;
  weights.word_embeddings = load_embedding_table(store, prefix + "embeddings.word_embeddings.weight", config.vocab_size, hidden);
  weights.position_embeddings =
      store.get(prefix + "embeddings.position_embeddings.weight", Shape{config.max_position_embeddings, hidden});
  weights.embedding_norm = load_layer_norm(store, prefix + "embeddings.LayerNorm", hidden, config.layer_norm_eps);
  for (std::int64_t index = 0; index < config.num_hidden_layers; ++index) {
    const std::string p = prefix + "encoder.layer." + std::to_string(index) + ".";
    BertLayerWeights layer;
    layer.self_attention = load_bert_attention(store, p + "attention.", config, hidden);
    if (config.has_cross_attention) {
      layer.cross_attention = load_bert_attention(store, p + "crossattention.", config, config.encoder_hidden_size);
    }
    layer.intermediate = load_linear(store, p + "intermediate.dense", config.intermediate_size, hidden);
    layer.output = load_linear(store, p + "output.dense", hidden, config.intermediate_size);
    layer.output_norm = load_layer_norm(store, p + "output.LayerNorm", hidden, config.layer_norm_eps);
    weights.layers.push_back(std::move(layer));
  }
  return weights;
}

// Keys and values of every layer's cross-attention for a batch of encoder
// states (images, or VQA question embeddings), computed once and read by
// every decoding step and every beam.
inline CrossAttentionKV compute_cross_attention_kv(const BertConfig& config, const BertWeights& weights,
                                                   Tensor<const float> encoder_states,
                                                   const std::int64_t* encoder_mask = nullptr) {
  check(config.has_cross_attention, "text model: this model has no cross-attention layers");
  check(encoder_states.rank() == 3 && encoder_states.dim(2) == config.encoder_hidden_size,
        "text model: encoder states have shape ", encoder_states.shape(), ", expected [batch, tokens, ",
        config.encoder_hidden_size, "]");
  std::vector<CrossAttentionProjections> projections;
  for (const BertLayerWeights& layer : weights.layers)
    projections.push_back({&layer.cross_attention.key, &layer.cross_attention.value});
  return nn::compute_cross_attention_kv(encoder_states, projections, config.num_attention_heads, config.head_dim(),
                                        encoder_mask);
}

// Per-request activations, self-attention caches and masks of a BertWeights
// stack (CachedSequences; its additive mask holds 0 or -10000 per key).
struct BertState : CachedSequences {
  Tensor<float> hidden;           // [rows, max_new, H]  residual stream
  Tensor<float> attention_output; // [rows, max_new, H]
  Tensor<float> query;            // [rows, max_new, H]
  Tensor<float> new_keys;         // [rows, max_new, H]
  Tensor<float> new_values;       // [rows, max_new, H]
  Tensor<float> context;          // [rows, max_new, H]
  Tensor<float> projected;        // [rows, max_new, H]
  Tensor<float> intermediate;     // [rows, max_new, I]

  void allocate(const BertConfig& config, std::int64_t row_count, std::int64_t tokens_per_call,
                std::int64_t total_capacity) {
    allocate_sequences(row_count, tokens_per_call, total_capacity, config.num_hidden_layers,
                       config.num_attention_heads, config.head_dim());
    const std::int64_t hidden_size = config.hidden_size;
    hidden = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    attention_output = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    query = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    new_keys = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    new_values = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    context = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    projected = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    intermediate = Tensor<float>(Shape{rows, max_new_tokens, config.intermediate_size});
  }
};

// Which tokens a new token may see in self-attention.
enum class SelfAttentionKind {
  Bidirectional,  // text encoder: every unmasked token
  Causal,         // decoder: unmasked tokens at or before its own position
};

// Appends `new_tokens` tokens per row (ids [rows, new_tokens], their 0/1
// attention mask [rows, new_tokens], or null for all ones) and runs every
// layer; the final hidden states of the new tokens are left in state.hidden
// [rows, new_tokens, H]. `cross` may be null (no cross-attention, as HF does
// when encoder_hidden_states is None); otherwise query row r reads cross
// source r / cross_group (the beams of one image share its keys/values).
inline void bert_forward(const BertConfig& config, const BertWeights& weights, BertState& state,
                         const std::int64_t* ids, const std::int64_t* mask, std::int64_t new_tokens,
                         SelfAttentionKind kind, const CrossAttentionKV* cross = nullptr,
                         std::int64_t cross_group = 1) {
  const std::int64_t rows = state.rows, hidden = config.hidden_size, heads = config.num_attention_heads;
  const std::int64_t head_dim = config.head_dim(), past = state.length, total = past + new_tokens;
  check(total <= config.max_position_embeddings, "text model: sequence length ", total,
        " exceeds max_position_embeddings ", config.max_position_embeddings);
  if (cross) {
    check(cross->sources * cross_group == rows, "text model: ", rows, " rows but ", cross->sources,
          " cross-attention sources × group ", cross_group);
  }
  const std::int64_t token_rows = rows * new_tokens;
  // Self-attention mask. HF get_extended_attention_mask: (1 - causal · mask) ·
  // -10000, so a key hidden by padding, by causality or by both gets exactly
  // -10000: padding through the additive mask [rows, capacity], causality
  // through the kernel's causal option with the same value (it replaces, not
  // adds to, the padding value).
  state.append_mask(mask, new_tokens, -10000.0f, "text model");

  // Embeddings: word + absolute position (past .. past+new-1), then LayerNorm.
  // HF BlipTextEmbeddings: position_ids are arange offsets, independent of padding.
  for (std::int64_t row = 0; row < rows; ++row) {
    float* out = state.hidden.data() + row * new_tokens * hidden;
    kernels::embedding_lookup(weights.word_embeddings, ids + row * new_tokens, new_tokens, out);
    for (std::int64_t t = 0; t < new_tokens; ++t) {
      add_in_place(out + t * hidden, weights.position_embeddings.data() + (past + t) * hidden, hidden);
    }
  }
  apply_layer_norm(weights.embedding_norm, state.hidden.data(), token_rows, state.hidden.data());

  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const kernels::Activation activation = config.activation;
  for (std::size_t layer_index = 0; layer_index < weights.layers.size(); ++layer_index) {
    const BertLayerWeights& layer = weights.layers[layer_index];
    kernels::KVCache& cache = state.self_caches[layer_index];

    // Self-attention over cache + new tokens.
    apply_query_key_value(layer.self_attention.query, layer.self_attention.key, layer.self_attention.value,
                          state.hidden.data(), token_rows, state.query.data(), state.new_keys.data(),
                          state.new_values.data());
    cache.append(state.new_keys.data(), state.new_values.data(), new_tokens * hidden, hidden, new_tokens);
    kernels::AttentionOptions self_options{scale};
    self_options.additive_mask = state.additive_mask.data();
    self_options.mask_query_tokens = 1;
    self_options.mask_key_stride = state.capacity;
    self_options.causal = kind == SelfAttentionKind::Causal;
    self_options.causal_offset = past;
    self_options.causal_mask_value = -10000.0f;
    kernels::attention(kernels::heads_view(state.query.data(), rows, new_tokens, heads, head_dim, hidden),
                       cache.keys(), cache.values(), self_options,
                       kernels::heads_view(state.context.data(), rows, new_tokens, heads, head_dim, hidden));
    apply_linear(layer.self_attention.output_dense, state.context.data(), token_rows, state.projected.data());
    add_in_place(state.projected.data(), state.hidden.data(), token_rows * hidden);
    apply_layer_norm(layer.self_attention.output_norm, state.projected.data(), token_rows,
                     state.attention_output.data());

    // Cross-attention to the encoder states (image or question).
    if (cross) {
      const BertAttentionWeights& attention = layer.cross_attention;
      apply_linear(attention.query, state.attention_output.data(), token_rows, state.query.data());
      const kernels::AttentionOptions cross_options = cross_attention_options(*cross, scale, cross_group);
      const kernels::CrossAttentionCache& cache = cross->layers[layer_index];
      kernels::attention(kernels::heads_view(state.query.data(), rows, new_tokens, heads, head_dim, hidden),
                         cache.keys(), cache.values(), cross_options,
                         kernels::heads_view(state.context.data(), rows, new_tokens, heads, head_dim, hidden));
      apply_linear(attention.output_dense, state.context.data(), token_rows, state.projected.data());
      add_in_place(state.projected.data(), state.attention_output.data(), token_rows * hidden);
      apply_layer_norm(attention.output_norm, state.projected.data(), token_rows, state.attention_output.data());
    }

    // Feed-forward: x = LN(x + output(act(intermediate(x)))).
    kernels::feed_forward(state.attention_output.data(), token_rows, layer.intermediate, activation, layer.output,
                          state.intermediate.data(), state.projected.data());
    add_in_place(state.projected.data(), state.attention_output.data(), token_rows * hidden);
    apply_layer_norm(layer.output_norm, state.projected.data(), token_rows, state.hidden.data());
  }
  state.length = total;
}

}  // namespace blip::nn
