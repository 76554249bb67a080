// blip_caption: captions images, folders of images and lists of them with a
// BLIP or BLIP-2 captioning model folder, batch by batch.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"
#include "support/image_inputs.hpp"

namespace {
const std::string kUsage =
    std::string("usage: blip_caption MODEL_DIR PATH... [options]\n"
                "       blip_caption MODEL_DIR --list FILE [options]\n"
                "\n"
                "Captions images with a Hugging Face BLIP or BLIP-2 captioning model folder\n"
                "(config.json, model.safetensors, tokenizer files), e.g. Salesforce/blip-image-captioning-base.\n"
                "Each PATH is an image file (tried whatever its name) or a folder: its images, sorted by name\n"
                "(byte order), are the files named .jpg .jpeg .jpe .png .bmp .gif .ppm .pgm .pnm (any case);\n"
                "other files, and hidden ones (.name), are skipped.\n"
                "\n"
                "Images go through in batches: a batch is decoded (only its preprocessed pixels are kept),\n"
                "captioned and printed before the next, while a reader thread decodes the next one; memory\n"
                "depends on --batch, not on the number of images. A file that cannot be read or decoded is\n"
                "reported on stderr (and as a record with --json / --csv) and the others are captioned;\n"
                "the exit status is then 1.\n"
                "\n"
                "inputs:\n"
                "  --recursive            folders' subfolders too (symbolic links to folders are not followed)\n"
                "  --list FILE            the paths in FILE, one per line (- reads them from stdin; blank lines skipped),\n"
                "                         after the PATH arguments; may be given more than once\n"
                "  --batch N              images per batch (default 8); a batch's captions are the same as\n"
                "                         each image's alone\n"
                "  --no-read-ahead        decode each batch only when it is needed (no reader thread)\n"
                "output (stdout, flushed after each batch, in input order):\n"
                "  (default)              IMAGE: CAPTION lines\n"
                "  --json                 one JSON object per line: {\"image\", \"caption\"} (and \"score\" with beam\n"
                "                         search), or {\"image\", \"error\"} for a file that failed\n"
                "  --csv                  CSV (RFC 4180 quoting, LF line ends): a header image,caption,error, then one\n"
                "                         row per image; a failed file has an empty caption and its reason under error\n"
                "  --sidecar              also write each caption to a .txt file beside its image (a.jpg -> a.txt),\n"
                "                         as training-data tools read them; an existing file is refused, and\n"
                "                         counts as a failure, unless --overwrite\n"
                "  --overwrite            with --sidecar: replace existing .txt files (a regular file is replaced\n"
                "                         by rename, never left half-written)\n"
                "  --coco-results FILE    also write FILE: the captions as a COCO caption results file, [{\"image_id\",\n"
                "                         \"caption\"}], for blip_eval caption; needs --coco-annotations\n"
                "  --coco-annotations A   the COCO caption annotation file whose \"images\" give each file name's\n"
                "                         image_id (matched by base name; an image not listed there is a failure).\n"
                "                         The --prompt is cut off the front of each caption, as BLIP's evaluation\n"
                "                         does (Hugging Face returns the caption with its prompt)\n"
                "A progress line (images done, images/s, ETA) goes to stderr when it is a terminal.\n"
                "\n"
                "model options:\n"
                "  --prompt TEXT          conditional captioning: the caption continues TEXT (e.g. \"a picture of\")\n") +
    blip::examples::kGenerationUsage +
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N            threads for the kernels (default: OMP_NUM_THREADS or all cores)\n"
    "  --precision P          Linear weights in P: as-stored (default: the checkpoint's f32 / bf16 / f16),\n"
    "                         f32, bf16, f16, int8 (one scale per output feature) or int4 (one per 32 inputs)\n"
    "  --activations A        what narrow weights multiply: f32 (default); bf16, with bf16 weights (AVX512-BF16\n"
    "                         dot products where the CPU has them; PyTorch's bf16 arithmetic); or int8, with\n"
    "                         int8 or int4 weights (each layer's input quantized per row; AVX512-VNNI)\n"
    "  --help                 this text\n"
    "Load progress and timings go to stderr.\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);
// COCO caption annotations' "images": file base name -> "id" (kept as JSON: COCO ids are numbers, other sets'
// may be strings).
std::map<std::string, nlohmann::json> coco_image_ids_by_file_name(const std::string& annotations_path) {
  const nlohmann::json annotations = blip::read_json_file(annotations_path);
  blip::check(annotations.is_object() && annotations.contains("images") && annotations["images"].is_array(),
              annotations_path, ": expected a COCO caption annotation file with an \"images\" array");
  std::map<std::string, nlohmann::json> ids;
  for (const nlohmann::json& image : annotations["images"]) {
    blip::check(image.is_object() && image.contains("id") && image.contains("file_name") &&
                    image["file_name"].is_string(),
                annotations_path, ": each of \"images\" needs an \"id\" and a \"file_name\"");
    ids[std::filesystem::path(image["file_name"].get<std::string>()).filename().string()] = image["id"];
  }
  return ids;
}

// BLIP's evaluation cuts the prompt off its captions (models/blip.py: caption[len(self.prompt):]); Hugging Face
// returns the caption with it. Cut when the caption starts with it (whitespace around it trimmed).
std::string without_prompt(const std::string& caption, const std::string& prompt) {
  std::string stem = prompt;
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  if (stem.empty() || caption.compare(0, stem.size(), stem) != 0) return caption;
  std::size_t start = stem.size();
  while (start < caption.size() && caption[start] == ' ') ++start;
  return caption.substr(start);
}
}  // namespace

int main(int argc, char** argv) {
  namespace examples = blip::examples;
  return examples::run_program(
      argc, argv, "blip_caption", kUsage.c_str(),
      examples::with({"--prompt", "--batch", "--list", "--coco-results", "--coco-annotations"},
                     examples::generation_options_with_values()),
      examples::with({"--json", "--csv", "--sidecar", "--overwrite", "--recursive", "--no-read-ahead"},
                     examples::generation_switches()),
      [](const examples::CommandLine& command) {
        const auto& positional = command.positional();
        if (positional.empty() || (positional.size() < 2 && !command.has("--list")))
          return examples::usage_error(kUsage.c_str());
        // What can be checked without the model is checked before loading it.
        const blip::LoadOptions load_options = examples::load_options_from(command);
        const std::string model_dir = positional[0];
        const auto generation_options = examples::generation_options_from(command, model_dir);
        const std::size_t batch_size = static_cast<std::size_t>(command.integer("--batch", 8, 1, 1024));
        if (command.has("--json") && command.has("--csv")) examples::usage_fail("--json and --csv exclude each other");
        if (command.has("--overwrite") && !command.has("--sidecar"))
          examples::usage_fail("--overwrite applies to --sidecar files only");
        const bool json = command.has("--json");
        std::vector<std::string> arguments(positional.begin() + 1, positional.end());
        if (json) {
          for (const std::string& path : arguments) examples::require_utf8(path, "image path");
        }
        for (const std::string& list : command.values("--list")) {
          const std::vector<std::string> listed = examples::read_list_file(list);
          arguments.insert(arguments.end(), listed.begin(), listed.end());
        }
        std::vector<examples::ImageInput> inputs = examples::expand_image_inputs(arguments, command.has("--recursive"));
        if (inputs.empty()) blip::fail("no images: the folders and lists given hold no image files");
        std::size_t readable = examples::precheck_inputs(inputs, json);
        examples::SidecarWriter sidecars(command.has("--overwrite"));
        if (command.has("--sidecar")) {
          for (examples::ImageInput& input : inputs) {
            if (!input.error.empty()) continue;
            input.error = sidecars.precheck(input.path);
            if (!input.error.empty()) --readable;
          }
        }
        const std::string prompt = examples::valid_utf8_text(command.value("--prompt"), "blip_caption", "--prompt");
        // --coco-results: file base names -> COCO image ids, read before the model loads.
        const std::string coco_results = command.value("--coco-results");
        if (coco_results.empty() != command.value("--coco-annotations").empty())
          examples::usage_fail("--coco-results and --coco-annotations go together");
        const std::map<std::string, nlohmann::json> coco_image_ids =
            coco_results.empty() ? std::map<std::string, nlohmann::json>{}
                                 : coco_image_ids_by_file_name(command.value("--coco-annotations"));
        nlohmann::json coco_captions = nlohmann::json::array();
        const examples::OutputFormat format = json                     ? examples::OutputFormat::Json
                                              : command.has("--csv") ? examples::OutputFormat::Csv
                                                                     : examples::OutputFormat::Text;
        examples::ResultWriter writer(format, "blip_caption", {"image", "caption"}, {": "});
        if (readable == 0) {  // nothing to caption: the reasons, without loading the model
          for (const examples::ImageInput& input : inputs) writer.error(input.path, input.error);
          return examples::kExitFailure;
        }

        const blip::Captioner captioner = blip::Captioner::load(model_dir, load_options);
        blip::CaptionOptions options;
        options.prompt = prompt;
        options.generation = generation_options;

        const auto started = std::chrono::steady_clock::now();
        const std::size_t total = inputs.size();
        examples::ImageBatchReader reader(std::move(inputs), batch_size, captioner.folder().image_processor,
                                          !command.has("--no-read-ahead"));
        examples::Progress progress(total, "images");
        examples::ImageBatch batch;
        std::size_t captioned = 0;
        while (reader.next(batch)) {
          std::vector<std::vector<blip::Caption>> captions;
          if (batch.images() > 0) captions = captioner.caption(batch.pixels, options);
          progress.clear();
          for (std::size_t index = 0; index < batch.entries.size(); ++index) {
            const examples::ImageInput& entry = batch.entries[index];
            if (!entry.error.empty()) {
              writer.error(entry.path, entry.error);
              continue;
            }
            const blip::Caption& best = captions[batch.rows[index]].front();
            if (command.has("--sidecar")) {
              try {
                sidecars.write(entry.path, best.text);
              } catch (const blip::Error& error) {
                writer.error(entry.path, error.what());
                continue;
              }
            }
            if (!coco_results.empty()) {
              const auto id = coco_image_ids.find(std::filesystem::path(entry.path).filename().string());
              if (id == coco_image_ids.end()) {
                writer.error(entry.path, entry.path + ": not among the images of " +
                                             command.value("--coco-annotations") + " (matched by file name)");
                continue;
              }
              coco_captions.push_back({{"image_id", id->second}, {"caption", without_prompt(best.text, prompt)}});
            }
            writer.result({entry.path, best.text}, best.score);
            ++captioned;
          }
          writer.flush();
          progress.advance(batch.entries.size());
        }
        progress.clear();
        if (!coco_results.empty()) examples::write_sidecar(coco_results, coco_captions.dump(), /*overwrite=*/true);
        const std::string done = "captioned " + std::to_string(captioned) + " images";
        blip::log_step(true, done.c_str(), started);
        if (writer.errors() > 0) {
          std::fprintf(stderr, "blip_caption: %zu of %zu inputs failed\n", writer.errors(), total);
          return examples::kExitFailure;
        }
        return examples::kExitSuccess;
      });
}
