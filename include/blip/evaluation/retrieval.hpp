// blip/evaluation/retrieval.hpp: image-text retrieval over ITC embeddings, and
// Recall@K as the BLIP papers report it (COCO / Flickr30k, several captions per image).
//
//   scores       the ITC score ImageTextMatcher::match() gives: BLIP, the dot of two unit
//                vectors; BLIP-2, the best dot over the image's query embeddings
//                (Blip2ForImageTextRetrieval.best_query_similarity). Computed in blocks of
//                images x texts, never images x texts x hidden.
//   top_k        the k best candidates of a row of scores
//   retrieval_recall
//                image->text and text->image Recall@1/5/10 as salesforce/BLIP's itm_eval()
//                (train_retrieval.py), optionally after ITM re-ranking as its evaluation().
//
// Depends on core/ and Eigen only; the models fill the embeddings (tasks/retrieval_index.hpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/core/error.hpp"

namespace blip::evaluation {

// ITC embeddings, row-major, not owned: images [image_count, queries, dimension] (BLIP:
// queries = 1), texts [text_count, dimension]; every row a unit vector.
struct EmbeddingView {
  const float* images = nullptr;
  std::int64_t image_count = 0;
  std::int64_t queries = 1;
  const float* texts = nullptr;
  std::int64_t text_count = 0;
  std::int64_t dimension = 0;
};

// out[i * text_count + t] = score(first_image + i, first_text + t) for image_count images
// and text_count texts: the best over the image's queries of dot(image query, text).
// Memory: one [image_count * queries, text_count] product, so callers bound it by the block.
inline void itc_scores(const EmbeddingView& embeddings, std::int64_t first_image, std::int64_t image_count,
                       std::int64_t first_text, std::int64_t text_count, float* out) {
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  check(first_image >= 0 && image_count >= 0 && first_image + image_count <= embeddings.image_count &&
            first_text >= 0 && text_count >= 0 && first_text + text_count <= embeddings.text_count,
        "itc_scores: images [", first_image, ", +", image_count, ") or texts [", first_text, ", +", text_count,
        ") outside the ", embeddings.image_count, " images and ", embeddings.text_count, " texts");
  if (image_count == 0 || text_count == 0) return;
  const std::int64_t queries = embeddings.queries, dimension = embeddings.dimension;
  const Eigen::Map<const RowMatrix> images(embeddings.images + first_image * queries * dimension,
                                           image_count * queries, dimension);
  const Eigen::Map<const RowMatrix> texts(embeddings.texts + first_text * dimension, text_count, dimension);
  Eigen::Map<RowMatrix> scores(out, image_count, text_count);
  if (queries == 1) {
    scores.noalias() = images * texts.transpose();
    return;
  }
  const RowMatrix per_query = images * texts.transpose();  // [image_count * queries, text_count]
  for (std::int64_t image = 0; image < image_count; ++image)
    scores.row(image) = per_query.middleRows(image * queries, queries).colwise().maxCoeff();
}

struct ScoredIndex {
  std::int64_t index;
  float score;
};

// The first of two candidates in a ranking: the higher score, and on equal scores the lower
// index (a stable sort, descending). numpy's argsort(score)[::-1] in itm_eval reverses its
// own tie order instead; with real-valued scores ties are rare, and this rule is reproducible.
inline bool ranks_before(const ScoredIndex& a, const ScoredIndex& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// The k best of scores[0..count) (all of them when k >= count), best first.
inline std::vector<ScoredIndex> top_k(const float* scores, std::int64_t count, std::int64_t k) {
  std::vector<ScoredIndex> all(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) all[static_cast<std::size_t>(i)] = {i, scores[i]};
  const std::size_t kept = static_cast<std::size_t>(std::clamp<std::int64_t>(k, 0, count));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(kept), all.end(), ranks_before);
  all.resize(kept);
  return all;
}

// Rows of an images x texts score matrix, on demand: image_rows(first, count, out) fills
// out[r * text_count + t] for images first..first+count; text_rows(first, count, out) fills
// out[r * image_count + i] for texts first..first+count.
struct SimilaritySource {
  std::int64_t image_count = 0, text_count = 0;
  std::function<void(std::int64_t, std::int64_t, float*)> image_rows;
  std::function<void(std::int64_t, std::int64_t, float*)> text_rows;
};

// A whole matrix [images, texts] held by the caller (tests, small sets).
inline SimilaritySource similarity_from_matrix(const float* matrix, std::int64_t image_count, std::int64_t text_count) {
  SimilaritySource source;
  source.image_count = image_count;
  source.text_count = text_count;
  source.image_rows = [=](std::int64_t first, std::int64_t count, float* out) {
    std::copy_n(matrix + first * text_count, count * text_count, out);
  };
  source.text_rows = [=](std::int64_t first, std::int64_t count, float* out) {
    for (std::int64_t row = 0; row < count; ++row)
      for (std::int64_t image = 0; image < image_count; ++image)
        out[row * image_count + image] = matrix[image * text_count + first + row];
  };
  return source;
}

// Scores computed from embeddings as rows are asked for (itc_scores), texts in blocks of
// `text_block` so a BLIP-2 product stays [rows * queries, text_block].
inline SimilaritySource similarity_from_embeddings(const EmbeddingView& embeddings, std::int64_t text_block = 1024) {
  SimilaritySource source;
  source.image_count = embeddings.image_count;
  source.text_count = embeddings.text_count;
  source.image_rows = [=](std::int64_t first, std::int64_t count, float* out) {
    const std::int64_t texts = embeddings.text_count;
    std::vector<float> block;
    for (std::int64_t text = 0; text < texts; text += text_block) {
      const std::int64_t width = std::min(text_block, texts - text);
      block.resize(static_cast<std::size_t>(count * width));
      itc_scores(embeddings, first, count, text, width, block.data());
      for (std::int64_t row = 0; row < count; ++row)
        std::copy_n(block.data() + row * width, width, out + row * texts + text);
    }
  };
  source.text_rows = [=](std::int64_t first, std::int64_t count, float* out) {
    const std::int64_t images = embeddings.image_count;
    const std::int64_t image_block = std::max<std::int64_t>(1, text_block / std::max<std::int64_t>(1, embeddings.queries));
    std::vector<float> block;
    for (std::int64_t image = 0; image < images; image += image_block) {
      const std::int64_t height = std::min(image_block, images - image);
      block.resize(static_cast<std::size_t>(height * count));
      itc_scores(embeddings, image, height, first, count, block.data());
      for (std::int64_t i = 0; i < height; ++i)
        for (std::int64_t row = 0; row < count; ++row) out[row * images + image + i] = block[i * count + row];
    }
  };
  return source;
}

// The ITM head's "match" logit (itm_head(...)[:, 1], before any softmax) for image `image`
// paired with each of `texts`, in that order.
using ItmLogits = std::function<std::vector<float>(std::int64_t image, const std::vector<std::int64_t>& texts)>;

struct RecallOptions {
  // 0: rank by ITC alone. k > 0: re-rank each query's k best ITC candidates with the ITM head,
  // as BLIP's evaluation() (k_test: COCO 256, Flickr30k 128); needs itm_logits.
  std::int64_t rerank_k = 0;
  ItmLogits itm_logits;
  // Query rows scored at once: memory is rows x (images or texts) floats.
  std::int64_t rows_per_block = 256;
  // Called after each block and each re-ranked image: (stage, done, total).
  std::function<void(const char*, std::int64_t, std::int64_t)> progress;
};

struct RetrievalRecall {
  // Percent, as itm_eval: txt_* image->text (an image query is right at K if any of its
  // captions is among its K first texts), img_* text->image (a caption query if its image is).
  double txt_r1 = 0, txt_r5 = 0, txt_r10 = 0, txt_r_mean = 0;
  double img_r1 = 0, img_r5 = 0, img_r10 = 0, img_r_mean = 0;
  double r_mean = 0;
  std::vector<std::int64_t> image_query_ranks;  // 0-based rank of the best-placed caption, per image
  std::vector<std::int64_t> text_query_ranks;   // 0-based rank of the caption's image, per text
};

namespace detail {

inline double percent_below(const std::vector<std::int64_t>& ranks, std::int64_t k) {
  if (ranks.empty()) return 0.0;
  const auto hits = std::count_if(ranks.begin(), ranks.end(), [&](std::int64_t rank) { return rank < k; });
  return 100.0 * static_cast<double>(hits) / static_cast<double>(ranks.size());
}

// ITM logits of the re-ranked pairs, per image, sorted by text.
struct PairLogits {
  std::vector<std::vector<std::pair<std::int64_t, float>>> by_image;
  float at(std::int64_t image, std::int64_t text) const {
    const auto& row = by_image[static_cast<std::size_t>(image)];
    const auto found = std::lower_bound(row.begin(), row.end(), std::make_pair(text, -std::numeric_limits<float>::infinity()));
    check(found != row.end() && found->first == text, "retrieval_recall: no ITM logit for image ", image, ", text ", text);
    return found->second;
  }
};

// The ranking of one query's candidates. Without re-ranking: by ITC score. With it, as BLIP's
// evaluation() (salesforce/BLIP train_retrieval.py; LAVIS blip_retrieval compute_sim_matrix
// alike): the query's rerank_k best ITC candidates get score = itm_head(...)[:, 1] + ITC
// (`score_matrix_i2t[i, topk_idx] = score + topk_sim`) and the rest -100, so the re-ranked
// ones come first, ordered by ITM logit + ITC; the rest stay in ITC order here (BLIP leaves
// their equal -100 scores to argsort). Returns the 0-based rank of the best-placed `targets`.
inline std::int64_t rank_of_targets(const float* itc, std::int64_t count, const std::vector<std::int64_t>& targets,
                                    std::int64_t rerank_k, const std::function<float(std::int64_t)>& itm_logit,
                                    std::vector<char>& reranked) {
  std::vector<float> final_score(itc, itc + count);
  reranked.assign(static_cast<std::size_t>(count), 0);
  if (rerank_k > 0) {
    for (const ScoredIndex& candidate : top_k(itc, count, rerank_k)) {
      reranked[static_cast<std::size_t>(candidate.index)] = 1;
      final_score[static_cast<std::size_t>(candidate.index)] = itm_logit(candidate.index) + candidate.score;
    }
  }
  const auto before = [&](std::int64_t a, std::int64_t b) {
    const char group_a = reranked[static_cast<std::size_t>(a)], group_b = reranked[static_cast<std::size_t>(b)];
    if (group_a != group_b) return group_a > group_b;
    return ranks_before({a, final_score[static_cast<std::size_t>(a)]}, {b, final_score[static_cast<std::size_t>(b)]});
  };
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  for (const std::int64_t target : targets) {
    std::int64_t rank = 0;
    for (std::int64_t other = 0; other < count; ++other) rank += before(other, target) ? 1 : 0;
    best = std::min(best, rank);
  }
  return best;
}

}  // namespace detail

// Recall@1/5/10 both ways. image_of_text[t] is the image caption t describes (COCO: five
// captions per image; Flickr30k: five). Every image needs at least one caption.
inline RetrievalRecall retrieval_recall(const SimilaritySource& scores, const std::vector<std::int64_t>& image_of_text,
                                        const RecallOptions& options = {}) {
  const std::int64_t image_count = scores.image_count, text_count = scores.text_count;
  check(image_count > 0 && text_count > 0, "retrieval_recall: needs at least one image and one text, got ",
        image_count, " and ", text_count);
  check(static_cast<std::int64_t>(image_of_text.size()) == text_count, "retrieval_recall: ", image_of_text.size(),
        " image ids for ", text_count, " texts");
  check(options.rerank_k >= 0, "retrieval_recall: rerank_k must be >= 0, got ", options.rerank_k);
  check(options.rerank_k == 0 || options.itm_logits, "retrieval_recall: rerank_k ", options.rerank_k,
        " needs the ITM logits (RecallOptions::itm_logits)");
  check(options.rows_per_block > 0, "retrieval_recall: rows_per_block must be > 0");
  std::vector<std::vector<std::int64_t>> captions_of_image(static_cast<std::size_t>(image_count));
  for (std::int64_t text = 0; text < text_count; ++text) {
    const std::int64_t image = image_of_text[static_cast<std::size_t>(text)];
    check(image >= 0 && image < image_count, "retrieval_recall: text ", text, " belongs to image ", image,
          ", outside the ", image_count, " images");
    captions_of_image[static_cast<std::size_t>(image)].push_back(text);
  }
  for (std::int64_t image = 0; image < image_count; ++image)
    check(!captions_of_image[static_cast<std::size_t>(image)].empty(), "retrieval_recall: image ", image,
          " has no caption");

  const auto report = [&](const char* stage, std::int64_t done, std::int64_t total) {
    if (options.progress) options.progress(stage, done, total);
  };
  const std::int64_t block = options.rows_per_block;
  std::vector<float> rows;
  // Visits every image row (image -> texts), then every text row (text -> images), a block at a time.
  const auto for_each_row = [&](const char* stage, bool image_queries,
                                const std::function<void(std::int64_t, const float*)>& visit) {
    const std::int64_t queries = image_queries ? image_count : text_count;
    const std::int64_t width = image_queries ? text_count : image_count;
    for (std::int64_t first = 0; first < queries; first += block) {
      const std::int64_t count = std::min(block, queries - first);
      rows.resize(static_cast<std::size_t>(count * width));
      (image_queries ? scores.image_rows : scores.text_rows)(first, count, rows.data());
      for (std::int64_t row = 0; row < count; ++row) visit(first + row, rows.data() + row * width);
      report(stage, first + count, queries);
    }
  };

  // Re-ranking: the ITM logit of every pair some query re-ranks, grouped by image so each
  // image's vision features are computed once for all its pairs.
  detail::PairLogits logits;
  if (options.rerank_k > 0) {
    std::vector<std::vector<std::int64_t>> texts_of_image(static_cast<std::size_t>(image_count));
    for_each_row("ITC candidates for images", true, [&](std::int64_t image, const float* row) {
      for (const ScoredIndex& text : top_k(row, text_count, options.rerank_k))
        texts_of_image[static_cast<std::size_t>(image)].push_back(text.index);
    });
    for_each_row("ITC candidates for texts", false, [&](std::int64_t text, const float* row) {
      for (const ScoredIndex& image : top_k(row, image_count, options.rerank_k))
        texts_of_image[static_cast<std::size_t>(image.index)].push_back(text);
    });
    logits.by_image.resize(static_cast<std::size_t>(image_count));
    for (std::int64_t image = 0; image < image_count; ++image) {
      auto& texts = texts_of_image[static_cast<std::size_t>(image)];
      std::sort(texts.begin(), texts.end());
      texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
      if (!texts.empty()) {
        const std::vector<float> values = options.itm_logits(image, texts);
        check(values.size() == texts.size(), "retrieval_recall: the ITM scorer gave ", values.size(),
              " logits for ", texts.size(), " texts of image ", image);
        auto& row = logits.by_image[static_cast<std::size_t>(image)];
        for (std::size_t i = 0; i < texts.size(); ++i) row.emplace_back(texts[i], values[i]);
      }
      texts = {};
      report("ITM re-ranking", image + 1, image_count);
    }
  }

  RetrievalRecall recall;
  recall.image_query_ranks.resize(static_cast<std::size_t>(image_count));
  recall.text_query_ranks.resize(static_cast<std::size_t>(text_count));
  std::vector<char> reranked;
  for_each_row("image -> text ranks", true, [&](std::int64_t image, const float* row) {
    recall.image_query_ranks[static_cast<std::size_t>(image)] = detail::rank_of_targets(
        row, text_count, captions_of_image[static_cast<std::size_t>(image)], options.rerank_k,
        [&](std::int64_t text) { return logits.at(image, text); }, reranked);
  });
  for_each_row("text -> image ranks", false, [&](std::int64_t text, const float* row) {
    recall.text_query_ranks[static_cast<std::size_t>(text)] = detail::rank_of_targets(
        row, image_count, {image_of_text[static_cast<std::size_t>(text)]}, options.rerank_k,
        [&](std::int64_t image) { return logits.at(image, text); }, reranked);
  });

  // itm_eval: tr = ranks < K over image queries, ir over text queries; means as it takes them.
  recall.txt_r1 = detail::percent_below(recall.image_query_ranks, 1);
  recall.txt_r5 = detail::percent_below(recall.image_query_ranks, 5);
  recall.txt_r10 = detail::percent_below(recall.image_query_ranks, 10);
  recall.img_r1 = detail::percent_below(recall.text_query_ranks, 1);
  recall.img_r5 = detail::percent_below(recall.text_query_ranks, 5);
  recall.img_r10 = detail::percent_below(recall.text_query_ranks, 10);
  recall.txt_r_mean = (recall.txt_r1 + recall.txt_r5 + recall.txt_r10) / 3;
  recall.img_r_mean = (recall.img_r1 + recall.img_r5 + recall.img_r10) / 3;
  recall.r_mean = (recall.txt_r_mean + recall.img_r_mean) / 2;
  return recall;
}

// itm_eval's dictionary, in its key order.
inline nlohmann::ordered_json retrieval_recall_json(const RetrievalRecall& recall) {
  nlohmann::ordered_json out;
  out["txt_r1"] = recall.txt_r1;
  out["txt_r5"] = recall.txt_r5;
  out["txt_r10"] = recall.txt_r10;
  out["txt_r_mean"] = recall.txt_r_mean;
  out["img_r1"] = recall.img_r1;
  out["img_r5"] = recall.img_r5;
  out["img_r10"] = recall.img_r10;
  out["img_r_mean"] = recall.img_r_mean;
  out["r_mean"] = recall.r_mean;
  return out;
}

}  // namespace blip::evaluation
