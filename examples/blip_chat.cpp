// blip_chat: a conversation about one image with a BLIP-2 model folder. Reads
// questions from standard input, one per line, and prints one answer line per
// question. The image is encoded once; each turn's prompt carries the earlier
// questions and answers (the BLIP-2 paper's visual conversation).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "blip/blip.hpp"
#include "support/command_line.hpp"

namespace {
const char* const kUsage =
    "usage: blip_chat MODEL_DIR IMAGE [options] < questions.txt\n"
    "\n"
    "Answers the questions on standard input (one per line) about IMAGE with a Hugging Face BLIP-2 model\n"
    "folder, e.g. Salesforce/blip2-opt-2.7b. Every answer is one line on standard output; earlier turns\n"
    "stay in the prompt (\"Question: q1 Answer: a1. Question: q2 Answer:\").\n"
    "\n"
    "options:\n"
    "  --beams N            beam search with N beams (default: generation_config)\n"
    "  --max-new-tokens N   at most N new tokens per answer (default 30)\n"
    "  --no-history         answer every question on its own\n"
    "  --tokenizer DIR      tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N          threads for the kernels\n"
    "  --json               print {\"question\", \"answer\"} per line as JSON\n"
    "  --help               this text\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_chat", kUsage, {"--beams", "--max-new-tokens"}, {"--json", "--no-history"},
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 2) return blip::examples::usage_error(kUsage);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string& model_dir = command.positional()[0];
        const std::string& image_path = command.positional()[1];

        const blip::VisualQA model = blip::VisualQA::load(model_dir, load_options);
        blip::check(model.is_blip2(), model_dir, " is a BLIP model; blip_chat needs a BLIP-2 model folder");
        const blip::Image image = blip::load_image(image_path);
        blip::Conversation conversation = model.conversation(image);
        blip::generation::GenerationOptions& options = conversation.options();
        options.num_beams = command.integer("--beams", options.num_beams, 1, 64);
        options.max_new_tokens = command.integer("--max-new-tokens", options.max_new_tokens, 1, 512);
        const bool keep_history = !command.has("--no-history");

        std::string question;
        int failures = 0;
        while (std::getline(std::cin, question)) {
          if (!question.empty() && question.back() == '\r') question.pop_back();
          if (question.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
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
        if (std::cin.bad()) {
          std::fprintf(stderr, "blip_chat: reading standard input failed\n");
          ++failures;
        }
        return failures == 0 ? 0 : 1;
      });
}
