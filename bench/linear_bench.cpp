// Linear (y = x · Wᵀ + b) at the shapes BLIP and BLIP-2 run, against OpenBLAS
// cblas_sgemm / cblas_sgemv and Eigen's `x * W.transpose()`, same layout
// (x [rows, in] row-major, W [out, in] row-major, y [rows, out] row-major).
//
// Counters: "FLOP" = 2·rows·in·out per second (compute-bound prefill), and
// "weight_bytes" = bytes per weight·in·out per second (memory-bound decode:
// every weight is read once per call; 4 for f32, 2 for bf16 / f16, 1 for int8). Decode shapes (rows ≤ 12) rotate through enough weight
// copies (≥ 512 MiB in total) that each call reads its weights from memory, as a real decode step over many
// layers does. (128 MiB was 4× the L3 of the first machines, but Zen 5 VMs read a 128 MiB buffer 15% faster than
// a 512 MiB one: part of it still came from their cache.)
//
// blip adds the bias (in the micro-kernel's store, as models use it); the
// baselines compute the bare product (beta = 0), which favours them slightly.
//
// Names: linear/<implementation>/<shape name>/<rows>x<in>x<out>, implementation
// one of blip (the run-time chosen path), blip-avx2, blip-portable, openblas, eigen,
// and for narrow weights blip-<precision> / blip-avx2-<precision> (bf16, f16, int8, int4), and
// blip-bf16-activations (bf16 weights times activations rounded to bf16: vdpbf16ps on AVX512-BF16 CPUs).
// linear_tile/<path>/<precision>/<rows>x384x32: one micro-kernel alone, one thread (run_micro_kernel below).
// Run the implementations in separate processes (bench/run_kernel_benchmarks.sh
// does): OpenBLAS's pthreads and OpenMP's threads each spin for a while after a
// call and would steal the 2 cores from each other.
#include <benchmark/benchmark.h>

// Eigen 3.4's AVX-512 GEMM packing trips GCC 12's -W(maybe-)uninitialized inside
// _mm512_undefined_ps (a false positive in the intrinsics header, not our code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/linear.hpp"
#include "streaming_read.hpp"

#ifdef BLIP_BENCH_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif

namespace {

using blip::Shape;
using blip::Tensor;
using blip::kernels::KernelPath;
using blip::kernels::LinearWeights;

struct LinearShape {
  const char* name;
  std::int64_t rows, in, out;
};

const LinearShape kShapes[] = {
    // Vision transformer prefill: 577 tokens (384 px, patch 16) / 257 tokens (224 px, patch 14).
    {"vit_b_qkv", 577, 768, 2304},
    {"vit_b_fc1", 577, 768, 3072},
    {"vit_b_fc2", 577, 3072, 768},
    {"vit_b_proj", 577, 768, 768},
    {"vit_l_qkv", 577, 1024, 3072},
    {"vit_l_fc1", 577, 1024, 4096},
    {"vit_g_qkv", 257, 1408, 4224},
    {"vit_g_fc1", 257, 1408, 6144},
    {"vit_g_fc2", 257, 6144, 1408},
    // BERT text encoder / Q-Former over a short prompt.
    {"bert_proj", 40, 768, 768},
    {"bert_fc1", 40, 768, 3072},
    {"bert_short", 10, 768, 768},
    // Decode: one row per beam.
    {"dec_fc1", 1, 768, 3072},
    {"dec_lm_head", 1, 768, 30524},
    {"opt27_fc1", 1, 2560, 10240},
    {"beams3_fc1", 3, 768, 3072},
    {"beams3_lm_head", 3, 768, 30524},
    {"beams8_opt27_fc1", 8, 2560, 10240},
    {"beams12_opt27_fc1", 12, 2560, 10240},  // the most rows decode streams (e.g. 4 images × 3 beams)
};

constexpr std::int64_t kRotationBytes = std::int64_t{512} << 20;
constexpr std::int64_t kMaxDecodeAgainstReadRows = 12;

// A weight format and the activations it meets.
struct Format {
  blip::WeightPrecision weights;
  blip::ActivationPrecision activations;
};

Tensor<float> random_tensor(const Shape& shape, std::uint32_t seed) {
  Tensor<float> tensor(shape);
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = distribution(generator);
  return tensor;
}

bool is_decode(const LinearShape& shape) { return shape.rows <= 12; }

// Weight copies so that the decode working set is far larger than L3.
std::int64_t weight_copies(const LinearShape& shape, std::int64_t bytes_per_weight = 4) {
  if (!is_decode(shape)) return 1;
  const std::int64_t bytes = shape.in * shape.out * bytes_per_weight;
  return std::max<std::int64_t>(1, (kRotationBytes + bytes - 1) / bytes);
}

// Google Benchmark calls a benchmark function several times (iteration-count
// probing, repetitions); the inputs of the last shape are kept so that 128 MiB
// of random weights are not regenerated on every call.
template <class Weights>
struct InputCache {
  std::string shape_name;
  Tensor<float> x;
  std::vector<Weights> copies;
};

std::int64_t weight_count(const Tensor<float>& weight) { return weight.numel(); }
std::int64_t weight_count(const LinearWeights& weight) { return weight.in_features() * weight.out_features(); }

template <class Weights, class Make>
InputCache<Weights>& cached_inputs(const LinearShape& shape, Make make_weights, const std::string& variant = "",
                                   std::int64_t bytes_per_weight = 4) {
  static InputCache<Weights> cache;
  const std::string key = std::string(shape.name) + "/" + variant;
  if (cache.shape_name != key) {
    cache.copies.clear();  // free the previous shape's copies first
    cache.x = random_tensor(Shape{shape.rows, shape.in}, 1);
    for (std::int64_t copy = 0; copy < weight_copies(shape, bytes_per_weight); ++copy)
      cache.copies.push_back(make_weights(copy));
    // Every copy must hold out x in weights: a build that got this wrong (see row_major_inputs) handed
    // OpenBLAS an empty tensor, which it read far past its end.
    for (const Weights& weights : cache.copies)
      blip::check(weight_count(weights) == shape.in * shape.out, "linear_bench: ", shape.name, ": a weight copy has ",
                  weight_count(weights), " weights, expected ", shape.out, " x ", shape.in);
    cache.shape_name = key;
  }
  return cache;
}

void set_counters(benchmark::State& state, const LinearShape& shape, double bytes_per_weight = 4.0) {
  const double flops = 2.0 * shape.rows * shape.in * shape.out;
  const double weight_bytes = bytes_per_weight * shape.in * shape.out;
  state.counters["FLOP"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_bytes"] = benchmark::Counter(weight_bytes, benchmark::Counter::kIsIterationInvariantRate);
}

// Linear through the micro-kernels `kernels` (a path's, linear_micro_kernels, or one the CPU would not choose).
void run_blip_kernels(benchmark::State& state, const LinearShape& shape,
                      const blip::kernels::detail::MicroKernelSet& kernels,
                      blip::ActivationPrecision activations = blip::ActivationPrecision::F32) {
  const blip::WeightPrecision precision = kernels.precision;
  const InputCache<LinearWeights>& inputs = cached_inputs<LinearWeights>(
      shape,
      [&](std::int64_t copy) {
        return LinearWeights::prepare(random_tensor(Shape{shape.out, shape.in}, 100 + copy),
                                      random_tensor(Shape{shape.out}, 7), precision, activations);
      },
      std::string(blip::weight_precision_name(precision)) + "/" + blip::activation_precision_name(activations),
      std::max<std::int64_t>(1, blip::kernels::detail::packed_weight_bits(precision) / 8));
  const Tensor<float>& x = inputs.x;
  const std::vector<LinearWeights>& copies = inputs.copies;
  Tensor<float> y(Shape{shape.rows, shape.out});
  std::size_t next = 0;
  for (auto _ : state) {
    blip::kernels::detail::linear_blocked(kernels, x.data(), shape.in, shape.rows, copies[next], y.data(), shape.out);
    next = (next + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  // Bytes a call streams: the packed weights with their scales (int4: 5 bits per weight).
  set_counters(state, shape, static_cast<double>(copies.front().packed_bytes()) / (shape.in * shape.out));
}

void run_blip(benchmark::State& state, const LinearShape& shape, KernelPath path,
              blip::WeightPrecision precision = blip::WeightPrecision::F32,
              blip::ActivationPrecision activations = blip::ActivationPrecision::F32) {
  run_blip_kernels(state, shape, blip::kernels::detail::linear_micro_kernels(path, precision, activations), activations);
}

// The row-major f32 weights [out, in] that the Eigen and OpenBLAS runs read. The Shape is built here, once:
// built inside the lambda, GCC 12.2 at -O2/-O3 made it [0, 0] (right at -O1, with clang, and with
// -fno-tree-pre; UBSan reported nothing), so those runs got empty tensors (docs/kernels.md).
const InputCache<Tensor<float>>& row_major_inputs(const LinearShape& shape) {
  const Shape weight_shape{shape.out, shape.in};
  return cached_inputs<Tensor<float>>(shape,
                                      [&weight_shape](std::int64_t copy) { return random_tensor(weight_shape, 100 + copy); });
}

void run_eigen(benchmark::State& state, const LinearShape& shape) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const InputCache<Tensor<float>>& inputs = row_major_inputs(shape);
  const Tensor<float>& x = inputs.x;
  const std::vector<Tensor<float>>& copies = inputs.copies;
  Tensor<float> y(Shape{shape.rows, shape.out});
  std::size_t next = 0;
  for (auto _ : state) {
    Eigen::Map<const Matrix> weight(copies[next].data(), shape.out, shape.in);
    auto output = y.matrix();
    output.noalias() = x.matrix() * weight.transpose();
    next = (next + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  set_counters(state, shape);
}

#ifdef BLIP_BENCH_HAVE_OPENBLAS
void run_openblas(benchmark::State& state, const LinearShape& shape) {
  const InputCache<Tensor<float>>& inputs = row_major_inputs(shape);
  const Tensor<float>& x = inputs.x;
  const std::vector<Tensor<float>>& copies = inputs.copies;
  Tensor<float> y(Shape{shape.rows, shape.out});
  const int m = static_cast<int>(shape.rows), n = static_cast<int>(shape.out), k = static_cast<int>(shape.in);
  std::size_t next = 0;
  for (auto _ : state) {
    if (m == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, copies[next].data(), k, x.data(), 1, 0.0f, y.data(), 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data(), k, copies[next].data(), k, 0.0f,
                  y.data(), n);
    }
    next = (next + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  set_counters(state, shape);
}
#endif

// One micro-kernel call at a time, one thread, no driver: a full register tile (the path's most rows) times one
// weight panel over 384 inputs (one prefill depth block), cycling through 22 packed row tiles (held in L2, as the
// driver's row block is) against one panel. What the path's tile can do; the linear/ rows add the driver's
// packing, blocking and threads. Names linear_tile/<path>/<precision>/<rows>x384x32.
void run_micro_kernel(benchmark::State& state, KernelPath path, blip::WeightPrecision precision) {
  namespace kernel_detail = blip::kernels::detail;
  constexpr std::int64_t kDepth = 384, kRowTiles = 22;
  const kernel_detail::MicroKernelSet kernels =
      kernel_detail::linear_micro_kernels(path, precision, blip::ActivationPrecision::F32);
  const LinearWeights weights = LinearWeights::prepare(random_tensor(Shape{kernel_detail::kPanelWidth, kDepth}, 3),
                                                       Tensor<float>(), precision, blip::ActivationPrecision::F32);
  const int rows = kernels.max_rows;
  const Tensor<float> packed_rows = random_tensor(Shape{kRowTiles, kDepth * rows}, 4);  // [tile][k][row]
  std::vector<float> out(static_cast<std::size_t>(rows * kernel_detail::kPanelWidth), 0.0f);
  kernel_detail::MicroTile tile;
  tile.depth = kDepth;
  tile.row_stride = rows;
  tile.panel = weights.panel_at(0, 0);
  tile.out = out.data();
  tile.out_stride = kernel_detail::kPanelWidth;
  tile.scale = weights.packed_scales();
  tile.block_scales = precision == blip::WeightPrecision::Int4 ? weights.int4_block_scales(0, 0) : nullptr;
  tile.resume = true;  // an inner depth block of the many-rows driver: from raw sums, to raw sums
  tile.finish = false;
  std::int64_t next = 0;
  for (auto _ : state) {
    tile.rows = packed_rows.data() + next * kDepth * rows;
    next = (next + 1) % kRowTiles;
    kernels.by_rows[rows - 1](tile);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP"] = benchmark::Counter(2.0 * rows * kDepth * kernel_detail::kPanelWidth,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// Attention's q, k and v projections of one decode step (OPT-2.7b: three 2,560 x 2,560 layers of the same rows):
// three linear() calls and one linear_shared_input() call, alternating within each iteration (on a VM whose memory
// bandwidth drifts from minute to minute, only interleaved runs compare the two), weights rotated through >= 512
// MiB of copies. Counters: each way's mean µs per step and weight GB/s, and three_calls_us / shared_us.
void run_query_key_value(benchmark::State& state, std::int64_t rows, blip::WeightPrecision precision,
                         blip::ActivationPrecision activations) {
  constexpr std::int64_t kWidth = 2560;
  // Single 2,560 x 2,560 layers, as many as fill the rotation, taken three at a time.
  const LinearShape layer{"opt27_qkv", rows, kWidth, kWidth};
  const InputCache<LinearWeights>& inputs = cached_inputs<LinearWeights>(
      layer,
      [&](std::int64_t copy) {
        return LinearWeights::prepare(random_tensor(Shape{kWidth, kWidth}, 200 + copy),
                                      random_tensor(Shape{kWidth}, 7), precision, activations);
      },
      std::string(blip::weight_precision_name(precision)) + "/" + blip::activation_precision_name(activations) +
          "/" + std::to_string(rows),
      std::max<std::int64_t>(1, blip::kernels::detail::packed_weight_bits(precision) / 8));
  const std::vector<LinearWeights>& copies = inputs.copies;
  const Tensor<float>& x = inputs.x;
  Tensor<float> y(Shape{3, rows, kWidth});
  float* outputs[3] = {y.data(), y.data() + rows * kWidth, y.data() + 2 * rows * kWidth};
  const std::size_t sets = copies.size() / 3;
  std::size_t next = 0;
  double seconds[2] = {0, 0};  // three calls, shared
  for (auto _ : state) {
    for (int shared = 0; shared < 2; ++shared) {
      const LinearWeights* layers = &copies[3 * next];
      next = (next + 1) % sets;
      const auto start = std::chrono::steady_clock::now();
      if (shared) {
        blip::kernels::linear_shared_input(x.data(), kWidth, rows,
                                           {{&layers[0], outputs[0], kWidth}, {&layers[1], outputs[1], kWidth},
                                            {&layers[2], outputs[2], kWidth}});
      } else {
        for (int i = 0; i < 3; ++i) blip::kernels::linear(x.data(), kWidth, rows, layers[i], outputs[i], kWidth);
      }
      benchmark::ClobberMemory();
      seconds[shared] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  const double steps = static_cast<double>(state.iterations());
  const double bytes = 3.0 * static_cast<double>(copies.front().packed_bytes());
  state.counters["three_calls_us"] = seconds[0] / steps * 1e6;
  state.counters["shared_us"] = seconds[1] / steps * 1e6;
  state.counters["three_calls_GBps"] = bytes * steps / seconds[0] / 1e9;
  state.counters["shared_GBps"] = bytes * steps / seconds[1] / 1e9;
  state.counters["speedup"] = seconds[0] / seconds[1];
}

// The decode GEMV against the streaming read it is bounded by, interleaved: each iteration times one linear() call
// (rows x 2,560 -> 10,240, OPT-2.7b's fc1, weights rotated through >= 512 MiB of copies), a parallel read of the
// packed bytes of another copy (its panels, and an int4 layer's block scales; half a rotation away, so neither
// finds the other's lines in a cache) and a read of the same byte count from a separate 512 MiB huge-page buffer,
// in turn, the order reversing every iteration. On a VM whose bandwidth drifts by half from one minute to the
// next (other tenants), a ratio of two figures measured apart says little; the median of these paired ratios is
// what the "share of the streaming bandwidth" is read from.
// Why the weights' own memory: on the Zen 5 VMs, buffers of one process read at speeds that differ by up to 1.4x
// and stay so (per 52 MB buffer, 40 rounds: 0.85-1.22 of the round's mean, quartiles within +-5%; slices of one
// 512 MiB buffer alike), presumably as the host backs the guest's memory; so a separate buffer can sit on faster
// or slower memory than the weights, which moved the share by up to a quarter between runs (docs/kernels.md, session
// 26). A bare read of the same copies is the ceiling for these weights; the separate buffer is kept beside it.
// Counters: kernel_GBps, read_GBps (the copies) and buffer_read_GBps (bytes over the summed times);
// share_of_read and share_of_buffer_read, the medians over iterations of read time / kernel time per byte.
// Names decode_against_read/<weights>-<activations>/<rows>x2560x10240.
void run_decode_against_read(benchmark::State& state, std::int64_t rows, blip::WeightPrecision precision,
                             blip::ActivationPrecision activations) {
  const LinearShape shape{"decode_against_read", kMaxDecodeAgainstReadRows, 2560, 10240};
  // One set of copies per format, shared by its row counts (x holds the most rows; a call takes the first `rows`).
  const InputCache<LinearWeights>& inputs = cached_inputs<LinearWeights>(
      shape,
      [&](std::int64_t copy) {
        return LinearWeights::prepare(random_tensor(Shape{shape.out, shape.in}, 300 + copy),
                                      random_tensor(Shape{shape.out}, 7), precision, activations);
      },
      std::string(blip::weight_precision_name(precision)) + "/" + blip::activation_precision_name(activations),
      std::max<std::int64_t>(1, blip::kernels::detail::packed_weight_bits(precision) / 8));
  static const blip_bench::StreamingBuffer read_buffer(kRotationBytes, /*huge_pages=*/true);
  const std::vector<LinearWeights>& copies = inputs.copies;
  const int threads = blip::num_threads();
  // What a read of a copy covers: its panels and int4 block scales (the bias and int8 scales, 0.1-0.3% of the
  // bytes, are left out), each rounded down to whole 64-float blocks per item, in as many items as the decode
  // driver makes (parallel_sum_in_items).
  const std::size_t items = static_cast<std::size_t>(blip::kernels::detail::kDecodeItemsPerThread * threads);
  const std::size_t block = std::size_t{64} * items;
  const LinearWeights& first = copies.front();
  const std::size_t panel_floats = static_cast<std::size_t>(first.panel_count() * first.in_features() *
                                                            first.panel_row_bytes()) / sizeof(float) / block * block;
  const std::size_t scale_floats =
      precision == blip::WeightPrecision::Int4
          ? static_cast<std::size_t>(first.panel_count() * first.int4_blocks() * blip::kernels::detail::kPanelWidth) /
                block * block
          : 0;
  const double kernel_bytes = static_cast<double>(first.packed_bytes());
  const double read_bytes = static_cast<double>(panel_floats + scale_floats) * sizeof(float);
  const std::size_t buffer_floats = panel_floats + scale_floats;  // the same byte count from the separate buffer
  const std::size_t buffer_slices = read_buffer.count / buffer_floats;
  Tensor<float> y(Shape{rows, shape.out});
  std::vector<double> shares, buffer_shares;
  double seconds_total[3] = {0, 0, 0};  // kernel, read of a copy, read of the buffer
  std::size_t next_copy = 0, next_slice = 0;
  float read_total = 0;
  for (auto _ : state) {
    double seconds[3] = {0, 0, 0};
    const bool reversed = shares.size() % 2 == 1;
    for (int turn = 0; turn < 3; ++turn) {
      const int part = reversed ? 2 - turn : turn;
      const auto start = std::chrono::steady_clock::now();
      if (part == 0) {
        blip::kernels::linear(inputs.x.data(), shape.in, rows, copies[next_copy], y.data(), shape.out);
        benchmark::ClobberMemory();
      } else if (part == 1) {
        const LinearWeights& other = copies[(next_copy + copies.size() / 2) % copies.size()];
        read_total += blip_bench::parallel_sum_in_items(static_cast<const float*>(other.panel_at(0, 0)), panel_floats,
                                                        threads, items);
        if (scale_floats > 0)
          read_total += blip_bench::parallel_sum_in_items(other.int4_block_scales(0, 0), scale_floats, threads, items);
      } else {
        read_total += blip_bench::parallel_sum_in_items(read_buffer.data.get() + next_slice * buffer_floats,
                                                        buffer_floats, threads, items);
        next_slice = (next_slice + 1) % buffer_slices;
      }
      seconds[part] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    next_copy = (next_copy + 1) % copies.size();
    for (int part = 0; part < 3; ++part) seconds_total[part] += seconds[part];
    shares.push_back(seconds[1] / read_bytes / (seconds[0] / kernel_bytes));
    buffer_shares.push_back(seconds[2] / read_bytes / (seconds[0] / kernel_bytes));
  }
  benchmark::DoNotOptimize(read_total);
  const double steps = static_cast<double>(state.iterations());
  const auto median = [](std::vector<double>& values) {
    if (values.empty()) return 0.0;
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
    return values[values.size() / 2];
  };
  state.counters["kernel_GBps"] = kernel_bytes * steps / seconds_total[0] / 1e9;
  state.counters["read_GBps"] = read_bytes * steps / seconds_total[1] / 1e9;
  state.counters["buffer_read_GBps"] = read_bytes * steps / seconds_total[2] / 1e9;
  state.counters["share_of_read"] = median(shares);
  state.counters["share_of_buffer_read"] = median(buffer_shares);
}

void register_benchmark(const std::string& implementation, const LinearShape& shape,
                        std::function<void(benchmark::State&)> body) {
  const std::string name = "linear/" + implementation + "/" + shape.name + "/" + std::to_string(shape.rows) + "x" +
                           std::to_string(shape.in) + "x" + std::to_string(shape.out);
  benchmark::RegisterBenchmark(name.c_str(), [body](benchmark::State& state) { body(state); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = blip::num_threads();
  benchmark::AddCustomContext("blip_kernel_path", blip::kernels::kernel_path_name(blip::kernels::active_kernel_path()));
  benchmark::AddCustomContext("threads", std::to_string(threads));
#ifdef BLIP_BENCH_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  Eigen::setNbThreads(threads);

  for (const LinearShape& shape : kShapes) {
    register_benchmark("blip", shape, [shape](benchmark::State& state) {
      run_blip(state, shape, blip::kernels::active_kernel_path());
    });
    for (KernelPath path : {KernelPath::Avx2, KernelPath::Portable}) {
      if (path == blip::kernels::active_kernel_path() || !blip::kernels::kernel_path_supported(path)) continue;
      register_benchmark(std::string("blip-") + blip::kernels::kernel_path_name(path), shape,
                         [shape, path](benchmark::State& state) { run_blip(state, shape, path); });
    }
    // Narrow weights (f32 activations): the run-time path and AVX2. Names blip-<precision>, blip-avx2-<precision>.
    for (blip::WeightPrecision precision :
         {blip::WeightPrecision::BF16, blip::WeightPrecision::F16, blip::WeightPrecision::Int8,
          blip::WeightPrecision::Int4}) {
      const std::string suffix = std::string("-") + blip::weight_precision_name(precision);
      register_benchmark("blip" + suffix, shape, [shape, precision](benchmark::State& state) {
        run_blip(state, shape, blip::kernels::active_kernel_path(), precision);
      });
      if (blip::kernels::active_kernel_path() != KernelPath::Avx2 &&
          blip::kernels::kernel_path_supported(KernelPath::Avx2))
        register_benchmark("blip-avx2" + suffix, shape, [shape, precision](benchmark::State& state) {
          run_blip(state, shape, KernelPath::Avx2, precision);
        });
    }
    register_benchmark("blip-bf16-activations", shape, [shape](benchmark::State& state) {
      run_blip(state, shape, blip::kernels::active_kernel_path(), blip::WeightPrecision::BF16,
               blip::ActivationPrecision::BF16);
    });
    // The amx path's tiles beside the CPU's own path where the CPU has AMX (amx is not chosen by itself yet:
    // cpu_dispatch.hpp).
    if (blip::kernels::active_kernel_path() != KernelPath::Amx && blip::kernels::kernel_path_supported(KernelPath::Amx))
      register_benchmark("blip-amx-bf16-activations", shape, [shape](benchmark::State& state) {
        run_blip(state, shape, KernelPath::Amx, blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16);
      });
    register_benchmark("blip-int8-activations", shape, [shape](benchmark::State& state) {
      run_blip(state, shape, blip::kernels::active_kernel_path(), blip::WeightPrecision::Int8,
               blip::ActivationPrecision::Int8);
    });
    register_benchmark("blip-int4-int8-activations", shape, [shape](benchmark::State& state) {
      run_blip(state, shape, blip::kernels::active_kernel_path(), blip::WeightPrecision::Int4,
               blip::ActivationPrecision::Int8);
    });
#if BLIP_X86_DISPATCH
    // The avx2 path's integer kernels (detail/linear_avx2_integer.hpp) beside the CPU's own path: the ones it runs
    // here (vpdpbusd with AVX-VNNI), and where the CPU has AVX-VNNI also the vpmaddubsw ones an AVX2 CPU without
    // it runs. Names blip-avx2[-vpmaddubsw]-int8-activations, blip-avx2[-vpmaddubsw]-int4-int8-activations.
    for (blip::WeightPrecision precision : {blip::WeightPrecision::Int8, blip::WeightPrecision::Int4}) {
      if (!blip::kernels::kernel_path_supported(KernelPath::Avx2)) break;
      const std::string suffix = precision == blip::WeightPrecision::Int8 ? "-int8-activations" : "-int4-int8-activations";
      if (blip::kernels::active_kernel_path() != KernelPath::Avx2)
        register_benchmark("blip-avx2" + suffix, shape, [shape, precision](benchmark::State& state) {
          run_blip(state, shape, KernelPath::Avx2, precision, blip::ActivationPrecision::Int8);
        });
      if (blip::kernels::avx2_int8_dot_supported())
        register_benchmark("blip-avx2-vpmaddubsw" + suffix, shape, [shape, precision](benchmark::State& state) {
          namespace kernel_detail = blip::kernels::detail;
          run_blip_kernels(state, shape,
                           kernel_detail::linear_micro_kernels_avx2_integer<kernel_detail::Avx2MaddDot>(precision),
                           blip::ActivationPrecision::Int8);
        });
    }
#endif
#ifdef BLIP_BENCH_HAVE_OPENBLAS
    register_benchmark("openblas", shape, [shape](benchmark::State& state) { run_openblas(state, shape); });
#endif
    register_benchmark("eigen", shape, [shape](benchmark::State& state) { run_eigen(state, shape); });
  }
  // q, k and v of a decode step: three calls against one, interleaved (linear_qkv/<weights>-<activations>/...).
  for (const Format format : {Format{blip::WeightPrecision::F32, blip::ActivationPrecision::F32},
                              Format{blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16},
                              Format{blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8}}) {
    for (std::int64_t rows : {1, 8, 12}) {
      const std::string name = std::string("linear_qkv/") + blip::weight_precision_name(format.weights) + "-" +
                               blip::activation_precision_name(format.activations) + "/" + std::to_string(rows) +
                               "x2560x3x2560";
      benchmark::RegisterBenchmark(name.c_str(), [format, rows](benchmark::State& state) {
        run_query_key_value(state, rows, format.weights, format.activations);
      })->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  // Decode against an interleaved streaming read (decode_against_read/<weights>-<activations>/<rows>x2560x10240):
  // the formats the issue sets bandwidth targets for, and f32, on the run-time path (BLIP_KERNEL forces another).
  for (const Format format : {Format{blip::WeightPrecision::F32, blip::ActivationPrecision::F32},
                              Format{blip::WeightPrecision::BF16, blip::ActivationPrecision::BF16},
                              Format{blip::WeightPrecision::Int8, blip::ActivationPrecision::Int8},
                              Format{blip::WeightPrecision::Int4, blip::ActivationPrecision::Int8}}) {
    for (std::int64_t rows : {1, 2, 4, 8, 12}) {
      const std::string name = std::string("decode_against_read/") + blip::weight_precision_name(format.weights) +
                               "-" + blip::activation_precision_name(format.activations) + "/" +
                               std::to_string(rows) + "x2560x10240";
      benchmark::RegisterBenchmark(name.c_str(), [format, rows](benchmark::State& state) {
        run_decode_against_read(state, rows, format.weights, format.activations);
      })->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  for (KernelPath path : {KernelPath::Avx512, KernelPath::Avx2, KernelPath::Portable}) {
    if (!blip::kernels::kernel_path_supported(path)) continue;
    for (blip::WeightPrecision precision : {blip::WeightPrecision::F32, blip::WeightPrecision::BF16,
                                            blip::WeightPrecision::F16, blip::WeightPrecision::Int8,
                                            blip::WeightPrecision::Int4}) {
      const int rows = blip::kernels::detail::linear_micro_kernels(path, precision).max_rows;
      const std::string name = std::string("linear_tile/") + blip::kernels::kernel_path_name(path) + "/" +
                               blip::weight_precision_name(precision) + "/" + std::to_string(rows) + "x384x32";
      benchmark::RegisterBenchmark(name.c_str(), [path, precision](benchmark::State& state) {
        run_micro_kernel(state, path, precision);
      })->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
