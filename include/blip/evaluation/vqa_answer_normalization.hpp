// blip/evaluation/vqa_answer_normalization.hpp: the answer normalisation of the official VQA
// evaluation (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py), as written, quirks
// included. vqa_accuracy.hpp says when it is applied (only when the humans disagree).
//
// process_punctuation (vqaEval.processPunctuation), on the text t:
//   1. for each mark p of  ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !  in that order: if t contains
//      p + " " or " " + p, or t contains a digit, a comma and a digit in a row (commaStrip), every p
//      is deleted; otherwise every p becomes a space. The tests look at the ORIGINAL t each time,
//      the replacements act on the running result.
//   2. periods not followed by a digit are deleted (periodStrip). The script's pattern
//      "(?!<=\d)(\.)(?!\d)" means a negative LOOKAHEAD for "<=" and a digit, which a period never
//      starts with, so every period not followed by a digit goes; and it passes re.UNICODE as
//      sub()'s third positional argument, which is `count`: at most 32 (= re.UNICODE) periods are
//      deleted, the first 32 from the left.
// process_digit_article (vqaEval.processDigitArticle): lower-case, split on whitespace, map the
//   number words none/zero/one/../ten to 0..10 ("none" -> "0" too), drop the articles a, an, the,
//   expand contractions written without apostrophe ("dont" -> "don't"), join with single spaces.
// Digits are ASCII [0-9]: the official script is Python 2, whose \d without re.UNICODE is ASCII.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blip/evaluation/unicode_text.hpp"

namespace blip::evaluation {

namespace vqa_detail {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

inline void replace_all(std::string& text, char mark, std::string_view replacement) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == mark) {
      out += replacement;
    } else {
      out.push_back(c);
    }
  }
  text = std::move(out);
}

// vqaEval.py's `contractions`, less four keys with capitals ("Id've", "I'dve", "Im", "Ive"): the text is
// lower-cased before the lookup, so they can never match. (It also maps "somebody'd" to "somebodyd":
// kept, as written.)
inline const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> table = {{"aint", "ain't"},
                                                                     {"arent", "aren't"},
                                                                     {"cant", "can't"},
                                                                     {"couldve", "could've"},
                                                                     {"couldnt", "couldn't"},
                                                                     {"couldn'tve", "couldn't've"},
                                                                     {"couldnt've", "couldn't've"},
                                                                     {"didnt", "didn't"},
                                                                     {"doesnt", "doesn't"},
                                                                     {"dont", "don't"},
                                                                     {"hadnt", "hadn't"},
                                                                     {"hadnt've", "hadn't've"},
                                                                     {"hadn'tve", "hadn't've"},
                                                                     {"hasnt", "hasn't"},
                                                                     {"havent", "haven't"},
                                                                     {"hed", "he'd"},
                                                                     {"hed've", "he'd've"},
                                                                     {"he'dve", "he'd've"},
                                                                     {"hes", "he's"},
                                                                     {"howd", "how'd"},
                                                                     {"howll", "how'll"},
                                                                     {"hows", "how's"},
                                                                     {"isnt", "isn't"},
                                                                     {"itd", "it'd"},
                                                                     {"itd've", "it'd've"},
                                                                     {"it'dve", "it'd've"},
                                                                     {"itll", "it'll"},
                                                                     {"let's", "let's"},
                                                                     {"maam", "ma'am"},
                                                                     {"mightnt", "mightn't"},
                                                                     {"mightnt've", "mightn't've"},
                                                                     {"mightn'tve", "mightn't've"},
                                                                     {"mightve", "might've"},
                                                                     {"mustnt", "mustn't"},
                                                                     {"mustve", "must've"},
                                                                     {"neednt", "needn't"},
                                                                     {"notve", "not've"},
                                                                     {"oclock", "o'clock"},
                                                                     {"oughtnt", "oughtn't"},
                                                                     {"ow's'at", "'ow's'at"},
                                                                     {"'ows'at", "'ow's'at"},
                                                                     {"'ow'sat", "'ow's'at"},
                                                                     {"shant", "shan't"},
                                                                     {"shed've", "she'd've"},
                                                                     {"she'dve", "she'd've"},
                                                                     {"she's", "she's"},
                                                                     {"shouldve", "should've"},
                                                                     {"shouldnt", "shouldn't"},
                                                                     {"shouldnt've", "shouldn't've"},
                                                                     {"shouldn'tve", "shouldn't've"},
                                                                     {"somebody'd", "somebodyd"},
                                                                     {"somebodyd've", "somebody'd've"},
                                                                     {"somebody'dve", "somebody'd've"},
                                                                     {"somebodyll", "somebody'll"},
                                                                     {"somebodys", "somebody's"},
                                                                     {"someoned", "someone'd"},
                                                                     {"someoned've", "someone'd've"},
                                                                     {"someone'dve", "someone'd've"},
                                                                     {"someonell", "someone'll"},
                                                                     {"someones", "someone's"},
                                                                     {"somethingd", "something'd"},
                                                                     {"somethingd've", "something'd've"},
                                                                     {"something'dve", "something'd've"},
                                                                     {"somethingll", "something'll"},
                                                                     {"thats", "that's"},
                                                                     {"thered", "there'd"},
                                                                     {"thered've", "there'd've"},
                                                                     {"there'dve", "there'd've"},
                                                                     {"therere", "there're"},
                                                                     {"theres", "there's"},
                                                                     {"theyd", "they'd"},
                                                                     {"theyd've", "they'd've"},
                                                                     {"they'dve", "they'd've"},
                                                                     {"theyll", "they'll"},
                                                                     {"theyre", "they're"},
                                                                     {"theyve", "they've"},
                                                                     {"twas", "'twas"},
                                                                     {"wasnt", "wasn't"},
                                                                     {"wed've", "we'd've"},
                                                                     {"we'dve", "we'd've"},
                                                                     {"weve", "we've"},
                                                                     {"werent", "weren't"},
                                                                     {"whatll", "what'll"},
                                                                     {"whatre", "what're"},
                                                                     {"whats", "what's"},
                                                                     {"whatve", "what've"},
                                                                     {"whens", "when's"},
                                                                     {"whered", "where'd"},
                                                                     {"wheres", "where's"},
                                                                     {"whereve", "where've"},
                                                                     {"whod", "who'd"},
                                                                     {"whod've", "who'd've"},
                                                                     {"who'dve", "who'd've"},
                                                                     {"wholl", "who'll"},
                                                                     {"whos", "who's"},
                                                                     {"whove", "who've"},
                                                                     {"whyll", "why'll"},
                                                                     {"whyre", "why're"},
                                                                     {"whys", "why's"},
                                                                     {"wont", "won't"},
                                                                     {"wouldve", "would've"},
                                                                     {"wouldnt", "wouldn't"},
                                                                     {"wouldnt've", "wouldn't've"},
                                                                     {"wouldn'tve", "wouldn't've"},
                                                                     {"yall", "y'all"},
                                                                     {"yall'll", "y'all'll"},
                                                                     {"y'allll", "y'all'll"},
                                                                     {"yall'd've", "y'all'd've"},
                                                                     {"y'alld've", "y'all'd've"},
                                                                     {"y'all'dve", "y'all'd've"},
                                                                     {"youd", "you'd"},
                                                                     {"youd've", "you'd've"},
                                                                     {"you'dve", "you'd've"},
                                                                     {"youll", "you'll"},
                                                                     {"youre", "you're"},
                                                                     {"youve", "you've"}};
  return table;
}

}  // namespace vqa_detail

inline std::string vqa_process_punctuation(std::string_view text) {
  static constexpr std::array<char, 21> kMarks = {';',  '/', '[', ']', '"', '{', '}', '(', ')', '=', '+',
                                                  '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'};
  bool has_digit_comma_digit = false;
  for (std::size_t i = 0; i + 2 < text.size(); ++i) {
    has_digit_comma_digit = has_digit_comma_digit ||
                            (vqa_detail::is_digit(text[i]) && text[i + 1] == ',' && vqa_detail::is_digit(text[i + 2]));
  }
  std::string out(text);
  for (char mark : kMarks) {
    const std::string after{mark, ' '}, before{' ', mark};
    const bool spaced = text.find(after) != std::string_view::npos || text.find(before) != std::string_view::npos;
    vqa_detail::replace_all(out, mark, spaced || has_digit_comma_digit ? "" : " ");
  }
  std::string stripped;
  stripped.reserve(out.size());
  int deleted = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool followed_by_digit = i + 1 < out.size() && vqa_detail::is_digit(out[i + 1]);
    if (out[i] == '.' && !followed_by_digit && deleted < 32) {
      ++deleted;
      continue;
    }
    stripped.push_back(out[i]);
  }
  return stripped;
}

inline std::string vqa_process_digit_article(std::string_view text) {
  static const std::unordered_map<std::string, std::string> kNumbers = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"}};
  std::string out;
  for (std::string word : split_whitespace(to_lower_utf8(text))) {
    if (const auto number = kNumbers.find(word); number != kNumbers.end()) word = number->second;
    if (word == "a" || word == "an" || word == "the") continue;
    if (const auto expanded = vqa_detail::contractions().find(word); expanded != vqa_detail::contractions().end()) {
      word = expanded->second;
    }
    if (!out.empty()) out.push_back(' ');
    out += word;
  }
  return out;
}

}  // namespace blip::evaluation
