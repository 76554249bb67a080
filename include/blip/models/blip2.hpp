// blip/models/blip2.hpp: BLIP-2 (Li et al., 2023, "BLIP-2: Bootstrapping
// Language-Image Pre-training with Frozen Image Encoders and Large Language
// Models") as Hugging Face ships it.
//
//   image ──► frozen ViT-g ──► image embeddings [B, 1+P, Hv]
//                                   │ cross-attention (query rows only)
//   learned queries [Q, Hq] ──► Q-Former ──► query outputs [B, Q, Hq]
//                                   │ language_projection
//                                   ▼
//   frozen LLM (OPT):  [projected queries ; prompt embeddings] ──► causal LM ──► next token
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
// The LM is driven by inputs_embeds, so its generate() starts with EMPTY
// input_ids: the prompt does not count for the repetition penalty, and HF
// prepends BOS to what generate returns ([bos] + new tokens).
//
// Each HF class maps to one struct: Blip2ForConditionalGeneration (OPT),
// Blip2ForImageTextRetrieval. A loaded model is immutable; requests build
// their own state.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/io/config.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/nn/loading.hpp"
#include "blip/nn/opt.hpp"
#include "blip/nn/qformer.hpp"
#include "blip/nn/vision_transformer.hpp"

namespace blip {

// ---- Config ---------------------------------------------------------------

struct Blip2ModelConfig {
  nn::VisionTransformerConfig vision;
  nn::QkvBiasLayout vision_qkv_bias = nn::QkvBiasLayout::Fused;
  nn::QFormerConfig qformer;
  nn::OptDecoderConfig opt;
  std::int64_t num_query_tokens = 32;
  std::int64_t image_text_hidden_size = 256;      // ITC projection width
  std::optional<std::int64_t> image_token_index;  // set: the <image> tokens are replaced by the queries
  bool has_language_model = false;                // Blip2ForImageTextRetrieval folders may carry any text_config
  // From text_config: the ids HF's language_model.generate() uses.
  std::int64_t bos_token_id = 2;
  std::vector<std::int64_t> eos_token_ids{2};
  std::int64_t pad_token_id = 1;
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
    model.has_language_model = true;
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

// ---- BLIP-2 + OPT: the decoding session -------------------------------------

// One generation request on the OPT language model, in the shape the search
// loop of generation/ drives (start, step, reorder). The prompt (queries and
// prompt embeddings) runs once per batch entry; its keys and values are then
// copied to every beam / sample row of that entry.
class Blip2OptSession {
 public:
  // inputs_embeds [B, E, W] and mask [B, E]: what HF hands to language_model.generate.
  Blip2OptSession(const nn::OptDecoderConfig& config, const nn::OptWeights& weights, Tensor<float> inputs_embeds,
                  Tensor<std::int64_t> mask, const Blip2ModelConfig& model_config, bool queries_concatenated)
      : config_(config),
        weights_(weights),
        inputs_embeds_(std::move(inputs_embeds)),
        mask_(std::move(mask)),
        bos_token_id_(model_config.bos_token_id),
        eos_token_ids_(model_config.eos_token_ids),
        pad_token_id_(model_config.pad_token_id),
        query_count_(queries_concatenated ? model_config.num_query_tokens : 0),
        empty_prompt_(Shape{inputs_embeds_.dim(0), 0}) {}

  std::int64_t vocab_size() const { return config_.vocab_size; }
  // The LM's input_ids are empty: it is driven by inputs_embeds.
  Tensor<const std::int64_t> prompt_ids() const { return empty_prompt_; }
  const std::vector<std::int64_t>& end_token_ids() const { return eos_token_ids_; }
  std::int64_t pad_token_id() const { return pad_token_id_; }
  // HF Blip2ForConditionalGeneration.generate prepends BOS to every returned row.
  std::vector<std::int64_t> output_prefix() const { return {bos_token_id_}; }
  // generate()'s inputs_embeds length bookkeeping (see generation/session.hpp):
  // the LM subtracts the embeddings' length from max_length / min_length, and
  // BLIP-2's legacy (concatenating) path first adds Q - 1 and Q to them.
  std::int64_t inputs_embeds_length() const { return inputs_embeds_.dim(1); }
  std::int64_t extra_max_length() const { return query_count_ > 0 ? query_count_ - 1 : 0; }
  std::int64_t extra_min_length() const { return query_count_; }

  const float* start(std::int64_t rows_per_entry, std::int64_t max_new_tokens) {
    const std::int64_t batch = inputs_embeds_.dim(0), length = inputs_embeds_.dim(1);
    const std::int64_t width = config_.word_embed_proj_dim, vocab = config_.vocab_size;
    rows_per_entry_ = rows_per_entry;
    rows_ = batch * rows_per_entry;
    // The prompt, once per entry.
    nn::OptState prompt_state;
    prompt_state.allocate(config_, batch, length, length);
    nn::opt_forward(config_, weights_, prompt_state, inputs_embeds_.data(), mask_.data(), length);
    Tensor<float> last(Shape{batch, width});
    for (std::int64_t entry = 0; entry < batch; ++entry)
      std::memcpy(last.data() + entry * width, prompt_state.output.data() + (entry * length + length - 1) * width,
                  sizeof(float) * static_cast<std::size_t>(width));
    Tensor<float> entry_logits(Shape{batch, vocab});
    nn::opt_logits(weights_, last.data(), batch, entry_logits.data());

    // Every row of an entry continues from it (HF expands the inputs by num_beams).
    state_.allocate(config_, rows_, 1, length + max_new_tokens);
    std::vector<std::int64_t> source_rows(static_cast<std::size_t>(rows_));
    for (std::int64_t row = 0; row < rows_; ++row) source_rows[static_cast<std::size_t>(row)] = row / rows_per_entry;
    for (std::size_t layer = 0; layer < state_.self_caches.size(); ++layer)
      state_.self_caches[layer].assign_rows(prompt_state.self_caches[layer], source_rows.data());
    for (std::int64_t row = 0; row < rows_; ++row)
      std::copy_n(mask_.data() + (row / rows_per_entry) * length, length,
                  state_.attention_mask.begin() + row * state_.capacity);
    state_.length = length;
    logits_ = Tensor<float>(Shape{rows_, vocab});
    for (std::int64_t row = 0; row < rows_; ++row)
      std::memcpy(logits_.data() + row * vocab, entry_logits.data() + (row / rows_per_entry) * vocab,
                  sizeof(float) * static_cast<std::size_t>(vocab));
    token_embeddings_ = Tensor<float>(Shape{rows_, width});
    mask_scratch_.assign(state_.attention_mask.size(), 0);
    return logits_.data();
  }

  const float* step(const std::int64_t* tokens) {
    kernels::embedding_lookup(weights_.embed_tokens, tokens, rows_, token_embeddings_.data());
    nn::opt_forward(config_, weights_, state_, token_embeddings_.data(), nullptr, 1);
    nn::opt_logits(weights_, state_.output.data(), rows_, logits_.data());
    return logits_.data();
  }

  void reorder(const std::int64_t* source_rows) {
    for (kernels::KVCache& cache : state_.self_caches) cache.reorder(source_rows);
    const std::int64_t capacity = state_.capacity;
    for (std::int64_t row = 0; row < rows_; ++row)
      std::copy_n(state_.attention_mask.begin() + source_rows[row] * capacity, capacity,
                  mask_scratch_.begin() + row * capacity);
    state_.attention_mask.swap(mask_scratch_);
  }

 private:
  const nn::OptDecoderConfig& config_;
  const nn::OptWeights& weights_;
  Tensor<float> inputs_embeds_;
  Tensor<std::int64_t> mask_;
  std::int64_t bos_token_id_;
  std::vector<std::int64_t> eos_token_ids_;
  std::int64_t pad_token_id_;
  std::int64_t query_count_;
  Tensor<std::int64_t> empty_prompt_;
  std::int64_t rows_per_entry_ = 1, rows_ = 0;
  nn::OptState state_;
  Tensor<float> logits_, token_embeddings_;
  std::vector<std::int64_t> mask_scratch_;
};

// ---- Blip2ForConditionalGeneration (OPT) ------------------------------------

// What the Q-Former hands the language model for a batch of images.
struct Blip2ImageQueries {
  Tensor<float> qformer_output;   // [B, Q, Hq]  qformer(...).last_hidden_state
  Tensor<float> language_inputs;  // [B, Q, Ht]  language_projection(qformer_output)
};

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
  nn::OptWeights language_model;            // language_model.*

  static Blip2ForConditionalGeneration load(const WeightStore& store, const Blip2ModelConfig& config) {
    check(config.has_language_model, "Blip2ForConditionalGeneration: the config's text_config is not an OPT model");
    check(config.opt.word_embed_proj_dim == config.opt.hidden_size,
          "Blip2ForConditionalGeneration: text_config.word_embed_proj_dim (", config.opt.word_embed_proj_dim,
          ") != hidden_size (", config.opt.hidden_size,
          "): HF concatenates the projected queries (hidden_size wide) with the token embeddings");
    Blip2ForConditionalGeneration model;
    model.config = config;
    model.vision_model = {config.vision,
                          nn::load_vision_transformer(store, "vision_model.", config.vision, config.vision_qkv_bias)};
    model.qformer = Blip2QueryTransformer::load(store, config);
    model.language_projection =
        nn::load_linear(store, "language_projection", config.opt.hidden_size, config.qformer.hidden_size);
    model.language_model = nn::load_opt(store, "language_model.", config.opt);
    return model;
  }

  Blip2ImageQueries image_queries(const ImageEmbeddings& images) const {
    Blip2ImageQueries queries;
    queries.qformer_output = qformer.forward(images);
    const std::int64_t batch = queries.qformer_output.dim(0), count = queries.qformer_output.dim(1);
    queries.language_inputs = Tensor<float>(Shape{batch, count, config.opt.hidden_size});
    nn::apply_linear(language_projection, queries.qformer_output.data(), batch * count,
                     queries.language_inputs.data());
    return queries;
  }

  // inputs_embeds and mask as HF's forward / generate build them. input_ids
  // empty: [[bos]] per image (generate's default; [<image> × Q, bos] with
  // image_token_index). attention_mask empty: ones.
  Blip2LanguageModelInputs language_model_inputs(const Blip2ImageQueries& queries,
                                                 Tensor<const std::int64_t> input_ids,
                                                 Tensor<const std::int64_t> attention_mask) const {
    const std::int64_t batch = queries.language_inputs.dim(0), query_count = queries.language_inputs.dim(1);
    const std::int64_t width = config.opt.word_embed_proj_dim;
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
      kernels::embedding_lookup(language_model.embed_tokens, input_ids.data(), batch * tokens,
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
        kernels::embedding_lookup(language_model.embed_tokens, input_ids.data() + row * tokens, tokens,
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

  // HF forward(pixel_values, input_ids, attention_mask).logits: [B, E, V]
  // (E = Q + T on the legacy path, T with image_token_index).
  Tensor<float> forward(const Blip2ImageQueries& queries, Tensor<const std::int64_t> input_ids,
                        Tensor<const std::int64_t> attention_mask) const {
    check(!input_ids.empty(), "BLIP-2 forward: input_ids are required");
    const Blip2LanguageModelInputs inputs = language_model_inputs(queries, input_ids, attention_mask);
    const std::int64_t batch = inputs.inputs_embeds.dim(0), length = inputs.inputs_embeds.dim(1);
    nn::OptState state;
    state.allocate(config.opt, batch, length, length);
    nn::opt_forward(config.opt, language_model, state, inputs.inputs_embeds.data(), inputs.attention_mask.data(),
                    length);
    Tensor<float> logits(Shape{batch, length, config.opt.vocab_size});
    nn::opt_logits(language_model, state.output.data(), batch * length, logits.data());
    return logits;
  }

  // What HF generate(pixel_values, input_ids, attention_mask) hands to
  // language_model.generate(inputs_embeds=..., attention_mask=...).
  Blip2OptSession generation_session(const Blip2ImageQueries& queries, Tensor<const std::int64_t> input_ids,
                                     Tensor<const std::int64_t> attention_mask) const {
    Blip2LanguageModelInputs inputs = language_model_inputs(queries, input_ids, attention_mask);
    return Blip2OptSession(config.opt, language_model, std::move(inputs.inputs_embeds),
                           std::move(inputs.attention_mask), config, inputs.queries_concatenated);
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

  // use_image_text_matching_head=False.
  ContrastiveOutput image_text_contrastive(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                                           Tensor<const std::int64_t> attention_mask) const {
    check(input_ids.rank() == 2 && input_ids.dim(0) >= 1 && input_ids.dim(1) >= 1,
          "BLIP-2 contrastive: input_ids must be [texts, tokens], got ", input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(),
          "BLIP-2 contrastive: attention_mask has shape ", attention_mask.shape(), ", expected ", input_ids.shape());
    const std::int64_t image_count = images.last_hidden_state.dim(0), text_count = input_ids.dim(0);
    const std::int64_t queries = qformer.query_count(), tokens = input_ids.dim(1), hidden = config.qformer.hidden_size;
    const std::int64_t projection = config.image_text_hidden_size;
    ContrastiveOutput out;
    const Tensor<float> query_output = qformer.forward(images);
    out.image_features = Tensor<float>(Shape{image_count, queries, projection});
    nn::apply_linear(vision_projection, query_output.data(), image_count * queries, out.image_features.data());
    normalize_rows(out.image_features.data(), image_count * queries, projection);

    // The text alone through the Q-Former (query_length 0: no cross-attention, text feed-forward).
    Tensor<float> text(Shape{text_count, tokens, hidden});
    nn::qformer_text_embeddings(config.qformer, text_embeddings, input_ids, text.data());
    Tensor<float> text_output(text.shape());
    nn::QFormerState state;
    nn::qformer_forward(config.qformer, qformer.weights, text, 0,
                        attention_mask.empty() ? nullptr : attention_mask.data(), {}, state, text_output);
    out.text_features = Tensor<float>(Shape{text_count, projection});
    kernels::linear(text_output.data(), tokens * hidden, text_count, text_projection, out.text_features.data(),
                    projection);
    normalize_rows(out.text_features.data(), text_count, projection);

    out.similarity = Tensor<float>(Shape{image_count, text_count});
    for (std::int64_t image = 0; image < image_count; ++image) {
      for (std::int64_t text_index = 0; text_index < text_count; ++text_index) {
        float best = std::numeric_limits<float>::lowest();
        for (std::int64_t q = 0; q < queries; ++q) {
          const float* a = out.image_features.data() + (image * queries + q) * projection;
          const float* b = out.text_features.data() + text_index * projection;
          float dot = 0.0f;
          for (std::int64_t d = 0; d < projection; ++d) dot += a[d] * b[d];
          best = std::max(best, dot);
        }
        out.similarity.at(image, text_index) = best;
      }
    }
    return out;
  }
};

}  // namespace blip
