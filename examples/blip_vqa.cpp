// blip_vqa: answers a question about an image with a BLIP VQA model folder.
#include <chrono>
#include <cstdio>
#include <string>

#include "blip/blip.hpp"
#include "support/arguments.hpp"

namespace {
const std::string kUsage =
    std::string("usage: blip_vqa MODEL_DIR IMAGE QUESTION [options]\n"
                "\n"
                "Answers QUESTION about IMAGE with a Hugging Face BLIP VQA model folder, e.g. Salesforce/blip-vqa-base.\n"
                "\n"
                "options:\n") +
    blip::examples::kGenerationUsage +
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels\n"
    "  --precision P          Linear weights in P: as-stored (default: the checkpoint's f32 / bf16 / f16),\n"
    "                         f32, bf16, f16 or int8 (one scale per output feature); activations stay f32\n"
    "  --json                 print {\"image\", \"question\", \"answer\"} as JSON\n"
    "  --help                 this text\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_vqa", kUsage.c_str(), blip::examples::generation_options_with_values(),
      blip::examples::with({"--json"}, blip::examples::generation_switches()),
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 3) return blip::examples::usage_error(kUsage.c_str());
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string& model_dir = command.positional()[0];
        const std::string& image_path = command.positional()[1];
        // What can be checked without the model is checked before loading it.
        const auto options = blip::examples::generation_options_from(command, model_dir);
        if (command.has("--json")) blip::examples::require_utf8(image_path, "image path");
        blip::examples::check_input_files({image_path});
        const std::string question = blip::examples::valid_utf8_text(command.positional()[2], "blip_vqa", "QUESTION");

        const blip::VisualQA vqa = blip::VisualQA::load(model_dir, load_options);
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
