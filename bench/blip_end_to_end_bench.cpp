// End-to-end BLIP benchmark: the same work, weights and thread count as
// bench/pytorch_blip_baseline.py, so docs/performance.md can give blipcpp's
// time as a ratio of PyTorch's.
//
//   ../shared/oracle/env.sh bench/pytorch_blip_baseline.py --out /tmp/blip-bench   # writes the models, times PyTorch
//   BLIP_BENCH_MODEL_DIR=/tmp/blip-bench OMP_NUM_THREADS=2 build/bench/blip_end_to_end_bench
//
// Without BLIP_BENCH_MODEL_DIR every benchmark reports that it was skipped.
// BLIP_BENCH_PRECISION=as-stored|f32|bf16|f16|int8|int4 picks the Linear weights' precision (default as-stored),
// BLIP_BENCH_ACTIVATIONS=f32|bf16|int8 what bf16 / int8 weights multiply (default f32); both are printed in the context.
// BLIP_BENCH_BUFFER_CACHE_MIB=N: the buffer cache's limit in MiB (0: off; default: the library's).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "blip/blip.hpp"
#include "process_memory.hpp"

namespace {

std::string model_root() {
  const char* root = std::getenv("BLIP_BENCH_MODEL_DIR");
  return root ? root : "";
}

struct Inputs {
  blip::Tensor<const float> pixel_values;        // [1, 3, 384, 384]
  blip::Tensor<std::int64_t> question_input_ids;  // [1, 10]
};

const Inputs& inputs() {
  static const Inputs loaded = [] {
    const blip::SafetensorsFile file = blip::SafetensorsFile::open(model_root() + "/inputs.safetensors");
    return Inputs{file.to_f32("pixel_values"), file.to_i64("question_input_ids")};
  }();
  return loaded;
}

blip::WeightOptions weight_options() {
  blip::WeightOptions options;
  const char* precision = std::getenv("BLIP_BENCH_PRECISION");
  const char* activations = std::getenv("BLIP_BENCH_ACTIVATIONS");
  blip::check(precision == nullptr || blip::parse_weight_precision(precision, options.linear_precision),
              "BLIP_BENCH_PRECISION: expected as-stored, f32, bf16, f16, int8 or int4");
  blip::check(activations == nullptr || blip::parse_activation_precision(activations, options.linear_activations),
              "BLIP_BENCH_ACTIVATIONS: expected f32, bf16 or int8");
  return options;
}

template <class Model>
const Model& load_model(const std::string& folder) {
  static const std::unique_ptr<const Model> model = [&] {
    const std::string directory = model_root() + "/" + folder;
    const blip::WeightStore store = blip::WeightStore::open(directory, weight_options());
    const blip::BlipModelConfig config = blip::make_blip_model_config(blip::load_model_config(directory).blip);
    return std::make_unique<const Model>(Model::load(store, config));
  }();
  return *model;
}

bool skip_without_models(benchmark::State& state) {
  if (!model_root().empty()) return false;
  state.SkipWithError("set BLIP_BENCH_MODEL_DIR to the folder bench/pytorch_blip_baseline.py --out wrote");
  return true;
}

blip::generation::GenerationOptions exactly(std::int64_t new_tokens, std::int64_t beams) {
  blip::generation::GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.min_new_tokens = new_tokens;  // as the baseline: no early [SEP], always the same work
  options.num_beams = beams;
  return options;
}

void caption_vision_encoder(benchmark::State& state) {
  if (skip_without_models(state)) return;
  const auto& model = load_model<blip::BlipForConditionalGeneration>("caption");
  for (auto _ : state) benchmark::DoNotOptimize(model.vision_model.forward(inputs().pixel_values));
  state.counters["max_rss_MiB"] = blip::bench::peak_rss_mib();
}

void caption_generate(benchmark::State& state, std::int64_t beams) {
  if (skip_without_models(state)) return;
  const auto& model = load_model<blip::BlipForConditionalGeneration>("caption");
  for (auto _ : state) {
    // As HF generate(pixel_values=...): the vision encoder is part of the call.
    const blip::ImageEmbeddings images = model.vision_model.forward(inputs().pixel_values);
    blip::BlipDecoderSession session = model.caption_session(images, {}, {});
    benchmark::DoNotOptimize(blip::generation::generate_session(session, exactly(20, beams)));
  }
  state.counters["max_rss_MiB"] = blip::bench::peak_rss_mib();
}

// N images captioned in one call (greedy, 20 new tokens each): the GEMMs get N times the rows and each decode
// step streams every weight once for all N rows, so the time per image should fall with N. The counter
// seconds_per_image is the figure to compare across N.
void caption_batch(benchmark::State& state, std::int64_t images) {
  if (skip_without_models(state)) return;
  const auto& model = load_model<blip::BlipForConditionalGeneration>("caption");
  const blip::Tensor<const float>& one = inputs().pixel_values;
  blip::Tensor<float> batch(blip::Shape{images, one.dim(1), one.dim(2), one.dim(3)});
  for (std::int64_t image = 0; image < images; ++image)
    std::copy(one.data(), one.data() + one.numel(), batch.data() + image * one.numel());
  for (auto _ : state) {
    const blip::ImageEmbeddings embeddings = model.vision_model.forward(batch);
    blip::BlipDecoderSession session = model.caption_session(embeddings, {}, {});
    benchmark::DoNotOptimize(blip::generation::generate_session(session, exactly(20, 1)));
  }
  state.counters["seconds_per_image"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
  state.counters["max_rss_MiB"] = blip::bench::peak_rss_mib();
}

void vqa_generate(benchmark::State& state) {
  if (skip_without_models(state)) return;
  const auto& model = load_model<blip::BlipForQuestionAnswering>("vqa");
  for (auto _ : state) {
    const blip::ImageEmbeddings images = model.vision_model.forward(inputs().pixel_values);
    blip::BlipDecoderSession session = model.answer_session(images, inputs().question_input_ids, {});
    benchmark::DoNotOptimize(blip::generation::generate_session(session, exactly(5, 1)));
  }
  state.counters["max_rss_MiB"] = blip::bench::peak_rss_mib();
}

}  // namespace

// The precision, kernel path and buffer cache in the output's context. BLIP_BENCH_BUFFER_CACHE_MIB sets the
// buffer cache's limit (core/buffer_cache.hpp; 0 turns it off), to measure what it saves in one build.
const bool kContextAdded = [] {
  if (const char* cache = std::getenv("BLIP_BENCH_BUFFER_CACHE_MIB"))
    blip::set_buffer_cache_limit(static_cast<std::size_t>(std::stoull(cache)) << 20);
  benchmark::AddCustomContext("buffer_cache_MiB", std::to_string(blip::buffer_cache_statistics().limit_bytes >> 20));
  const blip::WeightOptions options = weight_options();
  benchmark::AddCustomContext("linear_precision", blip::weight_precision_name(options.linear_precision));
  benchmark::AddCustomContext("linear_activations", blip::activation_precision_name(options.linear_activations));
  benchmark::AddCustomContext("kernel_path", blip::kernels::kernel_path_name(blip::kernels::active_kernel_path()));
  return true;
}();

// Every benchmark first runs untimed for a second (at least one call), as the PyTorch script times after one
// warm-up: the first call of a new shape faults in its buffers (the buffer cache then keeps them), and an 8-image
// call takes 4 s, so without a warm-up its only timed call would be that first one.
namespace {
void end_to_end_timing(benchmark::internal::Benchmark* settings) {
  settings->Unit(benchmark::kMillisecond)->MinTime(2.0)->MinWarmUpTime(1.0);
}
}  // namespace

BENCHMARK(caption_vision_encoder)->Apply(end_to_end_timing);
BENCHMARK_CAPTURE(caption_generate, 20_greedy, 1)->Apply(end_to_end_timing);
BENCHMARK_CAPTURE(caption_generate, 20_beam3, 3)->Apply(end_to_end_timing);
BENCHMARK_CAPTURE(caption_batch, 1_image, 1)->Apply(end_to_end_timing);
BENCHMARK_CAPTURE(caption_batch, 4_images, 4)->Apply(end_to_end_timing);
BENCHMARK_CAPTURE(caption_batch, 8_images, 8)->Apply(end_to_end_timing);
BENCHMARK(vqa_generate)->Apply(end_to_end_timing);

BENCHMARK_MAIN();
