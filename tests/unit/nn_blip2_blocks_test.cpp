// The BLIP-2 nn blocks on small random weights against plain double-precision
// references written from HF's modules (Blip2QFormerLayer, OPTDecoderLayer,
// Blip2Attention): the Q-Former with and without cross-attention layers and
// with text rows, the OPT decoder (pre- and post-LN, left padding, prefill then
// cached decoding), and the ViT's two qkv-bias layouts. Tolerances are scaled
// by the reference's largest magnitude.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/nn/opt.hpp"
#include "blip/nn/qformer.hpp"
#include "blip/nn/vision_transformer.hpp"
#include "reference_blocks.hpp"
#include "test_support.hpp"

namespace nn_blip2_blocks_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using namespace blip::test::reference;

// ---- the Q-Former -------------------------------------------------------------

struct QFormerCase {
  blip::nn::QFormerConfig config;
  RandomCheckpoint weights{7};
};

void build_qformer_weights(QFormerCase& test) {
  const auto& c = test.config;
  test.weights.layer_norm("qformer.layernorm", c.hidden_size);
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = "qformer.encoder.layer." + std::to_string(layer) + ".";
    auto attention_weights = [&](const std::string& prefix, std::int64_t key_width) {
      test.weights.linear(prefix + "attention.query", c.hidden_size, c.hidden_size);
      test.weights.linear(prefix + "attention.key", c.hidden_size, key_width);
      test.weights.linear(prefix + "attention.value", c.hidden_size, key_width);
      test.weights.linear(prefix + "output.dense", c.hidden_size, c.hidden_size);
      test.weights.layer_norm(prefix + "output.LayerNorm", c.hidden_size);
    };
    attention_weights(p + "attention.", c.hidden_size);
    if (c.has_cross_attention(layer)) attention_weights(p + "crossattention.", c.encoder_hidden_size);
    for (const std::string branch : {"_query", ""}) {
      test.weights.linear(p + "intermediate" + branch + ".dense", c.intermediate_size, c.hidden_size);
      test.weights.linear(p + "output" + branch + ".dense", c.hidden_size, c.intermediate_size);
      test.weights.layer_norm(p + "output" + branch + ".LayerNorm", c.hidden_size);
    }
  }
}

// HF Blip2QFormerModel.forward for one batch row.
Matrix qformer_reference(const QFormerCase& test, const Matrix& input, std::size_t query_length,
                         const std::vector<std::int64_t>& mask, const Matrix& image) {
  const auto& c = test.config;
  const auto& w = test.weights;
  const double eps = c.layer_norm_eps;
  Matrix x = layer_norm(input, w, "qformer.layernorm", eps);
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = "qformer.encoder.layer." + std::to_string(layer) + ".";
    auto self_visible = [&](std::size_t, std::size_t j) { return mask[j] != 0; };
    // -10000 for padding is not "hidden" exactly, but with these scores it is
    // below float precision after the softmax, as in HF.
    Matrix context = attention(linear(x, w, p + "attention.attention.query"), linear(x, w, p + "attention.attention.key"),
                               linear(x, w, p + "attention.attention.value"), c.num_attention_heads, self_visible);
    Matrix attended = layer_norm(add(linear(context, w, p + "attention.output.dense"), x), w,
                                 p + "attention.output.LayerNorm", eps);
    Matrix queries(attended.begin(), attended.begin() + static_cast<std::ptrdiff_t>(query_length));
    Matrix text(attended.begin() + static_cast<std::ptrdiff_t>(query_length), attended.end());
    if (query_length > 0 && c.has_cross_attention(layer)) {
      Matrix cross = attention(linear(queries, w, p + "crossattention.attention.query"),
                               linear(image, w, p + "crossattention.attention.key"),
                               linear(image, w, p + "crossattention.attention.value"), c.num_attention_heads,
                               [](std::size_t, std::size_t) { return true; });
      queries = layer_norm(add(linear(cross, w, p + "crossattention.output.dense"), queries), w,
                           p + "crossattention.output.LayerNorm", eps);
    }
    auto feed_forward = [&](const Matrix& rows, const std::string& branch) {
      Matrix hidden = map_values(linear(rows, w, p + "intermediate" + branch + ".dense"), gelu);
      return layer_norm(add(linear(hidden, w, p + "output" + branch + ".dense"), rows), w,
                        p + "output" + branch + ".LayerNorm", eps);
    };
    if (!queries.empty()) queries = feed_forward(queries, "_query");
    if (!text.empty()) text = feed_forward(text, "");
    x = queries;
    x.insert(x.end(), text.begin(), text.end());
  }
  return x;
}

void check_qformer(std::int64_t layers, std::int64_t frequency, std::int64_t queries, std::int64_t text_tokens) {
  QFormerCase test;
  test.config.hidden_size = 24;
  test.config.num_hidden_layers = layers;
  test.config.num_attention_heads = 3;
  test.config.intermediate_size = 40;
  test.config.encoder_hidden_size = 20;
  test.config.cross_attention_frequency = frequency;
  test.config.layer_norm_eps = 1e-12f;
  test.config.has_text_feed_forward = true;
  build_qformer_weights(test);
  const blip::WeightStore store = test.weights.store("qformer_block.safetensors");
  const blip::nn::QFormerWeights weights = blip::nn::load_qformer(store, "qformer.", test.config);

  const std::int64_t batch = 2, tokens = queries + text_tokens, image_tokens = 7, hidden = test.config.hidden_size;
  RandomCheckpoint inputs(11);
  inputs.add("input", blip::Shape{batch, tokens, hidden}, 1.0);
  inputs.add("image", blip::Shape{batch, image_tokens, test.config.encoder_hidden_size}, 1.0);
  std::vector<std::int64_t> mask(static_cast<std::size_t>(batch * tokens), 1);
  if (text_tokens > 1) mask[static_cast<std::size_t>(2 * tokens - 1)] = 0;  // row 1: last text token is padding
  blip::Tensor<float> out(blip::Shape{batch, tokens, hidden});
  blip::nn::QFormerState state;
  blip::nn::qformer_forward(test.config, weights, inputs["input"], queries, mask.data(),
                            queries > 0 ? blip::Tensor<const float>(inputs["image"]) : blip::Tensor<const float>(),
                            state, out);
  for (std::int64_t row = 0; row < batch; ++row) {
    const std::vector<std::int64_t> row_mask(mask.begin() + row * tokens, mask.begin() + (row + 1) * tokens);
    const Matrix expected = qformer_reference(
        test, rows_of(inputs["input"].data() + row * tokens * hidden, tokens, hidden), static_cast<std::size_t>(queries),
        row_mask, rows_of(inputs["image"].data() + row * image_tokens * 20, image_tokens, 20));
    const double error = relative_error(out.data() + row * tokens * hidden, expected);
    CAPTURE(layers);
    CAPTURE(frequency);
    CAPTURE(queries);
    CAPTURE(text_tokens);
    CHECK(error < 2e-5);
  }
}

// ---- OPT --------------------------------------------------------------------

void build_opt_weights(RandomCheckpoint& weights, const blip::nn::OptDecoderConfig& c) {
  const std::string d = "language_model.model.decoder.";
  weights.add(d + "embed_tokens.weight", blip::Shape{c.vocab_size, c.word_embed_proj_dim}, 0.5);
  weights.add(d + "embed_positions.weight", blip::Shape{c.max_position_embeddings + 2, c.hidden_size}, 0.5);
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = d + "layers." + std::to_string(layer) + ".";
    weights.layer_norm(p + "self_attn_layer_norm", c.hidden_size);
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"})
      weights.linear(p + "self_attn." + projection, c.hidden_size, c.hidden_size);
    weights.layer_norm(p + "final_layer_norm", c.hidden_size);
    weights.linear(p + "fc1", c.ffn_dim, c.hidden_size);
    weights.linear(p + "fc2", c.hidden_size, c.ffn_dim);
  }
  if (c.has_final_layer_norm) weights.layer_norm(d + "final_layer_norm", c.hidden_size);
}

// HF OPTForCausalLM logits of one row for the whole sequence (no cache).
Matrix opt_reference(const RandomCheckpoint& w, const blip::nn::OptDecoderConfig& c, const Matrix& embeddings,
                     const std::vector<std::int64_t>& mask) {
  const std::string d = "language_model.model.decoder.";
  Matrix x = embeddings;
  std::int64_t cumulative = 0;
  for (std::size_t t = 0; t < x.size(); ++t) {
    cumulative += mask[t];
    const std::int64_t position = cumulative * mask[t] - 1 + 2;
    for (std::size_t i = 0; i < x[t].size(); ++i)
      x[t][i] += w[d + "embed_positions.weight"].data()[position * c.hidden_size + static_cast<std::int64_t>(i)];
  }
  const double eps = c.layer_norm_eps;
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = d + "layers." + std::to_string(layer) + ".";
    const Matrix normed = c.do_layer_norm_before ? layer_norm(x, w, p + "self_attn_layer_norm", eps) : x;
    Matrix context = attention(linear(normed, w, p + "self_attn.q_proj"), linear(normed, w, p + "self_attn.k_proj"),
                               linear(normed, w, p + "self_attn.v_proj"), c.num_attention_heads,
                               [&](std::size_t i, std::size_t j) { return j <= i && mask[j] != 0; });
    x = add(x, linear(context, w, p + "self_attn.out_proj"));
    if (!c.do_layer_norm_before) x = layer_norm(x, w, p + "self_attn_layer_norm", eps);
    const Matrix ffn_input = c.do_layer_norm_before ? layer_norm(x, w, p + "final_layer_norm", eps) : x;
    x = add(x, linear(map_values(linear(ffn_input, w, p + "fc1"), relu), w, p + "fc2"));
    if (!c.do_layer_norm_before) x = layer_norm(x, w, p + "final_layer_norm", eps);
  }
  if (c.has_final_layer_norm) x = layer_norm(x, w, d + "final_layer_norm", eps);
  return linear(x, w[d + "embed_tokens.weight"], nullptr);
}

void check_opt(bool pre_norm) {
  blip::nn::OptDecoderConfig config;
  config.vocab_size = 37;
  config.hidden_size = config.word_embed_proj_dim = 16;
  config.ffn_dim = 28;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.max_position_embeddings = 20;
  config.do_layer_norm_before = pre_norm;
  config.has_final_layer_norm = pre_norm;
  RandomCheckpoint weights(pre_norm ? 3 : 4);
  build_opt_weights(weights, config);
  const blip::WeightStore store = weights.store(pre_norm ? "opt_pre.safetensors" : "opt_post.safetensors");
  const blip::nn::OptWeights loaded = blip::nn::load_opt(store, "language_model.", config);

  // Two rows, row 1 left-padded by two; a 5-token prompt then 3 decoded tokens.
  const std::int64_t rows = 2, prompt = 5, decoded = 3, total = prompt + decoded, width = config.hidden_size;
  const std::vector<std::int64_t> ids{3, 9, 14, 2, 30, 7, 21, 5, 1, 1, 1, 8, 12, 4, 2, 33};  // [2, 8]
  std::vector<std::int64_t> mask(static_cast<std::size_t>(rows * total), 1);
  mask[static_cast<std::size_t>(total)] = mask[static_cast<std::size_t>(total + 1)] = 0;
  const blip::Tensor<float>& table = weights["language_model.model.decoder.embed_tokens.weight"];

  blip::nn::OptState state;
  state.allocate(config, rows, prompt, total);
  std::vector<float> embeddings(static_cast<std::size_t>(rows * prompt * width));
  std::vector<std::int64_t> prompt_mask(static_cast<std::size_t>(rows * prompt));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < prompt; ++t) {
      std::copy_n(table.data() + ids[static_cast<std::size_t>(r * total + t)] * width, width,
                  embeddings.begin() + (r * prompt + t) * width);
      prompt_mask[static_cast<std::size_t>(r * prompt + t)] = mask[static_cast<std::size_t>(r * total + t)];
    }
  blip::nn::opt_forward(config, loaded, state, embeddings.data(), prompt_mask.data(), prompt);
  std::vector<std::vector<float>> last_logits;  // per call: [rows, V] of the last position
  auto collect = [&](std::int64_t tokens_in_call) {
    std::vector<float> logits(static_cast<std::size_t>(rows * config.vocab_size));
    for (std::int64_t r = 0; r < rows; ++r)
      blip::nn::opt_logits(loaded, state.output.data() + (r * tokens_in_call + tokens_in_call - 1) * width, 1,
                           logits.data() + r * config.vocab_size);
    last_logits.push_back(logits);
  };
  collect(prompt);
  blip::nn::OptState step_state;
  for (std::int64_t step = 0; step < decoded; ++step) {
    std::vector<float> token_embeddings(static_cast<std::size_t>(rows * width));
    std::vector<std::int64_t> tokens(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) tokens[static_cast<std::size_t>(r)] = ids[static_cast<std::size_t>(r * total + prompt + step)];
    blip::kernels::embedding_lookup(table, tokens.data(), rows, token_embeddings.data());
    blip::nn::opt_forward(config, loaded, state, token_embeddings.data(), nullptr, 1);
    collect(1);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    Matrix sequence(static_cast<std::size_t>(total));
    for (std::int64_t t = 0; t < total; ++t)
      sequence[static_cast<std::size_t>(t)] =
          rows_of(table.data() + ids[static_cast<std::size_t>(r * total + t)] * width, 1, width)[0];
    const std::vector<std::int64_t> row_mask(mask.begin() + r * total, mask.begin() + (r + 1) * total);
    const Matrix expected = opt_reference(weights, config, sequence, row_mask);
    for (std::int64_t call = 0; call <= decoded; ++call) {
      const Matrix position{expected[static_cast<std::size_t>(prompt - 1 + call)]};
      const double error =
          relative_error(last_logits[static_cast<std::size_t>(call)].data() + r * config.vocab_size, position);
      CAPTURE(pre_norm);
      CAPTURE(r);
      CAPTURE(call);
      CHECK(error < 2e-5);
    }
  }
}

}  // namespace

TEST_CASE("Q-Former: queries only, every layer cross-attends, against the reference") { check_qformer(2, 1, 4, 0); }
TEST_CASE("Q-Former: cross-attention every second layer, queries and padded text") { check_qformer(3, 2, 5, 4); }
TEST_CASE("Q-Former: text only (query_length 0, no image)") { check_qformer(2, 2, 0, 6); }

TEST_CASE("Q-Former: text rows need the text feed-forward (use_qformer_text_input)") {
  QFormerCase test;
  test.config.hidden_size = 8;
  test.config.num_hidden_layers = 1;
  test.config.num_attention_heads = 2;
  test.config.intermediate_size = 8;
  test.config.encoder_hidden_size = 8;
  test.config.cross_attention_frequency = 1;
  test.config.has_text_feed_forward = false;
  build_qformer_weights(test);
  const blip::WeightStore store = test.weights.store("qformer_no_text.safetensors");
  const blip::nn::QFormerWeights weights = blip::nn::load_qformer(store, "qformer.", test.config);
  blip::Tensor<float> input(blip::Shape{1, 3, 8}), image(blip::Shape{1, 2, 8}), out(blip::Shape{1, 3, 8});
  input.fill(0.5f);
  image.fill(0.25f);
  blip::nn::QFormerState state;
  CHECK_THROWS_WITH_AS(blip::nn::qformer_forward(test.config, weights, input, 2, nullptr, image, state, out),
                       doctest::Contains("use_qformer_text_input"), blip::Error);
}

TEST_CASE("OPT decoder (pre-LN): prefill with left padding, then cached steps, against full recomputation") {
  check_opt(true);
}
TEST_CASE("OPT decoder (post-LN, as opt-350m): the same") { check_opt(false); }

TEST_CASE("ViT: BLIP-2's separate q_bias / v_bias load as the fused qkv bias with a zero key part") {
  blip::nn::VisionTransformerConfig config;
  config.hidden_size = 8;
  config.intermediate_size = 12;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.image_size = 8;
  config.patch_size = 4;
  config.layer_norm_eps = 1e-6f;
  RandomCheckpoint fused(5), separate(5);
  for (RandomCheckpoint* weights : {&fused, &separate}) {
    weights->add("vision_model.embeddings.patch_embedding.weight", blip::Shape{8, 3, 4, 4}, 0.1);
    weights->add("vision_model.embeddings.patch_embedding.bias", blip::Shape{8}, 0.1);
    weights->add("vision_model.embeddings.class_embedding", blip::Shape{1, 1, 8}, 1.0);
    weights->add("vision_model.embeddings.position_embedding", blip::Shape{1, 5, 8}, 1.0);
    const std::string p = "vision_model.encoder.layers.0.";
    weights->layer_norm(p + "layer_norm1", 8);
    weights->add(p + "self_attn.qkv.weight", blip::Shape{24, 8}, 0.35);
    weights->linear(p + "self_attn.projection", 8, 8);
    weights->layer_norm(p + "layer_norm2", 8);
    weights->linear(p + "mlp.fc1", 12, 8);
    weights->linear(p + "mlp.fc2", 8, 12);
    weights->layer_norm("vision_model.post_layernorm", 8);
  }
  // The same q and v biases, stored both ways.
  separate.add("vision_model.encoder.layers.0.self_attn.q_bias", blip::Shape{8}, 0.3);
  separate.add("vision_model.encoder.layers.0.self_attn.v_bias", blip::Shape{8}, 0.3);
  fused.add("vision_model.encoder.layers.0.self_attn.qkv.bias", blip::Shape{24}, 0.0);
  blip::Tensor<float> fused_bias = fused["vision_model.encoder.layers.0.self_attn.qkv.bias"];
  std::copy_n(separate["vision_model.encoder.layers.0.self_attn.q_bias"].data(), 8, fused_bias.data());
  std::copy_n(separate["vision_model.encoder.layers.0.self_attn.v_bias"].data(), 8, fused_bias.data() + 16);

  blip::Tensor<float> pixels(blip::Shape{1, 3, 8, 8});
  for (std::int64_t i = 0; i < pixels.numel(); ++i) pixels.data()[i] = std::sin(0.37f * static_cast<float>(i));
  auto run = [&](const RandomCheckpoint& weights, const char* file, blip::nn::QkvBiasLayout layout) {
    const blip::WeightStore store = weights.store(file);
    const auto loaded = blip::nn::load_vision_transformer(store, "vision_model.", config, layout);
    blip::Tensor<float> out(blip::Shape{1, 5, 8});
    blip::nn::VisionTransformerState state;
    blip::nn::vision_transformer_forward(config, loaded, pixels, state, out);
    return out;
  };
  const blip::Tensor<float> a = run(fused, "vit_fused.safetensors", blip::nn::QkvBiasLayout::Fused);
  const blip::Tensor<float> b = run(separate, "vit_separate.safetensors", blip::nn::QkvBiasLayout::Fused);
  for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a.data()[i] == b.data()[i]);
  // qkv_bias = false: no bias at all, so the outputs differ.
  const blip::Tensor<float> c = run(fused, "vit_fused_nobias.safetensors", blip::nn::QkvBiasLayout::None);
  double difference = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) difference = std::max(difference, std::abs(double(a.data()[i]) - c.data()[i]));
  CHECK(difference > 1e-3);
}

}  // namespace nn_blip2_blocks_test
