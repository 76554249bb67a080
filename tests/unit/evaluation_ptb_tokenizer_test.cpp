// The COCO caption tokenisation: Stanford PTBTokenizer (CoreNLP 3.4.1, -preserveLines -lowerCase)
// followed by pycocoevalcap's punctuation filter. Java is not available here, so each expectation was
// worked out by hand from PTBLexer.flex's rules; the comment beside a case names the rule that decides it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "blip/evaluation/ptb_tokenizer.hpp"

namespace evaluation_ptb_tokenizer_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::evaluation::coco_tokenize;
using blip::evaluation::ptb_tokenize_lines;

// The PTB tokens of one line, original case, joined by single spaces.
std::string ptb(const std::string& text) {
  const std::vector<std::vector<std::string>> lines = ptb_tokenize_lines({text}, /*lower_case=*/false);
  std::string joined;
  for (const std::string& token : lines.at(0)) {
    joined += (joined.empty() ? "" : " ") + token;
  }
  return joined;
}

std::string coco(const std::string& caption) { return coco_tokenize({caption}).at(0); }

}  // namespace

TEST_CASE("clitics are split off as PTB does") {
  CHECK(ptb("A man's riding a wave on a surfboard.") == "A man 's riding a wave on a surfboard .");
  CHECK(ptb("The man isn't falling off his board.") == "The man is n't falling off his board .");  // SWORD/n't
  CHECK(ptb("They're playing with a red-and-white frisbee.") == "They 're playing with a red-and-white frisbee .");
  CHECK(ptb("I'm sure we've seen he'll go, she'd say.") == "I 'm sure we 've seen he 'll go , she 'd say .");
  CHECK(ptb("It can't, won't, don't.") == "It ca n't , wo n't , do n't .");
  CHECK(ptb("James's dog and the dogs' bowls") == "James 's dog and the dogs ' bowls");
  // A curly apostrophe is normalised to ' in the split-off part.
  CHECK(ptb("A dog\u2019s toy can\u2019t break.") == "A dog 's toy ca n't break .");
  // Assimilations are split after a fixed number of characters.
  CHECK(ptb("I cannot believe it's gonna rain, gotta go, wanna see") ==
        "I can not believe it 's gon na rain , got ta go , wan na see");
  CHECK(ptb("'Tis the season") == "'T is the season");
  // Words with an apostrophe inside that stay whole (APOWORD, THING with o'/d'/l').
  CHECK(ptb("at 3 o'clock, ma'am, rock 'n' roll in the '90s with 'em") ==
        "at 3 o'clock , ma'am , rock 'n' roll in the '90s with 'em");
  // y' before a letter is its own token (APOWORD2), so y'all is two tokens.
  CHECK(ptb("y'all") == "y' all");
}

TEST_CASE("punctuation, quotes, brackets, dashes and ellipses") {
  CHECK(ptb("hello, world! what?! wow!! ok; yes: no") == "hello , world ! what ?! wow !! ok ; yes : no");
  // Quotes become LaTeX quotes: a double quote before a letter opens, elsewhere closes; a single quote
  // before a letter and a non-space opens.
  CHECK(ptb("He said \"hello\" and 'bye' to ``them''") == "He said `` hello '' and ` bye ' to `` them ''");
  CHECK(ptb("\u201Ccurly\u201D \u2018single\u2019") == "`` curly '' ` single '");
  CHECK(ptb("a (big) [red] {box}") == "a -LRB- big -RRB- -LSB- red -RSB- -LCB- box -RCB-");
  // Hyphen runs of 3 or 4 are the dash "--"; 1, 2 or 5 hyphens stay as written; en and em dashes are "--".
  CHECK(ptb("a - b -- c --- d ---- e ----- f") == "a - b -- c -- d -- e ----- f");
  CHECK(ptb("a dog\u2014a cat\u2013a cow") == "a dog -- a cat -- a cow");
  CHECK(ptb("wait... fine . . . ok\u2026 end") == "wait ... fine ... ok ... end");
  CHECK(ptb("10 % off & 5 + 3 = 8 * 2 # 1 @ home / 3 ~ 4 | 5 ^ 6 < 7 > 8") ==
        "10 % off & 5 + 3 = 8 * 2 # 1 @ home / 3 ~ 4 | 5 ^ 6 < 7 > 8");
  CHECK(ptb("smiles :) and ;-) here") == "smiles :-RRB- and ;--RRB- here");
}

TEST_CASE("numbers, fractions, currency and hyphenated words stay whole") {
  CHECK(ptb("a 3.5 inch screen, 1,000 people at 10:30 cost $5 or -5 degrees on 12/25/2010") ==
        "a 3.5 inch screen , 1,000 people at 10:30 cost $ 5 or -5 degrees on 12/25/2010");
  // A whole number and a fraction are one token with a no-break space; U+00BD becomes 1/2.
  CHECK(ptb("3 1/2 cups and \u00BD cup") == "3\u00A01/2 cups and 1/2 cup");
  CHECK(ptb("\u00A35 or \u20AC5 or 5\u00A2") == "# 5 or $ 5 or 5 cents");
  CHECK(ptb("black-and-white well-known 2nd 20th-century e-mail") ==
        "black-and-white well-known 2nd 20th-century e-mail");
  CHECK(ptb("c++ and c# and AT&T and and/or") == "c++ and c# and AT&T and and/or");
}

TEST_CASE("periods of abbreviations, acronyms and words") {
  CHECK(ptb("Mr. Smith and Dr. Jones met in the U.S. on a St. Bernard.") ==
        "Mr. Smith and Dr. Jones met in the U.S. on a St. Bernard .");
  // Before a word that starts a sentence an acronym's period is given again; "I." is split.
  CHECK(ptb("He lives in the U.S. The end.") == "He lives in the U.S. . The end .");
  CHECK(ptb("I. The end") == "I . The end");
  CHECK(ptb("I. The") == "I. The");  // the look-ahead needs a space after "The"; at the end it fails
  // A single letter and a period is an abbreviation (ABBREV2): the period stays on it.
  CHECK(ptb("vitamin c.") == "vitamin c.");
  CHECK(ptb("at 5 p.m. today") == "at 5 p.m. today");
  // ABBREV1 at a sentence end (here: the end of the text): the token and its period again.
  CHECK(ptb("cats, dogs, etc.") == "cats , dogs , etc. .");
  CHECK(ptb("etc. and so on") == "etc. and so on");
  // A word followed by a period and then , ; or : keeps the period.
  CHECK(ptb("dog., cat.; the-dog.,") == "dog. , cat. ; the-dog. ,");
  CHECK(ptb("A dog. A cat.") == "A dog . A cat .");
  CHECK(ptb("see www.google.com or mail john@example.com") == "see www.google.com or mail john@example.com");
  CHECK(ptb("a <b>bold</b> word") == "a <b> bold </b> word");
}

TEST_CASE("lines are tokenised as one text, as PTBTokenizer -preserveLines reads the file") {
  // The look-ahead of the acronym rule crosses the line end: "a." before "A dog" is "a" ".".
  const auto two = ptb_tokenize_lines({"the letter a.", "A dog runs."});
  REQUIRE(two.size() == 2);
  CHECK(two[0] == std::vector<std::string>{"the", "letter", "a", "."});
  CHECK(two[1] == std::vector<std::string>{"a", "dog", "runs", "."});
  CHECK(ptb_tokenize_lines({"the letter a."})[0] == std::vector<std::string>{"the", "letter", "a."});
  // Empty lines stay lines; a line break character inside a caption is a space.
  const auto lines = ptb_tokenize_lines({"", "a\rb\u2028c", ""});
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].empty());
  CHECK(lines[1] == std::vector<std::string>{"a", "b", "c"});
  CHECK(lines[2].empty());
  CHECK(ptb_tokenize_lines({}).empty());
}

TEST_CASE("coco_tokenize lower-cases and drops pycocoevalcap's PUNCTUATIONS") {
  CHECK(coco("A man riding a wave on top of a surfboard.") == "a man riding a wave on top of a surfboard");
  CHECK(coco("Two dogs are playing \"catch\" outside; it's fun -- really...") ==
        "two dogs are playing catch outside it 's fun really");
  // The list holds "-LRB-" in upper case but -lowerCase made it "-lrb-": brackets are kept.
  CHECK(coco("A person (surfer) rides a wave.") == "a person -lrb- surfer -rrb- rides a wave");
  // Only the listed tokens go: "?!", "!!", "-----", "&", "/" stay.
  CHECK(coco("What?! Wow!! a ----- b & c / d") == "what ?! wow !! a ----- b & c / d");
  CHECK(coco("Mr. Smith's DOG at 3.5 m.") == "mr. smith 's dog at 3.5 m.");
  CHECK(coco("\u00C9COLE Stra\u00DFe \u0391\u0392\u03A3") == "\u00E9cole stra\u00DFe \u03B1\u03B2\u03C2");
  // Characters outside the BMP are untokenizable for the lexer (two UTF-16 halves) and deleted.
  CHECK(coco("a dog \U0001F436 runs") == "a dog runs");
  CHECK(coco("...") == "");
  CHECK(coco_tokenize({"A dog.", "", "x"}) == std::vector<std::string>{"a dog", "", "x"});
}

TEST_CASE("the text helpers: Python's str.split() / str.strip(), lenient UTF-8, lower-casing") {
  using blip::evaluation::decode_utf8;
  CHECK(blip::evaluation::split_whitespace("a\u00A0b\tc  d\u3000e\x1C f ") ==
        std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
  CHECK(blip::evaluation::split_whitespace(" \t ").empty());
  CHECK(blip::evaluation::strip_whitespace(" \u2003x y\n") == "x y");
  CHECK(decode_utf8("caf\xC3\xA9") == U"caf\u00E9");
  CHECK(decode_utf8("\xFF"
                    "a") == U"\uFFFDa");                        // not a lead byte
  CHECK(decode_utf8("a\xC3") == U"a\uFFFD");                    // truncated sequence
  CHECK(decode_utf8("\xED\xA0\x80") == U"\uFFFD\uFFFD\uFFFD");  // an encoded surrogate
  CHECK(decode_utf8("\xC0\xAF") == U"\uFFFD\uFFFD");            // overlong form
  CHECK(blip::evaluation::encode_utf8(U"\u00E9\u20AC\U0001F436") == "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x90\xB6");
  CHECK(blip::evaluation::to_lower_utf8("\u0130STANBUL \u0178 \u1E9E") == "i\u0307stanbul \u00FF \u00DF");
}

}  // namespace evaluation_ptb_tokenizer_test
