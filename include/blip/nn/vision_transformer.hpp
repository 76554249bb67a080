// blip/nn/vision_transformer.hpp: the image encoder of BLIP and BLIP-2 (a ViT).
//
//   pixels [B,3,S,S]
//     -> patch embedding (conv p×p, stride p)          [B, P, H]   P = (S/p)²
//     -> prepend the class token, add position embeddings [B, 1+P, H]
//     -> L × pre-LN transformer block:
//          x = x + proj(attention(LN1(x)))       (qkv fused in one Linear)
//          x = x + fc2(gelu(fc1(LN2(x))))
//     -> post_layernorm                            = last_hidden_state
//     pooled = post_layernorm(last_hidden_state[:, 0])   (HF applies it a SECOND time to the CLS row)
//
// Mirrors HF BlipVisionModel (and Blip2VisionModel, which differs only in
// eps 1e-6 and in storing the qkv bias as separate q_bias / v_bias with no
// key bias).
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
#include "blip/kernels/feed_forward.hpp"
#include "blip/kernels/patch_embedding.hpp"
#include "blip/nn/loading.hpp"

namespace blip::nn {

struct VisionTransformerConfig {
  std::int64_t hidden_size = 768;
  std::int64_t intermediate_size = 3072;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t image_size = 384;
  std::int64_t patch_size = 16;
  std::int64_t num_channels = 3;
  float layer_norm_eps = 1e-5f;
  kernels::Activation activation = kernels::Activation::GeluErf;  // hidden_act

  std::int64_t patches_per_side() const { return image_size / patch_size; }
  std::int64_t num_patches() const { return patches_per_side() * patches_per_side(); }
  std::int64_t num_positions() const { return num_patches() + 1; }  // + the class token
  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// From an HF BlipVisionConfig or Blip2VisionConfig (same key names).
template <class HfVisionConfig>
VisionTransformerConfig make_vision_transformer_config(const HfVisionConfig& vision) {
  VisionTransformerConfig config;
  config.hidden_size = vision.hidden_size;
  config.intermediate_size = vision.intermediate_size;
  config.num_hidden_layers = vision.num_hidden_layers;
  config.num_attention_heads = vision.num_attention_heads;
  config.image_size = vision.image_size;
  config.patch_size = vision.patch_size;
  config.num_channels = vision.num_channels;
  config.layer_norm_eps = static_cast<float>(vision.layer_norm_eps);
  config.activation = kernels::parse_activation(vision.hidden_act);
  return config;
}

// Whether the fused qkv projection has a bias.
enum class QkvBiasLayout {
  // self_attn.qkv.bias [3H]: BLIP, and BLIP-2 as transformers >= 4.3x saves it
  // (Blip2Attention makes cat(q_bias, zeros, v_bias) one Parameter, so the
  // key part is stored, and trained, like the others). Older BLIP-2
  // conversions store self_attn.q_bias [H] and self_attn.v_bias [H] with no
  // key bias; those load too.
  Fused,
  None,  // BLIP-2 with vision_config.qkv_bias = false: no qkv bias at all
};

struct VisionLayerWeights {             // prefix: <vision>.encoder.layers.{i}.
  LayerNormWeights layer_norm1;         // layer_norm1.{weight,bias} [H]
  LinearWeights qkv;                    // self_attn.qkv.weight [3H, H], bias [3H] (or q_bias/v_bias)
  LinearWeights projection;             // self_attn.projection.weight [H, H], bias [H]
  LayerNormWeights layer_norm2;         // layer_norm2.{weight,bias} [H]
  LinearWeights fc1;                    // mlp.fc1.weight [I, H], bias [I]
  LinearWeights fc2;                    // mlp.fc2.weight [H, I], bias [H]
};

struct VisionTransformerWeights {           // prefix: e.g. "vision_model."
  kernels::PatchEmbeddingWeights patch_embedding;  // embeddings.patch_embedding.weight [H, C, p, p], bias [H]
  Tensor<const float> class_embedding;      // embeddings.class_embedding [1, 1, H]
  Tensor<const float> position_embedding;   // embeddings.position_embedding [1, 1+P, H]
  std::vector<VisionLayerWeights> layers;   // encoder.layers.{i}.*
  LayerNormWeights post_layernorm;          // post_layernorm.{weight,bias} [H]
};

inline VisionTransformerWeights load_vision_transformer(const WeightStore& store, const std::string& prefix,
                                                        const VisionTransformerConfig& config,
                                                        QkvBiasLayout bias_layout = QkvBiasLayout::Fused) {
  const std::int64_t hidden = config.hidden_size, inner = config.intermediate_size;
  check(config.image_size % config.patch_size == 0, "vision config: image_size ", config.image_size,
        " is not a multiple of patch_size ", config.patch_size);
  VisionTransformerWeights weights;
  weights.patch_embedding = kernels::PatchEmbeddingWeights::prepare(
      store.get_for_repacking(prefix + "embeddings.patch_embedding.weight",
                              Shape{hidden, config.num_channels, config.patch_size, config.patch_size}),
      store.get(prefix + "embeddings.patch_embedding.bias", Shape{hidden}));
  weights.class_embedding = store.get(prefix + "embeddings.class_embedding", Shape{1, 1, hidden});
  weights.position_embedding =
      store.get(prefix + "embeddings.position_embedding", Shape{1, config.num_positions(), hidden});
  for (std::int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string p = prefix + "encoder.layers." + std::to_string(layer) + ".";
    VisionLayerWeights block;
    block.layer_norm1 = load_layer_norm(store, p + "layer_norm1", hidden, config.layer_norm_eps);
    const bool separate_query_value_bias =
        !store.contains(p + "self_attn.qkv.bias") && store.contains(p + "self_attn.q_bias");
    if (bias_layout == QkvBiasLayout::None) {
      block.qkv = load_linear(store, p + "self_attn.qkv", 3 * hidden, hidden, false);
    } else if (!separate_query_value_bias) {
      block.qkv = load_linear(store, p + "self_attn.qkv", 3 * hidden, hidden);
    } else {
      // Older BLIP-2 layout: cat(q_bias, zeros_like(v_bias), v_bias), built once here.
      Tensor<const float> query_bias = store.get(p + "self_attn.q_bias", Shape{hidden});
      Tensor<const float> value_bias = store.get(p + "self_attn.v_bias", Shape{hidden});
      Tensor<float> fused_bias(Shape{3 * hidden});
      std::memcpy(fused_bias.data(), query_bias.data(), sizeof(float) * hidden);
      std::memcpy(fused_bias.data() + 2 * hidden, value_bias.data(), sizeof(float) * hidden);
      const std::string qkv = p + "self_attn.qkv.weight";
      block.qkv = LinearWeights::prepare(store.get_matrix_for_repacking(qkv, 3 * hidden, hidden), fused_bias,
                                         store.linear_precision(qkv), store.linear_activations());
    }
    block.projection = load_linear(store, p + "self_attn.projection", hidden, hidden);
    block.layer_norm2 = load_layer_norm(store, p + "layer_norm2", hidden, config.layer_norm_eps);
    block.fc1 = load_linear(store, p + "mlp.fc1", inner, hidden);
    block.fc2 = load_linear(store, p + "mlp.fc2", hidden, inner);
    weights.layers.push_back(std::move(block));
  }
  weights.post_layernorm = load_layer_norm(store, prefix + "post_layernorm", hidden, config.layer_norm_eps);
  return weights;
}

// Activations for one batch of images, allocated once per request.
struct VisionTransformerState {
  std::int64_t batch = 0;
  Tensor<float> patches;   // [B, P, H]   patch embeddings
  Tensor<float> hidden;    // [B, T, H]   residual stream (T = 1 + P)
  Tensor<float> normed;    // [B, T, H]   LayerNorm output / projection output
  Tensor<float> qkv;       // [B, T, 3H]
  Tensor<float> context;   // [B, T, H]   attention output, heads merged
  Tensor<float> mlp;       // [B, T, I]

  void allocate(const VisionTransformerConfig& config, std::int64_t batch_size) {
    if (batch == batch_size) return;
    batch = batch_size;
    const std::int64_t tokens = config.num_positions(), hidden_size = config.hidden_size;
    patches = Tensor<float>(Shape{batch, config.num_patches(), hidden_size});
    hidden = Tensor<float>(Shape{batch, tokens, hidden_size});
    normed = Tensor<float>(Shape{batch, tokens, hidden_size});
    qkv = Tensor<float>(Shape{batch, tokens, 3 * hidden_size});
    context = Tensor<float>(Shape{batch, tokens, hidden_size});
    mlp = Tensor<float>(Shape{batch, tokens, config.intermediate_size});
  }
};

// Runs the ViT on pixel_values [B, C, S, S]. Writes last_hidden_state
// [B, 1+P, H] and, if not empty, pooled_output [B, H].
inline void vision_transformer_forward(const VisionTransformerConfig& config, const VisionTransformerWeights& weights,
                                       Tensor<const float> pixel_values, VisionTransformerState& state,
                                       Tensor<float> last_hidden_state, Tensor<float> pooled_output = {}) {
  const Shape expected_pixels{pixel_values.rank() == 4 ? pixel_values.dim(0) : 0, config.num_channels,
                              config.image_size, config.image_size};
  check(pixel_values.rank() == 4 && pixel_values.shape() == expected_pixels, "vision model: pixel_values has shape ",
        pixel_values.shape(), ", expected [batch, ", config.num_channels, ", ", config.image_size, ", ",
        config.image_size, "] (the config's image_size)");
  const std::int64_t batch = pixel_values.dim(0), tokens = config.num_positions(), hidden = config.hidden_size;
  const std::int64_t heads = config.num_attention_heads, head_dim = config.head_dim();
  const std::int64_t rows = batch * tokens;
  check(last_hidden_state.shape() == Shape{batch, tokens, hidden}, "vision model: last_hidden_state has shape ",
        last_hidden_state.shape(), ", expected ", Shape{batch, tokens, hidden});
  state.allocate(config, batch);

  // Embeddings: [CLS ; patches] + positions.
  kernels::patch_embedding(pixel_values, weights.patch_embedding, state.patches);
  const float* positions = weights.position_embedding.data();
  for (std::int64_t image = 0; image < batch; ++image) {
    float* row = state.hidden.data() + image * tokens * hidden;
    std::memcpy(row, weights.class_embedding.data(), sizeof(float) * hidden);
    std::memcpy(row + hidden, state.patches.data() + image * config.num_patches() * hidden,
                sizeof(float) * config.num_patches() * hidden);
    add_in_place(row, positions, tokens * hidden);
  }

  const kernels::Activation activation = config.activation;
  kernels::AttentionOptions attention_options{1.0f / std::sqrt(static_cast<float>(head_dim))};
  for (const VisionLayerWeights& layer : weights.layers) {
    // A model run with bf16 activations multiplies the attention's products in bf16 too (AttentionOptions::
    // products), as PyTorch's bf16 path does: at 577 tokens they are a tenth of the ViT's multiply-adds and took a quarter
    // of its time in f32 next to bf16 Linear layers (a profile on Zen 4).
    attention_options.products = layer.qkv.activation_precision() == ActivationPrecision::BF16
                                     ? ActivationPrecision::BF16
                                     : ActivationPrecision::F32;
    // x = x + projection(attention(LN1(x)))
    apply_layer_norm(layer.layer_norm1, state.hidden.data(), rows, state.normed.data());
    apply_linear(layer.qkv, state.normed.data(), rows, state.qkv.data());
    // qkv columns are [q heads | k heads | v heads], as HF's reshape(B, T, 3, heads, head_dim).
    const kernels::HeadsView query =
        kernels::heads_view(state.qkv.data(), batch, tokens, heads, head_dim, 3 * hidden);
    const kernels::HeadsView key =
        kernels::heads_view(state.qkv.data() + hidden, batch, tokens, heads, head_dim, 3 * hidden);
    const kernels::HeadsView value =
        kernels::heads_view(state.qkv.data() + 2 * hidden, batch, tokens, heads, head_dim, 3 * hidden);
    const kernels::HeadsView context = kernels::heads_view(state.context.data(), batch, tokens, heads, head_dim, hidden);
    kernels::attention(query, key, value, attention_options, context);
    apply_linear(layer.projection, state.context.data(), rows, state.normed.data());
    add_in_place(state.hidden.data(), state.normed.data(), rows * hidden);

    // x = x + fc2(act(fc1(LN2(x))))
    apply_layer_norm(layer.layer_norm2, state.hidden.data(), rows, state.normed.data());
    kernels::feed_forward(state.normed.data(), rows, layer.fc1, activation, layer.fc2, state.mlp.data(),
                          state.normed.data());
    add_in_place(state.hidden.data(), state.normed.data(), rows * hidden);
  }

  apply_layer_norm(weights.post_layernorm, state.hidden.data(), rows, last_hidden_state.data());
  if (!pooled_output.empty()) {
    check(pooled_output.shape() == Shape{batch, hidden}, "vision model: pooled_output has shape ",
          pooled_output.shape(), ", expected ", Shape{batch, hidden});
    // HF: pooled_output = post_layernorm(last_hidden_state[:, 0]), i.e. the
    // CLS row goes through post_layernorm twice.
    for (std::int64_t image = 0; image < batch; ++image) {
      apply_layer_norm(weights.post_layernorm, last_hidden_state.data() + image * tokens * hidden, 1,
                       pooled_output.data() + image * hidden);
    }
  }
}

}  // namespace blip::nn
