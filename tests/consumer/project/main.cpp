// A consumer of the installed / embedded blip headers: writes a small
// safetensors file, reads it back through the weight store, and, when the
// fixtures are given, opens a real model checkpoint. Exit status 0 = success.
#include <blip/core/tensor.hpp>
#include <blip/io/safetensors.hpp>
#include <blip/io/weight_store.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  const std::string folder = argc > 1 ? argv[1] : ".";
  const std::string path = folder + "/consumer.safetensors";
  try {
    blip::Tensor<float> weight(blip::Shape{2, 3});
    for (int i = 0; i < 6; ++i) weight.data()[i] = static_cast<float>(i) * 0.5f;
    blip::SafetensorsWriter writer;
    writer.add("layer.weight", weight);
    writer.add_f32_as("layer.bias", blip::Tensor<float>(blip::Shape{2}), blip::DType::BF16);
    writer.write(path);

    const blip::WeightStore store = blip::WeightStore::open(path);
    const blip::Tensor<const float> loaded = store.get("layer.weight", blip::Shape{2, 3});
    if (loaded.data()[5] != 2.5f || store.unused() != std::vector<std::string>{"layer.bias"}) {
      std::fprintf(stderr, "consumer: wrong values read back from %s\n", path.c_str());
      return 1;
    }
    std::size_t model_tensors = 0;
    if (argc > 2 && std::filesystem::exists(std::string(argv[2]) + "/blip_caption/model.safetensors"))
      model_tensors = blip::Checkpoint::open(std::string(argv[2]) + "/blip_caption").names().size();
    std::printf("consumer: OK (round trip through %s; fixture checkpoint with %zu tensors)\n", path.c_str(),
                model_tensors);
    return 0;
  } catch (const blip::Error& error) {
    std::fprintf(stderr, "consumer: %s\n", error.what());
    return 1;
  }
}
