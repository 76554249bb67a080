// The task classes users hold (Captioner, VisualQA, ImageTextMatcher) on the
// tiny fixture models with the real BERT tokenizer: batching, agreement with
// the model-level calls the fixture tests check against Hugging Face, and
// clear errors for bad input.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../../weights_tools/model_weights.hpp"
#include "blip/blip.hpp"
#include "test_support.hpp"

namespace blip_tasks_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

bool have_inputs() {
  return blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture") &&
         blip::test::have_or_skip(blip::test::asset("tokenizers/blip-image-captioning-base"), "BERT tokenizer") &&
         blip::test::have_or_skip(blip::test::asset("images"), "photos");
}

blip::LoadOptions with_tokenizer() {
  blip::LoadOptions options;
  options.tokenizer_dir = blip::test::asset("tokenizers/blip-image-captioning-base");
  return options;
}

std::vector<blip::Image> photos() {
  return {blip::load_image(blip::test::asset("images/skimage_coffee.png")),
          blip::load_image(blip::test::asset("images/coco_val2017_000000039769.png")),
          blip::load_image(blip::test::asset("images/skimage_rocket.jpg"))};
}

}  // namespace

TEST_CASE("Captioner: a batch gives each image the caption it gets alone") {
  if (!have_inputs()) return;
  const blip::Captioner captioner = blip::Captioner::load(blip::test::fixture("blip_caption"), with_tokenizer());
  blip::CaptionOptions options = captioner.default_options();
  options.generation.max_new_tokens = 8;
  options.generation.num_beams = 3;
  options.generation.num_return_sequences = 2;
  const std::vector<blip::Image> images = photos();
  const auto batch = captioner.caption(images, options);
  REQUIRE(batch.size() == images.size());
  for (std::size_t index = 0; index < images.size(); ++index) {
    const auto alone = captioner.caption(std::vector<blip::Image>{images[index]}, options);
    REQUIRE(batch[index].size() == 2);
    for (std::size_t rank = 0; rank < 2; ++rank) {
      CHECK(batch[index][rank].text == alone[0][rank].text);
      CHECK(batch[index][rank].score == doctest::Approx(alone[0][rank].score).epsilon(1e-5));
    }
    CHECK(batch[index][0].score >= batch[index][1].score);  // best first
    CHECK(batch[index][0].token_ids.front() == 30522);      // [DEC] heads every sequence
  }
}

TEST_CASE("Captioner: with layers deeper than one depth block, 5 images x 3 beams give each image its bits alone") {
  // The fixture's MLPs are 64 wide; here 800, so Linear's depth-blocked driver (more than 12 rows: 5 images x 3
  // beams = 15 decode rows) sums their second layer in three depth blocks, while one image's 3 beams go to the
  // streamed driver (one call over the whole depth). Both must give the same bits (kernels/linear.hpp: resumed
  // depth blocks). Before session 15 they did not, and at real model sizes batched beam scores differed from
  // each image's alone in the last digits. Random weights: near-ties everywhere, so any difference shows.
  if (!have_inputs()) return;
  nlohmann::json config = blip::test::load_json(blip::test::fixture("blip_caption/config.json"));
  config["text_config"]["intermediate_size"] = 800;
  config["vision_config"]["intermediate_size"] = 800;
  // Weights 10x HF's initializer range, so that the MLPs' last bits are not lost in the residual stream.
  config["initializer_range"] = 0.2;
  const std::filesystem::path config_folder = blip::test::scratch_dir("blip_tasks", "wide_caption_config");
  blip::test::write_text(config_folder / "config.json", config.dump(2));
  const std::filesystem::path model_folder = blip::test::scratch_dir("blip_tasks", "wide_caption");
  blip::weights_tools::RandomOptions random;
  random.seed = 15;
  blip::weights_tools::make_random_checkpoint(config_folder.string(), model_folder.string(), random);
  std::vector<blip::Image> images = photos();
  images.push_back(blip::load_image(blip::test::asset("images/skimage_camera_gray.png")));
  images.push_back(blip::load_image(blip::test::asset("images/flickr8k_2108799322_e25aa6e185.jpg")));
  struct Setting {
    blip::WeightPrecision weights;
    blip::ActivationPrecision activations;
  };
  for (const Setting setting : {Setting{blip::WeightPrecision::AsStored, blip::ActivationPrecision::F32},
                                Setting{blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16},
                                Setting{blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8},
                                Setting{blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8}}) {
    blip::LoadOptions load_options = with_tokenizer();
    load_options.weight_precision = setting.weights;
    load_options.activation_precision = setting.activations;
    const blip::Captioner captioner = blip::Captioner::load(model_folder.string(), load_options);
    blip::CaptionOptions options = captioner.default_options();
    options.generation.max_new_tokens = 10;
    options.generation.num_beams = 3;
    options.generation.num_return_sequences = 3;
    const auto batch = captioner.caption(images, options);
    REQUIRE(batch.size() == images.size());
    for (std::size_t index = 0; index < images.size(); ++index) {
      const auto alone = captioner.caption(std::vector<blip::Image>{images[index]}, options);
      const std::string precision = blip::weight_precision_name(setting.weights);
      CAPTURE(precision);
      CAPTURE(index);
      REQUIRE(batch[index].size() == 3);
      for (std::size_t rank = 0; rank < 3; ++rank) {
        CHECK(batch[index][rank].token_ids == alone[0][rank].token_ids);
        CHECK(batch[index][rank].score == alone[0][rank].score);  // bit for bit
      }
    }
  }
}

TEST_CASE("Captioner: a prompt starts the caption, as BlipProcessor + generate do") {
  if (!have_inputs()) return;
  const blip::Captioner captioner = blip::Captioner::load(blip::test::fixture("blip_caption"), with_tokenizer());
  blip::CaptionOptions options = captioner.default_options();
  options.prompt = "A picture of";
  options.generation.max_new_tokens = 5;
  const blip::Caption caption = captioner.caption(photos(), options)[0][0];
  CHECK(caption.text.rfind("a picture of", 0) == 0);  // lowercased by the uncased tokenizer
  // [DEC] replaces [CLS]; the prompt's [SEP] is dropped.
  CHECK(caption.token_ids[0] == 30522);
  CHECK(caption.token_ids[1] == 1037);
  CHECK(caption.token_ids[3] == 1997);
}

TEST_CASE("ImageTextMatcher: the table agrees with the model's ITM and ITC") {
  const std::string model_dir = blip::test::fixture("blip_itm");
  if (!have_inputs() || !blip::test::have_or_skip(model_dir, "blip_itm fixture")) return;
  const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(model_dir, with_tokenizer());
  const std::vector<blip::Image> images = photos();
  const std::vector<std::string> texts = {"a cup of coffee", "two cats sleeping on a pink blanket", "a rocket"};
  const blip::MatchTable table = matcher.match(images, texts);
  REQUIRE(table.match_probability.shape() == blip::Shape{3, 3});
  REQUIRE(table.similarity.shape() == blip::Shape{3, 3});

  // Image i against text j alone, through the model-level calls.
  const blip::Tensor<float> pixels = blip::make_pixel_values(images, matcher.folder().image_processor);
  const blip::ImageEmbeddings embeddings = matcher.model().vision_model.forward(pixels);
  for (std::int64_t text = 0; text < 3; ++text) {
    const blip::Encoding encoding = matcher.folder().tokenizer->encode(texts[static_cast<std::size_t>(text)]);
    blip::Tensor<std::int64_t> ids(blip::Shape{3, static_cast<std::int64_t>(encoding.ids.size())});
    for (std::int64_t row = 0; row < 3; ++row) std::copy(encoding.ids.begin(), encoding.ids.end(), ids[row].data());
    const auto matching = matcher.model().image_text_matching(embeddings, ids, {});
    const auto contrastive = matcher.model().image_text_contrastive(embeddings, ids.slice(0, 1), {});
    for (std::int64_t image = 0; image < 3; ++image) {
      const float no = matching.logits.at(image, 0), yes = matching.logits.at(image, 1);
      CHECK(table.match_probability.at(image, text) == doctest::Approx(1.0 / (1.0 + std::exp(no - yes))).epsilon(1e-5));
      CHECK(table.similarity.at(image, text) == doctest::Approx(contrastive.similarity.at(image, 0)).epsilon(1e-5));
    }
  }
}

TEST_CASE("ImageTextMatcher: the cosine of an image's and a text's embeddings is their ITC similarity") {
  const std::string model_dir = blip::test::fixture("blip_itm");
  if (!have_inputs() || !blip::test::have_or_skip(model_dir, "blip_itm fixture")) return;
  const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(model_dir, with_tokenizer());
  const std::vector<blip::Image> images = photos();
  const std::vector<std::string> texts = {"a cup of coffee", "two cats sleeping on a pink blanket"};
  const blip::MatchTable table = matcher.match(images, texts);
  const blip::Tensor<float> image_embeddings =
      matcher.image_embeddings(blip::make_pixel_values(images, matcher.folder().image_processor));
  // One text at a time: an embedding does not depend on the batch it came in.
  const blip::Tensor<float> text_embeddings = matcher.text_embeddings({texts[1]});
  const std::int64_t width = matcher.model().config.image_text_hidden_size;
  REQUIRE(image_embeddings.shape() == blip::Shape{3, width});
  REQUIRE(text_embeddings.shape() == blip::Shape{1, width});
  auto dot = [width](const float* a, const float* b) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < width; ++i) sum += static_cast<double>(a[i]) * b[i];
    return sum;
  };
  for (std::int64_t image = 0; image < 3; ++image) {
    const float* image_vector = image_embeddings.data() + image * width;
    CHECK(dot(image_vector, image_vector) == doctest::Approx(1.0).epsilon(1e-5));
    CHECK(dot(image_vector, text_embeddings.data()) == doctest::Approx(table.similarity.at(image, 1)).epsilon(1e-5));
  }
  CHECK(dot(text_embeddings.data(), text_embeddings.data()) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK_THROWS_WITH_AS(matcher.text_embeddings({"a cat", ""}), doctest::Contains("text 1 is empty"), blip::Error);
}

TEST_CASE("tasks: bad input gets a clear error") {
  if (!have_inputs()) return;
  const blip::Captioner captioner = blip::Captioner::load(blip::test::fixture("blip_caption"), with_tokenizer());
  // Over-long text: more positions than the text model has (512).
  blip::CaptionOptions options = captioner.default_options();
  std::string long_prompt;
  for (int word = 0; word < 600; ++word) long_prompt += "word ";
  options.prompt = long_prompt;
  // With HF's default max_length (20, prompt included) the length check speaks first ...
  CHECK_THROWS_WITH_AS(captioner.caption(photos(), options), doctest::Contains("max_length"), blip::Error);
  // ... and with room for new tokens, the text model's position table does.
  options.generation.max_new_tokens = 5;
  CHECK_THROWS_WITH_AS(captioner.caption(photos(), options), doctest::Contains("max_position_embeddings"), blip::Error);
  CHECK_THROWS_WITH_AS(captioner.caption(std::vector<blip::Image>{}, captioner.default_options()),
                       doctest::Contains("no images"), blip::Error);
  // A folder of another architecture.
  CHECK_THROWS_WITH_AS(blip::VisualQA::load(blip::test::fixture("blip_caption"), with_tokenizer()),
                       doctest::Contains("BlipForQuestionAnswering"), blip::Error);
  if (blip::test::have_or_skip(blip::test::fixture("blip_vqa"), "blip_vqa fixture")) {
    const blip::VisualQA vqa = blip::VisualQA::load(blip::test::fixture("blip_vqa"), with_tokenizer());
    CHECK_THROWS_WITH_AS(vqa.answer(photos()[0], ""), doctest::Contains("empty"), blip::Error);
    CHECK_THROWS_WITH_AS(vqa.answer(photos(), {"one question"}, vqa.default_options()),
                         doctest::Contains("questions"), blip::Error);
  }
  // A missing model folder names the folder.
  CHECK_THROWS_WITH_AS(blip::Captioner::load("/nonexistent/model"), doctest::Contains("/nonexistent/model"),
                       blip::Error);
}

}  // namespace blip_tasks_test
