// blip/api.hpp: the task classes (captioning, visual QA, image-text matching)
// behind a small header that compiles in under half a second.
//
// Two ways to use blipcpp from C++; they give the same results:
//
//   #include <blip/blip.hpp>   the whole library, header-only: the task classes, the models, tensors,
//                              the search loop. Every translation unit that includes it compiles all of
//                              it: about 45 s and 1.2 GB of compiler memory on 2 cores (README.md,
//                              "Compile time"; this header: under half a second and 73 MB).
//                              For programs that reach below the tasks, and for one-file tools.
//
//   #include <blip/api.hpp>    this header: blip::api::Captioner, VisualQA and ImageTextMatcher with
//                              plain option structs, and nothing of Eigen, JSON or the models (only
//                              <cstdint>, <memory>, <string>, <vector> and blip::Error). The code behind
//                              it is compiled once, in ONE of:
//                                - CMake: target_link_libraries(app PRIVATE blip::compiled), a static
//                                  library built from src/blip_compiled.cpp;
//                                - anything else: one .cpp file of the application holds
//                                      #define BLIP_IMPLEMENTATION
//                                      #include <blip/api.hpp>
//                                  (stb style; not both, else every function is defined twice).
//                              For applications that only need the tasks, with several files including it.
//
//   #include <blip/api.hpp>
//   blip::api::Captioner captioner = blip::api::Captioner::load("models/blip-image-captioning-base");
//   blip::api::CaptionOptions options = captioner.default_options();
//   options.generation.num_beams = 3;
//   std::string text = captioner.caption("photo.jpg", options).front().text;
//
// Sharing: a loaded Captioner, VisualQA or ImageTextMatcher holds an immutable model through a
// shared pointer. Copying one is cheap and shares the weights; its const functions may be called
// from several threads at once (each call keeps its own state), as blip_server does. The kernels'
// thread count (LoadOptions::num_threads) is the process's OpenMP setting, not the object's.
//
// Errors: every failure is thrown as blip::api::Error (the library's one error type, blip::Error)
// with the library's message, naming the file or argument and what was expected; std::bad_alloc
// when memory runs out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blip/core/error_type.hpp"

namespace blip::api {

using Error = ::blip::Error;

// How the weights are loaded (blip::LoadOptions).
struct LoadOptions {
  std::string tokenizer_dir;  // where the tokenizer files are (a folder or a cached Hub id); empty = the model folder
  int num_threads = 0;        // kernels' thread count; 0 keeps the OpenMP default (OMP_NUM_THREADS or all cores)
  // The Linear weights (the bulk of every model), as the programs' --precision: "as-stored" (the
  // checkpoint's own type), "f32", "bf16", "f16", "int8" or "int4".
  std::string precision = "as-stored";
  // What narrow Linear weights multiply: "f32" activations (the same results on every CPU), "bf16" with bf16
  // weights (AVX512-BF16 dot products where the CPU has them) or "int8" with int8 weights (each layer's input
  // quantized per row; AVX512-VNNI dot products), as the programs' --activations.
  std::string activations = "f32";
  bool verbose = false;  // load progress and timings on stderr
};

// How to generate (blip::generation::GenerationOptions, HF's GenerationConfig names and defaults).
// default_options() gives the model's own defaults (config.json's text_config, as HF's generate()).
// The fields HF has and this struct does not (early_stopping, typical_p, min_p, bad_words_ids,
// suppress_tokens, ...) always take the model's defaults.
struct GenerationOptions {
  std::int64_t max_new_tokens = -1;  // new tokens at most; -1: unset, max_length applies
  std::int64_t max_length = 20;      // total length, prompt ids included (used when max_new_tokens is -1)
  std::int64_t min_new_tokens = 0;   // 0: unset; else no end of sequence before this many new tokens
  std::int64_t min_length = 0;       // no end of sequence while the sequence (prompt included) is shorter
  std::int64_t num_beams = 1;        // 1: greedy (or sampling); more: beam search
  bool do_sample = false;
  double temperature = 1.0;          // sampling only
  std::int64_t top_k = 50;           // sampling only; 0 disables
  double top_p = 1.0;                // sampling only; 1 disables
  double repetition_penalty = 1.0;   // 1 disables
  std::int64_t no_repeat_ngram_size = 0;  // 0 disables
  double length_penalty = 1.0;       // beam search: a hypothesis scores sum_logprobs / new_tokens ** length_penalty
  std::int64_t num_return_sequences = 1;  // results per image: the best beams, or independent samples
  // Sampling seed; sequences are deterministic per seed (but are not torch's: its generator cannot
  // be reproduced portably).
  std::uint64_t seed = 0;
};

struct CaptionOptions {
  // Conditional captioning: the caption continues this text and starts with it. Empty: unconditional.
  std::string prompt;
  GenerationOptions generation;
};

// A generated caption or answer.
struct Caption {
  std::string text;                     // decoded, special tokens skipped (BLIP-2: also stripped of spaces)
  std::vector<std::int64_t> token_ids;  // what generate() returned (BLIP: [DEC] + prompt + new tokens)
  float score = 0.0f;                   // beam search: HF's sequences_scores; NaN for greedy search and sampling
};
using Answer = Caption;

// An image already decoded: width * height pixels of 3 bytes (R, G, B), rows top to bottom, no
// padding. The bytes are read during the call only. Decoded images skip load_image's EXIF rotation
// and RGB conversion, which a path gets (as HF's load_image).
struct ImageView {
  const std::uint8_t* rgb = nullptr;
  int width = 0;
  int height = 0;
};

// Images already preprocessed: pixel_values as Hugging Face's image processor returns them
// (BlipProcessor(images, return_tensors="np")["pixel_values"]), float32 [batch, channels, height, width],
// row-major, resized, rescaled and normalized as the model's preprocessor_config.json says; the model
// checks the shape (3 channels, its image size). Read during the call only. For pipelines that
// preprocess elsewhere, and for checking against Hugging Face on its own tensors.
struct PixelValues {
  const float* data = nullptr;
  std::int64_t batch = 0;
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
};

// Captioning: BLIP captioning models (Salesforce/blip-image-captioning-base) and BLIP-2
// (Salesforce/blip2-opt-2.7b, -flan-t5-xl). blip::Captioner underneath.
class Captioner {
 public:
  Captioner();  // not loaded: every call throws Error until a loaded Captioner is assigned
  // A model folder, or a Hub id already in the Hugging Face cache.
  static Captioner load(const std::string& model_dir, const LoadOptions& options = {});

  CaptionOptions default_options() const;  // the model's defaults, no prompt

  // num_return_sequences captions of one image, best first.
  std::vector<Caption> caption(const std::string& image_path, const CaptionOptions& options) const;
  std::vector<Caption> caption(const ImageView& image, const CaptionOptions& options) const;
  // Several images in one batch (the same captions as one at a time): result[i] for image i. Image
  // files are decoded one at a time, so a batch holds one full-size image at most.
  std::vector<std::vector<Caption>> caption_batch(const std::vector<std::string>& image_paths,
                                                  const CaptionOptions& options) const;
  std::vector<std::vector<Caption>> caption_batch(const std::vector<ImageView>& images,
                                                  const CaptionOptions& options) const;
  std::vector<std::vector<Caption>> caption_batch(const PixelValues& pixels, const CaptionOptions& options) const;

  bool is_blip2() const;
  const std::string& model_dir() const;  // the folder the model was loaded from

 private:
  struct Model;  // the blip::Captioner, defined in blip/api_impl.hpp
  std::shared_ptr<const Model> model_;
};

// Visual question answering: BLIP VQA models (Salesforce/blip-vqa-base) and BLIP-2, which is asked
// "Question: {question} Answer:". blip::VisualQA underneath.
class VisualQA {
 public:
  VisualQA();  // not loaded
  static VisualQA load(const std::string& model_dir, const LoadOptions& options = {});

  GenerationOptions default_options() const;

  // num_return_sequences answers, best first.
  std::vector<Answer> answer(const std::string& image_path, const std::string& question,
                             const GenerationOptions& options) const;
  std::vector<Answer> answer(const ImageView& image, const std::string& question,
                             const GenerationOptions& options) const;
  // questions[i] about image_paths[i], in one batch.
  std::vector<std::vector<Answer>> answer_batch(const std::vector<std::string>& image_paths,
                                                const std::vector<std::string>& questions,
                                                const GenerationOptions& options) const;
  std::vector<std::vector<Answer>> answer_batch(const std::vector<ImageView>& images,
                                                const std::vector<std::string>& questions,
                                                const GenerationOptions& options) const;
  std::vector<std::vector<Answer>> answer_batch(const PixelValues& pixels, const std::vector<std::string>& questions,
                                                const GenerationOptions& options) const;

  bool is_blip2() const;
  const std::string& model_dir() const;

 private:
  struct Model;  // the blip::VisualQA, defined in blip/api_impl.hpp
  std::shared_ptr<const Model> model_;
};

// One (image, text) pair's scores.
struct MatchScore {
  float match_probability = 0.0f;  // ITM head: softmax(itm_logits)[1], the probability that the text describes the image
  float similarity = 0.0f;         // ITC: cosine of the projected features (BLIP-2: the best query token's)
};

// Unit vectors that ITC compares: a text's or BLIP image's is one vector, a BLIP-2 image's one per
// query token. match()'s similarity is the dot product of an image's and a text's (BLIP-2: the
// largest over the image's vectors).
struct Embedding {
  std::int64_t vectors = 0;    // 1, or BLIP-2's query tokens for an image
  std::int64_t dimension = 0;  // image_text_hidden_size (BLIP) or the Q-Former's embed_dim (BLIP-2)
  std::vector<float> values;   // vectors * dimension, vector after vector
};

// Image-text matching and retrieval embeddings: BLIP retrieval models (Salesforce/blip-itm-base-coco)
// and BLIP-2's Q-Former (Salesforce/blip2-itm-vit-g). blip::ImageTextMatcher underneath.
class ImageTextMatcher {
 public:
  ImageTextMatcher();  // not loaded
  static ImageTextMatcher load(const std::string& model_dir, const LoadOptions& options = {});

  // Every pair: result[image][text].
  std::vector<std::vector<MatchScore>> match(const std::vector<std::string>& image_paths,
                                             const std::vector<std::string>& texts) const;
  std::vector<std::vector<MatchScore>> match(const std::vector<ImageView>& images,
                                             const std::vector<std::string>& texts) const;
  std::vector<std::vector<MatchScore>> match(const PixelValues& pixels, const std::vector<std::string>& texts) const;

  std::vector<Embedding> image_embeddings(const std::vector<std::string>& image_paths) const;
  std::vector<Embedding> image_embeddings(const std::vector<ImageView>& images) const;
  std::vector<Embedding> image_embeddings(const PixelValues& pixels) const;
  std::vector<Embedding> text_embeddings(const std::vector<std::string>& texts) const;

  bool is_blip2() const;
  const std::string& model_dir() const;

 private:
  struct Model;  // the blip::ImageTextMatcher, defined in blip/api_impl.hpp
  std::shared_ptr<const Model> model_;
};

}  // namespace blip::api

// stb style: the one .cpp file that defines BLIP_IMPLEMENTATION compiles the code behind this header.
#ifdef BLIP_IMPLEMENTATION
#include "blip/api_impl.hpp"
#endif
