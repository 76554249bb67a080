// blip/kernels/positions.hpp: position ids and position biases that HF
// computes with small, surprising formulas; mirrored here exactly.
//
// OPT (OPTLearnedPositionalEmbedding.forward):
//     positions = (cumsum(attention_mask, dim=1) * attention_mask) - 1
//     positions = positions[:, past_key_values_length:]
//     embedding row = positions + 2          (OPT's historical offset of 2)
//   so left padding is skipped (the first real token gets row 2) and every
//   padded position gets row 1 (-1 + 2), wherever it is.
//
// T5 (T5Attention._relative_position_bucket and compute_bias): a relative
//   distance memory_position - query_position is put into one of num_buckets
//   buckets: exact buckets for small distances, logarithmically wider ones up to
//   max_distance. The logarithm is taken in float32 and truncated toward zero
//   exactly as the torch code does (tests check it against HF's own function).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "blip/core/error.hpp"

namespace blip::kernels {

// mask [rows, length] (1 = token, 0 = padding; length = past + new tokens, the
// full attention mask HF passes), past_length >= 0 tokens already in the cache.
// Writes positions [rows, length - past_length]: the row of
// embed_positions.weight to add for each new token (offset 2 included).
inline void opt_positions_from_mask(const std::int64_t* mask, std::int64_t rows, std::int64_t length,
                                    std::int64_t past_length, std::int64_t* positions) {
  check(rows >= 0 && length >= 0, "opt_positions_from_mask: negative size (rows ", rows, ", length ", length, ")");
  check(0 <= past_length && past_length <= length, "opt_positions_from_mask: past_length ", past_length,
        " must be in [0, ", length, "] (the mask length)");
  constexpr std::int64_t kOptPositionOffset = 2;
  const std::int64_t new_tokens = length - past_length;
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t* mask_row = mask + row * length;
    std::int64_t cumulative = 0;
    for (std::int64_t t = 0; t < length; ++t) {
      cumulative += mask_row[t];
      if (t >= past_length) positions[row * new_tokens + (t - past_length)] = cumulative * mask_row[t] - 1 + kOptPositionOffset;
    }
  }
}

// The bucket of relative_position = memory_position - query_position, exactly
// as HF T5Attention._relative_position_bucket. bidirectional: encoder (true)
// or decoder self-attention (false, where only non-positive distances exist).
inline std::int64_t t5_relative_position_bucket(std::int64_t relative_position, bool bidirectional,
                                                std::int64_t num_buckets, std::int64_t max_distance) {
  std::int64_t bucket = 0;
  if (bidirectional) {
    num_buckets /= 2;  // python //, num_buckets > 0
    if (relative_position > 0) bucket += num_buckets;
    relative_position = std::llabs(relative_position);
  } else {
    relative_position = -std::min<std::int64_t>(relative_position, 0);
  }
  // Now relative_position >= 0. Half of the buckets are exact distances.
  const std::int64_t max_exact = num_buckets / 2;
  if (relative_position < max_exact) return bucket + relative_position;
  // The rest are logarithmic up to max_distance. HF: log(float32(rp) / max_exact)
  // in float32, divided by the python double log(max_distance / max_exact)
  // (which torch rounds to float32), times (num_buckets - max_exact), then
  // .to(torch.long), which truncates toward zero.
  const float ratio = static_cast<float>(relative_position) / static_cast<float>(max_exact);
  const float log_ratio = std::log(ratio);
  const float log_range =
      static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float scaled = log_ratio / log_range * static_cast<float>(num_buckets - max_exact);
  const std::int64_t if_large = std::min<std::int64_t>(max_exact + static_cast<std::int64_t>(scaled), num_buckets - 1);
  return bucket + if_large;
}

// T5 position bias (T5Attention.compute_bias, then sliced to the last
// query_length query positions as HF does when decoding with a cache):
//   out[h, i, j] = bias_table[bucket(j - (query_offset + i)), h]
// bias_table = relative_attention_bias.weight [num_buckets, heads];
// out [heads, query_length, key_length]. query_offset = tokens already in the
// cache (past length) when decoding one step at a time, else 0.
inline void t5_position_bias(const float* bias_table, std::int64_t heads, std::int64_t query_length,
                             std::int64_t key_length, bool bidirectional, std::int64_t num_buckets,
                             std::int64_t max_distance, std::int64_t query_offset, float* out) {
  check(heads > 0 && query_length >= 0 && key_length >= 0 && query_offset >= 0,
        "t5_position_bias: invalid sizes (heads ", heads, ", query_length ", query_length, ", key_length ", key_length,
        ", query_offset ", query_offset, ")");
  check(num_buckets >= 2 && max_distance > num_buckets / (bidirectional ? 4 : 2), "t5_position_bias: num_buckets ",
        num_buckets, " / max_distance ", max_distance, " do not give a logarithmic range");
  // One bucket per distinct relative position; the distances span
  // [-(query_offset + query_length - 1), key_length - 1].
  for (std::int64_t i = 0; i < query_length; ++i) {
    const std::int64_t query_position = query_offset + i;
    for (std::int64_t j = 0; j < key_length; ++j) {
      const std::int64_t bucket = t5_relative_position_bucket(j - query_position, bidirectional, num_buckets, max_distance);
      const float* bias_row = bias_table + bucket * heads;
      for (std::int64_t h = 0; h < heads; ++h) out[(h * query_length + i) * key_length + j] = bias_row[h];
    }
  }
}

}  // namespace blip::kernels
