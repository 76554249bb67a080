// blip_eval: caption and VQA metrics as the papers' reference code computes them.
//
//   blip_eval caption --annotations captions_val2014.json --results results.json
//   {"Bleu_1":0.79,"Bleu_2":0.64,"Bleu_3":0.50,"Bleu_4":0.39,"CIDEr":1.31}
//
//   blip_eval vqa --questions Q.json --annotations A.json --results R.json
//   {"overall":78.25,"perQuestionType":{...},"perAnswerType":{"yes/no":92.1,"number":60.2,"other":70.3}}
//
// See docs/evaluation.md. Exit codes: 0 ok, 1 a file is missing or malformed (the message names it),
// 2 bad usage (an unknown option, a missing option or value).
#include <cstdio>
#include <string>

#include "blip/evaluation/caption_evaluation.hpp"
#include "blip/evaluation/vqa_format.hpp"
#include "blip/io/json_file.hpp"
#include "support/command_line.hpp"

namespace {

const char* const kUsage =
    "usage: blip_eval caption --annotations CAPTIONS.json --results RESULTS.json\n"
    "       blip_eval vqa --questions QUESTIONS.json --annotations ANNOTATIONS.json --results RESULTS.json\n"
    "\n"
    "caption: BLEU-1..4 and CIDEr-D as pycocoevalcap's COCOEvalCap computes them (PTB tokenisation,\n"
    "  lower case, punctuation dropped). CAPTIONS.json is a COCO caption annotation file\n"
    "  ({\"images\": [{\"id\"}], \"annotations\": [{\"image_id\", \"caption\"}]}), RESULTS.json a list of\n"
    "  {\"image_id\", \"caption\"}, one per image; the images in the results are scored. Prints one JSON\n"
    "  object: {\"Bleu_1\", \"Bleu_2\", \"Bleu_3\", \"Bleu_4\", \"CIDEr\"} (BLEU in [0, 1], as pycocoevalcap).\n"
    "  METEOR, ROUGE-L and SPICE are not computed.\n"
    "vqa: VQA accuracy as the official vqaEval.py computes it, from the VQA v2 question and annotation\n"
    "  files and a list of {\"question_id\", \"answer\"} answering every annotated question. Prints\n"
    "  {\"overall\", \"perQuestionType\", \"perAnswerType\"} in percent, rounded to 2 decimals.\n";

// A missing file option is a mistake in the command line: exit status 2, like every usage error.
std::string required(const blip::examples::CommandLine& command, const char* option) {
  const std::string value = command.value(option);
  if (value.empty()) blip::examples::usage_fail("option ", option, " is required");
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_command(
      argc, argv, "blip_eval", kUsage, {"--annotations", "--results", "--questions"}, {},
      [](const blip::examples::CommandLine& command) {
        const auto& positional = command.positional();
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
