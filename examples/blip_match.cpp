// blip_match: scores (image, text) pairs with a BLIP retrieval model folder: every image with
// every text, or the pairs of a JSON-lines file; --threshold flags pairs that do not match
// (a catalogue's consistency check: exit status 3 when any is flagged).
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "support/arguments.hpp"
#include "support/retrieval_io.hpp"

namespace {
const char* const kUsage =
    "usage: blip_match MODEL_DIR --image IMAGE [--image IMAGE ...] --text TEXT [--text TEXT ...] [options]\n"
    "       blip_match MODEL_DIR --pairs PAIRS.jsonl [options]\n"
    "\n"
    "Prints, for every image and text, the image-text matching probability (ITM head) and the\n"
    "contrastive cosine similarity (ITC), with a Hugging Face BLIP retrieval model folder,\n"
    "e.g. Salesforce/blip-itm-base-coco.\n"
    "\n"
    "options:\n"
    "  --pairs FILE      score only the pairs listed, one JSON object {\"image\": PATH, \"text\": TEXT} per\n"
    "                    line (a catalogue: each image's texts scored together, one image in memory at a time),\n"
    "                    printed in the file's order\n"
    "  --threshold T     flag pairs whose ITM probability is below T (in [0, 1]): \"flagged\": true in --json,\n"
    "                    FLAG in the table, a count on stderr, and exit status 3 if any pair is flagged\n"
    "  --tokenizer DIR   tokenizer files from DIR instead of MODEL_DIR\n"
    "  --threads N       threads for the kernels\n"
    "  --precision P     Linear weights in P: as-stored (default), f32, bf16, f16, int8 or int4\n"
    "  --activations A   what narrow weights multiply: f32 (default), bf16 (bf16 weights) or int8 (int8, int4 weights)\n"
    "  --json            one JSON object per pair\n"
    "  --help            this text\n"
    "Images are decoded one at a time and only their preprocessed pixels are kept; invalid UTF-8 bytes in a\n"
    "TEXT are dropped (with a note on stderr).\n"
    "Exit status 3: --threshold flagged at least one pair (everything else as below).\n";

constexpr int kExitFlagged = 3;

struct PairScore {
  float probability = 0, similarity = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_match", kUsage, {"--image", "--text", "--pairs", "--threshold"}, {"--json"},
      [](const blip::examples::CommandLine& command) {
        const bool from_pairs = command.has("--pairs");
        const std::vector<std::string> image_paths = command.values("--image");
        if (command.positional().size() != 1) return blip::examples::usage_error(kUsage);
        if (from_pairs && (!image_paths.empty() || command.has("--text")))
          blip::examples::usage_fail("--pairs lists the images and texts itself: leave out --image and --text");
        if (!from_pairs && (image_paths.empty() || !command.has("--text"))) return blip::examples::usage_error(kUsage);
        const bool json = command.has("--json");
        const bool thresholded = command.has("--threshold");
        const double threshold = command.real("--threshold", 0.0, 0.0, 1.0);
        const blip::LoadOptions load_options = blip::examples::load_options_from(command);

        // What can be checked without the model is checked before loading it.
        std::vector<blip::examples::ImageTextPair> pairs;
        if (from_pairs) {
          pairs = blip::examples::read_pair_lines(command.value("--pairs"));
          if (json) {
            for (const auto& pair : pairs) blip::examples::require_utf8(pair.image, "image path");
          }
        } else {
          if (json) {
            for (const std::string& path : image_paths) blip::examples::require_utf8(path, "image path");
          }
          blip::examples::check_input_files(image_paths);
          std::vector<std::string> texts;
          for (const std::string& text : command.values("--text")) {
            const std::string what = "--text " + std::to_string(texts.size() + 1);
            texts.push_back(blip::examples::valid_utf8_text(text, "blip_match", what));
          }
          for (const std::string& image : image_paths)
            for (const std::string& text : texts) pairs.push_back({image, text});
        }

        const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(command.positional()[0], load_options);
        // Each image once, with all its texts: one image's pixels in memory at a time.
        std::map<std::string, std::vector<std::size_t>> pairs_of_image;
        std::vector<std::string> image_order;
        for (std::size_t index = 0; index < pairs.size(); ++index) {
          auto& list = pairs_of_image[pairs[index].image];
          if (list.empty()) image_order.push_back(pairs[index].image);
          list.push_back(index);
        }
        std::vector<PairScore> scores(pairs.size());
        const auto progress = from_pairs ? blip::examples::terminal_progress("blip_match") : nullptr;
        const auto started = std::chrono::steady_clock::now();
        for (std::size_t done = 0; done < image_order.size(); ++done) {
          const std::vector<std::size_t>& indices = pairs_of_image[image_order[done]];
          std::vector<std::string> texts;
          for (const std::size_t index : indices) texts.push_back(pairs[index].text);
          const blip::MatchTable table = matcher.match(
              blip::load_preprocessed_batch({image_order[done]}, matcher.folder().image_processor), texts);
          for (std::size_t column = 0; column < indices.size(); ++column) {
            const auto text = static_cast<std::int64_t>(column);
            scores[indices[column]] = {table.match_probability.at(0, text), table.similarity.at(0, text)};
          }
          if (progress) progress("images scored", static_cast<std::int64_t>(done + 1),
                                 static_cast<std::int64_t>(image_order.size()));
        }
        blip::log_step(true, "scored", started);

        std::size_t flagged_count = 0;
        if (!json) std::printf("%-40s %-40s %10s %10s\n", "image", "text", "itm_prob", "itc_cos");
        for (std::size_t index = 0; index < pairs.size(); ++index) {
          const PairScore& score = scores[index];
          const bool flagged = thresholded && score.probability < threshold;
          flagged_count += flagged ? 1 : 0;
          if (json) {
            std::printf("{\"image\": %s, \"text\": %s, \"itm_probability\": %.6f, \"itc_similarity\": %.6f%s}\n",
                        blip::examples::json_string(pairs[index].image).c_str(),
                        blip::examples::json_string(pairs[index].text).c_str(), score.probability, score.similarity,
                        thresholded ? (flagged ? ", \"flagged\": true" : ", \"flagged\": false") : "");
          } else {
            std::printf("%-40s %-40s %10.4f %10.4f%s\n", pairs[index].image.c_str(), pairs[index].text.c_str(),
                        score.probability, score.similarity, flagged ? "  FLAG" : "");
          }
        }
        if (thresholded) {
          std::fprintf(stderr, "[blip] %zu of %zu pairs below ITM probability %g\n", flagged_count, pairs.size(),
                       threshold);
          if (flagged_count > 0) return kExitFlagged;
        }
        return 0;
      });
}
