// blip/models/language_model_session.hpp: one generation request on a
// language model, in the shape the search loop of generation/ drives
// (start, step, reorder), written once for BLIP's BERT decoder, OPT and the T5
// decoder.
//
//   start:   the prompt runs ONCE per batch entry (ids, or BLIP-2 + OPT's
//            inputs_embeds); its self-attention keys / values and its 0/1 mask
//            are then copied to each of the entry's rows (beams or samples),
//            as HF's expansion of the inputs by num_beams would give, and the
//            last position's logits are every row's first logits
//            (HF: logits[:, -1, :], the LAST column even when it is padding).
//            These first logits must be finite: NaN or Inf there means NaN or
//            Inf weights (or an overflow), and any text generated from them
//            would be garbage (greedy search picks no token and the caption
//            comes out empty), so start() fails with an error saying so.
//   step:    one token per row, appended to the caches; last-position logits.
//   reorder: beam search moved rows: caches and masks follow (HF _reorder_cache).
//
// Cross-attention (BLIP's image tokens, T5's encoder output) is computed once
// per entry by the model and read by row r from entry r / rows_per_entry.
//
// A LanguageModel adapter says how to run its stack:
//   using State = ...;            // self_caches (std::vector<KVCache>),
//                                 // attention_mask (std::vector<int64> [rows, capacity]), capacity
//   std::int64_t vocab_size() const;
//   std::int64_t output_width() const;             // width of the hidden state fed to logits()
//   void allocate(State&, rows, tokens_per_call, capacity) const;
//   // Appends `tokens` tokens per row: ids [rows, tokens] or embeddings
//   // [rows, tokens, W] (exactly one is set), mask [rows, tokens] (null: ones);
//   // rows_per_entry rows share one cross-attention source. Returns the
//   // stack's output [rows, tokens, output_width].
//   const float* forward(State&, const DecoderInput&, std::int64_t tokens, std::int64_t rows_per_entry) const;
//   // logits [rows, V] from hidden [rows, output_width]; scratch [rows, output_width].
//   void logits(const float* hidden, std::int64_t rows, float* scratch, float* logits) const;
//
// What HF's generate() does around its search loop (the ids it starts from,
// what it returns in front, the inputs_embeds length bookkeeping) is data of
// the request: SearchConventions, read by generation::generate_session.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/kv_cache.hpp"

namespace blip {

// What one forward call appends.
struct DecoderInput {
  const std::int64_t* ids = nullptr;   // [rows, tokens], or
  const float* embeddings = nullptr;   // [rows, tokens, W]
  const std::int64_t* mask = nullptr;  // [rows, tokens] 1 = token, 0 = padding; null: all ones
};

// The prompt the language model reads, per batch entry.
struct DecoderPrompt {
  Tensor<const std::int64_t> ids;   // [B, P] token ids, or empty when embeddings are given
  Tensor<const float> embeddings;   // [B, P, W] (BLIP-2 + OPT: inputs_embeds)
  Tensor<const std::int64_t> mask;  // [B, P] or empty (all ones)

  std::int64_t entries() const { return embeddings.empty() ? ids.dim(0) : embeddings.dim(0); }
  std::int64_t length() const { return embeddings.empty() ? ids.dim(1) : embeddings.dim(1); }
};

// How HF's generate() frames this request's search (see generation/session.hpp).
struct SearchConventions {
  // What HF's generate holds in input_ids at the start, per entry [B, P']: it
  // heads every returned row and counts for the repetition penalty. BLIP: the
  // decoder prompt; T5: [decoder_start]; OPT driven by inputs_embeds: [B, 0].
  Tensor<const std::int64_t> start_ids;
  std::vector<std::int64_t> end_token_ids;
  std::int64_t pad_token_id = 0;
  // Ids put in front of every returned row after the search (BLIP-2 + OPT: BOS).
  std::vector<std::int64_t> output_prefix;
  // A decoder-only LM driven by inputs_embeds of this length (0: none), and
  // what BLIP-2's legacy path adds to max_length / min_length before that.
  std::int64_t inputs_embeds_length = 0, extra_max_length = 0, extra_min_length = 0;
};

template <class LanguageModel>
class LanguageModelSession {
 public:
  using State = typename LanguageModel::State;

  LanguageModelSession(LanguageModel model, DecoderPrompt prompt, SearchConventions conventions)
      : model_(std::move(model)), prompt_(std::move(prompt)), conventions_(std::move(conventions)) {
    const bool has_ids = !prompt_.ids.empty(), has_embeddings = !prompt_.embeddings.empty();
    check(has_ids != has_embeddings, "decoder prompt: give either ids or embeddings");
    check(has_ids ? prompt_.ids.rank() == 2 : prompt_.embeddings.rank() == 3,
          "decoder prompt: ids must be [batch, tokens] / embeddings [batch, tokens, width], got ",
          has_ids ? prompt_.ids.shape() : prompt_.embeddings.shape());
    check(prompt_.length() >= 1, "decoder prompt: at least one token is needed");
    check(prompt_.mask.empty() || prompt_.mask.shape() == Shape{prompt_.entries(), prompt_.length()},
          "decoder prompt: mask has shape ", prompt_.mask.shape(), ", expected [", prompt_.entries(), ", ",
          prompt_.length(), "]");
    check(conventions_.start_ids.rank() == 2 && conventions_.start_ids.dim(0) == prompt_.entries(),
          "decoder session: start ids must be [", prompt_.entries(), ", tokens], got ", conventions_.start_ids.shape());
  }

  // ---- what generation::generate_session reads ----
  std::int64_t vocab_size() const { return model_.vocab_size(); }
  Tensor<const std::int64_t> prompt_ids() const { return conventions_.start_ids; }
  const std::vector<std::int64_t>& end_token_ids() const { return conventions_.end_token_ids; }
  std::int64_t pad_token_id() const { return conventions_.pad_token_id; }
  const std::vector<std::int64_t>& output_prefix() const { return conventions_.output_prefix; }
  std::int64_t inputs_embeds_length() const { return conventions_.inputs_embeds_length; }
  std::int64_t extra_max_length() const { return conventions_.extra_max_length; }
  std::int64_t extra_min_length() const { return conventions_.extra_min_length; }

  const LanguageModel& language_model() const { return model_; }

  // Runs the prompt for every entry and sizes the request for batch ×
  // rows_per_entry rows; returns next-token logits [rows, V].
  const float* start(std::int64_t rows_per_entry, std::int64_t max_new_tokens) {
    check(rows_per_entry >= 1 && max_new_tokens >= 0, "decoder session: invalid start (", rows_per_entry,
          " rows per entry, ", max_new_tokens, " new tokens)");
    const std::int64_t batch = prompt_.entries(), length = prompt_.length();
    const std::int64_t width = model_.output_width(), vocab = model_.vocab_size();
    rows_per_entry_ = rows_per_entry;
    rows_ = batch * rows_per_entry;

    // The prompt, once per entry.
    State prompt_state;
    model_.allocate(prompt_state, batch, length, length);
    DecoderInput input;
    input.ids = prompt_.ids.empty() ? nullptr : prompt_.ids.data();
    input.embeddings = prompt_.embeddings.empty() ? nullptr : prompt_.embeddings.data();
    input.mask = prompt_.mask.empty() ? nullptr : prompt_.mask.data();
    const float* prompt_output = model_.forward(prompt_state, input, length, 1);
    Tensor<float> last(Shape{batch, width}), scratch(Shape{std::max(batch, rows_), width});
    for (std::int64_t entry = 0; entry < batch; ++entry)
      std::memcpy(last.data() + entry * width, prompt_output + (entry * length + length - 1) * width,
                  sizeof(float) * static_cast<std::size_t>(width));
    Tensor<float> entry_logits(Shape{batch, vocab});
    model_.logits(last.data(), batch, scratch.data(), entry_logits.data());
    check_finite_logits(entry_logits);

    // Every row of an entry continues from it.
    model_.allocate(state_, rows_, 1, length + max_new_tokens);
    std::vector<std::int64_t> source_rows(static_cast<std::size_t>(rows_));
    for (std::int64_t row = 0; row < rows_; ++row) source_rows[static_cast<std::size_t>(row)] = row / rows_per_entry;
    for (std::size_t layer = 0; layer < state_.self_caches.size(); ++layer)
      state_.self_caches[layer].assign_rows(prompt_state.self_caches[layer], source_rows.data());
    for (std::int64_t row = 0; row < rows_; ++row)
      std::copy_n(prompt_state.attention_mask.begin() + (row / rows_per_entry) * prompt_state.capacity, length,
                  state_.attention_mask.begin() + row * state_.capacity);
    state_.length = length;
    logits_ = Tensor<float>(Shape{rows_, vocab});
    for (std::int64_t row = 0; row < rows_; ++row)
      std::memcpy(logits_.data() + row * vocab, entry_logits.data() + (row / rows_per_entry) * vocab,
                  sizeof(float) * static_cast<std::size_t>(vocab));
    step_scratch_ = Tensor<float>(Shape{rows_, width});
    mask_scratch_.assign(state_.attention_mask.size(), 0);
    return logits_.data();
  }

  // Appends one token per row; returns next-token logits [rows, V].
  const float* step(const std::int64_t* tokens) {
    DecoderInput input;
    input.ids = tokens;
    const float* output = model_.forward(state_, input, 1, rows_per_entry_);
    model_.logits(output, rows_, step_scratch_.data(), logits_.data());
    return logits_.data();
  }

  // Beam search: row r continues old row source_rows[r].
  void reorder(const std::int64_t* source_rows) {
    for (kernels::KVCache& cache : state_.self_caches) cache.reorder(source_rows);
    // The 0/1 attention mask travels with its row too.
    const std::int64_t capacity = state_.capacity;
    for (std::int64_t row = 0; row < rows_; ++row)
      std::copy_n(state_.attention_mask.begin() + source_rows[row] * capacity, capacity,
                  mask_scratch_.begin() + row * capacity);
    state_.attention_mask.swap(mask_scratch_);
  }

 private:
  // NaN / Inf in the first logits: say so rather than generate garbage.
  static void check_finite_logits(const Tensor<float>& logits) {
    const std::int64_t vocab = logits.dim(1);
    for (std::int64_t i = 0; i < logits.numel(); ++i) {
      const float value = logits.data()[i];
      if (std::isfinite(value)) continue;
      fail("the language model's first logits hold ", value, " (batch entry ", i / vocab, ", token ", i % vocab,
           "): the checkpoint's weights contain NaN or Inf values, or a layer overflowed; no text can be "
           "generated from them");
    }
  }

  LanguageModel model_;
  DecoderPrompt prompt_;
  SearchConventions conventions_;
  std::int64_t rows_per_entry_ = 1, rows_ = 0;
  State state_;
  Tensor<float> logits_, step_scratch_;
  std::vector<std::int64_t> mask_scratch_;
};

}  // namespace blip
