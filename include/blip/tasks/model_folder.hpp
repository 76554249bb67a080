// blip/tasks/model_folder.hpp: what every task loads from a Hugging Face
// model folder: config.json, the safetensors weights, generation_config.json,
// preprocessor_config.json and the tokenizer files.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "blip/core/threading.hpp"
#include "blip/generation/session.hpp"
#include "blip/io/config.hpp"
#include "blip/io/image.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/text/tokenizer.hpp"

namespace blip {

struct LoadOptions {
  std::string tokenizer_dir;  // where the tokenizer files are; empty = the model folder
  int num_threads = 0;        // kernels' thread count; 0 keeps the OpenMP default (OMP_NUM_THREADS or all cores)
  bool verbose = false;       // load progress and timings on stderr
};

// Everything a BLIP task needs besides the model weights.
struct BlipModelFolder {
  std::string directory;
  ModelConfig config;
  BlipModelConfig model_config;
  GenerationConfigFile generation_config;
  ImageProcessorConfig image_processor;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const WeightStore> weights;

  // The generation settings `model.generate(**inputs)` uses in HF when the
  // caller passes none. HF BLIP's generate() runs text_decoder.generate(),
  // whose generation config is built from text_config (not from
  // generation_config.json): language_model_generation_config().
  generation::GenerationOptions default_generation_options() const {
    generation::GenerationOptions options;
    options.max_length = generation_config.max_length;
    if (generation_config.max_new_tokens) options.max_new_tokens = *generation_config.max_new_tokens;
    options.min_length = generation_config.min_length;
    options.num_beams = generation_config.num_beams;
    options.do_sample = generation_config.do_sample;
    options.temperature = generation_config.temperature;
    options.top_k = generation_config.top_k;
    options.top_p = generation_config.top_p;
    options.repetition_penalty = generation_config.repetition_penalty;
    options.length_penalty = generation_config.length_penalty;
    options.no_repeat_ngram_size = generation_config.no_repeat_ngram_size;
    return options;
  }
};

inline void log_step(bool verbose, const char* what, std::chrono::steady_clock::time_point since) {
  if (!verbose) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  std::fprintf(stderr, "[blip] %s (%.2f s)\n", what, seconds);
}

// Reads a BLIP model folder; `expected_architecture` is checked against
// config.json's architectures so a captioning folder is not loaded as VQA.
inline BlipModelFolder open_blip_model_folder(const std::string& directory, const LoadOptions& options,
                                              const std::string& expected_architecture) {
  if (options.num_threads > 0) set_num_threads(options.num_threads);
  const auto started = std::chrono::steady_clock::now();
  BlipModelFolder folder;
  folder.directory = directory;
  folder.config = load_model_config(directory);
  check(folder.config.family == ModelFamily::Blip, directory, "/config.json: a ", folder.config.architecture,
        " model, expected ", expected_architecture);
  check(folder.config.architecture == expected_architecture, directory, "/config.json: architecture ",
        folder.config.architecture, ", expected ", expected_architecture);
  folder.model_config = make_blip_model_config(folder.config.blip);
  folder.generation_config = language_model_generation_config(folder.config);
  // preprocessor_config.json comes from the model folder only. Without one,
  // BlipImageProcessor's defaults apply, sized to the vision model's
  // image_size (the position embeddings fix the size the model accepts).
  if (std::filesystem::exists(directory + "/preprocessor_config.json")) {
    folder.image_processor = load_image_processor_config(directory);
  } else {
    folder.image_processor = ImageProcessorConfig{};
    folder.image_processor.height = folder.image_processor.width =
        static_cast<int>(folder.model_config.vision.image_size);
  }
  check(folder.image_processor.height == folder.model_config.vision.image_size &&
            folder.image_processor.width == folder.model_config.vision.image_size,
        directory, "/preprocessor_config.json: resizes to ", folder.image_processor.height, "x",
        folder.image_processor.width, " but the vision model takes ", folder.model_config.vision.image_size, "x",
        folder.model_config.vision.image_size, " images (vision_config.image_size)");
  folder.tokenizer = load_tokenizer(options.tokenizer_dir.empty() ? directory : options.tokenizer_dir);
  log_step(options.verbose, "read config, tokenizer and preprocessor", started);
  folder.weights = std::make_shared<const WeightStore>(WeightStore::open(directory));
  log_step(options.verbose, "mapped the weights", started);
  return folder;
}

// Images -> pixel_values [B, 3, H, W] exactly as BlipImageProcessor makes them.
inline Tensor<float> make_pixel_values(const std::vector<Image>& images, const ImageProcessorConfig& config) {
  check(!images.empty(), "no images given");
  Tensor<float> pixels(Shape{static_cast<std::int64_t>(images.size()), 3, config.height, config.width});
  const std::int64_t per_image = 3 * static_cast<std::int64_t>(config.height) * config.width;
  for (std::size_t index = 0; index < images.size(); ++index) {
    preprocess_into(images[index], config, pixels.data() + static_cast<std::int64_t>(index) * per_image);
  }
  return pixels;
}

}  // namespace blip
