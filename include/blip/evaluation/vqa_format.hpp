// blip/evaluation/vqa_format.hpp: the VQA v2 files, read as the official evaluation reads them
// (PythonHelperTools/vqaTools/vqa.py and vqaEval.py), and its accuracy object written back:
//
//   questions:   {"task_type": "Open-Ended", "questions": [{"question_id": 1, "image_id": 9, "question": "..."}, ...]}
//   annotations: {"annotations": [{"question_id": 1, "question_type": "what is", "answer_type": "other",
//                                  "answers": [{"answer": "...", "answer_confidence": "yes", "answer_id": 1}, ...]}]}
//   results:     [{"question_id": 1, "answer": "..."}, ...]
//
// As VQA.loadRes asserts, the results must answer exactly the annotated questions, once each (the
// script would silently keep the last of two answers; here that is an error). Every annotated question
// must be in the questions file. With task_type "Multiple Choice" an answer must be one of the
// question's "multiple_choices". Questions are scored in the annotation file's order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/json_input.hpp"
#include "blip/evaluation/vqa_accuracy.hpp"

namespace blip::evaluation {

inline std::vector<VqaQuestion> read_vqa(const nlohmann::json& questions, const std::string& questions_name,
                                         const nlohmann::json& annotations, const std::string& annotations_name,
                                         const nlohmann::json& results, const std::string& results_name) {
  using namespace json_input;
  check(questions.is_object() && questions.contains("questions"), questions_name,
        ": expected a VQA question file: a JSON object with a \"questions\" array");
  check(annotations.is_object() && annotations.contains("annotations"), annotations_name,
        ": expected a VQA annotation file: a JSON object with an \"annotations\" array");
  check(results.is_array(), results_name,
        ": expected VQA results: a JSON array of {\"question_id\", \"answer\"} objects, got ", results.type_name());

  const bool multiple_choice = questions.value("task_type", nlohmann::json()) == "Multiple Choice";
  std::map<std::string, const nlohmann::json*> question_by_id;
  const nlohmann::json& question_list = array_member(questions, "questions", questions_name);
  for (std::size_t i = 0; i < question_list.size(); ++i) {
    question_by_id[id_member(question_list[i], "question_id", place(questions_name, "questions", i))] =
        &question_list[i];
  }

  std::map<std::string, std::string> predictions;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::string where = place(results_name, "", i);
    const std::string id = id_member(results[i], "question_id", where);
    check(predictions.emplace(id, string_member(results[i], "answer", where)).second, where,
          ": a second answer for question_id ", id);
  }

  const nlohmann::json& annotation_list = array_member(annotations, "annotations", annotations_name);
  std::size_t unanswered = 0;
  std::string first_unanswered;
  for (std::size_t i = 0; i < annotation_list.size(); ++i) {
    const std::string id = id_member(annotation_list[i], "question_id", place(annotations_name, "annotations", i));
    if (predictions.count(id) == 0 && unanswered++ == 0) first_unanswered = id;
  }
  check(unanswered == 0, results_name, ": no answer for ", unanswered, " of the ", annotation_list.size(),
        " questions of ", annotations_name, " (the first: question_id ", first_unanswered,
        "); the VQA evaluation needs an answer to every annotated question");

  std::vector<VqaQuestion> scored;
  std::set<std::string> annotated;
  for (std::size_t i = 0; i < annotation_list.size(); ++i) {
    const nlohmann::json& record = annotation_list[i];
    const std::string where = place(annotations_name, "annotations", i);
    const std::string id = id_member(record, "question_id", where);
    check(annotated.insert(id).second, where, ": question_id ", id, " is annotated twice");
    const auto question = question_by_id.find(id);
    check(question != question_by_id.end(), where, ": question_id ", id, " is not in ", questions_name);
    const auto prediction = predictions.find(id);
    VqaQuestion entry;
    entry.question_type = string_member(record, "question_type", where);
    entry.answer_type = string_member(record, "answer_type", where);
    entry.prediction = prediction->second;
    const nlohmann::json& answers = array_member(record, "answers", where);
    check(!answers.empty(), where, ": \"answers\" is empty");
    for (std::size_t k = 0; k < answers.size(); ++k) {
      const std::string answer_where = where + ".answers[" + std::to_string(k) + "]";
      entry.answers.push_back(string_member(answers[k], "answer", answer_where));
      nlohmann::json rest = answers[k];
      rest.erase("answer");
      entry.answer_records.push_back(rest.dump());
    }
    if (multiple_choice) {
      const nlohmann::json& choices = array_member(*question->second, "multiple_choices", questions_name);
      check(std::find(choices.begin(), choices.end(), nlohmann::json(entry.prediction)) != choices.end(), results_name,
            ": the answer \"", entry.prediction, "\" to question_id ", id, " is not one of its multiple choices");
    }
    scored.push_back(std::move(entry));
  }
  for (const auto& [id, answer] : predictions) {
    check(annotated.count(id), results_name, ": question_id ", id, " is not a question of ", annotations_name);
  }
  check(!scored.empty(), annotations_name, ": no annotated questions");
  return scored;
}

// vqaEval.py's `accuracy`: {"overall", "perQuestionType", "perAnswerType"}, percent with 2 decimals.
inline nlohmann::ordered_json vqa_accuracy_json(const VqaAccuracy& accuracy) {
  nlohmann::ordered_json json;
  json["overall"] = accuracy.overall;
  json["perQuestionType"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : accuracy.per_question_type) json["perQuestionType"][name] = value;
  json["perAnswerType"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : accuracy.per_answer_type) json["perAnswerType"][name] = value;
  return json;
}

}  // namespace blip::evaluation
