// blip/kernels/feed_forward.hpp: the position-wise MLPs of the transformer
// blocks, built from linear.hpp and activations.hpp.
//
//   feed_forward:            y = fc2(act(fc1(x)))
//     ViT (BLIP vision mlp.fc1/fc2, gelu), BERT / Q-Former (intermediate.dense,
//     output.dense, gelu; the residual and LayerNorm are the caller's), OPT
//     (fc1/fc2, relu).
//   gated_feed_forward: y = wo(act(wi_0·x) * (wi_1·x))
//     T5 v1.1 / Flan-T5 T5DenseGatedActDense (no biases; act = dense_act_fn).
//
// The caller provides the intermediate buffers ([rows, intermediate] floats,
// allocated once per request with the model's State), so a call allocates
// nothing. x and y are contiguous [rows, features]; y may alias x (x is fully
// consumed by the first projection before y is written).
#pragma once

#include <cstdint>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/activations.hpp"
#include "blip/kernels/linear.hpp"

namespace blip::kernels {

// y[rows, fc2.out] = fc2(act(fc1(x[rows, fc1.in]))); hidden: [rows, fc1.out] scratch.
inline void feed_forward(const float* x, std::int64_t rows, const LinearWeights& fc1, Activation activation,
                         const LinearWeights& fc2, float* hidden, float* y) {
  check(fc2.in_features() == fc1.out_features(), "feed_forward: fc1 has ", fc1.out_features(),
        " outputs but fc2 expects ", fc2.in_features(), " inputs");
  check(rows >= 0, "feed_forward: negative row count ", rows);
  if (rows == 0) return;
  check(hidden != nullptr, "feed_forward: no hidden scratch buffer");
  const std::int64_t intermediate = fc1.out_features();
  linear(x, fc1.in_features(), rows, fc1, hidden, intermediate);
  apply_activation(activation, hidden, rows * intermediate);
  linear(hidden, intermediate, rows, fc2, y, fc2.out_features());
}

// T5 gated MLP (T5DenseGatedActDense): wo(act(wi_0 x) * wi_1 x). gate and
// up: [rows, wi_0.out] scratch each (gate ends up holding the product fed to wo).
inline void gated_feed_forward(const float* x, std::int64_t rows, const LinearWeights& wi_0, const LinearWeights& wi_1,
                               Activation activation, const LinearWeights& wo, float* gate, float* up, float* y) {
  check(wi_0.in_features() == wi_1.in_features() && wi_0.out_features() == wi_1.out_features(),
        "gated_feed_forward: wi_0 [", wi_0.out_features(), ", ", wi_0.in_features(), "] and wi_1 [",
        wi_1.out_features(), ", ", wi_1.in_features(), "] must have the same shape");
  check(wo.in_features() == wi_0.out_features(), "gated_feed_forward: wi_0 has ", wi_0.out_features(),
        " outputs but wo expects ", wo.in_features(), " inputs");
  check(rows >= 0, "gated_feed_forward: negative row count ", rows);
  if (rows == 0) return;
  check(gate != nullptr && up != nullptr, "gated_feed_forward: no gate/up scratch buffers");
  const std::int64_t intermediate = wi_0.out_features(), in = wi_0.in_features();
  // One streamed call for both when decoding (the same values as two linear() calls).
  linear_shared_input(x, in, rows, {{&wi_0, gate, intermediate}, {&wi_1, up, intermediate}});
  gated_activation(activation, gate, up, gate, rows * intermediate);
  linear(gate, intermediate, rows, wo, y, wo.out_features());
}

// Tensor forms: x [..., in], y [..., out], hidden (and up) with at least
// rows × intermediate elements.
inline void feed_forward(Tensor<const float> x, const LinearWeights& fc1, Activation activation,
                         const LinearWeights& fc2, Tensor<float> hidden, Tensor<float> y) {
  check(x.rank() >= 1 && x.dim(-1) == fc1.in_features(), "feed_forward: input shape ", x.shape(),
        " does not end in fc1's ", fc1.in_features(), " input features");
  const std::int64_t rows = x.numel() / fc1.in_features();
  check(y.numel() == rows * fc2.out_features() && y.dim(-1) == fc2.out_features(), "feed_forward: output shape ",
        y.shape(), " is not [", rows, " rows, ", fc2.out_features(), "]");
  check(hidden.numel() >= rows * fc1.out_features(), "feed_forward: hidden scratch has ", hidden.numel(),
        " elements, needs ", rows * fc1.out_features());
  feed_forward(x.data(), rows, fc1, activation, fc2, hidden.data(), y.data());
}

inline void gated_feed_forward(Tensor<const float> x, const LinearWeights& wi_0, const LinearWeights& wi_1,
                               Activation activation, const LinearWeights& wo, Tensor<float> gate, Tensor<float> up,
                               Tensor<float> y) {
  check(x.rank() >= 1 && x.dim(-1) == wi_0.in_features(), "gated_feed_forward: input shape ", x.shape(),
        " does not end in wi_0's ", wi_0.in_features(), " input features");
  const std::int64_t rows = x.numel() / wi_0.in_features();
  check(y.numel() == rows * wo.out_features() && y.dim(-1) == wo.out_features(), "gated_feed_forward: output shape ",
        y.shape(), " is not [", rows, " rows, ", wo.out_features(), "]");
  const std::int64_t needed = rows * wi_0.out_features();
  check(gate.numel() >= needed && up.numel() >= needed, "gated_feed_forward: gate/up scratch have ", gate.numel(),
        " / ", up.numel(), " elements, need ", needed);
  gated_feed_forward(x.data(), rows, wi_0, wi_1, activation, wo, gate.data(), up.data(), y.data());
}

// ---- references: linear_naive and the double activations ------------------

inline void feed_forward_naive(const float* x, std::int64_t rows, const LinearWeights& fc1, Activation activation,
                               const LinearWeights& fc2, float* hidden, float* y) {
  const std::int64_t intermediate = fc1.out_features();
  linear_naive(x, fc1.in_features(), rows, fc1, hidden, intermediate);
  apply_activation_naive(activation, hidden, rows * intermediate);
  linear_naive(hidden, intermediate, rows, fc2, y, fc2.out_features());
}

inline void gated_feed_forward_naive(const float* x, std::int64_t rows, const LinearWeights& wi_0,
                                     const LinearWeights& wi_1, Activation activation, const LinearWeights& wo,
                                     float* gate, float* up, float* y) {
  const std::int64_t intermediate = wi_0.out_features(), in = wi_0.in_features();
  linear_naive(x, in, rows, wi_0, gate, intermediate);
  linear_naive(x, in, rows, wi_1, up, intermediate);
  gated_activation_naive(activation, gate, up, gate, rows * intermediate);
  linear_naive(gate, intermediate, rows, wo, y, wo.out_features());
}

}  // namespace blip::kernels
