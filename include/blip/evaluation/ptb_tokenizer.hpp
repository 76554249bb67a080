// blip/evaluation/ptb_tokenizer.hpp: the caption tokenisation of the COCO caption evaluation.
//
// pycocoevalcap (tokenizer/ptbtokenizer.py) writes every caption of a corpus on one line of a file
// (after replacing "\n" in a caption by a space), runs Stanford CoreNLP 3.4.1's PTBTokenizer on it
// with `-preserveLines -lowerCase`, and drops the tokens in its PUNCTUATIONS list from each output
// line. coco_tokenize() does the same in C++. The lexer (ptb_lexer_rules.hpp) is a re-implementation, rule by rule,
// of the token classes of CoreNLP 3.4.1's PTBLexer.flex with the options the tokenizer's command
// line uses (the PTB3 normalisations on, americanize off, tokenizeNLs on, untokenizable characters
// deleted), with JFlex's matching rule (longest match, then the first rule; trailing context counts
// toward the length).
//
// What that gives for English captions (see docs/evaluation.md for the full list):
//   * clitics split off: "dog's" -> dog 's, "they're" -> they 're, "isn't" -> is n't, "can't" -> ca n't,
//     "I'm" / "we've" / "he'll" / "she'd" likewise (also with a curly apostrophe, normalised to ');
//     "cannot" -> can not, "gonna" -> gon na (also gotta, wanna, lemme, gimme), "'tis" -> 't is;
//     o'clock, ma'am, 'em, '90s, rock 'n' roll stay whole (but y'all is y' all);
//   * punctuation split from words and then dropped: . , ; : ? ! - -- ... (and ". . ." and U+2026),
//     every quote (" ' ` and the curly ones become `` '' ` ' and are dropped);
//   * kept, because PTBTokenizer lower-cases its own bracket tokens and the list holds them in upper
//     case: ( ) become -lrb- -rrb-, [ ] -lsb- -rsb-, { } -lcb- -rcb-; also kept: runs such as "?!" or
//     "!!", a lone "/", "&", "%", "$", "#", "*", "=", "+", "<", ">", "@";
//   * numbers stay whole: 3.5, 1,000, 10:30, -5, 12/25/2010, 1/2 (and "3 1/2" as one token that the
//     scorers split again at its no-break space); hyphenated words stay whole: "black-and-white";
//   * abbreviations keep their period: "mr.", "dr.", "st.", "u.s.", "a.m.", "etc.", and a single
//     letter followed by a period ("vitamin c." -> vitamin c.), except before a word such as "The",
//     where a one-letter "I." is split ("I" "."); a word followed by "." and then , ; or : keeps the
//     period too ("dog.," -> dog.).
// Not covered (documented in docs/evaluation.md): letters and digits outside the Latin, Greek,
// Cyrillic and a few other blocks are classified approximately; characters outside the Basic
// Multilingual Plane are deleted (PTBLexer sees them as two untokenizable UTF-16 halves, so this
// matches it); a "\r", U+2028, U+2029, vertical tab or form feed inside a caption is read as a space,
// where PTBTokenizer would start a new output line and pycocoevalcap would misalign every later caption.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/evaluation/longest_match.hpp"
#include "blip/evaluation/ptb_lexer_rules.hpp"
#include "blip/evaluation/unicode_text.hpp"

namespace blip::evaluation {

namespace ptb_detail {

// The longest match of one rule at `start`: (end of match with context, end of token), or kNoMatch.
inline std::pair<std::size_t, std::size_t> longest_match(const Rule& rule, std::u32string_view text,
                                                         std::size_t start) {
  std::size_t best_total = lexing::kNoMatch, best_token_end = lexing::kNoMatch;
  const auto consider = [&](std::size_t total, std::size_t token_end) {
    if (token_end <= start) return;
    if (best_total == lexing::kNoMatch || total > best_total || (total == best_total && token_end > best_token_end)) {
      best_total = total;
      best_token_end = token_end;
    }
  };
  rule.token.match(text, start, [&](std::size_t token_end) {
    if (!rule.context) {
      consider(token_end, token_end);
    } else {
      rule.context->match(text, token_end, [&](std::size_t context_end) { consider(context_end, token_end); });
    }
  });
  return {best_total, best_token_end};
}

}  // namespace ptb_detail

// Tokenises `lines` as Stanford's PTBTokenizer does when they are the lines of one input file
// (`-preserveLines`): one list of tokens per line. Tokens are lower-cased when `lower_case` (the
// `-lowerCase` option: after tokenising, so bracket tokens become "-lrb-"). The lines are read as one
// text because the lexer's look-ahead crosses line ends (an acronym at the end of one caption can be
// followed by "The" on the next). A newline inside a line is read as a space.
inline std::vector<std::vector<std::string>> ptb_tokenize_lines(const std::vector<std::string>& lines,
                                                                bool lower_case = true) {
  std::u32string text;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) text.push_back('\n');
    for (char32_t c : decode_utf8(lines[i])) {
      // U+0085 is not a line break here: the lexer reads it as a CP1252 ellipsis.
      text.push_back(ptb_detail::is_lexer_newline(c) && c != 0x85 ? U' ' : c);
    }
  }
  std::vector<std::vector<std::string>> tokens(lines.empty() ? 0 : 1);
  const std::vector<ptb_detail::Rule>& rules = ptb_detail::rules();
  std::size_t position = 0;
  while (position < text.size()) {
    const ptb_detail::Rule* best_rule = nullptr;
    std::size_t best_total = 0, best_token_end = 0;
    for (const ptb_detail::Rule& rule : rules) {
      if (!rule.token.may_match_at(text, position)) continue;
      const auto [total, token_end] = ptb_detail::longest_match(rule, text, position);
      if (total != lexing::kNoMatch && (best_rule == nullptr || total > best_total)) {
        best_rule = &rule;
        best_total = total;
        best_token_end = token_end;
      }
    }
    // The last rule takes any character but "\n", and the newline rule takes "\n".
    const ptb_detail::Emission emission =
        ptb_detail::apply(*best_rule, std::u32string_view(text).substr(position, best_token_end - position));
    if (emission.newline) {
      tokens.emplace_back();
    } else if (emission.token) {
      tokens.back().push_back(encode_utf8(lower_case ? to_lower(*emission.token) : *emission.token));
    }
    position += emission.consumed;
  }
  return tokens;
}

// pycocoevalcap's PTBTokenizer.tokenize for one corpus (the references of all images, or the
// candidates), in the order pycocoevalcap writes them: each caption becomes its lower-cased PTB tokens
// without the tokens in PUNCTUATIONS, joined by single spaces.
inline std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions) {
  static const std::vector<std::string> punctuation = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".",
                                                       "?",  "!", ",",  ":", "-",     "--",    "...",   ";"};
  // The "\n" -> " " replacement pycocoevalcap makes happens inside ptb_tokenize_lines.
  // PUNCTUATIONS holds the bracket tokens in upper case while -lowerCase has made them "-lrb-" ...,
  // so brackets are never dropped; kept that way.
  std::vector<std::string> tokenized;
  tokenized.reserve(captions.size());
  for (const std::vector<std::string>& line_tokens : ptb_tokenize_lines(captions, /*lower_case=*/true)) {
    std::string joined;
    bool first = true;
    for (const std::string& token : line_tokens) {
      bool is_punctuation = false;
      for (const std::string& mark : punctuation) is_punctuation = is_punctuation || token == mark;
      if (is_punctuation) continue;
      if (!first) joined.push_back(' ');
      joined += token;
      first = false;
    }
    tokenized.push_back(std::move(joined));
  }
  return tokenized;
}

}  // namespace blip::evaluation
