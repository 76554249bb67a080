// VQA accuracy: the normalisation and leave-one-out of the official vqaEval.py on hand cases, then
// hundreds of strings and answer sets scored by vqaEval.py itself (tests/oracle/make_evaluation_references.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "blip/evaluation/vqa_format.hpp"
#include "test_support.hpp"

namespace evaluation_vqa_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::evaluation::vqa_process_digit_article;
using blip::evaluation::vqa_process_punctuation;
using blip::evaluation::vqa_question_accuracy;
using blip::evaluation::VqaQuestion;

VqaQuestion question(std::vector<std::string> answers, std::string prediction) {
  VqaQuestion q;
  q.question_type = "what is";
  q.answer_type = "other";
  q.answers = std::move(answers);
  q.prediction = std::move(prediction);
  return q;
}

std::vector<std::string> repeated(std::vector<std::pair<std::string, int>> groups) {
  std::vector<std::string> answers;
  for (const auto& [answer, count] : groups) answers.insert(answers.end(), count, answer);
  return answers;
}

}  // namespace

TEST_CASE("processPunctuation as written") {
  // A mark is deleted when the text has it next to a space, or has digit,comma,digit anywhere;
  // otherwise it becomes a space.
  CHECK(vqa_process_punctuation("red,white") == "red white");
  CHECK(vqa_process_punctuation("red, white") == "red white");
  CHECK(vqa_process_punctuation("1,000") == "1000");
  CHECK(vqa_process_punctuation("red/white 1,2") == "redwhite 12");  // the digit-comma-digit test is global
  CHECK(vqa_process_punctuation("(red)") == " red ");
  CHECK(vqa_process_punctuation("hello;world") == "hello world");
  // Periods not followed by a digit go; "3.5" keeps its period.
  CHECK(vqa_process_punctuation("3.5.") == "3.5");
  CHECK(vqa_process_punctuation("a.m.") == "am");
  CHECK(vqa_process_punctuation("..5") == ".5");
  // Apostrophes, colons, percent signs are not in the list.
  CHECK(vqa_process_punctuation("don't 3:00 50%") == "don't 3:00 50%");
  // re.UNICODE (= 32) is passed as sub()'s count: only the first 32 periods are removed.
  CHECK(vqa_process_punctuation(std::string(33, '.')) == ".");
  CHECK(vqa_process_punctuation(std::string(40, '.') + "5") == "........5");
}

TEST_CASE("processDigitArticle as written") {
  CHECK(vqa_process_digit_article("The Two dogs") == "2 dogs");
  CHECK(vqa_process_digit_article("none") == "0");  // "none" is in the number map
  CHECK(vqa_process_digit_article("a  dog\tan  apple") == "dog apple");
  CHECK(vqa_process_digit_article("dont isnt Im") == "don't isn't im");  // "Im" -> "im": no capitals after lower()
  CHECK(vqa_process_digit_article("somebody'd") == "somebodyd");         // the table maps it backwards
  CHECK(vqa_process_digit_article("Ten.") == "ten.");                    // punctuation is not its business
  CHECK(vqa_process_digit_article("CAF\u00C9") == "caf\u00E9");
}

TEST_CASE("accuracy: min(#other humans who agree / 3, 1), averaged over leaving each human out") {
  // 2 say "yes", 8 say "no"; prediction "yes". Leaving out a "yes" human: 1 other agrees -> 1/3;
  // leaving out a "no" human: 2 agree -> 2/3. Mean: (2 * 1/3 + 8 * 2/3) / 10 = 0.6.
  CHECK(vqa_question_accuracy(question(repeated({{"yes", 2}, {"no", 8}}), "yes")) == doctest::Approx(0.6));
  // Three or more agreeing others give full credit.
  CHECK(vqa_question_accuracy(question(repeated({{"yes", 4}, {"no", 6}}), "yes")) == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(question(repeated({{"yes", 3}, {"no", 7}}), "yes")) ==
        doctest::Approx((3 * (2 / 3.0) + 7 * 1.0) / 10));
  CHECK(vqa_question_accuracy(question(repeated({{"no", 10}}), "yes")) == 0);
  // After normalisation "two" and "2" are the same answer.
  CHECK(vqa_question_accuracy(question(repeated({{"2", 3}, {"two", 2}, {"3", 5}}), "Two")) == doctest::Approx(1.0));
  // Surrounding whitespace, tabs and newlines are cleaned before anything else.
  CHECK(vqa_question_accuracy(question(repeated({{" red\n", 5}, {"blue", 5}}), "\tred ")) == doctest::Approx(1.0));
}

TEST_CASE("accuracy: no normalisation at all when every human gave the same answer") {
  const auto all_yes = repeated({{"yes", 10}});
  CHECK(vqa_question_accuracy(question(all_yes, "yes")) == 1.0);
  CHECK(vqa_question_accuracy(question(all_yes, "Yes")) == 0.0);
  CHECK(vqa_question_accuracy(question(all_yes, "yes.")) == 0.0);
  CHECK(vqa_question_accuracy(question(all_yes, " yes ")) == 1.0);  // stripping still happens
  // One dissenter switches normalisation on for everyone, the prediction included.
  CHECK(vqa_question_accuracy(question(repeated({{"yes", 9}, {"Yes!", 1}}), "YES.")) == doctest::Approx(1.0));
}

TEST_CASE("accuracy: identical answer records leave each other out together (dict comparison)") {
  VqaQuestion q = question({"cat", "cat", "dog"}, "cat");
  CHECK(vqa_question_accuracy(q) == doctest::Approx((1 / 3.0 + 1 / 3.0 + 2 / 3.0) / 3));
  // The first two records are the same dict: leaving out one leaves out both, so each sees only "dog".
  q.answer_records = {R"({"answer_id":1})", R"({"answer_id":1})", R"({"answer_id":2})"};
  CHECK(vqa_question_accuracy(q) == doctest::Approx((0 + 0 + 2 / 3.0) / 3));
}

TEST_CASE("dataset figures: percent, rounded as Python's round(x, 2), groups in first-seen order") {
  CHECK(blip::evaluation::round_like_python(2.675, 2) == 2.67);  // 2.675 is 2.67499999... in binary
  CHECK(blip::evaluation::round_like_python(0.125, 2) == 0.12);  // an exact half rounds to even
  CHECK(blip::evaluation::round_like_python(0.375, 2) == 0.38);
  std::vector<VqaQuestion> questions = {question(repeated({{"yes", 2}, {"no", 8}}), "yes"),
                                        question(repeated({{"no", 10}}), "no")};
  questions[1].question_type = "is the";
  questions[1].answer_type = "yes/no";
  const auto accuracy = blip::evaluation::evaluate_vqa(questions);
  CHECK(accuracy.overall == 80.0);  // 100 * (0.6 + 1) / 2
  REQUIRE(accuracy.per_question_type.size() == 2);
  CHECK(accuracy.per_question_type[0] == std::pair<std::string, double>{"what is", 60.0});
  CHECK(accuracy.per_question_type[1] == std::pair<std::string, double>{"is the", 100.0});
  CHECK(
      blip::evaluation::vqa_accuracy_json(accuracy).dump() ==
      R"({"overall":80.0,"perQuestionType":{"what is":60.0,"is the":100.0},"perAnswerType":{"other":60.0,"yes/no":100.0}})");
}

TEST_CASE("normalisation and accuracy agree with vqaEval.py") {
  const nlohmann::json data = blip::test::load_json(blip::test::test_data("evaluation/vqa_cases.json"));
  std::size_t strings = 0;
  for (const nlohmann::json& item : data.at("normalization")) {
    const std::string text = item.at("text");
    INFO("text: ", nlohmann::json(text).dump());
    CHECK(vqa_process_punctuation(text) == item.at("punctuation").get<std::string>());
    CHECK(vqa_process_digit_article(text) == item.at("digit_article").get<std::string>());
    CHECK(vqa_process_digit_article(vqa_process_punctuation(text)) == item.at("both").get<std::string>());
    ++strings;
  }
  double worst = 0;
  std::size_t question_count = 0, sets = 0;
  for (const nlohmann::json& set : data.at("sets")) {
    nlohmann::json questions = {{"questions", nlohmann::json::array()}};
    for (const nlohmann::json& record : set.at("annotations")) {
      questions["questions"].push_back({{"question_id", record.at("question_id")}});
    }
    const auto scored = blip::evaluation::read_vqa(questions, "questions", {{"annotations", set.at("annotations")}},
                                                   "annotations", set.at("results"), "results");
    const auto accuracy = blip::evaluation::evaluate_vqa(scored);
    for (std::size_t i = 0; i < scored.size(); ++i) {
      worst = std::max(worst, std::abs(accuracy.per_question[i] - set.at("per_question")[i].get<double>()));
    }
    // The rounded figures must be identical, not just close.
    CHECK(accuracy.overall == set.at("overall").get<double>());
    nlohmann::json per_question_type, per_answer_type;
    for (const auto& [name, value] : accuracy.per_question_type) per_question_type[name] = value;
    for (const auto& [name, value] : accuracy.per_answer_type) per_answer_type[name] = value;
    CHECK(per_question_type == set.at("perQuestionType"));
    CHECK(per_answer_type == set.at("perAnswerType"));
    question_count += scored.size();
    ++sets;
  }
  MESSAGE(strings, " strings normalised identically; ", sets, " sets, ", question_count,
          " questions: worst |accuracy difference| ", worst);
  CHECK(strings >= 400);
  CHECK(sets >= 200);
  CHECK(worst <= 1e-12);
}

}  // namespace evaluation_vqa_test
