// blip/nn/qformer.hpp: the Querying Transformer of BLIP-2 (Li et al., 2023,
// "BLIP-2: Bootstrapping Language-Image Pre-training with Frozen Image
// Encoders and Large Language Models", figure 2).
//
//   learned queries [Q, H]            text tokens (matching / ITC only)
//          │                                 │ word + position embeddings
//          └──────────── concat ─────────────┘
//                          │ LayerNorm                     (HF qformer.layernorm)
//     L × post-LN BERT layer:
//          x = LN(x + dense(self_attention(x)))            queries and text see each other
//          q = LN(q + dense(cross_attention(q, image)))    QUERY rows only, and only in layers
//                                                          with layer % cross_attention_frequency == 0
//          q = LN(q + output_query(gelu(intermediate_query(q))))   query rows
//          t = LN(t + output(gelu(intermediate(t))))               text rows
//          ▼
//   [Q + T, H]: the first Q rows are the query outputs the language model sees
//
// Mirrors HF Blip2QFormerModel / Blip2QFormerLayer (modeling_blip_2.py). The
// self-attention mask is BERT's (1 - mask) * -10000 over [queries ; text], with
// no causal part (HF only builds the bidirectional variant for BLIP-2). The
// cross-attention mask over the image is all ones in every HF caller, so no
// mask is applied there. The Q-Former runs once per image (and once per text
// for matching), so it keeps no cache: one call, all tokens.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/kernels/activations.hpp"
#include "blip/kernels/attention.hpp"
#include "blip/kernels/embedding.hpp"
#include "blip/kernels/feed_forward.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct QFormerConfig {
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t intermediate_size = 3072;
  std::int64_t encoder_hidden_size = 1408;       // image embedding width (the ViT's hidden size)
  std::int64_t cross_attention_frequency = 2;    // layer i cross-attends iff i % frequency == 0
  std::int64_t vocab_size = 30522;               // text embeddings (Blip2ForImageTextRetrieval only)
  std::int64_t max_position_embeddings = 512;
  float layer_norm_eps = 1e-12f;
  kernels::Activation activation = kernels::Activation::GeluErf;
  bool has_text_feed_forward = false;            // HF use_qformer_text_input: builds intermediate/output

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool has_cross_attention(std::int64_t layer) const { return layer % cross_attention_frequency == 0; }
};

// Blip2QFormerAttention: multi-head attention + output dense + residual LayerNorm.
struct QFormerAttentionWeights {  // prefix: qformer.encoder.layer.{i}.attention. (or .crossattention.)
  LinearWeights query;            // attention.query.weight [H, H]
  LinearWeights key;              // attention.key.weight   [H, H] (cross: [H, encoder_hidden])
  LinearWeights value;            // attention.value.weight [H, H] (cross: [H, encoder_hidden])
  LinearWeights output_dense;     // output.dense.weight [H, H]
  LayerNormWeights output_norm;   // output.LayerNorm.{weight,bias} [H]
};

struct QFormerLayerWeights {               // prefix: qformer.encoder.layer.{i}.
  QFormerAttentionWeights self_attention;  // attention.*
  QFormerAttentionWeights cross_attention; // crossattention.* (layers with cross-attention only)
  LinearWeights intermediate_query;        // intermediate_query.dense.weight [I, H]
  LinearWeights output_query;              // output_query.dense.weight [H, I]
  LayerNormWeights output_query_norm;      // output_query.LayerNorm.{weight,bias} [H]
  LinearWeights intermediate;              // intermediate.dense.weight [I, H]  (text rows; use_qformer_text_input)
  LinearWeights output;                    // output.dense.weight [H, I]
  LayerNormWeights output_norm;            // output.LayerNorm.{weight,bias} [H]
};

struct QFormerWeights {                   // prefix: "qformer."
  LayerNormWeights layernorm;             // layernorm.{weight,bias} [H], over [queries ; text embeddings]
  std::vector<QFormerLayerWeights> layers; // encoder.layer.{i}.*
};

// Blip2TextEmbeddings (Blip2ForImageTextRetrieval's `embeddings.`): word +
// absolute position embeddings, no LayerNorm (the Q-Former's layernorm follows).
struct QFormerTextEmbeddingWeights {
  kernels::EmbeddingTable word_embeddings;  // embeddings.word_embeddings.weight [V, H]
  Tensor<const float> position_embeddings;  // embeddings.position_embeddings.weight [max_positions, H]
};

inline QFormerAttentionWeights load_qformer_attention(const WeightStore& store, const std::string& prefix,
                                                      const QFormerConfig& config, std::int64_t key_value_width) {
  const std::int64_t hidden = config.hidden_size;
  QFormerAttentionWeights attention;
  attention.query = load_linear(store, prefix + "attention.query", hidden, hidden);
  attention.key = load_linear(store, prefix + "attention.key", hidden, key_value_width);
  attention.value = load_linear(store, prefix + "attention.value", hidden, key_value_width);
  attention.output_dense = load_linear(store, prefix + "output.dense", hidden, hidden);
  attention.output_norm = load_layer_norm(store, prefix + "output.LayerNorm", hidden, config.layer_norm_eps);
  return attention;
}

inline QFormerWeights load_qformer(const WeightStore& store, const std::string& prefix, const QFormerConfig& config) {
  check(config.hidden_size % config.num_attention_heads == 0, "qformer_config: hidden_size ", config.hidden_size,
        " is not a multiple of num_attention_heads ", config.num_attention_heads);
  check(config.cross_attention_frequency >= 1, "qformer_config: cross_attention_frequency must be >= 1, got ",
        config.cross_attention_frequency);
  const std::int64_t hidden = config.hidden_size, inner = config.intermediate_size;
  QFormerWeights weights;
  weights.layernorm = load_layer_norm(store, prefix + "layernorm", hidden, config.layer_norm_eps);
  for (std::int64_t index = 0; index < config.num_hidden_layers; ++index) {
    const std::string p = prefix + "encoder.layer." + std::to_string(index) + ".";
    QFormerLayerWeights layer;
    layer.self_attention = load_qformer_attention(store, p + "attention.", config, hidden);
    if (config.has_cross_attention(index)) {
      layer.cross_attention = load_qformer_attention(store, p + "crossattention.", config, config.encoder_hidden_size);
    }
    layer.intermediate_query = load_linear(store, p + "intermediate_query.dense", inner, hidden);
    layer.output_query = load_linear(store, p + "output_query.dense", hidden, inner);
    layer.output_query_norm = load_layer_norm(store, p + "output_query.LayerNorm", hidden, config.layer_norm_eps);
    if (config.has_text_feed_forward) {
      layer.intermediate = load_linear(store, p + "intermediate.dense", inner, hidden);
      layer.output = load_linear(store, p + "output.dense", hidden, inner);
      layer.output_norm = load_layer_norm(store, p + "output.LayerNorm", hidden, config.layer_norm_eps);
    }
    weights.layers.push_back(std::move(layer));
  }
  return weights;
}

inline QFormerTextEmbeddingWeights load_qformer_text_embeddings(const WeightStore& store, const std::string& prefix,
                                                                const QFormerConfig& config) {
  QFormerTextEmbeddingWeights embeddings;
  embeddings.word_embeddings =
      load_embedding_table(store, prefix + "word_embeddings.weight", config.vocab_size, config.hidden_size);
  embeddings.position_embeddings =
      store.get(prefix + "position_embeddings.weight", Shape{config.max_position_embeddings, config.hidden_size});
  return embeddings;
}

// Blip2TextEmbeddings: out [B, T, H] = word_embeddings[ids] + position_embeddings[0..T-1].
inline void qformer_text_embeddings(const QFormerConfig& config, const QFormerTextEmbeddingWeights& weights,
                                    Tensor<const std::int64_t> input_ids, float* out) {
  check(input_ids.rank() == 2 && input_ids.dim(1) >= 1, "Q-Former text: input_ids must be [batch, tokens], got ",
        input_ids.shape());
  const std::int64_t batch = input_ids.dim(0), tokens = input_ids.dim(1), hidden = config.hidden_size;
  check(tokens <= config.max_position_embeddings, "Q-Former text: ", tokens,
        " tokens exceed max_position_embeddings ", config.max_position_embeddings);
  kernels::embedding_lookup(weights.word_embeddings, input_ids.data(), batch * tokens, out);
  for (std::int64_t row = 0; row < batch; ++row)
    for (std::int64_t t = 0; t < tokens; ++t)
      add_in_place(out + (row * tokens + t) * hidden, weights.position_embeddings.data() + t * hidden, hidden);
}

// Per-call buffers. allocate() reuses them when the sizes have not grown.
struct QFormerState {
  Tensor<float> hidden;        // [B, T, H]  residual stream (T = queries + text)
  Tensor<float> attention;     // [B, T, H]  after self-attention
  Tensor<float> query;         // [B, T, H]  projections / context
  Tensor<float> key;           // [B, max(T, image tokens), H]
  Tensor<float> value;         // [B, max(T, image tokens), H]
  Tensor<float> context;       // [B, T, H]
  Tensor<float> rows;          // [B, T, H]  contiguous query (or text) rows
  Tensor<float> projected;     // [B, T, H]
  Tensor<float> intermediate;  // [B, T, I]
  Tensor<float> additive_mask; // [B, T]     (1 - mask) * -10000

  void allocate(const QFormerConfig& config, std::int64_t batch, std::int64_t tokens, std::int64_t image_tokens) {
    const std::int64_t hidden_size = config.hidden_size, key_tokens = std::max(tokens, image_tokens);
    auto ensure = [](Tensor<float>& tensor, const Shape& shape) {
      if (tensor.shape() != shape) tensor = Tensor<float>(shape);
    };
    ensure(hidden, Shape{batch, tokens, hidden_size});
    ensure(attention, Shape{batch, tokens, hidden_size});
    ensure(query, Shape{batch, tokens, hidden_size});
    ensure(key, Shape{batch, key_tokens, hidden_size});
    ensure(value, Shape{batch, key_tokens, hidden_size});
    ensure(context, Shape{batch, tokens, hidden_size});
    ensure(rows, Shape{batch, tokens, hidden_size});
    ensure(projected, Shape{batch, tokens, hidden_size});
    ensure(intermediate, Shape{batch, tokens, config.intermediate_size});
    ensure(additive_mask, Shape{batch, tokens});
  }
};

namespace detail {

// Copies rows [first, first + count) of every batch entry of x [B, T, H] into
// out [B, count, H] (or back, when `to_sequence`).
inline void copy_token_rows(float* sequence, float* compact, std::int64_t batch, std::int64_t tokens,
                            std::int64_t first, std::int64_t count, std::int64_t hidden, bool to_sequence) {
  for (std::int64_t row = 0; row < batch; ++row) {
    float* in_sequence = sequence + (row * tokens + first) * hidden;
    float* in_compact = compact + row * count * hidden;
    if (to_sequence) {
      std::memcpy(in_sequence, in_compact, sizeof(float) * static_cast<std::size_t>(count * hidden));
    } else {
      std::memcpy(in_compact, in_sequence, sizeof(float) * static_cast<std::size_t>(count * hidden));
    }
  }
}

// x [rows, H] ← LN(x + dense(context)): Blip2QFormerSelfOutput. `scratch` [rows, H].
inline void attention_output(const QFormerAttentionWeights& attention, const float* context, std::int64_t rows,
                             float* x, float* scratch) {
  apply_linear(attention.output_dense, context, rows, scratch);
  add_in_place(scratch, x, rows * attention.output_dense.out_features());
  apply_layer_norm(attention.output_norm, scratch, rows, x);
}

// x [rows, H] ← LN(x + output(act(intermediate(x)))): Blip2QFormerIntermediate + Blip2QFormerOutput.
inline void feed_forward_block(const LinearWeights& intermediate, const LinearWeights& output,
                               const LayerNormWeights& norm, kernels::Activation activation, float* x,
                               std::int64_t rows, float* hidden_scratch, float* scratch) {
  kernels::feed_forward(x, rows, intermediate, activation, output, hidden_scratch, scratch);
  add_in_place(scratch, x, rows * output.out_features());
  apply_layer_norm(norm, scratch, rows, x);
}

}  // namespace detail

// Runs the Q-Former on `input` [B, T, H] (the query tokens, followed for
// matching by the text embeddings; before the layernorm) with the first
// `query_length` rows of every entry being queries. `mask` [B, T] (1 = attend)
// or null; `image` [B, P, encoder_hidden] or empty (allowed only when no
// layer cross-attends to it: query_length == 0). Writes last_hidden_state
// [B, T, H] to `out`.
inline void qformer_forward(const QFormerConfig& config, const QFormerWeights& weights, Tensor<const float> input,
                            std::int64_t query_length, const std::int64_t* mask, Tensor<const float> image,
                            QFormerState& state, Tensor<float> out) {
  check(input.rank() == 3 && input.dim(2) == config.hidden_size, "Q-Former: input has shape ", input.shape(),
        ", expected [batch, tokens, ", config.hidden_size, "]");
  const std::int64_t batch = input.dim(0), tokens = input.dim(1), hidden = config.hidden_size;
  const std::int64_t heads = config.num_attention_heads, head_dim = config.head_dim();
  check(tokens >= 1 && 0 <= query_length && query_length <= tokens, "Q-Former: query_length ", query_length,
        " outside [0, ", tokens, "]");
  check(out.shape() == input.shape(), "Q-Former: output has shape ", out.shape(), ", expected ", input.shape());
  const bool needs_image = query_length > 0;
  std::int64_t image_tokens = 0;
  if (needs_image) {
    check(image.rank() == 3 && image.dim(0) == batch && image.dim(2) == config.encoder_hidden_size,
          "Q-Former: image embeddings have shape ", image.shape(), ", expected [", batch, ", tokens, ",
          config.encoder_hidden_size, "]");
    image_tokens = image.dim(1);
  }
  const std::int64_t text_length = tokens - query_length;
  check(text_length == 0 || config.has_text_feed_forward, "Q-Former: ", text_length,
        " text tokens given, but this Q-Former has no text feed-forward (qformer_config.use_qformer_text_input is false)");
  state.allocate(config, batch, tokens, image_tokens);
  const std::int64_t rows = batch * tokens;

  // HF get_extended_attention_mask: (1 - mask) * -10000, broadcast over queries.
  const float* additive_mask = nullptr;
  if (mask) {
    for (std::int64_t i = 0; i < rows; ++i) state.additive_mask.data()[i] = mask[i] ? 0.0f : -10000.0f;
    additive_mask = state.additive_mask.data();
  }

  apply_layer_norm(weights.layernorm, input.data(), rows, state.hidden.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (std::size_t layer_index = 0; layer_index < weights.layers.size(); ++layer_index) {
    const QFormerLayerWeights& layer = weights.layers[layer_index];

    // Self-attention over [queries ; text].
    apply_query_key_value(layer.self_attention.query, layer.self_attention.key, layer.self_attention.value,
                          state.hidden.data(), rows, state.query.data(), state.key.data(), state.value.data());
    kernels::AttentionOptions self_options;
    self_options.scale = scale;
    self_options.additive_mask = additive_mask;
    kernels::attention(kernels::heads_view(state.query.data(), batch, tokens, heads, head_dim),
                       kernels::heads_view(state.key.data(), batch, tokens, heads, head_dim),
                       kernels::heads_view(state.value.data(), batch, tokens, heads, head_dim), self_options,
                       kernels::heads_view(state.context.data(), batch, tokens, heads, head_dim));
    std::memcpy(state.attention.data(), state.hidden.data(), sizeof(float) * static_cast<std::size_t>(rows * hidden));
    detail::attention_output(layer.self_attention, state.context.data(), rows, state.attention.data(),
                             state.projected.data());

    if (query_length > 0) {
      // Query rows: cross-attention to the image (in this layer's turn), then
      // their own feed-forward branch.
      const std::int64_t query_rows = batch * query_length;
      detail::copy_token_rows(state.attention.data(), state.rows.data(), batch, tokens, 0, query_length, hidden, false);
      if (config.has_cross_attention(static_cast<std::int64_t>(layer_index))) {
        const QFormerAttentionWeights& cross = layer.cross_attention;
        apply_linear(cross.query, state.rows.data(), query_rows, state.query.data());
        apply_linear(cross.key, image.data(), batch * image_tokens, state.key.data());
        apply_linear(cross.value, image.data(), batch * image_tokens, state.value.data());
        kernels::AttentionOptions cross_options;
        cross_options.scale = scale;
        kernels::attention(kernels::heads_view(state.query.data(), batch, query_length, heads, head_dim),
                           kernels::heads_view(state.key.data(), batch, image_tokens, heads, head_dim),
                           kernels::heads_view(state.value.data(), batch, image_tokens, heads, head_dim),
                           cross_options,
                           kernels::heads_view(state.context.data(), batch, query_length, heads, head_dim));
        detail::attention_output(cross, state.context.data(), query_rows, state.rows.data(), state.projected.data());
      }
      detail::feed_forward_block(layer.intermediate_query, layer.output_query, layer.output_query_norm,
                                 config.activation, state.rows.data(), query_rows, state.intermediate.data(),
                                 state.projected.data());
      detail::copy_token_rows(state.hidden.data(), state.rows.data(), batch, tokens, 0, query_length, hidden, true);
    }
    if (text_length > 0) {
      const std::int64_t text_rows = batch * text_length;
      detail::copy_token_rows(state.attention.data(), state.rows.data(), batch, tokens, query_length, text_length,
                              hidden, false);
      detail::feed_forward_block(layer.intermediate, layer.output, layer.output_norm, config.activation,
                                 state.rows.data(), text_rows, state.intermediate.data(), state.projected.data());
      detail::copy_token_rows(state.hidden.data(), state.rows.data(), batch, tokens, query_length, text_length, hidden,
                              true);
    }
  }
  std::memcpy(out.data(), state.hidden.data(), sizeof(float) * static_cast<std::size_t>(rows * hidden));
}

}  // namespace blip::nn
