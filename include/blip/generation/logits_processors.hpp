// blip/generation/logits_processors.hpp: Hugging Face's logits processors and warpers, one row at a time.
//
// Each function edits one row of next-token scores in place, reproducing the
// HF class named beside it (transformers/generation/logits_process.py) down
// to float32 rounding where torch's arithmetic is known exactly:
//   * torch multiplies / divides a float32 tensor by a Python float in
//     float32 (the scalar is rounded to float first): penalties and
//     temperature below do the same;
//   * a comparison with a Python float also rounds the scalar to float32
//     (`cumulative_probs <= 1 - top_p` compares with float(1 - top_p));
//   * torch's CPU cumsum accumulates in double and rounds each output;
//   * torch.sort (stable=False) is std::sort over (value, index) pairs
//     comparing values only, so equal values are ordered by std::sort's
//     introsort; top_p copies that to break ties the same way.
// Only exp/log (torch uses SLEEF's vectorised versions) can differ by an ulp.
//
// LogitsProcessors applies the list HF's `_get_logits_processor` builds from
// a GenerationConfig, in HF's order:
//   RepetitionPenalty -> NoRepeatNGram -> MinLength / MinNewTokensLength
//   -> (sampling only) Temperature -> TopK -> TopP.
// It owns its workspaces (sized once per request), so processing a token
// allocates nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/generation/options.hpp"
#include "blip/generation/softmax.hpp"

namespace blip::generation {

// ---- processors (every strategy) -----------------------------------------------------------------

// RepetitionPenaltyLogitsProcessor: every id present in `history` has its score multiplied by `penalty` when
// negative, divided by it otherwise, ONCE however often it occurs (HF gathers the original scores, then
// scatters the penalised values back). `gathered` is a workspace of `length` floats.
inline void apply_repetition_penalty(float* scores, std::int64_t vocab, const std::int64_t* history,
                                     std::int64_t length, double penalty, float* gathered) {
  const float factor = static_cast<float>(penalty);
  for (std::int64_t i = 0; i < length; ++i) {
    check(history[i] >= 0 && history[i] < vocab, "repetition penalty: token id ", history[i], " outside [0, ",
          vocab, ")");
    gathered[i] = scores[history[i]];
  }
  for (std::int64_t i = 0; i < length; ++i) {
    const float score = gathered[i];
    scores[history[i]] = score < 0 ? score * factor : score / factor;
  }
}

// NoRepeatNGramLogitsProcessor (fairseq's rule): bans every token that would complete an n-gram already present
// in `history`, i.e. each token that followed an earlier occurrence of the last n-1 tokens. With n = 1 every
// token seen is banned. Nothing is banned before the history has n-1 tokens.
inline void apply_no_repeat_ngram(float* scores, std::int64_t vocab, const std::int64_t* history,
                                  std::int64_t length, std::int64_t ngram_size) {
  if (ngram_size <= 0 || length + 1 < ngram_size) return;
  const std::int64_t prefix = ngram_size - 1;
  const std::int64_t* tail = history + length - prefix;  // the last n-1 tokens
  for (std::int64_t start = 0; start + ngram_size <= length; ++start) {
    if (std::equal(history + start, history + start + prefix, tail)) {
      const std::int64_t banned = history[start + prefix];
      check(banned >= 0 && banned < vocab, "no_repeat_ngram: token id ", banned, " outside [0, ", vocab, ")");
      scores[banned] = kNegativeInfinity;
    }
  }
}

// MinLengthLogitsProcessor / MinNewTokensLengthLogitsProcessor: the EOS ids get -inf while the sequence is
// shorter than the minimum (the caller tests the length).
inline void suppress_tokens(float* scores, std::int64_t vocab, const std::vector<std::int64_t>& token_ids) {
  for (std::int64_t id : token_ids) {
    if (id >= 0 && id < vocab) scores[id] = kNegativeInfinity;
  }
}

// ---- warpers (sampling only) ---------------------------------------------------------------------

// TemperatureLogitsWarper: scores / temperature (division in float32, as torch).
inline void apply_temperature(float* scores, std::int64_t vocab, double temperature) {
  const float divisor = static_cast<float>(temperature);
  for (std::int64_t i = 0; i < vocab; ++i) scores[i] = scores[i] / divisor;
}

// TopKLogitsWarper: k = min(max(top_k, min_tokens_to_keep), vocab); every score strictly below the k-th largest
// becomes -inf, so all tokens TIED with the k-th survive (more than k can remain).
// `workspace` holds `vocab` floats. The k-th largest comes from a min-heap of the k best in one pass for small k
// (most scores fail one comparison), from nth_element otherwise; apply_top_k_naive is the sorted reference.
inline void apply_top_k(float* scores, std::int64_t vocab, std::int64_t top_k, std::int64_t min_tokens_to_keep,
                        float* workspace) {
  const std::int64_t k = std::min(std::max(top_k, min_tokens_to_keep), vocab);
  if (k <= 0 || k >= vocab) return;
  float kth;
  if (k <= 256) {
    float* heap = workspace;  // min-heap of the k largest seen so far: heap[0] is the smallest of them
    std::int64_t size = 0;
    for (std::int64_t i = 0; i < vocab; ++i) {
      const float score = scores[i];
      if (size < k) {
        heap[size++] = score;
        std::push_heap(heap, heap + size, std::greater<float>());
      } else if (score > heap[0]) {
        std::pop_heap(heap, heap + size, std::greater<float>());
        heap[size - 1] = score;
        std::push_heap(heap, heap + size, std::greater<float>());
      }
    }
    kth = heap[0];
  } else {
    std::copy(scores, scores + vocab, workspace);
    std::nth_element(workspace, workspace + (k - 1), workspace + vocab, std::greater<float>());
    kth = workspace[k - 1];
  }
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (scores[i] < kth) scores[i] = kNegativeInfinity;
  }
}

inline void apply_top_k_naive(float* scores, std::int64_t vocab, std::int64_t top_k,
                              std::int64_t min_tokens_to_keep) {
  const std::int64_t k = std::min(std::max(top_k, min_tokens_to_keep), vocab);
  if (k <= 0 || k >= vocab) return;
  std::vector<float> sorted(scores, scores + vocab);
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float kth = sorted[static_cast<std::size_t>(k - 1)];
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (scores[i] < kth) scores[i] = kNegativeInfinity;
  }
}

// Workspace of apply_top_p: `vocab` (value, index) pairs and `vocab` floats.
struct TopPWorkspace {
  std::vector<std::pair<float, std::int64_t>> sorted;
  std::vector<float> probabilities;
  void reserve(std::int64_t vocab) {
    sorted.resize(static_cast<std::size_t>(vocab));
    probabilities.resize(static_cast<std::size_t>(vocab));
  }
};

// TopPLogitsWarper (nucleus): sort ascending, softmax, cumulative sum; tokens whose cumulative probability is
// <= 1 - top_p are removed, except the min_tokens_to_keep most probable. The sort copies torch.sort: std::sort
// over (value, index) pairs comparing values only (NaN last), which decides which of several EQUAL scores
// straddling the boundary go. With libstdc++ (what torch is built with on Linux) this is the same order.
// (The softmax is taken in index order rather than sorted order: its sum differs by rounding only.)
//
// Fast path. A token whose probability is below (1 - top_p) / vocab is removed wherever it sits: all such
// tokens together hold less than 1 - top_p and they are the smallest scores, so the cumulative sum at each of
// them stays under the threshold. Only the others are sorted. The removed tokens are a prefix of the sorted
// order; equal scores have equal probabilities, so their order changes nothing unless a group of equal scores
// straddles the end of that prefix. Then (or with NaNs, or when too few tokens remain for min_tokens_to_keep)
// apply_top_p_naive's full sort decides, as torch's would.
inline void apply_top_p_naive(float* scores, std::int64_t vocab, double top_p, std::int64_t min_tokens_to_keep,
                              TopPWorkspace& workspace);

inline void apply_top_p(float* scores, std::int64_t vocab, double top_p, std::int64_t min_tokens_to_keep,
                        TopPWorkspace& workspace) {
  if (top_p >= 1.0) return;
  check(static_cast<std::int64_t>(workspace.sorted.size()) >= vocab, "apply_top_p: workspace reserved for ",
        workspace.sorted.size(), " scores, needs ", vocab);
  auto* sorted = workspace.sorted.data();
  float* probabilities = workspace.probabilities.data();
  softmax(scores, probabilities, vocab);
  // HF: `cumulative_probs <= (1 - self.top_p)`; 1 - top_p is a Python float, rounded to float32 by torch.
  const float threshold = static_cast<float>(1.0 - top_p);
  const double negligible = static_cast<double>(threshold) / static_cast<double>(vocab);
  const std::int64_t removable = vocab - std::min(std::max<std::int64_t>(min_tokens_to_keep, 0), vocab);

  double negligible_mass = 0.0;
  std::int64_t kept = 0;
  bool has_nan = false;
  for (std::int64_t i = 0; i < vocab; ++i) {
    has_nan = has_nan || std::isnan(scores[i]);
    if (probabilities[i] < negligible) {
      negligible_mass += probabilities[i];
    } else {
      sorted[kept++] = {scores[i], i};
    }
  }
  const std::int64_t first = vocab - kept;  // sorted position of the first non-negligible token
  if (has_nan || first > removable) {
    apply_top_p_naive(scores, vocab, top_p, min_tokens_to_keep, workspace);
    return;
  }
  std::sort(sorted, sorted + kept, [](const std::pair<float, std::int64_t>& left,
                                      const std::pair<float, std::int64_t>& right) {
    return left.first < right.first;
  });
  // Removed: sorted positions [0, cut). torch's cumsum accumulates float32 input in double.
  double cumulative = negligible_mass;
  std::int64_t cut = first;
  while (cut < removable) {
    cumulative += probabilities[sorted[cut - first].second];
    if (static_cast<float>(cumulative) > threshold) break;
    ++cut;
  }
  if (cut > first && cut < vocab && sorted[cut - 1 - first].first == sorted[cut - first].first) {
    apply_top_p_naive(scores, vocab, top_p, min_tokens_to_keep, workspace);  // a tie straddles the cut
    return;
  }
  for (std::int64_t j = 0; j < cut - first; ++j) scores[sorted[j].second] = kNegativeInfinity;
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (probabilities[i] < negligible) scores[i] = kNegativeInfinity;
  }
}

// The reference for apply_top_p: the full sort, as torch.
inline void apply_top_p_naive(float* scores, std::int64_t vocab, double top_p, std::int64_t min_tokens_to_keep,
                              TopPWorkspace& workspace) {
  if (top_p >= 1.0) return;
  auto* sorted = workspace.sorted.data();
  float* probabilities = workspace.probabilities.data();
  softmax(scores, probabilities, vocab);
  for (std::int64_t i = 0; i < vocab; ++i) sorted[i] = {scores[i], i};
  std::sort(sorted, sorted + vocab, [](const std::pair<float, std::int64_t>& left,
                                       const std::pair<float, std::int64_t>& right) {
    return (!std::isnan(left.first) && std::isnan(right.first)) || left.first < right.first;
  });
  const float threshold = static_cast<float>(1.0 - top_p);
  const std::int64_t removable = vocab - std::min(std::max<std::int64_t>(min_tokens_to_keep, 0), vocab);
  double cumulative = 0.0;
  for (std::int64_t i = 0; i < removable; ++i) {
    cumulative += probabilities[sorted[i].second];
    if (static_cast<float>(cumulative) <= threshold) scores[sorted[i].second] = kNegativeInfinity;
  }
}

// ---- the processor list of one request -------------------------------------------------------------

// Which loop the scores come from; decides whether warpers run and their min_tokens_to_keep.
enum class SearchKind { Greedy, Sample, BeamSearch, BeamSample };

inline SearchKind search_kind(const GenerationOptions& options) {
  if (options.num_beams > 1) return options.do_sample ? SearchKind::BeamSample : SearchKind::BeamSearch;
  return options.do_sample ? SearchKind::Sample : SearchKind::Greedy;
}

class LogitsProcessors {
 public:
  LogitsProcessors() = default;

  // Mirrors `_get_logits_processor`: which processors exist and with what parameters. `min_length` is the
  // resolved one (resolve_lengths), `max_history` the longest history a row can have (workspace size).
  LogitsProcessors(const GenerationOptions& options, const SpecialTokens& special, std::int64_t vocab,
                   std::int64_t min_length, std::int64_t max_history)
      : options_(options), eos_token_ids_(special.eos_token_ids), vocab_(vocab), min_length_(min_length) {
    const SearchKind kind = search_kind(options);
    warp_ = kind == SearchKind::Sample || kind == SearchKind::BeamSample;
    // HF: in beam methods keep at least one non-EOS token beside the EOS ids.
    min_tokens_to_keep_ = kind == SearchKind::BeamSample
                              ? std::max<std::int64_t>(2, static_cast<std::int64_t>(eos_token_ids_.size()) + 1)
                              : 1;
    gathered_.resize(static_cast<std::size_t>(std::max<std::int64_t>(max_history, 1)));
    if (warp_) {
      top_k_workspace_.resize(static_cast<std::size_t>(vocab));
      top_p_workspace_.reserve(vocab);
    }
  }

  // Processes one row of scores in place. `history` is what HF holds in input_ids for that row (prompt ids +
  // new tokens so far), `length` its length.
  void apply(float* scores, const std::int64_t* history, std::int64_t length) {
    check(length <= static_cast<std::int64_t>(gathered_.size()), "LogitsProcessors: history of ", length,
          " tokens exceeds the ", gathered_.size(), " reserved");
    if (options_.repetition_penalty != 1.0) {
      apply_repetition_penalty(scores, vocab_, history, length, options_.repetition_penalty, gathered_.data());
    }
    if (options_.no_repeat_ngram_size > 0) apply_no_repeat_ngram(scores, vocab_, history, length,
                                                                 options_.no_repeat_ngram_size);
    // MinLength and MinNewTokensLength: both reduce to "length < resolved min_length" (resolve_lengths).
    if (length < min_length_) suppress_tokens(scores, vocab_, eos_token_ids_);
    if (!warp_) return;
    if (options_.temperature != 1.0) apply_temperature(scores, vocab_, options_.temperature);
    if (options_.top_k != 0) apply_top_k(scores, vocab_, options_.top_k, min_tokens_to_keep_, top_k_workspace_.data());
    if (options_.top_p < 1.0) apply_top_p(scores, vocab_, options_.top_p, min_tokens_to_keep_, top_p_workspace_);
  }

  std::int64_t min_tokens_to_keep() const { return min_tokens_to_keep_; }

 private:
  GenerationOptions options_;
  std::vector<std::int64_t> eos_token_ids_;
  std::int64_t vocab_ = 0, min_length_ = 0, min_tokens_to_keep_ = 1;
  bool warp_ = false;
  std::vector<float> gathered_, top_k_workspace_;
  TopPWorkspace top_p_workspace_;
};

}  // namespace blip::generation
