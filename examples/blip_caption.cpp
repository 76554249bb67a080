// blip_caption: captions images with a BLIP captioning model folder.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/command_line.hpp"

namespace {
const char* const kUsage =
    "usage: blip_caption MODEL_DIR IMAGE [IMAGE ...] [options]\n"
    "\n"
    "Captions each image with a Hugging Face BLIP captioning model folder\n"
    "(config.json, model.safetensors, tokenizer files), e.g. Salesforce/blip-image-captioning-base.\n"
    "\n"
    "options:\n"
    "  --prompt TEXT          conditional captioning: the caption continues TEXT (e.g. \"a picture of\")\n"
    "  --beams N              beam search with N beams (default: generation_config.json, usually 1 = greedy)\n"
    "  --max-new-tokens N     at most N new tokens (default: generation_config.json's max_length)\n"
    "  --min-new-tokens N     at least N new tokens\n"
    "  --repetition-penalty X HF repetition_penalty (default 1.0)\n"
    "  --sample               sample instead of searching (with --temperature, --top-k, --top-p, --seed)\n"
    "  --temperature X  --top-k N  --top-p X  --seed N\n"
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels (default: OMP_NUM_THREADS or all cores)\n"
    "  --json                 one JSON object per image on stdout\n"
    "  --help                 this text\n"
    "Load progress and timings go to stderr.\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_caption", kUsage,
      {"--prompt", "--beams", "--max-new-tokens", "--min-new-tokens", "--repetition-penalty", "--temperature",
       "--top-k", "--top-p", "--seed"},
      {"--json", "--sample"}, [](const blip::examples::CommandLine& command) {
        if (command.positional().size() < 2) return blip::examples::usage_error(kUsage);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string model_dir = command.positional()[0];
        const std::vector<std::string> paths(command.positional().begin() + 1, command.positional().end());

        const auto started = std::chrono::steady_clock::now();
        const blip::Captioner captioner = blip::Captioner::load(model_dir, load_options);
        blip::CaptionOptions options = captioner.default_options();
        options.prompt = command.value("--prompt");
        blip::generation::GenerationOptions& generation = options.generation;
        generation.num_beams = command.integer("--beams", generation.num_beams, 1, 64);
        generation.max_new_tokens = command.integer("--max-new-tokens", generation.max_new_tokens, 1, 512);
        generation.min_new_tokens = command.integer("--min-new-tokens", generation.min_new_tokens, 0, 512);
        generation.repetition_penalty = command.real("--repetition-penalty", generation.repetition_penalty);
        if (command.has("--sample")) generation.do_sample = true;
        generation.temperature = command.real("--temperature", generation.temperature);
        generation.top_k = command.integer("--top-k", generation.top_k, 0, 1 << 30);
        generation.top_p = command.real("--top-p", generation.top_p);
        generation.seed = static_cast<std::uint64_t>(command.integer("--seed", 0, 0, 1L << 62));

        std::vector<blip::Image> images;
        for (const std::string& path : paths) images.push_back(blip::load_image(path));
        blip::log_step(true, "loaded the images", started);
        const auto captioning = std::chrono::steady_clock::now();
        const std::vector<std::vector<blip::Caption>> captions = captioner.caption(images, options);
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
