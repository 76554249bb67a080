// blip_vqa: answers questions about images with a BLIP VQA or BLIP-2 model folder.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"
#include "support/image_inputs.hpp"

namespace {
const std::string kUsage =
    std::string("usage: blip_vqa MODEL_DIR IMAGE QUESTION [options]\n"
                "       blip_vqa MODEL_DIR PATH... --questions FILE [options]\n"
                "\n"
                "Answers QUESTION about IMAGE with a Hugging Face BLIP VQA model folder, e.g. Salesforce/blip-vqa-base,\n"
                "or a BLIP-2 folder (asked as \"Question: {q} Answer:\"); prints the answer.\n"
                "\n"
                "With --questions, asks every question of FILE (one per line, - for stdin, blank lines skipped)\n"
                "about every image, loading the model once and encoding each image once; the answers are the\n"
                "same as one run per question. Each PATH is an image file or a folder of images, as for\n"
                "blip_caption (sorted by name; .jpg .jpeg .jpe .png .bmp .gif .ppm .pgm .pnm). Images are read\n"
                "one at a time, the next one by a reader thread while the model answers. A file that cannot be\n"
                "read or decoded is reported on stderr (and as a record with --json / --csv), the others are\n"
                "answered, and the exit status is 1.\n"
                "\n"
                "options:\n"
                "  --questions FILE       the questions, one per line (see above)\n"
                "  --recursive            with --questions: folders' subfolders too\n"
                "  --list FILE            with --questions: image paths from FILE, one per line (- for stdin)\n"
                "  --json                 JSON: {\"image\", \"question\", \"answer\"} (one per line with --questions),\n"
                "                         {\"image\", \"error\"} for an image that failed\n"
                "  --csv                  with --questions: CSV (RFC 4180 quoting, LF line ends), a header\n"
                "                         image,question,answer,error; a failed image is one row with its reason\n"
                "                         under error. The default output with --questions: IMAGE: QUESTION -> ANSWER\n") +
    blip::examples::kGenerationUsage +
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels\n"
    "  --precision P          Linear weights in P: as-stored (default: the checkpoint's f32 / bf16 / f16),\n"
    "                         f32, bf16, f16, int8 (one scale per output feature) or int4 (one per 32 inputs)\n"
    "  --activations A        what narrow weights multiply: f32 (default); bf16, with bf16 weights (AVX512-BF16\n"
    "                         dot products where the CPU has them; PyTorch's bf16 arithmetic); or int8, with\n"
    "                         int8 or int4 weights (each layer's input quantized per row; AVX512-VNNI)\n"
    "  --help                 this text\n"
    "A progress line (answers done, answers/s, ETA) goes to stderr when it is a terminal.\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);

// blip_vqa MODEL_DIR IMAGE QUESTION: one answer.
int answer_one(const blip::examples::CommandLine& command) {
  namespace examples = blip::examples;
  if (command.positional().size() != 3) return examples::usage_error(kUsage.c_str());
  if (command.has("--csv") || command.has("--list") || command.has("--recursive"))
    examples::usage_fail("--csv, --list and --recursive go with --questions");
  const blip::LoadOptions load_options = examples::load_options_from(command);
  const std::string& model_dir = command.positional()[0];
  const std::string& image_path = command.positional()[1];
  // What can be checked without the model is checked before loading it.
  const auto options = examples::generation_options_from(command, model_dir);
  if (command.has("--json")) examples::require_utf8(image_path, "image path");
  examples::check_input_files({image_path});
  const std::string question = examples::valid_utf8_text(command.positional()[2], "blip_vqa", "QUESTION");

  const blip::VisualQA vqa = blip::VisualQA::load(model_dir, load_options);
  const blip::Image image = blip::load_image(image_path);
  const auto started = std::chrono::steady_clock::now();
  const std::string answer = vqa.answer(image, question, options);
  blip::log_step(true, "answered", started);
  if (command.has("--json")) {
    std::printf("{\"image\": %s, \"question\": %s, \"answer\": %s}\n", examples::json_string(image_path).c_str(),
                examples::json_string(question).c_str(), examples::json_string(answer).c_str());
  } else {
    std::printf("%s\n", answer.c_str());
  }
  return examples::kExitSuccess;
}

// blip_vqa MODEL_DIR PATH... --questions FILE: every question about every image.
int answer_many(const blip::examples::CommandLine& command) {
  namespace examples = blip::examples;
  const auto& positional = command.positional();
  if (positional.empty() || (positional.size() < 2 && !command.has("--list")))
    return examples::usage_error(kUsage.c_str());
  if (command.has("--json") && command.has("--csv")) examples::usage_fail("--json and --csv exclude each other");
  const blip::LoadOptions load_options = examples::load_options_from(command);
  const std::string& model_dir = positional[0];
  const auto options = examples::generation_options_from(command, model_dir);
  const std::vector<std::string> lists = command.values("--list");
  if (command.value("--questions") == "-" && std::find(lists.begin(), lists.end(), "-") != lists.end())
    examples::usage_fail("--questions - and --list - cannot both read standard input");
  const bool json = command.has("--json");
  std::vector<std::string> arguments(positional.begin() + 1, positional.end());
  if (json) {
    for (const std::string& path : arguments) examples::require_utf8(path, "image path");
  }
  std::vector<std::string> questions;
  {
    const std::vector<std::string> lines = examples::read_list_file(command.value("--questions"), "a question");
    for (std::size_t index = 0; index < lines.size(); ++index)
      questions.push_back(
          examples::valid_utf8_text(lines[index], "blip_vqa", "question " + std::to_string(index + 1)));
  }
  if (questions.empty()) blip::fail(command.value("--questions"), ": no questions (every line is blank)");
  for (const std::string& list : command.values("--list")) {
    const std::vector<std::string> listed = examples::read_list_file(list);
    arguments.insert(arguments.end(), listed.begin(), listed.end());
  }
  std::vector<examples::ImageInput> inputs = examples::expand_image_inputs(arguments, command.has("--recursive"));
  if (inputs.empty()) blip::fail("no images: the folders and lists given hold no image files");
  const std::size_t readable = examples::precheck_inputs(inputs, json);
  const examples::OutputFormat format = json                     ? examples::OutputFormat::Json
                                        : command.has("--csv") ? examples::OutputFormat::Csv
                                                               : examples::OutputFormat::Text;
  examples::ResultWriter writer(format, "blip_vqa", {"image", "question", "answer"}, {": ", " -> "});
  if (readable == 0) {  // nothing to answer: the reasons, without loading the model
    for (const examples::ImageInput& input : inputs) writer.error(input.path, input.error);
    return examples::kExitFailure;
  }

  const blip::VisualQA vqa = blip::VisualQA::load(model_dir, load_options);
  const auto started = std::chrono::steady_clock::now();
  const std::size_t total = inputs.size();
  // One image per batch: its questions are the work.
  examples::ImageBatchReader reader(std::move(inputs), 1, vqa.folder().image_processor, true);
  examples::Progress progress(total * questions.size(), "answers");
  examples::ImageBatch batch;
  std::size_t answered = 0;
  while (reader.next(batch)) {
    for (std::size_t index = 0; index < batch.entries.size(); ++index) {
      const examples::ImageInput& entry = batch.entries[index];
      progress.clear();
      if (!entry.error.empty()) {
        writer.error(entry.path, entry.error);
        progress.advance(questions.size());
        continue;
      }
      const blip::VisualQA::EncodedImage image = vqa.encode(batch.pixels);
      for (const std::string& question : questions) {
        const blip::Caption answer = vqa.answer(image, question, options).front();
        progress.clear();
        writer.result({entry.path, question, answer.text});
        writer.flush();
        ++answered;
        progress.advance(1);
      }
    }
  }
  progress.clear();
  const std::string done = "answered " + std::to_string(answered) + " questions";
  blip::log_step(true, done.c_str(), started);
  if (writer.errors() > 0) {
    std::fprintf(stderr, "blip_vqa: %zu of %zu images failed\n", writer.errors(), total);
    return examples::kExitFailure;
  }
  return examples::kExitSuccess;
}
}  // namespace

int main(int argc, char** argv) {
  namespace examples = blip::examples;
  return examples::run_program(argc, argv, "blip_vqa", kUsage.c_str(),
                               examples::with({"--questions", "--list"}, examples::generation_options_with_values()),
                               examples::with({"--json", "--csv", "--recursive"}, examples::generation_switches()),
                               [](const examples::CommandLine& command) {
                                 return command.has("--questions") ? answer_many(command) : answer_one(command);
                               });
}
