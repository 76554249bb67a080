// No allocation per generated token: once a BLIP decoding session has started
// (caches, activations and logits sized for the whole request), its decoding
// steps must not touch the heap. Counted by replacing operator new in this
// test program.
#include <doctest/doctest.h>

#include <variant>

#include "blip/blip.hpp"
#include "test_support.hpp"

#include "allocation_counter.hpp"

namespace blip_allocation_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

// Starts `session` for `images` × `beams` rows, then counts allocations over
// 39 reorder + step rounds (after one warm-up step, which may size per-thread
// scratch for one-token calls). 40 steps outgrow the 17 image tokens, so the
// self-attention rows outgrow the cross-attention ones.
template <class Session>
void check_steps_allocate_nothing(Session& session, std::int64_t images, std::int64_t beams) {
  constexpr std::int64_t kSteps = 40;
  session.start(beams, kSteps + 1);
  std::vector<std::int64_t> tokens(static_cast<std::size_t>(images * beams), 1037);
  std::vector<std::int64_t> order(tokens.size());
  for (std::size_t row = 0; row < order.size(); ++row) order[row] = static_cast<std::int64_t>(row / beams * beams);
  session.step(tokens.data());
  const std::int64_t before = blip::test::allocation_count.load();
  for (std::int64_t step = 1; step < kSteps; ++step) {
    session.reorder(order.data());
    session.step(tokens.data());
  }
  CHECK(blip::test::allocation_count.load() - before == 0);
}

}  // namespace

TEST_CASE("BLIP decoding steps allocate nothing, greedy or with beams") {
  const std::string directory = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(directory, "blip_caption fixture")) return;
  const blip::WeightStore store = blip::WeightStore::open(directory);
  const blip::BlipForConditionalGeneration model = blip::BlipForConditionalGeneration::load(
      store, blip::make_blip_model_config(blip::load_model_config(directory).blip));
  blip::Tensor<float> pixels(blip::Shape{2, 3, model.config.vision.image_size, model.config.vision.image_size});
  const blip::ImageEmbeddings images = model.vision_model.forward(pixels);

  for (std::int64_t beams : {1, 3}) {
    CAPTURE(beams);
    blip::BlipDecoderSession session = model.caption_session(images, {}, {});
    check_steps_allocate_nothing(session, 2, beams);
  }
}

TEST_CASE("BLIP-2 decoding steps (OPT and T5) allocate nothing, greedy or with beams") {
  for (const char* kind : {"blip2_opt", "blip2_t5"}) {
    CAPTURE(kind);
    const std::string directory = blip::test::fixture(kind);
    if (!blip::test::have_or_skip(directory, kind)) continue;
    const blip::WeightStore store = blip::WeightStore::open(directory);
    const blip::Blip2ForConditionalGeneration model = blip::Blip2ForConditionalGeneration::load(
        store, blip::make_blip2_model_config(blip::load_model_config(directory).blip2));
    blip::Tensor<float> pixels(blip::Shape{2, 3, model.config.vision.image_size, model.config.vision.image_size});
    pixels.fill(0.1f);
    const blip::Blip2ImageQueries queries = model.image_queries(model.vision_model.forward(pixels));

    for (std::int64_t beams : {1, 3}) {
      CAPTURE(beams);
      blip::Blip2GenerationSession variant = model.generation_session(queries, {}, {});
      std::visit([&](auto& session) { check_steps_allocate_nothing(session, 2, beams); }, variant);
    }
  }
}

}  // namespace blip_allocation_test
