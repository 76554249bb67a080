// blip_caption: captions images with a BLIP captioning model folder.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"

namespace {
const std::string kUsage =
    std::string("usage: blip_caption MODEL_DIR IMAGE [IMAGE ...] [options]\n"
                "\n"
                "Captions each image with a Hugging Face BLIP captioning model folder\n"
                "(config.json, model.safetensors, tokenizer files), e.g. Salesforce/blip-image-captioning-base.\n"
                "\n"
                "options:\n"
                "  --prompt TEXT          conditional captioning: the caption continues TEXT (e.g. \"a picture of\")\n") +
    blip::examples::kGenerationUsage +
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels (default: OMP_NUM_THREADS or all cores)\n"
    "  --precision P          Linear weights in P: as-stored (default: the checkpoint's f32 / bf16 / f16),\n"
    "                         f32, bf16, f16 or int8 (one scale per output feature); activations stay f32\n"
    "  --json                 one JSON object per image on stdout\n"
    "  --help                 this text\n"
    "Load progress and timings go to stderr. Images are decoded one at a time and only their\n"
    "preprocessed pixels are kept.\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_caption", kUsage.c_str(),
      blip::examples::with({"--prompt"}, blip::examples::generation_options_with_values()),
      blip::examples::with({"--json"}, blip::examples::generation_switches()),
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() < 2) return blip::examples::usage_error(kUsage.c_str());
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string model_dir = command.positional()[0];
        const std::vector<std::string> paths(command.positional().begin() + 1, command.positional().end());
        // What can be checked without the model is checked before loading it.
        const auto generation_options = blip::examples::generation_options_from(command, model_dir);
        if (command.has("--json")) {
          for (const std::string& path : paths) blip::examples::require_utf8(path, "image path");
        }
        blip::examples::check_input_files(paths);
        const std::string prompt = blip::examples::valid_utf8_text(command.value("--prompt"), "blip_caption", "--prompt");

        const auto started = std::chrono::steady_clock::now();
        const blip::Captioner captioner = blip::Captioner::load(model_dir, load_options);
        blip::CaptionOptions options;
        options.prompt = prompt;
        options.generation = generation_options;

        // Decoded one at a time; only the preprocessed pixels stay.
        const blip::Tensor<float> pixels = blip::load_preprocessed_batch(paths, captioner.folder().image_processor);
        blip::log_step(true, "loaded the images", started);
        const auto captioning = std::chrono::steady_clock::now();
        const std::vector<std::vector<blip::Caption>> captions = captioner.caption(pixels, options);
        blip::log_step(true, "captioned", captioning);

        for (std::size_t index = 0; index < paths.size(); ++index) {
          const blip::Caption& best = captions[index].front();
          if (command.has("--json")) {
            std::printf("{\"image\": %s, \"caption\": %s", blip::examples::json_string(paths[index]).c_str(),
                        blip::examples::json_string(best.text).c_str());
            if (!std::isnan(best.score)) std::printf(", \"score\": %.6f", best.score);
            std::printf("}\n");
          } else {
            std::printf("%s: %s\n", paths[index].c_str(), best.text.c_str());
          }
        }
        return 0;
      });
}
