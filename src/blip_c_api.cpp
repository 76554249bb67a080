// The C interface (blip/blip.h) on the C++ facade (blip/api.hpp): each function converts its
// arguments, calls the facade inside one guard that turns every exception into a status and this
// thread's message, and hands results out as library-owned objects. Built into libblip.so, which
// exports these functions only (src/blip_c_api.map).
#include "blip/blip.h"

#include <exception>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "blip/api.hpp"

#ifndef BLIP_PROJECT_VERSION
#error "BLIP_PROJECT_VERSION must be defined (CMakeLists.txt passes the project's version)"
#endif

// The handles are the facade's objects (a shared model each), under the C names.
struct blip_captioner {
  blip::api::Captioner task;
};
struct blip_visual_qa {
  blip::api::VisualQA task;
};
struct blip_matcher {
  blip::api::ImageTextMatcher task;
};

// Results own their strings and ids; the blip_text views point into them.
struct blip_texts {
  std::vector<std::vector<blip::api::Caption>> groups;
  std::vector<std::vector<blip_text>> views;
};
struct blip_embeddings {
  std::vector<blip::api::Embedding> items;
};

namespace {

thread_local std::string last_error_message;

// A mistake in the C call itself (BLIP_ERROR_INVALID_ARGUMENT), as opposed to the library refusing
// its input (blip::api::Error, BLIP_ERROR_FAILED).
struct InvalidArgument {
  std::string message;
};

blip_status fail(blip_status status, std::string message) {
  // Assigning may itself run out of memory; the status still says what happened.
  try {
    last_error_message = std::move(message);
  } catch (...) {
    last_error_message.clear();
  }
  return status;
}

// Runs `call`, which returns nothing; every exception becomes a status here and nothing crosses
// into C.
template <class Call>
blip_status guarded(const char* function, Call&& call) {
  try {
    call();
    return BLIP_OK;
  } catch (const InvalidArgument& invalid) {
    return fail(BLIP_ERROR_INVALID_ARGUMENT, std::string(function) + ": " + invalid.message);
  } catch (const blip::api::Error& error) {
    return fail(BLIP_ERROR_FAILED, error.what());
  } catch (const std::bad_alloc&) {
    return fail(BLIP_ERROR_OUT_OF_MEMORY, std::string(function) + ": out of memory");
  } catch (const std::exception& error) {
    return fail(BLIP_ERROR_INTERNAL, std::string(function) + ": " + error.what());
  } catch (...) {
    return fail(BLIP_ERROR_INTERNAL, std::string(function) + ": an unknown exception");
  }
}

void require(bool condition, const char* message) {
  if (!condition) throw InvalidArgument{message};
}

// An output pointer is checked and cleared before anything else, so a failed call leaves NULL there.
template <class Result>
void clear_output(Result** output, const char* name) {
  if (output == nullptr) throw InvalidArgument{std::string(name) + " is NULL"};
  *output = nullptr;
}

std::string text_argument(const char* text, const char* name) {
  if (text == nullptr) throw InvalidArgument{std::string(name) + " is NULL"};
  return text;
}

std::vector<std::string> text_arguments(const char* const* texts, std::size_t count, const char* name) {
  if (count > 0 && texts == nullptr) throw InvalidArgument{std::string(name) + " is NULL"};
  std::vector<std::string> result;
  result.reserve(count);
  for (std::size_t index = 0; index < count; ++index) {
    if (texts[index] == nullptr)
      throw InvalidArgument{std::string(name) + "[" + std::to_string(index) + "] is NULL"};
    result.emplace_back(texts[index]);
  }
  return result;
}

blip::api::LoadOptions to_facade(const blip_load_options* options) {
  blip::api::LoadOptions facade;
  if (options == nullptr) return facade;
  if (options->tokenizer_dir != nullptr) facade.tokenizer_dir = options->tokenizer_dir;
  if (options->precision != nullptr) facade.precision = options->precision;
  if (options->activations != nullptr) facade.activations = options->activations;
  facade.num_threads = options->num_threads;  // the facade names a negative count
  facade.verbose = options->verbose != 0;
  return facade;
}

// blip_generation_options <-> blip::api::GenerationOptions: the same fields under the same names (the C
// struct's do_sample is an int), so one copy serves both ways.
template <class From, class To>
void copy_generation_options(const From& from, To& to) {
  to.max_new_tokens = from.max_new_tokens;
  to.max_length = from.max_length;
  to.min_new_tokens = from.min_new_tokens;
  to.min_length = from.min_length;
  to.num_beams = from.num_beams;
  to.do_sample = from.do_sample != 0;
  to.temperature = from.temperature;
  to.top_k = from.top_k;
  to.top_p = from.top_p;
  to.repetition_penalty = from.repetition_penalty;
  to.no_repeat_ngram_size = from.no_repeat_ngram_size;
  to.length_penalty = from.length_penalty;
  to.num_return_sequences = from.num_return_sequences;
  to.seed = from.seed;
}

blip::api::GenerationOptions to_facade(const blip_generation_options& options) {
  blip::api::GenerationOptions facade;
  copy_generation_options(options, facade);
  return facade;
}

blip_generation_options from_facade(const blip::api::GenerationOptions& facade) {
  blip_generation_options options;
  copy_generation_options(facade, options);
  return options;
}

// The images of one call: all files (paths) or all decoded pixels (views), never mixed, as the
// facade takes them.
struct ImageBatch {
  std::vector<std::string> paths;
  std::vector<blip::api::ImageView> views;
  bool files() const { return !paths.empty(); }
};

ImageBatch image_batch(const blip_image* images, std::size_t count) {
  if (count > 0 && images == nullptr) throw InvalidArgument{"images is NULL"};
  ImageBatch batch;
  for (std::size_t index = 0; index < count; ++index) {
    const blip_image& image = images[index];
    const std::string name = "images[" + std::to_string(index) + "]";
    if (image.path != nullptr) {
      if (image.rgb != nullptr) throw InvalidArgument{name + " has both a path and pixels; give one"};
      if (!batch.views.empty())
        throw InvalidArgument{name + " is a file but images[0] is pixels; one call takes files or pixels, not both"};
      batch.paths.emplace_back(image.path);
    } else {
      if (image.rgb == nullptr) throw InvalidArgument{name + " has neither a path nor pixels"};
      if (!batch.paths.empty())
        throw InvalidArgument{name + " is pixels but images[0] is a file; one call takes files or pixels, not both"};
      batch.views.push_back({image.rgb, image.width, image.height});  // the facade checks the sizes
    }
  }
  return batch;
}

blip::api::PixelValues pixel_values(const blip_pixel_values* pixels) {
  if (pixels == nullptr) throw InvalidArgument{"pixels is NULL"};
  return {pixels->data, pixels->batch, pixels->channels, pixels->height, pixels->width};  // the facade checks them
}

blip_texts* make_texts(std::vector<std::vector<blip::api::Caption>> groups) {
  blip_texts* texts = new blip_texts{std::move(groups), {}};
  try {
    texts->views.resize(texts->groups.size());
    for (std::size_t group = 0; group < texts->groups.size(); ++group) {
      for (const blip::api::Caption& caption : texts->groups[group])
        texts->views[group].push_back(
            {caption.text.c_str(), caption.token_ids.data(), caption.token_ids.size(), caption.score});
    }
  } catch (...) {
    delete texts;
    throw;
  }
  return texts;
}

// A match table into the caller's scores[image * texts + text]: written only once every score is known, so a
// failed call leaves `scores` as it was.
void write_scores(const std::vector<std::vector<blip::api::MatchScore>>& table, blip_match_score* scores) {
  std::size_t next = 0;
  for (const std::vector<blip::api::MatchScore>& row : table)
    for (const blip::api::MatchScore& score : row) scores[next++] = {score.match_probability, score.similarity};
}

template <class Handle>
void require_handle(const Handle* handle, const char* name) {
  if (handle == nullptr) throw InvalidArgument{std::string(name) + " is NULL"};
}

// The three loaders: a model folder (or cached Hub id) into a new handle of type Handle over the facade's Task.
template <class Handle, class Task>
blip_status load_handle(const char* function, const char* handle_name, const char* model_dir,
                        const blip_load_options* options, Handle** handle) {
  return guarded(function, [&] {
    clear_output(handle, handle_name);
    const std::string folder = text_argument(model_dir, "model_dir");
    Task task = Task::load(folder, to_facade(options));
    *handle = new Handle{std::move(task)};
  });
}

// A call's options: the model's defaults where the caller gave NULL (no prompt, no generation options).
blip::api::CaptionOptions caption_options(const blip_captioner& captioner, const char* prompt,
                                          const blip_generation_options* options) {
  blip::api::CaptionOptions facade_options = captioner.task.default_options();
  if (prompt != nullptr) facade_options.prompt = prompt;
  if (options != nullptr) facade_options.generation = to_facade(*options);
  return facade_options;
}

blip::api::GenerationOptions answer_options(const blip_visual_qa& visual_qa, const blip_generation_options* options) {
  return options != nullptr ? to_facade(*options) : visual_qa.task.default_options();
}

// 1 for a BLIP-2 model; 0 for BLIP or NULL. (A loaded handle's facade does not throw here; should it
// ever, the answer is 0 rather than an exception in C.)
template <class Handle>
int is_blip2(const Handle* handle) {
  try {
    return handle != nullptr && handle->task.is_blip2() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

}  // namespace

extern "C" {

const char* blip_status_name(blip_status status) {
  switch (status) {
    case BLIP_OK: return "BLIP_OK";
    case BLIP_ERROR_INVALID_ARGUMENT: return "BLIP_ERROR_INVALID_ARGUMENT";
    case BLIP_ERROR_FAILED: return "BLIP_ERROR_FAILED";
    case BLIP_ERROR_OUT_OF_MEMORY: return "BLIP_ERROR_OUT_OF_MEMORY";
    case BLIP_ERROR_INTERNAL: return "BLIP_ERROR_INTERNAL";
  }
  return "unknown status";
}

const char* blip_last_error(void) { return last_error_message.c_str(); }

const char* blip_version(void) { return BLIP_PROJECT_VERSION; }

int blip_c_api_version(void) { return BLIP_C_API_VERSION; }

// ---- generated text ----

size_t blip_texts_groups(const blip_texts* texts) { return texts == nullptr ? 0 : texts->views.size(); }

size_t blip_texts_count(const blip_texts* texts, size_t group) {
  return texts == nullptr || group >= texts->views.size() ? 0 : texts->views[group].size();
}

const blip_text* blip_texts_get(const blip_texts* texts, size_t group, size_t rank) {
  if (texts == nullptr || group >= texts->views.size() || rank >= texts->views[group].size()) return nullptr;
  return &texts->views[group][rank];
}

void blip_texts_free(blip_texts* texts) { delete texts; }

// ---- captioning ----

blip_status blip_captioner_load(const char* model_dir, const blip_load_options* options, blip_captioner** captioner) {
  return load_handle<blip_captioner, blip::api::Captioner>("blip_captioner_load", "captioner", model_dir, options, captioner);
}

void blip_captioner_free(blip_captioner* captioner) { delete captioner; }

blip_status blip_captioner_default_options(const blip_captioner* captioner, blip_generation_options* options) {
  return guarded("blip_captioner_default_options", [&] {
    require_handle(captioner, "captioner");
    require(options != nullptr, "options is NULL");
    *options = from_facade(captioner->task.default_options().generation);
  });
}

int blip_captioner_is_blip2(const blip_captioner* captioner) { return is_blip2(captioner); }

blip_status blip_caption(const blip_captioner* captioner, const blip_image* images, size_t image_count,
                         const char* prompt, const blip_generation_options* options, blip_texts** captions) {
  return guarded("blip_caption", [&] {
    clear_output(captions, "captions");
    require_handle(captioner, "captioner");
    require(image_count > 0, "image_count is 0; give at least one image");
    const ImageBatch batch = image_batch(images, image_count);
    const blip::api::CaptionOptions facade_options = caption_options(*captioner, prompt, options);
    *captions = make_texts(batch.files() ? captioner->task.caption_batch(batch.paths, facade_options)
                                         : captioner->task.caption_batch(batch.views, facade_options));
  });
}

blip_status blip_caption_pixel_values(const blip_captioner* captioner, const blip_pixel_values* pixels,
                                      const char* prompt, const blip_generation_options* options,
                                      blip_texts** captions) {
  return guarded("blip_caption_pixel_values", [&] {
    clear_output(captions, "captions");
    require_handle(captioner, "captioner");
    const blip::api::PixelValues values = pixel_values(pixels);
    const blip::api::CaptionOptions facade_options = caption_options(*captioner, prompt, options);
    *captions = make_texts(captioner->task.caption_batch(values, facade_options));
  });
}

// ---- visual question answering ----

blip_status blip_visual_qa_load(const char* model_dir, const blip_load_options* options, blip_visual_qa** visual_qa) {
  return load_handle<blip_visual_qa, blip::api::VisualQA>("blip_visual_qa_load", "visual_qa", model_dir, options, visual_qa);
}

void blip_visual_qa_free(blip_visual_qa* visual_qa) { delete visual_qa; }

blip_status blip_visual_qa_default_options(const blip_visual_qa* visual_qa, blip_generation_options* options) {
  return guarded("blip_visual_qa_default_options", [&] {
    require_handle(visual_qa, "visual_qa");
    require(options != nullptr, "options is NULL");
    *options = from_facade(visual_qa->task.default_options());
  });
}

int blip_visual_qa_is_blip2(const blip_visual_qa* visual_qa) { return is_blip2(visual_qa); }

blip_status blip_answer(const blip_visual_qa* visual_qa, const blip_image* images, const char* const* questions,
                        size_t count, const blip_generation_options* options, blip_texts** answers) {
  return guarded("blip_answer", [&] {
    clear_output(answers, "answers");
    require_handle(visual_qa, "visual_qa");
    require(count > 0, "count is 0; give at least one image and question");
    const ImageBatch batch = image_batch(images, count);
    const std::vector<std::string> question_texts = text_arguments(questions, count, "questions");
    const blip::api::GenerationOptions facade_options = answer_options(*visual_qa, options);
    *answers = make_texts(batch.files() ? visual_qa->task.answer_batch(batch.paths, question_texts, facade_options)
                                        : visual_qa->task.answer_batch(batch.views, question_texts, facade_options));
  });
}

blip_status blip_answer_pixel_values(const blip_visual_qa* visual_qa, const blip_pixel_values* pixels,
                                     const char* const* questions, size_t count,
                                     const blip_generation_options* options, blip_texts** answers) {
  return guarded("blip_answer_pixel_values", [&] {
    clear_output(answers, "answers");
    require_handle(visual_qa, "visual_qa");
    require(count > 0, "count is 0; give at least one question");
    const blip::api::PixelValues values = pixel_values(pixels);
    const std::vector<std::string> question_texts = text_arguments(questions, count, "questions");
    const blip::api::GenerationOptions facade_options = answer_options(*visual_qa, options);
    *answers = make_texts(visual_qa->task.answer_batch(values, question_texts, facade_options));
  });
}

// ---- image-text matching ----

blip_status blip_matcher_load(const char* model_dir, const blip_load_options* options, blip_matcher** matcher) {
  return load_handle<blip_matcher, blip::api::ImageTextMatcher>("blip_matcher_load", "matcher", model_dir, options, matcher);
}

void blip_matcher_free(blip_matcher* matcher) { delete matcher; }

int blip_matcher_is_blip2(const blip_matcher* matcher) { return is_blip2(matcher); }

blip_status blip_match(const blip_matcher* matcher, const blip_image* images, size_t image_count,
                       const char* const* texts, size_t text_count, blip_match_score* scores) {
  return guarded("blip_match", [&] {
    require_handle(matcher, "matcher");
    require(scores != nullptr, "scores is NULL");
    require(image_count > 0, "image_count is 0; give at least one image");
    require(text_count > 0, "text_count is 0; give at least one text");
    require(image_count <= std::numeric_limits<std::size_t>::max() / sizeof(blip_match_score) / text_count,
            "image_count * text_count scores do not fit in memory");
    const ImageBatch batch = image_batch(images, image_count);
    const std::vector<std::string> text_list = text_arguments(texts, text_count, "texts");
    write_scores(batch.files() ? matcher->task.match(batch.paths, text_list) : matcher->task.match(batch.views, text_list),
                 scores);
  });
}

blip_status blip_match_pixel_values(const blip_matcher* matcher, const blip_pixel_values* pixels,
                                    const char* const* texts, size_t text_count, blip_match_score* scores) {
  return guarded("blip_match_pixel_values", [&] {
    require_handle(matcher, "matcher");
    require(scores != nullptr, "scores is NULL");
    require(text_count > 0, "text_count is 0; give at least one text");
    const blip::api::PixelValues values = pixel_values(pixels);
    const std::vector<std::string> text_list = text_arguments(texts, text_count, "texts");
    write_scores(matcher->task.match(values, text_list), scores);  // the facade checked the batch size
  });
}

blip_status blip_image_embeddings(const blip_matcher* matcher, const blip_image* images, size_t count,
                                  blip_embeddings** embeddings) {
  return guarded("blip_image_embeddings", [&] {
    clear_output(embeddings, "embeddings");
    require_handle(matcher, "matcher");
    require(count > 0, "count is 0; give at least one image");
    const ImageBatch batch = image_batch(images, count);
    *embeddings = new blip_embeddings{batch.files() ? matcher->task.image_embeddings(batch.paths)
                                                    : matcher->task.image_embeddings(batch.views)};
  });
}

blip_status blip_image_embeddings_pixel_values(const blip_matcher* matcher, const blip_pixel_values* pixels,
                                               blip_embeddings** embeddings) {
  return guarded("blip_image_embeddings_pixel_values", [&] {
    clear_output(embeddings, "embeddings");
    require_handle(matcher, "matcher");
    const blip::api::PixelValues values = pixel_values(pixels);
    *embeddings = new blip_embeddings{matcher->task.image_embeddings(values)};
  });
}

blip_status blip_text_embeddings(const blip_matcher* matcher, const char* const* texts, size_t count,
                                 blip_embeddings** embeddings) {
  return guarded("blip_text_embeddings", [&] {
    clear_output(embeddings, "embeddings");
    require_handle(matcher, "matcher");
    require(count > 0, "count is 0; give at least one text");
    *embeddings = new blip_embeddings{matcher->task.text_embeddings(text_arguments(texts, count, "texts"))};
  });
}

size_t blip_embeddings_count(const blip_embeddings* embeddings) {
  return embeddings == nullptr ? 0 : embeddings->items.size();
}

const float* blip_embeddings_get(const blip_embeddings* embeddings, size_t index, size_t* vectors, size_t* dimension) {
  const bool present = embeddings != nullptr && index < embeddings->items.size();
  const blip::api::Embedding* item = present ? &embeddings->items[index] : nullptr;
  if (vectors != nullptr) *vectors = item != nullptr ? static_cast<std::size_t>(item->vectors) : 0;
  if (dimension != nullptr) *dimension = item != nullptr ? static_cast<std::size_t>(item->dimension) : 0;
  return item != nullptr ? item->values.data() : nullptr;
}

void blip_embeddings_free(blip_embeddings* embeddings) { delete embeddings; }

}  // extern "C"
