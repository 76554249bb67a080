// blip/nn/opt.hpp: the OPT decoder (Zhang et al., 2022, "OPT: Open
// Pre-trained Transformer Language Models"), BLIP-2's decoder-only language model.
//
//   token embeddings (or BLIP-2's projected queries) [rows, new, word_embed_proj_dim]
//     -> project_in (only when word_embed_proj_dim != hidden)
//     + learned positions from the cumulative attention mask (+2)
//     -> L × decoder layer (pre-LN unless do_layer_norm_before is false):
//          x = x + out_proj(causal_attention(LN1(x)))   q scaled by head_dim^-0.5 BEFORE q·k
//          x = x + fc2(relu(fc1(LN2(x))))
//     -> final LayerNorm, project_out
//     -> LM head tied to the token embeddings (no bias) -> logits
//
// Mirrors HF OPTForCausalLM (modeling_opt.py, eager attention). The mask:
// a key hidden by padding or by causality gets finfo(float32).min (HF's
// `_prepare_4d_causal_attention_mask` fills one value for both), scores are
// clamped at that minimum, and a query row with every key hidden (a left-pad
// position) attends uniformly, as HF's float32 softmax does.
// Positions: HF OPTLearnedPositionalEmbedding takes cumsum(mask) * mask - 1 + 2,
// so left padding is skipped (kernels::opt_positions_from_mask).
//
// Every call appends its tokens' keys and values to the per-layer
// self-attention caches (OptState) and attends over the cache, so a prefill is
// "append everything" and decoding appends one token per row per step.
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
#include "blip/kernels/positions.hpp"
#include "blip/nn/cached_sequences.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct OptDecoderConfig {
  std::int64_t vocab_size = 50272;
  std::int64_t hidden_size = 2560;
  std::int64_t word_embed_proj_dim = 2560;  // token-embedding width; project_in/out exist iff != hidden_size
  std::int64_t ffn_dim = 10240;
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  std::int64_t max_position_embeddings = 2048;  // the learned table has 2 more rows (OPT's offset)
  bool do_layer_norm_before = true;             // pre-LN (every OPT but 350m)
  bool has_final_layer_norm = true;             // do_layer_norm_before and not _remove_final_layer_norm
  bool enable_bias = true;
  bool tie_word_embeddings = true;              // lm_head.weight is embed_tokens.weight
  kernels::Activation activation = kernels::Activation::Relu;
  // nn.LayerNorm's default: OPTConfig has no eps key.
  float layer_norm_eps = 1e-5f;

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

struct OptLayerWeights {                   // prefix: language_model.model.decoder.layers.{i}.
  LayerNormWeights self_attn_layer_norm;   // self_attn_layer_norm.{weight,bias} [H]
  LinearWeights q_proj;                    // self_attn.q_proj.weight [H, H], bias [H]
  LinearWeights k_proj;                    // self_attn.k_proj.weight [H, H], bias [H]
  LinearWeights v_proj;                    // self_attn.v_proj.weight [H, H], bias [H]
  LinearWeights out_proj;                  // self_attn.out_proj.weight [H, H], bias [H]
  LayerNormWeights final_layer_norm;       // final_layer_norm.{weight,bias} [H]  (the feed-forward's LN)
  LinearWeights fc1;                       // fc1.weight [F, H], bias [F]
  LinearWeights fc2;                       // fc2.weight [H, F], bias [H]
};

struct OptWeights {                         // prefix: "language_model."
  kernels::EmbeddingTable embed_tokens;     // model.decoder.embed_tokens.weight [V, W]   (W = word_embed_proj_dim)
  Tensor<const float> embed_positions;      // model.decoder.embed_positions.weight [max_positions + 2, H]
  LinearWeights project_in;                 // model.decoder.project_in.weight [H, W] (no bias; only when W != H)
  LinearWeights project_out;                // model.decoder.project_out.weight [W, H] (no bias; only when W != H)
  std::vector<OptLayerWeights> layers;      // model.decoder.layers.{i}.*
  LayerNormWeights final_layer_norm;        // model.decoder.final_layer_norm.{weight,bias} [H] (when present)
  LinearWeights lm_head;                    // lm_head.weight [V, W], tied: = embed_tokens (stored and held once)
};

inline OptWeights load_opt(const WeightStore& store, const std::string& prefix, const OptDecoderConfig& config) {
  check(config.hidden_size % config.num_attention_heads == 0, "text_config: hidden_size ", config.hidden_size,
        " is not a multiple of num_attention_heads ", config.num_attention_heads);
  const std::int64_t hidden = config.hidden_size, width = config.word_embed_proj_dim, ffn = config.ffn_dim;
  const std::string decoder = prefix + "model.decoder.";
  const bool bias = config.enable_bias;
  OptWeights weights;
  // HF ties lm_head to embed_tokens when tie_word_embeddings (every OPT);
  // save_pretrained then stores the matrix once. A stored lm_head.weight is
  // ignored in that case, as HF's tie_weights() overwrites it.
  TokenEmbedding embedding = load_token_embedding(store, decoder + "embed_tokens.weight", config.vocab_size, width,
                                                 config.tie_word_embeddings);
  weights.embed_tokens = std::move(embedding.table);
  weights.lm_head = std::move(embedding.tied_head);  // untied: loaded after the decoder, below
  weights.embed_positions =
      store.get(decoder + "embed_positions.weight", Shape{config.max_position_embeddings + 2, hidden});
  if (width != hidden) {
    weights.project_in = load_linear(store, decoder + "project_in", hidden, width, false);
    weights.project_out = load_linear(store, decoder + "project_out", width, hidden, false);
  }
  for (std::int64_t index = 0; index < config.num_hidden_layers; ++index) {
    const std::string p = decoder + "layers." + std::to_string(index) + ".";
    OptLayerWeights layer;
    layer.self_attn_layer_norm = load_layer_norm(store, p + "self_attn_layer_norm", hidden, config.layer_norm_eps);
    layer.q_proj = load_linear(store, p + "self_attn.q_proj", hidden, hidden, bias);
    layer.k_proj = load_linear(store, p + "self_attn.k_proj", hidden, hidden, bias);
    layer.v_proj = load_linear(store, p + "self_attn.v_proj", hidden, hidden, bias);
    layer.out_proj = load_linear(store, p + "self_attn.out_proj", hidden, hidden, bias);
    layer.final_layer_norm = load_layer_norm(store, p + "final_layer_norm", hidden, config.layer_norm_eps);
    layer.fc1 = load_linear(store, p + "fc1", ffn, hidden, bias);
    layer.fc2 = load_linear(store, p + "fc2", hidden, ffn, bias);
    weights.layers.push_back(std::move(layer));
  }
  if (config.has_final_layer_norm) {
    weights.final_layer_norm = load_layer_norm(store, decoder + "final_layer_norm", hidden, config.layer_norm_eps);
  }
  if (!config.tie_word_embeddings)
    weights.lm_head = load_linear(store, prefix + "lm_head", config.vocab_size, width, false);
  return weights;
}

// Per-request activations, caches and masks (CachedSequences; its additive
// mask holds 0 or finfo.min per key).
struct OptState : CachedSequences {
  Tensor<float> token_embeddings;   // [rows, max_new, W]  embed_tokens rows of ids fed by a caller
  Tensor<float> hidden;             // [rows, max_new, H]  residual stream
  Tensor<float> normed;             // [rows, max_new, H]
  Tensor<float> query;              // [rows, max_new, H]
  Tensor<float> new_keys;           // [rows, max_new, H]
  Tensor<float> new_values;         // [rows, max_new, H]
  Tensor<float> context;            // [rows, max_new, H]
  Tensor<float> intermediate;       // [rows, max_new, F]
  Tensor<float> output;             // [rows, max_new, W]  after final LN / project_out
  std::vector<std::int64_t> positions;        // [rows, max_new]

  void allocate(const OptDecoderConfig& config, std::int64_t row_count, std::int64_t tokens_per_call,
                std::int64_t total_capacity) {
    allocate_sequences(row_count, tokens_per_call, total_capacity, config.num_hidden_layers,
                       config.num_attention_heads, config.head_dim());
    const std::int64_t hidden_size = config.hidden_size;
    token_embeddings = Tensor<float>(Shape{rows, max_new_tokens, config.word_embed_proj_dim});
    hidden = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    normed = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    query = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    new_keys = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    new_values = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    context = Tensor<float>(Shape{rows, max_new_tokens, hidden_size});
    intermediate = Tensor<float>(Shape{rows, max_new_tokens, config.ffn_dim});
    output = Tensor<float>(Shape{rows, max_new_tokens, config.word_embed_proj_dim});
    positions.assign(static_cast<std::size_t>(rows * max_new_tokens), 0);
  }
};

// Appends `new_tokens` tokens per row: their input embeddings `embeddings`
// [rows, new_tokens, W] (token embeddings, or BLIP-2's projected queries) and
// their 0/1 mask [rows, new_tokens] (null: all ones). Leaves the decoder's
// output (after the final LayerNorm and project_out) in state.output
// [rows, new_tokens, W].
inline void opt_forward(const OptDecoderConfig& config, const OptWeights& weights, OptState& state,
                        const float* embeddings, const std::int64_t* mask, std::int64_t new_tokens) {
  const std::int64_t rows = state.rows, hidden = config.hidden_size, heads = config.num_attention_heads;
  const std::int64_t head_dim = config.head_dim(), past = state.length, total = past + new_tokens;
  const std::int64_t token_rows = rows * new_tokens;
  constexpr float lowest = std::numeric_limits<float>::lowest();

  // Mask bookkeeping and positions: HF passes the full [rows, past + new] mask every step.
  state.append_mask(mask, new_tokens, lowest, "OPT");
  for (std::int64_t row = 0; row < rows; ++row)
    kernels::opt_positions_from_mask(state.attention_mask.data() + row * state.capacity, 1, total, past,
                                     state.positions.data() + row * new_tokens);
  for (std::int64_t i = 0; i < token_rows; ++i) {
    const std::int64_t position = state.positions[static_cast<std::size_t>(i)];
    check(0 <= position && position < weights.embed_positions.dim(0), "OPT: position ", position - 2,
          " exceeds max_position_embeddings ", config.max_position_embeddings);
  }

  // Input embeddings (+ project_in) + positions.
  if (config.word_embed_proj_dim != hidden) {
    apply_linear(weights.project_in, embeddings, token_rows, state.hidden.data());
  } else {
    std::memcpy(state.hidden.data(), embeddings, sizeof(float) * static_cast<std::size_t>(token_rows * hidden));
  }
  for (std::int64_t i = 0; i < token_rows; ++i) {
    add_in_place(state.hidden.data() + i * hidden,
                 weights.embed_positions.data() + state.positions[static_cast<std::size_t>(i)] * hidden, hidden);
  }

  kernels::AttentionOptions options;
  options.scale = 1.0f;  // q is scaled before the product, as HF does
  options.additive_mask = state.additive_mask.data();
  options.mask_query_tokens = 1;
  options.mask_key_stride = state.capacity;
  options.causal = true;
  options.causal_offset = past;
  options.causal_mask_value = lowest;
  const float scaling = 1.0f / std::sqrt(static_cast<float>(head_dim));  // HF: head_dim ** -0.5
  const bool pre_norm = config.do_layer_norm_before;
  float* x = state.hidden.data();
  for (std::size_t layer_index = 0; layer_index < weights.layers.size(); ++layer_index) {
    const OptLayerWeights& layer = weights.layers[layer_index];
    kernels::KVCache& cache = state.self_caches[layer_index];

    // Self-attention.
    const float* attention_input = x;
    if (pre_norm) {
      apply_layer_norm(layer.self_attn_layer_norm, x, token_rows, state.normed.data());
      attention_input = state.normed.data();
    }
    apply_query_key_value(layer.q_proj, layer.k_proj, layer.v_proj, attention_input, token_rows, state.query.data(),
                          state.new_keys.data(), state.new_values.data());
    kernels::scale_in_place(state.query.data(), token_rows * hidden, scaling);
    cache.append(state.new_keys.data(), state.new_values.data(), new_tokens * hidden, hidden, new_tokens);
    kernels::attention(kernels::heads_view(state.query.data(), rows, new_tokens, heads, head_dim), cache.keys(),
                       cache.values(), options,
                       kernels::heads_view(state.context.data(), rows, new_tokens, heads, head_dim));
    apply_linear(layer.out_proj, state.context.data(), token_rows, state.normed.data());
    add_in_place(x, state.normed.data(), token_rows * hidden);
    if (!pre_norm) apply_layer_norm(layer.self_attn_layer_norm, x, token_rows, x);

    // Feed-forward.
    const float* ffn_input = x;
    if (pre_norm) {
      apply_layer_norm(layer.final_layer_norm, x, token_rows, state.query.data());
      ffn_input = state.query.data();
    }
    kernels::feed_forward(ffn_input, token_rows, layer.fc1, config.activation, layer.fc2, state.intermediate.data(),
                          state.normed.data());
    add_in_place(x, state.normed.data(), token_rows * hidden);
    if (!pre_norm) apply_layer_norm(layer.final_layer_norm, x, token_rows, x);
  }
  if (config.has_final_layer_norm) apply_layer_norm(weights.final_layer_norm, x, token_rows, x);
  if (config.word_embed_proj_dim != hidden) {
    apply_linear(weights.project_out, x, token_rows, state.output.data());
  } else {
    std::memcpy(state.output.data(), x, sizeof(float) * static_cast<std::size_t>(token_rows * hidden));
  }
  state.length = total;
}

// logits [rows, V] = lm_head(decoder output [rows, W]).
inline void opt_logits(const OptWeights& weights, const float* decoder_output, std::int64_t rows, float* logits) {
  apply_linear(weights.lm_head, decoder_output, rows, logits);
}

}  // namespace blip::nn
