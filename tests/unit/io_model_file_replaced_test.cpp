// A model file changed under a running process (hardening, hole 5).
//
// Truncating a file that a process has memory-mapped (or overwriting it in
// place with `cp`, which truncates first) makes every later read of the lost
// pages a SIGBUS. blipcpp's defences, checked here on the blip_caption fixture
// copied to a scratch folder:
//   * WeightResidency::Copied (the default): once loaded, the model reads
//     nothing from its files, so it captions exactly as before after the file
//     is truncated and then overwritten with other bytes;
//   * WeightResidency::Mapped keeps views of the file: the same truncation
//     then faults, and with report_mapped_file_faults() (every blipcpp program
//     installs it) the process ends with status 1 and a message naming the
//     file instead of "Bus error". This half runs in a forked child, first in
//     the file so that no OpenMP thread pool exists yet when it forks.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "test_support.hpp"

namespace io_model_file_replaced_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace fs = std::filesystem;

namespace {

// The blip_caption fixture's model files in a scratch folder of their own.
fs::path copy_fixture(const std::string& name) {
  const fs::path directory = blip::test::scratch_dir("model_file_replaced", name);
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(fs::path(blip::test::fixture("blip_caption")) / file, directory / file,
                  fs::copy_options::overwrite_existing);
  }
  return directory;
}

blip::Tensor<float> test_pixels(const blip::BlipModelConfig& config) {
  blip::Tensor<float> pixels(blip::Shape{1, 3, config.vision.image_size, config.vision.image_size});
  for (std::int64_t i = 0; i < pixels.numel(); ++i) pixels.data()[i] = static_cast<float>(i % 97) / 48.0f - 1.0f;
  return pixels;
}

std::vector<std::int64_t> caption_ids(const blip::BlipForConditionalGeneration& model) {
  const blip::ImageEmbeddings images = model.vision_model.forward(test_pixels(model.config));
  blip::BlipDecoderSession session = model.caption_session(images, {}, {});
  blip::generation::GenerationOptions options;
  options.max_new_tokens = 6;
  options.num_beams = 2;
  const blip::generation::GenerationOutput output = blip::generation::generate_session(session, options);
  return std::vector<std::int64_t>(output.sequences.data(), output.sequences.data() + output.sequences.numel());
}

blip::BlipForConditionalGeneration load(const blip::WeightStore& store, const fs::path& directory) {
  return blip::BlipForConditionalGeneration::load(
      store, blip::make_blip_model_config(blip::load_model_config(directory.string()).blip));
}

}  // namespace

TEST_CASE("with mapped weights, a file truncated under the process ends it with a message naming the file") {
  if (!blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture")) return;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  blip::test::skip("the sanitizers' own SIGBUS handling replaces the one under test");
  return;
#endif
  const fs::path directory = copy_fixture("mapped");
  const std::string weights = (directory / "model.safetensors").string();
  int pipe_ends[2];
  REQUIRE(::pipe(pipe_ends) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: never returns into doctest.
    ::close(pipe_ends[0]);
    ::dup2(pipe_ends[1], 2);
    try {
      blip::report_mapped_file_faults("model_file_test");
      blip::set_num_threads(1);
      const blip::WeightStore store = blip::WeightStore::open(directory.string(), blip::WeightResidency::Mapped);
      const blip::BlipForConditionalGeneration model = load(store, directory);
      fs::resize_file(weights, 0);
      caption_ids(model);  // reads the LayerNorm and embedding views: the fault
      ::_exit(3);          // no fault: the model did not read its file
    } catch (...) {
      ::_exit(4);
    }
  }
  ::close(pipe_ends[1]);
  std::string message;
  char buffer[512];
  for (ssize_t got; (got = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;) message.append(buffer, got);
  ::close(pipe_ends[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child stderr: ", message);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(message.find("model_file_test: " + weights + ": the memory-mapped model file changed under this process") !=
        std::string::npos);
  CHECK(message.find("`mv`") != std::string::npos);
}

TEST_CASE("with copied weights (the default), a loaded model survives its file being truncated and overwritten") {
  if (!blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture")) return;
  const fs::path directory = copy_fixture("copied");
  const fs::path weights = directory / "model.safetensors";
  const std::uintmax_t size = fs::file_size(weights);
  const blip::WeightStore store = blip::WeightStore::open(directory.string());
  CHECK(store.residency() == blip::WeightResidency::Copied);
  const blip::BlipForConditionalGeneration model = load(store, directory);
  const std::vector<std::int64_t> before = caption_ids(model);

  fs::resize_file(weights, 0);  // truncated, as `cp` does before writing
  CHECK(caption_ids(model) == before);

  {  // ... and filled with other bytes of the old size
    std::ofstream overwrite(weights, std::ios::binary | std::ios::in | std::ios::out);
    const std::string junk(static_cast<std::size_t>(size), '\x7f');
    overwrite.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  CHECK(fs::file_size(weights) == size);
  CHECK(caption_ids(model) == before);
}

TEST_CASE("WeightStore::get copies a mapped weight under Copied and views it under Mapped") {
  if (!blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture")) return;
  const std::string directory = blip::test::fixture("blip_caption");
  const std::string name = "vision_model.post_layernorm.weight";
  const blip::WeightStore copied = blip::WeightStore::open(directory);
  const blip::WeightStore mapped = blip::WeightStore::open(directory, blip::WeightResidency::Mapped);
  const blip::Shape shape = copied.checkpoint().info(name).shape;
  const blip::Tensor<const float> copy = copied.get(name, shape), view = mapped.get(name, shape);
  CHECK_FALSE(blip::is_mapped_memory(copy.data(), copy.bytes()));
  CHECK(blip::is_mapped_memory(view.data(), view.bytes()));
  // For repacking (LinearWeights), the mapping is read in place under either residency.
  const blip::Tensor<const float> for_repacking = copied.get_for_repacking(name, shape);
  CHECK(blip::is_mapped_memory(for_repacking.data(), for_repacking.bytes()));
  REQUIRE(copy.numel() == view.numel());
  for (std::int64_t i = 0; i < copy.numel(); ++i) CHECK(copy.data()[i] == view.data()[i]);
}

}  // namespace io_model_file_replaced_test
