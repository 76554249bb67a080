// blip/evaluation/ngrams.hpp: what BLEU and CIDEr-D both start from: one image's tokenised captions
// and the n-gram counts of a caption (pycocoevalcap's `precook`).
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/evaluation/unicode_text.hpp"

namespace blip::evaluation {

// One image's captions after tokenisation (coco_tokenize): words separated by whitespace, which the
// scorers split as Python's str.split() does.
struct TokenizedCaptions {
  std::string candidate;                // the caption being scored
  std::vector<std::string> references;  // the human captions of the same image
};

// N-gram counts of one caption: by_order[k] maps each (k+1)-gram, its words joined by single spaces,
// to how often it occurs.
struct NgramCounts {
  std::size_t word_count = 0;
  std::vector<std::unordered_map<std::string, int>> by_order;
};

inline NgramCounts count_ngrams(const std::string& caption, std::size_t max_order) {
  const std::vector<std::string> words = split_whitespace(caption);
  NgramCounts counts;
  counts.word_count = words.size();
  counts.by_order.resize(max_order);
  for (std::size_t order = 1; order <= max_order; ++order) {
    for (std::size_t start = 0; start + order <= words.size(); ++start) {
      std::string ngram = words[start];
      for (std::size_t k = 1; k < order; ++k) ngram += ' ' + words[start + k];
      ++counts.by_order[order - 1][ngram];
    }
  }
  return counts;
}

}  // namespace blip::evaluation
