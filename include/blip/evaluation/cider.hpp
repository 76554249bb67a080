// blip/evaluation/cider.hpp: CIDEr-D as pycocoevalcap's cider_scorer.py computes it (the "CIDEr" of
// the COCO caption evaluation; Vedantam et al. 2015, with the "-D" changes: clipping and a length
// penalty).
//
// Over the N images being scored, df(g) is the number of images whose references (any of them)
// contain the n-gram g. A caption becomes, for each order n = 1..4, the vector
//
//   v_n[g] = count(g) * (log(N) - log(max(1, df(g))))          (tf-idf; unseen n-grams: log N)
//
// and for a candidate c and one reference r of the same image
//
//   sim_n(c, r) = sum_g min(v_n^c[g], v_n^r[g]) * v_n^r[g] / (|v_n^c| |v_n^r|) * exp(-delta^2 / (2 sigma^2))
//
// (the min is the "-D" clipping; the division is skipped when either norm is 0; sigma = 6). delta is
// the difference of the two captions' lengths as cider_scorer.py measures them: the number of BIGRAMS
// (its `length` counts term frequencies where the 0-based order index is 1), so a one-word caption
// has length 0 like an empty one. The image's score is
//
//   CIDEr-D = 10 * mean_n( sum_r sim_n(c, r) ) / (number of references)
//
// and the corpus score is the mean over images. With a single image log(N) = 0, every weight is 0
// and the score is 0, as in the reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/ngrams.hpp"

namespace blip::evaluation {

struct CiderScores {
  double corpus = 0;              // mean over images: CIDEr
  std::vector<double> per_image;  // each image's CIDEr-D
};

namespace cider_detail {

// A caption as tf-idf vectors, one per n-gram order, with their norms and cider_scorer.py's length.
struct TfIdf {
  std::vector<std::unordered_map<std::string, double>> weights;
  std::vector<double> norms;
  double length = 0;  // number of bigrams (see the top of this file)
};

inline TfIdf tf_idf(const NgramCounts& counts, const std::unordered_map<std::string, double>& document_frequency,
                    double log_image_count) {
  TfIdf vector;
  const std::size_t max_order = counts.by_order.size();
  vector.weights.resize(max_order);
  vector.norms.assign(max_order, 0.0);
  for (std::size_t k = 0; k < max_order; ++k) {
    for (const auto& [ngram, term_frequency] : counts.by_order[k]) {
      const auto found = document_frequency.find(ngram);
      const double frequency = found == document_frequency.end() ? 0.0 : found->second;
      const double weight = term_frequency * (log_image_count - std::log(std::max(1.0, frequency)));
      vector.weights[k][ngram] = weight;
      vector.norms[k] += weight * weight;
      if (k == 1) vector.length += term_frequency;
    }
    vector.norms[k] = std::sqrt(vector.norms[k]);
  }
  return vector;
}

inline void add_similarity(const TfIdf& candidate, const TfIdf& reference, double sigma, std::vector<double>& sums) {
  const double delta = candidate.length - reference.length;
  // cider_scorer.py writes np.e ** x, i.e. pow(e, x); kept so that the last bit agrees too.
  const double penalty = std::pow(2.718281828459045, -(delta * delta) / (2 * sigma * sigma));
  for (std::size_t k = 0; k < candidate.weights.size(); ++k) {
    double value = 0;
    for (const auto& [ngram, weight] : candidate.weights[k]) {
      const auto found = reference.weights[k].find(ngram);
      if (found != reference.weights[k].end()) value += std::min(weight, found->second) * found->second;
    }
    if (candidate.norms[k] != 0 && reference.norms[k] != 0) value /= candidate.norms[k] * reference.norms[k];
    sums[k] += value * penalty;
  }
}

}  // namespace cider_detail

inline CiderScores cider_d(const std::vector<TokenizedCaptions>& images, std::size_t max_order = 4,
                           double sigma = 6.0) {
  check(!images.empty(), "CIDEr-D needs at least one image");
  check(max_order >= 1, "CIDEr-D needs an n-gram order of at least 1");
  std::vector<NgramCounts> candidates;
  std::vector<std::vector<NgramCounts>> references(images.size());
  std::unordered_map<std::string, double> document_frequency;
  for (std::size_t image = 0; image < images.size(); ++image) {
    check(!images[image].references.empty(), "CIDEr-D: image ", image, " has no reference caption");
    candidates.push_back(count_ngrams(images[image].candidate, max_order));
    std::unordered_set<std::string> seen;  // n-grams of any order: their word counts tell them apart
    for (const std::string& reference : images[image].references) {
      references[image].push_back(count_ngrams(reference, max_order));
      for (const auto& order : references[image].back().by_order) {
        for (const auto& entry : order) seen.insert(entry.first);
      }
    }
    for (const std::string& ngram : seen) document_frequency[ngram] += 1;
  }
  const double log_image_count = std::log(static_cast<double>(images.size()));
  CiderScores scores;
  double total = 0;
  for (std::size_t image = 0; image < images.size(); ++image) {
    const cider_detail::TfIdf candidate = cider_detail::tf_idf(candidates[image], document_frequency, log_image_count);
    std::vector<double> sums(max_order, 0.0);
    for (const NgramCounts& reference : references[image]) {
      cider_detail::add_similarity(candidate, cider_detail::tf_idf(reference, document_frequency, log_image_count),
                                   sigma, sums);
    }
    double mean = 0;
    for (double sum : sums) mean += sum;
    mean /= static_cast<double>(max_order);
    const double score = mean / static_cast<double>(references[image].size()) * 10.0;
    scores.per_image.push_back(score);
    total += score;
  }
  scores.corpus = total / static_cast<double>(images.size());
  return scores;
}

}  // namespace blip::evaluation
