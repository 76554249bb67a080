// Benchmarks of the non-GEMM kernels at the real model shapes: LayerNorm /
// RMS norm, activations, softmax, attention (prefill and decode), KV-cache
// append / reorder.
//
// Counters: GB/s counts the bytes each call must read and write once (the
// memory-bound kernels); GFLOP/s counts 2 flops per multiply-add of the two
// attention products (4·Tq·Tk·d per head), excluding softmax.
// Shapes:
//   ViT-B/16 @384 (BLIP): 577 tokens × 768, 12 heads × 64, MLP 3072
//   ViT-g/14 @224 (BLIP-2): 257 tokens × 1408, 16 heads × 88, MLP 6144
//   BERT-base text decoder (BLIP): 768, 12 heads × 64, vocab 30524, 3 beams, cross-attends 577 image tokens
//   Q-Former: 32 queries, 12 heads × 64, cross-attends 257 image tokens
//   OPT-2.7b: 2560, 32 heads × 80, vocab 50272, 3 beams
//   T5-xl (Flan): 2048, 32 heads × 64, d_ff 5120 gated-gelu, vocab 32128
// Run: ./kernels_nn_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "blip/kernels/activations.hpp"
#include "blip/kernels/attention.hpp"
#include "blip/kernels/kv_cache.hpp"
#include "blip/kernels/normalization.hpp"
#include "blip/kernels/positions.hpp"
#include "blip/kernels/softmax.hpp"

using namespace blip;
using namespace blip::kernels;

namespace {

std::vector<float> random_vector(std::int64_t count, float stddev = 1.0f, std::uint32_t seed = 1) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (auto& v : values) v = normal(generator);
  return values;
}

void set_bytes(benchmark::State& state, double bytes_per_call) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_call * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void set_flops(benchmark::State& state, double flops_per_call) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_call * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- normalization -----------------------------------------------------------

void BM_LayerNorm(benchmark::State& state) {
  const std::int64_t rows = state.range(0), width = state.range(1);
  std::vector<float> x = random_vector(rows * width), y(x.size());
  const std::vector<float> gamma = random_vector(width), beta = random_vector(width);
  for (auto _ : state) {
    layer_norm(x.data(), rows, width, gamma.data(), beta.data(), 1e-6f, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2.0 * rows * width * sizeof(float));
}
BENCHMARK(BM_LayerNorm)
    ->ArgNames({"rows", "width"})
    ->Args({577, 768})    // ViT-B
    ->Args({257, 1408})   // ViT-g
    ->Args({32, 768})     // Q-Former queries
    ->Args({3, 768})      // BERT decode, 3 beams
    ->Args({1, 2560});    // OPT-2.7b decode

void BM_RmsNorm(benchmark::State& state) {
  const std::int64_t rows = state.range(0), width = state.range(1);
  std::vector<float> x = random_vector(rows * width), y(x.size());
  const std::vector<float> weight = random_vector(width);
  for (auto _ : state) {
    rms_norm(x.data(), rows, width, weight.data(), 1e-6f, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2.0 * rows * width * sizeof(float));
}
BENCHMARK(BM_RmsNorm)->ArgNames({"rows", "width"})->Args({64, 2048})->Args({3, 2048});  // T5-xl encoder / decode

// ---- activations -------------------------------------------------------------

template <Activation kind>
void BM_Activation(benchmark::State& state) {
  const std::int64_t count = state.range(0) * state.range(1);
  const std::vector<float> input = random_vector(count, 2.0f);
  std::vector<float> x = input;
  for (auto _ : state) {
    apply_activation(kind, x.data(), count);
    benchmark::DoNotOptimize(x.data());
    state.PauseTiming();
    x = input;  // keep the values in the typical range (gelu of gelu of ... shrinks them)
    state.ResumeTiming();
  }
  set_bytes(state, 2.0 * count * sizeof(float));
  state.counters["Gelem/s"] = benchmark::Counter(count * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_TEMPLATE(BM_Activation, Activation::GeluErf)->ArgNames({"rows", "width"})->Args({577, 3072})->Args({257, 6144});
BENCHMARK_TEMPLATE(BM_Activation, Activation::GeluTanh)->ArgNames({"rows", "width"})->Args({64, 5120});
BENCHMARK_TEMPLATE(BM_Activation, Activation::QuickGelu)->ArgNames({"rows", "width"})->Args({577, 3072});
BENCHMARK_TEMPLATE(BM_Activation, Activation::Relu)->ArgNames({"rows", "width"})->Args({3, 10240})->Args({64, 10240});

// The scalar libm erf, for comparison with the vectorised gelu_erf.
void BM_GeluErfScalarLibm(benchmark::State& state) {
  const std::int64_t count = state.range(0) * state.range(1);
  const std::vector<float> input = random_vector(count, 2.0f);
  std::vector<float> x(count);
  for (auto _ : state) {
    for (std::int64_t i = 0; i < count; ++i) x[i] = 0.5f * input[i] * (1.0f + std::erf(input[i] * 0.70710678f));
    benchmark::DoNotOptimize(x.data());
  }
  set_bytes(state, 2.0 * count * sizeof(float));
  state.counters["Gelem/s"] = benchmark::Counter(count * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GeluErfScalarLibm)->ArgNames({"rows", "width"})->Args({577, 3072});

void BM_GatedGelu(benchmark::State& state) {
  const std::int64_t count = state.range(0) * state.range(1);
  const std::vector<float> gate = random_vector(count, 2.0f, 1), up = random_vector(count, 1.0f, 2);
  std::vector<float> out(count);
  for (auto _ : state) {
    gated_activation(Activation::GeluTanh, gate.data(), up.data(), out.data(), count);
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, 3.0 * count * sizeof(float));
}
BENCHMARK(BM_GatedGelu)->ArgNames({"rows", "d_ff"})->Args({64, 5120})->Args({3, 5120});

// ---- softmax -------------------------------------------------------------------

void BM_LogSoftmax(benchmark::State& state) {
  const std::int64_t rows = state.range(0), width = state.range(1);
  const std::vector<float> input = random_vector(rows * width, 5.0f);
  std::vector<float> x = input;
  for (auto _ : state) {
    std::copy(input.begin(), input.end(), x.begin());
    log_softmax_rows(x.data(), rows, width);
    benchmark::DoNotOptimize(x.data());
  }
  set_bytes(state, 2.0 * rows * width * sizeof(float));  // the copy is not counted
}
BENCHMARK(BM_LogSoftmax)
    ->ArgNames({"rows", "vocab"})
    ->Args({3, 30524})    // BLIP beams
    ->Args({3, 50272})    // OPT beams
    ->Args({3, 32128});   // T5 beams

// ---- attention ------------------------------------------------------------------

// Prefill / encoder self-attention over a fused qkv buffer [rows, T, 3·hidden].
void BM_AttentionPrefill(benchmark::State& state) {
  const std::int64_t rows = state.range(0), tokens = state.range(1), heads = state.range(2), head_dim = state.range(3);
  const bool causal = state.range(4) != 0;
  const std::int64_t hidden = heads * head_dim;
  std::vector<float> qkv = random_vector(rows * tokens * 3 * hidden), context(rows * tokens * hidden);
  AttentionOptions options;
  options.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  options.causal = causal;
  // bf16_products = 1: the products on bf16 operands (a vision encoder run with bf16 activations).
  options.products = state.range(5) != 0 ? ActivationPrecision::BF16 : ActivationPrecision::F32;
  const HeadsView query = heads_view(qkv.data(), rows, tokens, heads, head_dim, 3 * hidden);
  const HeadsView key = heads_view(qkv.data() + hidden, rows, tokens, heads, head_dim, 3 * hidden);
  const HeadsView value = heads_view(qkv.data() + 2 * hidden, rows, tokens, heads, head_dim, 3 * hidden);
  const HeadsView output = heads_view(context.data(), rows, tokens, heads, head_dim);
  for (auto _ : state) {
    attention(query, key, value, options, output);
    benchmark::DoNotOptimize(context.data());
  }
  set_flops(state, 4.0 * rows * heads * tokens * tokens * head_dim);
}
BENCHMARK(BM_AttentionPrefill)
    ->ArgNames({"rows", "tokens", "heads", "head_dim", "causal", "bf16_products"})
    ->Args({1, 577, 12, 64, 0, 0})   // ViT-B/16 @384
    ->Args({1, 577, 12, 64, 0, 1})   // the same with bf16 products
    ->Args({1, 257, 16, 88, 0, 0})   // ViT-g/14 @224
    ->Args({1, 257, 16, 88, 0, 1})
    ->Args({1, 64, 32, 64, 0, 0})    // T5-xl encoder, 64 tokens
    ->Args({1, 40, 32, 80, 1, 0})    // OPT-2.7b prompt (32 queries + 8 tokens), causal
    ->UseRealTime();

// Cross-attention of Tq query tokens per row over an encoder's keys in a
// CrossAttentionCache shared by kv_group rows.
void BM_AttentionCross(benchmark::State& state) {
  const std::int64_t images = state.range(0), beams = state.range(1), query_tokens = state.range(2);
  const std::int64_t key_tokens = state.range(3), heads = state.range(4), head_dim = state.range(5);
  const std::int64_t hidden = heads * head_dim, rows = images * beams;
  const std::vector<float> keys = random_vector(images * key_tokens * hidden, 1.0f, 2);
  const std::vector<float> values = random_vector(images * key_tokens * hidden, 1.0f, 3);
  std::vector<float> queries = random_vector(rows * query_tokens * hidden, 1.0f, 4), out(queries.size());
  CrossAttentionCache cache;
  cache.allocate(images, heads, key_tokens, head_dim);
  cache.fill(keys.data(), values.data(), key_tokens * hidden, hidden, key_tokens);
  AttentionOptions options;
  options.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  options.kv_group = beams;
  const HeadsView query = heads_view(queries.data(), rows, query_tokens, heads, head_dim);
  const HeadsView output = heads_view(out.data(), rows, query_tokens, heads, head_dim);
  for (auto _ : state) {
    attention(query, cache.keys(), cache.values(), options, output);
    benchmark::DoNotOptimize(out.data());
  }
  set_flops(state, 4.0 * rows * heads * query_tokens * key_tokens * head_dim);
  set_bytes(state, 2.0 * images * key_tokens * hidden * sizeof(float));  // K and V read once per group
}
BENCHMARK(BM_AttentionCross)
    ->ArgNames({"images", "beams", "Tq", "Tk", "heads", "head_dim"})
    ->Args({1, 3, 1, 577, 12, 64})   // BLIP caption decode: 3 beams over ViT-B image tokens
    ->Args({1, 1, 1, 577, 12, 64})   // greedy
    ->Args({1, 1, 32, 257, 12, 64})  // Q-Former queries over ViT-g image tokens
    ->Args({1, 3, 1, 64, 32, 64})    // T5-xl decoder cross-attention, 3 beams
    ->UseRealTime();

// One decode step of self-attention against a KVCache holding `cached` tokens.
void BM_AttentionDecodeSelf(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cached = state.range(1), heads = state.range(2), head_dim = state.range(3);
  const std::int64_t hidden = heads * head_dim;
  const std::vector<float> keys = random_vector(rows * cached * hidden, 1.0f, 5);
  const std::vector<float> values = random_vector(rows * cached * hidden, 1.0f, 6);
  std::vector<float> queries = random_vector(rows * hidden, 1.0f, 7), out(queries.size());
  KVCache cache;
  cache.allocate(rows, heads, cached, head_dim);
  cache.append(keys.data(), values.data(), cached * hidden, hidden, cached);
  AttentionOptions options;
  options.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const HeadsView query = heads_view(queries.data(), rows, 1, heads, head_dim);
  const HeadsView output = heads_view(out.data(), rows, 1, heads, head_dim);
  for (auto _ : state) {
    attention(query, cache.keys(), cache.values(), options, output);
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, 2.0 * rows * cached * hidden * sizeof(float));
  set_flops(state, 4.0 * rows * heads * cached * head_dim);
}
BENCHMARK(BM_AttentionDecodeSelf)
    ->ArgNames({"rows", "cached", "heads", "head_dim"})
    ->Args({3, 20, 12, 64})    // BLIP text decoder, 3 beams
    ->Args({3, 64, 32, 80})    // OPT-2.7b, 3 beams, 32 image queries + prompt + generated
    ->Args({1, 64, 32, 80})    // OPT-2.7b greedy
    ->Args({3, 20, 32, 64})    // T5-xl decoder
    ->UseRealTime();

// ---- KV cache ------------------------------------------------------------------

void BM_KVCacheAppendStep(benchmark::State& state) {
  const std::int64_t rows = state.range(0), heads = state.range(1), head_dim = state.range(2);
  const std::int64_t hidden = heads * head_dim, capacity = 128;
  const std::vector<float> step = random_vector(rows * 2 * hidden);  // [rows, 1, k|v]
  KVCache cache;
  cache.allocate(rows, heads, capacity, head_dim);
  for (auto _ : state) {
    if (cache.length() == capacity) cache.reset();
    cache.append(step.data(), step.data() + hidden, 2 * hidden, 2 * hidden, 1);
  }
  set_bytes(state, 2.0 * 2.0 * rows * hidden * sizeof(float));
}
BENCHMARK(BM_KVCacheAppendStep)->ArgNames({"rows", "heads", "head_dim"})->Args({3, 32, 80})->Args({3, 12, 64});

void BM_KVCacheReorder(benchmark::State& state) {
  const std::int64_t rows = state.range(0), heads = state.range(1), head_dim = state.range(2), length = state.range(3);
  const std::int64_t hidden = heads * head_dim;
  const std::vector<float> projected = random_vector(rows * length * hidden);
  KVCache cache;
  cache.allocate(rows, heads, length, head_dim);
  cache.append(projected.data(), projected.data(), length * hidden, hidden, length);
  std::vector<std::int64_t> order(rows);
  for (std::int64_t i = 0; i < rows; ++i) order[i] = (i + 1) % rows;  // one cycle: every row moves
  for (auto _ : state) {
    cache.reorder(order.data());
    benchmark::ClobberMemory();
  }
  // Each moved row is read and written once, plus one scratch copy per cycle.
  set_bytes(state, 2.0 * 2.0 * (rows + 1) * length * hidden * sizeof(float));
}
BENCHMARK(BM_KVCacheReorder)->ArgNames({"rows", "heads", "head_dim", "length"})->Args({3, 32, 80, 64})->Args({3, 12, 64, 20});

// BLIP-2 + OPT: the prompt's keys / values (32 queries + a short prompt) of one
// image copied to each of 3 beams, once per request and layer.
void BM_KVCacheAssignRows(benchmark::State& state) {
  const std::int64_t beams = state.range(0), heads = state.range(1), head_dim = state.range(2), length = state.range(3);
  const std::int64_t hidden = heads * head_dim;
  const std::vector<float> projected = random_vector(length * hidden);
  KVCache prompt, beam_cache;
  prompt.allocate(1, heads, length, head_dim);
  prompt.append(projected.data(), projected.data(), length * hidden, hidden, length);
  beam_cache.allocate(beams, heads, length + 30, head_dim);
  const std::vector<std::int64_t> source(static_cast<std::size_t>(beams), 0);
  for (auto _ : state) {
    beam_cache.assign_rows(prompt, source.data());
    benchmark::ClobberMemory();
  }
  // Keys and values: one read of the prompt row per beam, one write per beam.
  set_bytes(state, 2.0 * 2.0 * beams * length * hidden * sizeof(float));
}
BENCHMARK(BM_KVCacheAssignRows)->ArgNames({"beams", "heads", "head_dim", "length"})->Args({3, 32, 80, 40});

// ---- positions -----------------------------------------------------------------

void BM_T5PositionBias(benchmark::State& state) {
  const std::int64_t heads = 32, query_length = state.range(0), key_length = state.range(1);
  const std::vector<float> table = random_vector(32 * heads);
  std::vector<float> out(heads * query_length * key_length);
  for (auto _ : state) {
    t5_position_bias(table.data(), heads, query_length, key_length, query_length > 1, 32, 128,
                     query_length > 1 ? 0 : key_length - 1, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, static_cast<double>(out.size()) * sizeof(float));
}
BENCHMARK(BM_T5PositionBias)->ArgNames({"Tq", "Tk"})->Args({64, 64})->Args({1, 20});

}  // namespace

BENCHMARK_MAIN();
