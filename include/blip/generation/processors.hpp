// blip/generation/processors.hpp: Hugging Face's logits processors that act in every strategy, one row at a time.
//
// Each function edits one row of next-token scores in place, reproducing the
// HF class named beside it (transformers/generation/logits_process.py) down
// to float32 rounding: torch multiplies / divides a float32 tensor by a
// Python float in float32, the scalar rounded to float first, and so do we.
// `history` is what HF holds in input_ids for the row (prompt ids + new
// tokens so far), `length` its length (HF cur_len = input_ids.shape[-1]).
// The sampling-only warpers are in warpers.hpp; the list that applies both
// in HF's order is LogitsProcessors (logits_processors.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/generation/softmax.hpp"

namespace blip::generation {

namespace detail {
// a * b rounded to float32 on its own. torch rounds a product before adding it to something else; a compiler
// allowed to contract `x + a * b` into a fused multiply-add (GCC's default with -march=native) would round
// once, which changes the last bit.
inline float rounded_product(float a, float b) {
  volatile float product = a * b;
  return product;
}
}  // namespace detail

// HammingDiversityLogitsProcessor (group beam search): a row of group g loses
// diversity_penalty * count(token) for every token that the groups before g of the same entry chose at this
// step (`previous` holds those `count` tokens, HF's current_tokens; a finished group contributes pad ids).
// torch computes `penalty * bincount` in float32 and subtracts it, so repeated tokens are counted first.
inline void apply_hamming_diversity(float* scores, std::int64_t vocab, const std::int64_t* previous,
                                    std::int64_t count, double diversity_penalty) {
  const float penalty = static_cast<float>(diversity_penalty);
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t token = previous[i];
    if (std::find(previous, previous + i, token) != previous + i) continue;  // counted at its first occurrence
    check(token >= 0 && token < vocab, "diversity_penalty: token id ", token, " outside [0, ", vocab, ")");
    const std::int64_t occurrences = std::count(previous + i, previous + count, token);
    scores[token] -= detail::rounded_product(static_cast<float>(occurrences), penalty);
  }
}

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

// NoBadWordsLogitsProcessor (a SequenceBiasLogitsProcessor with -inf biases): the last id of a listed sequence
// gets -inf whenever the row ends with the sequence's other ids; a one-id sequence always. As HF:
//   * sequences that are exactly one EOS id are dropped first (EOS stays possible), and an empty list after
//     that is an error (HF: "`sequence_bias` has to be a non-empty dictionary");
//   * a sequence longer than the history is skipped, even when its prefix would fit;
//   * the ban is added (score + -inf), so a +inf score becomes NaN as in torch.
class BadWords {
 public:
  BadWords() = default;
  BadWords(const std::vector<std::vector<std::int64_t>>& bad_words_ids, const std::vector<std::int64_t>& eos_token_ids) {
    for (const std::vector<std::int64_t>& sequence : bad_words_ids) {
      check(!sequence.empty(), "bad_words_ids: an empty sequence");
      const bool single_eos = sequence.size() == 1 && std::find(eos_token_ids.begin(), eos_token_ids.end(),
                                                                sequence.front()) != eos_token_ids.end();
      // HF keys a dict by the sequence: a repeated sequence counts once.
      if (!single_eos && std::find(sequences_.begin(), sequences_.end(), sequence) == sequences_.end()) {
        sequences_.push_back(sequence);
      }
    }
    check(!sequences_.empty(), "GenerationOptions::bad_words_ids lists only EOS ids (", bad_words_ids.size(),
          " sequence(s)), which HF drops, leaving nothing to ban (HF raises for this too)");
  }

  bool empty() const { return sequences_.empty(); }

  void apply(float* scores, const std::int64_t* history, std::int64_t length) const {
    for (const std::vector<std::int64_t>& sequence : sequences_) {
      const std::int64_t size = static_cast<std::int64_t>(sequence.size());
      if (size > length && size > 1) continue;
      const std::int64_t prefix = size - 1;
      if (std::equal(sequence.begin(), sequence.end() - 1, history + length - prefix)) {
        scores[sequence.back()] = scores[sequence.back()] + kNegativeInfinity;
      }
    }
  }

 private:
  std::vector<std::vector<std::int64_t>> sequences_;
};

// MinLength / MinNewTokensLength / SuppressTokens / SuppressTokensAtBegin: the listed ids get -inf (the caller
// decides when). Ids are checked against the vocabulary beforehand (check_token_ids).
inline void suppress_tokens(float* scores, std::int64_t vocab, const std::vector<std::int64_t>& token_ids) {
  for (std::int64_t id : token_ids) {
    if (id >= 0 && id < vocab) scores[id] = kNegativeInfinity;
  }
}

// ForcedBOSTokenLogitsProcessor / ForcedEOSTokenLogitsProcessor: every score -inf but the forced ids', which
// become 0 (the caller decides when).
inline void force_tokens(float* scores, std::int64_t vocab, const std::int64_t* token_ids, std::int64_t count) {
  std::fill(scores, scores + vocab, kNegativeInfinity);
  for (std::int64_t i = 0; i < count; ++i) scores[token_ids[i]] = 0.0f;
}

// InfNanRemoveLogitsProcessor: NaN -> 0, +inf -> FLT_MAX, -inf -> -FLT_MAX (torch.finfo(float32).max / .min).
inline void remove_invalid_values(float* scores, std::int64_t vocab) {
  for (std::int64_t i = 0; i < vocab; ++i) {
    const float score = scores[i];
    if (std::isnan(score)) {
      scores[i] = 0.0f;
    } else if (std::isinf(score)) {
      scores[i] = score > 0 ? std::numeric_limits<float>::max() : std::numeric_limits<float>::lowest();
    }
  }
}

// ExponentialDecayLengthPenalty: once the history is longer than regulation_start (start_index + prompt
// length), each EOS score grows by |score| * (decay_factor ** (length - regulation_start) - 1). The power is a
// Python float (double) rounded to float32 by torch before the multiplication. Each distinct EOS id once.
inline void apply_exponential_decay_length_penalty(float* scores, const std::vector<std::int64_t>& eos_token_ids,
                                                   std::int64_t length, std::int64_t regulation_start,
                                                   double decay_factor) {
  if (length <= regulation_start) return;
  const float growth = static_cast<float>(std::pow(decay_factor, static_cast<double>(length - regulation_start)) - 1.0);
  for (std::size_t i = 0; i < eos_token_ids.size(); ++i) {
    const std::int64_t id = eos_token_ids[i];
    if (std::find(eos_token_ids.begin(), eos_token_ids.begin() + static_cast<std::ptrdiff_t>(i), id) !=
        eos_token_ids.begin() + static_cast<std::ptrdiff_t>(i)) {
      continue;
    }
    scores[id] = scores[id] + detail::rounded_product(std::abs(scores[id]), growth);
  }
}

}  // namespace blip::generation
