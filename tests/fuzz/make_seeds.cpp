// Writes the fuzz seed corpus into argv[1]: small valid safetensors files made
// with SafetensorsWriter, plus the small fixture files found under argv[2].
#include <cstdio>
#include <filesystem>
#include <string>

#include "blip/io/safetensors.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [FIXTURES_DIR]\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1];
  fs::create_directories(corpus);
  using blip::Shape;
  using blip::Tensor;

  blip::SafetensorsWriter mixed;
  Tensor<float> weight(Shape{3, 2});
  for (int i = 0; i < 6; ++i) weight.data()[i] = 0.25f * static_cast<float>(i) - 0.5f;
  mixed.add("vision_model.embeddings.class_embedding", Tensor<float>(Shape{1, 1, 2}));
  mixed.add("text_decoder.bert.encoder.layer.0.crossattention.self.key.weight", weight);
  mixed.add_f32_as("half", weight, blip::DType::F16);
  mixed.add_f32_as("brain", weight, blip::DType::BF16);
  mixed.add("ids", Tensor<std::int64_t>(Shape{2, 3}));
  mixed.add("mask", Tensor<std::int32_t>(Shape{1}));
  mixed.add("bytes", Tensor<std::uint8_t>(Shape{3}));
  mixed.add("signed", Tensor<std::int8_t>(Shape{1, 1, 1, 1}));
  mixed.add("empty", Tensor<float>(Shape{0}));
  mixed.add("scalar", Tensor<float>(Shape{}));
  mixed.set_metadata("format", "pt");
  mixed.write((corpus / "seed_mixed.safetensors").string());

  blip::SafetensorsWriter single;
  single.add("w", weight);
  single.write((corpus / "seed_single.safetensors").string());

  blip::SafetensorsWriter metadata_only;
  metadata_only.set_metadata("a", "b");
  metadata_only.write((corpus / "seed_metadata_only.safetensors").string());

  blip::SafetensorsWriter().write((corpus / "seed_empty.safetensors").string());

  int copied = 0;
  if (argc >= 3 && fs::is_directory(argv[2])) {
    for (const char* relative : {"blip_itm/outputs.safetensors", "blip_caption/outputs.safetensors"}) {
      const fs::path source = fs::path(argv[2]) / relative;
      if (!fs::exists(source)) continue;
      // Fixture files are read-only: replace rather than overwrite the copy.
      const fs::path target = corpus / ("fixture_" + fs::path(relative).parent_path().string() + ".safetensors");
      fs::remove(target);
      fs::copy_file(source, target);
      ++copied;
    }
  }
  std::printf("wrote 4 seeds and %d fixture files to %s\n", copied, corpus.string().c_str());
  return 0;
}
