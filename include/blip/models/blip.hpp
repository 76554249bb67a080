// blip/models/blip.hpp: BLIP (Li et al., 2022, "BLIP: Bootstrapping
// Language-Image Pre-training") as Hugging Face ships it.
//
//            image ──► ViT ──► image embeddings [B, 1+P, Hv]
//                                   │ (cross-attention keys/values, once per image)
//   captioning:   [DEC] prompt ──► BERT decoder (causal) ──► LM head ──► next token
//   VQA:          question ──► BERT encoder (× image) ──► question embeddings
//                 [DEC] ──► BERT decoder (causal, × question embeddings) ──► answer
//   retrieval:    ITM: text ──► BERT encoder (× image) ──► CLS ──► itm_head ──► [no match, match]
//                 ITC: cos(vision_proj(image CLS), text_proj(BERT encoder(text) CLS))
//
// Each HF class maps to one struct below: BlipForConditionalGeneration,
// BlipForQuestionAnswering, BlipForImageTextRetrieval. A loaded model is
// immutable; every request builds its own state, so one model can serve many
// threads at once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/io/config.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/language_model_session.hpp"
#include "blip/nn/bert.hpp"
#include "blip/nn/loading.hpp"
#include "blip/nn/vision_transformer.hpp"

namespace blip {

// ---- Config ---------------------------------------------------------------

struct BlipModelConfig {
  nn::VisionTransformerConfig vision;
  nn::BertConfig text;
  std::int64_t image_text_hidden_size = 256;  // ITC projection width (vision_proj / text_proj)
  // Special ids, from text_config. HF BLIP starts decoding from bos_token_id
  // ([DEC] = 30522, an id the tokenizer files do not contain), stops at
  // sep_token_id ([SEP] = 102; NOT eos_token_id, which is 2) and pads with 0.
  std::int64_t decoder_start_token_id = 30522;
  std::int64_t sep_token_id = 102;
  std::int64_t pad_token_id = 0;
};

inline BlipModelConfig make_blip_model_config(const BlipConfig& config) {
  BlipModelConfig model;
  model.vision = nn::make_vision_transformer_config(config.vision_config);
  const BlipTextConfig& text = config.text_config;
  model.text.vocab_size = text.vocab_size;
  model.text.hidden_size = text.hidden_size;
  model.text.encoder_hidden_size = text.encoder_hidden_size;
  model.text.intermediate_size = text.intermediate_size;
  model.text.num_hidden_layers = text.num_hidden_layers;
  model.text.num_attention_heads = text.num_attention_heads;
  model.text.max_position_embeddings = text.max_position_embeddings;
  model.text.layer_norm_eps = static_cast<float>(text.layer_norm_eps);
  model.text.activation = kernels::parse_activation(text.hidden_act);
  model.text.has_cross_attention = text.is_decoder;
  model.image_text_hidden_size = config.image_text_hidden_size;
  model.decoder_start_token_id = required_token_id(text.bos_token_id, "text_config.bos_token_id");
  model.sep_token_id = required_token_id(text.sep_token_id, "text_config.sep_token_id");
  model.pad_token_id = required_token_id(text.pad_token_id, "text_config.pad_token_id");
  return model;
}

// ---- Weights --------------------------------------------------------------

// BlipTextOnlyMLMHead: transform (dense, act, LayerNorm) then the vocabulary projection.
struct BlipLanguageModelHeadWeights {  // prefix: text_decoder.cls.predictions.
  nn::LinearWeights transform_dense;   // transform.dense.weight [H, H], bias [H]
  nn::LayerNormWeights transform_norm; // transform.LayerNorm.{weight,bias} [H]
  nn::LinearWeights decoder;           // decoder.weight [V, H]; bias = cls.predictions.bias [V] (tied with decoder.bias)
};

inline BlipLanguageModelHeadWeights load_blip_language_model_head(const WeightStore& store, const std::string& prefix,
                                                                  const nn::BertConfig& config) {
  BlipLanguageModelHeadWeights head;
  const std::int64_t hidden = config.hidden_size, vocab = config.vocab_size;
  head.transform_dense = nn::load_linear(store, prefix + "transform.dense", hidden, hidden);
  head.transform_norm = nn::load_layer_norm(store, prefix + "transform.LayerNorm", hidden, config.layer_norm_eps);
  // HF ties decoder.bias to cls.predictions.bias; checkpoints carry one or both.
  Tensor<const float> bias = store.get_or_empty(prefix + "bias", Shape{vocab});
  if (bias.empty()) bias = store.get(prefix + "decoder.bias", Shape{vocab});
  if (store.contains(prefix + "decoder.bias")) store.get(prefix + "decoder.bias", Shape{vocab});  // mark as used
  const std::string decoder = prefix + "decoder.weight";
  head.decoder = nn::LinearWeights::prepare(store.get_matrix_for_repacking(decoder, vocab, hidden), bias,
                                            store.linear_precision(decoder), store.linear_activations());
  return head;
}

// ---- The vision encoder ----------------------------------------------------

struct ImageEmbeddings {
  Tensor<float> last_hidden_state;  // [B, 1+P, Hv]  what the text model cross-attends to
  Tensor<float> pooled_output;      // [B, Hv]       post_layernorm(last_hidden_state[:, 0]) (HF applies it twice)
};

struct BlipVisionModel {
  nn::VisionTransformerConfig config;
  nn::VisionTransformerWeights weights;

  ImageEmbeddings forward(Tensor<const float> pixel_values) const {
    check(pixel_values.rank() == 4, "vision model: pixel_values must be [batch, 3, size, size], got ",
          pixel_values.shape());
    const std::int64_t batch = pixel_values.dim(0);
    ImageEmbeddings out;
    out.last_hidden_state = Tensor<float>(Shape{batch, config.num_positions(), config.hidden_size});
    out.pooled_output = Tensor<float>(Shape{batch, config.hidden_size});
    nn::VisionTransformerState state;
    nn::vision_transformer_forward(config, weights, pixel_values, state, out.last_hidden_state, out.pooled_output);
    return out;
  }
};

// ---- The text encoder (BlipTextModel without pooler) ---------------------

struct BlipTextEncoder {
  nn::BertConfig config;
  nn::BertWeights weights;

  // last_hidden_state [B, T, H] for ids/mask [B, T]; cross-attends to `cross`
  // (one source per row) when given, as HF does when encoder_hidden_states is passed.
  Tensor<float> forward(Tensor<const std::int64_t> input_ids, Tensor<const std::int64_t> attention_mask,
                        const nn::CrossAttentionKV* cross, std::int64_t cross_group = 1) const {
    check(input_ids.rank() == 2 && input_ids.dim(1) >= 1, "text encoder: input_ids must be [batch, tokens], got ",
          input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(),
          "text encoder: attention_mask has shape ", attention_mask.shape(), ", expected ", input_ids.shape());
    const std::int64_t batch = input_ids.dim(0), tokens = input_ids.dim(1);
    nn::BertState state;
    state.allocate(config, batch, tokens, tokens);
    nn::bert_forward(config, weights, state, input_ids.data(), attention_mask.empty() ? nullptr : attention_mask.data(),
                     tokens, nn::SelfAttentionKind::Bidirectional, cross, cross_group);
    return state.hidden.clone();
  }
};

// ---- The text decoder (BlipTextLMHeadModel) -------------------------------

struct BlipTextDecoder {
  nn::BertConfig config;
  nn::BertWeights weights;                 // text_decoder.bert.*
  BlipLanguageModelHeadWeights head;       // text_decoder.cls.predictions.*

  // logits [rows, V] for hidden states [rows, H]; `scratch` is [rows, H].
  void logits(const float* hidden, std::int64_t rows, float* scratch, float* out) const {
    nn::apply_linear(head.transform_dense, hidden, rows, scratch);
    kernels::apply_activation(config.activation, scratch, rows * config.hidden_size);
    nn::apply_layer_norm(head.transform_norm, scratch, rows, scratch);
    nn::apply_linear(head.decoder, scratch, rows, out);
  }

  // Teacher forcing: logits [B, T, V] of the causal decoder over ids/mask [B, T].
  Tensor<float> forward(Tensor<const std::int64_t> input_ids, Tensor<const std::int64_t> attention_mask,
                        const nn::CrossAttentionKV& cross) const {
    check(input_ids.rank() == 2 && input_ids.dim(1) >= 1, "text decoder: input_ids must be [batch, tokens], got ",
          input_ids.shape());
    check(attention_mask.empty() || attention_mask.shape() == input_ids.shape(),
          "text decoder: attention_mask has shape ", attention_mask.shape(), ", expected ", input_ids.shape());
    const std::int64_t batch = input_ids.dim(0), tokens = input_ids.dim(1);
    nn::BertState state;
    state.allocate(config, batch, tokens, tokens);
    nn::bert_forward(config, weights, state, input_ids.data(), attention_mask.empty() ? nullptr : attention_mask.data(),
                     tokens, nn::SelfAttentionKind::Causal, &cross, batch / cross.sources);
    Tensor<float> out(Shape{batch, tokens, config.vocab_size});
    Tensor<float> scratch(Shape{batch * tokens, config.hidden_size});
    logits(state.hidden.data(), batch * tokens, scratch.data(), out.data());
    return out;
  }
};

// BLIP's text decoder as a LanguageModelSession adapter: causal BERT over the
// ids, cross-attending to the image (or question) keys/values that every
// beam of that image shares.
struct BlipTextDecoderLanguageModel {
  using State = nn::BertState;
  const BlipTextDecoder* decoder = nullptr;
  nn::CrossAttentionKV cross;

  std::int64_t vocab_size() const { return decoder->config.vocab_size; }
  std::int64_t output_width() const { return decoder->config.hidden_size; }
  void allocate(State& state, std::int64_t rows, std::int64_t tokens_per_call, std::int64_t capacity) const {
    state.allocate(decoder->config, rows, tokens_per_call, capacity);
  }
  const float* forward(State& state, const DecoderInput& input, std::int64_t tokens,
                       std::int64_t rows_per_entry) const {
    check(input.ids != nullptr, "BLIP text decoder: the prompt must be token ids");
    nn::bert_forward(decoder->config, decoder->weights, state, input.ids, input.mask, tokens,
                     nn::SelfAttentionKind::Causal, &cross, rows_per_entry);
    return state.hidden.data();
  }
  void logits(const float* hidden, std::int64_t rows, float* scratch, float* out) const {
    decoder->logits(hidden, rows, scratch, out);
  }
};

using BlipDecoderSession = LanguageModelSession<BlipTextDecoderLanguageModel>;

// prompt_ids / prompt_mask [B, P]: what HF passes as input_ids / attention_mask
// to text_decoder.generate ([DEC] + prompt; mask may be empty). HF BLIP passes
// eos_token_id = sep_token_id ([SEP] = 102, not config eos 2); the returned
// ids are the search loop's as they are (they start with the prompt).
inline BlipDecoderSession make_blip_decoder_session(const BlipTextDecoder& decoder, nn::CrossAttentionKV cross,
                                                    Tensor<const std::int64_t> prompt_ids,
                                                    Tensor<const std::int64_t> prompt_mask, std::int64_t end_token_id,
                                                    std::int64_t pad_token_id) {
  check(prompt_ids.rank() == 2 && prompt_ids.dim(1) >= 1, "decoder prompt must be [batch, tokens], got ",
        prompt_ids.shape());
  check(prompt_ids.dim(0) == cross.sources, "decoder prompt has ", prompt_ids.dim(0), " rows for ", cross.sources,
        " images");
  SearchConventions conventions;
  conventions.start_ids = prompt_ids;
  conventions.end_token_ids = {end_token_id};
  conventions.pad_token_id = pad_token_id;
  return BlipDecoderSession(BlipTextDecoderLanguageModel{&decoder, std::move(cross)},
                            DecoderPrompt{prompt_ids, {}, prompt_mask}, std::move(conventions));
}

// ---- BlipForConditionalGeneration ----------------------------------------

struct BlipForConditionalGeneration {
  BlipModelConfig config;
  BlipVisionModel vision_model;   // vision_model.*
  BlipTextDecoder text_decoder;   // text_decoder.*

  static BlipForConditionalGeneration load(const WeightStore& store, const BlipModelConfig& config) {
    BlipForConditionalGeneration model;
    model.config = config;
    model.vision_model = {config.vision, nn::load_vision_transformer(store, "vision_model.", config.vision)};
    model.text_decoder.config = config.text;
    check(config.text.has_cross_attention, "BlipForConditionalGeneration needs text_config.is_decoder = true");
    model.text_decoder.weights = nn::load_bert(store, "text_decoder.bert.", config.text);
    model.text_decoder.head = load_blip_language_model_head(store, "text_decoder.cls.predictions.", config.text);
    return model;
  }

  nn::CrossAttentionKV image_cross_attention(const ImageEmbeddings& images) const {
    // HF: image_attention_mask = ones -> no mask.
    return nn::compute_cross_attention_kv(text_decoder.config, text_decoder.weights, images.last_hidden_state);
  }

  // HF forward(pixel_values, input_ids, attention_mask).logits: [B, T, V], ids used as given.
  Tensor<float> forward(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                        Tensor<const std::int64_t> attention_mask) const {
    const nn::CrossAttentionKV cross = image_cross_attention(images);
    return text_decoder.forward(input_ids, attention_mask, cross);
  }

  // What HF generate(pixel_values, input_ids, attention_mask, **kwargs) hands
  // to the search loop. With no prompt the decoder starts from [DEC]; with one
  // (as BlipProcessor makes it: [CLS] words [SEP]), column 0 becomes [DEC] and
  // the LAST column (the [SEP]) is dropped together with its mask column. The
  // generated ids start with that prefix.
  BlipDecoderSession caption_session(const ImageEmbeddings& images, Tensor<const std::int64_t> prompt_ids,
                                     Tensor<const std::int64_t> prompt_mask) const {
    const std::int64_t batch = images.last_hidden_state.dim(0);
    Tensor<std::int64_t> ids, mask;
    if (prompt_ids.empty()) {
      ids = Tensor<std::int64_t>(Shape{batch, 1});
      ids.fill(config.decoder_start_token_id);
    } else {
      check(prompt_ids.rank() == 2 && prompt_ids.dim(0) == batch && prompt_ids.dim(1) >= 2,
            "caption prompt: input_ids must be [", batch, ", tokens >= 2] ([CLS] ... [SEP]), got ", prompt_ids.shape());
      const std::int64_t kept = prompt_ids.dim(1) - 1;
      ids = Tensor<std::int64_t>(Shape{batch, kept});
      for (std::int64_t row = 0; row < batch; ++row) {
        std::copy_n(prompt_ids.data() + row * prompt_ids.dim(1), kept, ids.data() + row * kept);
        ids.at(row, 0) = config.decoder_start_token_id;
      }
      if (!prompt_mask.empty()) {
        check(prompt_mask.shape() == prompt_ids.shape(), "caption prompt: attention_mask has shape ",
              prompt_mask.shape(), ", expected ", prompt_ids.shape());
        mask = Tensor<std::int64_t>(Shape{batch, kept});
        for (std::int64_t row = 0; row < batch; ++row) {
          std::copy_n(prompt_mask.data() + row * prompt_mask.dim(1), kept, mask.data() + row * kept);
        }
      }
    }
    return make_blip_decoder_session(text_decoder, image_cross_attention(images), ids, mask, config.sep_token_id,
                                     config.pad_token_id);
  }
};

// ---- BlipForQuestionAnswering ---------------------------------------------

struct BlipForQuestionAnswering {
  BlipModelConfig config;
  BlipVisionModel vision_model;   // vision_model.*
  BlipTextEncoder text_encoder;   // text_encoder.*  (question encoder, cross-attends to the image)
  BlipTextDecoder text_decoder;   // text_decoder.*  (answer decoder, cross-attends to the question)

  static BlipForQuestionAnswering load(const WeightStore& store, const BlipModelConfig& config) {
    // The answer decoder cross-attends to question embeddings of width
    // text hidden, through weights sized by encoder_hidden_size (= vision
    // hidden): HF only works when the two are equal.
    check(config.text.encoder_hidden_size == config.text.hidden_size,
          "BlipForQuestionAnswering needs vision_config.hidden_size (", config.text.encoder_hidden_size,
          ") == text_config.hidden_size (", config.text.hidden_size, ")");
    BlipForQuestionAnswering model;
    model.config = config;
    model.vision_model = {config.vision, nn::load_vision_transformer(store, "vision_model.", config.vision)};
    model.text_encoder = {config.text, nn::load_bert(store, "text_encoder.", config.text)};
    model.text_decoder.config = config.text;
    model.text_decoder.weights = nn::load_bert(store, "text_decoder.bert.", config.text);
    model.text_decoder.head = load_blip_language_model_head(store, "text_decoder.cls.predictions.", config.text);
    return model;
  }

  // text_encoder(question, cross-attending to the image with an all-ones mask).last_hidden_state [B, T, H]
  Tensor<float> encode_question(const ImageEmbeddings& images, Tensor<const std::int64_t> question_ids,
                                Tensor<const std::int64_t> question_mask) const {
    const nn::CrossAttentionKV cross =
        nn::compute_cross_attention_kv(text_encoder.config, text_encoder.weights, images.last_hidden_state);
    return text_encoder.forward(question_ids, question_mask, &cross, question_ids.dim(0) / cross.sources);
  }

  // HF forward(...) answer logits: the decoder cross-attends to the question
  // embeddings WITH the question's attention mask (generate uses all ones).
  Tensor<float> answer_logits(Tensor<const float> question_embeddings, Tensor<const std::int64_t> question_mask,
                              Tensor<const std::int64_t> answer_ids, Tensor<const std::int64_t> answer_mask) const {
    const nn::CrossAttentionKV cross = nn::compute_cross_attention_kv(
        text_decoder.config, text_decoder.weights, question_embeddings,
        question_mask.empty() ? nullptr : question_mask.data());
    return text_decoder.forward(answer_ids, answer_mask, cross);
  }

  // What HF generate(input_ids, pixel_values, attention_mask) hands to the
  // search loop: the answer starts from [DEC]; the decoder's mask over the
  // question is ALL ONES, so padded question tokens are attended (HF
  // behaviour, mirrored).
  BlipDecoderSession answer_session(const ImageEmbeddings& images, Tensor<const std::int64_t> question_ids,
                                    Tensor<const std::int64_t> question_mask) const {
    const Tensor<float> question = encode_question(images, question_ids, question_mask);
    Tensor<std::int64_t> start_ids(Shape{question_ids.dim(0), 1});
    start_ids.fill(config.decoder_start_token_id);
    return make_blip_decoder_session(text_decoder,
                                     nn::compute_cross_attention_kv(text_decoder.config, text_decoder.weights, question),
                                     start_ids, {}, config.sep_token_id, config.pad_token_id);
  }
};

// ---- BlipForImageTextRetrieval --------------------------------------------

// F.normalize(x, dim=-1): x / max(‖x‖₂, 1e-12), row by row.
inline void normalize_rows(float* rows_data, std::int64_t rows, std::int64_t width) {
  for (std::int64_t row = 0; row < rows; ++row) {
    float* x = rows_data + row * width;
    double sum = 0.0;
    for (std::int64_t i = 0; i < width; ++i) sum += static_cast<double>(x[i]) * x[i];
    const float norm = std::max(static_cast<float>(std::sqrt(sum)), 1e-12f);
    for (std::int64_t i = 0; i < width; ++i) x[i] /= norm;
  }
}

struct BlipForImageTextRetrieval {
  BlipModelConfig config;
  BlipVisionModel vision_model;       // vision_model.*
  BlipTextEncoder text_encoder;       // text_encoder.*
  nn::LinearWeights vision_proj;      // vision_proj.weight [D, Hv], bias [D]   (D = image_text_hidden_size)
  nn::LinearWeights text_proj;        // text_proj.weight   [D, H],  bias [D]
  nn::LinearWeights itm_head;         // itm_head.weight    [2, H],  bias [2]

  static BlipForImageTextRetrieval load(const WeightStore& store, const BlipModelConfig& config) {
    BlipForImageTextRetrieval model;
    model.config = config;
    model.vision_model = {config.vision, nn::load_vision_transformer(store, "vision_model.", config.vision)};
    model.text_encoder = {config.text, nn::load_bert(store, "text_encoder.", config.text)};
    model.vision_proj = nn::load_linear(store, "vision_proj", config.image_text_hidden_size, config.vision.hidden_size);
    model.text_proj = nn::load_linear(store, "text_proj", config.image_text_hidden_size, config.text.hidden_size);
    model.itm_head = nn::load_linear(store, "itm_head", 2, config.text.hidden_size);
    return model;
  }

  struct MatchOutput {
    Tensor<float> logits;           // [rows, 2]  itm_head(CLS): softmax[:, 1] is the match probability
    Tensor<float> text_embeddings;  // [rows, T, H] text encoder output (HF question_embeds)
  };

  // use_itm_head=True: text row r is scored against image r / (rows / images).
  MatchOutput image_text_matching(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                                  Tensor<const std::int64_t> attention_mask) const {
    const nn::CrossAttentionKV cross =
        nn::compute_cross_attention_kv(text_encoder.config, text_encoder.weights, images.last_hidden_state);
    check(input_ids.rank() == 2 && input_ids.dim(0) % cross.sources == 0, "image-text matching: ", input_ids.dim(0),
          " texts is not a multiple of ", cross.sources, " images");
    MatchOutput out;
    out.text_embeddings = text_encoder.forward(input_ids, attention_mask, &cross, input_ids.dim(0) / cross.sources);
    const std::int64_t rows = input_ids.dim(0), tokens = input_ids.dim(1), hidden = config.text.hidden_size;
    out.logits = Tensor<float>(Shape{rows, 2});
    kernels::linear(out.text_embeddings.data(), tokens * hidden, rows, itm_head, out.logits.data(), 2);
    return out;
  }

  struct ContrastiveOutput {
    Tensor<float> similarity;       // [images, texts]  cosine of the projected CLS features (no temperature)
    Tensor<float> image_features;   // [images, D] normalized
    Tensor<float> text_features;    // [texts, D] normalized
    Tensor<float> text_embeddings;  // [texts, T, H] text encoder output WITHOUT cross-attention
  };

  // ITC's image side: normalize(vision_proj(image CLS)), [images, D]. HF uses
  // last_hidden_state[:, 0] here (post_layernorm once), not the pooled output.
  Tensor<float> image_features(const ImageEmbeddings& images) const {
    const std::int64_t image_count = images.last_hidden_state.dim(0), projection = config.image_text_hidden_size;
    Tensor<float> features(Shape{image_count, projection});
    kernels::linear(images.last_hidden_state.data(), images.last_hidden_state.dim(1) * config.vision.hidden_size,
                    image_count, vision_proj, features.data(), projection);
    normalize_rows(features.data(), image_count, projection);
    return features;
  }

  // ITC's text side: normalize(text_proj(text CLS)) of the text encoder without
  // cross-attention, [texts, D]; `encoder_output`, when given, receives the
  // encoder's [texts, T, H] output.
  Tensor<float> text_features(Tensor<const std::int64_t> input_ids, Tensor<const std::int64_t> attention_mask,
                              Tensor<float>* encoder_output = nullptr) const {
    Tensor<float> encoded = text_encoder.forward(input_ids, attention_mask, nullptr);
    const std::int64_t text_count = input_ids.dim(0), projection = config.image_text_hidden_size;
    Tensor<float> features(Shape{text_count, projection});
    kernels::linear(encoded.data(), input_ids.dim(1) * config.text.hidden_size, text_count, text_proj, features.data(),
                    projection);
    normalize_rows(features.data(), text_count, projection);
    if (encoder_output != nullptr) *encoder_output = std::move(encoded);
    return features;
  }

  // use_itm_head=False: normalize(vision_proj(image CLS)) @ normalize(text_proj(text CLS)).T
  ContrastiveOutput image_text_contrastive(const ImageEmbeddings& images, Tensor<const std::int64_t> input_ids,
                                           Tensor<const std::int64_t> attention_mask) const {
    ContrastiveOutput out;
    out.image_features = image_features(images);
    out.text_features = text_features(input_ids, attention_mask, &out.text_embeddings);
    out.similarity = Tensor<float>(Shape{out.image_features.dim(0), out.text_features.dim(0)});
    out.similarity.matrix() = out.image_features.matrix() * out.text_features.matrix().transpose();
    return out;
  }
};

}  // namespace blip
