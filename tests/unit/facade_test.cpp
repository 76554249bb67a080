// The facade (blip/api.hpp, linked from blip::compiled) against the task classes it wraps, on the
// tiny fixture models with the real tokenizers: the same captions, answers, scores and embeddings,
// bit for bit; the model's default options carried across; errors arriving as blip::api::Error
// with the library's own message.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "blip/api.hpp"
#include "blip/blip.hpp"
#include "test_support.hpp"

namespace facade_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::test::kBertTokenizer;
using blip::test::kOptTokenizer;
using blip::test::have_task_inputs;

blip::api::LoadOptions facade_load_options(const std::string& tokenizer) {
  blip::api::LoadOptions options;
  options.tokenizer_dir = blip::test::asset(tokenizer);
  return options;
}

blip::LoadOptions library_load_options(const std::string& tokenizer) {
  blip::LoadOptions options;
  options.tokenizer_dir = blip::test::asset(tokenizer);
  return options;
}

// Equal floats, NaN included (greedy and sampled captions have no score).
bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// score_tolerance: 0 for the same computation; a batch against one image alone gives the same ids, and scores
// equal to float rounding (the attention over a padded batch sums in another order).
void check_same(const std::vector<blip::api::Caption>& facade, const std::vector<blip::Caption>& library,
                float score_tolerance = 0.0f) {
  REQUIRE(facade.size() == library.size());
  for (std::size_t rank = 0; rank < library.size(); ++rank) {
    CAPTURE(rank);
    CHECK(facade[rank].text == library[rank].text);
    CHECK(facade[rank].token_ids == library[rank].token_ids);
    if (score_tolerance == 0.0f)
      CHECK(same_float(facade[rank].score, library[rank].score));
    else
      CHECK(std::abs(facade[rank].score - library[rank].score) <= score_tolerance * std::abs(library[rank].score));
  }
}

void check_same_options(const blip::api::GenerationOptions& facade, const blip::generation::GenerationOptions& library) {
  CHECK(facade.max_new_tokens == library.max_new_tokens);
  CHECK(facade.max_length == library.max_length);
  CHECK(facade.min_new_tokens == library.min_new_tokens);
  CHECK(facade.min_length == library.min_length);
  CHECK(facade.num_beams == library.num_beams);
  CHECK(facade.do_sample == library.do_sample);
  CHECK(facade.temperature == library.temperature);
  CHECK(facade.top_k == library.top_k);
  CHECK(facade.top_p == library.top_p);
  CHECK(facade.repetition_penalty == library.repetition_penalty);
  CHECK(facade.no_repeat_ngram_size == library.no_repeat_ngram_size);
  CHECK(facade.length_penalty == library.length_penalty);
  CHECK(facade.num_return_sequences == library.num_return_sequences);
  CHECK(facade.seed == library.seed);
}

// The same call through both forms must fail with the same message, as blip::api::Error.
template <class FacadeCall, class LibraryCall>
void check_same_error(FacadeCall facade_call, LibraryCall library_call) {
  std::string library_message;
  try {
    library_call();
  } catch (const blip::Error& error) {
    library_message = error.what();
  }
  REQUIRE_FALSE(library_message.empty());
  CHECK_THROWS_WITH_AS(facade_call(), library_message.c_str(), blip::api::Error);
}

}  // namespace

TEST_CASE("facade Captioner (BLIP and BLIP-2): the task class's captions, ids and scores") {
  struct Case {
    const char* fixture;
    std::string tokenizer;
  };
  for (const Case& test_case : {Case{"blip_caption", kBertTokenizer}, Case{"blip2_opt", kOptTokenizer}}) {
    CAPTURE(test_case.fixture);
    if (!have_task_inputs(test_case.fixture, test_case.tokenizer)) return;
    const std::string model_dir = blip::test::fixture(test_case.fixture);
    const blip::api::Captioner facade = blip::api::Captioner::load(model_dir, facade_load_options(test_case.tokenizer));
    const blip::Captioner library = blip::Captioner::load(model_dir, library_load_options(test_case.tokenizer));
    CHECK(facade.is_blip2() == library.is_blip2());
    CHECK(facade.model_dir() == library.folder().directory);

    // The model's defaults cross the facade unchanged and generate the same captions.
    const blip::api::CaptionOptions facade_defaults = facade.default_options();
    const blip::CaptionOptions library_defaults = library.default_options();
    check_same_options(facade_defaults.generation, library_defaults.generation);
    const std::vector<std::string> paths = blip::test::two_photo_paths();
    const std::vector<blip::Image> images = {blip::load_image(paths[0]), blip::load_image(paths[1])};
    check_same(facade.caption(paths[0], facade_defaults), library.caption(std::vector<blip::Image>{images[0]}, library_defaults).front());

    // Beam search with two returned sequences and a prompt; a batch of paths and of decoded images.
    blip::api::CaptionOptions facade_options = facade_defaults;
    facade_options.prompt = "a picture of";
    facade_options.generation.num_beams = 3;
    facade_options.generation.num_return_sequences = 2;
    facade_options.generation.max_new_tokens = 8;
    facade_options.generation.repetition_penalty = 1.3;
    blip::CaptionOptions library_options = library_defaults;
    library_options.prompt = "a picture of";
    library_options.generation.num_beams = 3;
    library_options.generation.num_return_sequences = 2;
    library_options.generation.max_new_tokens = 8;
    library_options.generation.repetition_penalty = 1.3;
    const auto library_batch = library.caption(images, library_options);
    const auto facade_batch = facade.caption_batch(paths, facade_options);
    std::vector<blip::api::ImageView> views;
    for (const blip::Image& image : images) views.push_back({image.rgb.data(), image.width, image.height});
    const auto facade_view_batch = facade.caption_batch(views, facade_options);
    REQUIRE(facade_batch.size() == 2);
    REQUIRE(facade_view_batch.size() == 2);
    for (std::size_t index = 0; index < 2; ++index) {
      CAPTURE(index);
      check_same(facade_batch[index], library_batch[index]);
      check_same(facade_view_batch[index], library_batch[index]);
    }
    check_same(facade.caption(views[1], facade_options), library_batch[1], 1e-5f);

    // Sampling with a seed: the same draws.
    facade_options.generation.do_sample = true;
    facade_options.generation.seed = 11;
    facade_options.generation.top_k = 5;
    library_options.generation.do_sample = true;
    library_options.generation.seed = 11;
    library_options.generation.top_k = 5;
    check_same(facade.caption(paths[1], facade_options), library.caption(std::vector<blip::Image>{images[1]}, library_options).front());
  }
}

TEST_CASE("facade Captioner: copies share the model and may caption from several threads") {
  if (!have_task_inputs("blip_caption", kBertTokenizer)) return;
  const blip::api::Captioner original =
      blip::api::Captioner::load(blip::test::fixture("blip_caption"), facade_load_options(kBertTokenizer));
  const blip::api::Captioner copy = original;  // shares the weights
  const std::string path = blip::test::two_photo_paths()[0];
  const blip::api::CaptionOptions options = original.default_options();
  const std::vector<blip::api::Caption> expected = original.caption(path, options);
  std::vector<blip::api::Caption> first, second;
  std::thread one([&] { first = original.caption(path, options); });
  std::thread two([&] { second = copy.caption(path, options); });
  one.join();
  two.join();
  REQUIRE(first.size() == 1);
  REQUIRE(second.size() == 1);
  CHECK(first[0].token_ids == expected[0].token_ids);
  CHECK(second[0].token_ids == expected[0].token_ids);
}

TEST_CASE("facade VisualQA (BLIP-2 OPT): the task class's answers") {
  if (!have_task_inputs("blip2_opt", kOptTokenizer)) return;
  const std::string model_dir = blip::test::fixture("blip2_opt");
  const blip::api::VisualQA facade = blip::api::VisualQA::load(model_dir, facade_load_options(kOptTokenizer));
  const blip::VisualQA library = blip::VisualQA::load(model_dir, library_load_options(kOptTokenizer));
  CHECK(facade.is_blip2());
  check_same_options(facade.default_options(), library.default_options());
  const std::vector<std::string> paths = blip::test::two_photo_paths();
  const std::vector<blip::Image> images = {blip::load_image(paths[0]), blip::load_image(paths[1])};
  const std::vector<std::string> questions = {"what is in the cup?", "where is the rocket?"};

  blip::api::GenerationOptions facade_options = facade.default_options();
  blip::generation::GenerationOptions library_options = library.default_options();
  check_same(facade.answer(paths[0], questions[0], facade_options),
             library.answer(std::vector<blip::Image>{images[0]}, {questions[0]}, library_options).front());
  facade_options.num_beams = library_options.num_beams = 2;
  facade_options.num_return_sequences = library_options.num_return_sequences = 2;
  facade_options.max_new_tokens = library_options.max_new_tokens = 6;
  const auto library_batch = library.answer(images, questions, library_options);
  const auto facade_batch = facade.answer_batch(paths, questions, facade_options);
  REQUIRE(facade_batch.size() == 2);
  for (std::size_t index = 0; index < 2; ++index) check_same(facade_batch[index], library_batch[index]);
  // One question alone (not padded to the batch's longest, so its score may differ from the batch's in the last bits).
  check_same(facade.answer(blip::api::ImageView{images[1].rgb.data(), images[1].width, images[1].height}, questions[1],
                           facade_options),
             library.answer(std::vector<blip::Image>{images[1]}, {questions[1]}, library_options).front());
}

TEST_CASE("facade ImageTextMatcher (BLIP): the task class's ITM probabilities, ITC similarities and embeddings") {
  if (!have_task_inputs("blip_itm", kBertTokenizer)) return;
  const std::string model_dir = blip::test::fixture("blip_itm");
  const blip::api::ImageTextMatcher facade =
      blip::api::ImageTextMatcher::load(model_dir, facade_load_options(kBertTokenizer));
  const blip::ImageTextMatcher library = blip::ImageTextMatcher::load(model_dir, library_load_options(kBertTokenizer));
  const std::vector<std::string> paths = blip::test::two_photo_paths();
  const std::vector<blip::Image> images = {blip::load_image(paths[0]), blip::load_image(paths[1])};
  const std::vector<std::string> texts = {"a cup of coffee", "a rocket on its launch pad", "a dog"};

  const blip::MatchTable table = library.match(images, texts);
  const auto scores = facade.match(paths, texts);
  REQUIRE(scores.size() == 2);
  for (std::int64_t image = 0; image < 2; ++image) {
    REQUIRE(scores[static_cast<std::size_t>(image)].size() == texts.size());
    for (std::int64_t text = 0; text < 3; ++text) {
      CAPTURE(image);
      CAPTURE(text);
      const blip::api::MatchScore& score = scores[static_cast<std::size_t>(image)][static_cast<std::size_t>(text)];
      CHECK(score.match_probability == table.match_probability.at(image, text));
      CHECK(score.similarity == table.similarity.at(image, text));
    }
  }

  const blip::Tensor<float> pixels = blip::make_pixel_values(images, library.folder().image_processor);
  const blip::Tensor<float> library_images = library.image_embeddings(pixels);
  const blip::Tensor<float> library_texts = library.text_embeddings(texts);
  const auto facade_images = facade.image_embeddings(paths);
  const auto facade_texts = facade.text_embeddings(texts);
  REQUIRE(facade_images.size() == 2);
  REQUIRE(facade_texts.size() == 3);
  const std::int64_t dimension = library_texts.dim(1);
  for (std::size_t image = 0; image < 2; ++image) {
    CHECK(facade_images[image].vectors == 1);
    REQUIRE(facade_images[image].dimension == dimension);
    CHECK(std::equal(facade_images[image].values.begin(), facade_images[image].values.end(),
                     library_images.data() + static_cast<std::int64_t>(image) * dimension));
  }
  for (std::size_t text = 0; text < 3; ++text) {
    REQUIRE(facade_texts[text].values.size() == static_cast<std::size_t>(dimension));
    CHECK(std::equal(facade_texts[text].values.begin(), facade_texts[text].values.end(),
                     library_texts.data() + static_cast<std::int64_t>(text) * dimension));
  }
}

TEST_CASE("facade PixelValues (preprocessed elsewhere): the task classes' results from the same pixel values") {
  if (!have_task_inputs("blip2_opt", kOptTokenizer) || !have_task_inputs("blip_itm", kBertTokenizer)) return;
  const std::vector<std::string> paths = blip::test::two_photo_paths();
  const std::vector<blip::Image> images = {blip::load_image(paths[0]), blip::load_image(paths[1])};
  const auto view_of = [](const blip::Tensor<float>& pixels) {
    return blip::api::PixelValues{pixels.data(), pixels.dim(0), pixels.dim(1), pixels.dim(2), pixels.dim(3)};
  };

  // BLIP-2 OPT captions and answers, from the pixel values its own processor makes.
  const std::string opt_dir = blip::test::fixture("blip2_opt");
  const blip::api::Captioner captioner = blip::api::Captioner::load(opt_dir, facade_load_options(kOptTokenizer));
  const blip::Captioner library_captioner = blip::Captioner::load(opt_dir, library_load_options(kOptTokenizer));
  const blip::Tensor<float> opt_pixels =
      blip::make_pixel_values(images, library_captioner.folder().image_processor);
  blip::api::CaptionOptions options = captioner.default_options();
  options.generation.num_beams = 2;
  blip::CaptionOptions library_options = library_captioner.default_options();
  library_options.generation.num_beams = 2;
  const auto captions = captioner.caption_batch(view_of(opt_pixels), options);
  const auto library_captions = library_captioner.caption(images, library_options);
  REQUIRE(captions.size() == 2);
  for (std::size_t index = 0; index < 2; ++index) check_same(captions[index], library_captions[index]);
  const blip::api::VisualQA visual_qa = blip::api::VisualQA::load(opt_dir, facade_load_options(kOptTokenizer));
  const blip::VisualQA library_qa = blip::VisualQA::load(opt_dir, library_load_options(kOptTokenizer));
  const std::vector<std::string> questions = {"what is it?", "where is it?"};
  const auto answers = visual_qa.answer_batch(view_of(opt_pixels), questions, visual_qa.default_options());
  const auto library_answers = library_qa.answer(images, questions, library_qa.default_options());
  REQUIRE(answers.size() == 2);
  for (std::size_t index = 0; index < 2; ++index) check_same(answers[index], library_answers[index]);

  // BLIP ITM scores and image embeddings.
  const std::string itm_dir = blip::test::fixture("blip_itm");
  const blip::api::ImageTextMatcher matcher =
      blip::api::ImageTextMatcher::load(itm_dir, facade_load_options(kBertTokenizer));
  const blip::ImageTextMatcher library_matcher =
      blip::ImageTextMatcher::load(itm_dir, library_load_options(kBertTokenizer));
  const blip::Tensor<float> itm_pixels = blip::make_pixel_values(images, library_matcher.folder().image_processor);
  const std::vector<std::string> texts = {"a cup of coffee", "a dog"};
  const blip::MatchTable table = library_matcher.match(itm_pixels, texts);
  const auto scores = matcher.match(view_of(itm_pixels), texts);
  for (std::int64_t image = 0; image < 2; ++image)
    for (std::int64_t text = 0; text < 2; ++text) {
      CHECK(scores[image][text].match_probability == table.match_probability.at(image, text));
      CHECK(scores[image][text].similarity == table.similarity.at(image, text));
    }
  const blip::Tensor<float> embeddings = library_matcher.image_embeddings(itm_pixels);
  const auto facade_embeddings = matcher.image_embeddings(view_of(itm_pixels));
  REQUIRE(facade_embeddings.size() == 2);
  CHECK(std::equal(facade_embeddings[1].values.begin(), facade_embeddings[1].values.end(),
                   embeddings.data() + embeddings.dim(1)));

  // What the facade checks itself, then the model's own check of the shape.
  const float value = 0.0f;
  CHECK_THROWS_WITH_AS(captioner.caption_batch(blip::api::PixelValues{}, options),
                       "pixel_values: PixelValues::data is null", blip::api::Error);
  CHECK_THROWS_WITH_AS(captioner.caption_batch(blip::api::PixelValues{&value, 1, 3, 0, 32}, options),
                       "pixel_values: shape [1, 3, 0, 32]; every size must be positive", blip::api::Error);
  const std::int64_t huge = std::int64_t{1} << 31;
  CHECK_THROWS_WITH_AS(captioner.caption_batch(blip::api::PixelValues{&value, huge, 3, huge, huge}, options),
                       "pixel_values: shape [2147483648, 3, 2147483648, 2147483648] holds more floats than memory can",
                       blip::api::Error);
  const std::int64_t twice = 2 * opt_pixels.dim(2);  // not the model's image size, whatever that is
  const std::vector<float> wrong_size(static_cast<std::size_t>(3 * twice * twice), 0.0f);
  const std::string shape_message = [&] {
    try {
      captioner.caption_batch(blip::api::PixelValues{wrong_size.data(), 1, 3, twice, twice}, options);
    } catch (const blip::api::Error& error) {
      return std::string(error.what());
    }
    return std::string();
  }();
  CHECK(shape_message.find("vision model: pixel_values has shape") != std::string::npos);
  const std::string count_message = "visual QA: 1 questions for pixel_values of shape [2, 3, " +
                                    std::to_string(opt_pixels.dim(2)) + ", " + std::to_string(opt_pixels.dim(3)) + "]";
  CHECK_THROWS_WITH_AS(visual_qa.answer_batch(view_of(opt_pixels), {"one question"}, visual_qa.default_options()),
                       count_message.c_str(), blip::api::Error);
}

TEST_CASE("facade errors are blip::api::Error with the library's message") {
  if (!have_task_inputs("blip_caption", kBertTokenizer)) return;
  const std::string captioning_dir = blip::test::fixture("blip_caption");
  const std::string missing_dir = blip::test::fixture("no_such_model_folder");
  check_same_error([&] { blip::api::Captioner::load(missing_dir, facade_load_options(kBertTokenizer)); },
                   [&] { blip::Captioner::load(missing_dir, library_load_options(kBertTokenizer)); });
  // A captioning folder is not a VQA model.
  check_same_error([&] { blip::api::VisualQA::load(captioning_dir, facade_load_options(kBertTokenizer)); },
                   [&] { blip::VisualQA::load(captioning_dir, library_load_options(kBertTokenizer)); });

  const blip::api::Captioner facade = blip::api::Captioner::load(captioning_dir, facade_load_options(kBertTokenizer));
  const blip::Captioner library = blip::Captioner::load(captioning_dir, library_load_options(kBertTokenizer));
  const std::string missing_image = blip::test::asset("images/no_such_photo.jpg");
  check_same_error([&] { facade.caption(missing_image, facade.default_options()); },
                   [&] { library.caption(blip::load_image(missing_image), library.default_options()); });
  blip::api::CaptionOptions too_many_returned = facade.default_options();
  too_many_returned.generation.num_return_sequences = 2;  // more than num_beams 1 (HF refuses it too)
  blip::CaptionOptions library_too_many = library.default_options();
  library_too_many.generation.num_return_sequences = 2;
  check_same_error([&] { facade.caption(blip::test::two_photo_paths()[0], too_many_returned); },
                   [&] { library.caption(blip::load_image(blip::test::two_photo_paths()[0]), library_too_many); });

  // The facade's own checks.
  blip::api::LoadOptions bad_precision = facade_load_options(kBertTokenizer);
  bad_precision.precision = "int3";
  CHECK_THROWS_WITH_AS(blip::api::Captioner::load(captioning_dir, bad_precision),
                       "LoadOptions::precision: 'int3' is not a precision; expected as-stored, f32, bf16, f16, int8 "
                       "or int4",
                       blip::api::Error);
  CHECK_THROWS_WITH_AS(blip::api::Captioner().default_options(),
                       "blip::api::Captioner: not loaded (use Captioner::load)", blip::api::Error);
  const std::uint8_t pixel[3] = {1, 2, 3};
  CHECK_THROWS_WITH_AS(facade.caption(blip::api::ImageView{pixel, 0, 1}, facade.default_options()),
                       "image 0: ImageView is 0x1 pixels; both must be positive", blip::api::Error);
  CHECK_THROWS_WITH_AS(facade.caption_batch(std::vector<std::string>{}, facade.default_options()),
                       "caption_batch: no image paths given", blip::api::Error);
}

}  // namespace facade_test
