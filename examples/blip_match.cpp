// blip_match: scores every (image, text) pair with a BLIP retrieval model folder.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"

namespace {
const char* const kUsage =
    "usage: blip_match MODEL_DIR --image IMAGE [--image IMAGE ...] --text TEXT [--text TEXT ...] [options]\n"
    "\n"
    "Prints, for every image and text, the image-text matching probability (ITM head) and the\n"
    "contrastive cosine similarity (ITC), with a Hugging Face BLIP retrieval model folder,\n"
    "e.g. Salesforce/blip-itm-base-coco.\n"
    "\n"
    "options:\n"
    "  --tokenizer DIR   tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N       threads for the kernels\n"
    "  --precision P     Linear weights in P: as-stored (default), f32, bf16, f16, int8 or int4\n"
    "  --activations A   what bf16 weights multiply: f32 (default) or bf16\n"
    "  --json            one JSON object per pair\n"
    "  --help            this text\n"
    "Images are decoded one at a time and only their preprocessed pixels are kept; invalid UTF-8 bytes in a\n"
    "TEXT are dropped (with a note on stderr).\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_match", kUsage, {"--image", "--text"}, {"--json"},
      [](const blip::examples::CommandLine& command) {
        const std::vector<std::string> image_paths = command.values("--image");
        if (command.positional().size() != 1 || image_paths.empty() || !command.has("--text"))
          return blip::examples::usage_error(kUsage);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        // What can be checked without the model is checked before loading it.
        if (command.has("--json")) {
          for (const std::string& path : image_paths) blip::examples::require_utf8(path, "image path");
        }
        blip::examples::check_input_files(image_paths);
        std::vector<std::string> texts;
        for (const std::string& text : command.values("--text")) {
          const std::string what = "--text " + std::to_string(texts.size() + 1);
          texts.push_back(blip::examples::valid_utf8_text(text, "blip_match", what));
        }

        const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(command.positional()[0], load_options);
        // Decoded one at a time; only the preprocessed pixels stay.
        const blip::Tensor<float> pixels = blip::load_preprocessed_batch(image_paths, matcher.folder().image_processor);
        const auto started = std::chrono::steady_clock::now();
        const blip::MatchTable table = matcher.match(pixels, texts);
        blip::log_step(true, "scored", started);

        if (!command.has("--json")) std::printf("%-40s %-40s %10s %10s\n", "image", "text", "itm_prob", "itc_cos");
        for (std::size_t image = 0; image < image_paths.size(); ++image) {
          for (std::size_t text = 0; text < texts.size(); ++text) {
            const float probability =
                table.match_probability.at(static_cast<std::int64_t>(image), static_cast<std::int64_t>(text));
            const float similarity =
                table.similarity.at(static_cast<std::int64_t>(image), static_cast<std::int64_t>(text));
            if (command.has("--json")) {
              std::printf("{\"image\": %s, \"text\": %s, \"itm_probability\": %.6f, \"itc_similarity\": %.6f}\n",
                          blip::examples::json_string(image_paths[image]).c_str(),
                          blip::examples::json_string(texts[text]).c_str(), probability, similarity);
            } else {
              std::printf("%-40s %-40s %10.4f %10.4f\n", image_paths[image].c_str(), texts[text].c_str(), probability,
                          similarity);
            }
          }
        }
        return 0;
      });
}
