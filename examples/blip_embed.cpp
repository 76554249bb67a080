// blip_embed: the ITC embeddings of images and/or texts, computed once and saved as a
// retrieval index (.safetensors) that blip_search queries.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"
#include "support/retrieval_io.hpp"

namespace {
const char* const kUsage =
    "usage: blip_embed MODEL_DIR (--images FOLDER_OR_LIST | --texts FILE) --out INDEX.safetensors [options]\n"
    "\n"
    "Embeds images and/or texts with a BLIP or BLIP-2 retrieval model folder (e.g. Salesforce/blip-itm-base-coco,\n"
    "Salesforce/blip2-itm-vit-g) and saves the unit vectors ITC compares, with the image paths and texts, as\n"
    "one safetensors file for blip_search. The score of an image and a text is the one blip_match prints as\n"
    "itc_cos (BLIP: one embedding per image; BLIP-2: one per query token, the best of them counts).\n"
    "\n"
    "  --images X     a folder (its jpg/jpeg/jpe/png/bmp/gif/ppm/pgm/pnm files, sorted by name) or a file\n"
    "                 listing one image path per line\n"
    "  --texts FILE   one text per line (blank lines skipped)\n"
    "  --out FILE     the index to write (replaced only once complete)\n"
    "  --batch N      images embedded at once (default 8; memory grows with it); texts at once: max(N, 64)\n"
    "  --tokenizer DIR  --threads N  --precision P   as the other programs\n"
    "Progress goes to stderr when it is a terminal.\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_embed", kUsage, {"--images", "--texts", "--out", "--batch"}, {},
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 1 || (!command.has("--images") && !command.has("--texts")) ||
            !command.has("--out"))
          return blip::examples::usage_error(kUsage);
        const long batch = command.integer("--batch", 8, 1, 4096);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        // The lists are read and checked before the model loads.
        const std::vector<std::string> image_paths =
            command.has("--images") ? blip::examples::read_image_list(command.value("--images")) : std::vector<std::string>{};
        const std::vector<std::string> texts =
            command.has("--texts") ? blip::examples::read_text_lines(command.value("--texts")) : std::vector<std::string>{};
        for (const std::string& path : image_paths)
          blip::check(blip::detail::first_invalid_utf8(reinterpret_cast<const std::uint8_t*>(path.data()), path.size()) ==
                          path.size(),
                      "image path '", blip::clip(path), "' is not valid UTF-8 (the index stores paths as JSON strings)");

        const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(command.positional()[0], load_options);
        const auto started = std::chrono::steady_clock::now();
        const blip::RetrievalIndex index =
            blip::make_retrieval_index(matcher, image_paths, texts, batch, blip::examples::terminal_progress("blip_embed"));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        blip::save_retrieval_index(index, command.value("--out"));
        std::fprintf(stderr, "[blip] embedded %zu images and %zu texts in %.2f s (%s, %lld x %lld per image); wrote %s\n",
                     image_paths.size(), texts.size(), seconds, index.family.c_str(),
                     static_cast<long long>(index.queries_per_image), static_cast<long long>(index.dimension),
                     command.value("--out").c_str());
        return 0;
      });
}
