// blip/generation/logits_processors.hpp: the processor list of one request, in Hugging Face's order.
//
// LogitsProcessors applies the list HF's `_get_logits_processor` builds from
// a GenerationConfig (transformers/generation/utils.py), in HF's order; each
// entry is one function of processors.hpp (every strategy) or warpers.hpp
// (sampling only):
//   HammingDiversity (group beam search) -> RepetitionPenalty -> NoRepeatNGram
//   -> NoBadWords -> MinLength / MinNewTokensLength -> ForcedBOSToken
//   -> ForcedEOSToken -> InfNanRemove -> ExponentialDecayLengthPenalty
//   -> SuppressTokens -> SuppressTokensAtBegin
//   -> (sampling only) Temperature -> TopK -> TopP -> MinP -> Typical
//      -> EpsilonCutoff -> EtaCutoff
//   -> LogitNormalization (renormalize_logits).
// (HF's EncoderRepetitionPenalty and EncoderNoRepeatNGram come second and
// fifth; options_from_generation_config refuses them.) Order matters: a
// forced token's -inf row becomes -FLT_MAX under remove_invalid_values, and
// suppress_tokens then puts -inf back.
//
// It owns its workspaces (sized once per request), so processing a token
// allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/generation/options.hpp"
#include "blip/generation/processors.hpp"
#include "blip/generation/softmax.hpp"
#include "blip/generation/warpers.hpp"

namespace blip::generation {

// Which loop the scores come from; decides whether warpers run and their min_tokens_to_keep.
enum class SearchKind { Greedy, Sample, BeamSearch, BeamSample, GroupBeamSearch };

inline SearchKind search_kind(const GenerationOptions& options) {
  if (options.num_beams > 1) {
    if (options.num_beam_groups > 1) return SearchKind::GroupBeamSearch;
    return options.do_sample ? SearchKind::BeamSample : SearchKind::BeamSearch;
  }
  return options.do_sample ? SearchKind::Sample : SearchKind::Greedy;
}

class LogitsProcessors {
 public:
  LogitsProcessors() = default;

  // Mirrors `_get_logits_processor`: which processors exist and with what parameters. `lengths` are the
  // resolved ones (resolve_lengths): min_length for MinLength, max_length for ForcedEOS (and the longest
  // history a row can have), prompt_length (HF input_ids_seq_length) for SuppressTokensAtBegin and
  // ExponentialDecayLengthPenalty. Every token id the options name is checked against `vocab`.
  LogitsProcessors(const GenerationOptions& options, const SpecialTokens& special, std::int64_t vocab,
                   const ResolvedLengths& lengths)
      : options_(options), eos_token_ids_(special.eos_token_ids), vocab_(vocab), lengths_(lengths) {
    check_token_ids(options, vocab);
    const SearchKind kind = search_kind(options);
    warp_ = kind == SearchKind::Sample || kind == SearchKind::BeamSample;
    // HF: in beam methods keep at least one non-EOS token beside the EOS ids.
    min_tokens_to_keep_ = kind == SearchKind::BeamSample
                              ? std::max<std::int64_t>(2, static_cast<std::int64_t>(eos_token_ids_.size()) + 1)
                              : 1;
    gathered_.resize(static_cast<std::size_t>(std::max<std::int64_t>(lengths.max_length, 1)));
    if (!options.bad_words_ids.empty()) bad_words_ = BadWords(options.bad_words_ids, eos_token_ids_);
    if (options.exponential_decay_length_penalty) {
      check(!eos_token_ids_.empty(), "GenerationOptions::exponential_decay_length_penalty needs an EOS id");
      regulation_start_ = options.exponential_decay_length_penalty->first + lengths.prompt_length;
    }
    // HF SuppressTokensAtBegin: the first new token, one later when a forced BOS takes a one-id prompt's turn.
    begin_index_ = lengths.prompt_length + (lengths.prompt_length <= 1 && options.forced_bos_token_id ? 1 : 0);
    if (warp_) workspace_.reserve(vocab);
  }

  // Processes one row of scores in place. `history` is what HF holds in input_ids for that row (prompt ids +
  // new tokens so far), `length` its length. Group beam search: `previous_group_tokens` are the `count` tokens
  // the earlier groups of the row's entry chose at this step (HF current_tokens), for the diversity penalty.
  void apply(float* scores, const std::int64_t* history, std::int64_t length,
             const std::int64_t* previous_group_tokens = nullptr, std::int64_t previous_group_count = 0) {
    check(length <= static_cast<std::int64_t>(gathered_.size()), "LogitsProcessors: history of ", length,
          " tokens exceeds the ", gathered_.size(), " reserved");
    if (options_.diversity_penalty > 0 && previous_group_count > 0) {
      apply_hamming_diversity(scores, vocab_, previous_group_tokens, previous_group_count, options_.diversity_penalty);
    }
    if (options_.repetition_penalty != 1.0) {
      apply_repetition_penalty(scores, vocab_, history, length, options_.repetition_penalty, gathered_.data());
    }
    if (options_.no_repeat_ngram_size > 0) apply_no_repeat_ngram(scores, vocab_, history, length,
                                                                 options_.no_repeat_ngram_size);
    if (!bad_words_.empty()) bad_words_.apply(scores, history, length);
    // MinLength and MinNewTokensLength: both reduce to "length < resolved min_length" (resolve_lengths).
    if (length < lengths_.min_length) suppress_tokens(scores, vocab_, eos_token_ids_);
    if (options_.forced_bos_token_id && length == 1) force_tokens(scores, vocab_, &*options_.forced_bos_token_id, 1);
    if (!options_.forced_eos_token_id.empty() && length == lengths_.max_length - 1) {
      force_tokens(scores, vocab_, options_.forced_eos_token_id.data(),
                   static_cast<std::int64_t>(options_.forced_eos_token_id.size()));
    }
    if (options_.remove_invalid_values) remove_invalid_values(scores, vocab_);
    if (options_.exponential_decay_length_penalty) {
      apply_exponential_decay_length_penalty(scores, eos_token_ids_, length, regulation_start_,
                                             options_.exponential_decay_length_penalty->second);
    }
    if (!options_.suppress_tokens.empty()) suppress_tokens(scores, vocab_, options_.suppress_tokens);
    if (length == begin_index_) suppress_tokens(scores, vocab_, options_.begin_suppress_tokens);
    if (warp_) {
      if (options_.temperature != 1.0) apply_temperature(scores, vocab_, options_.temperature);
      if (options_.top_k != 0) {
        apply_top_k(scores, vocab_, options_.top_k, min_tokens_to_keep_, workspace_.values.data());
      }
      if (options_.top_p < 1.0) apply_top_p(scores, vocab_, options_.top_p, min_tokens_to_keep_, workspace_);
      if (options_.min_p > 0.0) apply_min_p(scores, vocab_, options_.min_p, min_tokens_to_keep_, workspace_);
      if (options_.typical_p < 1.0) apply_typical(scores, vocab_, options_.typical_p, min_tokens_to_keep_, workspace_);
      if (options_.epsilon_cutoff > 0.0) {
        apply_epsilon_cutoff(scores, vocab_, options_.epsilon_cutoff, min_tokens_to_keep_, workspace_);
      }
      if (options_.eta_cutoff > 0.0) apply_eta_cutoff(scores, vocab_, options_.eta_cutoff, min_tokens_to_keep_, workspace_);
    }
    if (options_.renormalize_logits) log_softmax(scores, scores, vocab_);
  }

  std::int64_t min_tokens_to_keep() const { return min_tokens_to_keep_; }

 private:
  GenerationOptions options_;
  std::vector<std::int64_t> eos_token_ids_;
  std::int64_t vocab_ = 0, min_tokens_to_keep_ = 1;
  ResolvedLengths lengths_;
  std::int64_t regulation_start_ = 0, begin_index_ = -1;
  bool warp_ = false;
  BadWords bad_words_;
  std::vector<float> gathered_;
  WarperWorkspace workspace_;
};

}  // namespace blip::generation
