// blip_vqa: answers a question about an image with a BLIP VQA model folder.
#include <chrono>
#include <cstdio>
#include <string>

#include "blip/blip.hpp"
#include "support/command_line.hpp"

namespace {
const char* const kUsage =
    "usage: blip_vqa MODEL_DIR IMAGE QUESTION [options]\n"
    "\n"
    "Answers QUESTION about IMAGE with a Hugging Face BLIP VQA model folder, e.g. Salesforce/blip-vqa-base.\n"
    "\n"
    "options:\n"
    "  --beams N            beam search with N beams (default: generation_config.json)\n"
    "  --max-new-tokens N   at most N new tokens\n"
    "  --tokenizer DIR      tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N          threads for the kernels\n"
    "  --json               print {\"image\", \"question\", \"answer\"} as JSON\n"
    "  --help               this text\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_vqa", kUsage, {"--beams", "--max-new-tokens"}, {"--json"},
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 3) return blip::examples::usage_error(kUsage);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string& model_dir = command.positional()[0];
        const std::string& image_path = command.positional()[1];
        const std::string& question = command.positional()[2];

        const blip::VisualQA vqa = blip::VisualQA::load(model_dir, load_options);
        blip::generation::GenerationOptions options = vqa.default_options();
        options.num_beams = command.integer("--beams", options.num_beams, 1, 64);
        options.max_new_tokens = command.integer("--max-new-tokens", options.max_new_tokens, 1, 512);
        const blip::Image image = blip::load_image(image_path);
        const auto started = std::chrono::steady_clock::now();
        const std::string answer = vqa.answer(image, question, options);
        blip::log_step(true, "answered", started);
        if (command.has("--json")) {
          std::printf("{\"image\": %s, \"question\": %s, \"answer\": %s}\n",
                      blip::examples::json_string(image_path).c_str(), blip::examples::json_string(question).c_str(),
                      blip::examples::json_string(answer).c_str());
        } else {
          std::printf("%s\n", answer.c_str());
        }
        return 0;
      });
}
