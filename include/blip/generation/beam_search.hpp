// blip/generation/beam_search.hpp: HF's BeamSearchScorer and BeamHypotheses (generation/beam_search.py).
//
// Per batch entry, BeamHypotheses keeps the num_beams best FINISHED
// hypotheses (a beam that chose EOS, stored without that EOS). Their score is
//     sum_logprobs / generated_len ** length_penalty
// with generated_len = new tokens including the EOS (HF `decoder_prompt_len`
// excludes the prompt). Scores are doubles, as in HF where they are Python
// floats computed from `next_score.item()`.
//
// BeamSearchScorer::process is one step of HF's `process` for one beam group
// (all beams when num_beam_groups is 1): it walks an entry's candidates
// (best first; 2 * group_size of them, or (1 + #EOS ids) * group_size),
// files EOS candidates ranked among the first group_size as finished
// hypotheses, and keeps the first group_size non-EOS candidates as the next
// beams. A group is done when `is_done` says so (early_stopping True / False
// / "never"). finalize() adds the still-open beams of unfinished groups and
// writes HF's `sequences` and `sequences_scores`, the best of all groups.
//
// All storage is sized in the constructor: nothing is allocated per step.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/generation/options.hpp"

namespace blip::generation {

// The n-best list of finished hypotheses of one batch entry (HF BeamHypotheses). HF keeps a Python list where a
// new hypothesis is appended and, past num_beams, the worst (lowest score, earliest on ties) is deleted; the
// list order matters for ties in finalize, so `order_` keeps it. Token storage: num_beams + 1 slots of
// max_length ids (the extra slot receives a newcomer before the worst is dropped).
class BeamHypotheses {
 public:
  BeamHypotheses() = default;
  BeamHypotheses(std::int64_t num_beams, double length_penalty, EarlyStopping early_stopping,
                 std::int64_t max_length)
      : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping),
        max_length_(max_length),
        tokens_(static_cast<std::size_t>((num_beams + 1) * max_length)),
        lengths_(static_cast<std::size_t>(num_beams + 1)), scores_(static_cast<std::size_t>(num_beams + 1)) {
    order_.reserve(static_cast<std::size_t>(num_beams + 1));
    free_slots_.reserve(static_cast<std::size_t>(num_beams + 1));
    for (std::int64_t slot = num_beams; slot >= 0; --slot) free_slots_.push_back(slot);
  }

  std::int64_t size() const { return static_cast<std::int64_t>(order_.size()); }
  double worst_score() const { return worst_score_; }

  // HF BeamHypotheses.add(hyp, sum_logprobs, generated_len).
  void add(const std::int64_t* hypothesis, std::int64_t length, double sum_logprobs, std::int64_t generated_length) {
    check(length <= max_length_, "BeamHypotheses: hypothesis of ", length, " ids exceeds max_length ", max_length_);
    const double score = sum_logprobs / std::pow(static_cast<double>(generated_length), length_penalty_);
    if (size() < num_beams_ || score > worst_score_) {
      const std::int64_t slot = free_slots_.back();
      free_slots_.pop_back();
      std::copy(hypothesis, hypothesis + length, tokens_.begin() + slot * max_length_);
      lengths_[static_cast<std::size_t>(slot)] = length;
      scores_[static_cast<std::size_t>(slot)] = score;
      order_.push_back(slot);
      if (size() > num_beams_) {
        // HF: sorted((score, list index)) -> delete the first, worst_score = the second's score.
        std::size_t worst = 0, second = 1;
        auto before = [&](std::size_t a, std::size_t b) {
          return score_at(a) < score_at(b) || (score_at(a) == score_at(b) && a < b);
        };
        if (before(second, worst)) std::swap(worst, second);
        for (std::size_t i = 2; i < order_.size(); ++i) {
          if (before(i, worst)) {
            second = worst;
            worst = i;
          } else if (before(i, second)) {
            second = i;
          }
        }
        worst_score_ = score_at(second);
        free_slots_.push_back(order_[worst]);
        order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(worst));
      } else {
        worst_score_ = std::min(score, worst_score_);
      }
    }
  }

  // HF BeamHypotheses.is_done(best_sum_logprobs, cur_len, decoder_prompt_len): can a running beam still beat
  // the worst finished hypothesis?
  bool is_done(double best_sum_logprobs, std::int64_t current_length, std::int64_t prompt_length) const {
    if (size() < num_beams_) return false;
    if (early_stopping_ == EarlyStopping::True) return true;
    std::int64_t denominator_length = current_length - prompt_length;
    // "never" with a positive length penalty: the best attainable score uses the longest possible length.
    if (early_stopping_ == EarlyStopping::Never && length_penalty_ > 0.0) {
      check(max_length_ > prompt_length, "beam search: max_length is not larger than the prompt length");
      denominator_length = max_length_ - prompt_length;
    }
    const double highest_attainable =
        best_sum_logprobs / std::pow(static_cast<double>(denominator_length), length_penalty_);
    return worst_score_ >= highest_attainable;
  }

  // Hypothesis at list position `position` (HF list order).
  const std::int64_t* tokens_at(std::size_t position) const {
    return tokens_.data() + order_[position] * max_length_;
  }
  std::int64_t length_at(std::size_t position) const { return lengths_[static_cast<std::size_t>(order_[position])]; }
  double score_at(std::size_t position) const { return scores_[static_cast<std::size_t>(order_[position])]; }

 private:
  std::int64_t num_beams_ = 0;
  double length_penalty_ = 1.0;
  EarlyStopping early_stopping_ = EarlyStopping::False;
  std::int64_t max_length_ = 0;
  double worst_score_ = 1e9;  // HF's initial value
  std::vector<std::int64_t> tokens_, lengths_;
  std::vector<double> scores_;
  std::vector<std::int64_t> order_, free_slots_;
};

// One candidate continuation of an entry: `beam` (within the entry) followed by `token`, with the running
// sum of processed log-probs `score`.
struct BeamCandidate {
  float score;
  std::int64_t token;
  std::int64_t beam;
};

class BeamSearchScorer {
 public:
  BeamSearchScorer() = default;
  // max_length: total length incl. the prompt (for "never" and the output width). With num_beam_groups > 1
  // (HF group beam search) each entry's beams form num_beam_groups groups of num_beams / num_beam_groups
  // consecutive rows, each group with its own n-best list and done flag, as HF's
  // `_beam_hyps[entry * num_beam_groups + group]`.
  BeamSearchScorer(std::int64_t batch_size, std::int64_t num_beams, const GenerationOptions& options,
                   std::int64_t max_length)
      : batch_size_(batch_size), num_beams_(num_beams), num_groups_(options.num_beam_groups),
        group_size_(num_beams / std::max<std::int64_t>(options.num_beam_groups, 1)),
        num_beam_hyps_to_keep_(options.num_return_sequences), max_length_(max_length),
        done_(static_cast<std::size_t>(batch_size * std::max<std::int64_t>(options.num_beam_groups, 1)), 0) {
    check(num_beams > 1, "BeamSearchScorer: num_beams must be > 1, got ", num_beams);
    check(num_groups_ >= 1 && num_groups_ <= num_beams && num_beams % num_groups_ == 0,
          "BeamSearchScorer: num_beam_groups (", num_groups_, ") must divide num_beams (", num_beams, ")");
    hypotheses_.reserve(done_.size());
    for (std::size_t i = 0; i < done_.size(); ++i) {
      hypotheses_.emplace_back(group_size_, options.length_penalty, options.early_stopping, max_length);
    }
    const std::size_t rows = static_cast<std::size_t>(batch_size * num_beams);
    next_scores_.resize(rows);
    next_tokens_.resize(rows);
    next_rows_.resize(rows);
    positions_.reserve(static_cast<std::size_t>(num_beams + num_groups_));
  }

  bool is_done() const { return std::all_of(done_.begin(), done_.end(), [](char done) { return done != 0; }); }
  bool group_done(std::int64_t entry, std::int64_t group) const {
    return done_[static_cast<std::size_t>(entry * num_groups_ + group)] != 0;
  }

  // HF BeamSearchScorer.process(group_index=group) for every entry. candidates: [batch][candidates_per_entry],
  // best first, `beam` counted within the group. histories: [batch * num_beams, history_stride], each row
  // `history_length` ids long (the ids before this step's token). Afterwards next_scores/next_tokens/next_rows
  // describe the group's new beams: row r continues old row next_rows()[r] (same entry and group) with token
  // next_tokens()[r].
  void process(std::int64_t group, const BeamCandidate* candidates, std::int64_t candidates_per_entry,
               const std::int64_t* histories, std::int64_t history_stride, std::int64_t history_length,
               std::int64_t prompt_length, const std::vector<std::int64_t>& eos_token_ids, std::int64_t pad_token_id) {
    const std::int64_t current_length = history_length + 1;  // HF cur_len: length incl. the token being chosen
    for (std::int64_t entry = 0; entry < batch_size_; ++entry) {
      const std::int64_t first_row = entry * num_beams_ + group * group_size_;
      const std::size_t slot = static_cast<std::size_t>(entry * num_groups_ + group);
      if (done_[slot]) {
        // HF pads finished groups (score 0, pad token). It points them at global row 0; we keep each row on
        // itself so caches never cross entries (those rows' outputs are discarded either way).
        for (std::int64_t beam = 0; beam < group_size_; ++beam) {
          next_scores_[static_cast<std::size_t>(first_row + beam)] = 0.0f;
          next_tokens_[static_cast<std::size_t>(first_row + beam)] = pad_token_id;
          next_rows_[static_cast<std::size_t>(first_row + beam)] = first_row + beam;
        }
        continue;
      }
      const BeamCandidate* entry_candidates = candidates + entry * candidates_per_entry;
      std::int64_t filled = 0;
      for (std::int64_t rank = 0; rank < candidates_per_entry; ++rank) {
        const BeamCandidate& candidate = entry_candidates[rank];
        const std::int64_t source_row = first_row + candidate.beam;
        const bool is_eos = std::find(eos_token_ids.begin(), eos_token_ids.end(), candidate.token) !=
                            eos_token_ids.end();
        if (is_eos) {
          // An EOS ranked below the first group_size candidates is not a hypothesis.
          if (rank >= group_size_) continue;
          hypotheses_[slot].add(histories + source_row * history_stride, history_length,
                                static_cast<double>(candidate.score), current_length - prompt_length);
        } else {
          next_scores_[static_cast<std::size_t>(first_row + filled)] = candidate.score;
          next_tokens_[static_cast<std::size_t>(first_row + filled)] = candidate.token;
          next_rows_[static_cast<std::size_t>(first_row + filled)] = source_row;
          ++filled;
        }
        if (filled == group_size_) break;
      }
      check(filled == group_size_, "beam search: fewer than ", group_size_, " non-EOS candidates for entry ", entry);
      // HF: next_scores[batch_idx].max() -- the candidates are sorted, the first is the best.
      done_[slot] = hypotheses_[slot].is_done(static_cast<double>(entry_candidates[0].score), current_length,
                                              prompt_length);
    }
  }

  const std::vector<float>& next_scores() const { return next_scores_; }
  const std::vector<std::int64_t>& next_tokens() const { return next_tokens_; }
  const std::vector<std::int64_t>& next_rows() const { return next_rows_; }

  // HF BeamSearchScorer.finalize. histories / beam_scores: the final beams ([batch * num_beams] rows of
  // `history_length` ids, running sums). Returns sequences [batch * num_return_sequences, T] with
  // T = min(longest kept hypothesis + 1, max_length); a hypothesis shorter than T is followed by the FIRST
  // EOS id (whichever EOS ended it) and then pad. sequence_scores gets each row's normalised score.
  // With groups, an entry's results are the best of all its groups' hypotheses together.
  Tensor<std::int64_t> finalize(const std::int64_t* histories, std::int64_t history_stride,
                                std::int64_t history_length, const float* beam_scores, std::int64_t prompt_length,
                                const std::vector<std::int64_t>& eos_token_ids, std::int64_t pad_token_id,
                                std::vector<float>& sequence_scores) {
    for (std::size_t slot = 0; slot < hypotheses_.size(); ++slot) {
      if (done_[slot]) continue;
      for (std::int64_t beam = 0; beam < group_size_; ++beam) {
        // Rows are entry-major, then group, then beam: slot * group_size + beam.
        const std::int64_t row = static_cast<std::int64_t>(slot) * group_size_ + beam;
        hypotheses_[slot].add(histories + row * history_stride, history_length, static_cast<double>(beam_scores[row]),
                              history_length - prompt_length);
      }
    }
    // HF: sorted(the entry's hypotheses, group after group, key=score) (stable), then pop() from the end: the
    // best first, and among equal scores the one later in the list first.
    const std::int64_t rows = batch_size_ * num_beam_hyps_to_keep_;
    std::vector<Chosen> chosen(static_cast<std::size_t>(rows));
    std::int64_t longest = 0;
    for (std::int64_t entry = 0; entry < batch_size_; ++entry) {
      positions_.clear();
      for (std::int64_t group = 0; group < num_groups_; ++group) {
        const BeamHypotheses& hypotheses = hypotheses_[static_cast<std::size_t>(entry * num_groups_ + group)];
        for (std::size_t position = 0; position < static_cast<std::size_t>(hypotheses.size()); ++position) {
          positions_.push_back({&hypotheses, position});
        }
      }
      check(static_cast<std::int64_t>(positions_.size()) >= num_beam_hyps_to_keep_, "beam search: entry ", entry,
            " has ", positions_.size(), " hypotheses, fewer than num_return_sequences ", num_beam_hyps_to_keep_);
      std::stable_sort(positions_.begin(), positions_.end(),
                       [](const Chosen& a, const Chosen& b) { return a.score() < b.score(); });
      for (std::int64_t j = 0; j < num_beam_hyps_to_keep_; ++j) {
        const Chosen& best = positions_[positions_.size() - 1 - static_cast<std::size_t>(j)];
        chosen[static_cast<std::size_t>(entry * num_beam_hyps_to_keep_ + j)] = best;
        longest = std::max(longest, best.length());
      }
    }
    const std::int64_t width = std::min(longest + 1, max_length_);
    // HF fills with pad only when the lengths differ; when they are equal every row is fully written anyway.
    Tensor<std::int64_t> sequences(Shape{rows, width});
    sequences.fill(pad_token_id);
    sequence_scores.assign(static_cast<std::size_t>(rows), 0.0f);
    for (std::int64_t row = 0; row < rows; ++row) {
      const Chosen& best = chosen[static_cast<std::size_t>(row)];
      const std::int64_t length = best.length();
      std::copy_n(best.hypotheses->tokens_at(best.position), length, sequences.data() + row * width);
      if (length < width) {
        check(!eos_token_ids.empty(), "beam search: a hypothesis ended early without an EOS id");
        sequences.data()[row * width + length] = eos_token_ids.front();
      }
      sequence_scores[static_cast<std::size_t>(row)] = static_cast<float>(best.score());
    }
    return sequences;
  }

 private:
  // One finished hypothesis: its n-best list and its position there.
  struct Chosen {
    const BeamHypotheses* hypotheses = nullptr;
    std::size_t position = 0;
    double score() const { return hypotheses->score_at(position); }
    std::int64_t length() const { return hypotheses->length_at(position); }
  };

  std::int64_t batch_size_ = 0, num_beams_ = 0, num_groups_ = 1, group_size_ = 0, num_beam_hyps_to_keep_ = 1,
               max_length_ = 0;
  std::vector<char> done_;                  // [batch * num_groups]
  std::vector<BeamHypotheses> hypotheses_;  // [batch * num_groups]
  std::vector<float> next_scores_;
  std::vector<std::int64_t> next_tokens_, next_rows_;
  std::vector<Chosen> positions_;
};

}  // namespace blip::generation
