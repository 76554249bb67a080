// blip/evaluation/caption_evaluation.hpp: pycocoevalcap's COCOEvalCap.evaluate() for BLEU and CIDEr-D:
// tokenise the references of all scored images in one PTBTokenizer pass and the candidates in
// another (the lexer looks across caption boundaries, so the grouping matters), then score.
// METEOR and SPICE need Java and are not computed; ROUGE-L is not computed either.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/evaluation/bleu.hpp"
#include "blip/evaluation/cider.hpp"
#include "blip/evaluation/coco_caption_format.hpp"
#include "blip/evaluation/ptb_tokenizer.hpp"

namespace blip::evaluation {

struct CaptionScores {
  std::vector<TokenizedCaptions> tokenized;  // what the scorers saw, per image
  BleuScores bleu;                           // bleu.corpus = Bleu_1 .. Bleu_4
  CiderScores cider;                         // cider.corpus = CIDEr
};

inline CaptionScores score_captions(const CocoCaptionCorpus& corpus) {
  check(!corpus.candidates.empty(), "caption evaluation: no images to score");
  std::vector<std::string> all_references;
  for (const std::vector<std::string>& references : corpus.references) {
    all_references.insert(all_references.end(), references.begin(), references.end());
  }
  const std::vector<std::string> references = coco_tokenize(all_references);
  const std::vector<std::string> candidates = coco_tokenize(corpus.candidates);
  CaptionScores scores;
  std::size_t next = 0;
  for (std::size_t image = 0; image < corpus.candidates.size(); ++image) {
    TokenizedCaptions captions{candidates[image], {}};
    for (std::size_t k = 0; k < corpus.references[image].size(); ++k) captions.references.push_back(references[next++]);
    scores.tokenized.push_back(std::move(captions));
  }
  scores.bleu = corpus_bleu(scores.tokenized);
  scores.cider = cider_d(scores.tokenized);
  return scores;
}

// The scores with COCOEvalCap's names and scales (BLEU in [0, 1], CIDEr as is, about 0..10).
inline nlohmann::ordered_json caption_scores_json(const CaptionScores& scores) {
  nlohmann::ordered_json json;
  for (std::size_t n = 0; n < scores.bleu.corpus.size(); ++n)
    json["Bleu_" + std::to_string(n + 1)] = scores.bleu.corpus[n];
  json["CIDEr"] = scores.cider.corpus;
  return json;
}

}  // namespace blip::evaluation
