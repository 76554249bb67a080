// blip/nn/t5.hpp: the T5 encoder-decoder (Raffel et al., 2020, "Exploring the
// Limits of Transfer Learning with a Unified Text-to-Text Transformer"; Flan-T5:
// Chung et al., 2022), BLIP-2's encoder-decoder language model.
//
//   encoder: inputs_embeds [rows, T, D]  (BLIP-2: [projected queries ; embed(prompt ids)])
//     -> L × encoder block (pre-norm, RMSNorm = T5LayerNorm: no mean, no bias):
//          x = x + o(attention(RMSNorm(x)) + relative position bias, bidirectional)
//          x = x + wo(act(wi_0 RMSNorm(x)) * wi_1 RMSNorm(x))       (gated, Flan-T5)
//     -> final RMSNorm                                               = encoder output
//   decoder: ids (decoder start 0, then generated tokens) -> shared embeddings
//     -> L × decoder block:
//          x = x + o(causal self-attention(RMSNorm(x)) + relative bias, causal buckets)
//          x = x + o(cross-attention(RMSNorm(x), encoder output))   no position bias
//          x = x + feed-forward(RMSNorm(x))
//     -> final RMSNorm -> lm_head (× d_model^-0.5 first when the head is tied)
//
// Mirrors HF T5ForConditionalGeneration (modeling_t5.py, eager, float32):
// * attention is UNSCALED (T5 folds 1/√d_kv into the initialisation of q);
// * the relative position bias is computed by the first layer of each stack
//   (the only one with relative_attention_bias) and reused by all layers;
// * masks are (1 - mask) · finfo(float32).min added to that bias (the decoder's
//   mask is causal · padding, one value for both);
// * HF clamps hidden states only under float16; in float32 there is nothing to
//   clamp, and the reduced-precision path will run T5 in bf16, whose range is
//   float32's.
// The decoder appends its new tokens to per-layer self-attention caches; the
// cross-attention keys / values of the encoder output are computed once per
// request (nn::CrossAttentionKV) and shared by every beam.
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
#include "blip/kernels/normalization.hpp"
#include "blip/kernels/positions.hpp"
#include "blip/nn/cached_sequences.hpp"
#include "blip/nn/cross_attention.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct T5ModelConfig {
  std::int64_t vocab_size = 32128;
  std::int64_t d_model = 2048;
  std::int64_t d_kv = 64;  // per head; num_heads · d_kv need not equal d_model
  std::int64_t d_ff = 5120;
  std::int64_t num_layers = 24;          // encoder blocks
  std::int64_t num_decoder_layers = 24;  // decoder blocks
  std::int64_t num_heads = 32;
  std::int64_t relative_attention_num_buckets = 32;
  std::int64_t relative_attention_max_distance = 128;
  float layer_norm_epsilon = 1e-6f;
  kernels::Activation activation = kernels::Activation::GeluErf;  // dense_act_fn
  bool gated_feed_forward = true;   // is_gated_act ("gated-gelu": wi_0, wi_1; else one wi)
  bool tie_word_embeddings = false;  // Flan-T5: false, a separate lm_head

  std::int64_t inner_dim() const { return num_heads * d_kv; }
};

// T5LayerNorm: weight only.
struct RmsNormWeights {
  Tensor<const float> weight;  // <prefix>.weight [D]
  float eps = 1e-6f;
};

// T5Attention (self or cross), no biases.
struct T5AttentionWeights {  // prefix: ...layer.0.SelfAttention. or ...layer.1.EncDecAttention.
  LinearWeights q;           // q.weight [inner, D]
  LinearWeights k;           // k.weight [inner, D]
  LinearWeights v;           // v.weight [inner, D]
  LinearWeights o;           // o.weight [D, inner]
};

// T5LayerFF: RMSNorm, then DenseReluDense (gated or not), no biases.
struct T5FeedForwardWeights {  // prefix: ...layer.{1 (encoder) | 2 (decoder)}.
  RmsNormWeights layer_norm;   // layer_norm.weight [D]
  LinearWeights wi_0;          // DenseReluDense.wi_0.weight [F, D]  (gated; DenseReluDense.wi.weight otherwise)
  LinearWeights wi_1;          // DenseReluDense.wi_1.weight [F, D]  (gated only)
  LinearWeights wo;            // DenseReluDense.wo.weight [D, F]
};

struct T5EncoderLayerWeights {         // prefix: language_model.encoder.block.{i}.
  RmsNormWeights self_attention_norm;  // layer.0.layer_norm.weight [D]
  T5AttentionWeights self_attention;   // layer.0.SelfAttention.{q,k,v,o}.weight
  T5FeedForwardWeights feed_forward;   // layer.1.*
};

struct T5DecoderLayerWeights {          // prefix: language_model.decoder.block.{i}.
  RmsNormWeights self_attention_norm;   // layer.0.layer_norm.weight [D]
  T5AttentionWeights self_attention;    // layer.0.SelfAttention.{q,k,v,o}.weight
  RmsNormWeights cross_attention_norm;  // layer.1.layer_norm.weight [D]
  T5AttentionWeights cross_attention;   // layer.1.EncDecAttention.{q,k,v,o}.weight
  T5FeedForwardWeights feed_forward;    // layer.2.*
};

struct T5Weights {                                     // prefix: "language_model."
  kernels::EmbeddingTable shared;                      // shared.weight [V, D] (= encoder/decoder.embed_tokens, stored once)
  Tensor<const float> encoder_relative_attention_bias; // encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight [buckets, heads]
  std::vector<T5EncoderLayerWeights> encoder_layers;   // encoder.block.{i}.*
  RmsNormWeights encoder_final_norm;                   // encoder.final_layer_norm.weight [D]
  Tensor<const float> decoder_relative_attention_bias; // decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight [buckets, heads]
  std::vector<T5DecoderLayerWeights> decoder_layers;   // decoder.block.{i}.*
  RmsNormWeights decoder_final_norm;                   // decoder.final_layer_norm.weight [D]
  LinearWeights lm_head;                               // lm_head.weight [V, D]; when tied, = shared
};

inline RmsNormWeights load_rms_norm(const WeightStore& store, const std::string& prefix, std::int64_t width,
                                    float eps) {
  return RmsNormWeights{store.get(prefix + ".weight", Shape{width}), eps};
}

inline void apply_rms_norm(const RmsNormWeights& norm, const float* x, std::int64_t rows, float* y) {
  kernels::rms_norm(x, rows, norm.weight.numel(), norm.weight.data(), norm.eps, y);
}

namespace t5_detail {
inline T5AttentionWeights load_attention(const WeightStore& store, const std::string& prefix,
                                         const T5ModelConfig& config) {
  const std::int64_t model = config.d_model, inner = config.inner_dim();
  T5AttentionWeights attention;
  attention.q = load_linear(store, prefix + "q", inner, model, false);
  attention.k = load_linear(store, prefix + "k", inner, model, false);
  attention.v = load_linear(store, prefix + "v", inner, model, false);
  attention.o = load_linear(store, prefix + "o", model, inner, false);
  return attention;
}

inline T5FeedForwardWeights load_feed_forward(const WeightStore& store, const std::string& prefix,
                                              const T5ModelConfig& config) {
  T5FeedForwardWeights feed_forward;
  feed_forward.layer_norm = load_rms_norm(store, prefix + "layer_norm", config.d_model, config.layer_norm_epsilon);
  const std::string dense = prefix + "DenseReluDense.";
  if (config.gated_feed_forward) {
    feed_forward.wi_0 = load_linear(store, dense + "wi_0", config.d_ff, config.d_model, false);
    feed_forward.wi_1 = load_linear(store, dense + "wi_1", config.d_ff, config.d_model, false);
  } else {
    feed_forward.wi_0 = load_linear(store, dense + "wi", config.d_ff, config.d_model, false);
  }
  feed_forward.wo = load_linear(store, dense + "wo", config.d_model, config.d_ff, false);
  return feed_forward;
}
}  // namespace t5_detail

inline T5Weights load_t5(const WeightStore& store, const std::string& prefix, const T5ModelConfig& config) {
  const std::int64_t model = config.d_model;
  const Shape bias_table{config.relative_attention_num_buckets, config.num_heads};
  // layer.0 of block `index`: RMSNorm + self-attention, and in block 0 the
  // stack's relative position bias table.
  auto load_self_attention = [&](const std::string& p, std::int64_t index, RmsNormWeights& norm,
                                 T5AttentionWeights& attention, Tensor<const float>& stack_bias_table) {
    norm = load_rms_norm(store, p + "0.layer_norm", model, config.layer_norm_epsilon);
    attention = t5_detail::load_attention(store, p + "0.SelfAttention.", config);
    if (index == 0) stack_bias_table = store.get(p + "0.SelfAttention.relative_attention_bias.weight", bias_table);
  };
  T5Weights weights;
  // Tied (original T5): HF's tie_weights makes lm_head the shared matrix and a
  // stored lm_head.weight is ignored; Flan-T5 (BLIP-2) has its own lm_head.
  TokenEmbedding embedding =
      load_token_embedding(store, prefix + "shared.weight", config.vocab_size, model, config.tie_word_embeddings);
  weights.shared = std::move(embedding.table);
  weights.lm_head = std::move(embedding.tied_head);  // untied: loaded after the decoder, below
  for (std::int64_t index = 0; index < config.num_layers; ++index) {
    const std::string p = prefix + "encoder.block." + std::to_string(index) + ".layer.";
    T5EncoderLayerWeights layer;
    load_self_attention(p, index, layer.self_attention_norm, layer.self_attention,
                        weights.encoder_relative_attention_bias);
    layer.feed_forward = t5_detail::load_feed_forward(store, p + "1.", config);
    weights.encoder_layers.push_back(std::move(layer));
  }
  weights.encoder_final_norm =
      load_rms_norm(store, prefix + "encoder.final_layer_norm", model, config.layer_norm_epsilon);
  for (std::int64_t index = 0; index < config.num_decoder_layers; ++index) {
    const std::string p = prefix + "decoder.block." + std::to_string(index) + ".layer.";
    T5DecoderLayerWeights layer;
    load_self_attention(p, index, layer.self_attention_norm, layer.self_attention,
                        weights.decoder_relative_attention_bias);
    layer.cross_attention_norm = load_rms_norm(store, p + "1.layer_norm", model, config.layer_norm_epsilon);
    layer.cross_attention = t5_detail::load_attention(store, p + "1.EncDecAttention.", config);
    layer.feed_forward = t5_detail::load_feed_forward(store, p + "2.", config);
    weights.decoder_layers.push_back(std::move(layer));
  }
  weights.decoder_final_norm =
      load_rms_norm(store, prefix + "decoder.final_layer_norm", model, config.layer_norm_epsilon);
  if (!config.tie_word_embeddings)
    weights.lm_head = load_linear(store, prefix + "lm_head", config.vocab_size, model, false);
  return weights;
}

// Scratch shared by the encoder and decoder blocks for `token_rows` tokens.
struct T5BlockScratch {
  Tensor<float> normed;     // [token_rows, D]
  Tensor<float> query;      // [token_rows, inner]
  Tensor<float> keys;       // [token_rows, inner]
  Tensor<float> values;     // [token_rows, inner]
  Tensor<float> context;    // [token_rows, inner]
  Tensor<float> projected;  // [token_rows, D]
  Tensor<float> gate;       // [token_rows, F]
  Tensor<float> up;         // [token_rows, F]

  void allocate(const T5ModelConfig& config, std::int64_t token_rows) {
    const std::int64_t model = config.d_model, inner = config.inner_dim();
    normed = Tensor<float>(Shape{token_rows, model});
    query = Tensor<float>(Shape{token_rows, inner});
    keys = Tensor<float>(Shape{token_rows, inner});
    values = Tensor<float>(Shape{token_rows, inner});
    context = Tensor<float>(Shape{token_rows, inner});
    projected = Tensor<float>(Shape{token_rows, model});
    gate = Tensor<float>(Shape{token_rows, config.d_ff});
    up = Tensor<float>(Shape{token_rows, config.gated_feed_forward ? config.d_ff : 1});
  }
};

namespace t5_detail {
// x += feed_forward(RMSNorm(x)) for token_rows rows.
inline void feed_forward_residual(const T5ModelConfig& config, const T5FeedForwardWeights& weights, float* x,
                                  std::int64_t token_rows, T5BlockScratch& scratch) {
  apply_rms_norm(weights.layer_norm, x, token_rows, scratch.normed.data());
  if (config.gated_feed_forward) {
    kernels::gated_feed_forward(scratch.normed.data(), token_rows, weights.wi_0, weights.wi_1, config.activation,
                                weights.wo, scratch.gate.data(), scratch.up.data(), scratch.projected.data());
  } else {
    kernels::feed_forward(scratch.normed.data(), token_rows, weights.wi_0, config.activation, weights.wo,
                          scratch.gate.data(), scratch.projected.data());
  }
  add_in_place(x, scratch.projected.data(), token_rows * config.d_model);
}

// x += o(context) for token_rows rows.
inline void output_residual(const T5ModelConfig& config, const T5AttentionWeights& attention, float* x,
                            std::int64_t token_rows, T5BlockScratch& scratch) {
  apply_linear(attention.o, scratch.context.data(), token_rows, scratch.projected.data());
  add_in_place(x, scratch.projected.data(), token_rows * config.d_model);
}
}  // namespace t5_detail

// ---- Encoder -------------------------------------------------------------------

struct T5EncoderState {
  std::int64_t rows = 0, tokens = 0;
  Tensor<float> hidden;         // [rows, T, D]  residual stream; the encoder output after the call
  T5BlockScratch scratch;       // [rows · T, ...]
  Tensor<float> position_bias;  // [heads, T, T]
  Tensor<float> additive_mask;  // [rows, T]  0 or finfo.min

  void allocate(const T5ModelConfig& config, std::int64_t row_count, std::int64_t token_count) {
    rows = row_count;
    tokens = token_count;
    hidden = Tensor<float>(Shape{rows, tokens, config.d_model});
    scratch.allocate(config, rows * tokens);
    position_bias = Tensor<float>(Shape{config.num_heads, tokens, tokens});
    additive_mask = Tensor<float>(Shape{rows, tokens});
  }
};

// inputs_embeds [rows, T, D], mask [rows, T] (1 = token, 0 = padding; null:
// all ones). Leaves the encoder output (after the final RMSNorm) in state.hidden.
inline void t5_encoder_forward(const T5ModelConfig& config, const T5Weights& weights, T5EncoderState& state,
                               const float* inputs_embeds, const std::int64_t* mask) {
  const std::int64_t rows = state.rows, tokens = state.tokens, token_rows = rows * tokens;
  const std::int64_t heads = config.num_heads, head_dim = config.d_kv, inner = config.inner_dim();
  check(tokens >= 1, "T5 encoder: no input tokens");
  std::memcpy(state.hidden.data(), inputs_embeds, sizeof(float) * static_cast<std::size_t>(token_rows * config.d_model));
  for (std::int64_t i = 0; i < token_rows; ++i)
    state.additive_mask.data()[i] = (mask == nullptr || mask[i] != 0) ? 0.0f : std::numeric_limits<float>::lowest();
  // First layer's relative position bias, bidirectional buckets, shared by all layers.
  kernels::t5_position_bias(weights.encoder_relative_attention_bias.data(), heads, tokens, tokens, true,
                            config.relative_attention_num_buckets, config.relative_attention_max_distance, 0,
                            state.position_bias.data());
  kernels::AttentionOptions options;  // scale 1: T5 does not scale q·k
  options.additive_mask = state.additive_mask.data();
  options.mask_query_tokens = 1;
  options.position_bias = state.position_bias.data();

  T5BlockScratch& scratch = state.scratch;
  float* x = state.hidden.data();
  for (const T5EncoderLayerWeights& layer : weights.encoder_layers) {
    apply_rms_norm(layer.self_attention_norm, x, token_rows, scratch.normed.data());
    apply_query_key_value(layer.self_attention.q, layer.self_attention.k, layer.self_attention.v, scratch.normed.data(),
                          token_rows, scratch.query.data(), scratch.keys.data(), scratch.values.data());
    kernels::attention(kernels::heads_view(scratch.query.data(), rows, tokens, heads, head_dim, inner),
                       kernels::heads_view(scratch.keys.data(), rows, tokens, heads, head_dim, inner),
                       kernels::heads_view(scratch.values.data(), rows, tokens, heads, head_dim, inner), options,
                       kernels::heads_view(scratch.context.data(), rows, tokens, heads, head_dim, inner));
    t5_detail::output_residual(config, layer.self_attention, x, token_rows, scratch);
    t5_detail::feed_forward_residual(config, layer.feed_forward, x, token_rows, scratch);
  }
  apply_rms_norm(weights.encoder_final_norm, x, token_rows, x);
}

// Cross-attention keys / values of every decoder layer over the encoder
// output [sources, T, D], with the encoder's padding mask (null: all ones).
inline CrossAttentionKV t5_cross_attention_kv(const T5ModelConfig& config, const T5Weights& weights,
                                              Tensor<const float> encoder_output, const std::int64_t* encoder_mask) {
  check(encoder_output.rank() == 3 && encoder_output.dim(2) == config.d_model, "T5: encoder output has shape ",
        encoder_output.shape(), ", expected [sources, tokens, ", config.d_model, "]");
  std::vector<CrossAttentionProjections> projections;
  for (const T5DecoderLayerWeights& layer : weights.decoder_layers)
    projections.push_back({&layer.cross_attention.k, &layer.cross_attention.v});
  return compute_cross_attention_kv(encoder_output, projections, config.num_heads, config.d_kv, encoder_mask);
}

// ---- Decoder -------------------------------------------------------------------

// Per-request decoder activations, caches and masks (CachedSequences; its
// additive mask holds 0 or finfo.min per key).
struct T5DecoderState : CachedSequences {
  Tensor<float> hidden;             // [rows, max_new, D]  residual stream; decoder output after the call
  T5BlockScratch scratch;           // [rows · max_new, ...]
  Tensor<float> position_bias;      // [heads, max_new, capacity]  causal buckets, this call's queries

  void allocate(const T5ModelConfig& config, std::int64_t row_count, std::int64_t tokens_per_call,
                std::int64_t total_capacity) {
    allocate_sequences(row_count, tokens_per_call, total_capacity, config.num_decoder_layers, config.num_heads,
                       config.d_kv);
    hidden = Tensor<float>(Shape{rows, max_new_tokens, config.d_model});
    scratch.allocate(config, rows * max_new_tokens);
    position_bias = Tensor<float>(Shape{config.num_heads, max_new_tokens, capacity});
  }
};

// Appends `new_tokens` decoder tokens per row: ids [rows, new_tokens], their
// 0/1 mask (null: ones). Rows read the encoder source row / rows_per_source of
// `cross`. Leaves the decoder output (after the final RMSNorm) in state.hidden.
inline void t5_decoder_forward(const T5ModelConfig& config, const T5Weights& weights, T5DecoderState& state,
                               const std::int64_t* ids, const std::int64_t* mask, std::int64_t new_tokens,
                               const CrossAttentionKV& cross, std::int64_t rows_per_source) {
  const std::int64_t rows = state.rows, heads = config.num_heads, head_dim = config.d_kv, inner = config.inner_dim();
  const std::int64_t past = state.length, total = past + new_tokens, token_rows = rows * new_tokens;
  check(cross.sources * rows_per_source == rows && cross.layers.size() == weights.decoder_layers.size(),
        "T5 decoder: ", rows, " rows but ", cross.sources, " encoder sources × ", rows_per_source,
        " rows per source");
  constexpr float lowest = std::numeric_limits<float>::lowest();

  state.append_mask(mask, new_tokens, lowest, "T5 decoder");
  kernels::embedding_lookup(weights.shared, ids, token_rows, state.hidden.data());
  // HF compute_bias(past + new, total)[:, :, -new:, :]: the causal buckets of
  // this call's queries against every key so far.
  kernels::t5_position_bias(weights.decoder_relative_attention_bias.data(), heads, new_tokens, total, false,
                            config.relative_attention_num_buckets, config.relative_attention_max_distance, past,
                            state.position_bias.data());
  kernels::AttentionOptions self_options;  // scale 1
  self_options.additive_mask = state.additive_mask.data();
  self_options.mask_query_tokens = 1;
  self_options.mask_key_stride = state.capacity;
  self_options.position_bias = state.position_bias.data();
  self_options.causal = true;
  self_options.causal_offset = past;
  self_options.causal_mask_value = lowest;  // (1 - causal · padding) · finfo.min: one value for both
  const kernels::AttentionOptions cross_options = cross_attention_options(cross, 1.0f, rows_per_source);

  T5BlockScratch& scratch = state.scratch;
  float* x = state.hidden.data();
  for (std::size_t layer_index = 0; layer_index < weights.decoder_layers.size(); ++layer_index) {
    const T5DecoderLayerWeights& layer = weights.decoder_layers[layer_index];
    kernels::KVCache& cache = state.self_caches[layer_index];

    // Causal self-attention over the cache.
    apply_rms_norm(layer.self_attention_norm, x, token_rows, scratch.normed.data());
    apply_query_key_value(layer.self_attention.q, layer.self_attention.k, layer.self_attention.v, scratch.normed.data(),
                          token_rows, scratch.query.data(), scratch.keys.data(), scratch.values.data());
    cache.append(scratch.keys.data(), scratch.values.data(), new_tokens * inner, inner, new_tokens);
    kernels::attention(kernels::heads_view(scratch.query.data(), rows, new_tokens, heads, head_dim, inner),
                       cache.keys(), cache.values(), self_options,
                       kernels::heads_view(scratch.context.data(), rows, new_tokens, heads, head_dim, inner));
    t5_detail::output_residual(config, layer.self_attention, x, token_rows, scratch);

    // Cross-attention to the encoder output (no position bias: HF's EncDecAttention
    // has no relative_attention_bias and adds zeros + the encoder mask).
    apply_rms_norm(layer.cross_attention_norm, x, token_rows, scratch.normed.data());
    apply_linear(layer.cross_attention.q, scratch.normed.data(), token_rows, scratch.query.data());
    const kernels::CrossAttentionCache& encoder = cross.layers[layer_index];
    kernels::attention(kernels::heads_view(scratch.query.data(), rows, new_tokens, heads, head_dim, inner),
                       encoder.keys(), encoder.values(), cross_options,
                       kernels::heads_view(scratch.context.data(), rows, new_tokens, heads, head_dim, inner));
    t5_detail::output_residual(config, layer.cross_attention, x, token_rows, scratch);

    t5_detail::feed_forward_residual(config, layer.feed_forward, x, token_rows, scratch);
  }
  apply_rms_norm(weights.decoder_final_norm, x, token_rows, x);
  state.length = total;
}

// logits [rows, V] = lm_head(decoder output [rows, D]). A tied head first
// scales the output by d_model^-0.5 (HF: "Rescale output before projecting on
// vocab"); `scratch` [rows, D] holds that scaled copy.
inline void t5_logits(const T5ModelConfig& config, const T5Weights& weights, const float* decoder_output,
                      std::int64_t rows, float* scratch, float* logits) {
  if (config.tie_word_embeddings) {
    const std::int64_t count = rows * config.d_model;
    std::memcpy(scratch, decoder_output, sizeof(float) * static_cast<std::size_t>(count));
    kernels::scale_in_place(scratch, count, static_cast<float>(std::pow(static_cast<double>(config.d_model), -0.5)));
    decoder_output = scratch;
  }
  apply_linear(weights.lm_head, decoder_output, rows, logits);
}

}  // namespace blip::nn
