// blip/models/blip2.hpp: BLIP-2 (Li et al., 2023, "BLIP-2: Bootstrapping
// Language-Image Pre-training with Frozen Image Encoders and Large Language
// Models") as Hugging Face ships it.
//
//   image ──► frozen ViT-g ──► image embeddings [B, 1+P, Hv]
//                                   │ cross-attention (query rows only)
//   learned queries [Q, Hq] ──► Q-Former ──► query outputs [B, Q, Hq]
//                                   │ language_projection
//                                   ▼
//   frozen LLM, either
//     OPT (decoder-only): [projected queries ; prompt embeddings] ──► causal LM ──► next token
//     Flan-T5:            [projected queries ; prompt embeddings] ──► T5 encoder
//                         [decoder start 0 ; generated]           ──► T5 decoder (× encoder) ──► next token
//
//   retrieval (Blip2ForImageTextRetrieval, the Q-Former alone):
//     ITM: Q-Former([queries ; text], × image) ──► itm_head on each query row ──► mean over queries
//     ITC: max over queries of cos(vision_projection(query_i), text_projection(Q-Former(text)[CLS]))
//
// How the language model sees the image (HF Blip2ForConditionalGeneration):
//   * legacy configs (no image_token_index): inputs_embeds = concat(projected
//     queries, embed(input_ids)), mask = concat(ones(Q), attention_mask);
//   * configs with image_token_index (the real hub checkpoints): input_ids
//     already hold Q copies of the <image> token, whose embeddings are
//     REPLACED by the projected queries.
// OPT is driven by inputs_embeds, so its generate() starts with EMPTY
// input_ids: the prompt does not count for the repetition penalty, and HF
// prepends BOS to what generate returns ([bos] + new tokens). T5's decoder
// starts from [0] and returns [0] + new tokens.
//
// Each HF class maps to one struct: Blip2ForConditionalGeneration (OPT or
// Flan-T5), Blip2ForImageTextRetrieval. A loaded model is immutable; requests build
// their own state.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/io/config.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/language_model_session.hpp"
#include "blip/nn/loading.hpp"
#include "blip/nn/opt.hpp"
#include "blip/nn/qformer.hpp"
#include "blip/nn/t5.hpp"
#include "blip/nn/vision_transformer.hpp"

namespace blip {

// ---- Config ---------------------------------------------------------------

struct Blip2ModelConfig {
  nn::VisionTransformerConfig vision;
  nn::QkvBiasLayout vision_qkv_bias = nn::QkvBiasLayout::Fused;
  nn::QFormerConfig qformer;
  std::int64_t num_query_tokens = 32;
  std::int64_t image_text_hidden_size = 256;      // ITC projection width
  std::optional<std::int64_t> image_token_index;  // set: the <image> tokens are replaced by the queries
  // Which language model text_config describes (Blip2ForImageTextRetrieval
  // folders may carry any text_config; only the Q-Former is used there).
  enum class LanguageModel { None, Opt, T5 } language_model = LanguageModel::None;
  nn::OptDecoderConfig opt;  // language_model == Opt
  nn::T5ModelConfig t5;      // language_model == T5
  // From text_config: the ids HF's language_model.generate() uses.
  std::int64_t bos_token_id = 2;             // OPT: prepended to outputs; T5: the default prompt (a lone </s>)
  std::vector<std::int64_t> eos_token_ids{2};
  std::int64_t pad_token_id = 1;
  std::int64_t decoder_start_token_id = 0;   // T5 only

  bool has_language_model() const { return language_model != LanguageModel::None; }
  // Width of the projected queries = the language model's token embeddings.
  std::int64_t text_hidden_size() const {
    return language_model == LanguageModel::T5 ? t5.d_model : opt.word_embed_proj_dim;
  }
  std::int64_t text_vocab_size() const { return language_model == LanguageModel::T5 ? t5.vocab_size : opt.vocab_size; }
};

inline Blip2ModelConfig make_blip2_model_config(const Blip2Config& config) {
  Blip2ModelConfig model;
  model.vision = nn::make_vision_transformer_config(config.vision_config);
  model.vision_qkv_bias = config.vision_config.qkv_bias ? nn::QkvBiasLayout::Fused : nn::QkvBiasLayout::None;

  const Blip2QFormerConfig& qformer = config.qformer_config;
  check(qformer.position_embedding_type == "absolute", "qformer_config.position_embedding_type '",
        qformer.position_embedding_type, "' is not supported (only 'absolute', as every BLIP-2 checkpoint uses)");
  model.qformer.hidden_size = qformer.hidden_size;
  model.qformer.num_hidden_layers = qformer.num_hidden_layers;
  model.qformer.num_attention_heads = qformer.num_attention_heads;
  model.qformer.intermediate_size = qformer.intermediate_size;
  model.qformer.encoder_hidden_size = qformer.encoder_hidden_size;
  model.qformer.cross_attention_frequency = qformer.cross_attention_frequency;
  model.qformer.vocab_size = qformer.vocab_size;
  model.qformer.max_position_embeddings = qformer.max_position_embeddings;
  model.qformer.layer_norm_eps = static_cast<float>(qformer.layer_norm_eps);
  model.qformer.activation = kernels::parse_activation(qformer.hidden_act);
  model.qformer.has_text_feed_forward = qformer.use_qformer_text_input;

  model.num_query_tokens = config.num_query_tokens;
  model.image_text_hidden_size = config.image_text_hidden_size;
  model.image_token_index = config.image_token_index;
  check(model.num_query_tokens >= 1, "config.json: num_query_tokens must be >= 1, got ", model.num_query_tokens);

  if (config.has_opt()) {
    const OptConfig& opt = config.opt();
    model.language_model = Blip2ModelConfig::LanguageModel::Opt;
    model.opt.vocab_size = opt.vocab_size;
    model.opt.hidden_size = opt.hidden_size;
    model.opt.word_embed_proj_dim = opt.word_embed_proj_dim;
    model.opt.ffn_dim = opt.ffn_dim;
    model.opt.num_hidden_layers = opt.num_hidden_layers;
    model.opt.num_attention_heads = opt.num_attention_heads;
    model.opt.max_position_embeddings = opt.max_position_embeddings;
    model.opt.do_layer_norm_before = opt.do_layer_norm_before;
    model.opt.has_final_layer_norm = opt.do_layer_norm_before && !opt.remove_final_layer_norm;
    model.opt.enable_bias = opt.enable_bias;
    model.opt.tie_word_embeddings = opt.tie_word_embeddings;
    model.opt.activation = kernels::parse_activation(opt.activation_function);
    check(opt.layer_norm_elementwise_affine, "text_config.layer_norm_elementwise_affine = false is not supported");
    model.bos_token_id = required_token_id(opt.bos_token_id, "text_config.bos_token_id");
    model.pad_token_id = opt.pad_token_id.value_or(-1);
    model.eos_token_ids = opt.eos_token_id;
  } else if (config.has_t5()) {
    const T5Config& t5 = config.t5();
    model.language_model = Blip2ModelConfig::LanguageModel::T5;
    model.t5.vocab_size = t5.vocab_size;
    model.t5.d_model = t5.d_model;
    model.t5.d_kv = t5.d_kv;
    model.t5.d_ff = t5.d_ff;
    model.t5.num_layers = t5.num_layers;
    model.t5.num_decoder_layers = t5.num_decoder_layers;
    model.t5.num_heads = t5.num_heads;
    model.t5.relative_attention_num_buckets = t5.relative_attention_num_buckets;
    model.t5.relative_attention_max_distance = t5.relative_attention_max_distance;
    model.t5.layer_norm_epsilon = static_cast<float>(t5.layer_norm_epsilon);
    // dense_act_fn as HF resolves it: derived from feed_forward_proj unless the
    // config names it (the real Flan-T5 configs say "gelu", exact GELU).
    model.t5.activation = kernels::parse_activation(t5.dense_act_fn);
    model.t5.gated_feed_forward = t5.is_gated_act;
    model.t5.tie_word_embeddings = t5.tie_word_embeddings;
    // Blip2ForConditionalGeneration.generate's default prompt is
    // [[text_config.bos_token_id]]: for T5 that is 1, a lone </s>.
    model.bos_token_id = required_token_id(t5.bos_token_id, "text_config.bos_token_id");
    model.pad_token_id = required_token_id(t5.pad_token_id, "text_config.pad_token_id");
    model.decoder_start_token_id = t5.decoder_start_token_id.value_or(model.pad_token_id);
    model.eos_token_ids = t5.eos_token_id;
  }
  return model;
}

// ---- The Q-Former with its learned queries ---------------------------------

struct Blip2QueryTransformer {
  nn::QFormerConfig config;
  Tensor<const float> query_tokens;  // query_tokens [1, Q, Hq]
  nn::QFormerWeights weights;        // qformer.*

  static Blip2QueryTransformer load(const WeightStore& store, const Blip2ModelConfig& config) {
    check(config.qformer.encoder_hidden_size == config.vision.hidden_size, "qformer_config.encoder_hidden_size (",
          config.qformer.encoder_hidden_size, ") != vision_config.hidden_size (", config.vision.hidden_size, ")");
    Blip2QueryTransformer qformer;
    qformer.config = config.qformer;
    qformer.query_tokens = store.get("query_tokens", Shape{1, config.num_query_tokens, config.qformer.hidden_size});
    qformer.weights = nn::load_qformer(store, "qformer.", config.qformer);
    return qformer;
  }

  std::int64_t query_count() const { return query_tokens.dim(1); }

  // qformer(query_embeds = query_tokens, encoder_hidden_states = image).last_hidden_state [B, Q, Hq]
  Tensor<float> forward(const ImageEmbeddings& images) const {
    const std::int64_t batch = images.last_hidden_state.dim(0), queries = query_count(), hidden = config.hidden_size;
    Tensor<float> input(Shape{batch, queries, hidden});
    for (std::int64_t row = 0; row < batch; ++row)
      std::memcpy(input.data() + row * queries * hidden, query_tokens.data(),
                  sizeof(float) * static_cast<std::size_t>(queries * hidden));
    Tensor<float> out(input.shape());
    nn::QFormerState state;
    nn::qformer_forward(config, weights, input, queries, nullptr, images.last_hidden_state, state, out);
    return out;
  }
};

// ---- The language models as LanguageModelSession adapters -------------------

// OPT, driven by inputs_embeds for the prompt and by ids afterwards.
struct OptLanguageModel {
  using State = nn::OptState;
  const nn::OptDecoderConfig* config = nullptr;
  const nn::OptWeights* weights = nullptr;

  std::int64_t vocab_size() const { return config->vocab_size; }
  std::int64_t output_width() const { return config->word_embed_proj_dim; }
  void allocate(State& state, std::int64_t rows, std::int64_t tokens_per_call, std::int64_t capacity) const {
    state.allocate(*config, rows, tokens_per_call, capacity);
  }
  const float* forward(State& state, const DecoderInput& input, std::int64_t tokens, std::int64_t) const {
    const float* embeddings = input.embeddings;
    if (embeddings == nullptr) {
      kernels::embedding_lookup(weights->embed_tokens, input.ids, state.rows * tokens, state.token_embeddings.data());
      embeddings = state.token_embeddings.data();
    }
    nn::opt_forward(*config, *weights, state, embeddings, input.mask, tokens);
    return state.output.data();
  }
  void logits(const float* hidden, std::int64_t rows, float*, float* out) const {
    nn::opt_logits(*weights, hidden, rows, out);
  }
};

// The T5 decoder over an encoder output computed once per request; its
// cross-attention keys / values are shared by all rows of an entry.
struct T5LanguageModel {
  using State = nn::T5DecoderState;
  const nn::T5ModelConfig* config = nullptr;
  const nn::T5Weights* weights = nullptr;
  nn::CrossAttentionKV encoder;  // per decoder layer, over the encoder output

  std::int64_t vocab_size() const { return config->vocab_size; }
  std::int64_t output_width() const { return config->d_model; }
  void allocate(State& state, std::int64_t rows, std::int64_t tokens_per_call, std::int64_t capacity) const {
    state.allocate(*config, rows, tokens_per_call, capacity);
  }
  const float* forward(State& state, const DecoderInput& input, std::int64_t tokens,
                       std::int64_t rows_per_entry) const {
    check(input.ids != nullptr, "T5 decoder: the decoder input must be token ids");
    nn::t5_decoder_forward(*config, *weights, state, input.ids, input.mask, tokens, encoder, rows_per_entry);
    return state.hidden.data();
  }
  void logits(const float* hidden, std::int64_t rows, float* scratch, float* out) const {
    nn::t5_logits(*config, *weights, hidden, rows, scratch, out);
  }
};

using Blip2OptSession = LanguageModelSession<OptLanguageModel>;
using Blip2T5Session = LanguageModelSession<T5LanguageModel>;
// What Blip2ForConditionalGeneration::generation_session returns; run it
// with generation::generate_session, which visits the alternative.
using Blip2GenerationSession = std::variant<Blip2OptSession, Blip2T5Session>;

// What the Q-Former hands the language model for a batch of images.
struct Blip2ImageQueries {
  Tensor<float> qformer_output;   // [B, Q, Hq]  qformer(...).last_hidden_state
  Tensor<float> language_inputs;  // [B, Q, Ht]  language_projection(qformer_output)
};

// ---- Blip2ForConditionalGeneration (OPT or Flan-T5) ------------------------


// The language model's input as HF builds it.
struct Blip2LanguageModelInputs {
  Tensor<float> inputs_embeds;          // [B, E, W]
  Tensor<std::int64_t> attention_mask;  // [B, E]
  bool queries_concatenated = false;    // legacy path (no image_token_index)
};

class Blip2ForConditionalGeneration {
 public:
  Blip2ModelConfig config;
  BlipVisionModel vision_model;             // vision_model.*
  Blip2QueryTransformer qformer;            // query_tokens, qformer.*
  nn::LinearWeights language_projection;    // language_projection.weight [Ht, Hq], bias [Ht]
  // language_model.*: one of the two, as config.language_model says.
  nn::OptWeights opt;                       // OPTForCausalLM: language_model.model.decoder.*, lm_head
  nn::T5Weights t5;                         // T5ForConditionalGeneration: language_model.{shared,encoder,decoder,lm_head}.*

  static Blip2ForConditionalGeneration load(const WeightStore& store, const Blip2ModelConfig& config) {
    check(config.has_language_model(),
          "Blip2ForConditionalGeneration: the config's text_config is neither an OPT nor a T5 model");
    const bool is_t5 = config.language_model == Blip2ModelConfig::LanguageModel::T5;
    check(is_t5 || config.opt.word_embed_proj_dim == config.opt.hidden_size,
          "Blip2ForConditionalGeneration: text_config.word_embed_proj_dim (", config.opt.word_embed_proj_dim,
          ") != hidden_size (", config.opt.hidden_size,
          "): HF concatenates the projected queries (hidden_size wide) with the token embeddings");
    Blip2ForConditionalGeneration model;
    model.config = config;
    model.vision_model = {config.vision,
                          nn::load_vision_transformer(store, "vision_model.", config.vision, config.vision_qkv_bias)};
    model.qformer = Blip2QueryTransformer::load(store, config);
    model.language_projection =
        nn::load_linear(store, "language_projection", config.text_hidden_size(), config.qformer.hidden_size);
    if (is_t5) {
      model.t5 = nn::load_t5(store, "language_model.", config.t5);
    } else {
      model.opt = nn::load_opt(store, "language_model.", config.opt);
    }
    return model;
  }

  bool is_encoder_decoder() const { return config.language_model == Blip2ModelConfig::LanguageModel::T5; }
  // The language model's token embedding table (OPT embed_tokens, T5 shared).
  const kernels::EmbeddingTable& token_embeddings() const { return is_encoder_decoder() ? t5.shared : opt.embed_tokens; }

  Blip2ImageQueries image_queries(const ImageEmbeddings& images) const {
    Blip2ImageQueries queries;
    queries.qformer_output = qformer.forward(images);
    const std::int64_t batch = queries.qformer_output.dim(0), count = queries.qformer_output.dim(1);
    queries.language_inputs = Tensor<float>(Shape{batch, count, config.text_hidden_size()});
    nn::apply_linear(language_projection, queries.qformer_output.data(), batch * count,
                     queries.language_inputs.data());
    return queries;
  }

  // inputs_embeds and mask as HF's forward / generate build them (for T5:
  // the encoder's input). input_ids empty: [[bos]] per image (generate's
  // default; [<image> × Q, bos] with image_token_index; for T5 bos is 1, a
  // lone </s>). attention_mask empty: ones.
  Blip2LanguageModelInputs language_model_inputs(const Blip2ImageQueries& queries,
                                                 Tensor<const std::int64_t> input_ids,
                                                 Tensor<const std::int64_t> attention_mask) const {
    const std::int64_t batch = queries.language_inputs.dim(0), query_count = queries.language_inputs.dim(1);
    const std::int64_t width = config.text_hidden_size();
    const kernels::EmbeddingTable& embed_tokens = token_embeddings();
    Tensor<std::int64_t> default_ids;
    if (input_ids.empty()) {
      // HF generate's default is [[bos]]. With image_token_index that row has
      // no <image> tokens and this HF version fails; later versions (and
      // Blip2Processor given an empty text) use [<image> × Q, bos], as here.
      const std::int64_t image_tokens = config.image_token_index ? query_count : 0;
      default_ids = Tensor<std::int64_t>(Shape{batch, image_tokens + 1});
      for (std::int64_t row = 0; row < batch; ++row) {
        std::fill_n(default_ids.data() + row * (image_tokens + 1), image_tokens,
                    config.image_token_index.value_or(0));
        default_ids.data()[row * (image_tokens + 1) + image_tokens] = config.bos_token_id;
      }
      input_ids = default_ids;
      attention_mask = {};
    }
    check(input_ids.rank() == 2 && input_ids.dim(0) == batch && input_ids.dim(1) >= 1,
          "BLIP-2: input_ids must be [", batch, ", tokens] (one row per image), got ", input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(), "BLIP-2: attention_mask has shape ",
          attention_mask.shape(), ", expected ", input_ids.shape());
    const std::int64_t tokens = input_ids.dim(1);
    Blip2LanguageModelInputs inputs;
    if (config.image_token_index) {
      // The <image> tokens' embeddings are replaced by the queries, in order.
      inputs.inputs_embeds = Tensor<float>(Shape{batch, tokens, width});
      kernels::embedding_lookup(embed_tokens, input_ids.data(), batch * tokens,
                                inputs.inputs_embeds.data());
      for (std::int64_t row = 0; row < batch; ++row) {
        std::int64_t next_query = 0;
        for (std::int64_t t = 0; t < tokens; ++t) {
          if (input_ids.data()[row * tokens + t] != *config.image_token_index) continue;
          check(next_query < query_count, "BLIP-2: input_ids row ", row, " holds more than ", query_count,
                " image tokens (", *config.image_token_index, ")");
          std::memcpy(inputs.inputs_embeds.data() + (row * tokens + t) * width,
                      queries.language_inputs.data() + (row * query_count + next_query) * width,
                      sizeof(float) * static_cast<std::size_t>(width));
          ++next_query;
        }
        check(next_query == query_count, "BLIP-2: input_ids row ", row, " holds ", next_query, " image tokens (",
              *config.image_token_index, "), expected num_query_tokens = ", query_count,
              " (Blip2Processor inserts them when processor_config.json has num_query_tokens)");
      }
      inputs.attention_mask = Tensor<std::int64_t>(Shape{batch, tokens});
      if (attention_mask.empty()) {
        inputs.attention_mask.fill(1);
      } else {
        std::copy_n(attention_mask.data(), batch * tokens, inputs.attention_mask.data());
      }
    } else {
      // Legacy: concat(projected queries, embed(input_ids)), mask concat(ones(Q), mask).
      const std::int64_t length = query_count + tokens;
      inputs.queries_concatenated = true;
      inputs.inputs_embeds = Tensor<float>(Shape{batch, length, width});
      inputs.attention_mask = Tensor<std::int64_t>(Shape{batch, length});
      for (std::int64_t row = 0; row < batch; ++row) {
        float* out = inputs.inputs_embeds.data() + row * length * width;
        std::memcpy(out, queries.language_inputs.data() + row * query_count * width,
                    sizeof(float) * static_cast<std::size_t>(query_count * width));
        kernels::embedding_lookup(embed_tokens, input_ids.data() + row * tokens, tokens,
                                  out + query_count * width);
        std::int64_t* mask = inputs.attention_mask.data() + row * length;
        std::fill_n(mask, query_count, 1);
        if (attention_mask.empty()) {
          std::fill_n(mask + query_count, tokens, 1);
        } else {
          std::copy_n(attention_mask.data() + row * tokens, tokens, mask + query_count);
        }
      }
    }
    return inputs;
  }

  // HF forward(pixel_values, input_ids, attention_mask[, decoder_input_ids,
  // decoder_attention_mask]).logits:
  //   OPT: [B, E, V] (E = Q + T on the legacy path, T with image_token_index);
  //   T5:  [B, Td, V], the decoder over decoder_input_ids (required) with the
  //        encoder over [queries ; prompt].
  Tensor<float> forward(const Blip2ImageQueries& queries, Tensor<const std::int64_t> input_ids,
                        Tensor<const std::int64_t> attention_mask,
                        Tensor<const std::int64_t> decoder_input_ids = {},
                        Tensor<const std::int64_t> decoder_attention_mask = {}) const {
    check(!input_ids.empty(), "BLIP-2 forward: input_ids are required");
    const Blip2LanguageModelInputs inputs = language_model_inputs(queries, input_ids, attention_mask);
    const std::int64_t batch = inputs.inputs_embeds.dim(0), length = inputs.inputs_embeds.dim(1);
    if (is_encoder_decoder()) {
      check(decoder_input_ids.rank() == 2 && decoder_input_ids.dim(0) == batch && decoder_input_ids.dim(1) >= 1,
            "BLIP-2 (T5) forward: decoder_input_ids must be [", batch, ", tokens], got ", decoder_input_ids.shape());
      check(decoder_attention_mask.empty() || decoder_attention_mask.shape() == decoder_input_ids.shape(),
            "BLIP-2 (T5) forward: decoder_attention_mask has shape ", decoder_attention_mask.shape(), ", expected ",
            decoder_input_ids.shape());
      const nn::CrossAttentionKV encoder = encode(inputs);
      const std::int64_t tokens = decoder_input_ids.dim(1);
      nn::T5DecoderState state;
      state.allocate(config.t5, batch, tokens, tokens);
      nn::t5_decoder_forward(config.t5, t5, state, decoder_input_ids.data(),
                             decoder_attention_mask.empty() ? nullptr : decoder_attention_mask.data(), tokens, encoder,
                             1);
      Tensor<float> logits(Shape{batch, tokens, config.t5.vocab_size});
      Tensor<float> scratch(Shape{batch * tokens, config.t5.d_model});
      nn::t5_logits(config.t5, t5, state.hidden.data(), batch * tokens, scratch.data(), logits.data());
      return logits;
    }
    check(decoder_input_ids.empty(), "BLIP-2 forward: decoder_input_ids are for encoder-decoder (T5) models only");
    nn::OptState state;
    state.allocate(config.opt, batch, length, length);
    nn::opt_forward(config.opt, opt, state, inputs.inputs_embeds.data(), inputs.attention_mask.data(), length);
    Tensor<float> logits(Shape{batch, length, config.opt.vocab_size});
    nn::opt_logits(opt, state.output.data(), batch * length, logits.data());
    return logits;
  }

  // What HF generate(pixel_values, input_ids, attention_mask) hands to
  // language_model.generate(inputs_embeds=..., attention_mask=...):
  //   OPT: the prompt embeddings; generate's input_ids start EMPTY (the prompt
  //        does not count for the repetition penalty) and HF prepends BOS to
  //        what it returns ([bos] + new tokens); the legacy path adds Q - 1 /
  //        Q to max_length / min_length, and the LM subtracts the embeddings'
  //        length again when max_new_tokens / min_new_tokens are unset.
  //   T5:  the encoder runs once here; the decoder starts from
  //        [decoder_start] (0), which heads every returned row.
  Blip2GenerationSession generation_session(const Blip2ImageQueries& queries, Tensor<const std::int64_t> input_ids,
                                            Tensor<const std::int64_t> attention_mask) const {
    Blip2LanguageModelInputs inputs = language_model_inputs(queries, input_ids, attention_mask);
    const std::int64_t batch = inputs.inputs_embeds.dim(0);
    SearchConventions conventions;
    conventions.end_token_ids = config.eos_token_ids;
    conventions.pad_token_id = config.pad_token_id;
    if (is_encoder_decoder()) {
      Tensor<std::int64_t> start(Shape{batch, 1});
      start.fill(config.decoder_start_token_id);
      conventions.start_ids = start;
      return Blip2T5Session(T5LanguageModel{&config.t5, &t5, encode(inputs)}, DecoderPrompt{start, {}, {}},
                            std::move(conventions));
    }
    conventions.start_ids = Tensor<std::int64_t>(Shape{batch, 0});
    conventions.output_prefix = {config.bos_token_id};
    conventions.inputs_embeds_length = inputs.inputs_embeds.dim(1);
    if (inputs.queries_concatenated) {
      conventions.extra_max_length = config.num_query_tokens - 1;
      conventions.extra_min_length = config.num_query_tokens;
    }
    return Blip2OptSession(OptLanguageModel{&config.opt, &opt},
                           DecoderPrompt{{}, std::move(inputs.inputs_embeds), std::move(inputs.attention_mask)},
                           std::move(conventions));
  }

 private:
  // T5: the encoder over [queries ; prompt] once, as cross-attention keys and
  // values for every decoder layer (with the encoder's padding mask).
  nn::CrossAttentionKV encode(const Blip2LanguageModelInputs& inputs) const {
    const std::int64_t batch = inputs.inputs_embeds.dim(0), length = inputs.inputs_embeds.dim(1);
    nn::T5EncoderState state;
    state.allocate(config.t5, batch, length);
    nn::t5_encoder_forward(config.t5, t5, state, inputs.inputs_embeds.data(), inputs.attention_mask.data());
    return nn::t5_cross_attention_kv(config.t5, t5, state.hidden, inputs.attention_mask.data());
  }
};

// ---- Blip2ForImageTextRetrieval ---------------------------------------------

class Blip2ForImageTextRetrieval {
 public:
  Blip2ModelConfig config;
  BlipVisionModel vision_model;                     // vision_model.*
  Blip2QueryTransformer qformer;                    // query_tokens, qformer.*
  nn::QFormerTextEmbeddingWeights text_embeddings;  // embeddings.{word,position}_embeddings.weight
  nn::LinearWeights vision_projection;              // vision_projection.weight [D, Hq], bias [D]
  nn::LinearWeights text_projection;                // text_projection.weight   [D, Hq], bias [D]
  nn::LinearWeights itm_head;                       // itm_head.weight          [2, Hq], bias [2]

  static Blip2ForImageTextRetrieval load(const WeightStore& store, const Blip2ModelConfig& config) {
    check(config.qformer.has_text_feed_forward,
          "Blip2ForImageTextRetrieval needs qformer_config.use_qformer_text_input = true");
    Blip2ForImageTextRetrieval model;
    model.config = config;
    model.vision_model = {config.vision,
                          nn::load_vision_transformer(store, "vision_model.", config.vision, config.vision_qkv_bias)};
    model.qformer = Blip2QueryTransformer::load(store, config);
    model.text_embeddings = nn::load_qformer_text_embeddings(store, "embeddings.", config.qformer);
    const std::int64_t hidden = config.qformer.hidden_size, projection = config.image_text_hidden_size;
    model.vision_projection = nn::load_linear(store, "vision_projection", projection, hidden);
    model.text_projection = nn::load_linear(store, "text_projection", projection, hidden);
    model.itm_head = nn::load_linear(store, "itm_head", 2, hidden);
    return model;
  }

  struct MatchOutput {
    Tensor<float> logits;           // [B, 2]  mean over queries of itm_head; softmax[:, 1] = match probability
    Tensor<float> text_embeddings;  // [B, Q + T, Hq]  Q-Former output over [queries ; text]
  };

  // use_image_text_matching_head=True: text row b is scored against image b.
  MatchOutput image_text_matching(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                                  Tensor<const std::int64_t> attention_mask) const {
    const std::int64_t batch = images.last_hidden_state.dim(0);
    check(input_ids.rank() == 2 && input_ids.dim(0) == batch && input_ids.dim(1) >= 1,
          "BLIP-2 image-text matching: input_ids must be [", batch, ", tokens] (one text per image), got ",
          input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(),
          "BLIP-2 image-text matching: attention_mask has shape ", attention_mask.shape(), ", expected ",
          input_ids.shape());
    const std::int64_t queries = qformer.query_count(), tokens = input_ids.dim(1), hidden = config.qformer.hidden_size;
    const std::int64_t length = queries + tokens;
    // [queries ; word + position embeddings], mask [ones(Q) ; attention_mask].
    Tensor<float> input(Shape{batch, length, hidden});
    Tensor<float> text(Shape{batch, tokens, hidden});
    nn::qformer_text_embeddings(config.qformer, text_embeddings, input_ids, text.data());
    std::vector<std::int64_t> mask(static_cast<std::size_t>(batch * length), 1);
    for (std::int64_t row = 0; row < batch; ++row) {
      float* out = input.data() + row * length * hidden;
      std::memcpy(out, qformer.query_tokens.data(), sizeof(float) * static_cast<std::size_t>(queries * hidden));
      std::memcpy(out + queries * hidden, text.data() + row * tokens * hidden,
                  sizeof(float) * static_cast<std::size_t>(tokens * hidden));
      if (!attention_mask.empty())
        std::copy_n(attention_mask.data() + row * tokens, tokens, mask.begin() + row * length + queries);
    }
    MatchOutput out;
    out.text_embeddings = Tensor<float>(input.shape());
    nn::QFormerState state;
    nn::qformer_forward(config.qformer, qformer.weights, input, queries, mask.data(), images.last_hidden_state, state,
                        out.text_embeddings);
    // itm_head on every query row, then the mean over queries.
    Tensor<float> per_query(Shape{batch, queries, 2});
    for (std::int64_t row = 0; row < batch; ++row)
      kernels::linear(out.text_embeddings.data() + row * length * hidden, hidden, queries, itm_head,
                      per_query.data() + row * queries * 2, 2);
    out.logits = Tensor<float>(Shape{batch, 2});
    for (std::int64_t row = 0; row < batch; ++row) {
      for (std::int64_t label = 0; label < 2; ++label) {
        float sum = 0.0f;
        for (std::int64_t q = 0; q < queries; ++q) sum += per_query.data()[(row * queries + q) * 2 + label];
        out.logits.data()[row * 2 + label] = sum / static_cast<float>(queries);
      }
    }
    return out;
  }

  struct ContrastiveOutput {
    Tensor<float> similarity;       // [images, texts]  max over queries of the cosine (no temperature)
    Tensor<float> image_features;   // [images, Q, D]   normalize(vision_projection(query outputs))
    Tensor<float> text_features;    // [texts, D]       normalize(text_projection(text CLS))
  };

  // ITC's image side: normalize(vision_projection(Q-Former query outputs)),
  // [images, Q, D]: one unit vector per query token.
  Tensor<float> image_features(const ImageEmbeddings& images) const {
    const std::int64_t image_count = images.last_hidden_state.dim(0), queries = qformer.query_count();
    const std::int64_t projection = config.image_text_hidden_size;
    const Tensor<float> query_output = qformer.forward(images);
    Tensor<float> features(Shape{image_count, queries, projection});
    nn::apply_linear(vision_projection, query_output.data(), image_count * queries, features.data());
    normalize_rows(features.data(), image_count * queries, projection);
    return features;
  }

  // ITC's text side: the text alone through the Q-Former (query_length 0: no
  // cross-attention, the text feed-forward), normalize(text_projection(CLS)), [texts, D].
  Tensor<float> text_features(Tensor<const std::int64_t> input_ids, Tensor<const std::int64_t> attention_mask) const {
    check(input_ids.rank() == 2 && input_ids.dim(0) >= 1 && input_ids.dim(1) >= 1,
          "BLIP-2 contrastive: input_ids must be [texts, tokens], got ", input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(),
          "BLIP-2 contrastive: attention_mask has shape ", attention_mask.shape(), ", expected ", input_ids.shape());
    const std::int64_t text_count = input_ids.dim(0), tokens = input_ids.dim(1), hidden = config.qformer.hidden_size;
    const std::int64_t projection = config.image_text_hidden_size;
    Tensor<float> text(Shape{text_count, tokens, hidden});
    nn::qformer_text_embeddings(config.qformer, text_embeddings, input_ids, text.data());
    Tensor<float> text_output(text.shape());
    nn::QFormerState state;
    nn::qformer_forward(config.qformer, qformer.weights, text, 0,
                        attention_mask.empty() ? nullptr : attention_mask.data(), {}, state, text_output);
    Tensor<float> features(Shape{text_count, projection});
    kernels::linear(text_output.data(), tokens * hidden, text_count, text_projection, features.data(), projection);
    normalize_rows(features.data(), text_count, projection);
    return features;
  }

  // HF's ITC similarity: for each (image, text), the best cosine over the
  // image's query tokens. image_features [images, Q, D], text_features [texts, D].
  static Tensor<float> best_query_similarity(const Tensor<float>& image_features, const Tensor<float>& text_features) {
    const std::int64_t image_count = image_features.dim(0), queries = image_features.dim(1);
    const std::int64_t projection = image_features.dim(2), text_count = text_features.dim(0);
    Tensor<float> similarity(Shape{image_count, text_count});
    for (std::int64_t image = 0; image < image_count; ++image) {
      for (std::int64_t text_index = 0; text_index < text_count; ++text_index) {
        float best = std::numeric_limits<float>::lowest();
        for (std::int64_t q = 0; q < queries; ++q) {
          const float* a = image_features.data() + (image * queries + q) * projection;
          const float* b = text_features.data() + text_index * projection;
          float dot = 0.0f;
          for (std::int64_t d = 0; d < projection; ++d) dot += a[d] * b[d];
          best = std::max(best, dot);
        }
        similarity.at(image, text_index) = best;
      }
    }
    return similarity;
  }

  // use_image_text_matching_head=False.
  ContrastiveOutput image_text_contrastive(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                                           Tensor<const std::int64_t> attention_mask) const {
    ContrastiveOutput out;
    out.text_features = text_features(input_ids, attention_mask);
    out.image_features = image_features(images);
    out.similarity = best_query_similarity(out.image_features, out.text_features);
    return out;
  }
};

}  // namespace blip
