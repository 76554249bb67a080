// The COCO caption and VQA v2 files: which images / questions are scored, in which order, and clear
// errors (naming the file and what was expected) for malformed input.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "blip/evaluation/caption_evaluation.hpp"
#include "blip/evaluation/vqa_format.hpp"
#include "test_support.hpp"

namespace evaluation_formats_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::error_of;
using blip::test::contains;

namespace {

using nlohmann::json;

json coco_annotations() {
  return json::parse(R"({
    "images": [{"id": 3}, {"id": 1}, {"id": 2}, {"id": 1}],
    "annotations": [{"image_id": 1, "caption": "A dog."}, {"image_id": 3, "caption": "A cat."},
                    {"image_id": 1, "caption": "A brown dog."}, {"image_id": 2, "caption": "A bird."},
                    {"image_id": 3, "caption": "Two cats."}]})");
}

}  // namespace

TEST_CASE("COCO captions: the result images, in the annotation file's image order") {
  const json results = json::parse(R"([{"image_id": 1, "caption": "a dog"}, {"image_id": 3, "caption": "a cat"}])");
  const auto corpus = blip::evaluation::read_coco_captions(coco_annotations(), "ann.json", results, "res.json");
  CHECK(corpus.image_ids == std::vector<std::string>{"3", "1"});  // image 2 has no result: not scored
  CHECK(corpus.references ==
        std::vector<std::vector<std::string>>{{"A cat.", "Two cats."}, {"A dog.", "A brown dog."}});
  CHECK(corpus.candidates == std::vector<std::string>{"a cat", "a dog"});
  const auto scores = blip::evaluation::score_captions(corpus);
  CHECK(scores.tokenized[0].references == std::vector<std::string>{"a cat", "two cats"});
  CHECK(scores.bleu.corpus[0] == doctest::Approx(1.0));
  CHECK(blip::evaluation::caption_scores_json(scores).size() == 5);
}

TEST_CASE("COCO captions: malformed files name the file and what was expected") {
  const json annotations = coco_annotations();
  const auto read = [&](const json& results) {
    return error_of([&] { blip::evaluation::read_coco_captions(annotations, "ann.json", results, "res.json"); });
  };
  CHECK(contains(error_of([] { blip::evaluation::read_coco_captions(json::array(), "ann.json", json::array(), "r"); }),
                 "ann.json: expected a COCO caption annotation file"));
  CHECK(contains(read(json::object()), "res.json: expected caption results: a JSON array"));
  CHECK(contains(read(json::array()), "res.json: no results"));
  CHECK(contains(read(json::parse(R"([{"image_id": 1}])")), "res.json: [0]: missing \"caption\""));
  CHECK(contains(read(json::parse(R"([{"image_id": 1, "caption": 5}])")), "\"caption\" must be a string"));
  CHECK(contains(read(json::parse(R"([{"image_id": 1.5, "caption": "x"}])")), "\"image_id\" must be an integer"));
  CHECK(contains(read(json::parse(R"([{"image_id": 1, "caption": "x"}, {"image_id": 1, "caption": "y"}])")),
                 "res.json: [1]: a second caption for image_id 1"));
  CHECK(contains(read(json::parse(R"([{"image_id": 7, "caption": "x"}])")),
                 "res.json: image_id 7 is not among the \"images\" of ann.json"));
  json no_captions = annotations;
  no_captions["images"].push_back({{"id", 9}});
  CHECK(contains(error_of([&] {
                   blip::evaluation::read_coco_captions(
                       no_captions, "ann.json", json::parse(R"([{"image_id": 9, "caption": "x"}])"), "res.json");
                 }),
                 "ann.json: no reference caption for image_id 9"));
}

TEST_CASE("VQA files: malformed files name the file and what was expected") {
  const json questions = json::parse(R"({"questions": [{"question_id": 1}, {"question_id": 2}]})");
  const json annotations = json::parse(R"({"annotations": [
    {"question_id": 1, "question_type": "what is", "answer_type": "other", "answers": [{"answer": "cat", "answer_id": 1}]},
    {"question_id": 2, "question_type": "is the", "answer_type": "yes/no", "answers": [{"answer": "yes", "answer_id": 1}]}]})");
  const json results = json::parse(R"([{"question_id": 2, "answer": "yes"}, {"question_id": 1, "answer": "cat"}])");
  const auto read = [](const json& q, const json& a, const json& r) {
    return error_of([&] { blip::evaluation::read_vqa(q, "q.json", a, "a.json", r, "r.json"); });
  };
  const auto scored = blip::evaluation::read_vqa(questions, "q.json", annotations, "a.json", results, "r.json");
  REQUIRE(scored.size() == 2);
  CHECK(scored[0].prediction == "cat");  // annotation order, not result order
  CHECK(scored[0].answer_records == std::vector<std::string>{R"({"answer_id":1})"});
  CHECK(blip::evaluation::evaluate_vqa(scored).overall == 0.0);  // a lone human leaves no one to agree

  CHECK(contains(read(json::array(), annotations, results), "q.json: expected a VQA question file"));
  CHECK(contains(read(questions, json::array(), results), "a.json: expected a VQA annotation file"));
  CHECK(contains(read(questions, annotations, json::object()), "r.json: expected VQA results: a JSON array"));
  CHECK(contains(read(questions, annotations, json::parse(R"([{"question_id": 1, "answer": "cat"}])")),
                 "r.json: no answer for 1 of the 2 questions of a.json (the first: question_id 2)"));
  CHECK(contains(read(questions, annotations, json::parse(R"([{"question_id": 1, "answer": "a"},
                 {"question_id": 2, "answer": "b"}, {"question_id": 3, "answer": "c"}])")),
                 "r.json: question_id 3 is not a question of a.json"));
  CHECK(contains(read(questions, annotations, json::parse(R"([{"question_id": 1, "answer": "a"},
                 {"question_id": 1, "answer": "b"}])")),
                 "r.json: [1]: a second answer for question_id 1"));
  CHECK(contains(read(questions, annotations, json::parse(R"([{"question_id": 1, "answer": 3}])")),
                 "r.json: [0]: \"answer\" must be a string"));
  CHECK(contains(read(json::parse(R"({"questions": [{"question_id": 2}]})"), annotations, results),
                 "a.json: annotations[0]: question_id 1 is not in q.json"));
  json no_answers = annotations;
  no_answers["annotations"][0]["answers"] = json::array();
  CHECK(contains(read(questions, no_answers, results), "a.json: annotations[0]: \"answers\" is empty"));
  json multiple_choice = questions;
  multiple_choice["task_type"] = "Multiple Choice";
  multiple_choice["questions"][0]["multiple_choices"] = {"dog", "bird"};
  multiple_choice["questions"][1]["multiple_choices"] = {"yes", "no"};
  CHECK(contains(read(multiple_choice, annotations, results),
                 "r.json: the answer \"cat\" to question_id 1 is not one of its multiple choices"));
}

TEST_CASE("blip_eval's reference files score as pycocoevalcap and vqaEval.py scored them") {
  const std::string cli = blip::test::test_data("evaluation/cli/");
  const auto corpus =
      blip::evaluation::read_coco_captions(blip::test::load_json(cli + "captions_annotations.json"), "annotations",
                                           blip::test::load_json(cli + "captions_results.json"), "results");
  const json caption_json = blip::evaluation::caption_scores_json(blip::evaluation::score_captions(corpus));
  const json expected = blip::test::load_json(cli + "captions_expected.json");
  REQUIRE(caption_json.size() == expected.size());
  for (const auto& [key, value] : expected.items()) {
    CHECK(caption_json.at(key).get<double>() == doctest::Approx(value.get<double>()).epsilon(1e-12));
  }
  const auto questions = blip::evaluation::read_vqa(blip::test::load_json(cli + "vqa_questions.json"), "questions",
                                                    blip::test::load_json(cli + "vqa_annotations.json"), "annotations",
                                                    blip::test::load_json(cli + "vqa_results.json"), "results");
  CHECK(json(blip::evaluation::vqa_accuracy_json(blip::evaluation::evaluate_vqa(questions))) ==
        blip::test::load_json(cli + "vqa_expected.json"));
}

}  // namespace evaluation_formats_test
