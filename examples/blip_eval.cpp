// blip_eval: caption and VQA metrics as the papers' reference code computes them.
//
//   blip_eval caption --annotations captions_val2014.json --results results.json
//   {"Bleu_1":0.79,"Bleu_2":0.64,"Bleu_3":0.50,"Bleu_4":0.39,"CIDEr":1.31}
//
//   blip_eval vqa --questions Q.json --annotations A.json --results R.json
//   {"overall":78.25,"perQuestionType":{...},"perAnswerType":{"yes/no":92.1,"number":60.2,"other":70.3}}
//
//   blip_eval retrieval models/blip-itm-base-coco --images val2014 --captions coco_karpathy_test.json --rerank-k 256
//   {"txt_r1":80.6,"txt_r5":95.2,...,"img_r1":63.1,...,"r_mean":...}
//
// See docs/evaluation.md. Exit codes: 0 ok, 1 a file is missing or malformed (the message names it),
// 2 bad usage (an unknown option, a missing option or value).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "blip/blip.hpp"
#include "blip/evaluation/caption_evaluation.hpp"
#include "blip/evaluation/coco_retrieval_format.hpp"
#include "blip/evaluation/retrieval.hpp"
#include "blip/evaluation/vqa_format.hpp"
#include "blip/io/json_file.hpp"
#include "support/command_line.hpp"
#include "support/retrieval_io.hpp"

namespace {

const char* const kUsage =
    "usage: blip_eval caption --annotations CAPTIONS.json --results RESULTS.json\n"
    "       blip_eval vqa --questions QUESTIONS.json --annotations ANNOTATIONS.json --results RESULTS.json\n"
    "       blip_eval retrieval MODEL_DIR --images FOLDER --captions CAPTIONS.json [--rerank-k K] [--batch N]\n"
    "\n"
    "caption: BLEU-1..4 and CIDEr-D as pycocoevalcap's COCOEvalCap computes them (PTB tokenisation,\n"
    "  lower case, punctuation dropped). CAPTIONS.json is a COCO caption annotation file\n"
    "  ({\"images\": [{\"id\"}], \"annotations\": [{\"image_id\", \"caption\"}]}), RESULTS.json a list of\n"
    "  {\"image_id\", \"caption\"}, one per image; the images in the results are scored. Prints one JSON\n"
    "  object: {\"Bleu_1\", \"Bleu_2\", \"Bleu_3\", \"Bleu_4\", \"CIDEr\"} (BLEU in [0, 1], as pycocoevalcap).\n"
    "  METEOR, ROUGE-L and SPICE are not computed.\n"
    "vqa: VQA accuracy as the official vqaEval.py computes it, from the VQA v2 question and annotation\n"
    "  files and a list of {\"question_id\", \"answer\"} answering every annotated question. Prints\n"
    "  {\"overall\", \"perQuestionType\", \"perAnswerType\"} in percent, rounded to 2 decimals.\n"
    "retrieval: image->text and text->image Recall@1/5/10 as BLIP's itm_eval (train_retrieval.py), with a\n"
    "  BLIP or BLIP-2 retrieval model folder. CAPTIONS.json is a COCO caption file ({\"images\": [{\"id\",\n"
    "  \"file_name\"}], \"annotations\": [{\"image_id\", \"caption\"}]}), each file_name under FOLDER; an image\n"
    "  query is right at K if any of its captions is among its K best texts, a caption if its image is.\n"
    "  Ranked by the ITC score; --rerank-k K re-ranks each query's K best by ITM logit + ITC as BLIP's\n"
    "  evaluation() (the papers: COCO 256, Flickr30k 128). Prints {\"txt_r1\", \"txt_r5\", \"txt_r10\",\n"
    "  \"txt_r_mean\", \"img_r1\", \"img_r5\", \"img_r10\", \"img_r_mean\", \"r_mean\"} in percent. --batch N:\n"
    "  images embedded at once (default 8). Takes --tokenizer, --threads, --precision as the model programs;\n"
    "  progress on stderr when it is a terminal.\n";

// A missing file option is a mistake in the command line: exit status 2, like every usage error.
std::string required(const blip::examples::CommandLine& command, const char* option) {
  const std::string value = command.value(option);
  if (value.empty()) blip::examples::usage_fail("option ", option, " is required");
  return value;
}

// blip_eval retrieval: embed the test set's images and captions, then Recall@K (optionally
// ITM re-ranked, one vision pass per image for all the pairs it is re-scored in).
nlohmann::ordered_json evaluate_retrieval(const blip::examples::CommandLine& command, const std::string& model_dir) {
  const std::string captions = required(command, "--captions");
  const std::string images = required(command, "--images");
  const long rerank_k = command.integer("--rerank-k", 0, 0, 1L << 20);
  const long batch = command.integer("--batch", 8, 1, 4096);
  const blip::LoadOptions load_options = blip::examples::load_options_from(command);
  const blip::evaluation::RetrievalTestSet set =
      blip::evaluation::read_coco_retrieval_set(blip::read_json_file(captions), captions);
  std::vector<std::string> paths;
  for (const std::string& file : set.image_files) paths.push_back((std::filesystem::path(images) / file).string());
  for (std::size_t image = 0; image < paths.size(); ++image) {
    try {
      blip::require_regular_file(paths[image]);
    } catch (const blip::Error& problem) {
      blip::fail(captions, ": image ", set.image_ids[image], ": ", problem.what());
    }
  }

  const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(model_dir, load_options);
  const auto progress = blip::examples::terminal_progress("blip_eval");
  auto started = std::chrono::steady_clock::now();
  const blip::RetrievalIndex index = blip::make_retrieval_index(matcher, paths, set.texts, batch, progress);
  blip::log_step(true, "embedded the images and captions", started);

  blip::evaluation::RecallOptions options;
  options.rerank_k = rerank_k;
  options.progress = progress;
  if (rerank_k > 0) {
    options.itm_logits = [&](std::int64_t image, const std::vector<std::int64_t>& texts) {
      std::vector<std::string> chosen;
      for (const std::int64_t text : texts) chosen.push_back(set.texts[static_cast<std::size_t>(text)]);
      return matcher.match_logits(
          blip::load_preprocessed_batch({paths[static_cast<std::size_t>(image)]}, matcher.folder().image_processor),
          chosen);
    };
  }
  started = std::chrono::steady_clock::now();
  const blip::evaluation::RetrievalRecall recall = blip::evaluation::retrieval_recall(
      blip::evaluation::similarity_from_embeddings(index.view()), set.image_of_text, options);
  blip::log_step(true, rerank_k > 0 ? "ranked (ITC, then ITM re-ranking)" : "ranked by ITC", started);
  std::fprintf(stderr, "[blip] %zu images, %zu captions%s\n", paths.size(), set.texts.size(),
               rerank_k > 0 ? (", re-ranked top " + std::to_string(rerank_k)).c_str() : "");
  return blip::evaluation::retrieval_recall_json(recall);
}

}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_program(
      argc, argv, "blip_eval", kUsage,
      {"--annotations", "--results", "--questions", "--images", "--captions", "--rerank-k", "--batch"}, {},
      [](const blip::examples::CommandLine& command) {
        const auto& positional = command.positional();
        if (positional.size() == 2 && positional[0] == "retrieval") {
          std::printf("%s\n", evaluate_retrieval(command, positional[1]).dump().c_str());
          return 0;
        }
        if (positional.size() != 1 || (positional[0] != "caption" && positional[0] != "vqa")) {
          return blip::examples::usage_error(kUsage);
        }
        const std::string annotations = required(command, "--annotations");
        const std::string results = required(command, "--results");
        nlohmann::ordered_json output;
        if (positional[0] == "caption") {
          const blip::evaluation::CocoCaptionCorpus corpus = blip::evaluation::read_coco_captions(
              blip::read_json_file(annotations), annotations, blip::read_json_file(results), results);
          output = blip::evaluation::caption_scores_json(blip::evaluation::score_captions(corpus));
        } else {
          const std::string questions = required(command, "--questions");
          const auto scored =
              blip::evaluation::read_vqa(blip::read_json_file(questions), questions, blip::read_json_file(annotations),
                                         annotations, blip::read_json_file(results), results);
          output = blip::evaluation::vqa_accuracy_json(blip::evaluation::evaluate_vqa(scored));
        }
        std::printf("%s\n", output.dump().c_str());
        return 0;
      });
}
