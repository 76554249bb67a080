// blip/generation/generate.hpp: Hugging Face's generate() search loops over a Decoder.
//
//   generate(decoder, prompt_ids, options, special)
//
// dispatches like HF's `generate` (GenerationConfig.get_generation_mode):
//   num_beams == 1, !do_sample -> greedy          (HF `_sample`, argmax)
//   num_beams == 1,  do_sample -> sampling        (HF `_sample`, multinomial)
//   num_beams  > 1, !do_sample -> beam search     (HF `_beam_search`)
//   num_beams  > 1,  do_sample -> beam sampling   (HF `_beam_search` with do_sample)
//   num_beams  > 1, num_beam_groups > 1 -> group beam search (HF `_group_beam_search`)
//
// What the loops reproduce (see docs/generation.md for the walk-through):
//   * greedy / sampling: processors (and, sampling, warpers) act on the RAW
//     logits; finished rows are fed and padded with pad; a row finishes on
//     any EOS id; the loop stops when every row has finished or the length
//     reaches max_length (HF's EosTokenCriteria / MaxLengthCriteria);
//   * beam search: processors act on log_softmax(logits), then each beam's
//     running sum is added; the first step considers only beam 0 (the other
//     beams start at -1e9); 2 * num_beams (or (1 + #EOS) * num_beams)
//     candidates per entry go to BeamSearchScorer.process; the loop stops
//     when every entry is done or max_length is reached; finalize() adds
//     the open beams and orders the results;
//   * group beam search: the same per group of num_beams / num_beam_groups
//     beams, the groups taken one after the other within a step, each
//     group's first beam starting at 0; a group's scores are lowered for the
//     tokens earlier groups of its entry chose at this step (diversity);
//   * the decoder is called exactly as often as HF calls forward: start()
//     once, then one step() per further token; nothing else.
//
// Buffers (token histories, score rows, candidate arrays, hypothesis storage)
// are allocated once when generate() starts; the per-token path allocates
// nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/generation/beam_search.hpp"
#include "blip/generation/decoder.hpp"
#include "blip/generation/logits_processors.hpp"
#include "blip/generation/options.hpp"
#include "blip/generation/sampling.hpp"

namespace blip::generation {

namespace detail {

inline bool is_eos(std::int64_t token, const std::vector<std::int64_t>& eos_token_ids) {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
}

// torch.argmax: the first index of the maximum, where NaN counts as the maximum (torch propagates NaN; HF's
// ForcedEOSToken + ExponentialDecayLengthPenalty make one: -inf + |-inf| * growth).
inline std::int64_t argmax(const float* scores, std::int64_t count) {
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < count && !std::isnan(scores[best]); ++i) {
    if (scores[i] > scores[best] || std::isnan(scores[i])) best = i;
  }
  return best;
}

// torch.topk's order: larger first, NaN above every number.
inline bool ranks_above(float a, float b) { return a > b || (std::isnan(a) && !std::isnan(b)); }

// The indices of the `count` largest scores, best first; equal scores lowest index first. One pass with a
// sorted buffer: almost every score fails the first comparison against the current count-th best.
// (top_candidates_naive is the sorting reference.)
inline void top_candidates(const float* scores, std::int64_t size, std::int64_t count, std::int64_t* best) {
  std::int64_t filled = 0;
  for (std::int64_t i = 0; i < size; ++i) {
    const float score = scores[i];
    if (filled == count && !ranks_above(score, scores[best[count - 1]])) continue;
    // Later indices go after equal scores already held.
    std::int64_t position = filled < count ? filled : count - 1;
    while (position > 0 && ranks_above(score, scores[best[position - 1]])) {
      best[position] = best[position - 1];
      --position;
    }
    best[position] = i;
    if (filled < count) ++filled;
  }
  check(filled == count, "beam search: fewer than ", count, " candidates");
}

inline void top_candidates_naive(const float* scores, std::int64_t size, std::int64_t count, std::int64_t* best) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size));
  for (std::int64_t i = 0; i < size; ++i) order[static_cast<std::size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return ranks_above(scores[a], scores[b]); });
  std::copy_n(order.begin(), count, best);
}

// What every loop needs, checked once.
struct Request {
  std::int64_t batch_size = 0;
  std::int64_t vocab = 0;
  ResolvedLengths lengths;
  SpecialTokens special;  // pad resolved
};

inline Request prepare_request(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompt_ids,
                               const GenerationOptions& options, const SpecialTokens& special) {
  validate_options(options);
  Request request;
  request.batch_size = static_cast<std::int64_t>(prompt_ids.size());
  check(request.batch_size >= 1, "generate: prompt_ids is empty; pass one (possibly empty) prompt per batch entry");
  const std::int64_t prompt_length = static_cast<std::int64_t>(prompt_ids.front().size());
  request.vocab = decoder.vocab_size();
  check(request.vocab > 0, "generate: decoder reports vocab_size ", request.vocab);
  for (std::size_t entry = 0; entry < prompt_ids.size(); ++entry) {
    check(static_cast<std::int64_t>(prompt_ids[entry].size()) == prompt_length, "generate: prompt_ids[", entry,
          "] has ", prompt_ids[entry].size(), " ids but prompt_ids[0] has ", prompt_length,
          " (all prompts must have the same length; padding is the model's business)");
    for (std::int64_t id : prompt_ids[entry]) {
      check(id >= 0 && id < request.vocab, "generate: prompt_ids[", entry, "] holds id ", id, " outside [0, ",
            request.vocab, ")");
    }
  }
  request.lengths = resolve_lengths(options, prompt_length);
  request.special = special;
  for (std::int64_t id : special.eos_token_ids) {
    check(id >= 0 && id < request.vocab, "generate: eos token id ", id, " outside [0, ", request.vocab, ")");
  }
  // HF _prepare_special_tokens: an unset pad id becomes the first EOS id.
  if (request.special.pad_token_id < 0 && !special.eos_token_ids.empty()) {
    request.special.pad_token_id = special.eos_token_ids.front();
  }
  check(request.special.pad_token_id < request.vocab, "generate: pad token id ", request.special.pad_token_id,
        " outside [0, ", request.vocab, ")");
  return request;
}

// Greedy search and multinomial sampling: HF `_sample`. Rows: entry b's j-th sample is row b * nrs + j.
inline GenerationOutput greedy_or_sample(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompt_ids,
                                         const GenerationOptions& options, const Request& request) {
  const std::int64_t rows_per_entry = options.num_return_sequences;
  const std::int64_t rows = request.batch_size * rows_per_entry;
  const std::int64_t vocab = request.vocab;
  const std::int64_t max_length = request.lengths.max_length;
  const std::vector<std::int64_t>& eos = request.special.eos_token_ids;

  // Everything the loop touches, allocated now.
  std::vector<std::int64_t> history(static_cast<std::size_t>(rows * max_length));
  std::vector<std::int64_t> tokens(static_cast<std::size_t>(rows));
  std::vector<char> unfinished(static_cast<std::size_t>(rows), 1);
  std::vector<float> scores(static_cast<std::size_t>(vocab));
  std::vector<double> weights(options.do_sample ? static_cast<std::size_t>(vocab) : 0);
  LogitsProcessors processors(options, request.special, vocab, request.lengths);
  Random random(options.seed);

  std::int64_t length = request.lengths.prompt_length;
  for (std::int64_t row = 0; row < rows; ++row) {
    const auto& prompt = prompt_ids[static_cast<std::size_t>(row / rows_per_entry)];
    std::copy(prompt.begin(), prompt.end(), history.begin() + row * max_length);
  }

  const float* logits = decoder.start(rows_per_entry, request.lengths.max_new_tokens());
  while (true) {
    for (std::int64_t row = 0; row < rows; ++row) {
      if (!unfinished[static_cast<std::size_t>(row)]) {
        tokens[static_cast<std::size_t>(row)] = request.special.pad_token_id;  // HF: finished rows get pad
        continue;
      }
      std::copy(logits + row * vocab, logits + (row + 1) * vocab, scores.begin());
      processors.apply(scores.data(), history.data() + row * max_length, length);
      tokens[static_cast<std::size_t>(row)] = options.do_sample
                                                  ? sample_token(scores.data(), vocab, random, weights.data())
                                                  : argmax(scores.data(), vocab);
    }
    bool any_unfinished = false;
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t token = tokens[static_cast<std::size_t>(row)];
      history[static_cast<std::size_t>(row * max_length + length)] = token;
      char& row_unfinished = unfinished[static_cast<std::size_t>(row)];
      if (row_unfinished && is_eos(token, eos)) row_unfinished = 0;
      any_unfinished = any_unfinished || row_unfinished;
    }
    ++length;
    if (!any_unfinished || length >= max_length) break;
    logits = decoder.step(tokens.data());
  }

  GenerationOutput output;
  output.sequences = Tensor<std::int64_t>(Shape{rows, length});
  for (std::int64_t row = 0; row < rows; ++row) {
    std::copy_n(history.data() + row * max_length, length, output.sequences.data() + row * length);
  }
  return output;
}

// Beam search and beam sampling (HF `_beam_search`), and group beam search (HF `_group_beam_search`), with
// BeamSearchScorer. One group (num_beam_groups 1) is plain beam search: HF's two loops then do the same.
// With G groups of S = num_beams / G beams, each step runs the groups one after the other; group g of an entry
// sees the tokens groups 0 .. g-1 of that entry chose at this step (the diversity penalty), picks its
// candidates among its own S * vocab scores and reorders only its own rows.
inline GenerationOutput beam_search(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompt_ids,
                                    const GenerationOptions& options, const Request& request) {
  const std::int64_t num_beams = options.num_beams;
  const std::int64_t num_groups = options.num_beam_groups;
  const std::int64_t group_size = num_beams / num_groups;
  const std::int64_t batch = request.batch_size;
  const std::int64_t rows = batch * num_beams;
  const std::int64_t vocab = request.vocab;
  const std::int64_t max_length = request.lengths.max_length;
  const std::int64_t prompt_length = request.lengths.prompt_length;
  const std::vector<std::int64_t>& eos = request.special.eos_token_ids;
  // HF: keep 1 + #EOS candidates per beam (at least 2) so that every beam can continue with a non-EOS token.
  const std::int64_t candidates_per_entry =
      std::max<std::int64_t>(2, 1 + static_cast<std::int64_t>(eos.size())) * group_size;
  const std::int64_t flat = group_size * vocab;  // one entry's candidates in a group: beam * vocab + token
  check(candidates_per_entry <= flat, "beam search: ", candidates_per_entry, " candidates needed but only ", flat,
        " (beams per group * vocab) exist");

  std::vector<std::int64_t> history(static_cast<std::size_t>(rows * max_length));
  std::vector<std::int64_t> next_history(history.size());
  std::vector<float> beam_scores(static_cast<std::size_t>(rows));
  std::vector<float> scores(static_cast<std::size_t>(batch * flat));
  std::vector<std::int64_t> current_tokens(static_cast<std::size_t>(rows));  // HF current_tokens
  std::vector<BeamCandidate> candidates(static_cast<std::size_t>(batch * candidates_per_entry));
  std::vector<std::int64_t> order(static_cast<std::size_t>(candidates_per_entry));
  std::vector<double> weights(options.do_sample ? static_cast<std::size_t>(flat) : 0);
  LogitsProcessors processors(options, request.special, vocab, request.lengths);
  BeamSearchScorer scorer(batch, num_beams, options, max_length);
  Random random(options.seed);

  for (std::int64_t row = 0; row < rows; ++row) {
    const auto& prompt = prompt_ids[static_cast<std::size_t>(row / num_beams)];
    std::copy(prompt.begin(), prompt.end(), history.begin() + row * max_length);
    // HF: the first beam of each group starts at 0, the others at -1e9, so the first step expands one beam per
    // group only.
    beam_scores[static_cast<std::size_t>(row)] = row % group_size == 0 ? 0.0f : -1e9f;
  }

  std::int64_t length = prompt_length;
  const float* logits = decoder.start(num_beams, request.lengths.max_new_tokens());
  while (true) {
    for (std::int64_t group = 0; group < num_groups; ++group) {
      for (std::int64_t entry = 0; entry < batch; ++entry) {
        if (scorer.group_done(entry, group)) continue;  // HF computes these rows and then ignores them
        float* entry_scores = scores.data() + entry * flat;
        for (std::int64_t beam = 0; beam < group_size; ++beam) {
          const std::int64_t row = entry * num_beams + group * group_size + beam;
          float* row_scores = entry_scores + beam * vocab;
          log_softmax(logits + row * vocab, row_scores, vocab);
          processors.apply(row_scores, history.data() + row * max_length, length,
                           current_tokens.data() + entry * num_beams, group * group_size);
          const float running = beam_scores[static_cast<std::size_t>(row)];
          for (std::int64_t token = 0; token < vocab; ++token) row_scores[token] += running;
        }
        BeamCandidate* entry_candidates = candidates.data() + entry * candidates_per_entry;
        if (options.do_sample) {
          // HF: multinomial(softmax over the entry's beams x vocab) without replacement, then sorted by score.
          sample_without_replacement(entry_scores, flat, candidates_per_entry, random, weights.data(), order.data());
          // Stable insertion sort, best first (a handful of candidates; std::stable_sort would allocate).
          for (std::size_t i = 1; i < order.size(); ++i) {
            const std::int64_t moving = order[i];
            std::size_t j = i;
            for (; j > 0 && entry_scores[order[j - 1]] < entry_scores[moving]; --j) order[j] = order[j - 1];
            order[j] = moving;
          }
        } else {
          // HF: torch.topk(sorted=True); equal scores are taken lowest index first here.
          top_candidates(entry_scores, flat, candidates_per_entry, order.data());
        }
        for (std::int64_t rank = 0; rank < candidates_per_entry; ++rank) {
          const std::int64_t index = order[static_cast<std::size_t>(rank)];
          entry_candidates[rank] = {entry_scores[index], index % vocab, index / vocab};
        }
      }
      scorer.process(group, candidates.data(), candidates_per_entry, history.data(), max_length, length,
                     prompt_length, eos, request.special.pad_token_id);
      // The tokens this group chose (pad for a finished group), seen by the later groups' diversity penalty.
      for (std::int64_t entry = 0; entry < batch; ++entry) {
        const std::int64_t first_row = entry * num_beams + group * group_size;
        std::copy_n(scorer.next_tokens().begin() + first_row, group_size, current_tokens.begin() + first_row);
      }
    }

    // input_ids = cat(input_ids[beam_idx], beam_next_tokens)
    const std::vector<std::int64_t>& source_rows = scorer.next_rows();
    const std::vector<std::int64_t>& next_tokens = scorer.next_tokens();
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t source = source_rows[static_cast<std::size_t>(row)];
      std::copy_n(history.data() + source * max_length, length, next_history.data() + row * max_length);
      next_history[static_cast<std::size_t>(row * max_length + length)] = next_tokens[static_cast<std::size_t>(row)];
      beam_scores[static_cast<std::size_t>(row)] = scorer.next_scores()[static_cast<std::size_t>(row)];
    }
    history.swap(next_history);
    ++length;
    if (scorer.is_done() || length >= max_length) break;
    decoder.reorder(source_rows.data());
    logits = decoder.step(next_tokens.data());
  }

  GenerationOutput output;
  output.sequences = scorer.finalize(history.data(), max_length, length, beam_scores.data(), prompt_length, eos,
                                     request.special.pad_token_id, output.sequence_scores);
  return output;
}

}  // namespace detail

// prompt_ids[b]: what HF holds in `input_ids` for entry b at the start (BLIP: [DEC] + prompt; T5:
// [decoder_start]; OPT driven by inputs_embeds: empty). They lead each returned sequence, count for the
// repetition penalty, no-repeat n-grams and min_length / max_length, but not for beam length normalisation
// (HF decoder_prompt_len). All entries' prompts have the same length.
inline GenerationOutput generate(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompt_ids,
                                 const GenerationOptions& options, const SpecialTokens& special) {
  const detail::Request request = detail::prepare_request(decoder, prompt_ids, options, special);
  if (options.num_beams > 1) return detail::beam_search(decoder, prompt_ids, options, request);
  return detail::greedy_or_sample(decoder, prompt_ids, options, request);
}

}  // namespace blip::generation
