// The task classes on BLIP-2 folders (the tiny fixture models with the real
// OPT, Flan-T5 and BERT tokenizers): the family is picked from config.json,
// prompts are built as Blip2Processor does (image tokens first; left padding
// for OPT, right padding and a final </s> for T5), batches
// agree with single images, a conversation carries its history, and the
// matcher's table agrees with the model-level ITM / ITC the fixture test
// checks against Hugging Face.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "test_support.hpp"

namespace blip2_tasks_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

bool have_inputs(const char* fixture_case) {
  return blip::test::have_or_skip(blip::test::fixture(fixture_case), fixture_case) &&
         blip::test::have_or_skip(blip::test::asset("tokenizers/blip2-opt-2.7b"), "OPT tokenizer") &&
         blip::test::have_or_skip(blip::test::asset("tokenizers/blip-image-captioning-base"), "BERT tokenizer") &&
         blip::test::have_or_skip(blip::test::asset("images"), "photos");
}

blip::LoadOptions with_tokenizer(const char* tokenizer) {
  blip::LoadOptions options;
  options.tokenizer_dir = blip::test::asset(std::string("tokenizers/") + tokenizer);
  return options;
}

std::vector<blip::Image> photos() {
  return {blip::load_image(blip::test::asset("images/skimage_coffee.png")),
          blip::load_image(blip::test::asset("images/skimage_rocket.jpg"))};
}

// Captions of both photos in one batch equal each photo alone (two returned
// sequences each, with their scores); every row starts with `first_id` and
// holds at most max_new_tokens + 1 ids.
void check_batch_agrees_with_single(const blip::Captioner& captioner, const blip::CaptionOptions& options,
                                    std::int64_t first_id) {
  const std::vector<blip::Image> images = photos();
  const auto batch = captioner.caption(images, options);
  REQUIRE(batch.size() == images.size());
  for (std::size_t index = 0; index < images.size(); ++index) {
    const auto alone = captioner.caption(std::vector<blip::Image>{images[index]}, options);
    for (std::size_t rank = 0; rank < 2; ++rank) {
      CHECK(batch[index][rank].token_ids == alone[0][rank].token_ids);
      CHECK(batch[index][rank].score == doctest::Approx(alone[0][rank].score).epsilon(1e-5));
    }
    CHECK(batch[index][0].token_ids.front() == first_id);
    CHECK(static_cast<std::int64_t>(batch[index][0].token_ids.size()) <= options.generation.max_new_tokens + 1);
  }
}

}  // namespace

TEST_CASE("Captioner on BLIP-2 (both input paths): batches agree with single images; [bos] + new tokens") {
  for (const char* fixture_case : {"blip2_opt", "blip2_opt_imgtok"}) {
    if (!have_inputs(fixture_case)) return;
    CAPTURE(fixture_case);
    const blip::Captioner captioner =
        blip::Captioner::load(blip::test::fixture(fixture_case), with_tokenizer("blip2-opt-2.7b"));
    CHECK(captioner.is_blip2());
    CHECK_THROWS_AS(captioner.model(), blip::Error);
    blip::CaptionOptions options = captioner.default_options();
    CHECK(options.generation.max_new_tokens == blip::kBlip2DefaultMaxNewTokens);
    options.generation.max_new_tokens = 6;
    options.generation.num_beams = 3;
    options.generation.num_return_sequences = 2;
    for (const std::string prompt : {"", "a photo of"}) {
      options.prompt = prompt;
      check_batch_agrees_with_single(captioner, options, 2);  // HF prepends BOS; the prompt is not echoed
    }
  }
}

TEST_CASE("Captioner on BLIP-2: the task's prompt batch is what the model-level call gets") {
  if (!have_inputs("blip2_opt_imgtok")) return;
  const blip::Captioner captioner =
      blip::Captioner::load(blip::test::fixture("blip2_opt_imgtok"), with_tokenizer("blip2-opt-2.7b"));
  const blip::BatchEncoding prompts = blip::encode_blip2_prompts(captioner.folder(), {"a photo of", "hi"});
  // [<image> × Q] then left padding then [</s>] + tokens.
  const std::int64_t queries = captioner.folder().blip2_config.num_query_tokens, length = prompts.input_ids.dim(1);
  for (std::int64_t q = 0; q < queries; ++q) {
    CHECK(prompts.input_ids.at(0, q) == 50265);
    CHECK(prompts.input_ids.at(1, q) == 50265);
  }
  CHECK(prompts.input_ids.at(0, queries) == 2);                  // "</s> a photo of": no padding
  CHECK(prompts.input_ids.at(1, queries) == 1);                  // "</s> hi" is shorter: left-padded with 1
  CHECK(prompts.attention_mask.at(1, queries) == 0);
  CHECK(prompts.input_ids.at(1, length - 2) == 2);
  CHECK(prompts.attention_mask.at(1, length - 1) == 1);

  // Greedy through the task equals the model-level session on those ids.
  blip::CaptionOptions options = captioner.default_options();
  options.generation.max_new_tokens = 5;
  options.prompt = "a photo of";
  const blip::Image image = photos()[0];
  const auto from_task = captioner.caption(std::vector<blip::Image>{image}, options);
  const blip::Blip2ForConditionalGeneration& model = captioner.blip2_model();
  const blip::Tensor<float> pixels = blip::make_pixel_values({image}, captioner.folder().image_processor);
  const blip::Blip2ImageQueries image_queries = model.image_queries(model.vision_model.forward(pixels));
  const blip::BatchEncoding one = blip::encode_blip2_prompts(captioner.folder(), {"a photo of"});
  blip::Blip2GenerationSession session = model.generation_session(image_queries, one.input_ids, one.attention_mask);
  const blip::generation::GenerationOutput output = blip::generation::generate_session(session, options.generation);
  const std::vector<std::int64_t> expected(output.sequences.data(), output.sequences.data() + output.sequences.numel());
  CHECK(from_task[0][0].token_ids == expected);
}

TEST_CASE("VisualQA on BLIP-2: 'Question: q Answer:' prompts, and a conversation that keeps its history") {
  if (!have_inputs("blip2_opt")) return;
  const blip::VisualQA vqa = blip::VisualQA::load(blip::test::fixture("blip2_opt"), with_tokenizer("blip2-opt-2.7b"));
  CHECK(vqa.is_blip2());
  blip::generation::GenerationOptions options = vqa.default_options();
  options.max_new_tokens = 4;
  const std::vector<blip::Image> images = photos();
  const auto batch = vqa.answer(images, {"what is this?", "is it a rocket or something else?"}, options);
  REQUIRE(batch.size() == 2);
  for (std::size_t index = 0; index < 2; ++index) {
    const std::string question = index == 0 ? "what is this?" : "is it a rocket or something else?";
    CHECK(batch[index][0].text == vqa.answer(images[index], question, options));
  }
  CHECK(vqa.prompt_format.apply("why?") == "Question: why? Answer:");

  blip::Conversation chat = vqa.conversation(images[0]);
  chat.options() = options;
  const std::string first = chat.ask("what is this?");
  CHECK(first == vqa.answer(images[0], "what is this?", options));  // the first turn has no history
  CHECK(chat.history() == "Question: what is this? Answer: " + first + ". ");
  const std::string second = chat.ask("why?");
  REQUIRE(chat.turns().size() == 2);
  CHECK(chat.turns()[1].answer == second);
  // The second turn is the model continuing the whole history.
  const blip::Blip2ForConditionalGeneration& model = vqa.blip2_model();
  const blip::Tensor<float> pixels = blip::make_pixel_values({images[0]}, vqa.folder().image_processor);
  const blip::Blip2ImageQueries queries = model.image_queries(model.vision_model.forward(pixels));
  const auto direct = vqa.answer_prompts(
      queries, {"Question: what is this? Answer: " + first + ". Question: why? Answer:"}, options);
  CHECK(direct[0][0].text == second);
  CHECK_THROWS_WITH_AS(chat.ask(""), doctest::Contains("empty"), blip::Error);

  // BLIP VQA folders have no conversation.
  if (blip::test::have_or_skip(blip::test::fixture("blip_vqa"), "blip_vqa fixture")) {
    const blip::VisualQA blip_vqa =
        blip::VisualQA::load(blip::test::fixture("blip_vqa"), with_tokenizer("blip-image-captioning-base"));
    CHECK_THROWS_WITH_AS(blip_vqa.conversation(images[0]), doctest::Contains("BLIP-2"), blip::Error);
  }
}

TEST_CASE("ImageTextMatcher on BLIP-2: the table holds the model's ITM and ITC for every pair") {
  if (!have_inputs("blip2_itm")) return;
  const blip::ImageTextMatcher matcher =
      blip::ImageTextMatcher::load(blip::test::fixture("blip2_itm"), with_tokenizer("blip-image-captioning-base"));
  CHECK(matcher.is_blip2());
  const std::vector<blip::Image> images = photos();
  const std::vector<std::string> texts{"a cup of coffee", "a rocket on its launch pad at night", "a cat"};
  const blip::MatchTable table = matcher.match(images, texts);
  REQUIRE(table.match_probability.shape() == blip::Shape{2, 3});
  const blip::Blip2ForImageTextRetrieval& model = matcher.blip2_model();
  for (std::size_t image = 0; image < images.size(); ++image) {
    const blip::Tensor<float> pixels = blip::make_pixel_values({images[image]}, matcher.folder().image_processor);
    const blip::ImageEmbeddings embeddings = model.vision_model.forward(pixels);
    for (std::size_t text = 0; text < texts.size(); ++text) {
      const blip::BatchEncoding encoded = blip::encode_batch(*matcher.folder().tokenizer, {texts[text]}, true);
      const auto itm = model.image_text_matching(embeddings, encoded.input_ids, encoded.attention_mask);
      const auto itc = model.image_text_contrastive(embeddings, encoded.input_ids, encoded.attention_mask);
      const auto i = static_cast<std::int64_t>(image), t = static_cast<std::int64_t>(text);
      // The batch pads texts to the longest; padding is masked, so the numbers agree closely.
      CHECK(table.itm_logits.at(i, t, 1) == doctest::Approx(itm.logits.at(0, 1)).epsilon(1e-4));
      CHECK(table.similarity.at(i, t) == doctest::Approx(itc.similarity.at(0, 0)).epsilon(1e-4));
    }
  }
}

TEST_CASE("ImageTextMatcher on BLIP-2: the best query cosine of the embeddings is the ITC similarity") {
  if (!have_inputs("blip2_itm")) return;
  const blip::ImageTextMatcher matcher =
      blip::ImageTextMatcher::load(blip::test::fixture("blip2_itm"), with_tokenizer("blip-image-captioning-base"));
  const std::vector<blip::Image> images = photos();
  const std::vector<std::string> texts{"a cup of coffee", "a rocket on its launch pad at night"};
  const blip::MatchTable table = matcher.match(images, texts);
  const blip::Tensor<float> image_embeddings =
      matcher.image_embeddings(blip::make_pixel_values(images, matcher.folder().image_processor));
  const std::int64_t queries = matcher.blip2_model().qformer.query_count();
  const std::int64_t width = matcher.blip2_model().config.image_text_hidden_size;
  REQUIRE(image_embeddings.shape() == blip::Shape{2, queries, width});
  for (std::size_t text = 0; text < texts.size(); ++text) {
    const blip::Tensor<float> text_embedding = matcher.text_embeddings({texts[text]});
    REQUIRE(text_embedding.shape() == blip::Shape{1, width});
    for (std::int64_t image = 0; image < 2; ++image) {
      double best = -2.0;
      for (std::int64_t q = 0; q < queries; ++q) {
        double dot = 0.0;
        for (std::int64_t d = 0; d < width; ++d)
          dot += static_cast<double>(image_embeddings.at(image, q, d)) * text_embedding.at(0, d);
        best = std::max(best, dot);
      }
      CHECK(best == doctest::Approx(table.similarity.at(image, static_cast<std::int64_t>(text))).epsilon(1e-4));
    }
  }
}

TEST_CASE("VisualQA::sharing_model_of answers as a VisualQA loaded on its own, on the Captioner's weights") {
  if (!have_inputs("blip2_opt")) return;
  const blip::LoadOptions options = with_tokenizer("blip2-opt-2.7b");
  const blip::Captioner captioner = blip::Captioner::load(blip::test::fixture("blip2_opt"), options);
  const blip::VisualQA shared = blip::VisualQA::sharing_model_of(captioner);
  const blip::VisualQA alone = blip::VisualQA::load(blip::test::fixture("blip2_opt"), options);
  CHECK(&shared.blip2_model() == &captioner.blip2_model());
  blip::generation::GenerationOptions generation = alone.default_options();
  generation.max_new_tokens = 5;
  const blip::Image image = photos()[0];
  CHECK(shared.answer(image, "what is this?", generation) == alone.answer(image, "what is this?", generation));
  if (blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture")) {
    const blip::Captioner blip_captioner =
        blip::Captioner::load(blip::test::fixture("blip_caption"), with_tokenizer("blip-image-captioning-base"));
    CHECK_THROWS_WITH_AS(blip::VisualQA::sharing_model_of(blip_captioner), doctest::Contains("cannot answer"),
                         blip::Error);
  }
}

TEST_CASE("Captioner and VisualQA on BLIP-2 Flan-T5: [0] + new tokens, right-padded prompts ending in </s>") {
  if (!have_inputs("blip2_t5") ||
      !blip::test::have_or_skip(blip::test::asset("tokenizers/blip2-flan-t5-xl"), "Flan-T5 tokenizer"))
    return;
  const blip::Captioner captioner =
      blip::Captioner::load(blip::test::fixture("blip2_t5"), with_tokenizer("blip2-flan-t5-xl"));
  CHECK(captioner.is_blip2());
  CHECK(captioner.blip2_model().is_encoder_decoder());

  // Blip2Processor for T5: tokens + </s>, right-padded with 0 (legacy config: no image tokens).
  const blip::BatchEncoding prompts = blip::encode_blip2_prompts(captioner.folder(), {"a photo of", "hi", ""});
  const std::int64_t length = prompts.input_ids.dim(1);
  CHECK(prompts.input_ids.at(0, length - 1) == 1);  // "a photo of</s>" is the longest
  CHECK(prompts.input_ids.at(1, 1) == 1);           // "hi</s>" then padding
  CHECK(prompts.input_ids.at(1, length - 1) == 0);
  CHECK(prompts.attention_mask.at(1, length - 1) == 0);
  CHECK(prompts.input_ids.at(2, 0) == 1);  // "" is a lone </s>, HF generate's own default
  CHECK(prompts.attention_mask.at(2, 1) == 0);

  blip::CaptionOptions options = captioner.default_options();
  options.generation.max_new_tokens = 6;
  options.generation.num_beams = 3;
  options.generation.num_return_sequences = 2;
  const std::vector<blip::Image> images = photos();
  for (const std::string prompt : {"", "a photo of"}) {
    options.prompt = prompt;
    check_batch_agrees_with_single(captioner, options, 0);  // the decoder start heads every row
  }
  // No prompt through the task = HF generate without input_ids ([[bos]] = [[1]]).
  options.prompt = "";
  options.generation.num_return_sequences = 1;
  const auto from_task = captioner.caption(std::vector<blip::Image>{images[0]}, options);
  const blip::Blip2ForConditionalGeneration& model = captioner.blip2_model();
  const blip::Tensor<float> pixels = blip::make_pixel_values({images[0]}, captioner.folder().image_processor);
  const blip::Blip2ImageQueries queries = model.image_queries(model.vision_model.forward(pixels));
  blip::Blip2GenerationSession session = model.generation_session(queries, {}, {});
  const blip::generation::GenerationOutput output = blip::generation::generate_session(session, options.generation);
  const std::vector<std::int64_t> expected(output.sequences.data(), output.sequences.data() + output.sequences.numel());
  CHECK(from_task[0][0].token_ids == expected);

  // VQA and a conversation run the same way on the encoder-decoder model.
  const blip::VisualQA vqa = blip::VisualQA::load(blip::test::fixture("blip2_t5"), with_tokenizer("blip2-flan-t5-xl"));
  blip::generation::GenerationOptions answer_options = vqa.default_options();
  answer_options.max_new_tokens = 4;
  const auto answers = vqa.answer(images, {"what is this?", "is it a rocket?"}, answer_options);
  CHECK(answers[1][0].text == vqa.answer(images[1], "is it a rocket?", answer_options));
  blip::Conversation chat = vqa.conversation(images[0]);
  chat.options() = answer_options;
  const std::string first = chat.ask("what is this?");
  CHECK(first == vqa.answer(images[0], "what is this?", answer_options));
  chat.ask("why?");
  CHECK(chat.turns().size() == 2);
}

}  // namespace blip2_tasks_test
