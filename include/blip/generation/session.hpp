// blip/generation/session.hpp: runs generate() on a model's decoding session.
//
// Models (one layer below) cannot derive from generation::Decoder without
// including this layer, so they expose a plain session type instead, with
//   vocab_size(), start(rows_per_entry, max_new_tokens), step(tokens),
//   reorder(source_rows), prompt_ids() [B, P], end_token_ids(), pad_token_id(),
// and, for what HF's generate() does around the search loop:
//   output_prefix()         ids put in front of every returned row (BLIP-2 +
//                           OPT: its BOS, as Blip2ForConditionalGeneration.generate does)
//   inputs_embeds_length()  a decoder-only LM driven by inputs_embeds of this
//                           length (0: none); generate() then subtracts it from
//                           max_length / min_length when max_new_tokens /
//                           min_new_tokens are unset (`_prepare_generated_length`)
//   extra_max_length(), extra_min_length()   added to max_length / min_length
//                           before that (BLIP-2's legacy path adds Q - 1 and Q)
// SessionDecoder adapts any such type to the Decoder interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

#include "blip/generation/decoder.hpp"
#include "blip/generation/generate.hpp"
#include "blip/generation/options.hpp"

namespace blip::generation {

template <class Session>
class SessionDecoder final : public Decoder {
 public:
  explicit SessionDecoder(Session& session) : session_(session) {}
  std::int64_t vocab_size() const override { return session_.vocab_size(); }
  const float* start(std::int64_t rows_per_entry, std::int64_t max_new_tokens) override {
    return session_.start(rows_per_entry, max_new_tokens);
  }
  const float* step(const std::int64_t* tokens) override { return session_.step(tokens); }
  void reorder(const std::int64_t* source_rows) override { session_.reorder(source_rows); }

 private:
  Session& session_;
};

// HF generate() on the session: sequences start with the session's prompt ids;
// the session's end token finishes a row, its pad token fills finished rows.
template <class Session>
GenerationOutput generate_session(Session& session, GenerationOptions options) {
  if (session.inputs_embeds_length() > 0) {
    options.max_length += session.extra_max_length();
    options.min_length += session.extra_min_length();
    options = adjust_lengths_for_inputs_embeds(options, session.inputs_embeds_length());
  }
  const auto prompt = session.prompt_ids();
  const std::int64_t batch = prompt.dim(0), length = prompt.dim(1);
  std::vector<std::vector<std::int64_t>> prompt_rows(static_cast<std::size_t>(batch));
  for (std::int64_t row = 0; row < batch; ++row) {
    prompt_rows[static_cast<std::size_t>(row)].assign(prompt.data() + row * length, prompt.data() + (row + 1) * length);
  }
  SpecialTokens special;
  special.eos_token_ids = session.end_token_ids();
  special.pad_token_id = session.pad_token_id();
  SessionDecoder<Session> decoder(session);
  GenerationOutput output = generate(decoder, prompt_rows, options, special);
  const std::vector<std::int64_t> prefix = session.output_prefix();
  if (!prefix.empty()) {
    const std::int64_t rows = output.sequences.dim(0), length = output.sequences.dim(1);
    const std::int64_t prefix_length = static_cast<std::int64_t>(prefix.size());
    Tensor<std::int64_t> sequences(Shape{rows, prefix_length + length});
    for (std::int64_t row = 0; row < rows; ++row) {
      std::copy(prefix.begin(), prefix.end(), sequences.data() + row * (prefix_length + length));
      std::copy_n(output.sequences.data() + row * length, length,
                  sequences.data() + row * (prefix_length + length) + prefix_length);
    }
    output.sequences = std::move(sequences);
  }
  return output;
}

// A model whose language model is chosen at load time (BLIP-2: OPT or T5)
// returns a variant of sessions; generate on whichever it holds.
template <class... Sessions>
GenerationOutput generate_session(std::variant<Sessions...>& session, GenerationOptions options) {
  return std::visit([&](auto& alternative) { return generate_session(alternative, options); }, session);
}

}  // namespace blip::generation
