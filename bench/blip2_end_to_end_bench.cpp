// End-to-end BLIP-2 benchmark: the same full-size model folder, inputs, work
// and thread count as `bench/pytorch_blip2_baseline.py time`, with the same
// measurement names and statistic, so docs/performance.md can set the two side
// by side.
//
//   ../shared/oracle/env.sh bench/pytorch_blip2_baseline.py make --out /work/bench-models/blip2-opt-2.7b   # once
//   OMP_NUM_THREADS=2 build/bench/blip2_end_to_end_bench /work/bench-models/blip2-opt-2.7b [--runs 3] [--new-tokens 20]
//
// Prints one JSON line per measurement (median seconds over --runs after one
// warm-up): <variant>_encode_image (vision model + Q-Former + language
// projection), _time_to_first_token (all of generate with max_new_tokens = 1:
// encode, the prompt's prefill, the first token), _generate_<N+1>,
// _decode_per_token ((generate_<N+1> - time_to_first_token) / N), the
// generated ids, and _memory (RSS after loading, peak RSS while running and
// over the whole process). Greedy, with min_new_tokens = max_new_tokens so an
// early EOS cannot shorten the work. Any folder Blip2ForConditionalGeneration
// loads works unchanged (OPT, or Flan-T5: `make --variant blip2-flan-t5-xl`).
//
// Not a Google Benchmark program: each call takes seconds, and the figures
// must be computed exactly as the Python side computes them.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/blip.hpp"
#include "process_memory.hpp"

namespace {

struct Options {
  std::string model_dir;
  int threads = 0;  // 0: OpenMP's default (OMP_NUM_THREADS)
  int runs = 3;
  std::int64_t new_tokens = 20;  // decode steps timed after the first token
  blip::WeightPrecision precision = blip::WeightPrecision::AsStored;  // --precision: the Linear weights' precision
  blip::ActivationPrecision activations = blip::ActivationPrecision::F32;  // --activations: what bf16 / int8 weights multiply
};

// What `pytorch_blip2_baseline.py make` stored beside the weights.
struct BenchInputs {
  blip::Tensor<const float> pixel_values;  // [1, 3, S, S]
  blip::Tensor<std::int64_t> input_ids;    // [1, T]: <image> × Q (image_token_index configs), then the prompt
  std::string variant;                     // e.g. "blip2-opt-2.7b"
};

blip::generation::GenerationOptions exactly(std::int64_t new_tokens) {
  blip::generation::GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.min_new_tokens = new_tokens;  // as the baseline: no early EOS, always the same work
  return options;
}

// What generate() runs before the language model: vision model, Q-Former, language projection.
blip::Blip2ImageQueries encode_image(const blip::Blip2ForConditionalGeneration& model, const BenchInputs& inputs) {
  return model.image_queries(model.vision_model.forward(inputs.pixel_values));
}

// HF generate(pixel_values=..., input_ids=...), greedy, exactly `new_tokens`
// new tokens, the image encoded inside the call; returns row 0. The session
// is whatever the model's language model decodes with (generate_session runs any).
std::vector<std::int64_t> generate(const blip::Blip2ForConditionalGeneration& model, const BenchInputs& inputs,
                                   std::int64_t new_tokens) {
  const blip::Blip2ImageQueries queries = encode_image(model, inputs);
  auto session = model.generation_session(queries, inputs.input_ids, {});
  const blip::Tensor<std::int64_t> sequences =
      blip::generation::generate_session(session, exactly(new_tokens)).sequences;
  return {sequences.data(), sequences.data() + sequences.dim(1)};
}

// blip2-opt-2.7b -> blip2_opt_2_7b, as the Python script names its lines.
std::string measurement_prefix(std::string variant) {
  for (char& character : variant)
    if (character == '-' || character == '.') character = '_';
  return variant;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2.0;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int index = 1; index < argc; ++index) {
    const std::string argument = argv[index];
    const auto value = [&]() -> std::string {
      blip::check(index + 1 < argc, argument, " needs a value");
      return argv[++index];
    };
    if (argument == "--threads") {
      options.threads = std::stoi(value());
    } else if (argument == "--runs") {
      options.runs = std::stoi(value());
    } else if (argument == "--new-tokens") {
      options.new_tokens = std::stoll(value());
    } else if (argument == "--precision") {
      const std::string name = value();
      blip::check(blip::parse_weight_precision(name, options.precision),
                  "--precision expects as-stored, f32, bf16, f16, int8 or int4, got '", name, "'");
    } else if (argument == "--activations") {
      const std::string name = value();
      blip::check(blip::parse_activation_precision(name, options.activations),
                  "--activations expects f32, bf16 or int8, got '", name, "'");
    } else if (argument == "--help" || argument == "-h") {
      std::printf("usage: blip2_end_to_end_bench MODEL_DIR [--threads N] [--runs N] [--new-tokens N] [--precision P]\n"
                  "                              [--activations f32|bf16|int8]\n"
                  "MODEL_DIR: a folder bench/pytorch_blip2_baseline.py make wrote (weights + bench_inputs.safetensors)\n");
      std::exit(0);
    } else if (options.model_dir.empty() && argument.rfind("--", 0) != 0) {
      options.model_dir = argument;
    } else {
      blip::fail("unknown argument '", argument, "' (see --help)");
    }
  }
  blip::check(!options.model_dir.empty(), "give the model folder (see --help)");
  blip::check(options.runs >= 1 && options.new_tokens >= 1, "--runs and --new-tokens must be >= 1");
  return options;
}

int run(const Options& options) {
  if (options.threads > 0) blip::set_num_threads(options.threads);
  const blip::SafetensorsFile inputs_file = blip::SafetensorsFile::open(options.model_dir + "/bench_inputs.safetensors");
  const auto variant = inputs_file.metadata().find("variant");
  blip::check(variant != inputs_file.metadata().end(), inputs_file.path(), ": no 'variant' in the metadata");
  const BenchInputs inputs{inputs_file.to_f32("pixel_values"), inputs_file.to_i64("input_ids"), variant->second};
  const std::string prefix = measurement_prefix(inputs.variant);
  const int threads = blip::num_threads();
  const auto report = [&](const std::string& measurement, nlohmann::ordered_json fields) {
    nlohmann::ordered_json line = {{"name", prefix + "_" + measurement},
                                   {"engine", "blipcpp"},
                                   {"threads", threads},
                                   {"precision", blip::weight_precision_name(options.precision)},
                                   {"activations", blip::activation_precision_name(options.activations)}};
    line.update(fields);
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  };

  const auto load_start = std::chrono::steady_clock::now();
  const blip::ModelConfig config = blip::load_model_config(options.model_dir);
  blip::WeightOptions weight_options;
  weight_options.linear_precision = options.precision;
  weight_options.linear_activations = options.activations;
  const blip::WeightStore store = blip::WeightStore::open(options.model_dir, weight_options);
  const auto model = blip::Blip2ForConditionalGeneration::load(store, blip::make_blip2_model_config(config.blip2));
  const double load_seconds = seconds_since(load_start);
  const double rss_after_load = blip::bench::rss_mib(), peak_while_loading = blip::bench::peak_rss_mib();
  // Part of the RSS is freed buffers the buffer cache keeps for the next request (core/buffer_cache.hpp).
  const double cached_after_load = static_cast<double>(blip::buffer_cache_statistics().cached_bytes) / (1 << 20);
  const bool reset = blip::bench::reset_peak_rss();

  const auto timed = [&](const std::string& measurement, const std::function<void()>& call) {
    call();  // warm-up
    std::vector<double> times;
    for (int run = 0; run < options.runs; ++run) {
      const auto start = std::chrono::steady_clock::now();
      call();
      times.push_back(seconds_since(start));
    }
    report(measurement, {{"median_seconds", median(times)}, {"runs", times}});
    return median(times);
  };
  timed("encode_image", [&] { encode_image(model, inputs); });
  const double first = timed("time_to_first_token", [&] { generate(model, inputs, 1); });
  const std::int64_t decode_tokens = options.new_tokens;
  const double total =
      timed("generate_" + std::to_string(decode_tokens + 1), [&] { generate(model, inputs, decode_tokens + 1); });
  report("decode_per_token", {{"median_seconds", (total - first) / static_cast<double>(decode_tokens)},
                              {"tokens", decode_tokens}});
  report("generated_ids", {{"ids", generate(model, inputs, decode_tokens + 1)}});
  const double peak_while_running = blip::bench::peak_rss_mib();
  report("memory", {{"load_seconds", load_seconds},
                    {"rss_after_load_mib", rss_after_load},
                    {"peak_rss_loading_mib", peak_while_loading},
                    {"peak_rss_running_mib", reset ? nlohmann::ordered_json(peak_while_running) : nlohmann::ordered_json()},
                    {"peak_rss_mib", std::max(peak_while_loading, peak_while_running)},
                    {"buffer_cache_after_load_mib", cached_after_load},
                    {"buffer_cache_mib", static_cast<double>(blip::buffer_cache_statistics().cached_bytes) / (1 << 20)},
                    {"prompt_tokens", inputs.input_ids.dim(1)},
                    {"kernel_path", blip::kernels::kernel_path_name(blip::kernels::active_kernel_path())},
                    {"load_average", blip::bench::load_average()}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "blip2_end_to_end_bench: %s\n", error.what());
    return 1;
  }
}
