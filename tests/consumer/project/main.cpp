// A consumer of the installed / embedded blip headers: writes a small
// safetensors file, reads it back through the weight store, and, when the
// fixtures are given, loads the tiny captioning model and generates from it.
// Exit status 0 = success.
#include <blip/blip.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

// The README's usage example, compiled here so that it stays correct.
[[maybe_unused]] static void readme_example() {
  blip::Captioner captioner = blip::Captioner::load("models/blip-image-captioning-base");
  blip::Image image = blip::load_image("photo.jpg");
  blip::CaptionOptions options = captioner.default_options();
  options.generation.num_beams = 3;
  std::printf("%s\n", captioner.caption(image, options).c_str());
}

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
    std::size_t model_tensors = 0, generated = 0;
    const std::string model_dir = argc > 2 ? std::string(argv[2]) + "/blip_caption" : "";
    if (!model_dir.empty() && std::filesystem::exists(model_dir + "/model.safetensors")) {
      model_tensors = blip::Checkpoint::open(model_dir).names().size();
      const blip::WeightStore weights = blip::WeightStore::open(model_dir);
      const auto model = blip::BlipForConditionalGeneration::load(
          weights, blip::make_blip_model_config(blip::load_model_config(model_dir).blip));
      blip::Tensor<float> pixels(blip::Shape{1, 3, model.config.vision.image_size, model.config.vision.image_size});
      const blip::ImageEmbeddings images = model.vision_model.forward(pixels);
      blip::BlipDecoderSession session = model.caption_session(images, {}, {});
      blip::generation::GenerationOptions options;
      options.max_new_tokens = 5;
      generated = static_cast<std::size_t>(blip::generation::generate_session(session, options).sequences.dim(1));
    }
    std::printf("consumer: OK (round trip through %s; fixture checkpoint with %zu tensors; %zu ids generated)\n",
                path.c_str(), model_tensors, generated);
    return 0;
  } catch (const blip::Error& error) {
    std::fprintf(stderr, "consumer: %s\n", error.what());
    return 1;
  }
}
