// blip_chat: a conversation about one image with a BLIP-2 model folder. Reads
// questions from standard input, one per line, and prints one answer line per
// question. The image is encoded once; each turn's prompt carries the earlier
// questions and answers (the BLIP-2 paper's visual conversation).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "blip/blip.hpp"
#include "blip/text/json_lines.hpp"
#include "support/arguments.hpp"

namespace {
const std::string kUsage =
    std::string("usage: blip_chat MODEL_DIR IMAGE [options] < questions.txt\n"
                "\n"
                "Answers the questions on standard input (one per line) about IMAGE with a Hugging Face BLIP-2 model\n"
                "folder, e.g. Salesforce/blip2-opt-2.7b. Every answer is one line on standard output; earlier turns\n"
                "stay in the prompt (\"Question: q1 Answer: a1. Question: q2 Answer:\").\n"
                "\n"
                "options (an answer has at most 30 new tokens unless the generation config or\n"
                "--max-new-tokens says otherwise):\n") +
    blip::examples::kGenerationUsage +
    "  --no-history           answer every question on its own\n"
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels\n"
    "  --precision P          Linear weights in P: as-stored (default: the checkpoint's f32 / bf16 / f16),\n"
    "                         f32, bf16, f16, int8 (one scale per output feature) or int4 (one per 32 inputs)\n"
    "  --activations A        what narrow weights multiply: f32 (default); bf16, with bf16 weights (AVX512-BF16\n"
    "                         dot products where the CPU has them; PyTorch's bf16 arithmetic); or int8, with\n"
    "                         int8 or int4 weights (each layer's input quantized per row; AVX512-VNNI)\n"
    "  --json                 print {\"question\", \"answer\"} per line as JSON\n"
    "  --help                 this text\n"
    "Questions are lines of at most 1 MiB; invalid UTF-8 bytes in them are dropped (with a note on stderr).\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_chat", kUsage.c_str(), blip::examples::generation_options_with_values(),
      blip::examples::with({"--json", "--no-history"}, blip::examples::generation_switches()),
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 2) return blip::examples::usage_error(kUsage.c_str());
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string& model_dir = command.positional()[0];
        const std::string& image_path = command.positional()[1];
        // What can be checked without the model is checked before loading it.
        const auto generation_options = blip::examples::generation_options_from(command, model_dir);
        blip::examples::check_input_files({image_path});

        const blip::VisualQA model = blip::VisualQA::load(model_dir, load_options);
        blip::check(model.is_blip2(), model_dir, " is a BLIP model; blip_chat needs a BLIP-2 model folder");
        const blip::Image image = blip::load_image(image_path);
        blip::Conversation conversation = model.conversation(image);
        conversation.options() = generation_options;
        const bool keep_history = !command.has("--no-history");

        std::string line;
        long line_number = 0;
        int failures = 0;
        while (true) {
          errno = 0;
          const blip::LineRead read = blip::read_bounded_line(std::cin, line);
          if (read == blip::LineRead::End) break;
          ++line_number;
          blip::check(read == blip::LineRead::Line, "standard input line ", line_number, ": longer than ",
                      blip::kMaxInputLineBytes, " bytes, the limit per question");
          if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
          const std::string question =
              blip::examples::valid_utf8_text(line, "blip_chat", "line " + std::to_string(line_number));
          const auto started = std::chrono::steady_clock::now();
          const std::string answer = conversation.ask(question);
          if (!keep_history) conversation.reset();
          blip::log_step(load_options.verbose, "answered", started);
          if (command.has("--json")) {
            std::printf("{\"question\": %s, \"answer\": %s}\n", blip::examples::json_string(question).c_str(),
                        blip::examples::json_string(answer).c_str());
          } else {
            std::printf("%s\n", answer.c_str());
          }
          std::fflush(stdout);
        }
        if (std::cin.bad() || std::ferror(stdin)) {
          std::fprintf(stderr, "blip_chat: %s\n", blip::describe_read_failure("standard input").c_str());
          ++failures;
        }
        return failures == 0 ? 0 : 1;
      });
}
