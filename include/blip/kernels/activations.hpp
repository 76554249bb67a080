// blip/kernels/activations.hpp: the element-wise activations of BLIP, BLIP-2,
// OPT and T5, in place over n floats.
//
//   HF name ("hidden_act" / "activation_function" / "dense_act_fn")   function
//   "gelu", "gelu_python"            gelu_erf   x·Φ(x) = 0.5·x·(1 + erf(x/√2))      BLIP, ViT, BERT, Q-Former
//   "gelu_new", "gelu_pytorch_tanh", gelu_tanh  0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))  T5 gated-gelu (flan)
//   "gelu_fast"
//   "relu"                           relu       max(x, 0)                              OPT
//   "quick_gelu"                     quick_gelu x·σ(1.702x)
//
// Accuracy (checked by tests/unit/kernels_activations_test.cpp against the
// double-precision `_naive` functions on 10⁶ points in [-20, 20]):
//   |fast − exact| ≤ 8·FLT_EPSILON·(1 + a)·|exact| + 1e-37,
// where a is the magnitude of the argument of the exponential inside the
// function (x²/2 for gelu_erf, 2·√(2/π)·|x + 0.044715x³| for gelu_tanh,
// 1.702·|x| for quick_gelu). The (1 + a) factor is the function's own
// condition number: rounding x³ or x² to float moves exp's argument by
// ε·a. On |x| ≤ 3, where the values matter, the measured relative error is at
// most 1.1e-6 (about 9 ulp, gelu_erf near x = -3). Both forms are more accurate in the negative tail than torch's
// own float code, which computes 1 + erf (or 1 + tanh) and so loses all
// relative accuracy below x ≈ -4 (its absolute error stays ~1e-7·|x|, as ours).
//
// How: the functions are rewritten so that no cancellation happens and the
// only transcendental is exp:
//   gelu_erf(x)   = 0.5·x·erfc(-x/√2), erfc(z) = t·exp(-z² + P(t)), t = 1/(1 + z/2)
//                   (the Chebyshev fit of Numerical Recipes' erfcc, relative
//                   error < 1.2e-7 for all z ≥ 0; erfc(-z) = 2 - erfc(z))
//   gelu_tanh(x)  = x / (1 + exp(-2u)),  u = √(2/π)(x + 0.044715x³)   since 1 + tanh(u) = 2σ(2u)
//   quick_gelu(x) = x / (1 + exp(-1.702x))
// and computed by detail/vector_math.hpp's kernels, compiled for each
// instruction-set path and chosen at run time (16 floats at a time with
// AVX-512 whatever the build flags), in chunks of 256 floats spread over the
// threads. Every function takes an optional KernelPath (default: the active
// one, BLIP_KERNEL or the best the CPU has) so tests can run each path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"
#include "blip/kernels/detail/vector_math.hpp"

namespace blip::kernels {

enum class Activation { GeluErf, GeluTanh, Relu, QuickGelu };

inline const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::GeluErf: return "gelu";
    case Activation::GeluTanh: return "gelu_new";
    case Activation::Relu: return "relu";
    case Activation::QuickGelu: return "quick_gelu";
  }
  return "?";
}

// Maps a Hugging Face activation name (transformers' ACT2FN keys) to the
// function. "gelu_new", "gelu_pytorch_tanh" and "gelu_fast" are the same
// formula written three ways in HF (they differ only in float rounding).
inline Activation parse_activation(const std::string& hf_name) {
  if (hf_name == "gelu" || hf_name == "gelu_python") return Activation::GeluErf;
  if (hf_name == "gelu_new" || hf_name == "gelu_pytorch_tanh" || hf_name == "gelu_fast") return Activation::GeluTanh;
  if (hf_name == "relu") return Activation::Relu;
  if (hf_name == "quick_gelu") return Activation::QuickGelu;
  fail("unsupported activation function \"", clip(hf_name),
       "\" (supported: gelu, gelu_python, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, quick_gelu)");
}

namespace detail {
constexpr std::int64_t kActivationChunk = 256;
// Chunks per thread before a second thread is worth starting (~16k floats).
constexpr std::int64_t kActivationChunksPerThread = 64;

// Runs chunk(x + begin, y + begin, count) over [0, n) in chunks, in parallel
// when n is large.
template <class ChunkFunction>
inline void for_each_chunk(std::int64_t n, ChunkFunction&& chunk) {
  const std::int64_t chunks = (n + kActivationChunk - 1) / kActivationChunk;
  parallel_for(
      0, chunks,
      [&](std::int64_t index) {
        const std::int64_t begin = index * kActivationChunk;
        chunk(begin, std::min(kActivationChunk, n - begin));
      },
      kActivationChunksPerThread);
}

// Each chunk in place through one of a path's element-wise kernels (vector_math.hpp).
inline void map_chunks_in_place(float* x, std::int64_t n,
                                void (*function)(const float* in, float* out, std::int64_t count)) {
  for_each_chunk(n, [&](std::int64_t begin, std::int64_t count) { function(x + begin, x + begin, count); });
}
}  // namespace detail

// ---- fast kernels (in place over n floats) ---------------------------------

inline void gelu_erf(float* x, std::int64_t n, KernelPath path = active_kernel_path()) {
  detail::map_chunks_in_place(x, n, detail::elementwise_kernels(path).gelu_erf);
}

inline void gelu_tanh(float* x, std::int64_t n, KernelPath path = active_kernel_path()) {
  detail::map_chunks_in_place(x, n, detail::elementwise_kernels(path).gelu_tanh);
}

inline void quick_gelu(float* x, std::int64_t n, KernelPath path = active_kernel_path()) {
  detail::map_chunks_in_place(x, n, detail::elementwise_kernels(path).quick_gelu);
}

inline void relu(float* x, std::int64_t n) {
  // `x < 0 ? 0 : x` rather than std::max so that NaN stays NaN, as torch.relu.
  detail::for_each_chunk(n, [&](std::int64_t begin, std::int64_t count) {
    float* chunk = x + begin;
    for (std::int64_t i = 0; i < count; ++i) chunk[i] = chunk[i] < 0.0f ? 0.0f : chunk[i];
  });
}

inline void apply_activation(Activation activation, float* x, std::int64_t n, KernelPath path = active_kernel_path()) {
  check(n >= 0, "apply_activation: negative count ", n);
  switch (activation) {
    case Activation::GeluErf: gelu_erf(x, n, path); return;
    case Activation::GeluTanh: gelu_tanh(x, n, path); return;
    case Activation::Relu: relu(x, n); return;
    case Activation::QuickGelu: quick_gelu(x, n, path); return;
  }
  fail("apply_activation: unknown activation ", static_cast<int>(activation));
}

inline void apply_activation(Activation activation, Tensor<float> x) { apply_activation(activation, x.data(), x.numel()); }

// T5's gated feed-forward activation (T5DenseGatedActDense):
// out = act(gate) * up, with act the config's dense_act_fn (Flan-T5 configs say
// "gelu" (exact), the fixtures' "gelu_new"). out may be gate or up.
inline void gated_activation(Activation activation, const float* gate, const float* up, float* out, std::int64_t n,
                             KernelPath path = active_kernel_path()) {
  check(n >= 0, "gated_activation: negative count ", n);
  detail::for_each_chunk(n, [&](std::int64_t begin, std::int64_t count) {
    alignas(64) float activated[detail::kActivationChunk];
    std::copy_n(gate + begin, count, activated);
    apply_activation(activation, activated, count, path);  // one chunk: never forks
    const float* up_chunk = up + begin;
    float* out_chunk = out + begin;
    for (std::int64_t i = 0; i < count; ++i) out_chunk[i] = activated[i] * up_chunk[i];
  });
}

// ---- double-precision references ------------------------------------------

// In double, but still in the forms without cancellation: 1 + erf(x/√2) and
// 1 + tanh(u) lose all relative accuracy for x below about -8 even in double.
inline double gelu_erf_exact(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
inline double gelu_tanh_exact(double x) {
  const double u = std::sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x);
  return x / (1.0 + std::exp(-2.0 * u));  // = 0.5·x·(1 + tanh(u))
}
inline double quick_gelu_exact(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

inline void gelu_erf_naive(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(gelu_erf_exact(x[i]));
}
inline void gelu_tanh_naive(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(gelu_tanh_exact(x[i]));
}
inline void quick_gelu_naive(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(quick_gelu_exact(x[i]));
}
inline void relu_naive(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}
inline void apply_activation_naive(Activation activation, float* x, std::int64_t n) {
  switch (activation) {
    case Activation::GeluErf: gelu_erf_naive(x, n); return;
    case Activation::GeluTanh: gelu_tanh_naive(x, n); return;
    case Activation::Relu: relu_naive(x, n); return;
    case Activation::QuickGelu: quick_gelu_naive(x, n); return;
  }
  fail("apply_activation_naive: unknown activation ", static_cast<int>(activation));
}
inline void gated_activation_naive(Activation activation, const float* gate, const float* up, float* out,
                                   std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    float activated = gate[i];
    apply_activation_naive(activation, &activated, 1);
    out[i] = static_cast<float>(static_cast<double>(activated) * up[i]);
  }
}

}  // namespace blip::kernels
