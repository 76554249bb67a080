// blip/generation/options.hpp: what a generate() call is asked to do.
//
// GenerationOptions carries Hugging Face's GenerationConfig names and
// defaults (transformers/generation/configuration_utils.py), so a Python call
// `model.generate(..., num_beams=3, length_penalty=0.6)` translates field by
// field. Real-valued options are doubles because HF holds them as Python
// floats: `1 - top_p` and `n ** length_penalty` are computed in double there,
// and a float 0.6f would already differ in the 8th digit.
//
// resolve_lengths() turns max_length / max_new_tokens / min_length /
// min_new_tokens into the absolute lengths the search loop tests against,
// exactly as generate()'s `_prepare_generated_length` does;
// validate_options() rejects what HF's GenerationConfig.validate() and the
// processors' constructors reject (and values HF would silently skip),
// naming the option; check_token_ids() checks every id an option names
// against the decoder's vocabulary.
//
// options_from_generation_config() is the one translation from a parsed
// generation config (generation_config.json, or the one HF derives from
// config.json) into GenerationOptions: every key is carried there, in one
// place, or refused with an error naming it; none is dropped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/io/config/generation_config.hpp"  // GenerationConfigFile and the EarlyStopping enum

namespace blip::generation {

struct GenerationOptions {
  // ---- length (HF: max_length counts the prompt ids; max_new_tokens, when set, wins)
  std::int64_t max_new_tokens = -1;   // -1: unset, use max_length
  std::int64_t max_length = 20;       // total length incl. the prompt ids (HF default 20)
  std::int64_t min_new_tokens = 0;    // 0: unset (HF None); > 0 overrides min_length with prompt + min_new_tokens
  std::int64_t min_length = 0;        // EOS is impossible while the sequence (prompt incl.) is shorter

  // ---- strategy: greedy (num_beams 1), sampling (do_sample), beam search (num_beams > 1),
  // beam sampling (both), group beam search (num_beams > 1, num_beam_groups > 1)
  bool do_sample = false;
  std::int64_t num_beams = 1;

  // ---- group (diverse) beam search, HF `_group_beam_search`: the beams form num_beam_groups groups searched
  // one after the other at each step; a group's scores lose diversity_penalty * (how often earlier groups of
  // the same entry chose that token at this step) (HammingDiversityLogitsProcessor).
  std::int64_t num_beam_groups = 1;
  double diversity_penalty = 0.0;     // must be > 0 when num_beam_groups > 1 (HF validate())

  // ---- warpers, used only when do_sample (HF order: temperature, top-k, top-p, min-p, typical, epsilon, eta)
  double temperature = 1.0;
  std::int64_t top_k = 50;            // 0 disables
  double top_p = 1.0;                 // 1 disables
  double min_p = 0.0;                 // 0 disables (HF None)
  double typical_p = 1.0;             // 1 disables
  double epsilon_cutoff = 0.0;        // 0 disables
  double eta_cutoff = 0.0;            // 0 disables

  // ---- processors (every strategy), in HF's order
  double repetition_penalty = 1.0;    // 1 disables
  std::int64_t no_repeat_ngram_size = 0;  // 0 disables
  // Token sequences that may not be generated: the last id of a listed sequence is banned whenever the row ends
  // with the others. A sequence that is exactly one EOS id is dropped (HF NoBadWordsLogitsProcessor).
  std::vector<std::vector<std::int64_t>> bad_words_ids;
  std::optional<std::int64_t> forced_bos_token_id;   // the only choice for the token after a 1-token history
  std::vector<std::int64_t> forced_eos_token_id;     // the only choices for the last token (at max_length - 1)
  bool remove_invalid_values = false;  // NaN -> 0, +-inf -> +-FLT_MAX, after the processors above
  // (start_index, decay_factor): with n > start_index new tokens, EOS scores grow by
  // |score| * (decay_factor^(n - start_index) - 1).
  std::optional<std::pair<std::int64_t, double>> exponential_decay_length_penalty;
  std::vector<std::int64_t> suppress_tokens;         // -inf at every step
  std::vector<std::int64_t> begin_suppress_tokens;   // -inf for the first new token
  bool renormalize_logits = false;    // log_softmax after every processor and warper (HF LogitNormalization)

  // ---- beam search
  double length_penalty = 1.0;        // a finished hypothesis scores sum_logprobs / new_tokens ** length_penalty
  using EarlyStopping = ::blip::EarlyStopping;  // HF's false / true / "never", one enum with the config's
  EarlyStopping early_stopping = EarlyStopping::False;

  // Rows returned per batch entry: the best hypotheses of beam search, or independent samples.
  std::int64_t num_return_sequences = 1;

  // Seed of the sampler (xoshiro256**, see sampling.hpp). Sampled sequences are deterministic per seed but are
  // NOT torch.multinomial's: torch's generator cannot be reproduced portably.
  std::uint64_t seed = 0;
};

using EarlyStopping = GenerationOptions::EarlyStopping;

// The GenerationOptions a parsed generation config asks for (what HF's
// generate() does with that GenerationConfig and no call-time arguments).
// Every GenerationConfigFile field is accounted for here:
//   * carried into GenerationOptions: everything that changes the ids;
//   * refused with an error naming the key: encoder_repetition_penalty and
//     encoder_no_repeat_ngram_size when not neutral (below), and every key of
//     `unsupported_parameters` (penalty_alpha, forced_decoder_ids, ...);
//   * no effect on the ids: use_cache, output_scores, return_dict_in_generate;
//   * special ids (pad / bos / eos / decoder_start): SpecialTokens, chosen by
//     the model (HF's BLIP passes its own eos / pad to generate()).
// `seed` has no HF key and keeps its default.
inline GenerationOptions options_from_generation_config(const GenerationConfigFile& config) {
  for (const std::string& key : config.unsupported_parameters) {
    fail("generation config: key \"", key, "\" is set, but blipcpp does not implement what it asks of generate() ",
         "(contrastive search, DoLa, constraints, sequence bias, guidance, stop strings, time limits, ",
         "assisted decoding and watermarking are not implemented); remove it to generate as HF would without it");
  }
  // HF applies these to `inputs_tensor`: for BLIP-2 those are the language model's inputs_embeds, where HF's
  // processors fail (float ids); for BLIP's text decoder the repetition one gathers only the first batch_size
  // rows of the beams x batch scores. Neither has a meaning worth reproducing: refused, never ignored.
  check(config.encoder_repetition_penalty == 1.0, "generation config: key \"encoder_repetition_penalty\" is ",
        config.encoder_repetition_penalty, " but only 1.0 (off) is supported: HF applies it to the encoder inputs, ",
        "which BLIP-2 passes as embeddings");
  check(config.encoder_no_repeat_ngram_size == 0, "generation config: key \"encoder_no_repeat_ngram_size\" is ",
        config.encoder_no_repeat_ngram_size, " but only 0 (off) is supported: HF applies it to the encoder inputs, ",
        "which BLIP-2 passes as embeddings");

  GenerationOptions options;
  // ---- length
  options.max_new_tokens = config.max_new_tokens.value_or(-1);
  options.max_length = config.max_length;
  options.min_length = config.min_length;
  if (config.min_new_tokens) {
    if (*config.min_new_tokens == 0) {
      // HF: min_length := prompt + 0, so EOS is never suppressed. GenerationOptions' 0 means "unset",
      // so say the same thing through min_length.
      options.min_length = 0;
    } else {
      options.min_new_tokens = *config.min_new_tokens;  // a negative value is refused by resolve_lengths
    }
  }
  // ---- strategy
  options.do_sample = config.do_sample;
  options.num_beams = config.num_beams;
  options.num_beam_groups = config.num_beam_groups;
  options.diversity_penalty = config.diversity_penalty;
  // ---- warpers (null temperature / top_k / top_p / typical_p already read as the neutral values)
  options.temperature = config.temperature;
  options.top_k = config.top_k;
  options.top_p = config.top_p;
  options.min_p = config.min_p.value_or(0.0);  // HF None and 0 both remove nothing
  options.typical_p = config.typical_p;
  options.epsilon_cutoff = config.epsilon_cutoff;
  options.eta_cutoff = config.eta_cutoff;
  // ---- processors
  options.repetition_penalty = config.repetition_penalty;
  options.no_repeat_ngram_size = config.no_repeat_ngram_size;
  options.bad_words_ids = config.bad_words_ids;
  options.forced_bos_token_id = config.forced_bos_token_id;
  options.forced_eos_token_id = config.forced_eos_token_id;
  options.remove_invalid_values = config.remove_invalid_values;
  options.exponential_decay_length_penalty = config.exponential_decay_length_penalty;
  options.suppress_tokens = config.suppress_tokens;
  options.begin_suppress_tokens = config.begin_suppress_tokens;
  options.renormalize_logits = config.renormalize_logits;
  // ---- beam search
  options.length_penalty = config.length_penalty;
  options.early_stopping = config.early_stopping;
  options.num_return_sequences = config.num_return_sequences;
  return options;
}

// eos_token_ids: any of them ends a sequence (HF accepts a list). pad_token_id fills finished rows; -1 means
// "unset" and then, as in HF's _prepare_special_tokens, the first EOS id is used.
struct SpecialTokens {
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = -1;
};

struct GenerationOutput {
  // [batch * num_return_sequences, T]: the entry's prompt_ids followed by the new tokens; finished rows padded
  // with pad (HF's `sequences` layout). Row b * num_return_sequences + j is the j-th result of entry b
  // (beam search: the j-th best hypothesis).
  Tensor<std::int64_t> sequences;
  // Beam search only: HF's `sequences_scores`, the length-normalised score of each row
  // (sum of processed log-probs / new_tokens ** length_penalty). Empty otherwise.
  std::vector<float> sequence_scores;
};

// The absolute lengths the loop works with, after HF's _prepare_generated_length.
struct ResolvedLengths {
  std::int64_t prompt_length = 0;   // HF input_ids.shape[-1] at the start (decoder_prompt_len)
  std::int64_t max_length = 0;      // stop when the sequence (prompt incl.) reaches this
  std::int64_t min_length = 0;      // suppress EOS while the sequence is shorter
  std::int64_t max_new_tokens() const { return max_length - prompt_length; }
};

// Mirrors generate()'s `_prepare_generated_length` (input_ids path): max_new_tokens, when set, replaces
// max_length by prompt + max_new_tokens; min_new_tokens, when set (> 0 here), replaces min_length by
// prompt + min_new_tokens. Fails, like `_validate_generated_length`, when nothing can be generated.
inline ResolvedLengths resolve_lengths(const GenerationOptions& options, std::int64_t prompt_length) {
  check(prompt_length >= 0, "generate: negative prompt length ", prompt_length);
  check(options.max_new_tokens == -1 || options.max_new_tokens > 0, "GenerationOptions::max_new_tokens must be > 0 (or -1 for unset), got ",
        options.max_new_tokens);
  check(options.min_new_tokens >= 0, "GenerationOptions::min_new_tokens must be >= 0, got ", options.min_new_tokens);
  check(options.min_length >= 0, "GenerationOptions::min_length must be >= 0, got ", options.min_length);
  ResolvedLengths lengths;
  lengths.prompt_length = prompt_length;
  lengths.max_length = options.max_new_tokens > 0 ? prompt_length + options.max_new_tokens : options.max_length;
  check(lengths.max_length > prompt_length, "GenerationOptions::max_length is ", lengths.max_length,
        " but the prompt already has ", prompt_length,
        " ids (max_length counts them); increase max_length or set max_new_tokens");
  lengths.min_length = options.min_new_tokens > 0 ? prompt_length + options.min_new_tokens : options.min_length;
  return lengths;
}

// Mirrors the inputs_embeds branch of `_prepare_generated_length` for decoder-only models fed by inputs_embeds
// (BLIP-2 + OPT): HF's input_ids is then empty, and when max_new_tokens / min_new_tokens are unset it subtracts
// the embeddings' length from max_length / min_length (the latter clamped at 0). Call this before generate()
// with prompt_ids empty. (BLIP-2's own generate() first ADDS the query count to both; that is the model's part.)
inline GenerationOptions adjust_lengths_for_inputs_embeds(GenerationOptions options, std::int64_t embeds_length) {
  check(embeds_length >= 0, "adjust_lengths_for_inputs_embeds: negative embeddings length ", embeds_length);
  if (options.max_new_tokens <= 0) options.max_length -= embeds_length;
  if (options.min_new_tokens <= 0) options.min_length = std::max<std::int64_t>(options.min_length - embeds_length, 0);
  return options;
}

// Rejects what HF rejects (GenerationConfig.validate, the processors' and BeamSearchScorer's constructors),
// naming the option. Also rejects what HF would silently skip (an epsilon_cutoff of 1.5, a negative
// diversity_penalty, num_beam_groups without beams): such a value is a mistake, and ignoring it would hide
// that. Lengths are checked by resolve_lengths, token ids against the
// vocabulary by check_token_ids.
inline void validate_options(const GenerationOptions& options) {
  check(options.num_beams >= 1, "GenerationOptions::num_beams must be >= 1, got ", options.num_beams);
  check(options.num_return_sequences >= 1, "GenerationOptions::num_return_sequences must be >= 1, got ",
        options.num_return_sequences);
  if (options.num_beams == 1) {
    check(options.do_sample || options.num_return_sequences == 1,
          "GenerationOptions::num_return_sequences is ", options.num_return_sequences,
          " but greedy search (num_beams 1, do_sample false) returns one sequence per entry; use beam search or sampling");
  } else {
    check(options.num_return_sequences <= options.num_beams, "GenerationOptions::num_return_sequences (",
          options.num_return_sequences, ") must be <= num_beams (", options.num_beams, ")");
  }
  // ---- group beam search (HF validate() and HammingDiversityLogitsProcessor / BeamSearchScorer)
  check(options.num_beam_groups >= 1, "GenerationOptions::num_beam_groups must be >= 1, got ",
        options.num_beam_groups);
  check(std::isfinite(options.diversity_penalty) && options.diversity_penalty >= 0,
        "GenerationOptions::diversity_penalty must be a finite value >= 0 (0 disables it), got ",
        options.diversity_penalty);
  if (options.num_beam_groups > 1) {
    check(options.num_beams > 1, "GenerationOptions::num_beam_groups is ", options.num_beam_groups,
          " but group beam search needs num_beams > 1 (got ", options.num_beams, ")");
    check(options.num_beams % options.num_beam_groups == 0, "GenerationOptions::num_beams (", options.num_beams,
          ") must be divisible by num_beam_groups (", options.num_beam_groups, ")");
    check(!options.do_sample, "GenerationOptions::num_beam_groups is ", options.num_beam_groups,
          ": group beam search does not sample; set do_sample = false");
    check(options.diversity_penalty > 0, "GenerationOptions::num_beam_groups is ", options.num_beam_groups,
          " but diversity_penalty is 0: the groups would be identical (HF refuses this too)");
  } else {
    check(options.diversity_penalty == 0, "GenerationOptions::diversity_penalty is ", options.diversity_penalty,
          " but it only acts in group beam search (num_beam_groups > 1, got ", options.num_beam_groups, ")");
  }
  // ---- processors
  check(std::isfinite(options.repetition_penalty) && options.repetition_penalty > 0,
        "GenerationOptions::repetition_penalty must be a finite value > 0, got ", options.repetition_penalty);
  check(options.no_repeat_ngram_size >= 0, "GenerationOptions::no_repeat_ngram_size must be >= 0, got ",
        options.no_repeat_ngram_size);
  for (const std::vector<std::int64_t>& sequence : options.bad_words_ids) {
    check(!sequence.empty(), "GenerationOptions::bad_words_ids holds an empty sequence");
  }
  check(std::isfinite(options.length_penalty), "GenerationOptions::length_penalty must be finite, got ",
        options.length_penalty);
  if (options.exponential_decay_length_penalty) {
    check(std::isfinite(options.exponential_decay_length_penalty->second),
          "GenerationOptions::exponential_decay_length_penalty's decay factor must be finite, got ",
          options.exponential_decay_length_penalty->second);
  }
  if (options.do_sample) {
    check(std::isfinite(options.temperature) && options.temperature > 0,
          "GenerationOptions::temperature must be > 0 when sampling (for greedy decoding set do_sample = false), got ",
          options.temperature);
    check(options.top_k >= 0, "GenerationOptions::top_k must be >= 0 (0 disables it), got ", options.top_k);
    check(options.top_p > 0 && options.top_p <= 1, "GenerationOptions::top_p must be in (0, 1], got ",
          options.top_p);
    check(options.min_p >= 0 && options.min_p <= 1, "GenerationOptions::min_p must be in [0, 1] (0 disables it), got ",
          options.min_p);
    check(options.typical_p > 0 && options.typical_p <= 1,
          "GenerationOptions::typical_p must be in (0, 1] (1 disables it), got ", options.typical_p);
    check(options.epsilon_cutoff >= 0 && options.epsilon_cutoff < 1,
          "GenerationOptions::epsilon_cutoff must be in [0, 1) (0 disables it), got ", options.epsilon_cutoff);
    check(options.eta_cutoff >= 0 && options.eta_cutoff < 1,
          "GenerationOptions::eta_cutoff must be in [0, 1) (0 disables it), got ", options.eta_cutoff);
  }
}

namespace detail {
inline void check_token_id(const char* option, std::int64_t id, std::int64_t vocab) {
  check(id >= 0 && id < vocab, "GenerationOptions::", option, " holds token id ", id,
        ", outside the decoder's vocabulary [0, ", vocab, ")");
}
}  // namespace detail

// The token ids the options name must exist in the decoder's vocabulary of `vocab` ids. (HF fails on an
// out-of-range forced_bos / forced_eos id or bad word with an IndexError or ValueError, and silently skips
// out-of-range suppress_tokens; here each is an error naming the option and the bound.)
inline void check_token_ids(const GenerationOptions& options, std::int64_t vocab) {
  for (const std::vector<std::int64_t>& sequence : options.bad_words_ids) {
    for (std::int64_t id : sequence) detail::check_token_id("bad_words_ids", id, vocab);
  }
  if (options.forced_bos_token_id) detail::check_token_id("forced_bos_token_id", *options.forced_bos_token_id, vocab);
  for (std::int64_t id : options.forced_eos_token_id) detail::check_token_id("forced_eos_token_id", id, vocab);
  for (std::int64_t id : options.suppress_tokens) detail::check_token_id("suppress_tokens", id, vocab);
  for (std::int64_t id : options.begin_suppress_tokens) detail::check_token_id("begin_suppress_tokens", id, vocab);
}

}  // namespace blip::generation
