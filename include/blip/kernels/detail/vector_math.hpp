// blip/kernels/detail/vector_math.hpp: exp and the element-wise kernels built on
// it (softmax's exp(x - max), the gelu / sigmoid activations), and the sums of
// layer and RMS norms, compiled once per instruction-set path and chosen at run
// time like Linear's micro-kernels.
//
// Why not Eigen's exp: Eigen picks its packet width when the translation unit is
// compiled (SSE2 unless the program is built with -march=native), so a default
// build ran every exponential of softmax and gelu four floats at a time on an
// AVX-512 CPU: ViT-B's gelu took 8.8 ms per layer against 1.1 ms in a native
// build (kernels_nn_bench, Zen 4, docs/kernels.md). Here the same code is a
// template over a GCC/Clang vector-extension type of 16, 8 or 4 floats, inlined
// into one function per path (`target("avx512f")`, `target("avx2,fma")`, the
// build's own ISA), so the compiler emits zmm, ymm or xmm code whatever the
// build flags.
//
// The exponential is Cephes' expf (the polynomial Eigen uses too): x = n·ln2 + r
// with n = round(x·log2 e) and |r| ≤ ln2/2, exp(r) from a degree-7 polynomial,
// then 2^n applied as two factors 2^⌊n/2⌋ · 2^(n-⌊n/2⌋), so that results down to
// the subnormal range (x ≥ -104) need no special case. Error: within 1 ulp on
// the normal range (kernels_activations_test checks it against double exp);
// subnormal results are right to their own coarse precision. exp(x) is +inf for
// x ≥ 88.7228394 (where the float result overflows), exactly 0 for x < -104
// (and for -inf: masked attention scores), NaN for NaN.
//
// Results depend only on the value and the path, never on a buffer's address or
// length: every element, the tail included, goes through the same vector code
// (the tail in a zero-padded vector). The paths can differ in the last bit:
// AVX2 and AVX-512 contract a·b + c into one FMA, the portable code does only
// where the build targets a CPU with FMA.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "blip/kernels/detail/cpu_dispatch.hpp"

namespace blip::kernels::detail {

// The element-wise kernels of one path. `in` may equal `out` in each.
struct ElementwiseKernels {
  KernelPath path = KernelPath::Portable;
  void (*exp_shifted)(const float* in, float* out, std::int64_t count, float shift) = nullptr;  // exp(in - shift)
  void (*gelu_erf)(const float* in, float* out, std::int64_t count) = nullptr;    // 0.5·x·erfc(-x/√2)
  void (*gelu_tanh)(const float* in, float* out, std::int64_t count) = nullptr;   // x / (1 + exp(-2u))
  void (*quick_gelu)(const float* in, float* out, std::int64_t count) = nullptr;  // x / (1 + exp(-1.702x))
  float (*maximum)(const float* x, std::int64_t count) = nullptr;  // the largest, NaNs skipped; -inf if none
  // Σ (x[i] - shift) and Σ (x[i] - shift)², the statistics of layer and RMS norms: in a fixed order that depends
  // only on the count (lanes relative to x, a fixed tree over them at the end), never on x's address.
  float (*sum_shifted)(const float* x, std::int64_t count, float shift) = nullptr;
  float (*sum_squares_shifted)(const float* x, std::int64_t count, float shift) = nullptr;
};

// Beyond these magnitudes an activation's exponential term is below the smallest normal float, and the result
// is x (positive side) or ±0 (negative side): decided explicitly so that no denormal residue is left.
constexpr float kExponentLimit = 87.0f;

#if defined(__GNUC__) || defined(__clang__)

// Vector-extension types of 4, 8 and 16 lanes (one xmm / ymm / zmm register on x86). Values of them are only
// ever passed by reference, so no function's ABI depends on the width.
template <int Lanes>
struct LaneTypes;
template <>
struct LaneTypes<4> {
  typedef float Float __attribute__((vector_size(16)));
  typedef std::int32_t Int __attribute__((vector_size(16)));
  typedef std::uint32_t Unsigned __attribute__((vector_size(16)));
};
template <>
struct LaneTypes<8> {
  typedef float Float __attribute__((vector_size(32)));
  typedef std::int32_t Int __attribute__((vector_size(32)));
  typedef std::uint32_t Unsigned __attribute__((vector_size(32)));
};
template <>
struct LaneTypes<16> {
  typedef float Float __attribute__((vector_size(64)));
  typedef std::int32_t Int __attribute__((vector_size(64)));
  typedef std::uint32_t Unsigned __attribute__((vector_size(64)));
};

// mask ? when_true : when_false, lane by lane (mask lanes are all ones or all zeros, as comparisons give).
template <class Float, class Int>
BLIP_ALWAYS_INLINE void select_lanes(const Int& mask, const Float& when_true, Float& value) {
  value = (Float)(((Int)when_true & mask) | ((Int)value & ~mask));
}

// value = exp(value), lane by lane (see the header comment). Arguments outside [-104, 88.72] are not clamped
// first: their lanes compute garbage (no float-to-integer conversion is involved and the integer steps are
// unsigned, so nothing is undefined) that the two selects at the end replace with 0 or +inf; a NaN argument stays
// NaN through every step. Clamping took 8 more instructions on the chain of every vector.
template <int Lanes>
BLIP_ALWAYS_INLINE void exp_lanes(typename LaneTypes<Lanes>::Float& value) {
  using Float = typename LaneTypes<Lanes>::Float;
  using Int = typename LaneTypes<Lanes>::Int;
  using Unsigned = typename LaneTypes<Lanes>::Unsigned;
  constexpr float kOverflow = 88.72283935546875f;  // the smallest float whose exp rounds to +inf
  constexpr float kUnderflow = -104.0f;            // exp(-104) < 2^-150: rounds to 0
  const Float x = value;
  // n = round(x · log2 e): adding 1.5 · 2^23 rounds to an integer in the current (nearest) mode, and leaves n
  // in the low bits of the sum's mantissa (for |n| < 2^22), where the integer steps below read it.
  constexpr float kRoundingShift = 12582912.0f;
  const Float shifted = x * 1.44269504088896341f + kRoundingShift;
  const Float n = shifted - kRoundingShift;
  // r = x - n·ln2, with ln2 split in two (Cephes) so that n·C1 is exact.
  Float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  Float p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  Float result = p * (r * r) + r + 1.0f;
  // 2^n as 2^half · 2^(n - half): each factor a normal float for n in [-150, 128].
  const Unsigned exponent = (Unsigned)shifted - 0x4b400000u;  // n, two's complement: the sum's bits less 1.5 · 2^23's
  const Unsigned half = (Unsigned)((Int)exponent >> 1);      // floor(n / 2): an arithmetic shift
  result = result * (Float)((half + 127u) << 23);
  result = result * (Float)((exponent - half + 127u) << 23);
  select_lanes<Float, Int>(x >= kOverflow, Float{} + std::numeric_limits<float>::infinity(), result);
  select_lanes<Float, Int>(x < kUnderflow, Float{}, result);
  value = result;
}

// The floats x[0, min(left, Lanes)) in a vector, the lanes past them set to `padding`. A whole vector is copied
// with a constant size: a memcpy of a size known only at run time became `rep movs` (GCC 12), which made a loop of
// such copies 4-5x slower (exp_shifted_lanes below; kernels.md, "Softmax").
template <class Float>
BLIP_ALWAYS_INLINE Float load_padded(const float* x, std::int64_t left, float padding) {
  constexpr std::int64_t kLanes = static_cast<std::int64_t>(sizeof(Float) / sizeof(float));
  Float value = Float{} + padding;
  if (left >= kLanes)
    std::memcpy(&value, x, sizeof value);
  else
    std::memcpy(&value, x, static_cast<std::size_t>(left) * sizeof(float));
  return value;
}

// out[i] = exp(in[i] - shift) for count floats, Lanes at a time; the last partial vector is padded with zeros and
// goes through the same code. Whole vectors are copied with a constant size (load_padded: with a run-time size
// this loop did two `rep movs` per vector).
template <int Lanes>
BLIP_ALWAYS_INLINE void exp_shifted_lanes(const float* in, float* out, std::int64_t count, float shift) {
  using Float = typename LaneTypes<Lanes>::Float;
  std::int64_t i = 0;
  for (; i + Lanes <= count; i += Lanes) {
    Float value;
    std::memcpy(&value, in + i, sizeof value);
    value = value - shift;
    exp_lanes<Lanes>(value);
    std::memcpy(out + i, &value, sizeof value);
  }
  if (i == count) return;
  Float value = load_padded<Float>(in + i, count - i, 0.0f) - shift;
  exp_lanes<Lanes>(value);
  std::memcpy(out + i, &value, static_cast<std::size_t>(count - i) * sizeof(float));
}

// The largest of count floats, NaNs skipped (-inf if there is no other), as the scalar scan
// `maximum = maximum < x ? x : maximum` gives it, with Lanes running maxima. Only the sign of a zero maximum could
// differ (the scan keeps the first of equal values): a zero result is found again by the scan.
template <int Lanes>
BLIP_ALWAYS_INLINE float maximum_lanes(const float* x, std::int64_t count) {
  using Float = typename LaneTypes<Lanes>::Float;
  using Int = typename LaneTypes<Lanes>::Int;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  Float maxima[2] = {Float{} + kLowest, Float{} + kLowest};  // two chains: a compare and a select each
  std::int64_t i = 0;
  for (; i + 2 * Lanes <= count; i += 2 * Lanes) {
    BLIP_UNROLL
    for (int v = 0; v < 2; ++v) {
      Float value;
      std::memcpy(&value, x + i + v * Lanes, sizeof value);
      select_lanes<Float, Int>(maxima[v] < value, value, maxima[v]);
    }
  }
  for (; i < count; i += Lanes) {
    const Float value = load_padded<Float>(x + i, count - i, kLowest);
    select_lanes<Float, Int>(maxima[0] < value, value, maxima[0]);
  }
  select_lanes<Float, Int>(maxima[0] < maxima[1], maxima[1], maxima[0]);
  float lanes[Lanes];
  std::memcpy(lanes, &maxima[0], sizeof lanes);
  float maximum = kLowest;
  for (float lane : lanes) maximum = maximum < lane ? lane : maximum;
  if (maximum == 0.0f) {
    maximum = kLowest;
    for (std::int64_t j = 0; j < count; ++j) maximum = maximum < x[j] ? x[j] : maximum;
  }
  return maximum;
}

// The activations run in blocks of 256 floats and in stages, each a loop over the block's vectors (argument of
// the exponential; exp; the rest): gelu_erf's whole computation for one vector is a chain of some 40 dependent
// instructions, and written as one loop body the out-of-order core overlapped too few of them. One thread on
// Zen 4, 16k floats: single pass against stages 1.46 against 1.0 ns per value on the avx2 path, 5.0 against 2.9
// on SSE2, equal with AVX-512; the sigmoid-based activations (a shorter chain) gain nothing from it
// (quick_gelu 0.40 single pass, 0.52 staged with AVX-512; 0.64-0.82 both on AVX2) and share the code.
constexpr int kStageBlock = 256;

// Loads `count` (≤ kStageBlock) floats into vectors, the last one padded with zeros; returns the vector count.
template <class Float>
BLIP_ALWAYS_INLINE int load_block(const float* in, std::int64_t count, Float* vectors) {
  constexpr int kLanes = static_cast<int>(sizeof(Float) / sizeof(float));
  const int whole = static_cast<int>(count / kLanes), rest = static_cast<int>(count % kLanes);
  std::memcpy(vectors, in, static_cast<std::size_t>(whole) * sizeof(Float));
  if (rest == 0) return whole;
  vectors[whole] = Float{};
  std::memcpy(&vectors[whole], in + whole * kLanes, static_cast<std::size_t>(rest) * sizeof(float));
  return whole + 1;
}

// out = activation(in) for count floats, per block of kStageBlock floats in three stages over the block's vectors:
// Stages::exponent(x, kept, argument) gives exp's argument (and one more vector the last stage needs), exp, then
// Stages::finish(x, kept, exponential) turns x into the result.
template <int Lanes, class Stages>
BLIP_ALWAYS_INLINE void map_in_stages(const float* in, float* out, std::int64_t count) {
  using Float = typename LaneTypes<Lanes>::Float;
  using Int = typename LaneTypes<Lanes>::Int;
  constexpr int kVectors = kStageBlock / Lanes;
  for (std::int64_t start = 0; start < count; start += kStageBlock) {
    const std::int64_t size = count - start < kStageBlock ? count - start : kStageBlock;
    Float x[kVectors], kept[kVectors], exponential[kVectors];
    // Whole blocks copied with a constant size (see exp_shifted_lanes: a run-time size became `rep movs`).
    const bool whole_block = size == kStageBlock;
    const int vectors = whole_block ? kVectors : load_block(in + start, size, x);
    if (whole_block) std::memcpy(x, in + start, sizeof x);
    for (int v = 0; v < vectors; ++v) Stages::template exponent<Float, Int>(x[v], kept[v], exponential[v]);
    for (int v = 0; v < vectors; ++v) exp_lanes<Lanes>(exponential[v]);
    for (int v = 0; v < vectors; ++v) Stages::template finish<Float, Int>(x[v], kept[v], exponential[v]);
    if (whole_block)
      std::memcpy(out + start, x, sizeof x);
    else
      std::memcpy(out + start, x, static_cast<std::size_t>(size) * sizeof(float));
  }
}

// gelu_erf(x) = 0.5·x·erfc(-x/√2), erfc(z) = t·exp(-z² + P(t)) with t = 1/(1 + z/2) for z = |x|/√2 ≥ 0 (the
// Chebyshev fit of Numerical Recipes' erfcc, relative error < 1.2e-7), erfc(-z) = 2 - erfc(z).
struct GeluErfStages {
  template <class Float, class Int>
  static BLIP_ALWAYS_INLINE void exponent(const Float& x, Float& t, Float& argument) {
    const Float z = (Float)((Int)x & 0x7fffffff) * 0.70710678118654752f;
    t = 1.0f / (1.0f + 0.5f * z);
    Float p = t * 0.17087277f - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    argument = p - z * z;
  }
  template <class Float, class Int>
  static BLIP_ALWAYS_INLINE void finish(Float& x, const Float& t, const Float& exponential) {
    Float erfc_of_abs = exponential * t;  // erfc(|x|/√2)
    select_lanes<Float, Int>(0.5f * x * x > kExponentLimit, Float{}, erfc_of_abs);
    Float factor = erfc_of_abs;
    select_lanes<Float, Int>(x >= 0.0f, 2.0f - erfc_of_abs, factor);  // erfc(-x/√2)
    x = 0.5f * x * factor;
  }
};

// x / (1 + exp(-argument)); `argument` is 2u = 2·√(2/π)(x + 0.044715x³) for gelu_tanh (1 + tanh u = 2σ(2u)),
// 1.702x for quick_gelu.
template <bool Tanh>
struct XTimesSigmoidStages {
  template <class Float, class Int>
  static BLIP_ALWAYS_INLINE void exponent(const Float& x, Float& negated_argument, Float& argument) {
    if constexpr (Tanh)
      negated_argument = -(1.5957691216057308f * x * (1.0f + 0.044715f * x * x));
    else
      negated_argument = -(1.702f * x);
    argument = negated_argument;
  }
  template <class Float, class Int>
  static BLIP_ALWAYS_INLINE void finish(Float& x, const Float& negated_argument, const Float& exponential) {
    Float result = x / (1.0f + exponential);
    // exp(-argument) > e^87: the sigmoid is < 1e-37 and the product underflows: ±0 like torch.
    select_lanes<Float, Int>(negated_argument > kExponentLimit, x * 0.0f, result);
    x = result;
  }
};

// Σ (x[i] - shift), or of its squares, in 4 · Lanes partial sums (4 vectors: independent chains, and an error
// that grows with count / (4 · Lanes) rather than count), the last partial vector padded with `shift` (so that its
// missing lanes add 0), then the vectors and their lanes added in a fixed tree. Eigen's sum, used until session
// 14, peeled an unaligned head off with scalar adds, so a row's statistics depended on its address: a BLIP-2 row
// of a tiny model (24 floats: 96 bytes) gave other bits in a batch than alone.
template <bool Squares, class Float>
BLIP_ALWAYS_INLINE void add_term(Float& sum, const Float& value) {
  if constexpr (Squares)
    sum += value * value;
  else
    sum += value;
}

template <int Lanes, bool Squares>
BLIP_ALWAYS_INLINE float sum_shifted_lanes(const float* x, std::int64_t count, float shift) {
  using Float = typename LaneTypes<Lanes>::Float;
  Float sums[4] = {};
  std::int64_t i = 0;
  for (; i + 4 * Lanes <= count; i += 4 * Lanes) {
    BLIP_UNROLL
    for (int v = 0; v < 4; ++v) {
      Float value;
      std::memcpy(&value, x + i + v * Lanes, sizeof value);
      add_term<Squares>(sums[v], value - shift);
    }
  }
  for (int v = 0; i < count; i += Lanes, ++v)
    add_term<Squares>(sums[v], load_padded<Float>(x + i, count - i, shift) - shift);
  const Float total = (sums[0] + sums[1]) + (sums[2] + sums[3]);
  float lanes[Lanes];
  std::memcpy(lanes, &total, sizeof lanes);
  for (int width = Lanes / 2; width >= 1; width /= 2)
    for (int lane = 0; lane < width; ++lane) lanes[lane] += lanes[lane + width];
  return lanes[0];
}

template <int Lanes>
struct ElementwiseBodies {
  static BLIP_ALWAYS_INLINE void exp_shifted(const float* in, float* out, std::int64_t count, float shift) {
    exp_shifted_lanes<Lanes>(in, out, count, shift);
  }
  static BLIP_ALWAYS_INLINE void gelu_erf(const float* in, float* out, std::int64_t count) {
    map_in_stages<Lanes, GeluErfStages>(in, out, count);
  }
  static BLIP_ALWAYS_INLINE void gelu_tanh(const float* in, float* out, std::int64_t count) {
    map_in_stages<Lanes, XTimesSigmoidStages<true>>(in, out, count);
  }
  static BLIP_ALWAYS_INLINE void quick_gelu(const float* in, float* out, std::int64_t count) {
    map_in_stages<Lanes, XTimesSigmoidStages<false>>(in, out, count);
  }
  static BLIP_ALWAYS_INLINE float maximum(const float* x, std::int64_t count) { return maximum_lanes<Lanes>(x, count); }
  static BLIP_ALWAYS_INLINE float sum_shifted(const float* x, std::int64_t count, float shift) {
    return sum_shifted_lanes<Lanes, false>(x, count, shift);
  }
  static BLIP_ALWAYS_INLINE float sum_squares_shifted(const float* x, std::int64_t count, float shift) {
    return sum_shifted_lanes<Lanes, true>(x, count, shift);
  }
};

// One set of non-inline-able entry points per path: the bodies above inlined under each path's target.
#define BLIP_ELEMENTWISE_PATH(suffix, target_attribute, lanes)                                                  \
  target_attribute inline void exp_shifted_##suffix(const float* in, float* out, std::int64_t count, float shift) { \
    ElementwiseBodies<lanes>::exp_shifted(in, out, count, shift);                                               \
  }                                                                                                             \
  target_attribute inline void gelu_erf_##suffix(const float* in, float* out, std::int64_t count) {             \
    ElementwiseBodies<lanes>::gelu_erf(in, out, count);                                                         \
  }                                                                                                             \
  target_attribute inline void gelu_tanh_##suffix(const float* in, float* out, std::int64_t count) {            \
    ElementwiseBodies<lanes>::gelu_tanh(in, out, count);                                                        \
  }                                                                                                             \
  target_attribute inline void quick_gelu_##suffix(const float* in, float* out, std::int64_t count) {           \
    ElementwiseBodies<lanes>::quick_gelu(in, out, count);                                                       \
  }                                                                                                             \
  target_attribute inline float maximum_##suffix(const float* x, std::int64_t count) {                          \
    return ElementwiseBodies<lanes>::maximum(x, count);                                                         \
  }                                                                                                             \
  target_attribute inline float sum_shifted_##suffix(const float* x, std::int64_t count, float shift) {         \
    return ElementwiseBodies<lanes>::sum_shifted(x, count, shift);                                              \
  }                                                                                                             \
  target_attribute inline float sum_squares_shifted_##suffix(const float* x, std::int64_t count, float shift) { \
    return ElementwiseBodies<lanes>::sum_squares_shifted(x, count, shift);                                      \
  }                                                                                                             \
  inline ElementwiseKernels elementwise_kernels_##suffix(KernelPath path) {                                     \
    return ElementwiseKernels{path,                   &exp_shifted_##suffix, &gelu_erf_##suffix,                \
                              &gelu_tanh_##suffix,    &quick_gelu_##suffix,  &maximum_##suffix,                 \
                              &sum_shifted_##suffix,  &sum_squares_shifted_##suffix};                           \
  }

BLIP_ELEMENTWISE_PATH(portable, , 4)
#if BLIP_X86_DISPATCH
BLIP_ELEMENTWISE_PATH(avx2, BLIP_TARGET_AVX2, 8)
BLIP_ELEMENTWISE_PATH(avx512, BLIP_TARGET_AVX512, 16)
#endif
#undef BLIP_ELEMENTWISE_PATH

#else  // no vector extensions: libm's exp, one float at a time, with the same limits

inline float exp_scalar(float x) {
  if (x != x) return x;
  if (x < -104.0f) return 0.0f;
  return static_cast<float>(std::exp(static_cast<double>(x)));
}
inline void exp_shifted_portable(const float* in, float* out, std::int64_t count, float shift) {
  for (std::int64_t i = 0; i < count; ++i) out[i] = exp_scalar(in[i] - shift);
}
inline void gelu_erf_portable(const float* in, float* out, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i)
    out[i] = static_cast<float>(0.5 * in[i] * std::erfc(-static_cast<double>(in[i]) * 0.70710678118654752));
}
template <bool Tanh>
inline void x_times_sigmoid_portable(const float* in, float* out, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    const float x = in[i];
    const float exponent = Tanh ? -(1.5957691216057308f * x * (1.0f + 0.044715f * x * x)) : -(1.702f * x);
    out[i] = exponent > kExponentLimit ? x * 0.0f : x / (1.0f + exp_scalar(exponent));
  }
}
inline float maximum_portable(const float* x, std::int64_t count) {
  float maximum = -std::numeric_limits<float>::infinity();
  for (std::int64_t i = 0; i < count; ++i) maximum = maximum < x[i] ? x[i] : maximum;
  return maximum;
}
template <bool Squares>
inline float sum_shifted_portable(const float* x, std::int64_t count, float shift) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < count; ++i) sum += Squares ? (x[i] - shift) * (x[i] - shift) : x[i] - shift;
  return sum;
}
inline ElementwiseKernels elementwise_kernels_portable(KernelPath path) {
  return ElementwiseKernels{path, &exp_shifted_portable, &gelu_erf_portable, &x_times_sigmoid_portable<true>,
                            &x_times_sigmoid_portable<false>, &maximum_portable, &sum_shifted_portable<false>,
                            &sum_shifted_portable<true>};
}

#endif

// The element-wise kernels of `path` (avx512-bf16 uses avx512's).
inline ElementwiseKernels elementwise_kernels(KernelPath path) {
  check(kernel_path_supported(path), "element-wise kernels: path '", kernel_path_name(path),
        "' is not supported by this CPU or build");
#if BLIP_X86_DISPATCH
  if (is_avx512_path(path)) return elementwise_kernels_avx512(path);
  if (path == KernelPath::Avx2) return elementwise_kernels_avx2(path);
#endif
  return elementwise_kernels_portable(path);
}

// Those of the active path (BLIP_KERNEL or the best the CPU has), decided once per process.
inline const ElementwiseKernels& active_elementwise_kernels() {
  static const ElementwiseKernels kernels = elementwise_kernels(active_kernel_path());
  return kernels;
}

}  // namespace blip::kernels::detail
