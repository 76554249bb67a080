/* blip/blip.h: blipcpp's C interface.
 *
 * For C programs, plugins, and the foreign-function interfaces of other languages (Go's cgo, Rust,
 * Swift, Python's ctypes): plain C99 types, opaque handles, status codes, and no C++ exception ever
 * crosses it. Behind it is the C++ facade (blip/api.hpp): the same task classes, the same results
 * bit for bit (tests/unit/c_api_test.cpp checks that on the fixture models).
 *
 * Linking: the shared library libblip.so (CMake: target_link_libraries(app PRIVATE blip::c); pkg-config:
 * `pkg-config --cflags --libs blip-c`). It exports the blip_ functions below and nothing else (the
 * C++ inside stays private to it), and names its own run-time dependencies (libstdc++, libgomp), so a
 * C program links it with the C compiler alone.
 *
 *   #include <blip/blip.h>
 *   blip_captioner* captioner = NULL;
 *   if (blip_captioner_load("models/blip-image-captioning-base", NULL, &captioner) != BLIP_OK) {
 *     fprintf(stderr, "%s\n", blip_last_error());
 *     return 1;
 *   }
 *   blip_image image = {"photo.jpg", NULL, 0, 0};
 *   blip_texts* captions = NULL;
 *   if (blip_caption(captioner, &image, 1, NULL, NULL, &captions) == BLIP_OK)
 *     printf("%s\n", blip_texts_get(captions, 0, 0)->text);
 *   blip_texts_free(captions);
 *   blip_captioner_free(captioner);
 *
 * Status and errors: every function that can fail returns a blip_status; on failure its output
 * pointer is left NULL (or untouched, for caller-owned arrays) and blip_last_error() gives the
 * library's message, which names the file, tensor or argument and what was expected. The message is
 * per thread and stays valid until the same thread's next failing call.
 *
 * Ownership: the library allocates every handle and result, and the matching blip_*_free releases
 * it (NULL is accepted and ignored). Strings and arrays passed in are read during the call only.
 * Strings are UTF-8, NUL-terminated.
 *
 * Threads: a loaded model is immutable. Its functions may be called from several threads at once
 * (each call keeps its own state), on the same handle. The kernels' thread count is the process's
 * OpenMP setting (OMP_NUM_THREADS, or blip_load_options.num_threads), not the handle's.
 *
 * Versions: BLIP_C_API_VERSION changes whenever a struct below changes its layout or a function its
 * meaning; a program that loads the library at run time compares it with blip_c_api_version().
 */
#ifndef BLIP_BLIP_H
#define BLIP_BLIP_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define BLIP_C_EXPORT __attribute__((visibility("default")))
#else
#define BLIP_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define BLIP_C_API_VERSION 1

typedef enum blip_status {
  BLIP_OK = 0,
  /* The call itself was wrong: a null handle or pointer, an image with neither a path nor pixels, a
     batch mixing paths and pixels, sizes whose product overflows. */
  BLIP_ERROR_INVALID_ARGUMENT = 1,
  /* The library refused its input: a model folder, config, tensor, tokenizer file, image, text or
     option that is not what it must be (the message says which and what was expected). */
  BLIP_ERROR_FAILED = 2,
  BLIP_ERROR_OUT_OF_MEMORY = 3,
  /* Anything else: a bug in blipcpp. The message is the C++ exception's. */
  BLIP_ERROR_INTERNAL = 4
} blip_status;

/* "BLIP_OK", "BLIP_ERROR_FAILED", ...; "unknown status" for other values. */
BLIP_C_EXPORT const char* blip_status_name(blip_status status);
/* This thread's last failure's message; "" before any. */
BLIP_C_EXPORT const char* blip_last_error(void);
/* The library's version ("0.1.0") and BLIP_C_API_VERSION as the library was built. */
BLIP_C_EXPORT const char* blip_version(void);
BLIP_C_EXPORT int blip_c_api_version(void);

/* ---- Loading ------------------------------------------------------------------------------------ */

/* How the weights are loaded. All fields zero (or a NULL pointer for the whole struct): the defaults. */
typedef struct blip_load_options {
  const char* tokenizer_dir; /* where the tokenizer files are (a folder or a cached Hub id); NULL: the model folder */
  /* The Linear weights' precision: NULL or "as-stored" (the checkpoint's own type), "f32", "bf16",
     "f16", "int8" or "int4", as the programs' --precision. */
  const char* precision;
  /* What narrow weights multiply: NULL or "f32", "bf16" (with bf16 weights) or "int8" (with int8 or
     int4 weights), as the programs' --activations. */
  const char* activations;
  int num_threads; /* the kernels' threads; 0: OpenMP's default (OMP_NUM_THREADS or every core) */
  int verbose;     /* nonzero: load progress and timings on stderr */
} blip_load_options;

/* An image: a file (path not NULL: PNG, JPEG, BMP, GIF, ...; EXIF rotation applied and converted to
   RGB, as Hugging Face's load_image), or pixels already decoded (path NULL: width * height pixels of
   3 bytes, R, G, B, rows top to bottom, no padding). The images of one call are all files or all
   pixels. */
typedef struct blip_image {
  const char* path;
  const uint8_t* rgb;
  int width;
  int height;
} blip_image;

/* Images already preprocessed, as Hugging Face's image processors return pixel_values (BlipProcessor(...,
   return_tensors="np")["pixel_values"]): float32 [batch, channels, height, width], row-major, resized,
   rescaled and normalized as the model's preprocessor_config.json says; the model checks the shape (3
   channels, its image size). For pipelines that preprocess elsewhere, and for checking against Hugging
   Face on its own tensors. */
typedef struct blip_pixel_values {
  const float* data;
  int64_t batch;
  int64_t channels;
  int64_t height;
  int64_t width;
} blip_pixel_values;

/* How to generate: Hugging Face's GenerationConfig names and meanings (blip::api::GenerationOptions).
   Start from a model's defaults (blip_captioner_default_options, blip_visual_qa_default_options: its
   config.json, as HF's generate()), then change fields; a NULL options pointer means those defaults. */
typedef struct blip_generation_options {
  int64_t max_new_tokens;       /* new tokens at most; -1: unset, max_length applies */
  int64_t max_length;           /* total length, prompt included (when max_new_tokens is -1) */
  int64_t min_new_tokens;       /* 0: unset; else no end of sequence before this many new tokens */
  int64_t min_length;           /* no end of sequence while the sequence is shorter */
  int64_t num_beams;            /* 1: greedy (or sampling); more: beam search */
  int do_sample;                /* nonzero: sample */
  double temperature;           /* sampling only */
  int64_t top_k;                /* sampling only; 0 disables */
  double top_p;                 /* sampling only; 1 disables */
  double repetition_penalty;    /* 1 disables */
  int64_t no_repeat_ngram_size; /* 0 disables */
  double length_penalty;        /* beam search: sum_logprobs / new_tokens ** length_penalty */
  int64_t num_return_sequences; /* results per image: the best beams, or independent samples */
  uint64_t seed;                /* sampling: the same seed gives the same sequences (not torch's) */
} blip_generation_options;

/* ---- Generated text: captions and answers ------------------------------------------------------- */

typedef struct blip_text {
  const char* text;         /* decoded, special tokens skipped (BLIP-2: also stripped of spaces) */
  const int64_t* token_ids; /* what generate() returned (BLIP: [DEC] + prompt + new tokens) */
  size_t token_count;
  float score;              /* beam search: HF's sequences_scores; NaN for greedy search and sampling */
} blip_text;

/* The result of one call: per image (or question), num_return_sequences texts, best first. */
typedef struct blip_texts blip_texts;

BLIP_C_EXPORT size_t blip_texts_groups(const blip_texts* texts);              /* images or questions */
BLIP_C_EXPORT size_t blip_texts_count(const blip_texts* texts, size_t group); /* texts of one; 0 out of range */
/* Text `rank` of group `group`; NULL out of range. Valid until blip_texts_free. */
BLIP_C_EXPORT const blip_text* blip_texts_get(const blip_texts* texts, size_t group, size_t rank);
BLIP_C_EXPORT void blip_texts_free(blip_texts* texts);

/* ---- Captioning: BLIP captioning models and BLIP-2 (OPT, Flan-T5) ------------------------------- */

typedef struct blip_captioner blip_captioner;

/* A model folder, or a Hub id already in the Hugging Face cache. */
BLIP_C_EXPORT blip_status blip_captioner_load(const char* model_dir, const blip_load_options* options,
                                              blip_captioner** captioner);
BLIP_C_EXPORT void blip_captioner_free(blip_captioner* captioner);
BLIP_C_EXPORT blip_status blip_captioner_default_options(const blip_captioner* captioner,
                                                         blip_generation_options* options);
BLIP_C_EXPORT int blip_captioner_is_blip2(const blip_captioner* captioner); /* 1 BLIP-2, 0 BLIP or NULL */
/* Captions of image_count images in one batch (the same captions as one at a time). prompt: NULL or
   "" for unconditional captioning; else every caption continues it. */
BLIP_C_EXPORT blip_status blip_caption(const blip_captioner* captioner, const blip_image* images, size_t image_count,
                                       const char* prompt, const blip_generation_options* options,
                                       blip_texts** captions);

/* The same for pixel values preprocessed elsewhere: one group of captions per batch row. */
BLIP_C_EXPORT blip_status blip_caption_pixel_values(const blip_captioner* captioner, const blip_pixel_values* pixels,
                                                    const char* prompt, const blip_generation_options* options,
                                                    blip_texts** captions);

/* ---- Visual question answering: BLIP VQA models and BLIP-2 ("Question: {q} Answer:") ------------ */

typedef struct blip_visual_qa blip_visual_qa;

BLIP_C_EXPORT blip_status blip_visual_qa_load(const char* model_dir, const blip_load_options* options,
                                              blip_visual_qa** visual_qa);
BLIP_C_EXPORT void blip_visual_qa_free(blip_visual_qa* visual_qa);
BLIP_C_EXPORT blip_status blip_visual_qa_default_options(const blip_visual_qa* visual_qa,
                                                         blip_generation_options* options);
BLIP_C_EXPORT int blip_visual_qa_is_blip2(const blip_visual_qa* visual_qa);
/* questions[i] about images[i], count pairs in one batch. */
BLIP_C_EXPORT blip_status blip_answer(const blip_visual_qa* visual_qa, const blip_image* images,
                                      const char* const* questions, size_t count,
                                      const blip_generation_options* options, blip_texts** answers);

/* questions[i] about batch row i of `pixels` (count rows). */
BLIP_C_EXPORT blip_status blip_answer_pixel_values(const blip_visual_qa* visual_qa, const blip_pixel_values* pixels,
                                                   const char* const* questions, size_t count,
                                                   const blip_generation_options* options, blip_texts** answers);

/* ---- Image-text matching and retrieval embeddings: BLIP ITM models, BLIP-2's Q-Former ------------ */

typedef struct blip_matcher blip_matcher;

typedef struct blip_match_score {
  float match_probability; /* ITM head: softmax(itm_logits)[1], the probability that the text describes the image */
  float similarity;        /* ITC: cosine of the projected features (BLIP-2: the best query token's) */
} blip_match_score;

BLIP_C_EXPORT blip_status blip_matcher_load(const char* model_dir, const blip_load_options* options,
                                            blip_matcher** matcher);
BLIP_C_EXPORT void blip_matcher_free(blip_matcher* matcher);
BLIP_C_EXPORT int blip_matcher_is_blip2(const blip_matcher* matcher);
/* Every pair: scores[i * text_count + j] for image i and text j; `scores` holds image_count *
   text_count entries, allocated by the caller. */
BLIP_C_EXPORT blip_status blip_match(const blip_matcher* matcher, const blip_image* images, size_t image_count,
                                     const char* const* texts, size_t text_count, blip_match_score* scores);

/* The same for the batch rows of `pixels` (scores: pixels->batch * text_count entries). */
BLIP_C_EXPORT blip_status blip_match_pixel_values(const blip_matcher* matcher, const blip_pixel_values* pixels,
                                                  const char* const* texts, size_t text_count,
                                                  blip_match_score* scores);

/* Unit vectors that ITC compares: a text's or a BLIP image's is one vector, a BLIP-2 image's one per
   query token. blip_match's similarity is the dot product of an image's and a text's (BLIP-2: the
   largest over the image's vectors). */
typedef struct blip_embeddings blip_embeddings;

BLIP_C_EXPORT blip_status blip_image_embeddings(const blip_matcher* matcher, const blip_image* images, size_t count,
                                                blip_embeddings** embeddings);
BLIP_C_EXPORT blip_status blip_image_embeddings_pixel_values(const blip_matcher* matcher,
                                                             const blip_pixel_values* pixels,
                                                             blip_embeddings** embeddings);
BLIP_C_EXPORT blip_status blip_text_embeddings(const blip_matcher* matcher, const char* const* texts, size_t count,
                                               blip_embeddings** embeddings);
BLIP_C_EXPORT size_t blip_embeddings_count(const blip_embeddings* embeddings);
/* Embedding `index`: vectors * dimension floats, vector after vector; NULL out of range (then
   *vectors and *dimension are 0). Either size pointer may be NULL. Valid until blip_embeddings_free. */
BLIP_C_EXPORT const float* blip_embeddings_get(const blip_embeddings* embeddings, size_t index, size_t* vectors,
                                               size_t* dimension);
BLIP_C_EXPORT void blip_embeddings_free(blip_embeddings* embeddings);

#ifdef __cplusplus
}
#endif

#endif /* BLIP_BLIP_H */
