// blip_run_case: the parity tool. Recomputes a Hugging Face fixture case with
// blipcpp and writes every output case.json lists, under the same names and
// dtypes, so it can be compared with the case's outputs.safetensors.
//
//   blip_run_case CASE_DIR OUT.safetensors
//   blip_run_case --preprocess IMAGE --size S OUT.safetensors
#include <chrono>
#include <cstdio>
#include <string>

#include "blip/io/image.hpp"
#include "blip/io/output_file.hpp"
#include "blip/io/safetensors.hpp"
#include "parity/case_runner.hpp"
#include "support/command_line.hpp"

namespace {

const char* const kUsage =
    "usage: blip_run_case CASE_DIR OUT.safetensors\n"
    "       blip_run_case --preprocess IMAGE --size S OUT.safetensors\n"
    "\n"
    "The first form reads a fixture case (config.json, model.safetensors, inputs.safetensors,\n"
    "case.json), computes every output case.json lists for its kind (blip_caption, blip_vqa,\n"
    "blip_itm, blip2_opt, blip2_opt_imgtok, blip2_t5, blip2_itm) and writes them to OUT.safetensors\n"
    "under the same names and dtypes.\n"
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
      argc, argv, "blip_run_case", kUsage, {"--preprocess", "--size"}, {},
      [](const blip::examples::CommandLine& command) {
        const auto& positional = command.positional();
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
