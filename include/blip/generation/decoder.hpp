// blip/generation/decoder.hpp: a language-model decoder as the search loop sees it.
//
// The loop (generate.hpp) never sees weights or activations: it asks a Decoder
// for next-token logits, appends the tokens it chose, and (beam search) tells
// it which old row each row now continues. The model owns every piece of
// state: self-attention KV caches, and the cross-attention K/V computed once
// per image and shared by the rows (beams / samples) of that image.
//
// Rows: a request has batch_size * rows_per_entry rows; row r belongs to batch
// entry r / rows_per_entry, and all rows of an entry start identical (HF's
// `_expand_inputs_for_generation`, i.e. repeat_interleave). The batch size and
// the prompt are the model's business (given when the request was built); the
// loop learns the batch size from the prompt_ids it is handed.
//
// Call sequence, one decoder call per generated token as HF's forward calls:
//   start(rows_per_entry, max_new_tokens)        -> logits for new token 1
//   [reorder(source_rows)]  step(tokens)         -> logits for new token 2, ...
// step() is called only when another token will be generated.
#pragma once

#include <cstdint>

namespace blip::generation {

class Decoder {
 public:
  virtual ~Decoder() = default;

  // Width of the logits rows (the LM head's output size; may exceed the tokenizer's vocabulary).
  virtual std::int64_t vocab_size() const = 0;

  // Starts a request of batch_size * rows_per_entry rows, reserving room for max_new_tokens more tokens; runs
  // the prompt and returns the next-token logits [rows, vocab] (row-major; valid until the next call).
  virtual const float* start(std::int64_t rows_per_entry, std::int64_t max_new_tokens) = 0;

  // Appends tokens[r] to row r and returns the next-token logits [rows, vocab]. Finished rows receive the pad
  // id (as in HF, which keeps feeding them); their logits are ignored.
  virtual const float* step(const std::int64_t* tokens) = 0;

  // Beam search, before step(): afterwards row r continues what old row source_rows[r] was (gather the caches
  // by row). source_rows[r] always lies in the same batch entry as r, so per-image state never moves.
  virtual void reorder(const std::int64_t* source_rows) = 0;
};

}  // namespace blip::generation
