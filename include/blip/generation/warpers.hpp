// blip/generation/warpers.hpp: Hugging Face's sampling warpers, one row at a time.
//
// Each function edits one row of next-token scores in place, reproducing the
// HF class named beside it (transformers/generation/logits_process.py). HF
// applies them only when sampling, in this order: Temperature, TopK, TopP,
// MinP, Typical, Epsilon, Eta. Where torch's arithmetic is known exactly we
// keep it:
//   * a float32 tensor times / divided by / compared with a Python float
//     rounds the scalar to float32 first (`cumulative_probs <= 1 - top_p`
//     compares with float(1 - top_p));
//   * torch's CPU cumsum accumulates in double and rounds each output;
//   * torch.sort (stable=False) is std::sort over (value, index) pairs
//     comparing values only (ascending: NaN last; descending: NaN first), so
//     equal values are ordered by std::sort's introsort; the warpers that sort
//     call the same, to break ties the same way.
// Softmax / log_softmax / entropy sums are accumulated in double here (torch:
// float lanes) and exp may differ by an ulp (SLEEF's), so a token whose
// probability lies within ~1e-7 of a cut-off can fall on the other side:
// nothing else can differ.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/generation/softmax.hpp"

namespace blip::generation {

namespace detail {
// torch's CPU sort comparators (KeyValueCompAsc / KeyValueCompDesc) on (value, index) pairs.
struct TorchSortAscending {
  bool operator()(const std::pair<float, std::int64_t>& left, const std::pair<float, std::int64_t>& right) const {
    return (!std::isnan(left.first) && std::isnan(right.first)) || left.first < right.first;
  }
};
struct TorchSortDescending {
  bool operator()(const std::pair<float, std::int64_t>& left, const std::pair<float, std::int64_t>& right) const {
    return (std::isnan(left.first) && !std::isnan(right.first)) || left.first > right.first;
  }
};

// torch.sort of one row (stable=False): `sorted` receives the (value, index) pairs in torch's order.
template <class Compare>
void torch_sort(const float* values, std::int64_t count, std::pair<float, std::int64_t>* sorted, Compare compare) {
  for (std::int64_t i = 0; i < count; ++i) sorted[i] = {values[i], i};
  std::sort(sorted, sorted + count, compare);
}
}  // namespace detail

// Workspace of the warpers: `vocab` (value, index) pairs and two rows of `vocab` floats. Sized once per request.
struct WarperWorkspace {
  std::vector<std::pair<float, std::int64_t>> sorted;
  std::vector<float> probabilities;
  std::vector<float> values;
  void reserve(std::int64_t vocab) {
    sorted.resize(static_cast<std::size_t>(vocab));
    probabilities.resize(static_cast<std::size_t>(vocab));
    values.resize(static_cast<std::size_t>(vocab));
  }
  void check_size(const char* warper, std::int64_t vocab) const {
    check(static_cast<std::int64_t>(sorted.size()) >= vocab, warper, ": workspace reserved for ", sorted.size(),
          " scores, needs ", vocab);
  }
};

// TemperatureLogitsWarper: scores / temperature (division in float32, as torch).
inline void apply_temperature(float* scores, std::int64_t vocab, double temperature) {
  const float divisor = static_cast<float>(temperature);
  for (std::int64_t i = 0; i < vocab; ++i) scores[i] = scores[i] / divisor;
}

// The k-th largest score (torch.topk(scores, k)[0][-1]), 1 <= k <= vocab. A min-heap of the k best in one pass
// for small k (most scores fail one comparison), nth_element otherwise. `workspace` holds `vocab` floats.
inline float kth_largest(const float* scores, std::int64_t vocab, std::int64_t k, float* workspace) {
  check(k >= 1 && k <= vocab, "kth_largest: k = ", k, " outside [1, ", vocab, "]");
  if (k == 1) return detail::row_maximum(scores, vocab);
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
    return heap[0];
  }
  std::copy(scores, scores + vocab, workspace);
  std::nth_element(workspace, workspace + (k - 1), workspace + vocab, std::greater<float>());
  return workspace[k - 1];
}

// TopKLogitsWarper: k = min(max(top_k, min_tokens_to_keep), vocab); every score strictly below the k-th largest
// becomes -inf, so all tokens TIED with the k-th survive (more than k can remain). `workspace` holds `vocab`
// floats; apply_top_k_naive is the sorted reference.
inline void apply_top_k(float* scores, std::int64_t vocab, std::int64_t top_k, std::int64_t min_tokens_to_keep,
                        float* workspace) {
  const std::int64_t k = std::min(std::max(top_k, min_tokens_to_keep), vocab);
  if (k <= 0 || k >= vocab) return;
  const float kth = kth_largest(scores, vocab, k, workspace);
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

// TopPLogitsWarper (nucleus): sort ascending, softmax, cumulative sum; tokens whose cumulative probability is
// <= 1 - top_p are removed, except the min_tokens_to_keep most probable. The sort copies torch.sort, which
// decides which of several EQUAL scores straddling the boundary go. (The softmax is taken in index order
// rather than sorted order: its sum differs by rounding only.)
//
// Fast path. A token whose probability is below (1 - top_p) / vocab is removed wherever it sits: all such
// tokens together hold less than 1 - top_p and they are the smallest scores, so the cumulative sum at each of
// them stays under the threshold. Only the others are sorted. The removed tokens are a prefix of the sorted
// order; equal scores have equal probabilities, so their order changes nothing unless a group of equal scores
// straddles the end of that prefix. Then (or with NaNs, or when too few tokens remain for min_tokens_to_keep)
// apply_top_p_naive's full sort decides, as torch's would.
inline void apply_top_p_naive(float* scores, std::int64_t vocab, double top_p, std::int64_t min_tokens_to_keep,
                              WarperWorkspace& workspace);

inline void apply_top_p(float* scores, std::int64_t vocab, double top_p, std::int64_t min_tokens_to_keep,
                        WarperWorkspace& workspace) {
  if (top_p >= 1.0) return;
  workspace.check_size("apply_top_p", vocab);
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
  std::sort(sorted, sorted + kept, detail::TorchSortAscending());
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
                              WarperWorkspace& workspace) {
  if (top_p >= 1.0) return;
  workspace.check_size("apply_top_p_naive", vocab);
  auto* sorted = workspace.sorted.data();
  float* probabilities = workspace.probabilities.data();
  softmax(scores, probabilities, vocab);
  detail::torch_sort(scores, vocab, sorted, detail::TorchSortAscending());
  const float threshold = static_cast<float>(1.0 - top_p);
  const std::int64_t removable = vocab - std::min(std::max<std::int64_t>(min_tokens_to_keep, 0), vocab);
  double cumulative = 0.0;
  for (std::int64_t i = 0; i < removable; ++i) {
    cumulative += probabilities[sorted[i].second];
    if (static_cast<float>(cumulative) <= threshold) scores[sorted[i].second] = kNegativeInfinity;
  }
}

// MinPLogitsWarper: tokens whose probability is below min_p * (the top probability) are removed (float32
// product), except the min_tokens_to_keep first of torch.argsort(scores, descending=True).
//
// Probabilities grow with the scores, so the kept tokens are the best-scored ones: when at least
// min_tokens_to_keep survive, the exception changes nothing and no sort is needed (the top token always
// survives, min_p being <= 1). Otherwise (or with NaNs) the full descending sort decides which of the removed
// tokens come back, ties broken as torch's.
inline void apply_min_p(float* scores, std::int64_t vocab, double min_p, std::int64_t min_tokens_to_keep,
                        WarperWorkspace& workspace) {
  if (min_p <= 0.0) return;
  workspace.check_size("apply_min_p", vocab);
  float* probabilities = workspace.probabilities.data();
  softmax(scores, probabilities, vocab);
  const float threshold = static_cast<float>(min_p) * detail::row_maximum(probabilities, vocab);
  std::int64_t kept = 0;
  bool has_nan = false;
  for (std::int64_t i = 0; i < vocab; ++i) {
    has_nan = has_nan || std::isnan(scores[i]);
    kept += !(probabilities[i] < threshold);
  }
  const std::int64_t protected_count = std::min(min_tokens_to_keep, vocab);
  if (has_nan || kept < protected_count) {
    auto* sorted = workspace.sorted.data();
    detail::torch_sort(scores, vocab, sorted, detail::TorchSortDescending());
    for (std::int64_t j = 0; j < protected_count; ++j) probabilities[sorted[j].second] = threshold;  // keep these
  }
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (probabilities[i] < threshold) scores[i] = kNegativeInfinity;
  }
}

// TypicalLogitsWarper (locally typical sampling): with H the entropy of softmax(scores), tokens are sorted by
// |-log p - H| (torch.sort, ascending); the shortest prefix of that order whose probability mass reaches
// `mass` is kept, with every token tied with its last one, plus the first min_tokens_to_keep. HF:
//   last_ind = (cumsum(sorted probs) < mass).sum(), clamped to vocab - 1;
//   remove sorted_scores > sorted_scores[last_ind], except the first min_tokens_to_keep.
// H is -nansum(log_softmax * exp(log_softmax)) (-inf tokens contribute nothing).
inline void apply_typical(float* scores, std::int64_t vocab, double mass, std::int64_t min_tokens_to_keep,
                          WarperWorkspace& workspace) {
  if (mass >= 1.0) return;
  workspace.check_size("apply_typical", vocab);
  float* log_probabilities = workspace.values.data();
  float* probabilities = workspace.probabilities.data();
  auto* sorted = workspace.sorted.data();
  log_softmax(scores, log_probabilities, vocab);
  double negative_entropy = 0.0;
  for (std::int64_t i = 0; i < vocab; ++i) {
    const float product = log_probabilities[i] * std::exp(log_probabilities[i]);
    if (!std::isnan(product)) negative_entropy += product;
  }
  const float entropy = -static_cast<float>(negative_entropy);
  float* shifted = log_probabilities;  // |-log p - H|, in place
  for (std::int64_t i = 0; i < vocab; ++i) shifted[i] = std::abs((-log_probabilities[i]) - entropy);
  detail::torch_sort(shifted, vocab, sorted, detail::TorchSortAscending());
  softmax(scores, probabilities, vocab);
  const float threshold = static_cast<float>(mass);
  double cumulative = 0.0;
  std::int64_t below = 0;
  for (std::int64_t j = 0; j < vocab; ++j) {
    cumulative += probabilities[sorted[j].second];
    if (!(static_cast<float>(cumulative) < threshold)) break;
    ++below;
  }
  const float limit = sorted[std::min(below, vocab - 1)].first;
  for (std::int64_t j = std::max<std::int64_t>(min_tokens_to_keep, 0); j < vocab; ++j) {
    if (sorted[j].first > limit) scores[sorted[j].second] = kNegativeInfinity;
  }
}

namespace detail {
// EpsilonLogitsWarper / EtaLogitsWarper's removal: probability below `cutoff`, and score below the
// min_tokens_to_keep-th largest (so at least that many survive).
inline void remove_below_probability(float* scores, std::int64_t vocab, const float* probabilities, float cutoff,
                                     std::int64_t min_tokens_to_keep, WarperWorkspace& workspace) {
  const float kth = kth_largest(scores, vocab, std::min(min_tokens_to_keep, vocab), workspace.values.data());
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (probabilities[i] < cutoff && scores[i] < kth) scores[i] = kNegativeInfinity;
  }
}
}  // namespace detail

// EpsilonLogitsWarper: tokens with probability below epsilon (as float32) are removed, except the
// min_tokens_to_keep best-scored.
inline void apply_epsilon_cutoff(float* scores, std::int64_t vocab, double epsilon, std::int64_t min_tokens_to_keep,
                                 WarperWorkspace& workspace) {
  if (epsilon <= 0.0) return;
  workspace.check_size("apply_epsilon_cutoff", vocab);
  float* probabilities = workspace.probabilities.data();
  softmax(scores, probabilities, vocab);
  detail::remove_below_probability(scores, vocab, probabilities, static_cast<float>(epsilon), min_tokens_to_keep,
                                   workspace);
}

// EtaLogitsWarper: as epsilon, with the cut-off eta = min(epsilon, sqrt(epsilon) * exp(-H)) in float32, H the
// entropy torch.distributions.Categorical(logits=scores).entropy() computes:
//   logits = scores - logsumexp(scores)       (logsumexp = log(sum exp(x - max)) + max)
//   H = -sum(max(logits, -FLT_MAX) * softmax(logits)).
inline void apply_eta_cutoff(float* scores, std::int64_t vocab, double epsilon, std::int64_t min_tokens_to_keep,
                             WarperWorkspace& workspace) {
  if (epsilon <= 0.0) return;
  workspace.check_size("apply_eta_cutoff", vocab);
  float* normalized = workspace.values.data();
  float* probabilities = workspace.probabilities.data();
  float maximum = detail::row_maximum(scores, vocab);
  if (std::isinf(maximum)) maximum = 0.0f;  // torch's logsumexp: an infinite maximum is not subtracted
  const float log_sum_exp = static_cast<float>(std::log(detail::sum_exp_shifted(scores, vocab, maximum))) + maximum;
  for (std::int64_t i = 0; i < vocab; ++i) normalized[i] = scores[i] - log_sum_exp;
  softmax(normalized, probabilities, vocab);
  double negative_entropy = 0.0;
  for (std::int64_t i = 0; i < vocab; ++i) {
    negative_entropy += std::max(normalized[i], std::numeric_limits<float>::lowest()) * probabilities[i];
  }
  const float entropy = -static_cast<float>(negative_entropy);
  const float epsilon_float = static_cast<float>(epsilon);
  const float eta = std::min(epsilon_float, std::sqrt(epsilon_float) * std::exp(-entropy));
  softmax(scores, probabilities, vocab);
  detail::remove_below_probability(scores, vocab, probabilities, eta, min_tokens_to_keep, workspace);
}

}  // namespace blip::generation
