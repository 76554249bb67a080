// blip/tasks/retrieval_index.hpp: an embedding index for image-text retrieval: the ITC
// embeddings of a list of images and of a list of texts, computed once with an
// ImageTextMatcher, saved to a .safetensors file, loaded back and searched by a text or an
// image with the score match() gives (evaluation/retrieval.hpp: itc_scores).
//
//   blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load("models/blip-itm-base-coco");
//   blip::RetrievalIndex index = blip::make_retrieval_index(matcher, image_paths, texts);
//   blip::save_retrieval_index(index, "index.safetensors");
//   auto best = blip::search_images(blip::load_retrieval_index("index.safetensors"),
//                                   matcher.text_embeddings({"a dog on a beach"}), 10);
//
// The file: tensors "image_embeddings" F32 [images, queries, D] (BLIP: queries = 1) and
// "text_embeddings" F32 [texts, D] (each absent when the index has none), and in
// __metadata__: "format" (kRetrievalIndexFormat), "family" ("blip" or "blip2"),
// "queries_per_image", "dimension", "model" (the model folder's name, as a reminder), and
// "image_paths" / "texts" as JSON arrays of strings. All of it lives in the safetensors header,
// which readers cap at 100 MB: about a million captions.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/evaluation/retrieval.hpp"
#include "blip/io/image.hpp"
#include "blip/io/safetensors.hpp"
#include "blip/tasks/image_text_matcher.hpp"

namespace blip {

inline constexpr const char* kRetrievalIndexFormat = "blipcpp-retrieval-index/1";

struct RetrievalIndex {
  std::string family;                  // "blip" or "blip2": whose embeddings these are
  std::string model;                   // the model folder's name (informational)
  std::int64_t queries_per_image = 1;  // BLIP 1; BLIP-2 the Q-Former's query tokens (32)
  std::int64_t dimension = 0;          // image_text_hidden_size (256)
  std::vector<std::string> image_paths;
  std::vector<std::string> texts;
  Tensor<float> image_embeddings;      // [images, queries_per_image, dimension], unit rows
  Tensor<float> text_embeddings;       // [texts, dimension], unit rows

  evaluation::EmbeddingView view() const {
    evaluation::EmbeddingView embeddings;
    embeddings.images = image_embeddings.data();
    embeddings.image_count = static_cast<std::int64_t>(image_paths.size());
    embeddings.queries = queries_per_image;
    embeddings.texts = text_embeddings.data();
    embeddings.text_count = static_cast<std::int64_t>(texts.size());
    embeddings.dimension = dimension;
    return embeddings;
  }
};

// Progress of a long run: (what, done, total).
using RetrievalProgress = std::function<void(const char*, std::int64_t, std::int64_t)>;

inline std::string retrieval_family(const ImageTextMatcher& matcher) { return matcher.is_blip2() ? "blip2" : "blip"; }

// "models/blip-itm-base-coco/" -> "blip-itm-base-coco": what the index records of its model.
inline std::string model_folder_name(const std::string& directory) {
  std::filesystem::path path = std::filesystem::path(directory).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // a trailing separator
  return path.filename().string();
}

// The image embeddings of `paths`, [images, queries, D], `batch` images at a time: memory is
// one batch of pixel values and its activations (each image decoded alone, load_preprocessed_batch).
inline Tensor<float> embed_images(const ImageTextMatcher& matcher, const std::vector<std::string>& paths,
                                  std::int64_t batch = 8, const RetrievalProgress& progress = {}) {
  check(batch > 0, "embed_images: batch must be > 0, got ", batch);
  const auto count = static_cast<std::int64_t>(paths.size());
  Tensor<float> result;
  for (std::int64_t first = 0; first < count; first += batch) {
    const std::int64_t size = std::min(batch, count - first);
    const std::vector<std::string> part(paths.begin() + first, paths.begin() + first + size);
    const Tensor<float> embeddings =
        matcher.image_embeddings(load_preprocessed_batch(part, matcher.folder().image_processor));
    const std::int64_t queries = embeddings.rank() == 3 ? embeddings.dim(1) : 1;
    if (result.empty()) result = Tensor<float>(Shape{count, queries, embeddings.dim(-1)});
    std::copy_n(embeddings.data(), embeddings.numel(), result.data() + first * queries * embeddings.dim(-1));
    if (progress) progress("images embedded", first + size, count);
  }
  return result;
}

// The text embeddings of `texts`, [texts, D], `batch` texts at a time (each batch padded to
// its longest text, as match() pads its texts).
inline Tensor<float> embed_texts(const ImageTextMatcher& matcher, const std::vector<std::string>& texts,
                                 std::int64_t batch = 64, const RetrievalProgress& progress = {}) {
  check(batch > 0, "embed_texts: batch must be > 0, got ", batch);
  const auto count = static_cast<std::int64_t>(texts.size());
  Tensor<float> result;
  for (std::int64_t first = 0; first < count; first += batch) {
    const std::int64_t size = std::min(batch, count - first);
    const Tensor<float> embeddings =
        matcher.text_embeddings(std::vector<std::string>(texts.begin() + first, texts.begin() + first + size));
    if (result.empty()) result = Tensor<float>(Shape{count, embeddings.dim(-1)});
    std::copy_n(embeddings.data(), embeddings.numel(), result.data() + first * embeddings.dim(-1));
    if (progress) progress("texts embedded", first + size, count);
  }
  return result;
}

// An index of `image_paths` and `texts` (either may be empty) made with `matcher`.
inline RetrievalIndex make_retrieval_index(const ImageTextMatcher& matcher, const std::vector<std::string>& image_paths,
                                           const std::vector<std::string>& texts, std::int64_t batch = 8,
                                           const RetrievalProgress& progress = {}) {
  RetrievalIndex index;
  index.family = retrieval_family(matcher);
  index.model = model_folder_name(matcher.folder().directory);
  index.queries_per_image = matcher.is_blip2() ? matcher.blip2_model().qformer.query_count() : 1;
  index.dimension = matcher.is_blip2() ? matcher.blip2_model().config.image_text_hidden_size
                                       : matcher.model().config.image_text_hidden_size;
  index.image_paths = image_paths;
  index.texts = texts;
  if (!image_paths.empty()) index.image_embeddings = embed_images(matcher, image_paths, batch, progress);
  if (!texts.empty()) index.text_embeddings = embed_texts(matcher, texts, std::max<std::int64_t>(batch, 64), progress);
  return index;
}

inline void save_retrieval_index(const RetrievalIndex& index, const std::string& path) {
  SafetensorsWriter writer;
  writer.set_metadata("format", kRetrievalIndexFormat);
  writer.set_metadata("family", index.family);
  writer.set_metadata("model", index.model);
  writer.set_metadata("queries_per_image", std::to_string(index.queries_per_image));
  writer.set_metadata("dimension", std::to_string(index.dimension));
  writer.set_metadata("image_paths", nlohmann::json(index.image_paths).dump());
  writer.set_metadata("texts", nlohmann::json(index.texts).dump());
  if (!index.image_paths.empty()) writer.add("image_embeddings", index.image_embeddings);
  if (!index.texts.empty()) writer.add("text_embeddings", index.text_embeddings);
  writer.write(path);
}

namespace detail {

inline const std::string& index_metadata(const SafetensorsFile& file, const char* key) {
  const auto found = file.metadata().find(key);
  check(found != file.metadata().end(), file.path(), ": not a blipcpp retrieval index (no \"", key,
        "\" in __metadata__; blip_embed writes these files)");
  return found->second;
}

inline std::int64_t index_positive_integer(const SafetensorsFile& file, const char* key) {
  const std::string& text = index_metadata(file, key);
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  check(!text.empty() && *end == '\0' && value > 0 && value <= (1LL << 20), file.path(), ": __metadata__ \"", key,
        "\" must be a positive integer, got \"", clip(text), "\"");
  return value;
}

inline std::vector<std::string> index_string_list(const SafetensorsFile& file, const char* key) {
  const std::string& text = index_metadata(file, key);
  const nlohmann::json list =
      detail::parse_strict_json(text.data(), text.data() + text.size(), file.path(), (std::string("__metadata__ ") + key).c_str());
  check(list.is_array(), file.path(), ": __metadata__ \"", key, "\" must be a JSON array of strings");
  std::vector<std::string> out;
  for (const nlohmann::json& item : list) {
    check(item.is_string(), file.path(), ": __metadata__ \"", key, "\" must hold strings only, found ", item.type_name());
    out.push_back(item.get<std::string>());
  }
  return out;
}

// The tensor `name` [rows, shape...] as an owned f32 tensor, checked against the metadata.
inline Tensor<float> index_embeddings(const SafetensorsFile& file, const char* name, const Shape& expected) {
  if (expected[0] == 0) {
    check(!file.contains(name), file.path(), ": tensor \"", name, "\" present but the metadata lists no entries for it");
    return {};
  }
  check(file.contains(name), file.path(), ": no tensor \"", name, "\" for the ", expected[0], " entries its metadata lists");
  const TensorInfo& info = file.info(name);
  check(info.shape == expected, file.path(), ": tensor \"", name, "\" has shape ", info.shape, ", expected ", expected,
        " from the metadata");
  return file.to_f32(name).clone();
}

}  // namespace detail

inline RetrievalIndex load_retrieval_index(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const std::string& format = detail::index_metadata(file, "format");
  check(format == kRetrievalIndexFormat, path, ": not a blipcpp retrieval index (its __metadata__ format is \"",
        clip(format), "\"; blip_embed writes \"", kRetrievalIndexFormat, "\")");
  RetrievalIndex index;
  index.family = detail::index_metadata(file, "family");
  check(index.family == "blip" || index.family == "blip2", path, ": family \"", clip(index.family),
        "\", expected \"blip\" or \"blip2\"");
  index.model = detail::index_metadata(file, "model");
  index.queries_per_image = detail::index_positive_integer(file, "queries_per_image");
  index.dimension = detail::index_positive_integer(file, "dimension");
  check(index.family == "blip2" || index.queries_per_image == 1, path, ": a BLIP index has one embedding per image, not ",
        index.queries_per_image);
  index.image_paths = detail::index_string_list(file, "image_paths");
  index.texts = detail::index_string_list(file, "texts");
  index.image_embeddings = detail::index_embeddings(
      file, "image_embeddings",
      Shape{static_cast<std::int64_t>(index.image_paths.size()), index.queries_per_image, index.dimension});
  index.text_embeddings = detail::index_embeddings(
      file, "text_embeddings", Shape{static_cast<std::int64_t>(index.texts.size()), index.dimension});
  return index;
}

// Scores from another model's embeddings would be meaningless: the index must come from the
// same family with the same embedding sizes. A different folder name is only a warning (a
// copied or renamed folder is fine; another checkpoint of the same size is not, and cannot be told
// apart from the embeddings' sizes).
inline void check_index_matches_model(const RetrievalIndex& index, const std::string& index_path,
                                      const ImageTextMatcher& matcher, bool warn = true) {
  const std::string family = retrieval_family(matcher);
  const std::int64_t queries = matcher.is_blip2() ? matcher.blip2_model().qformer.query_count() : 1;
  const std::int64_t dimension = matcher.is_blip2() ? matcher.blip2_model().config.image_text_hidden_size
                                                    : matcher.model().config.image_text_hidden_size;
  const auto describe = [](const std::string& name, std::int64_t q, std::int64_t d) {
    return (name == "blip2" ? "a BLIP-2 model (" + std::to_string(q) + " query embeddings of " : "a BLIP model (one embedding of ") +
           std::to_string(d) + " per image)";
  };
  check(index.family == family && index.queries_per_image == queries && index.dimension == dimension, index_path,
        " was made by ", describe(index.family, index.queries_per_image, index.dimension), " but ",
        matcher.folder().directory, " is ", describe(family, queries, dimension),
        ": its scores would be meaningless; embed the images and texts again with this model (blip_embed)");
  const std::string model = model_folder_name(matcher.folder().directory);
  if (warn && !model.empty() && model != index.model)
    std::fprintf(stderr, "[blip] note: %s was made with a model folder named '%s', this one is '%s'; scores are only "
                 "meaningful with the same checkpoint\n", index_path.c_str(), index.model.c_str(), model.c_str());
}

// The index's images ranked for one text embedding [D] (or [1, D]): the k best, best first.
inline std::vector<evaluation::ScoredIndex> search_images(const RetrievalIndex& index, Tensor<const float> text_embedding,
                                                          std::int64_t k) {
  check(!index.image_paths.empty(), "retrieval index: it holds no images to search (made with --texts only)");
  check(text_embedding.numel() == index.dimension, "retrieval index: the query embedding has ", text_embedding.numel(),
        " values, the index ", index.dimension);
  evaluation::EmbeddingView embeddings = index.view();
  embeddings.texts = text_embedding.data();
  embeddings.text_count = 1;
  std::vector<float> scores(index.image_paths.size());
  // Column of one text: images in blocks so a BLIP-2 product stays small.
  const std::int64_t block = 4096;
  for (std::int64_t first = 0; first < embeddings.image_count; first += block) {
    const std::int64_t count = std::min(block, embeddings.image_count - first);
    evaluation::itc_scores(embeddings, first, count, 0, 1, scores.data() + first);
  }
  return evaluation::top_k(scores.data(), embeddings.image_count, k);
}

// The index's texts ranked for one image embedding [queries, D] (or [1, queries, D]).
inline std::vector<evaluation::ScoredIndex> search_texts(const RetrievalIndex& index, Tensor<const float> image_embedding,
                                                         std::int64_t k) {
  check(!index.texts.empty(), "retrieval index: it holds no texts to search (made with --images only)");
  check(image_embedding.numel() == index.queries_per_image * index.dimension, "retrieval index: the query embedding has ",
        image_embedding.numel(), " values, the index ", index.queries_per_image, " x ", index.dimension);
  evaluation::EmbeddingView embeddings = index.view();
  embeddings.images = image_embedding.data();
  embeddings.image_count = 1;
  std::vector<float> scores(index.texts.size());
  const std::int64_t block = 4096;
  for (std::int64_t first = 0; first < embeddings.text_count; first += block) {
    const std::int64_t count = std::min(block, embeddings.text_count - first);
    evaluation::itc_scores(embeddings, 0, 1, first, count, scores.data() + first);
  }
  return evaluation::top_k(scores.data(), embeddings.text_count, k);
}

}  // namespace blip
