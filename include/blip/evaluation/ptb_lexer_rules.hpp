// blip/evaluation/ptb_lexer_rules.hpp: the token classes of Stanford CoreNLP 3.4.1's PTBLexer.flex,
// re-implemented rule by rule in longest_match.hpp's pattern language, and what each rule's action
// makes of the text it matched (with the options PTBTokenizer's command line uses: PTB3 escaping,
// no Americanisation, newlines as tokens, unknown characters deleted). ptb_tokenizer.hpp runs them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/evaluation/longest_match.hpp"
#include "blip/evaluation/unicode_text.hpp"

namespace blip::evaluation::ptb_detail {

using lexing::chars;
using lexing::either;
using lexing::literal;
using lexing::none_of;
using lexing::one_of;
using lexing::one_or_more;
using lexing::optional;
using lexing::Pattern;
using lexing::repeat;
using lexing::sequence;
using lexing::words;
using lexing::zero_or_more;

inline bool in_range(char32_t c, char32_t first, char32_t last) { return c >= first && c <= last; }

inline bool is_ascii_letter(char32_t c) { return in_range(c, 'A', 'Z') || in_range(c, 'a', 'z'); }
inline bool is_ascii_digit(char32_t c) { return in_range(c, '0', '9'); }
inline bool is_ascii_alphanumeric(char32_t c) { return is_ascii_letter(c) || is_ascii_digit(c); }

// Java's Character.isLetter (JFlex's [:letter:]) for the blocks English text meets; other scripts are
// taken a whole block at a time. Supplementary code points are never letters: JFlex 1.4 reads UTF-16
// units and a surrogate is not a letter.
inline bool is_java_letter(char32_t c) {
  if (c < 0x80) return is_ascii_letter(c);
  if (c == 0xAA || c == 0xB5 || c == 0xBA || in_range(c, 0xC0, 0xD6) || in_range(c, 0xD8, 0xF6) ||
      in_range(c, 0xF8, 0x2C1) || in_range(c, 0x2C6, 0x2D1) || in_range(c, 0x2E0, 0x2E4) || c == 0x2EC || c == 0x2EE) {
    return true;
  }
  if (in_range(c, 0x370, 0x374) || c == 0x376 || c == 0x377 || in_range(c, 0x37A, 0x37D) || c == 0x386 ||
      in_range(c, 0x388, 0x38A) || c == 0x38C || in_range(c, 0x38E, 0x3A1) || in_range(c, 0x3A3, 0x3F5) ||
      in_range(c, 0x3F7, 0x481) || in_range(c, 0x48A, 0x527)) {
    return true;  // Greek, Cyrillic
  }
  if (in_range(c, 0x531, 0x556) || c == 0x559 || in_range(c, 0x561, 0x587) || in_range(c, 0x5D0, 0x5EA) ||
      in_range(c, 0x5F0, 0x5F2) || in_range(c, 0x620, 0x64A) || in_range(c, 0x671, 0x6D3) ||
      in_range(c, 0x904, 0x939) || in_range(c, 0xE01, 0xE30) || in_range(c, 0x10A0, 0x10FA) ||
      in_range(c, 0x1100, 0x11FF)) {
    return true;  // Armenian, Hebrew, Arabic, Devanagari, Thai, Georgian, Hangul Jamo
  }
  if (in_range(c, 0x1E00, 0x1FBC) || c == 0x1FBE || in_range(c, 0x1FC2, 0x1FCC) || in_range(c, 0x1FD0, 0x1FDB) ||
      in_range(c, 0x1FE0, 0x1FEC) || in_range(c, 0x1FF2, 0x1FFC)) {
    return true;  // Latin Extended Additional, Greek Extended
  }
  return in_range(c, 0x3041, 0x3096) || in_range(c, 0x30A1, 0x30FA) || in_range(c, 0x3105, 0x312D) ||
         in_range(c, 0x3131, 0x318E) || in_range(c, 0x3400, 0x4DB5) || in_range(c, 0x4E00, 0x9FCC) ||
         in_range(c, 0xAC00, 0xD7A3) || in_range(c, 0xF900, 0xFAD9) || in_range(c, 0xFB00, 0xFB06) ||
         in_range(c, 0xFF21, 0xFF3A) || in_range(c, 0xFF41, 0xFF5A) || in_range(c, 0xFF66, 0xFFBE);
}

// Java's Character.isDigit (JFlex's [:digit:]) for ASCII and a few other decimal-digit blocks.
inline bool is_java_digit(char32_t c) {
  return is_ascii_digit(c) || in_range(c, 0x660, 0x669) || in_range(c, 0x6F0, 0x6F9) || in_range(c, 0x7C0, 0x7C9) ||
         in_range(c, 0x966, 0x96F) || in_range(c, 0xE50, 0xE59) || in_range(c, 0xFF10, 0xFF19);
}

inline bool is_java_letter_or_digit(char32_t c) { return is_java_letter(c) || is_java_digit(c); }

// [:uppercase:]: letters that have a lower-case form.
inline bool is_java_uppercase(char32_t c) { return unicode_detail::lower_simple(c) != c; }

// PTBLexer's LETTER adds a few code points to [:letter:]: the soft hyphen (which it later deletes
// from tokens) and the combining marks that can sit inside a word.
inline bool is_word_letter(char32_t c) {
  return is_java_letter(c) || c == 0xAD || in_range(c, 0x2C2, 0x2C5) || in_range(c, 0x2D2, 0x2DF) ||
         in_range(c, 0x2E5, 0x2FF) || in_range(c, 0x300, 0x36F) || in_range(c, 0x483, 0x487) ||
         in_range(c, 0x591, 0x5BD) || in_range(c, 0x64B, 0x65E) || in_range(c, 0x900, 0x903) ||
         in_range(c, 0x93C, 0x94E) || in_range(c, 0xE31, 0xE3A) || in_range(c, 0xE47, 0xE4E);
}

inline bool is_lexer_space(char32_t c) {
  return c == ' ' || c == '\t' || c == 0xA0 || in_range(c, 0x2000, 0x200A) || c == 0x3000;
}
inline bool is_lexer_newline(char32_t c) {
  return c == '\r' || c == '\n' || c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C || c == 0x85;
}

// Symbols that stand alone as a token (MISCSYMBOL).
inline bool is_misc_symbol(char32_t c) {
  if (c < 0x80) return c == '+' || c == '%' || c == '&' || c == '~' || c == '^' || c == '|' || c == '\\';
  return in_range(c, 0xA6, 0xA9) || c == 0xAC || c == 0xAE || c == 0xAF || in_range(c, 0xB0, 0xBA) || c == 0xD7 ||
         c == 0xF7 || c == 0x387 || c == 0x5BE || c == 0x5C0 || c == 0x5C3 || c == 0x5C6 || c == 0x5F3 || c == 0x5F4 ||
         in_range(c, 0x600, 0x603) || in_range(c, 0x606, 0x60A) || c == 0x60C || c == 0x614 || c == 0x61B ||
         c == 0x61E || c == 0x66A || c == 0x66D || in_range(c, 0x703, 0x70D) || in_range(c, 0x7F6, 0x7F8) ||
         c == 0x964 || c == 0x965 || c == 0xE4F || c == 0x1FBD || c == 0x2016 || c == 0x2017 ||
         in_range(c, 0x2020, 0x2023) || in_range(c, 0x2030, 0x2038) || c == 0x203B || in_range(c, 0x203E, 0x2042) ||
         c == 0x2044 || in_range(c, 0x207A, 0x207F) || in_range(c, 0x208A, 0x208E) || in_range(c, 0x2100, 0x214F) ||
         in_range(c, 0x2190, 0x21FF) || in_range(c, 0x2200, 0x2BFF) || c == 0x3012 || c == 0x30FB ||
         in_range(c, 0xFF01, 0xFF0F) || in_range(c, 0xFF1A, 0xFF20) || in_range(c, 0xFF3B, 0xFF40) ||
         in_range(c, 0xFF5B, 0xFF65);
}

// What a rule does with the text it matched (PTBLexer's actions, with its default options).
enum class Action {
  kToken,                 // the matched text
  kReplace,               // a fixed text (rule.replacement): -LRB-, --, ..., &, <, >
  kRemoveSoftHyphens,     // words and numbers: U+00AD deleted ("-" if nothing is left)
  kSpacesToNoBreak,       // fractions and SGML tags: spaces become U+00A0
  kAmpersandEntity,       // "&amp;" inside the token becomes "&"
  kLeftQuote,             // quotes as LaTeX writes them: ` `` on the left ...
  kRightQuote,            // ... ' '' on the right; curly and CP1252 quotes mapped likewise
  kCurrency,              // U+00A2 -> cents, U+00A3 -> #, euro and generic currency -> $
  kFraction,              // one-character fractions: U+00BD -> 1/2 ...
  kPhone,                 // spaces to U+00A0, parentheses to -LRB- -RRB-
  kParentheses,           // smileys: parentheses to -LRB- -RRB-
  kHyphens,               // a run of 3 or 4 hyphens is the dash "--"; other runs stay as written
  kSplitAfter,            // cannot, gonna, 'twas ...: the first `split` characters now, the rest next
  kAbbreviation,          // "etc." before a sentence end: the token, then its period again
  kAcronymAtSentenceEnd,  // "U.S." before "The": the token and its period again; "I." -> "I" "."
  kSkip,                  // spaces, zero-width characters
  kNewline,               // an output line break (-preserveLines)
  kUntokenizable,         // a character no rule knows: deleted
};

struct Rule {
  Pattern token;
  std::optional<Pattern> context;  // trailing context: must follow, counts for the length, not consumed
  Action action = Action::kToken;
  std::u32string replacement = {};
  std::size_t split = 0;  // kSplitAfter
};

// The token classes, in PTBLexer.flex's order (the order breaks ties between equally long matches).
inline std::vector<Rule> make_rules() {
  const Pattern space = chars(is_lexer_space);
  const Pattern space_or_newline = chars([](char32_t c) { return is_lexer_space(c) || is_lexer_newline(c); });
  const Pattern ascii_letter = chars(is_ascii_letter);
  const Pattern ascii_upper = chars([](char32_t c) { return in_range(c, 'A', 'Z'); });
  const Pattern ascii_digit = chars(is_ascii_digit);
  const Pattern ascii_alphanumeric = chars(is_ascii_alphanumeric);
  const Pattern java_letter = chars(is_java_letter);
  const Pattern java_letter_or_digit = chars(is_java_letter_or_digit);
  const Pattern digit = chars(is_java_digit);
  // An accented letter written as an SGML entity counts as a letter: &eacute; &Uuml; ...
  const Pattern letter_entity =
      sequence({literal(U"&"), one_of(U"aeiouAEIOU"), either({literal(U"acute"), literal(U"grave"), literal(U"uml")}),
                literal(U";")});
  const Pattern letter = either({chars(is_word_letter), letter_entity});
  const Pattern letter_or_digit =
      either({chars([](char32_t c) { return is_word_letter(c) || is_java_digit(c); }), letter_entity});

  const Pattern sgml_name = sequence({ascii_letter, zero_or_more(chars([](char32_t c) {
                                        return is_ascii_alphanumeric(c) || c == '_' || c == ':' || c == '.' || c == '-';
                                      }))});
  const Pattern quoted_value = either({sequence({literal(U"'"), zero_or_more(none_of(U"'")), literal(U"'")}),
                                       sequence({literal(U"\""), zero_or_more(none_of(U"\"")), literal(U"\"")})});
  const Pattern sgml_attribute = either({sgml_name, sequence({sgml_name, zero_or_more(literal(U" ")), literal(U"="),
                                                              zero_or_more(literal(U" ")), quoted_value})});
  const Pattern sgml =
      sequence({literal(U"<"),
                either({sequence({one_of(U"!?"), chars([](char32_t c) { return is_ascii_letter(c) || c == '-'; }),
                                  zero_or_more(none_of(U">\r\n"))}),
                        sequence({sgml_name, zero_or_more(sequence({one_or_more(literal(U" ")), sgml_attribute})),
                                  zero_or_more(literal(U" ")), optional(literal(U"/"))}),
                        sequence({literal(U"/"), sgml_name})}),
                zero_or_more(literal(U" ")), literal(U">")});

  const Pattern apostrophe = either({one_of(U"'\u0092\u2019"), literal(U"&apos;")});
  const Pattern apostrophe_like = either({apostrophe, one_of(U"`\u0091\u2018\u201B")});
  const Pattern hyphen = one_of(U"-_\u058A\u2010\u2011");

  const Pattern word = sequence({letter, zero_or_more(letter_or_digit),
                                 zero_or_more(sequence({one_of(U".!?"), letter, zero_or_more(letter_or_digit)}))});
  const Pattern reduced_auxiliary =
      sequence({apostrophe, either({one_of(U"msdMSD"), literal(U"re"), literal(U"ve"), literal(U"ll")})});
  // Before n't: a word that does not end in n ("ca" of can't, "do" of don't).
  const Pattern word_before_nt = sequence(
      {zero_or_more(chars([](char32_t c) { return is_ascii_letter(c) || c == 0xAD; })),
       chars([](char32_t c) { return is_ascii_letter(c) && c != 'n' && c != 'N'; }), zero_or_more(literal(U"\u00AD"))});
  const Pattern negation = sequence({literal(U"n"), apostrophe_like, literal(U"t")});
  const Pattern apostrophe_word = either({
      sequence({apostrophe, literal(U"n"), optional(apostrophe)}),  // 'n' of rock 'n' roll
      sequence({one_of(U"lLdDjJ"), apostrophe}),                    // French l' d' j'
      sequence({literal(U"Dunkin"), apostrophe}),
      sequence({literal(U"somethin"), apostrophe}),
      sequence({literal(U"ol"), apostrophe}),
      sequence({apostrophe, literal(U"em")}),
      sequence(
          {chars([](char32_t c) { return in_range(c, 'A', 'H') || in_range(c, 'J', 'X') || c == 'Z' || c == 'n'; }),
           apostrophe_like, java_letter, java_letter, zero_or_more(java_letter)}),
      sequence({apostrophe, chars([](char32_t c) { return in_range(c, '2', '9'); }), literal(U"0s")}),  // '90s
      sequence({apostrophe, literal(U"til"), optional(literal(U"l"))}),
      sequence({java_letter, zero_or_more(java_letter), one_of(U"aeiouyAEIOUY"), apostrophe_like, chars([](char32_t c) {
                  return in_range(c, 'A', 'Z') || c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
                }),
                zero_or_more(java_letter)}),  // ma'am, O'Neill
      sequence({apostrophe, literal(U"cause")}),
      sequence({literal(U"cont'd"), optional(literal(U"."))}),
      words({U"'twas", U"nor'easter", U"c'mon", U"e'er", U"s'mores", U"ev'ry", U"li'l", U"nat'l"}),
      sequence({literal(U"O"), apostrophe_like, literal(U"o")}),
  });

  const Pattern url_chars = none_of(U" \t\n\f\r\"<>|(){}");
  const Pattern url_end = none_of(U" \t\n\f\r\"<>|.!?(){},-");
  const Pattern full_url =
      sequence({literal(U"http"), optional(literal(U"s")), literal(U"://"), one_or_more(url_chars), url_end});
  const Pattern host_part = none_of(U" \t\n\f\r\"<>|.!?(){},");
  // [^ ... ,-_$] in the lexer is a range: ',' through '_' (digits, upper case, most punctuation) are out.
  const Pattern domain_part = chars([](char32_t c) {
    return !(c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '`' || c == '\'' ||
             c == '<' || c == '>' || c == '|' || c == '!' || c == '(' || c == ')' || c == '{' || c == '}' ||
             in_range(c, ',', '_') || c == '$');
  });
  const Pattern likely_url =
      sequence({either({sequence({literal(U"www."), one_or_more(sequence({one_or_more(host_part), literal(U".")})),
                                  repeat(ascii_letter, 2, 4)}),
                        sequence({one_or_more(sequence({one_or_more(domain_part), literal(U".")})),
                                  words({U"com", U"net", U"org", U"edu"})})}),
                optional(sequence({literal(U"/"), one_or_more(none_of(U" \t\n\f\r\"<>|()")), url_end}))});
  const Pattern email_part = none_of(U" \t\n\f\r\"<>|(){}.\u00A0");
  const Pattern email = sequence({optional(either({literal(U"&lt;"), literal(U"<")})), ascii_alphanumeric,
                                  zero_or_more(none_of(U" \t\n\f\r\"<>|()\u00A0{}")), literal(U"@"),
                                  zero_or_more(sequence({one_or_more(email_part), literal(U".")})),
                                  one_or_more(email_part), optional(either({literal(U"&gt;"), literal(U">")}))});
  const Pattern twitter =
      either({sequence({literal(U"@"), chars([](char32_t c) { return is_ascii_letter(c) || c == '_'; }),
                        zero_or_more(chars([](char32_t c) { return is_ascii_alphanumeric(c) || c == '_'; }))}),
              sequence({literal(U"#"), one_or_more(letter)})});

  const Pattern date =
      sequence({repeat(digit, 1, 2), one_of(U"-/"), repeat(digit, 1, 2), one_of(U"-/"), repeat(digit, 2, 4)});
  const Pattern number =
      sequence({optional(one_of(U"-+")),
                either({one_or_more(digit),
                        sequence({zero_or_more(digit),
                                  one_or_more(sequence({one_of(U".:,\u00AD\u066B\u066C"), one_or_more(digit)}))})})});
  const Pattern sub_super_number =
      sequence({optional(one_of(U"\u207A\u207B\u208A\u208B")),
                either({one_or_more(one_of(U"\u2070\u00B9\u00B2\u00B3\u2074\u2075\u2076\u2077\u2078\u2079")),
                        one_or_more(chars([](char32_t c) { return in_range(c, 0x2080, 0x2089); }))})});
  const Pattern fraction = sequence(
      {optional(sequence({repeat(digit, 1, 4), one_of(U"- \u00A0")})), repeat(digit, 1, 4),
       either({sequence({optional(literal(U"\\")), literal(U"/")}), literal(U"\u2044")}), repeat(digit, 1, 4)});
  const Pattern fraction_character =
      chars([](char32_t c) { return c == 0xBC || c == 0xBD || c == 0xBE || in_range(c, 0x2153, 0x215E); });

  const Pattern treebank_special = either({
      sequence({literal(U"-"), words({U"RRB", U"LRB", U"RCB", U"LCB", U"RSB", U"LSB"}), literal(U"-")}),
      literal(U"C.D.s"),
      literal(U"pro-"),
      literal(U"anti-"),
      sequence({literal(U"S"), either({literal(U"&"), literal(U"&amp;")}), literal(U"P-500")}),
      sequence({literal(U"S"), either({literal(U"&"), literal(U"&amp;")}), literal(U"Ls")}),
      sequence({literal(U"Cap"), apostrophe, literal(U"n")}),
      sequence({literal(U"c"), apostrophe, literal(U"est")}),
  });
  const Pattern slash_thing =
      sequence({one_or_more(ascii_alphanumeric), repeat(sequence({literal(U"-"), one_or_more(ascii_letter)}), 0, 2),
                repeat(sequence({optional(literal(U"\\")), literal(U"/"), one_or_more(ascii_alphanumeric),
                                 repeat(sequence({literal(U"-"), one_or_more(ascii_letter)}), 0, 2)}),
                       1, 2)});
  const Pattern dollar = either({sequence({zero_or_more(ascii_upper), literal(U"$")}), literal(U"#")});
  const Pattern currency =
      one_of(U"\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6");

  // Abbreviations. ABBREV1 (usually followed by a lower-case word): months, days, states, companies ...
  const Pattern abbreviation1 = sequence(
      {either(
           {words({U"Jan",  U"Feb",    U"Mar",   U"Apr",   U"Jun",    U"Jul",     U"Aug",  U"Sep",    U"Sept",  U"Oct",
                   U"Nov",  U"Dec",    U"Mon",   U"Tue",   U"Tues",   U"Wed",     U"Thu",  U"Thurs",  U"Fri",   U"Ala",
                   U"Ariz", U"[A]z",   U"[A]rk", U"Calif", U"Colo",   U"Conn",    U"Ct",   U"Dak",    U"[D]el", U"Fla",
                   U"Ga",   U"[I]ll",  U"Ind",   U"Kan",   U"Kans",   U"Ky",      U"[L]a", U"[M]ass", U"Md",    U"Mich",
                   U"Minn", U"[M]iss", U"Mo",    U"Mont",  U"Neb",    U"Nev",     U"Okla", U"[O]re",  U"[P]a",  U"Penn",
                   U"Tenn", U"[T]ex",  U"Va",    U"Vt",    U"[W]ash", U"Wis",     U"Wisc", U"Wyo",    U"Inc",   U"Co",
                   U"Cos",  U"Corp",   U"Ltd",   U"Plc",   U"Rt",     U"Bancorp", U"Bhd",  U"Assn",   U"Univ",  U"Intl",
                   U"Sys",  U"tel",    U"est",   U"ext",   U"sq",     U"Jr",      U"Sr",   U"Bros",   U"Ed.D",  U"Ph.D",
                   U"Blvd", U"Rd",     U"Esq",   U"etc",   U"al",     U"seq",     U"Bldg"}),
            // Pty, Pte, Ptys, Ppty ... (the y/e in lower case only)
            sequence({literal(U"P"), optional(literal(U"p")), literal(U"t"), one_of(U"ye"), optional(literal(U"s"))})}),
       literal(U".")});
  // ACRO: a letter, or letters separated by periods (U.S, a.m); ACRO2 needs at least two letters.
  const Pattern acronym_special =
      either({sequence({words({U"Canada", U"Sino", U"Korean", U"EU", U"Japan", U"non"}), literal(U"-U.S")}),
              sequence({literal(U"U.S.-"), either({literal(U"U.K"), literal(U"U.S.S.R")})})});
  const Pattern acro =
      either({sequence({ascii_letter, zero_or_more(sequence({literal(U"."), ascii_letter}))}), acronym_special});
  const Pattern acro2 =
      either({sequence({ascii_letter, one_or_more(sequence({literal(U"."), ascii_letter}))}), acronym_special});
  // ABBREV4: titles and similar, usually followed by a capitalised word.
  const Pattern abbreviation4 = either({
      words({U"Mr",    U"Mrs",   U"Ms",   U"[M]iss", U"Dr",   U"Drs",   U"Prof",  U"Profs",  U"Sen",   U"Sens",
             U"Rep",   U"Reps",  U"Atty", U"Attys",  U"Lt",   U"Col",   U"Gen",   U"Messrs", U"Gov",   U"Govs",
             U"Adm",   U"Rev",   U"Maj",  U"Sgt",    U"Cpl",  U"Pvt",   U"Capt",  U"St",     U"Ste",   U"Ave",
             U"Pres",  U"Lieut", U"Hon",  U"Brig",   U"Cmdr", U"Comdr", U"Pfc",   U"Spc",    U"Supt",  U"Supts",
             U"Det",   U"Mt",    U"Ft",   U"Adj",    U"Adv",  U"Asst",  U"Assoc", U"Ens",    U"Insp",  U"Mlle",
             U"Mme",   U"Msgr",  U"Sfc",  U"vs",     U"Alex", U"Wm",    U"Jos",   U"Cie",    U"a.k.a", U"cf",
             U"TREAS", U"Ph",    U"Invt", U"Elec",   U"Natl", U"Dept"}),
      acro, sequence({literal(U"M"), one_of(U"ft"), literal(U"g")}),  // Mfg, Mtg
  });
  const Pattern abbreviation2 = sequence({abbreviation4, literal(U".")});
  const Pattern acronym = sequence({acro, literal(U".")});
  const Pattern abbreviation3 =
      sequence({words({U"ca", U"fig", U"figs", U"prop", U"no", U"nos", U"art", U"bldg", U"pp", U"op"}), literal(U".")});
  // Words that start a sentence: an acronym before them ends the sentence.
  const Pattern sentence_start = either(
      {words({U"[A]bout", U"[A]ccording", U"[A]dditionally", U"[A]fter", U"[A]n",    U"[A]",       U"[A]s",   U"[A]t",
              U"[B]ut",   U"[E]arlier",   U"[H]e",           U"[H]er",   U"[H]ere",  U"[H]owever", U"[I]f",   U"[I]n",
              U"[I]t",    U"[L]ast",      U"[M]any",         U"[M]ore",  U"[M]r.",   U"[M]s.",     U"[N]ow",  U"[O]nce",
              U"[O]ne",   U"[O]ther",     U"[O]ur",          U"[S]he",   U"[S]ince", U"[S]o",      U"[S]ome", U"[S]uch",
              U"[T]hat",  U"[T]he",       U"[T]heir",        U"[T]hen",  U"[T]here", U"[T]hese",   U"[T]hey", U"[T]his",
              U"[W]e",    U"[W]hen",      U"[W]hile",        U"[W]hat",  U"[Y]et",   U"[Y]ou"}),
       sgml});
  const Pattern filename = sequence(
      {one_or_more(letter_or_digit), zero_or_more(sequence({literal(U"."), one_or_more(letter_or_digit)})),
       literal(U"."),
       words({U"bat", U"bmp", U"c",    U"class", U"cgi",  U"cpp",  U"dll", U"doc", U"docx", U"exe", U"gif", U"gz",
              U"h",   U"htm", U"html", U"jar",   U"java", U"jpeg", U"jpg", U"mov", U"mp3",  U"pdf", U"php", U"pl",
              U"png", U"ppt", U"ps",   U"py",    U"sql",  U"tar",  U"txt", U"wav", U"x",    U"xml", U"zip"})});
  const Pattern phone_separator = one_of(U"- \u00A0");
  const Pattern plus_signs = sequence({literal(U"+"), optional(literal(U"+"))});
  const Pattern phone = either({
      sequence(
          {either({sequence({literal(U"("), repeat(ascii_digit, 2, 3), literal(U")"), optional(one_of(U" \u00A0"))}),
                   sequence({optional(plus_signs), optional(sequence({repeat(ascii_digit, 2, 4), phone_separator})),
                             repeat(ascii_digit, 2, 4), phone_separator})}),
           repeat(ascii_digit, 3, 4), optional(phone_separator), repeat(ascii_digit, 3, 5)}),
      sequence({optional(sequence({optional(plus_signs), repeat(ascii_digit, 2, 4), literal(U".")})),
                repeat(ascii_digit, 2, 4), literal(U"."), repeat(ascii_digit, 3, 4), literal(U"."),
                repeat(ascii_digit, 3, 5)}),
  });
  const Pattern double_quote = either({literal(U"\""), literal(U"&quot;")});
  const Pattern smiley =
      sequence({optional(one_of(U"<>")), one_of(U":;="), optional(one_of(U"-o*'")), one_of(U"()DPdpO\\{@|[]")});
  const Pattern asian_smiley = either({
      sequence({one_of(U"^x=~<>"), literal(U".[^x=~<>]")}),  // (sic: the lexer's class there is escaped away)
      sequence({one_of(U"-^x=~<>'"), literal(U"_"), one_of(U"-^x=~<>'")}),
      sequence({literal(U"("), one_of(U"-^x=~<>'"), optional(one_of(U"_.")), one_of(U"-^x=~<>'"), literal(U")")}),
      sequence({literal(U"("), one_of(U"^x=~<>'"), literal(U"-"), one_of(U"^x=~<>'`"), literal(U")")}),
  });
  const Pattern in_sentence_punctuation = one_of(U",;:\u3001");
  const Pattern hyphenated = sequence(
      {ascii_alphanumeric,
       zero_or_more(chars([](char32_t c) { return is_ascii_alphanumeric(c) || c == '.' || c == ',' || c == 0xAD; })),
       one_or_more(sequence(
           {literal(U"-"), either({one_or_more(chars([](char32_t c) { return is_ascii_alphanumeric(c) || c == 0xAD; })),
                                   sequence({acro2, literal(U".")})})}))});
  const Pattern thing_prefix = sequence({one_of(U"dDoOlL"), apostrophe_like, java_letter_or_digit});  // d', o', l'
  const Pattern thing_part = sequence({optional(thing_prefix), one_or_more(java_letter_or_digit)});
  const Pattern thing = sequence({thing_part, zero_or_more(sequence({hyphen, thing_part}))});
  const Pattern capitals_with_ampersand =
      sequence({one_or_more(ascii_upper),
                one_or_more(sequence({either({one_of(U"+&"), literal(U"&amp;")}), one_or_more(ascii_upper)}))});
  const Pattern quotes = either(
      {apostrophe, literal(U"''"),
       repeat(
           one_of(U"`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB"),
           1, 2)});
  const Pattern not_ascii_letter = chars([](char32_t c) { return !is_ascii_letter(c); });
  const Pattern period = literal(U".");

  using A = Action;
  const auto rule = [](Pattern token, A action = A::kToken, std::u32string replacement = {}) {
    return Rule{std::move(token), std::nullopt, action, std::move(replacement)};
  };
  const auto rule_before = [](Pattern token, Pattern context, A action = A::kToken) {
    return Rule{std::move(token), std::move(context), action};
  };
  const auto split_rule = [](Pattern token, std::size_t split) {
    return Rule{std::move(token), std::nullopt, A::kSplitAfter, {}, split};
  };

  return {
      rule(literal(U"c++")),
      rule(sequence({one_of(U"cCfF"), literal(U"#")})),
      split_rule(literal(U"cannot"), 3),
      split_rule(literal(U"'twas"), 2),
      split_rule(literal(U"'tis"), 2),
      split_rule(words({U"gonna", U"gotta", U"lemme", U"gimme", U"wanna"}), 3),
      rule(sgml, A::kSpacesToNoBreak),
      rule(either({sequence({literal(U"&"), words({U"MD", U"mdash", U"ndash"}), literal(U";")}),
                   one_of(U"\u0096\u0097\u2013\u2014\u2015")}),
           A::kReplace, U"--"),
      rule(literal(U"&amp;"), A::kReplace, U"&"),
      rule(sequence({literal(U"&"),
                     either({words({U"HT", U"TL", U"UR", U"LR", U"QC", U"QL", U"QR", U"odq", U"cdq"}),
                             sequence({literal(U"#"), one_or_more(ascii_digit)})}),
                     literal(U";")})),
      rule_before(word, reduced_auxiliary, A::kRemoveSoftHyphens),
      rule_before(word_before_nt, negation, A::kRemoveSoftHyphens),
      rule(word, A::kRemoveSoftHyphens),
      rule(apostrophe_word),
      rule_before(sequence({literal(U"y"), apostrophe}), java_letter),
      rule(full_url),
      rule(likely_url),
      rule(email),
      rule(twitter),
      rule_before(reduced_auxiliary, not_ascii_letter, A::kRightQuote),
      rule_before(negation, not_ascii_letter, A::kRightQuote),
      rule(date),
      rule(number, A::kRemoveSoftHyphens),
      rule(sub_super_number),
      rule(fraction, A::kSpacesToNoBreak),
      rule(fraction_character, A::kFraction),
      rule(treebank_special, A::kAmpersandEntity),
      rule(slash_thing),
      rule(dollar),
      rule(currency, A::kCurrency),
      rule_before(acronym, sequence({one_or_more(space_or_newline), sentence_start, space_or_newline}),
                  A::kAcronymAtSentenceEnd),
      rule_before(abbreviation3, sequence({optional(space_or_newline), chars(is_java_digit)})),
      rule_before(sequence({either({sequence({literal(U"pt"), one_of(U"eyEY")}), literal(U"co")}), period}),
                  sequence({space, words({U"ltd", U"lim"})})),
      rule_before(abbreviation1,
                  sequence({space_or_newline, either({space_or_newline, chars(is_java_uppercase), sgml})}),
                  A::kAbbreviation),
      rule_before(abbreviation1, sequence({lexing::any_char(), lexing::any_char()})),
      rule(abbreviation1, A::kAbbreviation),
      rule(abbreviation2),
      rule_before(abbreviation4, space),
      rule_before(acro, space_or_newline),
      rule_before(sequence({apostrophe, ascii_digit, ascii_digit}), space_or_newline),  // '99
      rule_before(filename, either({space_or_newline, one_of(U".?!,")})),
      rule_before(sequence({word, period}), in_sentence_punctuation, A::kRemoveSoftHyphens),
      rule(phone, A::kPhone),
      rule_before(double_quote, chars([](char32_t c) { return is_ascii_alphanumeric(c) || c == '$'; }), A::kLeftQuote),
      rule(double_quote, A::kRightQuote),
      rule(literal(U"\x7f"), A::kSkip),
      rule(either({literal(U"<"), literal(U"&lt;")}), A::kReplace, U"<"),
      rule(either({literal(U">"), literal(U"&gt;")}), A::kReplace, U">"),
      rule_before(smiley, chars([](char32_t c) { return !is_ascii_alphanumeric(c); }), A::kParentheses),
      rule(asian_smiley, A::kParentheses),
      rule(literal(U"{"), A::kReplace, U"-LCB-"),
      rule(literal(U"}"), A::kReplace, U"-RCB-"),
      rule(literal(U"["), A::kReplace, U"-LSB-"),
      rule(literal(U"]"), A::kReplace, U"-RSB-"),
      rule(literal(U"("), A::kReplace, U"-LRB-"),
      rule(literal(U")"), A::kReplace, U"-RRB-"),
      rule(one_or_more(literal(U"-")), A::kHyphens),
      rule(either({repeat(period, 3, 5), sequence({repeat(sequence({period, one_of(U" \u00A0")}), 2, 4), period}),
                   one_of(U"\u0085\u2026")}),
           A::kReplace, U"..."),
      rule(either({one_or_more(literal(U"@")), one_or_more(literal(U"#")), one_or_more(literal(U"_"))})),
      rule(either({one_or_more(literal(U"*")), repeat(literal(U"\\*"), 1, 3)})),
      rule(in_sentence_punctuation),
      rule(one_or_more(one_of(U"?!"))),
      rule(one_of(U".\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700\u0701\u0702\u07FA\u3002")),
      rule(literal(U"=")),
      rule(literal(U"/")),
      rule_before(sequence({hyphenated, period}), in_sentence_punctuation, A::kRemoveSoftHyphens),
      rule(hyphenated, A::kRemoveSoftHyphens),
      rule_before(sequence({thing, period}), in_sentence_punctuation),
      rule(thing),
      rule_before(sequence({capitals_with_ampersand, period}), in_sentence_punctuation, A::kAmpersandEntity),
      rule(capitals_with_ampersand, A::kAmpersandEntity),
      // A ' before a word is probably an opening quote.
      rule_before(literal(U"'"), sequence({ascii_letter, none_of(U" \t\n\r\u00A0")}), A::kLeftQuote),
      rule(reduced_auxiliary, A::kRightQuote),
      rule(negation, A::kRightQuote),
      rule(quotes, A::kRightQuote),
      rule(words({U"<<", U">>"})),
      rule(chars(is_misc_symbol)),
      rule(either({literal(std::u32string(1, U'\0')), one_or_more(space), one_of(U"\u200B\u200E\u200F\uFEFF")}),
           A::kSkip),
      rule(either({literal(U"\r"), sequence({optional(literal(U"\r")), literal(U"\n")}),
                   one_of(U"\u2028\u2029\u000B\u000C\u0085")}),
           A::kNewline),
      rule(literal(U"&nbsp;"), A::kSkip),
      rule(chars([](char32_t c) { return c != '\n'; }), A::kUntokenizable),
  };
}

inline const std::vector<Rule>& rules() {
  static const std::vector<Rule> table = make_rules();
  return table;
}

inline std::u32string replace_all(std::u32string_view text, std::u32string_view from, std::u32string_view to,
                                  bool ignore_ascii_case = false) {
  const auto found_at = [&](std::size_t position) {
    if (position + from.size() > text.size()) return false;
    for (std::size_t i = 0; i < from.size(); ++i) {
      const char32_t a = text[position + i], b = from[i];
      if (ignore_ascii_case ? lexing::detail::fold_ascii(a) != lexing::detail::fold_ascii(b) : a != b) return false;
    }
    return true;
  };
  std::u32string out;
  std::size_t position = 0;
  while (position < text.size()) {
    if (found_at(position)) {
      out += to;
      position += from.size();
    } else {
      out.push_back(text[position++]);
    }
  }
  return out;
}

// PTBLexer's latexQuotes(): ASCII quotes by position, then the curly and CP1252 ones by their shape.
inline std::u32string latex_quotes(std::u32string text, bool probably_left) {
  text = replace_all(replace_all(text, U"&apos;", U"'"), U"&quot;", U"\"");
  std::u32string out;
  for (char32_t c : text) {
    if (c == '\'') {
      out += probably_left ? U"`" : U"'";
    } else if (c == '"') {
      out += probably_left ? U"``" : U"''";
    } else if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) {
      out += U"`";
    } else if (c == 0x92 || c == 0x2019 || c == 0x203A) {
      out += U"'";
    } else if (c == 0x93 || c == 0x201C || c == 0xAB) {
      out += U"``";
    } else if (c == 0x94 || c == 0x201D || c == 0xBB) {
      out += U"''";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

inline std::u32string with_spaces_as_no_break(std::u32string text) {
  for (char32_t& c : text) c = (c == ' ') ? 0xA0 : c;
  return text;
}

inline std::u32string with_parentheses_as_tokens(std::u32string_view text) {
  std::u32string out;
  for (char32_t c : text) {
    if (c == '(') {
      out += U"-LRB-";
    } else if (c == ')') {
      out += U"-RRB-";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct Emission {
  std::optional<std::u32string> token;  // nothing for skipped text
  std::size_t consumed = 0;             // how much input the rule used (the rest is read again)
  bool newline = false;
};

inline Emission apply(const Rule& rule, std::u32string_view matched) {
  std::u32string text(matched);
  const std::size_t length = matched.size();
  switch (rule.action) {
    case Action::kToken:
      return {text, length};
    case Action::kReplace:
      return {rule.replacement, length};
    case Action::kRemoveSoftHyphens: {
      std::u32string out;
      for (char32_t c : text) {
        if (c != 0xAD) out.push_back(c);
      }
      return {out.empty() ? std::u32string(U"-") : out, length};
    }
    case Action::kSpacesToNoBreak:
      return {with_spaces_as_no_break(text), length};
    case Action::kAmpersandEntity:
      return {replace_all(text, U"&amp;", U"&", true), length};
    case Action::kLeftQuote:
      return {latex_quotes(text, true), length};
    case Action::kRightQuote:
      return {latex_quotes(text, false), length};
    case Action::kCurrency: {
      std::u32string out;
      for (char32_t c : text) {
        if (c == 0xA2) {
          out += U"cents";
        } else if (c == 0xA3) {
          out += U"#";
        } else if (c == 0x80 || c == 0xA4 || c == 0x20A0 || c == 0x20AC) {
          out += U"$";
        } else {
          out.push_back(c);
        }
      }
      return {out, length};
    }
    case Action::kFraction: {
      const char32_t c = text[0];
      const std::u32string out = c == 0xBC     ? U"1/4"
                                 : c == 0xBD   ? U"1/2"
                                 : c == 0xBE   ? U"3/4"
                                 : c == 0x2153 ? U"1/3"
                                 : c == 0x2154 ? U"2/3"
                                               : text;
      return {out, length};
    }
    case Action::kPhone:
      return {with_parentheses_as_tokens(with_spaces_as_no_break(text)), length};
    case Action::kParentheses:
      return {with_parentheses_as_tokens(text), length};
    case Action::kHyphens:
      return {(length == 3 || length == 4) ? std::u32string(U"--") : text, length};
    case Action::kSplitAfter:
      return {text.substr(0, rule.split), rule.split};
    case Action::kAbbreviation:
      return {text, length - 1};
    case Action::kAcronymAtSentenceEnd:
      // A one-letter "I." is the word and a period; a longer acronym keeps its period and the
      // sentence gets one more (the lexer pushes the period back either way).
      return length == 2 ? Emission{text.substr(0, 1), 1} : Emission{text, length - 1};
    case Action::kSkip:
    case Action::kUntokenizable:
      return {std::nullopt, length};
    case Action::kNewline:
      return {std::nullopt, length, true};
  }
  return {std::nullopt, length};
}

}  // namespace blip::evaluation::ptb_detail
