// blip/tasks/visual_qa.hpp: visual question answering with a BLIP VQA model
// (e.g. Salesforce/blip-vqa-base) or a BLIP-2 model (Salesforce/blip2-opt-2.7b),
// and a multi-turn conversation about one image with BLIP-2.
//
//   blip::VisualQA vqa = blip::VisualQA::load("models/blip-vqa-base");
//   std::string answer = vqa.answer(blip::load_image("cat.jpg"), "how many cats are there?");
//
//   blip::VisualQA chat_model = blip::VisualQA::load("models/blip2-opt-2.7b");
//   blip::Conversation chat = chat_model.conversation(blip::load_image("cat.jpg"));
//   chat.ask("what is in the picture?");   // the image is encoded once, here
//   chat.ask("what colour is it?");        // earlier questions and answers lead the prompt
//
// BLIP answers with its own question encoder and answer decoder. BLIP-2 has no
// VQA head: the question goes into the language model's prompt, in the form
// the BLIP-2 paper and HF's model card use, "Question: {q} Answer:".
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "blip/tasks/captioner.hpp"
#include "blip/tasks/model_folder.hpp"

namespace blip {

// How BLIP-2 turns questions into a prompt. `{}` stands for the question.
struct Blip2PromptFormat {
  std::string question = "Question: {} Answer:";
  // Between turns of a conversation, as the BLIP-2 paper's chat examples:
  // "Question: q1 Answer: a1. Question: q2 Answer:".
  std::string turn_separator = ". ";
  std::string apply(const std::string& question_text) const {
    const std::size_t slot = question.find("{}");
    check(slot != std::string::npos, "Blip2PromptFormat: the question format '", clip(question), "' has no {} slot");
    return question.substr(0, slot) + question_text + question.substr(slot + 2);
  }
};

class Conversation;

class VisualQA {
 public:
  static VisualQA load(const std::string& model_dir, const LoadOptions& options = {}) {
    VisualQA vqa;
    vqa.folder_ =
        open_blip_model_folder(model_dir, options, {"BlipForQuestionAnswering", "Blip2ForConditionalGeneration"});
    const auto started = std::chrono::steady_clock::now();
    if (blip::is_blip2(vqa.folder_)) {
      vqa.blip2_model_ = std::make_shared<const Blip2ForConditionalGeneration>(
          Blip2ForConditionalGeneration::load(*vqa.folder_.weights, vqa.folder_.blip2_config));
    } else {
      vqa.model_ = std::make_shared<const BlipForQuestionAnswering>(
          BlipForQuestionAnswering::load(*vqa.folder_.weights, vqa.folder_.model_config));
    }
    log_step(options.verbose, "prepared the model", started);
    return vqa;
  }

  // BLIP-2: a VisualQA over the model `captioner` already holds (a BLIP-2
  // model both captions and answers), so a program serving both tasks keeps
  // one copy of the weights. A BLIP captioning model cannot answer (BLIP VQA
  // is its own architecture): that is an error.
  static VisualQA sharing_model_of(const Captioner& captioner) {
    check(captioner.is_blip2(), captioner.folder().directory,
          " holds a BLIP captioning model, which cannot answer questions (BLIP VQA needs a BlipForQuestionAnswering "
          "folder)");
    VisualQA vqa;
    vqa.folder_ = captioner.folder_;
    vqa.blip2_model_ = captioner.blip2_model_;
    return vqa;
  }

  generation::GenerationOptions default_options() const { return task_generation_defaults(folder_); }

  // One question per image (questions[i] is asked about images[i]); the
  // questions are padded into one batch (BLIP: right, as BlipProcessor(padding=True);
  // BLIP-2: left, for the decoder-only LM). result[i] holds
  // num_return_sequences answers, best first.
  std::vector<std::vector<Caption>> answer(const std::vector<Image>& images, const std::vector<std::string>& questions,
                                           const generation::GenerationOptions& options) const {
    check(images.size() == questions.size(), "visual QA: ", images.size(), " images but ", questions.size(),
          " questions");
    return answer(make_pixel_values(images, folder_.image_processor), questions, options);
  }

  // The same from pixel_values [B, 3, H, W] made with folder().image_processor (or HF's own processor).
  std::vector<std::vector<Caption>> answer(const Tensor<float>& pixels, const std::vector<std::string>& questions,
                                           const generation::GenerationOptions& options) const {
    check(pixels.rank() == 4 && pixels.dim(0) == static_cast<std::int64_t>(questions.size()), "visual QA: ",
          questions.size(), " questions for pixel_values of shape ", pixels.shape());
    for (std::size_t index = 0; index < questions.size(); ++index) {
      check(!questions[index].empty(), "visual QA: question ", index, " is empty");
    }
    if (blip2_model_) {
      const Blip2ImageQueries queries = blip2_model_->image_queries(blip2_model_->vision_model.forward(pixels));
      std::vector<std::string> prompts;
      for (const std::string& question : questions) prompts.push_back(prompt_format.apply(question));
      return answer_prompts(queries, prompts, options);
    }
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, questions, true);
    BlipDecoderSession session = model_->answer_session(embeddings, batch.input_ids, batch.attention_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options);
    return Captioner::group_by_image(output, questions.size(), *folder_.tokenizer);
  }

  std::string answer(const Image& image, const std::string& question,
                     const generation::GenerationOptions& options) const {
    return answer(std::vector<Image>{image}, std::vector<std::string>{question}, options).front().front().text;
  }
  std::string answer(const Image& image, const std::string& question) const {
    return answer(image, question, default_options());
  }

  // One image encoded once, for asking it several questions: BLIP's vision
  // embeddings, or BLIP-2's image queries (ViT and Q-Former).
  struct EncodedImage {
    ImageEmbeddings embeddings;  // BLIP folders
    Blip2ImageQueries queries;   // BLIP-2 folders
  };

  // Encodes pixel_values [1, 3, H, W] made with folder().image_processor
  // (e.g. by load_preprocessed_batch).
  EncodedImage encode(const Tensor<float>& pixels) const {
    check(pixels.rank() == 4 && pixels.dim(0) == 1, "visual QA: encode takes the pixel values of one image, got ",
          pixels.shape());
    EncodedImage encoded;
    if (blip2_model_) {
      encoded.queries = blip2_model_->image_queries(blip2_model_->vision_model.forward(pixels));
    } else {
      encoded.embeddings = model_->vision_model.forward(pixels);
    }
    return encoded;
  }

  // One question about an encoded image: the same answers as
  // answer({image}, {question}, options), without encoding the image again.
  // Questions are asked one at a time on purpose: HF's BLIP answer decoder
  // attends to padded question tokens (see answer_session), so a padded batch
  // of questions of different lengths would not answer as single questions do.
  std::vector<Caption> answer(const EncodedImage& image, const std::string& question,
                              const generation::GenerationOptions& options) const {
    check(!question.empty(), "visual QA: the question is empty");
    if (blip2_model_) return answer_prompts(image.queries, {prompt_format.apply(question)}, options).front();
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, {question}, true);
    BlipDecoderSession session = model_->answer_session(image.embeddings, batch.input_ids, batch.attention_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options);
    return Captioner::group_by_image(output, 1, *folder_.tokenizer).front();
  }

  // BLIP-2: a conversation about `image`, which is encoded once (ViT and
  // Q-Former) and reused by every turn. The VisualQA must outlive it.
  Conversation conversation(const Image& image) const;

  // BLIP-2: answers for ready-made prompts (the conversation's, or any text
  // the language model should continue), one per image row of `queries`.
  std::vector<std::vector<Caption>> answer_prompts(const Blip2ImageQueries& queries,
                                                   const std::vector<std::string>& prompts,
                                                   const generation::GenerationOptions& options) const {
    const BatchEncoding batch = encode_blip2_prompts(folder_, prompts);
    Blip2GenerationSession session = blip2_model().generation_session(queries, batch.input_ids, batch.attention_mask);
    const generation::GenerationOutput output = generation::generate_session(session, options);
    return Captioner::group_by_image(output, prompts.size(), *folder_.tokenizer, true);
  }

  bool is_blip2() const { return blip2_model_ != nullptr; }
  const BlipForQuestionAnswering& model() const {
    check(model_ != nullptr, folder_.directory, " holds a BLIP-2 model: use blip2_model()");
    return *model_;
  }
  const Blip2ForConditionalGeneration& blip2_model() const {
    check(blip2_model_ != nullptr, folder_.directory,
          " holds a BLIP VQA model; conversations and prompts need a BLIP-2 model");
    return *blip2_model_;
  }
  const BlipModelFolder& folder() const { return folder_; }

  Blip2PromptFormat prompt_format;  // BLIP-2 only

 private:
  BlipModelFolder folder_;
  std::shared_ptr<const BlipForQuestionAnswering> model_;          // BLIP folders
  std::shared_ptr<const Blip2ForConditionalGeneration> blip2_model_;  // BLIP-2 folders
};

// The BLIP-2 paper's "visual conversation": every turn's prompt holds the
// earlier questions and answers, "Question: q1 Answer: a1. Question: q2 Answer:".
class Conversation {
 public:
  Conversation(const VisualQA& model, Blip2ImageQueries queries)
      : model_(&model), queries_(std::move(queries)), options_(model.default_options()) {}

  // Asks one question; the answer joins the history.
  std::string ask(const std::string& question) { return ask(question, options_); }
  std::string ask(const std::string& question, const generation::GenerationOptions& options) {
    check(!question.empty(), "conversation: the question is empty");
    const std::string prompt = history_ + model_->prompt_format.apply(question);
    const std::string reply = model_->answer_prompts(queries_, {prompt}, options).front().front().text;
    history_ = prompt + " " + reply + model_->prompt_format.turn_separator;
    turns_.push_back({question, reply});
    return reply;
  }

  struct Turn {
    std::string question, answer;
  };
  const std::vector<Turn>& turns() const { return turns_; }
  // The text that leads the next turn's prompt.
  const std::string& history() const { return history_; }
  void reset() {
    history_.clear();
    turns_.clear();
  }
  generation::GenerationOptions& options() { return options_; }

 private:
  const VisualQA* model_;
  Blip2ImageQueries queries_;  // the image, encoded once
  generation::GenerationOptions options_;
  std::string history_;
  std::vector<Turn> turns_;
};

inline Conversation VisualQA::conversation(const Image& image) const {
  const Blip2ForConditionalGeneration& model = blip2_model();
  const Tensor<float> pixels = make_pixel_values({image}, folder_.image_processor);
  return Conversation(*this, model.image_queries(model.vision_model.forward(pixels)));
}

}  // namespace blip
