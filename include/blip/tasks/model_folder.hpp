// blip/tasks/model_folder.hpp: what every task loads from a Hugging Face
// model folder: config.json, the safetensors weights, generation_config.json,
// preprocessor_config.json and the tokenizer files.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blip/core/regular_file.hpp"
#include "blip/core/threading.hpp"
#include "blip/generation/session.hpp"
#include "blip/io/config.hpp"
#include "blip/io/image.hpp"
#include "blip/io/model_location.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "blip/text/tokenizer.hpp"

namespace blip {

struct LoadOptions {
  std::string tokenizer_dir;  // where the tokenizer files are (a folder or a cached Hub id); empty = the model folder
  int num_threads = 0;        // kernels' thread count; 0 keeps the OpenMP default (OMP_NUM_THREADS or all cores)
  bool verbose = false;       // load progress and timings on stderr
  // The precision of the Linear weights (the bulk of every model): as stored
  // (default), or converted at load to f32, bf16, f16, int8 or int4 (core/dtype.hpp).
  WeightPrecision weight_precision = WeightPrecision::AsStored;
  // What the Linear layers multiply their weights by: f32 activations (default; the same results on every
  // CPU), bf16 for bf16 weights (vdpbf16ps where the CPU has AVX512-BF16, twice the f32 rate for prompts and
  // images; PyTorch's bf16 arithmetic), or int8 for int8 and int4 weights (vpdpbusd where the CPU has
  // AVX512-VNNI). Layers in other precisions keep f32 activations (core/dtype.hpp: activations_apply_to).
  ActivationPrecision activation_precision = ActivationPrecision::F32;
  // Copied: the weight files are read while loading only, so replacing or
  // truncating them later cannot reach the process (io/weight_store.hpp).
  WeightResidency weight_residency = WeightResidency::Copied;
};

// Everything a BLIP or BLIP-2 task needs besides the model weights.
struct BlipModelFolder {
  std::string directory;
  ModelConfig config;              // config.family says which of the two below is filled
  BlipModelConfig model_config;    // BLIP
  Blip2ModelConfig blip2_config;   // BLIP-2
  // processor_config.json's num_query_tokens (Blip2Processor): when set, the
  // processor puts that many <image> tokens before the text.
  std::optional<std::int64_t> processor_query_tokens;
  GenerationConfigFile generation_config;
  ImageProcessorConfig image_processor;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const WeightStore> weights;

  // The generation settings `model.generate(**inputs)` uses in HF when the
  // caller passes none. HF BLIP's generate() runs text_decoder.generate(),
  // whose generation config is built from text_config (not from
  // generation_config.json): language_model_generation_config().
  generation::GenerationOptions default_generation_options() const {
    return generation::options_from_generation_config(generation_config);
  }
};

inline void log_step(bool verbose, const char* what, std::chrono::steady_clock::time_point since) {
  if (!verbose) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  std::fprintf(stderr, "[blip] %s (%.2f s)\n", what, seconds);
}

inline bool is_blip2(const BlipModelFolder& folder) { return folder.config.family == ModelFamily::Blip2; }

// BLIP-2 task defaults when the generation config sets no max_new_tokens: HF's
// default max_length = 20 counts the 32 query embeddings on the image-token
// path (where this HF version then refuses to generate), so the tasks ask for
// this many new tokens instead.
inline constexpr std::int64_t kBlip2DefaultMaxNewTokens = 30;

namespace tasks_detail {
inline generation::GenerationOptions task_generation_defaults(ModelFamily family, const GenerationConfigFile& config) {
  generation::GenerationOptions options = generation::options_from_generation_config(config);
  if (family == ModelFamily::Blip2 && options.max_new_tokens <= 0) options.max_new_tokens = kBlip2DefaultMaxNewTokens;
  return options;
}
}  // namespace tasks_detail

// What the tasks generate with when the caller passes nothing.
inline generation::GenerationOptions task_generation_defaults(const BlipModelFolder& folder) {
  return tasks_detail::task_generation_defaults(folder.config.family, folder.generation_config);
}

// The same from <directory>/config.json alone, without loading anything else:
// lets a program check the options it will ask for before loading a model.
// `directory` may be a Hub repository id in the local cache (io/model_location.hpp).
inline generation::GenerationOptions read_task_generation_defaults(const std::string& directory) {
  const ModelConfig config = load_model_config(resolve_model_folder(directory));
  return tasks_detail::task_generation_defaults(config.family, language_model_generation_config(config));
}

// Where task_generation_defaults come from, with their values, for the load
// log. In HF 4.45, BLIP's generate() runs text_decoder.generate() and BLIP-2's
// runs language_model.generate(); both inner models are built from
// config.json's text_config, so their GenerationConfig is
// from_model_config(text_config), and generation_config.json (which
// from_pretrained gives the outer model only) is never read.
inline std::string describe_generation_defaults(const BlipModelFolder& folder) {
  const generation::GenerationOptions options = task_generation_defaults(folder);
  std::string text = "generation defaults from " + folder.config.source + " text_config (HF's " +
                     (is_blip2(folder) ? "language_model" : "text_decoder") +
                     ".generate() builds its GenerationConfig from text_config): num_beams " +
                     std::to_string(options.num_beams) + ", do_sample " + (options.do_sample ? "true" : "false");
  if (is_blip2(folder) && !folder.generation_config.max_new_tokens) {
    text += ", max_new_tokens " + std::to_string(options.max_new_tokens) +
            " (blipcpp's BLIP-2 default: text_config sets none, and HF's max_length " +
            std::to_string(options.max_length) + " would count the image queries)";
  } else if (options.max_new_tokens > 0) {
    text += ", max_new_tokens " + std::to_string(options.max_new_tokens);
  } else {
    text += ", max_length " + std::to_string(options.max_length) + " (prompt included)";
  }
  text += ", min_length " + std::to_string(options.min_length) + ", repetition_penalty " +
          detail::concat(options.repetition_penalty);
  if (options.do_sample) {
    text += ", temperature " + detail::concat(options.temperature) + ", top_k " + std::to_string(options.top_k) +
            ", top_p " + detail::concat(options.top_p);
  }
  if (std::filesystem::exists(std::filesystem::path(folder.directory) / "generation_config.json"))
    text += "; generation_config.json is not read, as in HF";
  return text;
}

// Reads a BLIP or BLIP-2 model folder; config.json's architecture must be one
// of `expected_architectures` (so a captioning folder is not loaded as VQA).
// `folder_or_repo_id` is a folder, or a Hub repository id already in the
// local Hugging Face cache (resolve_model_folder, io/model_location.hpp).
inline BlipModelFolder open_blip_model_folder(const std::string& folder_or_repo_id, const LoadOptions& options,
                                              const std::vector<std::string>& expected_architectures) {
  const std::string directory = resolve_model_folder(folder_or_repo_id);
  if (options.num_threads > 0) set_num_threads(options.num_threads);
  if (options.verbose && requested_num_threads() > kMaxThreads)
    std::fprintf(stderr, "[blip] OpenMP asks for %d threads (OMP_NUM_THREADS); using %d, the most blipcpp starts\n",
                 requested_num_threads(), kMaxThreads);
  const auto started = std::chrono::steady_clock::now();
  BlipModelFolder folder;
  folder.directory = directory;
  folder.config = load_model_config(directory);
  std::string expected;
  for (const std::string& name : expected_architectures) expected += (expected.empty() ? "" : " or ") + name;
  check(std::find(expected_architectures.begin(), expected_architectures.end(), folder.config.architecture) !=
            expected_architectures.end(),
        directory, "/config.json: architecture ", clip(folder.config.architecture), ", expected ", expected);
  std::int64_t vision_image_size = 0;
  if (is_blip2(folder)) {
    folder.blip2_config = make_blip2_model_config(folder.config.blip2);
    vision_image_size = folder.blip2_config.vision.image_size;
    const std::string processor_file = directory + "/processor_config.json";
    if (std::filesystem::exists(processor_file)) {
      const nlohmann::json processor = read_config_json_file(processor_file);
      if (processor.contains("num_query_tokens") && !processor.at("num_query_tokens").is_null()) {
        folder.processor_query_tokens = json_integer(processor.at("num_query_tokens"), processor_file, "num_query_tokens");
      }
    }
  } else {
    folder.model_config = make_blip_model_config(folder.config.blip);
    vision_image_size = folder.model_config.vision.image_size;
  }
  folder.generation_config = language_model_generation_config(folder.config);
  // preprocessor_config.json comes from the model folder only. Without one,
  // BlipImageProcessor's defaults apply, sized to the vision model's
  // image_size (the position embeddings fix the size the model accepts).
  if (std::filesystem::exists(directory + "/preprocessor_config.json")) {
    folder.image_processor = load_image_processor_config(directory);
  } else {
    folder.image_processor = ImageProcessorConfig{};
    folder.image_processor.height = folder.image_processor.width = static_cast<int>(vision_image_size);
  }
  check(folder.image_processor.height == vision_image_size && folder.image_processor.width == vision_image_size,
        directory, "/preprocessor_config.json: resizes to ", folder.image_processor.height, "x",
        folder.image_processor.width, " but the vision model takes ", vision_image_size, "x", vision_image_size,
        " images (vision_config.image_size)");
  folder.tokenizer = load_tokenizer(options.tokenizer_dir.empty() ? directory : resolve_model_folder(options.tokenizer_dir));
  log_step(options.verbose, "read config, tokenizer and preprocessor", started);
  if (options.verbose) std::fprintf(stderr, "[blip] %s\n", describe_generation_defaults(folder).c_str());
  // The weights are memory-mapped (core/mapped_file.hpp), which would wait
  // forever on a FIFO put in their place: they must be regular files.
  for (const char* name : {"model.safetensors", "model.safetensors.index.json"})
    require_regular_file((std::filesystem::path(directory) / name).string(), /*missing_is_ok=*/true);
  WeightOptions weight_options;
  weight_options.residency = options.weight_residency;
  weight_options.linear_precision = options.weight_precision;
  weight_options.linear_activations = options.activation_precision;
  folder.weights = std::make_shared<const WeightStore>(WeightStore::open(directory, weight_options));
  log_step(options.verbose, "mapped the weights", started);
  const WeightPrecision quantized = folder.weights->checkpoint_quantization();
  const std::string as_stored = quantized == WeightPrecision::AsStored
                                    ? " (the checkpoint's own type)"
                                    : std::string(": ") + weight_precision_name(quantized) +
                                          " (a checkpoint quantized by blip_weights convert)";
  const std::string narrow_activations =
      options.activation_precision == ActivationPrecision::F32
          ? ""
          : std::string(", times ") + activation_precision_name(options.activation_precision) + " activations";
  if (options.verbose)
    std::fprintf(stderr, "[blip] Linear weights in %s%s%s; %s\n", weight_precision_name(options.weight_precision),
                 options.weight_precision == WeightPrecision::AsStored ? as_stored.c_str() : "",
                 narrow_activations.c_str(),
                 options.weight_residency == WeightResidency::Copied
                     ? "the weight files are read while loading only"
                     : "the weights stay memory-mapped: do not change the files while this runs");
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

// Blip2Processor(images, texts) for generation: each text tokenized
// ([</s>] + tokens for OPT, tokens + [</s>] for T5), padded to the longest with
// the tokenizer's pad id: LEFT for OPT (decoder-only generation continues the
// last column, so padding goes in front; OPT's positions skip it), RIGHT for
// T5 (the tokenizer's side; the encoder masks it, and its relative positions
// between queries and text stay those of an unpadded row), then, when the model replaces image tokens
// (config image_token_index), num_query_tokens <image> ids put before each
// row, as the processor does when processor_config.json has num_query_tokens.
// Legacy configs get the text alone: the model concatenates the queries itself.
inline BatchEncoding encode_blip2_prompts(const BlipModelFolder& folder, const std::vector<std::string>& texts) {
  check(is_blip2(folder), folder.directory, ": not a BLIP-2 folder");
  check(!texts.empty(), "BLIP-2 prompts: no texts given");
  const Blip2ModelConfig& config = folder.blip2_config;
  const std::int64_t image_tokens = config.image_token_index ? config.num_query_tokens : 0;
  if (config.image_token_index && folder.processor_query_tokens) {
    check(*folder.processor_query_tokens == config.num_query_tokens, folder.directory,
          "/processor_config.json: num_query_tokens ", *folder.processor_query_tokens,
          " but config.json has num_query_tokens ", config.num_query_tokens);
  }
  std::vector<Encoding> encodings;
  std::size_t longest = 0;
  for (const std::string& text : texts) {
    encodings.push_back(folder.tokenizer->encode(text, true));
    longest = std::max(longest, encodings.back().size());
  }
  const std::int64_t rows = static_cast<std::int64_t>(texts.size());
  const std::int64_t length = image_tokens + static_cast<std::int64_t>(longest);
  BatchEncoding batch{Tensor<std::int64_t>(Shape{rows, length}), Tensor<std::int64_t>(Shape{rows, length})};
  batch.input_ids.fill(folder.tokenizer->pad_token_id());
  for (std::int64_t row = 0; row < rows; ++row) {
    std::int64_t* ids = batch.input_ids.data() + row * length;
    std::int64_t* mask = batch.attention_mask.data() + row * length;
    for (std::int64_t i = 0; i < image_tokens; ++i) {
      ids[i] = *config.image_token_index;
      mask[i] = 1;
    }
    const Encoding& encoding = encodings[static_cast<std::size_t>(row)];
    const bool pad_left = config.language_model != Blip2ModelConfig::LanguageModel::T5;
    const std::int64_t start = pad_left ? length - static_cast<std::int64_t>(encoding.size()) : image_tokens;
    for (std::size_t i = 0; i < encoding.size(); ++i) {
      ids[start + static_cast<std::int64_t>(i)] = encoding.ids[i];
      mask[start + static_cast<std::int64_t>(i)] = 1;
    }
  }
  return batch;
}

}  // namespace blip
