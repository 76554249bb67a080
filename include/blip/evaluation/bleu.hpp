// blip/evaluation/bleu.hpp: corpus BLEU-1..N as pycocoevalcap's bleu_scorer.py computes it (the
// "Bleu_1".."Bleu_4" of the COCO caption evaluation).
//
// For each image: the candidate's n-gram counts are clipped by the largest count of that n-gram in any
// one reference ("correct"), and "guess" is the number of candidate n-grams, max(0, length - n + 1).
// The corpus score sums both over images:
//
//   BLEU-n = ( prod_{k=1..n} (correct_k + 1e-15) / (guess_k + 1e-9) ) ^ (1/n) * BP
//   BP     = exp(1 - 1/ratio) if ratio < 1 else 1,   ratio = (c + 1e-15) / (r + 1e-9)
//
// where c is the total candidate length and r the total of one reference length per image: the one
// closest to that candidate's length, the shorter on a tie (pycocoevalcap's Bleu uses "closest").
// The 1e-15 and 1e-9 are bleu_scorer.py's "tiny" and "small": they keep a score with no matching
// n-gram at about 1e-15^(1/n) instead of 0 and avoid dividing by zero, so Bleu_4 of a corpus with no
// matching 4-gram is a few 1e-4, not 0, exactly as the reference prints it.
// Per-image scores (bleu_scorer.py's second return value) use the same formula on one image.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/ngrams.hpp"

namespace blip::evaluation {

// Which reference length stands for an image in the brevity penalty (bleu_scorer.py's `option`).
enum class ReferenceLength {
  kClosest,   // the reference length closest to the candidate's, the shorter on a tie (COCO's choice)
  kShortest,  // the shortest reference
  kAverage,   // the mean reference length
};

struct BleuScores {
  std::vector<double> corpus;                  // corpus BLEU-1..N: Bleu_1 .. Bleu_N
  std::vector<std::vector<double>> per_image;  // [image][n-1]: the same formula on each image alone
  double candidate_length = 0;                 // c: total candidate words
  double reference_length = 0;                 // r: total effective reference words
};

namespace bleu_detail {

constexpr double kTiny = 1e-15;  // added to matches: no match gives ~0 instead of 0
constexpr double kSmall = 1e-9;  // added to totals: never divides by zero

inline double effective_reference_length(const std::vector<std::size_t>& lengths, std::size_t candidate_length,
                                         ReferenceLength option) {
  switch (option) {
    case ReferenceLength::kShortest:
      return static_cast<double>(*std::min_element(lengths.begin(), lengths.end()));
    case ReferenceLength::kAverage: {
      double sum = 0;
      for (std::size_t length : lengths) sum += static_cast<double>(length);
      return sum / static_cast<double>(lengths.size());
    }
    case ReferenceLength::kClosest:
      break;
  }
  std::size_t best = lengths.front();
  const auto distance = [candidate_length](std::size_t length) {
    return length > candidate_length ? length - candidate_length : candidate_length - length;
  };
  for (std::size_t length : lengths) {
    if (distance(length) < distance(best) || (distance(length) == distance(best) && length < best)) best = length;
  }
  return static_cast<double>(best);
}

// BLEU-1..N from match and n-gram totals, in bleu_scorer.py's order of operations.
inline std::vector<double> bleu_from_counts(const std::vector<double>& correct, const std::vector<double>& guess,
                                            double candidate_length, double reference_length) {
  std::vector<double> scores(correct.size());
  double product = 1.0;
  for (std::size_t k = 0; k < correct.size(); ++k) {
    product *= (correct[k] + kTiny) / (guess[k] + kSmall);
    scores[k] = std::pow(product, 1.0 / static_cast<double>(k + 1));
  }
  const double ratio = (candidate_length + kTiny) / (reference_length + kSmall);
  if (ratio < 1) {
    for (double& score : scores) score *= std::exp(1 - 1 / ratio);
  }
  return scores;
}

}  // namespace bleu_detail

inline BleuScores corpus_bleu(const std::vector<TokenizedCaptions>& images, std::size_t max_order = 4,
                              ReferenceLength option = ReferenceLength::kClosest) {
  check(max_order >= 1, "BLEU needs an n-gram order of at least 1");
  BleuScores scores;
  std::vector<double> total_correct(max_order, 0.0), total_guess(max_order, 0.0);
  for (std::size_t image = 0; image < images.size(); ++image) {
    const TokenizedCaptions& captions = images[image];
    check(!captions.references.empty(), "BLEU: image ", image, " has no reference caption");
    // The largest count of each n-gram in any one reference: the clip for the candidate's count.
    std::vector<std::unordered_map<std::string, int>> clip(max_order);
    std::vector<std::size_t> reference_lengths;
    for (const std::string& reference : captions.references) {
      const NgramCounts counts = count_ngrams(reference, max_order);
      reference_lengths.push_back(counts.word_count);
      for (std::size_t k = 0; k < max_order; ++k) {
        for (const auto& [ngram, count] : counts.by_order[k]) clip[k][ngram] = std::max(clip[k][ngram], count);
      }
    }
    const NgramCounts candidate = count_ngrams(captions.candidate, max_order);
    std::vector<double> correct(max_order, 0.0), guess(max_order, 0.0);
    for (std::size_t k = 0; k < max_order; ++k) {
      guess[k] = candidate.word_count >= k + 1 ? static_cast<double>(candidate.word_count - k) : 0.0;
      for (const auto& [ngram, count] : candidate.by_order[k]) {
        const auto found = clip[k].find(ngram);
        if (found != clip[k].end()) correct[k] += std::min(found->second, count);
      }
      total_correct[k] += correct[k];
      total_guess[k] += guess[k];
    }
    const double candidate_length = static_cast<double>(candidate.word_count);
    const double reference_length =
        bleu_detail::effective_reference_length(reference_lengths, candidate.word_count, option);
    scores.candidate_length += candidate_length;
    scores.reference_length += reference_length;
    scores.per_image.push_back(bleu_detail::bleu_from_counts(correct, guess, candidate_length, reference_length));
  }
  scores.corpus =
      bleu_detail::bleu_from_counts(total_correct, total_guess, scores.candidate_length, scores.reference_length);
  return scores;
}

}  // namespace blip::evaluation
