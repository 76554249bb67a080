// The C interface (blip/blip.h, libblip.so) against Hugging Face and against the C++ facade it wraps
// (blip/api.hpp, which facade_test holds to the task classes): from the fixtures' own pixel_values, HF's
// generated ids (BLIP, BLIP-2 OPT and Flan-T5) and BLIP-2 image embeddings; on the tiny fixture models
// with the real tokenizers, the facade's captions, answers, scores and embeddings bit for bit, from
// files, pixels and pixel values; then every status: what a wrong call gets (BLIP_ERROR_INVALID_ARGUMENT, naming the
// argument), what refused input gets (BLIP_ERROR_FAILED with the facade's own message), outputs left
// NULL or untouched, messages per thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "blip/api.hpp"
#include "blip/blip.h"
#include "blip/io/safetensors.hpp"
#include "test_support.hpp"

namespace c_api_test {

namespace {

using blip::test::kBertTokenizer;
using blip::test::kOptTokenizer;
using blip::test::have_task_inputs;

// The C load options and the facade's for the same tokenizer folder (the fixtures have none of their own).
struct LoadOptionsPair {
  std::string tokenizer_dir;
  blip_load_options c{};
  blip::api::LoadOptions facade;
  explicit LoadOptionsPair(const std::string& tokenizer) : tokenizer_dir(blip::test::asset(tokenizer)) {
    c.tokenizer_dir = tokenizer_dir.c_str();
    facade.tokenizer_dir = tokenizer_dir;
  }
};

// Two made-up images in memory (a gradient and a checkerboard) of odd sizes: pixels through both interfaces.
struct Pixels {
  int width, height;
  std::vector<std::uint8_t> rgb;
};
std::vector<Pixels> made_up_pixels() {
  std::vector<Pixels> images = {{37, 23, {}}, {20, 41, {}}};
  for (std::size_t index = 0; index < images.size(); ++index) {
    Pixels& image = images[index];
    image.rgb.resize(static_cast<std::size_t>(image.width) * image.height * 3);
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x)
        for (int channel = 0; channel < 3; ++channel)
          image.rgb[(static_cast<std::size_t>(y) * image.width + x) * 3 + channel] = static_cast<std::uint8_t>(
              index == 0 ? (7 * x + 3 * y + 60 * channel) % 256 : ((x / 4 + y / 4) % 2) * 200 + 20 * channel);
  }
  return images;
}

std::vector<blip_image> c_images(const std::vector<std::string>& paths) {
  std::vector<blip_image> images;
  for (const std::string& path : paths) images.push_back({path.c_str(), nullptr, 0, 0});
  return images;
}
std::vector<blip_image> c_images(const std::vector<Pixels>& pixels) {
  std::vector<blip_image> images;
  for (const Pixels& image : pixels) images.push_back({nullptr, image.rgb.data(), image.width, image.height});
  return images;
}
std::vector<blip::api::ImageView> facade_views(const std::vector<Pixels>& pixels) {
  std::vector<blip::api::ImageView> views;
  for (const Pixels& image : pixels) views.push_back({image.rgb.data(), image.width, image.height});
  return views;
}

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// A C result against the facade's, text by text: the same strings, ids and scores, bit for bit.
void check_same(const blip_texts* texts, const std::vector<std::vector<blip::api::Caption>>& facade) {
  REQUIRE(texts != nullptr);
  REQUIRE(blip_texts_groups(texts) == facade.size());
  for (std::size_t group = 0; group < facade.size(); ++group) {
    CAPTURE(group);
    REQUIRE(blip_texts_count(texts, group) == facade[group].size());
    for (std::size_t rank = 0; rank < facade[group].size(); ++rank) {
      CAPTURE(rank);
      const blip_text* text = blip_texts_get(texts, group, rank);
      REQUIRE(text != nullptr);
      CHECK(std::string(text->text) == facade[group][rank].text);
      CHECK(std::vector<std::int64_t>(text->token_ids, text->token_ids + text->token_count) ==
            facade[group][rank].token_ids);
      CHECK(same_float(text->score, facade[group][rank].score));
    }
    CHECK(blip_texts_get(texts, group, facade[group].size()) == nullptr);
  }
  CHECK(blip_texts_count(texts, facade.size()) == 0);
  CHECK(blip_texts_get(texts, facade.size(), 0) == nullptr);
}

void check_same_options(const blip_generation_options& c, const blip::api::GenerationOptions& facade) {
  CHECK(c.max_new_tokens == facade.max_new_tokens);
  CHECK(c.max_length == facade.max_length);
  CHECK(c.min_new_tokens == facade.min_new_tokens);
  CHECK(c.min_length == facade.min_length);
  CHECK(c.num_beams == facade.num_beams);
  CHECK((c.do_sample != 0) == facade.do_sample);
  CHECK(c.temperature == facade.temperature);
  CHECK(c.top_k == facade.top_k);
  CHECK(c.top_p == facade.top_p);
  CHECK(c.repetition_penalty == facade.repetition_penalty);
  CHECK(c.no_repeat_ngram_size == facade.no_repeat_ngram_size);
  CHECK(c.length_penalty == facade.length_penalty);
  CHECK(c.num_return_sequences == facade.num_return_sequences);
  CHECK(c.seed == facade.seed);
}

// The facade's message for the same refused call: what BLIP_ERROR_FAILED must carry.
template <class FacadeCall>
std::string facade_message(FacadeCall call) {
  try {
    call();
  } catch (const blip::api::Error& error) {
    return error.what();
  }
  FAIL("the facade accepted the call");
  return {};
}

}  // namespace

TEST_CASE("C interface captioning (BLIP and BLIP-2): the facade's captions, ids and scores") {
  struct Case {
    const char* fixture;
    std::string tokenizer;
  };
  for (const Case& test_case : {Case{"blip_caption", kBertTokenizer}, Case{"blip2_opt", kOptTokenizer}}) {
    CAPTURE(test_case.fixture);
    if (!have_task_inputs(test_case.fixture, test_case.tokenizer)) return;
    const std::string model_dir = blip::test::fixture(test_case.fixture);
    const LoadOptionsPair load(test_case.tokenizer);
    blip_captioner* captioner = nullptr;
    REQUIRE_MESSAGE(blip_captioner_load(model_dir.c_str(), &load.c, &captioner) == BLIP_OK, blip_last_error());
    REQUIRE(captioner != nullptr);
    const blip::api::Captioner facade = blip::api::Captioner::load(model_dir, load.facade);
    CHECK(blip_captioner_is_blip2(captioner) == (facade.is_blip2() ? 1 : 0));

    // The model's defaults come across unchanged; NULL options mean them.
    blip_generation_options options;
    REQUIRE(blip_captioner_default_options(captioner, &options) == BLIP_OK);
    check_same_options(options, facade.default_options().generation);
    const std::vector<std::string> paths = blip::test::two_photo_paths();
    const std::vector<blip_image> files = c_images(paths);
    blip_texts* captions = nullptr;
    REQUIRE_MESSAGE(blip_caption(captioner, files.data(), 1, nullptr, nullptr, &captions) == BLIP_OK, blip_last_error());
    check_same(captions, {facade.caption(paths[0], facade.default_options())});
    blip_texts_free(captions);

    // Beam search, two returned sequences, a prompt and a repetition penalty: a batch of files, then of pixels.
    options.num_beams = 3;
    options.num_return_sequences = 2;
    options.max_new_tokens = 8;
    options.repetition_penalty = 1.3;
    blip::api::CaptionOptions facade_options = facade.default_options();
    facade_options.prompt = "a picture of";
    facade_options.generation.num_beams = 3;
    facade_options.generation.num_return_sequences = 2;
    facade_options.generation.max_new_tokens = 8;
    facade_options.generation.repetition_penalty = 1.3;
    REQUIRE(blip_caption(captioner, files.data(), files.size(), "a picture of", &options, &captions) == BLIP_OK);
    check_same(captions, facade.caption_batch(paths, facade_options));
    blip_texts_free(captions);
    const std::vector<Pixels> pixels = made_up_pixels();
    const std::vector<blip_image> decoded = c_images(pixels);
    REQUIRE(blip_caption(captioner, decoded.data(), decoded.size(), "a picture of", &options, &captions) == BLIP_OK);
    check_same(captions, facade.caption_batch(facade_views(pixels), facade_options));
    blip_texts_free(captions);

    // Sampling with a seed: the same draws.
    options.do_sample = 1;
    options.seed = 11;
    options.top_k = 5;
    facade_options.generation.do_sample = true;
    facade_options.generation.seed = 11;
    facade_options.generation.top_k = 5;
    REQUIRE(blip_caption(captioner, files.data() + 1, 1, "", &options, &captions) == BLIP_OK);
    facade_options.prompt.clear();
    check_same(captions, {facade.caption(paths[1], facade_options)});
    blip_texts_free(captions);
    blip_captioner_free(captioner);
  }
}

TEST_CASE("C interface from the fixtures' own pixel_values: Hugging Face's generated ids and image embeddings") {
  // The oracle's generate() calls without a prompt that have blip_generation_options counterparts.
  struct Call {
    const char* output;
    std::int64_t num_beams, max_new_tokens, min_new_tokens, num_return_sequences;
    double repetition_penalty, length_penalty;
  };
  const Call calls[] = {{"greedy_ids", 1, 12, 0, 1, 1.0, 1.0},     {"beam_ids", 3, 12, 0, 1, 1.0, 1.0},
                        {"greedy_rep_ids", 1, 12, 4, 1, 1.5, 1.0}, {"beam_lp_ids", 3, 12, 0, 1, 1.2, 0.6},
                        {"beam_nrs_ids", 4, 10, 0, 2, 1.0, 1.0}};
  struct Case {
    const char* fixture;
    std::string tokenizer;
  };
  for (const Case& test_case : {Case{"blip_caption", kBertTokenizer}, Case{"blip2_opt", kOptTokenizer},
                                Case{"blip2_t5", "tokenizers/blip2-flan-t5-xl"}}) {
    CAPTURE(test_case.fixture);
    if (!have_task_inputs(test_case.fixture, test_case.tokenizer)) return;
    const std::string model_dir = blip::test::fixture(test_case.fixture);
    const blip::SafetensorsFile inputs = blip::SafetensorsFile::open(model_dir + "/inputs.safetensors");
    const blip::SafetensorsFile outputs = blip::SafetensorsFile::open(model_dir + "/outputs.safetensors");
    const blip::Tensor<const float> pixels = inputs.to_f32("pixel_values");
    const blip_pixel_values values{pixels.data(), pixels.dim(0), pixels.dim(1), pixels.dim(2), pixels.dim(3)};
    // HF pads a batch's shorter sequences with pad_token_id after their end.
    const std::int64_t pad =
        blip::test::load_json(model_dir + "/generation_config.json").value("pad_token_id", std::int64_t{0});
    const LoadOptionsPair load(test_case.tokenizer);
    blip_captioner* captioner = nullptr;
    REQUIRE_MESSAGE(blip_captioner_load(model_dir.c_str(), &load.c, &captioner) == BLIP_OK, blip_last_error());
    for (const Call& call : calls) {
      CAPTURE(call.output);
      blip_generation_options options;
      REQUIRE(blip_captioner_default_options(captioner, &options) == BLIP_OK);
      options.num_beams = call.num_beams;
      options.max_new_tokens = call.max_new_tokens;
      options.min_new_tokens = call.min_new_tokens;
      options.num_return_sequences = call.num_return_sequences;
      options.repetition_penalty = call.repetition_penalty;
      options.length_penalty = call.length_penalty;
      blip_texts* captions = nullptr;
      REQUIRE_MESSAGE(blip_caption_pixel_values(captioner, &values, nullptr, &options, &captions) == BLIP_OK,
                      blip_last_error());
      const blip::Tensor<std::int64_t> expected = outputs.to_i64(call.output);
      REQUIRE(blip_texts_groups(captions) == static_cast<std::size_t>(pixels.dim(0)));
      for (std::int64_t image = 0; image < pixels.dim(0); ++image) {
        REQUIRE(blip_texts_count(captions, image) == static_cast<std::size_t>(call.num_return_sequences));
        for (std::int64_t rank = 0; rank < call.num_return_sequences; ++rank) {
          CAPTURE(image);
          CAPTURE(rank);
          const blip_text* text = blip_texts_get(captions, image, rank);
          const std::int64_t row = image * call.num_return_sequences + rank;
          REQUIRE(static_cast<std::int64_t>(text->token_count) <= expected.dim(1));
          for (std::int64_t position = 0; position < expected.dim(1); ++position) {
            CAPTURE(position);
            const bool generated = position < static_cast<std::int64_t>(text->token_count);
            CHECK((generated ? text->token_ids[position] : pad) == expected.at(row, position));
          }
        }
      }
      blip_texts_free(captions);
    }
    blip_captioner_free(captioner);
  }

  // BLIP-2's ITC image embeddings: HF's to 1e-4 of their largest.
  if (!have_task_inputs("blip2_itm", kBertTokenizer)) return;
  const std::string itm_dir = blip::test::fixture("blip2_itm");
  const blip::Tensor<const float> pixels =
      blip::SafetensorsFile::open(itm_dir + "/inputs.safetensors").to_f32("pixel_values");
  const blip::Tensor<const float> expected =
      blip::SafetensorsFile::open(itm_dir + "/outputs.safetensors").to_f32("itc_image_embeds");
  const LoadOptionsPair load(kBertTokenizer);
  blip_matcher* matcher = nullptr;
  REQUIRE(blip_matcher_load(itm_dir.c_str(), &load.c, &matcher) == BLIP_OK);
  const blip_pixel_values values{pixels.data(), pixels.dim(0), pixels.dim(1), pixels.dim(2), pixels.dim(3)};
  blip_embeddings* embeddings = nullptr;
  REQUIRE_MESSAGE(blip_image_embeddings_pixel_values(matcher, &values, &embeddings) == BLIP_OK, blip_last_error());
  REQUIRE(blip_embeddings_count(embeddings) == static_cast<std::size_t>(expected.dim(0)));
  double largest_difference = 0, largest = 0;
  for (std::int64_t image = 0; image < expected.dim(0); ++image) {
    std::size_t vectors = 0, dimension = 0;
    const float* actual = blip_embeddings_get(embeddings, image, &vectors, &dimension);
    REQUIRE(static_cast<std::int64_t>(vectors) == expected.dim(1));
    REQUIRE(static_cast<std::int64_t>(dimension) == expected.dim(2));
    const float* reference = expected.data() + image * expected.dim(1) * expected.dim(2);
    for (std::size_t i = 0; i < vectors * dimension; ++i) {
      largest_difference = std::max(largest_difference, std::abs(static_cast<double>(actual[i]) - reference[i]));
      largest = std::max(largest, std::abs(static_cast<double>(reference[i])));
    }
  }
  CHECK(largest_difference <= 1e-4 * largest);
  blip_embeddings_free(embeddings);

  // Match scores and answers from pixel values: the facade's, bit for bit; a NULL pixels pointer is named.
  const blip::api::ImageTextMatcher facade = blip::api::ImageTextMatcher::load(itm_dir, load.facade);
  const char* const texts[] = {"a cup of coffee", "a dog"};
  std::vector<blip_match_score> scores(static_cast<std::size_t>(2 * pixels.dim(0)));
  REQUIRE(blip_match_pixel_values(matcher, &values, texts, 2, scores.data()) == BLIP_OK);
  const auto table = facade.match(
      blip::api::PixelValues{pixels.data(), pixels.dim(0), pixels.dim(1), pixels.dim(2), pixels.dim(3)},
      {texts[0], texts[1]});
  for (std::size_t image = 0; image < table.size(); ++image)
    for (std::size_t text = 0; text < 2; ++text) {
      CHECK(scores[image * 2 + text].match_probability == table[image][text].match_probability);
      CHECK(scores[image * 2 + text].similarity == table[image][text].similarity);
    }
  CHECK(blip_match_pixel_values(matcher, nullptr, texts, 2, scores.data()) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_match_pixel_values: pixels is NULL");
  const blip_pixel_values empty{pixels.data(), 0, 3, pixels.dim(2), pixels.dim(3)};
  CHECK(blip_image_embeddings_pixel_values(matcher, &empty, &embeddings) == BLIP_ERROR_FAILED);
  CHECK(std::string(blip_last_error()).find("every size must be positive") != std::string::npos);
  blip_matcher_free(matcher);

  if (!have_task_inputs("blip2_opt", kOptTokenizer)) return;
  const std::string opt_dir = blip::test::fixture("blip2_opt");
  const blip::Tensor<const float> opt_pixels =
      blip::SafetensorsFile::open(opt_dir + "/inputs.safetensors").to_f32("pixel_values");
  const blip_pixel_values opt_values{opt_pixels.data(), opt_pixels.dim(0), opt_pixels.dim(1), opt_pixels.dim(2),
                                     opt_pixels.dim(3)};
  const LoadOptionsPair opt_load(kOptTokenizer);
  blip_visual_qa* visual_qa = nullptr;
  REQUIRE(blip_visual_qa_load(opt_dir.c_str(), &opt_load.c, &visual_qa) == BLIP_OK);
  std::vector<std::string> questions;
  std::vector<const char*> question_texts;
  for (std::int64_t image = 0; image < opt_pixels.dim(0); ++image)
    questions.push_back("what is in picture " + std::to_string(image) + "?");
  for (const std::string& question : questions) question_texts.push_back(question.c_str());
  blip_texts* answers = nullptr;
  REQUIRE(blip_answer_pixel_values(visual_qa, &opt_values, question_texts.data(), question_texts.size(), nullptr,
                                   &answers) == BLIP_OK);
  const blip::api::VisualQA facade_qa = blip::api::VisualQA::load(opt_dir, opt_load.facade);
  check_same(answers, facade_qa.answer_batch(blip::api::PixelValues{opt_pixels.data(), opt_pixels.dim(0),
                                                                     opt_pixels.dim(1), opt_pixels.dim(2),
                                                                     opt_pixels.dim(3)},
                                             questions, facade_qa.default_options()));
  blip_texts_free(answers);
  blip_visual_qa_free(visual_qa);
}

TEST_CASE("C interface: one handle captions from several threads at once") {
  if (!have_task_inputs("blip_caption", kBertTokenizer)) return;
  const LoadOptionsPair load(kBertTokenizer);
  blip_captioner* captioner = nullptr;
  REQUIRE(blip_captioner_load(blip::test::fixture("blip_caption").c_str(), &load.c, &captioner) == BLIP_OK);
  const std::vector<std::string> paths = blip::test::two_photo_paths();
  const std::vector<blip_image> files = c_images(paths);
  const auto ids_of = [&](const blip_image& image) {
    blip_texts* captions = nullptr;
    std::vector<std::int64_t> ids;
    if (blip_caption(captioner, &image, 1, nullptr, nullptr, &captions) == BLIP_OK) {
      const blip_text* text = blip_texts_get(captions, 0, 0);
      ids.assign(text->token_ids, text->token_ids + text->token_count);
    }
    blip_texts_free(captions);
    return ids;
  };
  const std::vector<std::int64_t> expected_first = ids_of(files[0]), expected_second = ids_of(files[1]);
  REQUIRE_FALSE(expected_first.empty());
  std::vector<std::int64_t> first, second;
  std::thread one([&] { first = ids_of(files[0]); });
  std::thread two([&] { second = ids_of(files[1]); });
  one.join();
  two.join();
  CHECK(first == expected_first);
  CHECK(second == expected_second);
  blip_captioner_free(captioner);
}

TEST_CASE("C interface visual question answering (BLIP and BLIP-2): the facade's answers") {
  struct Case {
    const char* fixture;
    std::string tokenizer;
  };
  for (const Case& test_case : {Case{"blip_vqa", kBertTokenizer}, Case{"blip2_opt", kOptTokenizer}}) {
    CAPTURE(test_case.fixture);
    if (!have_task_inputs(test_case.fixture, test_case.tokenizer)) return;
    const std::string model_dir = blip::test::fixture(test_case.fixture);
    const LoadOptionsPair load(test_case.tokenizer);
    blip_visual_qa* visual_qa = nullptr;
    REQUIRE_MESSAGE(blip_visual_qa_load(model_dir.c_str(), &load.c, &visual_qa) == BLIP_OK, blip_last_error());
    const blip::api::VisualQA facade = blip::api::VisualQA::load(model_dir, load.facade);
    CHECK(blip_visual_qa_is_blip2(visual_qa) == (facade.is_blip2() ? 1 : 0));
    blip_generation_options options;
    REQUIRE(blip_visual_qa_default_options(visual_qa, &options) == BLIP_OK);
    check_same_options(options, facade.default_options());

    const std::vector<std::string> paths = blip::test::two_photo_paths();
    const std::vector<std::string> questions = {"what is in the cup?", "where is the rocket?"};
    const char* const question_texts[] = {questions[0].c_str(), questions[1].c_str()};
    const std::vector<blip_image> files = c_images(paths);
    blip_texts* answers = nullptr;
    REQUIRE_MESSAGE(blip_answer(visual_qa, files.data(), question_texts, 2, nullptr, &answers) == BLIP_OK,
                    blip_last_error());
    check_same(answers, facade.answer_batch(paths, questions, facade.default_options()));
    blip_texts_free(answers);

    options.num_beams = 2;
    options.num_return_sequences = 2;
    options.max_new_tokens = 6;
    blip::api::GenerationOptions facade_options = facade.default_options();
    facade_options.num_beams = 2;
    facade_options.num_return_sequences = 2;
    facade_options.max_new_tokens = 6;
    const std::vector<Pixels> pixels = made_up_pixels();
    const std::vector<blip_image> decoded = c_images(pixels);
    REQUIRE(blip_answer(visual_qa, decoded.data(), question_texts, 2, &options, &answers) == BLIP_OK);
    check_same(answers, facade.answer_batch(facade_views(pixels), questions, facade_options));
    blip_texts_free(answers);
    blip_visual_qa_free(visual_qa);
  }
}

TEST_CASE("C interface image-text matching (BLIP and BLIP-2): the facade's scores and embeddings") {
  for (const char* fixture : {"blip_itm", "blip2_itm"}) {
    CAPTURE(fixture);
    if (!have_task_inputs(fixture, kBertTokenizer)) return;
    const std::string model_dir = blip::test::fixture(fixture);
    const LoadOptionsPair load(kBertTokenizer);
    blip_matcher* matcher = nullptr;
    REQUIRE_MESSAGE(blip_matcher_load(model_dir.c_str(), &load.c, &matcher) == BLIP_OK, blip_last_error());
    const blip::api::ImageTextMatcher facade = blip::api::ImageTextMatcher::load(model_dir, load.facade);
    CHECK(blip_matcher_is_blip2(matcher) == (facade.is_blip2() ? 1 : 0));

    const std::vector<std::string> paths = blip::test::two_photo_paths();
    const std::vector<std::string> texts = {"a cup of coffee", "a rocket on its launch pad", "a dog"};
    const char* const text_list[] = {texts[0].c_str(), texts[1].c_str(), texts[2].c_str()};
    const std::vector<Pixels> pixels = made_up_pixels();
    for (const bool from_files : {true, false}) {
      CAPTURE(from_files);
      const std::vector<blip_image> images = from_files ? c_images(paths) : c_images(pixels);
      const auto table = from_files ? facade.match(paths, texts) : facade.match(facade_views(pixels), texts);
      std::vector<blip_match_score> scores(6);
      REQUIRE_MESSAGE(blip_match(matcher, images.data(), 2, text_list, 3, scores.data()) == BLIP_OK, blip_last_error());
      for (std::size_t image = 0; image < 2; ++image)
        for (std::size_t text = 0; text < 3; ++text) {
          CAPTURE(image);
          CAPTURE(text);
          CHECK(scores[image * 3 + text].match_probability == table[image][text].match_probability);
          CHECK(scores[image * 3 + text].similarity == table[image][text].similarity);
        }

      blip_embeddings* embeddings = nullptr;
      REQUIRE(blip_image_embeddings(matcher, images.data(), 2, &embeddings) == BLIP_OK);
      const auto facade_images =
          from_files ? facade.image_embeddings(paths) : facade.image_embeddings(facade_views(pixels));
      REQUIRE(blip_embeddings_count(embeddings) == 2);
      for (std::size_t image = 0; image < 2; ++image) {
        std::size_t vectors = 0, dimension = 0;
        const float* values = blip_embeddings_get(embeddings, image, &vectors, &dimension);
        REQUIRE(values != nullptr);
        CHECK(vectors == static_cast<std::size_t>(facade_images[image].vectors));
        REQUIRE(dimension == static_cast<std::size_t>(facade_images[image].dimension));
        CHECK(std::vector<float>(values, values + vectors * dimension) == facade_images[image].values);
      }
      std::size_t vectors = 7, dimension = 7;
      CHECK(blip_embeddings_get(embeddings, 2, &vectors, &dimension) == nullptr);
      CHECK(vectors == 0);
      CHECK(dimension == 0);
      blip_embeddings_free(embeddings);
    }

    blip_embeddings* embeddings = nullptr;
    REQUIRE(blip_text_embeddings(matcher, text_list, 3, &embeddings) == BLIP_OK);
    const auto facade_texts = facade.text_embeddings(texts);
    REQUIRE(blip_embeddings_count(embeddings) == 3);
    for (std::size_t text = 0; text < 3; ++text) {
      std::size_t vectors = 0;
      const float* values = blip_embeddings_get(embeddings, text, &vectors, nullptr);
      CHECK(vectors == 1);
      CHECK(std::vector<float>(values, values + facade_texts[text].values.size()) == facade_texts[text].values);
    }
    blip_embeddings_free(embeddings);
    blip_matcher_free(matcher);
  }
}

TEST_CASE("C interface statuses: wrong calls name the argument, refused input carries the facade's message") {
  CHECK(std::string(blip_status_name(BLIP_OK)) == "BLIP_OK");
  CHECK(std::string(blip_status_name(BLIP_ERROR_FAILED)) == "BLIP_ERROR_FAILED");
  CHECK(std::string(blip_status_name(static_cast<blip_status>(99))) == "unknown status");
  CHECK(blip_c_api_version() == BLIP_C_API_VERSION);
  CHECK(std::string(blip_version()) == BLIP_PROJECT_VERSION);
  // Releasing nothing, and reading results that are not there.
  blip_captioner_free(nullptr);
  blip_visual_qa_free(nullptr);
  blip_matcher_free(nullptr);
  blip_texts_free(nullptr);
  blip_embeddings_free(nullptr);
  CHECK(blip_texts_groups(nullptr) == 0);
  CHECK(blip_texts_get(nullptr, 0, 0) == nullptr);
  CHECK(blip_embeddings_count(nullptr) == 0);
  CHECK(blip_captioner_is_blip2(nullptr) == 0);

  // Wrong calls, before any model is needed.
  CHECK(blip_captioner_load("models/x", nullptr, nullptr) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_captioner_load: captioner is NULL");
  int stale = 0;  // an output holding a stale pointer, which a failed call must clear
  blip_captioner* captioner = reinterpret_cast<blip_captioner*>(&stale);
  CHECK(blip_captioner_load(nullptr, nullptr, &captioner) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(captioner == nullptr);
  CHECK(std::string(blip_last_error()) == "blip_captioner_load: model_dir is NULL");
  blip_texts* captions = nullptr;
  const blip_image nothing{nullptr, nullptr, 0, 0};
  CHECK(blip_caption(nullptr, &nothing, 1, nullptr, nullptr, &captions) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_caption: captioner is NULL");

  // A folder that is not there: the facade's own message (it names the folder), and no handle.
  const std::string missing_dir = blip::test::fixture("no_such_model_folder");
  captioner = reinterpret_cast<blip_captioner*>(&stale);
  CHECK(blip_captioner_load(missing_dir.c_str(), nullptr, &captioner) == BLIP_ERROR_FAILED);
  CHECK(captioner == nullptr);
  CHECK(std::string(blip_last_error()) == facade_message([&] { blip::api::Captioner::load(missing_dir); }));
  CHECK(std::string(blip_last_error()).find("no_such_model_folder") != std::string::npos);

  // Messages are per thread: another thread's failure leaves this thread's message as it was.
  const std::string before = blip_last_error();
  std::string other_thread_message;
  std::thread other([&] {
    blip_matcher* matcher = nullptr;
    blip_matcher_load(nullptr, nullptr, &matcher);
    other_thread_message = blip_last_error();
  });
  other.join();
  CHECK(other_thread_message == "blip_matcher_load: model_dir is NULL");
  CHECK(std::string(blip_last_error()) == before);

  if (!have_task_inputs("blip_caption", kBertTokenizer) || !have_task_inputs("blip_vqa", kBertTokenizer) ||
      !have_task_inputs("blip_itm", kBertTokenizer))
    return;
  const LoadOptionsPair load(kBertTokenizer);
  const std::string model_dir = blip::test::fixture("blip_caption");
  blip_load_options bad_precision = load.c;
  bad_precision.precision = "int3";
  CHECK(blip_captioner_load(model_dir.c_str(), &bad_precision, &captioner) == BLIP_ERROR_FAILED);
  CHECK(std::string(blip_last_error()) ==
        "LoadOptions::precision: 'int3' is not a precision; expected as-stored, f32, bf16, f16, int8 or int4");
  blip_load_options negative_threads = load.c;
  negative_threads.num_threads = -2;
  CHECK(blip_captioner_load(model_dir.c_str(), &negative_threads, &captioner) == BLIP_ERROR_FAILED);
  CHECK(std::string(blip_last_error()).find("num_threads: -2 is negative") != std::string::npos);
  // A captioning folder is not a VQA model: the facade's message.
  blip_visual_qa* visual_qa = nullptr;
  CHECK(blip_visual_qa_load(model_dir.c_str(), &load.c, &visual_qa) == BLIP_ERROR_FAILED);
  CHECK(visual_qa == nullptr);
  CHECK(std::string(blip_last_error()) == facade_message([&] { blip::api::VisualQA::load(model_dir, load.facade); }));

  REQUIRE(blip_captioner_load(model_dir.c_str(), &load.c, &captioner) == BLIP_OK);
  const blip::api::Captioner facade = blip::api::Captioner::load(model_dir, load.facade);
  const std::string photo = blip::test::two_photo_paths()[0];
  const std::vector<Pixels> pixels = made_up_pixels();
  const std::string missing_photo = blip::test::asset("images/no_such_photo.jpg");
  const blip_image file{photo.c_str(), nullptr, 0, 0};
  const blip_image decoded{nullptr, pixels[0].rgb.data(), pixels[0].width, pixels[0].height};
  const blip_image missing{missing_photo.c_str(), nullptr, 0, 0};
  const blip_image both{photo.c_str(), pixels[0].rgb.data(), pixels[0].width, pixels[0].height};
  const blip_image empty{nullptr, pixels[0].rgb.data(), 0, 5};
  struct WrongCall {
    std::vector<blip_image> images;
    std::size_t count;
    const char* message;
  };
  for (const WrongCall& call : {
           WrongCall{{file}, 0, "blip_caption: image_count is 0; give at least one image"},
           WrongCall{{file, nothing}, 2, "blip_caption: images[1] has neither a path nor pixels"},
           WrongCall{{both}, 1, "blip_caption: images[0] has both a path and pixels; give one"},
           WrongCall{{file, decoded}, 2,
                     "blip_caption: images[1] is pixels but images[0] is a file; one call takes files or pixels, "
                     "not both"},
           WrongCall{{decoded, file}, 2,
                     "blip_caption: images[1] is a file but images[0] is pixels; one call takes files or pixels, "
                     "not both"},
       }) {
    CAPTURE(call.message);
    captions = reinterpret_cast<blip_texts*>(&stale);
    CHECK(blip_caption(captioner, call.images.data(), call.count, nullptr, nullptr, &captions) ==
          BLIP_ERROR_INVALID_ARGUMENT);
    CHECK(captions == nullptr);
    CHECK(std::string(blip_last_error()) == call.message);
  }
  CHECK(blip_caption(captioner, nullptr, 1, nullptr, nullptr, &captions) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_caption: images is NULL");
  CHECK(blip_caption(captioner, &file, 1, nullptr, nullptr, nullptr) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_caption: captions is NULL");
  CHECK(blip_captioner_default_options(captioner, nullptr) == BLIP_ERROR_INVALID_ARGUMENT);

  // Refused input: an unreadable file, a 0-pixel image, options HF refuses, each with the facade's message.
  CHECK(blip_caption(captioner, &missing, 1, nullptr, nullptr, &captions) == BLIP_ERROR_FAILED);
  CHECK(captions == nullptr);
  CHECK(std::string(blip_last_error()) == facade_message([&] { facade.caption(missing_photo, facade.default_options()); }));
  CHECK(blip_caption(captioner, &empty, 1, nullptr, nullptr, &captions) == BLIP_ERROR_FAILED);
  CHECK(std::string(blip_last_error()) == "image 0: ImageView is 0x5 pixels; both must be positive");
  blip_generation_options too_many_returned;
  REQUIRE(blip_captioner_default_options(captioner, &too_many_returned) == BLIP_OK);
  too_many_returned.num_return_sequences = 2;  // more than num_beams 1 (HF refuses it too)
  blip::api::CaptionOptions facade_too_many = facade.default_options();
  facade_too_many.generation.num_return_sequences = 2;
  CHECK(blip_caption(captioner, &file, 1, nullptr, &too_many_returned, &captions) == BLIP_ERROR_FAILED);
  CHECK(std::string(blip_last_error()) == facade_message([&] { facade.caption(photo, facade_too_many); }));
  blip_captioner_free(captioner);

  // Questions and texts: NULL entries are named; match's score count must fit; a failed match leaves the
  // caller's scores as they were.
  blip_visual_qa* blip_vqa = nullptr;
  REQUIRE(blip_visual_qa_load(blip::test::fixture("blip_vqa").c_str(), &load.c, &blip_vqa) == BLIP_OK);
  const char* const questions[] = {"what is this?", nullptr};
  const blip_image two_files[] = {file, file};
  blip_texts* answers = nullptr;
  CHECK(blip_answer(blip_vqa, two_files, questions, 2, nullptr, &answers) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_answer: questions[1] is NULL");
  CHECK(blip_answer(blip_vqa, two_files, nullptr, 2, nullptr, &answers) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_answer: questions is NULL");
  CHECK(blip_answer(blip_vqa, two_files, questions, 0, nullptr, &answers) == BLIP_ERROR_INVALID_ARGUMENT);
  blip_visual_qa_free(blip_vqa);

  blip_matcher* matcher = nullptr;
  REQUIRE(blip_matcher_load(blip::test::fixture("blip_itm").c_str(), &load.c, &matcher) == BLIP_OK);
  const char* const texts[] = {"a cup", "a dog"};
  blip_match_score scores[2] = {{-1.0f, -2.0f}, {-3.0f, -4.0f}};
  CHECK(blip_match(matcher, two_files, std::numeric_limits<std::size_t>::max(), texts, 2, scores) ==
        BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_match: image_count * text_count scores do not fit in memory");
  CHECK(blip_match(matcher, &missing, 1, texts, 2, scores) == BLIP_ERROR_FAILED);
  CHECK(scores[0].match_probability == -1.0f);
  CHECK(scores[1].similarity == -4.0f);
  CHECK(blip_match(matcher, &file, 1, texts, 2, nullptr) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_match: scores is NULL");
  blip_embeddings* embeddings = nullptr;
  CHECK(blip_text_embeddings(matcher, texts, 0, &embeddings) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(blip_image_embeddings(matcher, &nothing, 1, &embeddings) == BLIP_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(blip_last_error()) == "blip_image_embeddings: images[0] has neither a path nor pixels");
  CHECK(embeddings == nullptr);
  blip_matcher_free(matcher);
}

}  // namespace c_api_test
