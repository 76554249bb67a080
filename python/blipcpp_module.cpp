// _blipcpp: the C++ facade (blip/api.hpp) as a Python extension module, for the blipcpp package
// (python/blipcpp/__init__.py), which is what users import: it adds from_pretrained, images as paths,
// numpy arrays or PIL images, and generation options as keyword arguments.
//
// Here: one Python class per task over the facade's, its calls taking the three forms of images the
// facade takes (files, RGB pixels, preprocessed pixel_values), and the interpreter lock released while
// a model runs, so that other Python threads go on meanwhile (the facade's objects are immutable and may
// be used from several threads at once). Inputs are converted to C++ values while the lock is held; the
// numpy buffers the pixels point into stay referenced by the call's own arguments until it returns.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "blip/api.hpp"

namespace py = pybind11;

namespace {

using blip::api::Caption;
using blip::api::Embedding;
using blip::api::GenerationOptions;
using blip::api::ImageView;
using blip::api::MatchScore;
using blip::api::PixelValues;

// "(2, 3, 4)", as numpy prints a shape.
std::string shape_text(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t axis = 0; axis < array.ndim(); ++axis)
    text += (axis > 0 ? ", " : "") + std::to_string(array.shape(axis));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// Pixel values: float32, C order, [batch, channels, height, width] (numpy converts other float types and
// layouts on the way in; the model checks the sizes).
using PixelArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

PixelValues pixel_values_of(const PixelArray& array) {
  if (array.ndim() != 4)
    throw py::value_error("pixel_values must be [batch, 3, height, width], got shape " + shape_text(array));
  return PixelValues{array.data(), array.shape(0), array.shape(1), array.shape(2), array.shape(3)};
}

// RGB images: uint8 arrays [height, width, 3] in C order (the package makes them so; anything else here is a
// caller's mistake, named).
std::vector<ImageView> image_views_of(const std::vector<py::array>& images) {
  std::vector<ImageView> views;
  for (std::size_t index = 0; index < images.size(); ++index) {
    const py::array& image = images[index];
    const std::string name = "images[" + std::to_string(index) + "]";
    if (!image.dtype().is(py::dtype::of<std::uint8_t>()))
      throw py::value_error(name + ": expected uint8 pixels, got dtype " + std::string(py::str(image.dtype())));
    if (image.ndim() != 3 || image.shape(2) != 3)
      throw py::value_error(name + ": expected a [height, width, 3] RGB array, got shape " + shape_text(image));
    if (!(image.flags() & py::array::c_style)) throw py::value_error(name + ": the array is not C-contiguous");
    if (image.shape(0) > INT32_MAX || image.shape(1) > INT32_MAX)
      throw py::value_error(name + ": more than 2^31 rows or columns");
    views.push_back({static_cast<const std::uint8_t*>(image.data()), static_cast<int>(image.shape(1)),
                     static_cast<int>(image.shape(0))});
  }
  return views;
}

blip::api::LoadOptions load_options(const std::string& tokenizer_dir, const std::string& precision,
                                    const std::string& activations, int num_threads, bool verbose) {
  blip::api::LoadOptions options;
  options.tokenizer_dir = tokenizer_dir;
  options.precision = precision;
  options.activations = activations;
  options.num_threads = num_threads;
  options.verbose = verbose;
  return options;
}

// Match scores as two [images, texts] arrays: match probabilities and similarities.
py::tuple score_arrays(const std::vector<std::vector<MatchScore>>& table) {
  const py::ssize_t images = static_cast<py::ssize_t>(table.size());
  const py::ssize_t texts = images > 0 ? static_cast<py::ssize_t>(table.front().size()) : 0;
  py::array_t<float> probabilities({images, texts}), similarities({images, texts});
  auto probability = probabilities.mutable_unchecked<2>();
  auto similarity = similarities.mutable_unchecked<2>();
  for (py::ssize_t image = 0; image < images; ++image)
    for (py::ssize_t text = 0; text < texts; ++text) {
      probability(image, text) = table[image][text].match_probability;
      similarity(image, text) = table[image][text].similarity;
    }
  return py::make_tuple(probabilities, similarities);
}

// Embeddings as one array: [items, dimension] (one vector each) or [items, vectors, dimension] (BLIP-2 images).
py::array_t<float> embedding_array(const std::vector<Embedding>& embeddings) {
  const Embedding& first = embeddings.front();  // the facade never returns none
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(embeddings.size())};
  if (first.vectors > 1) shape.push_back(first.vectors);
  shape.push_back(first.dimension);
  py::array_t<float> array(shape);
  float* out = array.mutable_data();
  for (const Embedding& embedding : embeddings) out = std::copy(embedding.values.begin(), embedding.values.end(), out);
  return array;
}

// Runs `call` (the model) with the interpreter lock released; the result is converted to Python objects by the
// caller, with the lock held again.
template <class Call>
auto without_lock(Call&& call) -> decltype(call()) {
  py::gil_scoped_release release;
  return call();
}

// A task's Python class with what all three share: load() (a folder or cached Hub id, and LoadOptions'
// fields), is_blip2 and model_dir.
template <class Task>
py::class_<Task> task_class(py::module_& module, const char* name) {
  py::class_<Task> task(module, name);
  task.def_static(
          "load",
          [](const std::string& model_dir, const std::string& tokenizer_dir, const std::string& precision,
             const std::string& activations, int num_threads, bool verbose) {
            const blip::api::LoadOptions options = load_options(tokenizer_dir, precision, activations, num_threads, verbose);
            return without_lock([&] { return Task::load(model_dir, options); });
          },
          py::arg("model_dir"), py::arg("tokenizer_dir"), py::arg("precision"), py::arg("activations"),
          py::arg("num_threads"), py::arg("verbose"))
      .def_property_readonly("is_blip2", &Task::is_blip2)
      .def_property_readonly("model_dir", &Task::model_dir);
  return task;
}

}  // namespace

PYBIND11_MODULE(_blipcpp, module) {
  module.doc() = "blipcpp's C++ facade (blip/api.hpp); import the blipcpp package instead.";
  module.attr("__version__") = BLIP_PROJECT_VERSION;
  // The library's one error type: a file, tensor, config, image, text or option that is not what it must be.
  py::register_exception<blip::api::Error>(module, "Error", PyExc_RuntimeError);

  py::class_<GenerationOptions>(module, "GenerationOptions",
                                "How to generate: Hugging Face's GenerationConfig names and meanings.")
      .def(py::init<>())
      .def_readwrite("max_new_tokens", &GenerationOptions::max_new_tokens)
      .def_readwrite("max_length", &GenerationOptions::max_length)
      .def_readwrite("min_new_tokens", &GenerationOptions::min_new_tokens)
      .def_readwrite("min_length", &GenerationOptions::min_length)
      .def_readwrite("num_beams", &GenerationOptions::num_beams)
      .def_readwrite("do_sample", &GenerationOptions::do_sample)
      .def_readwrite("temperature", &GenerationOptions::temperature)
      .def_readwrite("top_k", &GenerationOptions::top_k)
      .def_readwrite("top_p", &GenerationOptions::top_p)
      .def_readwrite("repetition_penalty", &GenerationOptions::repetition_penalty)
      .def_readwrite("no_repeat_ngram_size", &GenerationOptions::no_repeat_ngram_size)
      .def_readwrite("length_penalty", &GenerationOptions::length_penalty)
      .def_readwrite("num_return_sequences", &GenerationOptions::num_return_sequences)
      .def_readwrite("seed", &GenerationOptions::seed);

  py::class_<Caption>(module, "Caption", "A generated caption or answer.")
      .def_readonly("text", &Caption::text)
      .def_readonly("token_ids", &Caption::token_ids)
      .def_readonly("score", &Caption::score)
      .def("__repr__", [](const Caption& caption) {
        return "Caption(text=" + std::string(py::repr(py::str(caption.text))) + ", score=" +
               std::string(py::repr(py::float_(caption.score))) + ")";
      });

  task_class<blip::api::Captioner>(module, "Captioner")
      .def("default_options", [](const blip::api::Captioner& self) { return self.default_options().generation; })
      .def(
          "caption_files",
          [](const blip::api::Captioner& self, const std::vector<std::string>& paths, const std::string& prompt,
             const GenerationOptions& generation) {
            const blip::api::CaptionOptions options{prompt, generation};
            return without_lock([&] { return self.caption_batch(paths, options); });
          },
          py::arg("paths"), py::arg("prompt"), py::arg("options"))
      .def(
          "caption_pixels",
          [](const blip::api::Captioner& self, const std::vector<py::array>& images, const std::string& prompt,
             const GenerationOptions& generation) {
            const std::vector<ImageView> views = image_views_of(images);
            const blip::api::CaptionOptions options{prompt, generation};
            return without_lock([&] { return self.caption_batch(views, options); });
          },
          py::arg("images"), py::arg("prompt"), py::arg("options"))
      .def(
          "caption_pixel_values",
          [](const blip::api::Captioner& self, const PixelArray& pixel_values, const std::string& prompt,
             const GenerationOptions& generation) {
            const PixelValues pixels = pixel_values_of(pixel_values);
            const blip::api::CaptionOptions options{prompt, generation};
            return without_lock([&] { return self.caption_batch(pixels, options); });
          },
          py::arg("pixel_values"), py::arg("prompt"), py::arg("options"));

  task_class<blip::api::VisualQA>(module, "VisualQA")
      .def("default_options", &blip::api::VisualQA::default_options)
      .def(
          "answer_files",
          [](const blip::api::VisualQA& self, const std::vector<std::string>& paths,
             const std::vector<std::string>& questions, const GenerationOptions& options) {
            return without_lock([&] { return self.answer_batch(paths, questions, options); });
          },
          py::arg("paths"), py::arg("questions"), py::arg("options"))
      .def(
          "answer_pixels",
          [](const blip::api::VisualQA& self, const std::vector<py::array>& images,
             const std::vector<std::string>& questions, const GenerationOptions& options) {
            const std::vector<ImageView> views = image_views_of(images);
            return without_lock([&] { return self.answer_batch(views, questions, options); });
          },
          py::arg("images"), py::arg("questions"), py::arg("options"))
      .def(
          "answer_pixel_values",
          [](const blip::api::VisualQA& self, const PixelArray& pixel_values, const std::vector<std::string>& questions,
             const GenerationOptions& options) {
            const PixelValues pixels = pixel_values_of(pixel_values);
            return without_lock([&] { return self.answer_batch(pixels, questions, options); });
          },
          py::arg("pixel_values"), py::arg("questions"), py::arg("options"));

  task_class<blip::api::ImageTextMatcher>(module, "ImageTextMatcher")
      .def(
          "match_files",
          [](const blip::api::ImageTextMatcher& self, const std::vector<std::string>& paths,
             const std::vector<std::string>& texts) {
            return score_arrays(without_lock([&] { return self.match(paths, texts); }));
          },
          py::arg("paths"), py::arg("texts"))
      .def(
          "match_pixels",
          [](const blip::api::ImageTextMatcher& self, const std::vector<py::array>& images,
             const std::vector<std::string>& texts) {
            const std::vector<ImageView> views = image_views_of(images);
            return score_arrays(without_lock([&] { return self.match(views, texts); }));
          },
          py::arg("images"), py::arg("texts"))
      .def(
          "match_pixel_values",
          [](const blip::api::ImageTextMatcher& self, const PixelArray& pixel_values,
             const std::vector<std::string>& texts) {
            const PixelValues pixels = pixel_values_of(pixel_values);
            return score_arrays(without_lock([&] { return self.match(pixels, texts); }));
          },
          py::arg("pixel_values"), py::arg("texts"))
      .def(
          "image_embeddings_files",
          [](const blip::api::ImageTextMatcher& self, const std::vector<std::string>& paths) {
            return embedding_array(without_lock([&] { return self.image_embeddings(paths); }));
          },
          py::arg("paths"))
      .def(
          "image_embeddings_pixels",
          [](const blip::api::ImageTextMatcher& self, const std::vector<py::array>& images) {
            const std::vector<ImageView> views = image_views_of(images);
            return embedding_array(without_lock([&] { return self.image_embeddings(views); }));
          },
          py::arg("images"))
      .def(
          "image_embeddings_pixel_values",
          [](const blip::api::ImageTextMatcher& self, const PixelArray& pixel_values) {
            const PixelValues pixels = pixel_values_of(pixel_values);
            return embedding_array(without_lock([&] { return self.image_embeddings(pixels); }));
          },
          py::arg("pixel_values"))
      .def(
          "text_embeddings",
          [](const blip::api::ImageTextMatcher& self, const std::vector<std::string>& texts) {
            if (texts.empty()) throw py::value_error("text_embeddings: no texts given");
            return embedding_array(without_lock([&] { return self.text_embeddings(texts); }));
          },
          py::arg("texts"));
}
