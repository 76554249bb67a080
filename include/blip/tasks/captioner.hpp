// blip/tasks/captioner.hpp: image captioning with a BLIP captioning model
// (e.g. Salesforce/blip-image-captioning-base) or a BLIP-2 model
// (Salesforce/blip2-opt-2.7b), with or without a text prompt. The family is
// picked from config.json.
//
//   blip::Captioner captioner = blip::Captioner::load("models/blip-image-captioning-base");
//   std::string text = captioner.caption(blip::load_image("cat.jpg"));
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "blip/tasks/model_folder.hpp"

namespace blip {

struct Caption {
  // Decoded with special tokens skipped (HF decode(skip_special_tokens=True));
  // BLIP-2 text is also .strip()ped, as HF's BLIP-2 examples do.
  std::string text;
  // What generate() returned: BLIP [DEC] + prompt + new tokens; BLIP-2 OPT
  // [bos] + new tokens (the prompt is not echoed); finished rows padded.
  std::vector<std::int64_t> token_ids;
  float score = std::numeric_limits<float>::quiet_NaN();  // beam search: HF's sequences_scores; NaN otherwise
};

struct CaptionOptions {
  // Conditional captioning: the caption continues this text and starts with it
  // (HF: processor(image, prompt) then generate). Empty: unconditional.
  std::string prompt;
  // Captioner::default_options() gives HF's defaults for the folder (task_generation_defaults).
  generation::GenerationOptions generation;
};

// HF's BLIP-2 examples print decode(...).strip(): OPT text starts with a space.
inline std::string strip_spaces(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\n\r");
  if (first == std::string::npos) return "";
  const std::size_t last = text.find_last_not_of(" \t\n\r");
  return text.substr(first, last - first + 1);
}

class Captioner {
 public:
  static Captioner load(const std::string& model_dir, const LoadOptions& options = {}) {
    Captioner captioner;
    captioner.folder_ = open_blip_model_folder(model_dir, options,
                                               {"BlipForConditionalGeneration", "Blip2ForConditionalGeneration"});
    const auto started = std::chrono::steady_clock::now();
    if (blip::is_blip2(captioner.folder_)) {
      captioner.blip2_model_ = std::make_shared<const Blip2ForConditionalGeneration>(
          Blip2ForConditionalGeneration::load(*captioner.folder_.weights, captioner.folder_.blip2_config));
    } else {
      captioner.model_ = std::make_shared<const BlipForConditionalGeneration>(
          BlipForConditionalGeneration::load(*captioner.folder_.weights, captioner.folder_.model_config));
    }
    log_step(options.verbose, "prepared the model", started);
    return captioner;
  }

  CaptionOptions default_options() const {
    CaptionOptions options;
    options.generation = task_generation_defaults(folder_);
    return options;
  }

  // Captions for a batch of images: result[i] holds num_return_sequences
  // captions of image i, best first.
  std::vector<std::vector<Caption>> caption(const std::vector<Image>& images, const CaptionOptions& options) const {
    return caption(make_pixel_values(images, folder_.image_processor), options);
  }

  // The same from pixel_values [B, 3, H, W] made with folder().image_processor,
  // e.g. by load_preprocessed_batch, which never holds more than one decoded image.
  std::vector<std::vector<Caption>> caption(const Tensor<float>& pixels, const CaptionOptions& options) const {
    const auto image_count = static_cast<std::size_t>(pixels.dim(0));
    if (blip2_model_) {
      // Blip2Processor(images, prompt) then generate: the prompt (or "" = just
      // [</s>]) follows the image queries.
      const ImageEmbeddings embeddings = blip2_model_->vision_model.forward(pixels);
      const Blip2ImageQueries queries = blip2_model_->image_queries(embeddings);
      const BatchEncoding prompts = encode_blip2_prompts(folder_, std::vector<std::string>(image_count, options.prompt));
      Blip2GenerationSession session = blip2_model_->generation_session(queries, prompts.input_ids, prompts.attention_mask);
      const generation::GenerationOutput output = generation::generate_session(session, options.generation);
      return group_by_image(output, image_count, *folder_.tokenizer, true);
    }
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);
    Tensor<std::int64_t> prompt_ids, prompt_mask;
    if (!options.prompt.empty()) {
      // BlipProcessor: tokenizer(prompt) = [CLS] words [SEP]; the model swaps
      // [CLS] for [DEC] and drops the [SEP].
      const Encoding encoding = folder_.tokenizer->encode(options.prompt, true);
      const std::int64_t length = static_cast<std::int64_t>(encoding.ids.size());
      prompt_ids = Tensor<std::int64_t>(Shape{static_cast<std::int64_t>(image_count), length});
      for (std::int64_t row = 0; row < prompt_ids.dim(0); ++row) {
        std::copy(encoding.ids.begin(), encoding.ids.end(), prompt_ids.data() + row * length);
      }
    }
    BlipDecoderSession session = model_->caption_session(embeddings, prompt_ids, prompt_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options.generation);
    return group_by_image(output, image_count, *folder_.tokenizer);
  }

  // The best caption's text for one image.
  std::string caption(const Image& image, const CaptionOptions& options) const {
    return caption(std::vector<Image>{image}, options).front().front().text;
  }
  std::string caption(const Image& image) const { return caption(image, default_options()); }

  bool is_blip2() const { return blip2_model_ != nullptr; }
  const BlipForConditionalGeneration& model() const {
    check(model_ != nullptr, folder_.directory, " holds a BLIP-2 model: use blip2_model()");
    return *model_;
  }
  const Blip2ForConditionalGeneration& blip2_model() const {
    check(blip2_model_ != nullptr, folder_.directory, " holds a BLIP model: use model()");
    return *blip2_model_;
  }
  const BlipModelFolder& folder() const { return folder_; }
  const Tokenizer& tokenizer() const { return *folder_.tokenizer; }

  // Splits generate()'s rows (row i*n + j = j-th sequence of image i) into
  // decoded captions per image.
  static std::vector<std::vector<Caption>> group_by_image(const generation::GenerationOutput& output,
                                                          std::size_t image_count, const Tokenizer& tokenizer,
                                                          bool strip = false) {
    const std::int64_t rows = output.sequences.dim(0), length = output.sequences.dim(1);
    const std::int64_t per_image = rows / static_cast<std::int64_t>(image_count);
    std::vector<std::vector<Caption>> result(image_count);
    for (std::int64_t row = 0; row < rows; ++row) {
      Caption caption;
      caption.token_ids.assign(output.sequences.data() + row * length, output.sequences.data() + (row + 1) * length);
      caption.text = tokenizer.decode(caption.token_ids, true);
      if (strip) caption.text = strip_spaces(caption.text);
      if (!output.sequence_scores.empty()) caption.score = output.sequence_scores[static_cast<std::size_t>(row)];
      result[static_cast<std::size_t>(row / per_image)].push_back(std::move(caption));
    }
    return result;
  }

 private:
  friend class VisualQA;  // VisualQA::sharing_model_of: one BLIP-2 model for both tasks

  BlipModelFolder folder_;
  std::shared_ptr<const BlipForConditionalGeneration> model_;          // BLIP folders
  std::shared_ptr<const Blip2ForConditionalGeneration> blip2_model_;  // BLIP-2 folders
};

}  // namespace blip
