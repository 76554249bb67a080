// tests/parity/case_runner.hpp: recomputes the outputs of a Hugging Face
// fixture case (config.json + model.safetensors + inputs.safetensors +
// case.json) with blipcpp. Used by the `blip_run_case` parity tool and by the
// fixture tests. Every output case.json lists is computed from the call it
// records (tensor arguments and generation kwargs), so new cases with other
// sizes, batches or generation settings run unchanged.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "blip/io/json_file.hpp"
#include "blip/io/safetensors.hpp"
#include "blip/generation/session.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "python_call.hpp"

namespace blip::parity {

using CaseTensor = std::variant<Tensor<float>, Tensor<std::int64_t>>;

struct CaseOutputs {
  std::vector<std::string> names;            // in case.json order
  std::map<std::string, CaseTensor> tensors;
};

using ::blip::read_json_file;

// An output's kind is in its name's ending ("_ids", "_scores", "logits").
inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline Tensor<float> from_vector(const std::vector<float>& values) {
  Tensor<float> tensor(Shape{static_cast<std::int64_t>(values.size())});
  std::copy(values.begin(), values.end(), tensor.data());
  return tensor;
}

class CaseRunner {
 public:
  // weight_options: e.g. another Linear precision than the checkpoint's (the precision references).
  explicit CaseRunner(const std::string& case_dir, WeightOptions weight_options = {})
      : directory_(case_dir),
        weight_options_(weight_options),
        case_description_(read_json_file(case_dir + "/case.json")),
        inputs_(SafetensorsFile::open(case_dir + "/inputs.safetensors")) {
    kind_ = case_description_.at("kind").get<std::string>();
  }

  const std::string& kind() const { return kind_; }

  // The case.json kinds run() knows.
  static const std::vector<std::string>& supported_kinds() {
    static const std::vector<std::string> kinds{"blip_caption",     "blip_vqa", "blip_itm", "blip2_opt",
                                                "blip2_opt_imgtok", "blip2_t5", "blip2_itm"};
    return kinds;
  }
  static bool supports(const std::string& kind) {
    const auto& kinds = supported_kinds();
    return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  }

  CaseOutputs run() {
    const WeightStore store = WeightStore::open(directory_, weight_options_);
    const ModelConfig model_config = load_model_config(directory_);
    if (model_config.family == ModelFamily::Blip2) {
      const Blip2ModelConfig config = make_blip2_model_config(model_config.blip2);
      if (kind_ == "blip2_opt" || kind_ == "blip2_opt_imgtok" || kind_ == "blip2_t5")
        return run_blip2_generation(Blip2ForConditionalGeneration::load(store, config));
      if (kind_ == "blip2_itm") return run_blip2_retrieval(Blip2ForImageTextRetrieval::load(store, config));
      fail(directory_, "/case.json: unsupported BLIP-2 kind '", kind_, "'");
    }
    const BlipModelConfig config = make_blip_model_config(model_config.blip);
    if (kind_ == "blip_caption") return run_caption(BlipForConditionalGeneration::load(store, config));
    if (kind_ == "blip_vqa") return run_vqa(BlipForQuestionAnswering::load(store, config));
    if (kind_ == "blip_itm") return run_retrieval(BlipForImageTextRetrieval::load(store, config));
    fail(directory_, "/case.json: unsupported kind '", kind_, "' (supported: blip_caption, blip_vqa, blip_itm)");
  }

 private:
  Tensor<std::int64_t> input_ids(const std::string& name) const { return inputs_.to_i64(name); }

  // Outputs are visited in case.json order; `compute` returns false for names it does not know.
  template <class Compute>
  CaseOutputs visit_outputs(Compute&& compute) {
    CaseOutputs outputs;
    for (const auto& [name, description] : case_description_.at("outputs").items()) {
      outputs.names.push_back(name);
      const std::string call = description.at("call").template get<std::string>();
      check(compute(name, call, outputs), directory_, "/case.json: output '", name, "' of kind '", kind_,
            "' is not one this tool knows how to compute");
    }
    return outputs;
  }

  // The generation outputs: "<x>_ids" is the call's sequences, "<x>_scores" the
  // sequences_scores of the same call (case.json says "same call"), taken from
  // the matching *_ids entry.
  template <class Generate>
  bool handle_generation(const std::string& name, const std::string& call, CaseOutputs& outputs, Generate&& generate) {
    if (ends_with(name, "_ids")) {
      const PythonCall parsed = parse_python_call(call);
      generation::GenerationOutput result = generate(parsed, generation_options_from(parsed));
      outputs.tensors[name] = result.sequences;
      scores_[name.substr(0, name.size() - 4)] = result.sequence_scores;
      return true;
    }
    if (ends_with(name, "_scores")) {
      const std::string stem = name.substr(0, name.size() - 7);
      auto found = scores_.find(stem);
      check(found != scores_.end(), directory_, "/case.json: '", name, "' needs '", stem, "_ids' listed before it");
      outputs.tensors[name] = from_vector(found->second);
      return true;
    }
    return false;
  }

  Tensor<std::int64_t> tensor_argument(const PythonCall& call, const std::string& keyword) const {
    auto found = call.tensor_arguments.find(keyword);
    if (found == call.tensor_arguments.end()) return {};
    return input_ids(found->second);
  }

  CaseOutputs run_caption(const BlipForConditionalGeneration& model) {
    const ImageEmbeddings images = model.vision_model.forward(inputs_.to_f32("pixel_values"));
    return visit_outputs([&](const std::string& name, const std::string& call, CaseOutputs& outputs) {
      if (vision_output(name, images, outputs)) return true;
      if (name == "tf_logits") {
        const PythonCall parsed = parse_python_call(call);
        outputs.tensors[name] =
            model.forward(images, tensor_argument(parsed, "input_ids"), tensor_argument(parsed, "attention_mask"));
        return true;
      }
      return handle_generation(name, call, outputs, [&](const PythonCall& parsed, const auto& options) {
        BlipDecoderSession session = model.caption_session(images, tensor_argument(parsed, "input_ids"),
                                                           tensor_argument(parsed, "attention_mask"));
        return generation::generate_session(session, options);
      });
    });
  }

  CaseOutputs run_vqa(const BlipForQuestionAnswering& model) {
    const ImageEmbeddings images = model.vision_model.forward(inputs_.to_f32("pixel_values"));
    return visit_outputs([&](const std::string& name, const std::string& call, CaseOutputs& outputs) {
      if (vision_output(name, images, outputs)) return true;
      if (name == "question_embeds") {
        const PythonCall parsed = parse_python_call(call);
        outputs.tensors[name] = model.encode_question(images, tensor_argument(parsed, "input_ids"),
                                                      tensor_argument(parsed, "attention_mask"));
        return true;
      }
      if (name == "answer_tf_logits") {
        // "logits of model.text_decoder captured during model(input_ids=..., attention_mask=...,
        //  decoder_input_ids=..., decoder_attention_mask=...)"
        const PythonCall parsed = parse_python_call(call.substr(call.find("during ") + 7));
        const Tensor<std::int64_t> question = tensor_argument(parsed, "input_ids");
        const Tensor<std::int64_t> question_mask = tensor_argument(parsed, "attention_mask");
        const Tensor<float> question_embeddings = model.encode_question(images, question, question_mask);
        outputs.tensors[name] = model.answer_logits(question_embeddings, question_mask,
                                                    tensor_argument(parsed, "decoder_input_ids"),
                                                    tensor_argument(parsed, "decoder_attention_mask"));
        return true;
      }
      return handle_generation(name, call, outputs, [&](const PythonCall& parsed, const auto& options) {
        BlipDecoderSession session = model.answer_session(images, tensor_argument(parsed, "input_ids"),
                                                          tensor_argument(parsed, "attention_mask"));
        return generation::generate_session(session, options);
      });
    });
  }

  // ITM and ITC of a retrieval model (BLIP or BLIP-2), each computed once when
  // an output needs it; `select` maps output names to their fields.
  template <class Model, class Select>
  CaseOutputs run_retrieval(const Model& model, Select&& select) {
    const ImageEmbeddings images = model.vision_model.forward(inputs_.to_f32("pixel_values"));
    const Tensor<std::int64_t> ids = input_ids("input_ids");
    const Tensor<std::int64_t> mask = inputs_.contains("attention_mask") ? input_ids("attention_mask") : Tensor<std::int64_t>{};
    std::optional<typename Model::MatchOutput> matching;
    std::optional<typename Model::ContrastiveOutput> contrastive;
    auto match = [&]() -> const typename Model::MatchOutput& {
      if (!matching) matching = model.image_text_matching(images, ids, mask);
      return *matching;
    };
    auto contrast = [&]() -> const typename Model::ContrastiveOutput& {
      if (!contrastive) contrastive = model.image_text_contrastive(images, ids, mask);
      return *contrastive;
    };
    return visit_outputs([&](const std::string& name, const std::string&, CaseOutputs& outputs) {
      if (vision_output(name, images, outputs)) return true;
      std::optional<Tensor<float>> value = select(name, images, match, contrast);
      if (!value) return false;
      outputs.tensors[name] = *value;
      return true;
    });
  }

  CaseOutputs run_retrieval(const BlipForImageTextRetrieval& model) {
    return run_retrieval(model, [](const std::string& name, const ImageEmbeddings&, auto& match,
                                   auto& contrast) -> std::optional<Tensor<float>> {
      if (name == "itm_logits") return match().logits;
      if (name == "itm_question_embeds") return match().text_embeddings;
      if (name == "itc_score") return contrast().similarity;
      if (name == "itc_text_embeds") return contrast().text_embeddings;
      return std::nullopt;
    });
  }

  CaseOutputs run_blip2_generation(const Blip2ForConditionalGeneration& model) {
    const ImageEmbeddings images = model.vision_model.forward(inputs_.to_f32("pixel_values"));
    const Blip2ImageQueries queries = model.image_queries(images);
    return visit_outputs([&](const std::string& name, const std::string& call, CaseOutputs& outputs) {
      if (vision_output(name, images, outputs)) return true;
      if (name == "qformer_last_hidden_state") return outputs.tensors[name] = queries.qformer_output, true;
      if (name == "language_projection") return outputs.tensors[name] = queries.language_inputs, true;
      if (name == "tf_logits") {
        const PythonCall parsed = parse_python_call(call);
        outputs.tensors[name] =
            model.forward(queries, tensor_argument(parsed, "input_ids"), tensor_argument(parsed, "attention_mask"),
                          tensor_argument(parsed, "decoder_input_ids"), tensor_argument(parsed, "decoder_attention_mask"));
        return true;
      }
      return handle_generation(name, call, outputs, [&](const PythonCall& parsed, const auto& options) {
        Blip2GenerationSession session = model.generation_session(queries, tensor_argument(parsed, "input_ids"),
                                                                  tensor_argument(parsed, "attention_mask"));
        return generation::generate_session(session, options);
      });
    });
  }

  CaseOutputs run_blip2_retrieval(const Blip2ForImageTextRetrieval& model) {
    return run_retrieval(model, [&](const std::string& name, const ImageEmbeddings& images, auto& match,
                                    auto& contrast) -> std::optional<Tensor<float>> {
      if (name == "qformer_last_hidden_state") return model.qformer.forward(images);
      if (name == "itm_logits") return match().logits;
      if (name == "itm_text_embeds") return match().text_embeddings;
      if (name == "itc_logits_per_image") return contrast().similarity;
      if (name == "itc_image_embeds") return contrast().image_features;
      if (name == "itc_text_embeds") return contrast().text_features;
      return std::nullopt;
    });
  }

  // The vision encoder's outputs, which every case lists.
  static bool vision_output(const std::string& name, const ImageEmbeddings& images, CaseOutputs& outputs) {
    if (name == "vision_last_hidden_state") return outputs.tensors[name] = images.last_hidden_state, true;
    if (name == "vision_pooler_output") return outputs.tensors[name] = images.pooled_output, true;
    return false;
  }

  std::string directory_;
  WeightOptions weight_options_;
  nlohmann::json case_description_;
  SafetensorsFile inputs_;
  std::string kind_;
  std::map<std::string, std::vector<float>> scores_;
};

}  // namespace blip::parity
