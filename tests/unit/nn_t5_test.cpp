// The T5 blocks (nn/t5.hpp) on small random weights against plain
// double-precision references written from HF's T5 modules: the encoder
// (RMSNorm, bidirectional relative position buckets shared by all layers,
// unscaled attention with a padding mask, gated or plain feed-forward), and
// the decoder (causal buckets, cross-attention to the encoder output with its
// padding, prompt then cached steps, beams of one source sharing its
// cross-attention keys), tied and untied heads. num_heads · d_kv differs from
// d_model, and the sequences are longer than the exact-distance buckets so the
// logarithmic buckets are used. Tolerances are scaled by the reference's
// largest magnitude.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "blip/kernels/positions.hpp"
#include "blip/nn/t5.hpp"
#include "reference_blocks.hpp"
#include "test_support.hpp"

namespace nn_t5_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using namespace blip::test::reference;
using blip::Shape;

constexpr double kTolerance = 2e-5;

void build_t5_weights(RandomCheckpoint& weights, const blip::nn::T5ModelConfig& c) {
  const std::string p = "language_model.";
  const std::int64_t model = c.d_model, inner = c.inner_dim();
  weights.add(p + "shared.weight", Shape{c.vocab_size, model}, 1.0);
  auto attention = [&](const std::string& prefix) {
    weights.linear(prefix + "q", inner, model, false);
    weights.linear(prefix + "k", inner, model, false);
    weights.linear(prefix + "v", inner, model, false);
    weights.linear(prefix + "o", model, inner, false);
  };
  auto feed_forward = [&](const std::string& prefix) {
    weights.add(prefix + "layer_norm.weight", Shape{model}, 0.1, 1.0);
    if (c.gated_feed_forward) {
      weights.linear(prefix + "DenseReluDense.wi_0", c.d_ff, model, false);
      weights.linear(prefix + "DenseReluDense.wi_1", c.d_ff, model, false);
    } else {
      weights.linear(prefix + "DenseReluDense.wi", c.d_ff, model, false);
    }
    weights.linear(prefix + "DenseReluDense.wo", model, c.d_ff, false);
  };
  const Shape table{c.relative_attention_num_buckets, c.num_heads};
  for (std::int64_t layer = 0; layer < c.num_layers; ++layer) {
    const std::string b = p + "encoder.block." + std::to_string(layer) + ".layer.";
    weights.add(b + "0.layer_norm.weight", Shape{model}, 0.1, 1.0);
    attention(b + "0.SelfAttention.");
    if (layer == 0) weights.add(b + "0.SelfAttention.relative_attention_bias.weight", table, 1.0);
    feed_forward(b + "1.");
  }
  weights.add(p + "encoder.final_layer_norm.weight", Shape{model}, 0.1, 1.0);
  for (std::int64_t layer = 0; layer < c.num_decoder_layers; ++layer) {
    const std::string b = p + "decoder.block." + std::to_string(layer) + ".layer.";
    weights.add(b + "0.layer_norm.weight", Shape{model}, 0.1, 1.0);
    attention(b + "0.SelfAttention.");
    if (layer == 0) weights.add(b + "0.SelfAttention.relative_attention_bias.weight", table, 1.0);
    weights.add(b + "1.layer_norm.weight", Shape{model}, 0.1, 1.0);
    attention(b + "1.EncDecAttention.");
    feed_forward(b + "2.");
  }
  weights.add(p + "decoder.final_layer_norm.weight", Shape{model}, 0.1, 1.0);
  if (!c.tie_word_embeddings) weights.linear(p + "lm_head", c.vocab_size, model, false);
}

// ---- HF T5 on one sequence, in double ------------------------------------------

struct T5Reference {
  const RandomCheckpoint& w;
  const blip::nn::T5ModelConfig& c;

  Matrix norm(const Matrix& x, const std::string& name) const { return rms_norm(x, w[name + ".weight"], c.layer_norm_epsilon); }

  // T5LayerFF: x + wo(act(wi_0 n) * wi_1 n) (gated) or x + wo(act(wi n)).
  Matrix feed_forward(const Matrix& x, const std::string& prefix) const {
    const Matrix n = norm(x, prefix + "layer_norm");
    const std::string d = prefix + "DenseReluDense.";
    const auto act = c.activation == blip::kernels::Activation::Relu ? relu : gelu;
    const Matrix hidden = c.gated_feed_forward
                              ? multiply(map_values(linear(n, w, d + "wi_0", false), act), linear(n, w, d + "wi_1", false))
                              : map_values(linear(n, w, d + "wi", false), act);
    return add(x, linear(hidden, w, d + "wo", false));
  }

  // HF compute_bias: table[bucket(j - i), h] from the first layer of a stack.
  AttentionBias position_bias(const std::string& table_name, bool bidirectional) const {
    const blip::Tensor<float>& table = w[table_name];
    return [this, &table, bidirectional](std::int64_t h, std::size_t i, std::size_t j) {
      const std::int64_t bucket = blip::kernels::t5_relative_position_bucket(
          static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i), bidirectional, c.relative_attention_num_buckets,
          c.relative_attention_max_distance);
      return static_cast<double>(table.data()[bucket * c.num_heads + h]);
    };
  }

  Matrix encoder(Matrix x, const std::vector<std::int64_t>& mask) const {
    const std::string e = "language_model.encoder.";
    const AttentionBias bias = position_bias(e + "block.0.layer.0.SelfAttention.relative_attention_bias.weight", true);
    for (std::int64_t layer = 0; layer < c.num_layers; ++layer) {
      const std::string b = e + "block." + std::to_string(layer) + ".layer.";
      const Matrix n = norm(x, b + "0.layer_norm");
      const std::string a = b + "0.SelfAttention.";
      const Matrix context = attention(linear(n, w, a + "q", false), linear(n, w, a + "k", false),
                                       linear(n, w, a + "v", false), c.num_heads,
                                       [&](std::size_t, std::size_t j) { return mask[j] != 0; }, 1.0, bias);
      x = add(x, linear(context, w, a + "o", false));
      x = feed_forward(x, b + "1.");
    }
    return norm(x, e + "final_layer_norm");
  }

  // Logits [T, V] of the decoder over ids (no cache) attending to `encoded`.
  Matrix decoder_logits(const std::vector<std::int64_t>& ids, const Matrix& encoded,
                        const std::vector<std::int64_t>& encoder_mask) const {
    const std::string d = "language_model.decoder.";
    const blip::Tensor<float>& shared = w["language_model.shared.weight"];
    Matrix x;
    for (std::int64_t id : ids) x.push_back(rows_of(shared.data() + id * c.d_model, 1, c.d_model)[0]);
    const AttentionBias bias = position_bias(d + "block.0.layer.0.SelfAttention.relative_attention_bias.weight", false);
    for (std::int64_t layer = 0; layer < c.num_decoder_layers; ++layer) {
      const std::string b = d + "block." + std::to_string(layer) + ".layer.";
      Matrix n = norm(x, b + "0.layer_norm");
      std::string a = b + "0.SelfAttention.";
      Matrix context = attention(linear(n, w, a + "q", false), linear(n, w, a + "k", false),
                                 linear(n, w, a + "v", false), c.num_heads,
                                 [](std::size_t i, std::size_t j) { return j <= i; }, 1.0, bias);
      x = add(x, linear(context, w, a + "o", false));
      n = norm(x, b + "1.layer_norm");
      a = b + "1.EncDecAttention.";
      context = attention(linear(n, w, a + "q", false), linear(encoded, w, a + "k", false),
                          linear(encoded, w, a + "v", false), c.num_heads,
                          [&](std::size_t, std::size_t j) { return encoder_mask[j] != 0; }, 1.0);
      x = add(x, linear(context, w, a + "o", false));
      x = feed_forward(x, b + "2.");
    }
    x = norm(x, d + "final_layer_norm");
    if (c.tie_word_embeddings) x = map_values(x, [&](double v) { return v / std::sqrt(static_cast<double>(c.d_model)); });
    return linear(x, c.tie_word_embeddings ? shared : w["language_model.lm_head.weight"], nullptr);
  }
};

blip::nn::T5ModelConfig small_config(bool gated, bool tied) {
  blip::nn::T5ModelConfig config;
  config.vocab_size = 41;
  config.d_model = 12;
  config.d_kv = 5;
  config.num_heads = 3;  // inner 15 != d_model
  config.d_ff = 20;
  config.num_layers = 2;
  config.num_decoder_layers = 3;
  config.relative_attention_num_buckets = 8;  // exact distances < 2 (bidirectional) / < 4 (causal)
  config.relative_attention_max_distance = 10;
  config.activation = gated ? blip::kernels::Activation::GeluErf : blip::kernels::Activation::Relu;
  config.gated_feed_forward = gated;
  config.tie_word_embeddings = tied;
  return config;
}

void check_t5(bool gated, bool tied) {
  CAPTURE(gated);
  CAPTURE(tied);
  const blip::nn::T5ModelConfig config = small_config(gated, tied);
  RandomCheckpoint weights(gated ? 21 : 22);
  build_t5_weights(weights, config);
  const blip::WeightStore store = weights.store(std::string("t5_") + (gated ? "gated" : "plain") + ".safetensors");
  const blip::nn::T5Weights loaded = blip::nn::load_t5(store, "language_model.", config);
  const T5Reference reference{weights, config};

  // Encoder: 2 sources of 9 tokens, source 1 padded by 3 at the end.
  const std::int64_t sources = 2, encoder_tokens = 9, model = config.d_model;
  blip::Tensor<float> embeddings(Shape{sources, encoder_tokens, model});
  std::mt19937 random(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::int64_t i = 0; i < embeddings.numel(); ++i) embeddings.data()[i] = normal(random);
  std::vector<std::int64_t> encoder_mask(static_cast<std::size_t>(sources * encoder_tokens), 1);
  for (std::int64_t t = 6; t < encoder_tokens; ++t) encoder_mask[static_cast<std::size_t>(encoder_tokens + t)] = 0;
  blip::nn::T5EncoderState encoder_state;
  encoder_state.allocate(config, sources, encoder_tokens);
  blip::nn::t5_encoder_forward(config, loaded, encoder_state, embeddings.data(), encoder_mask.data());
  std::vector<Matrix> encoded(static_cast<std::size_t>(sources));
  for (std::int64_t s = 0; s < sources; ++s) {
    const std::vector<std::int64_t> mask(encoder_mask.begin() + s * encoder_tokens,
                                         encoder_mask.begin() + (s + 1) * encoder_tokens);
    encoded[static_cast<std::size_t>(s)] =
        reference.encoder(rows_of(embeddings.data() + s * encoder_tokens * model, encoder_tokens, model), mask);
    // Padded positions are computed too (HF returns them); every row is compared.
    CHECK(relative_error(encoder_state.hidden.data() + s * encoder_tokens * model, encoded[static_cast<std::size_t>(s)]) <
          kTolerance);
  }

  // Decoder: 2 rows per source (beams sharing the source's cross-attention
  // keys), a 2-token prompt [0, x] then 6 cached steps, each row its own tokens.
  const blip::nn::CrossAttentionKV cross =
      blip::nn::t5_cross_attention_kv(config, loaded, encoder_state.hidden, encoder_mask.data());
  const std::int64_t rows_per_source = 2, rows = sources * rows_per_source, prompt = 2, steps = 6;
  const std::int64_t total = prompt + steps;
  std::vector<std::vector<std::int64_t>> ids(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    ids[static_cast<std::size_t>(r)].push_back(0);
    for (std::int64_t t = 1; t < total; ++t) ids[static_cast<std::size_t>(r)].push_back((7 * r + 5 * t + 3) % config.vocab_size);
  }
  blip::nn::T5DecoderState state;
  state.allocate(config, rows, prompt, total);
  std::vector<std::int64_t> prompt_ids;
  for (const auto& row : ids) prompt_ids.insert(prompt_ids.end(), row.begin(), row.begin() + prompt);
  blip::nn::t5_decoder_forward(config, loaded, state, prompt_ids.data(), nullptr, prompt, cross, rows_per_source);
  std::vector<std::vector<float>> logits_per_call;  // [rows, V] of each call's last position
  std::vector<float> scratch(static_cast<std::size_t>(rows * model));
  auto collect = [&](std::int64_t tokens_in_call) {
    std::vector<float> logits(static_cast<std::size_t>(rows * config.vocab_size));
    for (std::int64_t r = 0; r < rows; ++r)
      blip::nn::t5_logits(config, loaded, state.hidden.data() + (r * tokens_in_call + tokens_in_call - 1) * model, 1,
                          scratch.data(), logits.data() + r * config.vocab_size);
    logits_per_call.push_back(logits);
  };
  collect(prompt);
  for (std::int64_t step = 0; step < steps; ++step) {
    std::vector<std::int64_t> tokens;
    for (const auto& row : ids) tokens.push_back(row[static_cast<std::size_t>(prompt + step)]);
    blip::nn::t5_decoder_forward(config, loaded, state, tokens.data(), nullptr, 1, cross, rows_per_source);
    collect(1);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t source = r / rows_per_source;
    const std::vector<std::int64_t> mask(encoder_mask.begin() + source * encoder_tokens,
                                         encoder_mask.begin() + (source + 1) * encoder_tokens);
    const Matrix expected =
        reference.decoder_logits(ids[static_cast<std::size_t>(r)], encoded[static_cast<std::size_t>(source)], mask);
    for (std::int64_t call = 0; call <= steps; ++call) {
      CAPTURE(r);
      CAPTURE(call);
      const Matrix position{expected[static_cast<std::size_t>(prompt - 1 + call)]};
      CHECK(relative_error(logits_per_call[static_cast<std::size_t>(call)].data() + r * config.vocab_size, position) <
            kTolerance);
    }
  }
}

}  // namespace

TEST_CASE("T5 (Flan style: gated GELU, separate lm_head): encoder, then decoder prompt and cached steps, against HF") {
  check_t5(true, false);
}

TEST_CASE("T5 (original style: ReLU, lm_head tied and scaled by d_model^-0.5): the same") { check_t5(false, true); }

TEST_CASE("T5: a missing relative_attention_bias is reported by its checkpoint name") {
  const blip::nn::T5ModelConfig config = small_config(true, false);
  RandomCheckpoint weights(23);
  build_t5_weights(weights, config);
  const blip::WeightStore full = weights.store("t5_full.safetensors");
  // A checkpoint with every tensor except the decoder's bias table.
  blip::SafetensorsWriter writer;
  for (const std::string& name : full.checkpoint().names())
    if (name != "language_model.decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
      writer.add(name, full.checkpoint().to_f32(name));
  const std::string path = std::string(BLIP_TEST_BINARY_DIR) + "/t5_missing_bias.safetensors";
  writer.write(path);
  const blip::WeightStore store = blip::WeightStore::open(path);
  CHECK_THROWS_WITH_AS(blip::nn::load_t5(store, "language_model.", config),
                       doctest::Contains("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
                       blip::Error);
}

}  // namespace nn_t5_test
