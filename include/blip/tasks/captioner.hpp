// blip/tasks/captioner.hpp: image captioning with a BLIP captioning model
// (e.g. Salesforce/blip-image-captioning-base), with or without a text prompt.
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
  std::string text;                     // decoded with special tokens skipped (HF decode(skip_special_tokens=True))
  std::vector<std::int64_t> token_ids;  // what generate() returned: [DEC], the prompt, the new tokens, padding
  float score = std::numeric_limits<float>::quiet_NaN();  // beam search: HF's sequences_scores; NaN otherwise
};

struct CaptionOptions {
  // Conditional captioning: the caption continues this text and starts with it
  // (HF: processor(image, prompt) then generate). Empty: unconditional.
  std::string prompt;
  generation::GenerationOptions generation;  // Captioner::default_options() gives generation_config.json's
};

class Captioner {
 public:
  static Captioner load(const std::string& model_dir, const LoadOptions& options = {}) {
    Captioner captioner;
    captioner.folder_ = open_blip_model_folder(model_dir, options, "BlipForConditionalGeneration");
    const auto started = std::chrono::steady_clock::now();
    captioner.model_ = std::make_shared<const BlipForConditionalGeneration>(
        BlipForConditionalGeneration::load(*captioner.folder_.weights, captioner.folder_.model_config));
    log_step(options.verbose, "prepared the model", started);
    return captioner;
  }

  CaptionOptions default_options() const {
    CaptionOptions options;
    options.generation = folder_.default_generation_options();
    return options;
  }

  // Captions for a batch of images: result[i] holds num_return_sequences
  // captions of image i, best first.
  std::vector<std::vector<Caption>> caption(const std::vector<Image>& images, const CaptionOptions& options) const {
    const Tensor<float> pixels = make_pixel_values(images, folder_.image_processor);
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);
    Tensor<std::int64_t> prompt_ids, prompt_mask;
    if (!options.prompt.empty()) {
      // BlipProcessor: tokenizer(prompt) = [CLS] words [SEP]; the model swaps
      // [CLS] for [DEC] and drops the [SEP].
      const Encoding encoding = folder_.tokenizer->encode(options.prompt, true);
      const std::int64_t length = static_cast<std::int64_t>(encoding.ids.size());
      prompt_ids = Tensor<std::int64_t>(Shape{static_cast<std::int64_t>(images.size()), length});
      for (std::int64_t row = 0; row < prompt_ids.dim(0); ++row) {
        std::copy(encoding.ids.begin(), encoding.ids.end(), prompt_ids.data() + row * length);
      }
    }
    BlipDecoderSession session = model_->caption_session(embeddings, prompt_ids, prompt_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options.generation);
    return group_by_image(output, images.size(), *folder_.tokenizer);
  }

  // The best caption's text for one image.
  std::string caption(const Image& image, const CaptionOptions& options) const {
    return caption(std::vector<Image>{image}, options).front().front().text;
  }
  std::string caption(const Image& image) const { return caption(image, default_options()); }

  const BlipForConditionalGeneration& model() const { return *model_; }
  const BlipModelFolder& folder() const { return folder_; }
  const Tokenizer& tokenizer() const { return *folder_.tokenizer; }

  // Splits generate()'s rows (row i*n + j = j-th sequence of image i) into
  // decoded captions per image.
  static std::vector<std::vector<Caption>> group_by_image(const generation::GenerationOutput& output,
                                                          std::size_t image_count, const Tokenizer& tokenizer) {
    const std::int64_t rows = output.sequences.dim(0), length = output.sequences.dim(1);
    const std::int64_t per_image = rows / static_cast<std::int64_t>(image_count);
    std::vector<std::vector<Caption>> result(image_count);
    for (std::int64_t row = 0; row < rows; ++row) {
      Caption caption;
      caption.token_ids.assign(output.sequences.data() + row * length, output.sequences.data() + (row + 1) * length);
      caption.text = tokenizer.decode(caption.token_ids, true);
      if (!output.sequence_scores.empty()) caption.score = output.sequence_scores[static_cast<std::size_t>(row)];
      result[static_cast<std::size_t>(row / per_image)].push_back(std::move(caption));
    }
    return result;
  }

 private:
  BlipModelFolder folder_;
  std::shared_ptr<const BlipForConditionalGeneration> model_;
};

}  // namespace blip
