// blip_run_case: the parity tool. Recomputes a Hugging Face fixture case with
// blipcpp and writes every output case.json lists, under the same names and
// dtypes, so it can be compared with the case's outputs.safetensors.
//
//   blip_run_case CASE_DIR OUT.safetensors
//   blip_run_case --accuracy CASE_DIR... [--settings bf16,int8:int8,...] [--threads N]
//   blip_run_case --preprocess IMAGE --size S OUT.safetensors
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "blip/core/threading.hpp"
#include "blip/io/image.hpp"
#include "blip/io/output_file.hpp"
#include "blip/io/safetensors.hpp"
#include "parity/case_runner.hpp"
#include "parity/precision_accuracy.hpp"
#include "support/command_line.hpp"

namespace {

const char* const kUsage =
    "usage: blip_run_case CASE_DIR OUT.safetensors\n"
    "       blip_run_case --accuracy CASE_DIR... [--settings LIST] [--threads N]\n"
    "       blip_run_case --preprocess IMAGE --size S OUT.safetensors\n"
    "\n"
    "The first form reads a fixture case (config.json, model.safetensors, inputs.safetensors,\n"
    "case.json), computes every output case.json lists for its kind (blip_caption, blip_vqa,\n"
    "blip_itm, blip2_opt, blip2_opt_imgtok, blip2_t5, blip2_itm) and writes them to OUT.safetensors\n"
    "under the same names and dtypes.\n"
    "--accuracy runs the cases once per Linear precision setting and compares them with their\n"
    "outputs.safetensors (Hugging Face's f32): one table row per setting, over all the cases given:\n"
    "the logits' max |diff| / max |ref| and mean |diff| / mean |ref|, top-1 agreement (and, where\n"
    "the arg-max differs, the largest gap HF's own top two logits had there), and how many generated\n"
    "sequences are identical. --settings: comma-separated WEIGHTS[:ACTIVATIONS] (f32, f16, bf16,\n"
    "bf16:bf16, int8, int8:int8, int4, int4:int8; default all of them).\n"
    "The second form writes the pixel_values [1,3,S,S] blipcpp's image pipeline makes for IMAGE\n"
    "(EXIF orientation, RGB conversion, Pillow bicubic resize to SxS, rescale, CLIP normalization).\n"
    "A regular OUT file is replaced only once the new one is complete (written beside it, then renamed);\n"
    "a symbolic link, FIFO or character device (/dev/stdout) is written through; a directory is refused.\n";

// Writes the file through blip/io/output_file.hpp's rules: write-then-rename only
// for a regular file (or none), never over a FIFO, link or device node.
void write_output(const blip::SafetensorsWriter& writer, const std::string& path) {
  if (blip::output_kind(path) == blip::OutputKind::Replace) {
    writer.write(path);
  } else {
    blip::write_through(path, writer.serialize());
  }
}

int run_case(const std::string& case_dir, const std::string& output_path) {
  const auto started = std::chrono::steady_clock::now();
  blip::parity::CaseRunner runner(case_dir);
  const blip::parity::CaseOutputs outputs = runner.run();
  blip::SafetensorsWriter writer;
  for (const std::string& name : outputs.names) {
    const auto& tensor = outputs.tensors.at(name);
    if (std::holds_alternative<blip::Tensor<float>>(tensor)) {
      writer.add<float>(name, std::get<blip::Tensor<float>>(tensor));
    } else {
      writer.add<std::int64_t>(name, std::get<blip::Tensor<std::int64_t>>(tensor));
    }
  }
  writer.set_metadata("kind", runner.kind());
  write_output(writer, output_path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "%s: %zu outputs of kind %s written to %s in %.2f s\n", case_dir.c_str(),
               outputs.names.size(), runner.kind().c_str(), output_path.c_str(), seconds);
  return 0;
}

// The rows of the accuracy table, one setting after another (each loads the models again in its precision).
int run_accuracy(const std::vector<std::string>& case_dirs, const std::vector<blip::parity::PrecisionSetting>& settings) {
  // Markdown, as docs/performance.md shows it (the bars inside a cell escaped).
  std::printf("| Linear weights | logits: max \\|diff\\| / max \\|ref\\| | mean \\|diff\\| / mean \\|ref\\| | top-1 "
              "agreement | largest HF top-2 gap where the arg-max differs | generated sequences identical | seconds |\n"
              "|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const blip::parity::PrecisionSetting& setting : settings) {
    const auto started = std::chrono::steady_clock::now();
    blip::parity::PrecisionAccuracy accuracy;
    for (const std::string& case_dir : case_dirs) blip::parity::measure_case_accuracy(case_dir, setting, accuracy);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("| %s | %.2e | %.2e | %.2f%% of %lld | %.3g | %lld of %lld | %.0f |\n", setting.name,
                accuracy.max_error, accuracy.mean_error(), 100.0 * accuracy.top1_agreement(),
                static_cast<long long>(accuracy.positions), accuracy.largest_gap_where_parted,
                static_cast<long long>(accuracy.identical_sequences), static_cast<long long>(accuracy.sequences),
                seconds);
    std::fflush(stdout);
  }
  return 0;
}

std::vector<blip::parity::PrecisionSetting> settings_from(const std::string& list) {
  if (list.empty()) return blip::parity::precision_settings();
  std::vector<blip::parity::PrecisionSetting> settings;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    blip::parity::PrecisionSetting setting{};
    if (!blip::parity::parse_precision_setting(item, setting))
      blip::examples::usage_fail("option --settings: '", blip::clip(item),
                                 "' is not one of f32, f16, bf16, bf16:bf16, int8, int8:int8, int4, int4:int8");
    settings.push_back(setting);
  }
  if (settings.empty()) blip::examples::usage_fail("option --settings: no setting given");
  return settings;
}

int run_preprocess(const std::string& image_path, int size, const std::string& output_path) {
  blip::ImageProcessorConfig config;
  config.height = size;
  config.width = size;
  const blip::Image image = blip::load_image(image_path);
  const blip::Tensor<float> pixels = blip::preprocess(image, config);
  blip::SafetensorsWriter writer;
  writer.add<float>("pixel_values", pixels.reshape(blip::Shape{1, 3, size, size}));
  write_output(writer, output_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_command(
      argc, argv, "blip_run_case", kUsage, {"--preprocess", "--size", "--settings", "--threads"}, {"--accuracy"},
      [](const blip::examples::CommandLine& command) {
        const auto& positional = command.positional();
        if (command.has("--accuracy")) {
          if (positional.empty() || command.has("--preprocess") || command.has("--size"))
            return blip::examples::usage_error(kUsage);
          const auto settings = settings_from(command.value("--settings"));
          if (command.has("--threads"))
            blip::set_num_threads(static_cast<int>(command.integer("--threads", 0, 1, blip::kMaxThreads)));
          return run_accuracy(positional, settings);
        }
        if (command.has("--settings") || command.has("--threads")) return blip::examples::usage_error(kUsage);
        if (command.has("--preprocess") || command.has("--size")) {
          if (!command.has("--preprocess") || !command.has("--size") || positional.size() != 1)
            return blip::examples::usage_error(kUsage);
          const long size = command.integer("--size", 0, 1, 8192);
          return run_preprocess(command.value("--preprocess"), static_cast<int>(size), positional[0]);
        }
        if (positional.size() != 2 || positional[0].empty() || positional[0][0] == '-')
          return blip::examples::usage_error(kUsage);
        return run_case(positional[0], positional[1]);
      });
}
