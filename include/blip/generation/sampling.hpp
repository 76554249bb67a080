// blip/generation/sampling.hpp: a small seeded random generator and categorical draws.
//
// HF samples with torch.multinomial on torch's own generator (a Mersenne
// twister plus torch-specific float conversions), which cannot be reproduced
// portably. We use xoshiro256** seeded through splitmix64 (Blackman & Vigna)
// and our own 53-bit uniform conversion, written out here, so a seed gives
// the same tokens on every compiler and standard library (std::
// distributions differ between implementations). Sampled sequences are
// therefore deterministic per seed, but not torch's sequences; the
// distributions they are drawn from (after the warpers) are HF's exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "blip/core/error.hpp"
#include "blip/generation/softmax.hpp"

namespace blip::generation {

// xoshiro256** 1.0: 256 bits of state, period 2^256 - 1, passes BigCrush.
class Random {
 public:
  explicit Random(std::uint64_t seed = 0) { reseed(seed); }

  // The four state words come from splitmix64 of the seed (never all zero).
  void reseed(std::uint64_t seed) {
    std::uint64_t mix = seed;
    for (std::uint64_t& word : state_) word = splitmix64(mix);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t shifted = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = rotate_left(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1): the top 53 bits as a double's mantissa.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotate_left(std::uint64_t value, int bits) { return (value << bits) | (value >> (64 - bits)); }
  static std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
};

// Unnormalised softmax weights exp(score - max) (float exp as in softmax(), widened to double); -inf scores
// weigh exactly 0, as do scores so far below the maximum that exp underflows (HF's fresh beams at -1e9).
// Returns their sum.
inline double softmax_weights(const float* scores, std::int64_t count, double* weights) {
  const float maximum = detail::row_maximum(scores, count);
  check(std::isfinite(maximum), "sampling: every score is -inf (or the maximum is not finite): nothing to sample");
  constexpr std::int64_t kBlock = 512;
  alignas(64) float block[kBlock];
  for (std::int64_t start = 0; start < count; start += kBlock) {
    const std::int64_t size = std::min(kBlock, count - start);
    detail::exp_shifted(scores + start, block, size, maximum);
    std::copy(block, block + size, weights + start);
  }
  const double total = detail::sum_in_double(weights, count);
  check(!std::isnan(total), "sampling: a score is NaN (torch.multinomial refuses such probabilities too)");
  return total;
}

// One index drawn with probability weights[i] / total (inverse CDF). Zero weights are never drawn.
inline std::int64_t draw_weighted(const double* weights, std::int64_t count, double total, Random& random) {
  const double threshold = random.uniform() * total;
  double cumulative = 0.0;
  std::int64_t last_positive = -1;
  for (std::int64_t i = 0; i < count; ++i) {
    if (weights[i] <= 0) continue;
    cumulative += weights[i];
    last_positive = i;
    if (cumulative > threshold) return i;
  }
  // Rounding left the threshold at the very end of the CDF.
  check(last_positive >= 0, "sampling: no token has positive probability");
  return last_positive;
}

// HF _sample: torch.multinomial(softmax(scores), 1). `weights` is a workspace of `count` doubles.
inline std::int64_t sample_token(const float* scores, std::int64_t count, Random& random, double* weights) {
  const double total = softmax_weights(scores, count, weights);
  return draw_weighted(weights, count, total, random);
}

// HF beam sample: torch.multinomial(softmax(scores), draws, replacement=False), drawn one at a time from what
// is left. When fewer than `draws` entries have positive probability, torch returns zero-probability entries
// for the rest (in an unspecified order); we take the remaining entries with the highest scores, lowest index
// first on ties, so the result is deterministic. `weights` is a workspace of `count` doubles.
inline void sample_without_replacement(const float* scores, std::int64_t count, std::int64_t draws, Random& random,
                                       double* weights, std::int64_t* chosen) {
  check(draws <= count, "sampling: cannot draw ", draws, " distinct entries from ", count);
  double total = softmax_weights(scores, count, weights);
  std::int64_t drawn = 0;
  for (; drawn < draws && total > 0; ++drawn) {
    const std::int64_t index = draw_weighted(weights, count, total, random);
    chosen[drawn] = index;
    // Recompute the total rather than subtract: subtraction would let rounding leave a positive remainder.
    weights[index] = 0.0;
    total = detail::sum_in_double(weights, count);
  }
  for (; drawn < draws; ++drawn) {
    std::int64_t best = -1;
    for (std::int64_t i = 0; i < count; ++i) {
      if (std::find(chosen, chosen + drawn, i) != chosen + drawn) continue;
      if (best < 0 || scores[i] > scores[best]) best = i;
    }
    chosen[drawn] = best;
  }
}

}  // namespace blip::generation
