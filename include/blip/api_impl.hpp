// blip/api_impl.hpp: the code behind blip/api.hpp, on the header-only task classes. Compiled once
// per program: by blip::compiled (src/blip_compiled.cpp), or in the one .cpp file of an application
// that defines BLIP_IMPLEMENTATION before including blip/api.hpp. Not meant to be included otherwise
// (its functions are not inline: a second translation unit would define them again).
#pragma once

#include <algorithm>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "blip/api.hpp"
#include "blip/blip.hpp"

namespace blip::api {

struct Captioner::Model {
  ::blip::Captioner task;
};
struct VisualQA::Model {
  ::blip::VisualQA task;
};
struct ImageTextMatcher::Model {
  ::blip::ImageTextMatcher task;
};

namespace {

// Every failure leaves the facade as blip::api::Error (= blip::Error, passed on as it is) or
// std::bad_alloc; anything else the standard library throws underneath (a filesystem error, say)
// becomes an Error with the same message.
template <class Call>
auto translating_errors(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& error) {
    throw Error(error.what());
  }
}

template <class Model>
const Model& loaded(const std::shared_ptr<const Model>& model, const char* task) {
  check(model != nullptr, "blip::api::", task, ": not loaded (use ", task, "::load)");
  return *model;
}

::blip::LoadOptions to_library(const LoadOptions& options) {
  ::blip::LoadOptions library;
  library.tokenizer_dir = options.tokenizer_dir;
  check(options.num_threads >= 0, "LoadOptions::num_threads: ", options.num_threads, " is negative (0 = the OpenMP default)");
  library.num_threads = options.num_threads;
  library.verbose = options.verbose;
  check(parse_weight_precision(options.precision, library.weight_precision), "LoadOptions::precision: '",
        clip(options.precision), "' is not a precision; expected as-stored, f32, bf16, f16, int8 or int4");
  check(parse_activation_precision(options.activations, library.activation_precision),
        "LoadOptions::activations: '", clip(options.activations), "' is not an activation precision; expected f32, bf16 or int8");
  return library;
}

GenerationOptions from_library(const generation::GenerationOptions& library) {
  GenerationOptions options;
  options.max_new_tokens = library.max_new_tokens;
  options.max_length = library.max_length;
  options.min_new_tokens = library.min_new_tokens;
  options.min_length = library.min_length;
  options.num_beams = library.num_beams;
  options.do_sample = library.do_sample;
  options.temperature = library.temperature;
  options.top_k = library.top_k;
  options.top_p = library.top_p;
  options.repetition_penalty = library.repetition_penalty;
  options.no_repeat_ngram_size = library.no_repeat_ngram_size;
  options.length_penalty = library.length_penalty;
  options.num_return_sequences = library.num_return_sequences;
  options.seed = library.seed;
  return options;
}

// The model's defaults with the facade's fields laid over them: the fields the facade does not
// have keep the model's values, so default_options() passed back generates as the library's
// default_options() does.
generation::GenerationOptions to_library(const GenerationOptions& options, generation::GenerationOptions library) {
  library.max_new_tokens = options.max_new_tokens;
  library.max_length = options.max_length;
  library.min_new_tokens = options.min_new_tokens;
  library.min_length = options.min_length;
  library.num_beams = options.num_beams;
  library.do_sample = options.do_sample;
  library.temperature = options.temperature;
  library.top_k = options.top_k;
  library.top_p = options.top_p;
  library.repetition_penalty = options.repetition_penalty;
  library.no_repeat_ngram_size = options.no_repeat_ngram_size;
  library.length_penalty = options.length_penalty;
  library.num_return_sequences = options.num_return_sequences;
  library.seed = options.seed;
  return library;
}

::blip::CaptionOptions to_library(const CaptionOptions& options, const ::blip::Captioner& captioner) {
  ::blip::CaptionOptions library = captioner.default_options();
  library.prompt = options.prompt;
  library.generation = to_library(options.generation, library.generation);
  return library;
}

::blip::Image to_library(const ImageView& view, std::size_t index) {
  check(view.rgb != nullptr, "image ", index, ": ImageView::rgb is null");
  check(view.width > 0 && view.height > 0, "image ", index, ": ImageView is ", view.width, "x", view.height,
        " pixels; both must be positive");
  check(static_cast<std::int64_t>(view.width) * view.height <= kDefaultMaxImagePixels, "image ", index, ": ",
        view.width, "x", view.height, " pixels is more than the ", kDefaultMaxImagePixels,
        " load_image accepts (Pillow's limit)");
  ::blip::Image image;
  image.width = view.width;
  image.height = view.height;
  image.rgb.assign(view.rgb, view.rgb + static_cast<std::size_t>(view.width) * view.height * 3);
  return image;
}

::blip::Tensor<float> to_library(const PixelValues& pixels) {
  check(pixels.data != nullptr, "pixel_values: PixelValues::data is null");
  check(pixels.batch > 0 && pixels.channels > 0 && pixels.height > 0 && pixels.width > 0, "pixel_values: shape [",
        pixels.batch, ", ", pixels.channels, ", ", pixels.height, ", ", pixels.width, "]; every size must be positive");
  const std::int64_t limit = std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(sizeof(float));
  check(pixels.channels <= limit / pixels.batch && pixels.height <= limit / (pixels.batch * pixels.channels) &&
            pixels.width <= limit / (pixels.batch * pixels.channels * pixels.height),
        "pixel_values: shape [", pixels.batch, ", ", pixels.channels, ", ", pixels.height, ", ", pixels.width,
        "] holds more floats than memory can");
  ::blip::Tensor<float> tensor(Shape{pixels.batch, pixels.channels, pixels.height, pixels.width});
  std::copy(pixels.data, pixels.data + tensor.numel(), tensor.data());
  return tensor;
}

std::vector<::blip::Image> to_library(const std::vector<ImageView>& views) {
  std::vector<::blip::Image> images;
  images.reserve(views.size());
  for (std::size_t index = 0; index < views.size(); ++index) images.push_back(to_library(views[index], index));
  return images;
}

std::vector<Caption> from_library(const std::vector<::blip::Caption>& library) {
  std::vector<Caption> captions;
  captions.reserve(library.size());
  for (const ::blip::Caption& caption : library) captions.push_back({caption.text, caption.token_ids, caption.score});
  return captions;
}

std::vector<std::vector<Caption>> from_library(const std::vector<std::vector<::blip::Caption>>& library) {
  std::vector<std::vector<Caption>> captions;
  captions.reserve(library.size());
  for (const auto& per_image : library) captions.push_back(from_library(per_image));
  return captions;
}

std::vector<std::vector<MatchScore>> from_library(const MatchTable& table) {
  const std::int64_t images = table.match_probability.dim(0), texts = table.match_probability.dim(1);
  std::vector<std::vector<MatchScore>> scores(static_cast<std::size_t>(images));
  for (std::int64_t image = 0; image < images; ++image) {
    for (std::int64_t text = 0; text < texts; ++text)
      scores[static_cast<std::size_t>(image)].push_back(
          {table.match_probability.at(image, text), table.similarity.at(image, text)});
  }
  return scores;
}

// [N, D] (one vector per item) or [N, Q, D] (BLIP-2 images: Q per item) into one Embedding per item.
std::vector<Embedding> from_library(const Tensor<float>& embeddings) {
  check(embeddings.rank() == 2 || embeddings.rank() == 3, "embeddings: expected [N, D] or [N, Q, D], got ",
        embeddings.shape());
  const std::int64_t items = embeddings.dim(0);
  const std::int64_t vectors = embeddings.rank() == 3 ? embeddings.dim(1) : 1;
  const std::int64_t dimension = embeddings.dim(embeddings.rank() - 1);
  std::vector<Embedding> result(static_cast<std::size_t>(items));
  for (std::int64_t item = 0; item < items; ++item) {
    Embedding& embedding = result[static_cast<std::size_t>(item)];
    embedding.vectors = vectors;
    embedding.dimension = dimension;
    const float* first = embeddings.data() + item * vectors * dimension;
    embedding.values.assign(first, first + vectors * dimension);
  }
  return result;
}

}  // namespace

// ---- Captioner ----------------------------------------------------------------

Captioner::Captioner() = default;

Captioner Captioner::load(const std::string& model_dir, const LoadOptions& options) {
  return translating_errors([&] {
    Captioner captioner;
    captioner.model_ = std::make_shared<const Model>(Model{::blip::Captioner::load(model_dir, to_library(options))});
    return captioner;
  });
}

CaptionOptions Captioner::default_options() const {
  return translating_errors([&] {
    const ::blip::CaptionOptions library = loaded(model_, "Captioner").task.default_options();
    return CaptionOptions{library.prompt, from_library(library.generation)};
  });
}

std::vector<std::vector<Caption>> Captioner::caption_batch(const PixelValues& pixels,
                                                          const CaptionOptions& options) const {
  return translating_errors([&] {
    const ::blip::Captioner& task = loaded(model_, "Captioner").task;
    return from_library(task.caption(to_library(pixels), to_library(options, task)));
  });
}

std::vector<Caption> Captioner::caption(const std::string& image_path, const CaptionOptions& options) const {
  return translating_errors([&] { return caption_batch(std::vector<std::string>{image_path}, options).front(); });
}

std::vector<Caption> Captioner::caption(const ImageView& image, const CaptionOptions& options) const {
  return translating_errors([&] { return caption_batch(std::vector<ImageView>{image}, options).front(); });
}

std::vector<std::vector<Caption>> Captioner::caption_batch(const std::vector<std::string>& image_paths,
                                                           const CaptionOptions& options) const {
  return translating_errors([&] {
    const ::blip::Captioner& task = loaded(model_, "Captioner").task;
    check(!image_paths.empty(), "caption_batch: no image paths given");
    const Tensor<float> pixels = load_preprocessed_batch(image_paths, task.folder().image_processor);
    return from_library(task.caption(pixels, to_library(options, task)));
  });
}

std::vector<std::vector<Caption>> Captioner::caption_batch(const std::vector<ImageView>& images,
                                                           const CaptionOptions& options) const {
  return translating_errors([&] {
    const ::blip::Captioner& task = loaded(model_, "Captioner").task;
    check(!images.empty(), "caption_batch: no images given");
    return from_library(task.caption(to_library(images), to_library(options, task)));
  });
}

bool Captioner::is_blip2() const {
  return translating_errors([&] { return loaded(model_, "Captioner").task.is_blip2(); });
}

const std::string& Captioner::model_dir() const {
  return translating_errors([&]() -> const std::string& { return loaded(model_, "Captioner").task.folder().directory; });
}

// ---- VisualQA -------------------------------------------------------------------

VisualQA::VisualQA() = default;

VisualQA VisualQA::load(const std::string& model_dir, const LoadOptions& options) {
  return translating_errors([&] {
    VisualQA vqa;
    vqa.model_ = std::make_shared<const Model>(Model{::blip::VisualQA::load(model_dir, to_library(options))});
    return vqa;
  });
}

GenerationOptions VisualQA::default_options() const {
  return translating_errors([&] { return from_library(loaded(model_, "VisualQA").task.default_options()); });
}

std::vector<Answer> VisualQA::answer(const std::string& image_path, const std::string& question,
                                     const GenerationOptions& options) const {
  return translating_errors([&] {
    return answer_batch(std::vector<std::string>{image_path}, std::vector<std::string>{question}, options).front();
  });
}

std::vector<Answer> VisualQA::answer(const ImageView& image, const std::string& question,
                                     const GenerationOptions& options) const {
  return translating_errors([&] {
    return answer_batch(std::vector<ImageView>{image}, std::vector<std::string>{question}, options).front();
  });
}

std::vector<std::vector<Answer>> VisualQA::answer_batch(const std::vector<std::string>& image_paths,
                                                        const std::vector<std::string>& questions,
                                                        const GenerationOptions& options) const {
  return translating_errors([&] {
    const ::blip::VisualQA& task = loaded(model_, "VisualQA").task;
    check(!image_paths.empty(), "answer_batch: no image paths given");
    check(image_paths.size() == questions.size(), "answer_batch: ", image_paths.size(), " images but ",
          questions.size(), " questions");
    std::vector<::blip::Image> images;
    images.reserve(image_paths.size());
    for (const std::string& path : image_paths) images.push_back(load_image(path));
    return from_library(task.answer(images, questions, to_library(options, task.default_options())));
  });
}

std::vector<std::vector<Answer>> VisualQA::answer_batch(const std::vector<ImageView>& images,
                                                        const std::vector<std::string>& questions,
                                                        const GenerationOptions& options) const {
  return translating_errors([&] {
    const ::blip::VisualQA& task = loaded(model_, "VisualQA").task;
    check(!images.empty(), "answer_batch: no images given");
    check(images.size() == questions.size(), "answer_batch: ", images.size(), " images but ", questions.size(),
          " questions");
    return from_library(task.answer(to_library(images), questions, to_library(options, task.default_options())));
  });
}

std::vector<std::vector<Answer>> VisualQA::answer_batch(const PixelValues& pixels,
                                                        const std::vector<std::string>& questions,
                                                        const GenerationOptions& options) const {
  return translating_errors([&] {
    const ::blip::VisualQA& task = loaded(model_, "VisualQA").task;
    return from_library(task.answer(to_library(pixels), questions, to_library(options, task.default_options())));
  });
}

bool VisualQA::is_blip2() const {
  return translating_errors([&] { return loaded(model_, "VisualQA").task.is_blip2(); });
}

const std::string& VisualQA::model_dir() const {
  return translating_errors([&]() -> const std::string& { return loaded(model_, "VisualQA").task.folder().directory; });
}

// ---- ImageTextMatcher -------------------------------------------------------------

ImageTextMatcher::ImageTextMatcher() = default;

ImageTextMatcher ImageTextMatcher::load(const std::string& model_dir, const LoadOptions& options) {
  return translating_errors([&] {
    ImageTextMatcher matcher;
    matcher.model_ =
        std::make_shared<const Model>(Model{::blip::ImageTextMatcher::load(model_dir, to_library(options))});
    return matcher;
  });
}

std::vector<std::vector<MatchScore>> ImageTextMatcher::match(const std::vector<std::string>& image_paths,
                                                             const std::vector<std::string>& texts) const {
  return translating_errors([&] {
    const ::blip::ImageTextMatcher& task = loaded(model_, "ImageTextMatcher").task;
    check(!image_paths.empty(), "match: no image paths given");
    return from_library(task.match(load_preprocessed_batch(image_paths, task.folder().image_processor), texts));
  });
}

std::vector<std::vector<MatchScore>> ImageTextMatcher::match(const std::vector<ImageView>& images,
                                                             const std::vector<std::string>& texts) const {
  return translating_errors([&] {
    const ::blip::ImageTextMatcher& task = loaded(model_, "ImageTextMatcher").task;
    check(!images.empty(), "match: no images given");
    return from_library(task.match(to_library(images), texts));
  });
}

std::vector<std::vector<MatchScore>> ImageTextMatcher::match(const PixelValues& pixels,
                                                             const std::vector<std::string>& texts) const {
  return translating_errors(
      [&] { return from_library(loaded(model_, "ImageTextMatcher").task.match(to_library(pixels), texts)); });
}

std::vector<Embedding> ImageTextMatcher::image_embeddings(const PixelValues& pixels) const {
  return translating_errors(
      [&] { return from_library(loaded(model_, "ImageTextMatcher").task.image_embeddings(to_library(pixels))); });
}

std::vector<Embedding> ImageTextMatcher::image_embeddings(const std::vector<std::string>& image_paths) const {
  return translating_errors([&] {
    const ::blip::ImageTextMatcher& task = loaded(model_, "ImageTextMatcher").task;
    check(!image_paths.empty(), "image_embeddings: no image paths given");
    return from_library(task.image_embeddings(load_preprocessed_batch(image_paths, task.folder().image_processor)));
  });
}

std::vector<Embedding> ImageTextMatcher::image_embeddings(const std::vector<ImageView>& images) const {
  return translating_errors([&] {
    const ::blip::ImageTextMatcher& task = loaded(model_, "ImageTextMatcher").task;
    check(!images.empty(), "image_embeddings: no images given");
    return from_library(task.image_embeddings(make_pixel_values(to_library(images), task.folder().image_processor)));
  });
}

std::vector<Embedding> ImageTextMatcher::text_embeddings(const std::vector<std::string>& texts) const {
  return translating_errors([&] { return from_library(loaded(model_, "ImageTextMatcher").task.text_embeddings(texts)); });
}

bool ImageTextMatcher::is_blip2() const {
  return translating_errors([&] { return loaded(model_, "ImageTextMatcher").task.is_blip2(); });
}

const std::string& ImageTextMatcher::model_dir() const {
  return translating_errors(
      [&]() -> const std::string& { return loaded(model_, "ImageTextMatcher").task.folder().directory; });
}

}  // namespace blip::api
