// blip_search: queries a retrieval index made by blip_embed with a text (ranks its images) or
// an image (ranks its texts), by the ITC score blip_match prints as itc_cos.
#include <cstdio>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"

namespace {
const char* const kUsage =
    "usage: blip_search MODEL_DIR INDEX.safetensors (--text TEXT | --image IMAGE) [--top-k K] [--json] [options]\n"
    "\n"
    "Embeds the query with MODEL_DIR and prints the index's K best matches, best first: its images for\n"
    "--text, its texts for --image. The score is the ITC cosine (BLIP-2: the best over the image's query\n"
    "embeddings), the itc_cos of blip_match. The index must come from the same model: a different family\n"
    "or embedding size is an error; a different model folder name a note on stderr.\n"
    "\n"
    "  --text T     rank the index's images for T\n"
    "  --image I    rank the index's texts for image I\n"
    "  --top-k K    how many (default 10)\n"
    "  --json       one JSON object: {\"query\", \"results\": [{\"rank\", \"index\", \"score\", \"image\"|\"text\"}]}\n"
    "  --tokenizer DIR  --threads N  --precision P   as the other programs\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_search", kUsage, {"--text", "--image", "--top-k"}, {"--json"},
      [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 2 || command.has("--text") == command.has("--image"))
          return blip::examples::usage_error(kUsage);
        const long top_k = command.integer("--top-k", 10, 1, 1L << 30);
        const bool json = command.has("--json");
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);
        const std::string index_path = command.positional()[1];
        std::string text, image;
        if (command.has("--image")) {
          image = command.value("--image");
          if (json) blip::examples::require_utf8(image, "image path");
          blip::examples::check_input_files({image});
        } else {
          text = blip::examples::valid_utf8_text(command.value("--text"), "blip_search", "--text");
          if (text.empty()) blip::examples::usage_fail("--text is empty");
        }
        // The index is read before the model: a wrong file costs no load time.
        const blip::RetrievalIndex index = blip::load_retrieval_index(index_path);
        if (command.has("--image") && index.texts.empty())
          blip::fail(index_path, ": holds no texts to rank for an image (made with --images only)");
        if (command.has("--text") && index.image_paths.empty())
          blip::fail(index_path, ": holds no images to rank for a text (made with --texts only)");

        const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(command.positional()[0], load_options);
        blip::check_index_matches_model(index, index_path, matcher);
        const bool by_text = command.has("--text");
        const std::vector<blip::evaluation::ScoredIndex> found =
            by_text ? blip::search_images(index, matcher.text_embeddings({text}), top_k)
                    : blip::search_texts(index, blip::embed_images(matcher, {image}), top_k);

        const std::vector<std::string>& items = by_text ? index.image_paths : index.texts;
        if (json) {
          std::printf("{\"query\": {\"%s\": %s}, \"results\": [", by_text ? "text" : "image",
                      blip::examples::json_string(by_text ? text : image).c_str());
          for (std::size_t rank = 0; rank < found.size(); ++rank) {
            std::printf("%s{\"rank\": %zu, \"index\": %lld, \"score\": %.6f, \"%s\": %s}", rank ? ", " : "", rank + 1,
                        static_cast<long long>(found[rank].index), found[rank].score, by_text ? "image" : "text",
                        blip::examples::json_string(items[static_cast<std::size_t>(found[rank].index)]).c_str());
          }
          std::printf("]}\n");
        } else {
          for (std::size_t rank = 0; rank < found.size(); ++rank)
            std::printf("%3zu  %9.6f  %s\n", rank + 1, found[rank].score,
                        items[static_cast<std::size_t>(found[rank].index)].c_str());
        }
        return 0;
      });
}
