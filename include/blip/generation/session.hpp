// blip/generation/session.hpp: runs generate() on a model's decoding session.
//
// Models (one layer below) cannot derive from generation::Decoder without
// including this layer, so they expose a plain session type instead, with
//   vocab_size(), start(rows_per_entry, max_new_tokens), step(tokens),
//   reorder(source_rows), prompt_ids() [B, P], end_token_id(), pad_token_id().
// SessionDecoder adapts any such type to the Decoder interface.
#pragma once

#include <cstdint>
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
GenerationOutput generate_session(Session& session, const GenerationOptions& options) {
  const auto prompt = session.prompt_ids();
  const std::int64_t batch = prompt.dim(0), length = prompt.dim(1);
  std::vector<std::vector<std::int64_t>> prompt_rows(static_cast<std::size_t>(batch));
  for (std::int64_t row = 0; row < batch; ++row) {
    prompt_rows[static_cast<std::size_t>(row)].assign(prompt.data() + row * length, prompt.data() + (row + 1) * length);
  }
  SpecialTokens special;
  special.eos_token_ids = {session.end_token_id()};
  special.pad_token_id = session.pad_token_id();
  SessionDecoder<Session> decoder(session);
  return generate(decoder, prompt_rows, options, special);
}

}  // namespace blip::generation
