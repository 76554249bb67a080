// One loaded model serves several threads at once: each thread runs its own
// request (its own session and caches) and gets exactly what a serial run
// gets. The model, the weights and the tokenizer are shared read-only.
// CI also runs this test under ThreadSanitizer (.ci/run, "tsan" stage), which
// reports any data race between the requests.
#include <doctest/doctest.h>

#include <functional>
#include <thread>
#include <vector>

#include "blip/blip.hpp"
#include "test_support.hpp"

namespace blip_concurrency_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

blip::Tensor<float> random_pixels(std::int64_t image_size, std::int64_t batch, unsigned seed) {
  blip::Tensor<float> pixels(blip::Shape{batch, 3, image_size, image_size});
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::int64_t i = 0; i < pixels.numel(); ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    pixels.data()[i] = static_cast<float>(static_cast<std::int64_t>(state % 2001) - 1000) / 500.0f;
  }
  return pixels;
}

// Runs requests 0 .. count-1 one after the other, then all at once on their own threads, and checks that
// each concurrent result equals its serial one bit for bit.
void check_concurrent_equals_serial(int count, const std::function<blip::generation::GenerationOutput(int)>& run) {
  std::vector<blip::generation::GenerationOutput> serial, concurrent(static_cast<std::size_t>(count));
  for (int request = 0; request < count; ++request) serial.push_back(run(request));
  std::vector<std::thread> threads;
  for (int request = 0; request < count; ++request) {
    threads.emplace_back([&, request] { concurrent[static_cast<std::size_t>(request)] = run(request); });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t request = 0; request < serial.size(); ++request) {
    INFO("request ", request);
    REQUIRE(concurrent[request].sequences.shape() == serial[request].sequences.shape());
    for (std::int64_t i = 0; i < serial[request].sequences.numel(); ++i) {
      CHECK(concurrent[request].sequences.data()[i] == serial[request].sequences.data()[i]);
    }
    REQUIRE(concurrent[request].sequence_scores.size() == serial[request].sequence_scores.size());
    for (std::size_t i = 0; i < serial[request].sequence_scores.size(); ++i) {
      CHECK(concurrent[request].sequence_scores[i] == serial[request].sequence_scores[i]);
    }
  }
}

}  // namespace

TEST_CASE("a shared BlipForConditionalGeneration gives every thread the serial result") {
  const std::string directory = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(directory, "blip_caption fixture")) return;
  const blip::WeightStore store = blip::WeightStore::open(directory);
  const blip::BlipForConditionalGeneration model = blip::BlipForConditionalGeneration::load(
      store, blip::make_blip_model_config(blip::load_model_config(directory).blip));

  constexpr int kRequests = 6;
  auto run = [&](int request) {
    const blip::Tensor<float> pixels = random_pixels(model.config.vision.image_size, 1 + request % 2, request);
    const blip::ImageEmbeddings images = model.vision_model.forward(pixels);
    blip::BlipDecoderSession session = model.caption_session(images, {}, {});
    blip::generation::GenerationOptions options;
    options.max_new_tokens = 8;
    options.num_beams = 1 + request % 3;  // greedy and beam search side by side
    return blip::generation::generate_session(session, options);
  };

  check_concurrent_equals_serial(kRequests, run);
}

TEST_CASE("a shared Blip2ForConditionalGeneration (OPT and Flan-T5) gives every thread the serial result") {
  for (const char* fixture : {"blip2_opt", "blip2_t5"}) {
    const std::string directory = blip::test::fixture(fixture);
    if (!blip::test::have_or_skip(directory, fixture)) continue;
    CAPTURE(fixture);
    const blip::WeightStore store = blip::WeightStore::open(directory);
    const blip::Blip2ForConditionalGeneration model = blip::Blip2ForConditionalGeneration::load(
        store, blip::make_blip2_model_config(blip::load_model_config(directory).blip2));

    constexpr int kRequests = 6;
    auto run = [&](int request) {
      const blip::Tensor<float> pixels = random_pixels(model.config.vision.image_size, 1 + request % 2, request);
      const blip::Blip2ImageQueries queries = model.image_queries(model.vision_model.forward(pixels));
      auto session = model.generation_session(queries, {}, {});
      blip::generation::GenerationOptions options;
      options.max_new_tokens = 8;
      options.num_beams = 1 + request % 3;
      return blip::generation::generate_session(session, options);
    };

    check_concurrent_equals_serial(kRequests, run);
  }
}

}  // namespace blip_concurrency_test
