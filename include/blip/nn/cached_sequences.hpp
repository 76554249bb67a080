// blip/nn/cached_sequences.hpp: the part of a decoder's per-request state that
// every stack here keeps the same way (BERT text model, OPT, T5 decoder): the
// self-attention K/V caches, HF's 0/1 attention_mask over everything cached so
// far, and the additive mask the attention kernel reads, rebuilt from it on
// each call (so a beam reorder moves only the 0/1 mask and the caches).
// LanguageModelSession (models/) prefills, copies and reorders these fields.
#pragma once

#include <cstdint>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/kv_cache.hpp"

namespace blip::nn {

struct CachedSequences {
  std::int64_t rows = 0;            // sequences in the request (batch × beams)
  std::int64_t max_new_tokens = 0;  // most tokens one forward call appends
  std::int64_t capacity = 0;        // most tokens a sequence holds
  Tensor<float> additive_mask;      // [rows, capacity]  0 for a kept key, the model's "masked" value otherwise
  std::vector<std::int64_t> attention_mask;   // [rows, capacity] 1 = token, 0 = padding (HF attention_mask)
  std::vector<kernels::KVCache> self_caches;  // one per layer, [rows, heads, capacity, head_dim]
  std::int64_t length = 0;                    // tokens in the caches

  void allocate_sequences(std::int64_t row_count, std::int64_t tokens_per_call, std::int64_t total_capacity,
                          std::int64_t layers, std::int64_t heads, std::int64_t head_dim) {
    rows = row_count;
    max_new_tokens = tokens_per_call;
    capacity = total_capacity;
    additive_mask = Tensor<float>(Shape{rows, capacity});
    attention_mask.assign(static_cast<std::size_t>(rows * capacity), 0);
    self_caches.assign(static_cast<std::size_t>(layers), kernels::KVCache{});
    for (kernels::KVCache& cache : self_caches) cache.allocate(rows, heads, capacity, head_dim);
    length = 0;
  }

  // Checks that `new_tokens` more fit, records their 0/1 mask [rows,
  // new_tokens] (null: all ones) after the cached tokens, and rebuilds the
  // additive mask over all past + new keys with `masked_value` for padding
  // (HF: -10000 for BERT, finfo(float32).min for OPT and T5). `what` names the
  // model in errors.
  void append_mask(const std::int64_t* mask, std::int64_t new_tokens, float masked_value, const char* what) {
    check(new_tokens >= 1 && new_tokens <= max_new_tokens, what, ": ", new_tokens,
          " tokens in one call, the request was sized for at most ", max_new_tokens);
    const std::int64_t total = length + new_tokens;
    check(total <= capacity, what, ": sequence length ", total, " exceeds the request's capacity ", capacity);
    for (std::int64_t row = 0; row < rows; ++row) {
      std::int64_t* row_mask = attention_mask.data() + row * capacity;
      for (std::int64_t t = 0; t < new_tokens; ++t) row_mask[length + t] = mask ? mask[row * new_tokens + t] : 1;
      float* additive = additive_mask.data() + row * capacity;
      for (std::int64_t t = 0; t < total; ++t) additive[t] = row_mask[t] != 0 ? 0.0f : masked_value;
    }
  }
};

}  // namespace blip::nn
