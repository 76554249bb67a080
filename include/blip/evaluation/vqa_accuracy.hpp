// blip/evaluation/vqa_accuracy.hpp: VQA accuracy exactly as the official vqaEval.py computes it
// (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py), quirks included.
//
// For one question with human answers h_1..h_m (m = 10 in VQA v2) and a predicted answer p:
//   1. Every h_i and p: "\n" and "\t" become spaces, then surrounding whitespace is stripped.
//   2. Only if the h_i are NOT all the same string, every h_i and p go through
//      vqa_process_punctuation then vqa_process_digit_article (vqa_answer_normalization.hpp). So when
//      all ten humans wrote "yes", the prediction "Yes" or "yes." scores 0.
//   3. acc_i = min(1, #{j : record_j != record_i and h_j == p} / 3): the humans other than i who gave
//      p, a third each. The script compares whole answer RECORDS (dicts with answer_id and
//      answer_confidence), so two humans with identical records leave each other out together.
//   4. The question's accuracy is the mean of acc_i over the m humans.
// The dataset figures are 100 * the mean over questions, overall and for each question type and
// answer type, rounded to 2 decimals with Python's round() (correctly rounded, halves to even on the
// exact binary value).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/unicode_text.hpp"
#include "blip/evaluation/vqa_answer_normalization.hpp"

namespace blip::evaluation {

struct VqaQuestion {
  std::string question_type;         // "what color is the", "how many", ...
  std::string answer_type;           // "yes/no", "number", "other"
  std::vector<std::string> answers;  // the human answers
  // The rest of each human's answer record (answer_id, answer_confidence) as canonical JSON text, for
  // the leave-one-out of step 3. Empty: every record is distinct (true of VQA v2, whose answer_ids are).
  std::vector<std::string> answer_records;
  std::string prediction;  // the model's answer
};

// One question's accuracy in [0, 1] (steps 1-4).
inline double vqa_question_accuracy(const VqaQuestion& question) {
  check(!question.answers.empty(), "VQA accuracy: a question has no human answers");
  check(question.answer_records.empty() || question.answer_records.size() == question.answers.size(),
        "VQA accuracy: ", question.answer_records.size(), " answer records for ", question.answers.size(), " answers");
  const auto clean = [](std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\t', ' ');
    return strip_whitespace(text);
  };
  std::vector<std::string> answers;
  for (const std::string& answer : question.answers) answers.push_back(clean(answer));
  std::string prediction = clean(question.prediction);
  const bool humans_disagree =
      std::any_of(answers.begin(), answers.end(), [&](const std::string& a) { return a != answers.front(); });
  if (humans_disagree) {
    for (std::string& answer : answers) answer = vqa_process_digit_article(vqa_process_punctuation(answer));
    prediction = vqa_process_digit_article(vqa_process_punctuation(prediction));
  }
  const auto same_record = [&](std::size_t i, std::size_t j) {
    if (question.answer_records.empty()) return i == j;
    return answers[i] == answers[j] && question.answer_records[i] == question.answer_records[j];
  };
  double sum = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    int matching = 0;
    for (std::size_t j = 0; j < answers.size(); ++j) {
      if (!same_record(i, j) && answers[j] == prediction) ++matching;
    }
    sum += std::min(1.0, matching / 3.0);
  }
  return sum / static_cast<double>(answers.size());
}

// Python's round(value, digits) for the values printed here: the correctly rounded decimal.
inline double round_like_python(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return std::strtod(text, nullptr);
}

struct VqaAccuracy {
  double overall = 0;  // percent, 2 decimals
  // percent, 2 decimals, in order of first appearance (the script's dict order)
  std::vector<std::pair<std::string, double>> per_question_type;
  std::vector<std::pair<std::string, double>> per_answer_type;
  std::vector<double> per_question;  // [0, 1], unrounded, in the order given
};

inline VqaAccuracy evaluate_vqa(const std::vector<VqaQuestion>& questions) {
  check(!questions.empty(), "VQA accuracy: no questions");
  VqaAccuracy result;
  // (name, sum, count) in order of first appearance; sums in question order, as Python's sum() adds.
  struct Group {
    std::string name;
    double sum = 0;
    std::size_t count = 0;
  };
  std::vector<Group> question_types, answer_types;
  const auto add = [](std::vector<Group>& groups, const std::string& name, double accuracy) {
    auto found = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.name == name; });
    if (found == groups.end()) found = groups.insert(groups.end(), Group{name});
    found->sum += accuracy;
    ++found->count;
  };
  double sum = 0;
  for (const VqaQuestion& question : questions) {
    const double accuracy = vqa_question_accuracy(question);
    result.per_question.push_back(accuracy);
    sum += accuracy;
    add(question_types, question.question_type, accuracy);
    add(answer_types, question.answer_type, accuracy);
  }
  const auto percent = [](double total, std::size_t count) {
    return round_like_python(100 * total / static_cast<double>(count), 2);
  };
  result.overall = percent(sum, questions.size());
  for (const Group& group : question_types)
    result.per_question_type.emplace_back(group.name, percent(group.sum, group.count));
  for (const Group& group : answer_types)
    result.per_answer_type.emplace_back(group.name, percent(group.sum, group.count));
  return result;
}

}  // namespace blip::evaluation
