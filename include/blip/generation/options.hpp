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
// exactly as generate()'s `_prepare_generated_length` does, and
// validate_options() rejects what HF's GenerationConfig.validate() and the
// processors' constructors reject, naming the option.
//
// options_from_generation_config() is the one translation from a parsed
// generation config (generation_config.json, or the one HF derives from
// config.json) into GenerationOptions: every field GenerationOptions models
// is carried there, in one place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
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
  // beam sampling (both)
  bool do_sample = false;
  std::int64_t num_beams = 1;

  // ---- warpers, used only when do_sample (HF order: temperature, top-k, top-p)
  double temperature = 1.0;
  std::int64_t top_k = 50;            // 0 disables
  double top_p = 1.0;                 // 1 disables

  // ---- processors (every strategy)
  double repetition_penalty = 1.0;    // 1 disables
  std::int64_t no_repeat_ngram_size = 0;  // 0 disables

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
// Carries every field GenerationOptions models; `seed` has no HF key and keeps
// its default. GenerationConfigFile fields GenerationOptions does not model
// (num_beam_groups, diversity_penalty, typical_p, min_p, epsilon/eta cutoffs,
// encoder_* penalties, bad_words_ids, forced_*, suppress_tokens, ...) are not
// carried; the special token ids go to SpecialTokens, chosen by the model.
inline GenerationOptions options_from_generation_config(const GenerationConfigFile& config) {
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
  // ---- warpers (null temperature / top_k / top_p already read as the neutral values)
  options.temperature = config.temperature;
  options.top_k = config.top_k;
  options.top_p = config.top_p;
  // ---- processors
  options.repetition_penalty = config.repetition_penalty;
  options.no_repeat_ngram_size = config.no_repeat_ngram_size;
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
// naming the option. Lengths are checked by resolve_lengths.
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
  check(std::isfinite(options.repetition_penalty) && options.repetition_penalty > 0,
        "GenerationOptions::repetition_penalty must be a finite value > 0, got ", options.repetition_penalty);
  check(options.no_repeat_ngram_size >= 0, "GenerationOptions::no_repeat_ngram_size must be >= 0, got ",
        options.no_repeat_ngram_size);
  check(std::isfinite(options.length_penalty), "GenerationOptions::length_penalty must be finite, got ",
        options.length_penalty);
  if (options.do_sample) {
    check(std::isfinite(options.temperature) && options.temperature > 0,
          "GenerationOptions::temperature must be > 0 when sampling (for greedy decoding set do_sample = false), got ",
          options.temperature);
    check(options.top_k >= 0, "GenerationOptions::top_k must be >= 0 (0 disables it), got ", options.top_k);
    check(options.top_p > 0 && options.top_p <= 1, "GenerationOptions::top_p must be in (0, 1], got ",
          options.top_p);
  }
}

}  // namespace blip::generation
