// blip/tasks/visual_qa.hpp: visual question answering with a BLIP VQA model
// (e.g. Salesforce/blip-vqa-base).
//
//   blip::VisualQA vqa = blip::VisualQA::load("models/blip-vqa-base");
//   std::string answer = vqa.answer(blip::load_image("cat.jpg"), "how many cats are there?");
#pragma once

#include <string>
#include <vector>

#include "blip/tasks/captioner.hpp"
#include "blip/tasks/model_folder.hpp"

namespace blip {

class VisualQA {
 public:
  static VisualQA load(const std::string& model_dir, const LoadOptions& options = {}) {
    VisualQA vqa;
    vqa.folder_ = open_blip_model_folder(model_dir, options, "BlipForQuestionAnswering");
    const auto started = std::chrono::steady_clock::now();
    vqa.model_ = std::make_shared<const BlipForQuestionAnswering>(
        BlipForQuestionAnswering::load(*vqa.folder_.weights, vqa.folder_.model_config));
    log_step(options.verbose, "prepared the model", started);
    return vqa;
  }

  generation::GenerationOptions default_options() const { return folder_.default_generation_options(); }

  // One question per image (questions[i] is asked about images[i]); the
  // questions are right-padded into one batch as BlipProcessor(padding=True)
  // does. result[i] holds num_return_sequences answers, best first.
  std::vector<std::vector<Caption>> answer(const std::vector<Image>& images, const std::vector<std::string>& questions,
                                           const generation::GenerationOptions& options) const {
    check(images.size() == questions.size(), "visual QA: ", images.size(), " images but ", questions.size(),
          " questions");
    for (std::size_t index = 0; index < questions.size(); ++index) {
      check(!questions[index].empty(), "visual QA: question ", index, " is empty");
    }
    const Tensor<float> pixels = make_pixel_values(images, folder_.image_processor);
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, questions, true);
    BlipDecoderSession session = model_->answer_session(embeddings, batch.input_ids, batch.attention_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options);
    return Captioner::group_by_image(output, images.size(), *folder_.tokenizer);
  }

  std::string answer(const Image& image, const std::string& question,
                     const generation::GenerationOptions& options) const {
    return answer(std::vector<Image>{image}, std::vector<std::string>{question}, options).front().front().text;
  }
  std::string answer(const Image& image, const std::string& question) const {
    return answer(image, question, default_options());
  }

  const BlipForQuestionAnswering& model() const { return *model_; }
  const BlipModelFolder& folder() const { return folder_; }

 private:
  BlipModelFolder folder_;
  std::shared_ptr<const BlipForQuestionAnswering> model_;
};

}  // namespace blip
