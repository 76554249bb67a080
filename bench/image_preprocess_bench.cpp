// Image preprocessing cost: Pillow-exact bicubic resize (optimized vs naive
// reference) and the whole BlipImageProcessor step, at BLIP's (384) and
// BLIP-2's (224) sizes from typical photo sizes. Decoding is measured on a real
// JPEG when BLIP_ASSETS_DIR points at the assets folder (skipped otherwise):
//   BLIP_ASSETS_DIR=/path/to/shared/assets ./image_preprocess_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "blip/io/image.hpp"

namespace {

blip::Image photo_like(int width, int height) {
  blip::Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < image.rgb.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    image.rgb[i] = static_cast<std::uint8_t>((i / 3 % width) / 4 + (state >> 28));  // smooth ramp + noise
  }
  return image;
}

void BM_ResizeBicubic(benchmark::State& state) {
  const blip::Image image = photo_like(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const int size = static_cast<int>(state.range(2));
  for (auto _ : state) benchmark::DoNotOptimize(blip::resize_bicubic(image, size, size));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ResizeBicubic)
    ->Args({640, 480, 224})
    ->Args({640, 480, 384})
    ->Args({1500, 1414, 384})
    ->Unit(benchmark::kMillisecond);

void BM_ResizeBicubicNaive(benchmark::State& state) {
  const blip::Image image = photo_like(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const int size = static_cast<int>(state.range(2));
  std::vector<std::uint8_t> output(static_cast<std::size_t>(size) * size * 3);
  for (auto _ : state) {
    blip::resample_u8_naive(image.rgb.data(), image.width, image.height, 3, output.data(), size, size);
    benchmark::DoNotOptimize(output.data());
  }
}
BENCHMARK(BM_ResizeBicubicNaive)->Args({640, 480, 224})->Unit(benchmark::kMillisecond);

void BM_Preprocess(benchmark::State& state) {
  const blip::Image image = photo_like(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  blip::ImageProcessorConfig config;
  config.height = config.width = static_cast<int>(state.range(2));
  std::vector<float> pixel_values(static_cast<std::size_t>(3) * config.height * config.width);
  for (auto _ : state) {
    blip::preprocess_into(image, config, pixel_values.data());
    benchmark::DoNotOptimize(pixel_values.data());
  }
}
BENCHMARK(BM_Preprocess)->Args({640, 480, 224})->Args({640, 480, 384})->Unit(benchmark::kMillisecond);

void BM_DecodeJpeg(benchmark::State& state) {
  const char* assets = std::getenv("BLIP_ASSETS_DIR");
  const std::string path = std::string(assets ? assets : "") + "/images/toys_progressive_420.jpg";
  if (!assets || !std::filesystem::exists(path)) {
    state.SkipWithError("set BLIP_ASSETS_DIR to the assets folder to measure decoding");
    return;
  }
  std::ifstream stream(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  for (auto _ : state) benchmark::DoNotOptimize(blip::decode_image(bytes.data(), bytes.size(), path));
}
BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
