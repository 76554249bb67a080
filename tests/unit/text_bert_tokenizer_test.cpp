// BERT WordPiece tokenizer (BLIP) against Hugging Face's fast tokenizer:
// every record of fixtures/tokenizers/bert.jsonl and bert_extra.jsonl, the BERT entries of
// assets/reference/tokenizer_reference_encodings.jsonl, truncation, the Unicode tables, UTF-8
// handling, the loader and the blip_tokenize JSON-lines core.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/text/json_lines.hpp"
#include "blip/text/tokenizer.hpp"
#include "test_support.hpp"

namespace text_bert_tokenizer_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::test::asset;
using blip::test::fixture;
using blip::test::have_or_skip;
using Json = nlohmann::json;

const std::string kBlipFolder = "tokenizers/blip-image-captioning-base";

using blip::test::read_json_lines;

const blip::Tokenizer& blip_tokenizer() {
  static const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(asset(kBlipFolder));
  return *tokenizer;
}

std::vector<std::int64_t> ids_of(const Json& value) { return value.get<std::vector<std::int64_t>>(); }

std::u32string u32(std::initializer_list<char32_t> code_points) { return std::u32string(code_points); }

std::vector<std::vector<std::int64_t>> rows_of(const blip::Tensor<std::int64_t>& tensor) {
  std::vector<std::vector<std::int64_t>> rows(static_cast<std::size_t>(tensor.dim(0)));
  for (std::int64_t row = 0; row < tensor.dim(0); ++row) {
    for (std::int64_t column = 0; column < tensor.dim(1); ++column) rows[row].push_back(tensor.at(row, column));
  }
  return rows;
}

}  // namespace

// ---- fixtures: the Rust fast tokenizer's output --------------------------------------------

TEST_CASE("bert.jsonl: ids, tokens and decodes equal the fast tokenizer on every corpus string") {
  const std::string path = fixture("tokenizers/bert.jsonl");
  if (!have_or_skip(path, "BERT tokenizer fixtures") || !have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  const std::vector<Json> records = read_json_lines(path);
  REQUIRE(records.size() == 299);
  int checked = 0;
  for (const Json& record : records) {
    const std::string text = record.at("text").get<std::string>();
    CAPTURE(record.at("idx").get<int>());
    CAPTURE(text);
    const blip::Encoding encoding = tokenizer.encode(text);
    CHECK(encoding.ids == ids_of(record.at("input_ids_fast")));
    CHECK(encoding.tokens == record.at("tokens_fast").get<std::vector<std::string>>());
    CHECK(tokenizer.encode(text, /*add_special_tokens=*/false).ids == ids_of(record.at("ids_nospecial_fast")));

    const std::vector<std::int64_t> ids = ids_of(record.at("input_ids_fast"));
    CHECK(tokenizer.decode(ids, /*skip_special_tokens=*/true) == record.at("decode_skip_fast").get<std::string>());
    CHECK(tokenizer.decode(ids, /*skip_special_tokens=*/false) == record.at("decode_fast").get<std::string>());
    CHECK(tokenizer.decode(ids, true, /*clean_up_tokenization_spaces=*/false) ==
          record.at("decode_skip_noclean_fast").get<std::string>());
    ++checked;
  }
  CHECK(checked == 299);
}

TEST_CASE("bert.jsonl: the strings where slow and fast differ follow fast") {
  // Spot checks of the README's documented differences, so a regression names the quirk.
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  // U+2B820 is in Python's CJK ranges but not Rust's (0x2B920 typo): the word stays whole -> [UNK].
  CHECK(tokenizer.encode("a\xF0\xAB\xA0\xA0" "b extension E start").ids ==
        std::vector<std::int64_t>{101, 100, 5331, 1041, 2707, 102});
  // The WordPiece decoder always cleans up, even with clean_up_tokenization_spaces=false.
  CHECK(tokenizer.decode(tokenizer.encode("hello, world.").ids, true, false) == "hello, world.");
  // 100 characters are tokenized, 101 are [UNK].
  CHECK(tokenizer.encode(std::string(100, 'y'), false).ids.size() > 1);
  CHECK(tokenizer.encode(std::string(101, 'z'), false).ids == std::vector<std::int64_t>{100});
}

TEST_CASE("bert_extra.jsonl: batch padding, prompts and generation-like decodes") {
  const std::string path = fixture("tokenizers/bert_extra.jsonl");
  if (!have_or_skip(path, "BERT extra fixtures") || !have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  int batches = 0, prompts = 0, decodes = 0;
  for (const Json& record : read_json_lines(path)) {
    const std::string kind = record.at("kind").get<std::string>();
    if (kind == "batch_padding") {
      const auto texts = record.at("texts").get<std::vector<std::string>>();
      CAPTURE(record.at("texts").dump());
      const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts);
      CHECK(record.at("pad_token_id").get<std::int64_t>() == tokenizer.pad_token_id());
      CHECK(rows_of(batch.input_ids) == record.at("input_ids_fast").get<std::vector<std::vector<std::int64_t>>>());
      CHECK(rows_of(batch.attention_mask) ==
            record.at("attention_mask_fast").get<std::vector<std::vector<std::int64_t>>>());
      ++batches;
    } else if (kind == "prompt") {
      const std::string text = record.at("text").get<std::string>();
      CAPTURE(text);
      const blip::Encoding encoding = tokenizer.encode(text);
      // BlipProcessor(images, text) returns exactly tokenizer(text).
      CHECK(encoding.ids == ids_of(record.at("tokenizer_input_ids_fast")));
      CHECK(encoding.ids == ids_of(record.at("processor_input_ids_fast")));
      const blip::BatchEncoding batch = blip::encode_batch(tokenizer, {text});
      CHECK(rows_of(batch.attention_mask)[0] == ids_of(record.at("processor_attention_mask_fast")));
      ++prompts;
    } else if (kind == "decode") {
      CAPTURE(record.at("label").get<std::string>());
      const std::vector<std::int64_t> ids = ids_of(record.at("ids"));
      const Json& tokens = record.at("tokens_fast");
      REQUIRE(tokens.size() == ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::optional<std::string> token = tokenizer.id_to_token(ids[i]);
        if (tokens[i].is_null()) {
          CHECK_FALSE(token.has_value());  // [DEC] = 30522 / [ENC] = 30523 are unknown to the tokenizer
        } else {
          CHECK(token == tokens[i].get<std::string>());
        }
      }
      CHECK(tokenizer.decode(ids, true) == record.at("decode_skip_fast").get<std::string>());
      CHECK(tokenizer.decode(ids, false) == record.at("decode_fast").get<std::string>());
      CHECK(tokenizer.decode(ids, true, false) == record.at("decode_skip_noclean_fast").get<std::string>());
      ++decodes;
    }
  }
  CHECK(batches == 3);
  CHECK(prompts == 3);
  CHECK(decodes == 11);
}

TEST_CASE("tokenizer_reference_encodings.jsonl: BERT entries") {
  const std::string path = asset("reference/tokenizer_reference_encodings.jsonl");
  if (!have_or_skip(path, "reference encodings") || !have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  int checked = 0;
  for (const Json& record : read_json_lines(path)) {
    if (record.at("tokenizer").get<std::string>() != "bert") continue;
    const std::string text = record.at("text").get<std::string>();
    CAPTURE(text);
    const blip::Encoding encoding = tokenizer.encode(text);
    CHECK(encoding.ids == ids_of(record.at("ids")));
    CHECK(encoding.tokens == record.at("tokens").get<std::vector<std::string>>());
    CHECK(tokenizer.decode(encoding.ids) == record.at("decoded").get<std::string>());
    ++checked;
  }
  CHECK(checked == 6);
}

// ---- truncation (HF truncation=True, max_length=N) -----------------------------------------

TEST_CASE("encode_batch with max_length keeps [SEP], like truncation=True") {
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  const std::vector<std::string> texts = {"a woman sitting on the beach with her dog", "two cats",
                                          "Question: how many dogs are in the picture? Answer:", ""};
  using Rows = std::vector<std::vector<std::int64_t>>;
  // Expected values: the Rust fast tokenizer (npm tokenizers 0.23.2, setTruncation(N)) padded to
  // the longest row. For N >= 3 transformers' slow BertTokenizer gives the same
  // (`tok(texts, padding=True, truncation=True, max_length=N)` through the oracle env).
  SUBCASE("max_length = 12") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts, true, 12);
    CHECK(rows_of(batch.input_ids) == Rows{{101, 1037, 2450, 3564, 2006, 1996, 3509, 2007, 2014, 3899, 102, 0},
                                           {101, 2048, 8870, 102, 0, 0, 0, 0, 0, 0, 0, 0},
                                           {101, 3160, 1024, 2129, 2116, 6077, 2024, 1999, 1996, 3861, 1029, 102},
                                           {101, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}});
    CHECK(rows_of(batch.attention_mask) == Rows{{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
                                                {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
                                                {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                                                {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}});
  }
  SUBCASE("max_length = 6") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts, true, 6);
    CHECK(rows_of(batch.input_ids) == Rows{{101, 1037, 2450, 3564, 2006, 102},
                                           {101, 2048, 8870, 102, 0, 0},
                                           {101, 3160, 1024, 2129, 2116, 102},
                                           {101, 102, 0, 0, 0, 0}});
  }
  SUBCASE("max_length = 3") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts, true, 3);
    CHECK(rows_of(batch.input_ids) == Rows{{101, 1037, 102}, {101, 2048, 102}, {101, 3160, 102}, {101, 102, 0}});
    CHECK(rows_of(batch.attention_mask) == Rows{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}});
  }
  SUBCASE("max_length = 2: only [CLS] [SEP] (fast; slow refuses and returns the text untruncated)") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts, true, 2);
    CHECK(rows_of(batch.input_ids) == Rows{{101, 102}, {101, 102}, {101, 102}, {101, 102}});
  }
  SUBCASE("max_length below the number of special tokens is an error") {
    CHECK_THROWS_WITH_AS(tokenizer.encode("two cats", true, 1), doctest::Contains("max_length 1"), blip::Error);
  }
  SUBCASE("without special tokens the whole budget is text") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts, false, 3);
    CHECK(rows_of(batch.input_ids) == Rows{{1037, 2450, 3564}, {2048, 8870, 0}, {3160, 1024, 2129}, {0, 0, 0}});
    CHECK(rows_of(batch.attention_mask) == Rows{{1, 1, 1}, {1, 1, 0}, {1, 1, 1}, {0, 0, 0}});
  }
  SUBCASE("an empty batch") {
    const blip::BatchEncoding batch = blip::encode_batch(tokenizer, {});
    CHECK(batch.input_ids.shape() == blip::Shape{0, 0});
  }
}

// ---- the tokenizer's own behaviour ------------------------------------------------------------

TEST_CASE("BERT tokenizer basics") {
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  CHECK(tokenizer.kind() == "bert-wordpiece");
  CHECK(tokenizer.size() == 30522);
  CHECK(tokenizer.pad_token_id() == 0);
  CHECK(tokenizer.special_token_ids() == std::vector<std::int64_t>{0, 100, 101, 102, 103});
  CHECK(tokenizer.is_special_token_id(102));
  CHECK_FALSE(tokenizer.is_special_token_id(1037));
  CHECK(tokenizer.num_special_tokens_to_add() == 2);
  CHECK(tokenizer.default_clean_up_tokenization_spaces());
  CHECK(tokenizer.token_to_id("##ing") == 2075);
  CHECK_FALSE(tokenizer.token_to_id("[DEC]").has_value());
  CHECK_FALSE(tokenizer.id_to_token(-1).has_value());
  CHECK(tokenizer.encode("").ids == std::vector<std::int64_t>{101, 102});
  CHECK(tokenizer.encode("", false).ids.empty());
  // Special tokens are matched in the raw text even without the template.
  CHECK(tokenizer.encode("a[SEP]b", false).ids == std::vector<std::int64_t>{1037, 102, 1038});
  // A first token that is a continuation keeps its "##" (WordPiece decoder, index 0).
  CHECK(tokenizer.decode({2075, 2075}) == "##inging");
  // Unknown ids vanish, even when special tokens are kept.
  CHECK(tokenizer.decode({30522, 1037, 102}, false) == "a [SEP]");
}

TEST_CASE("invalid UTF-8 becomes U+FFFD, which BertNormalizer then removes") {
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  const std::vector<std::int64_t> cat = tokenizer.encode("a cat").ids;
  // A stray continuation byte, a truncated 3-byte sequence, an encoded surrogate, an overlong '/'.
  CHECK(tokenizer.encode("a \x80" "cat").ids == cat);
  CHECK(tokenizer.encode("a \xE2\x82" "cat").ids == cat);
  CHECK(tokenizer.encode("a \xED\xA0\x80" "cat").ids == cat);
  CHECK(tokenizer.encode("a \xC0\xAF" "cat").ids == cat);
}

TEST_CASE("UTF-8 decoding replaces maximal ill-formed subparts, like Python's errors='replace'") {
  using blip::unicode::decode_utf8;
  CHECK(decode_utf8("a\xC3\xA9" "b") == u32({'a', 0xE9, 'b'}));
  CHECK(decode_utf8("\xF0\x9F\x98\x80") == u32({0x1F600}));
  // b'\xe2\x82'.decode('utf-8', 'replace') == '\ufffd' (one replacement for the truncated sequence).
  CHECK(decode_utf8("\xE2\x82" "x") == u32({0xFFFD, 'x'}));
  // b'\xed\xa0\x80'.decode(..., 'replace') == '\ufffd\ufffd\ufffd' (ED's second byte must be < A0).
  CHECK(decode_utf8("\xED\xA0\x80") == u32({0xFFFD, 0xFFFD, 0xFFFD}));
  // b'\xf4\x90\x80\x80' (above U+10FFFF) -> four replacements; b'\xc0\xaf' (overlong) -> two.
  CHECK(decode_utf8("\xF4\x90\x80\x80") == u32({0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}));
  CHECK(decode_utf8("\xC0\xAF") == u32({0xFFFD, 0xFFFD}));
  CHECK(decode_utf8("\xF0\x9F\x98") == u32({0xFFFD}));
  CHECK(blip::unicode::encode_utf8(u32({'a', 0xE9, 0x20AC, 0x1F600})) == "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

// ---- the Unicode tables: the crates' versions, not today's Unicode -------------------------

TEST_CASE("Unicode tables: classes as the Rust crates see them") {
  using namespace blip::unicode;
  // Cc | Cf | Co (unicode_categories 0.1.1, Unicode 8.0).
  CHECK(is_control_format_or_private_use(0x00));
  CHECK(is_control_format_or_private_use(0x85));     // NEXT LINE is Cc: dropped, not a space
  CHECK(is_control_format_or_private_use(0x200B));   // ZERO WIDTH SPACE, Cf
  CHECK(is_control_format_or_private_use(0x202E));   // RIGHT-TO-LEFT OVERRIDE, Cf
  CHECK(is_control_format_or_private_use(0xE123));   // private use, inside the range
  CHECK(is_control_format_or_private_use(0x10FFFD));
  CHECK(is_control_format_or_private_use(0xFEFF));
  CHECK_FALSE(is_control_format_or_private_use('a'));
  CHECK_FALSE(is_control_format_or_private_use(0x0378));  // unassigned: kept (is_other has no Cn)
  CHECK_FALSE(is_control_format_or_private_use(0x1F600));
  // P* in Unicode 8.0: U+2E43 DASH WITH LEFT UPTURN (Po since 9.0) is not punctuation yet;
  // U+166D (Po in 8.0, So since 12.0) still is.
  CHECK(is_punctuation(0x00BF));  // ¿
  CHECK(is_punctuation(0x3002));  // 。
  CHECK(is_punctuation(0x2E42));
  CHECK(is_punctuation(0x166D));
  CHECK_FALSE(is_punctuation(0x2E43));
  CHECK_FALSE(is_punctuation('$'));     // Sc: only the ASCII rule makes '$' punctuation
  CHECK(is_ascii_punctuation('$'));
  CHECK_FALSE(is_punctuation(0x00D7));  // × is Sm
  // Mn in Unicode 8.0.
  CHECK(is_nonspacing_mark(0x0301));
  CHECK(is_nonspacing_mark(0x3099));  // combining kana voiced mark: が -> か
  CHECK(is_nonspacing_mark(0x1734));  // Mn in 8.0 (Mc since 14.0)
  CHECK_FALSE(is_nonspacing_mark(0x1E944));  // Adlam (Unicode 9.0): not known to the crate
  CHECK_FALSE(is_nonspacing_mark(0x0903));   // Mc
  // White_Space (Rust std, Unicode 17).
  CHECK(is_white_space(0x3000));
  CHECK(is_white_space(0x00A0));
  CHECK(is_white_space(0x2028));
  CHECK(is_white_space(0x0085));
  CHECK_FALSE(is_white_space(0x180E));  // MONGOLIAN VOWEL SEPARATOR left White_Space in 6.3
  CHECK_FALSE(is_white_space(0x200B));
}

TEST_CASE("Unicode tables: NFD (Unicode 9.0) and lowercase (Unicode 17.0)") {
  using namespace blip::unicode;
  CHECK(nfd(u32({0xE9})) == u32({'e', 0x301}));
  CHECK(nfd(u32({0x1E09})) == u32({'c', 0x327, 0x301}));          // ḉ: full (recursive) decomposition
  CHECK(nfd(u32({0xAC01})) == u32({0x1100, 0x1161, 0x11A8}));     // 각: Hangul, algorithmic
  CHECK(nfd(u32({0xAC00})) == u32({0x1100, 0x1161}));
  CHECK(nfd(u32({'a', 0x301, 0x316})) == u32({'a', 0x316, 0x301}));  // canonical order: 220 before 230
  CHECK(nfd(u32({0x212B})) == u32({'A', 0x30A}));                 // ANGSTROM SIGN
  CHECK(nfd(u32({0xF900})) == u32({0x8C48}));                     // CJK compatibility ideograph
  CHECK(canonical_combining_class(0x301) == 230);
  CHECK(canonical_combining_class(0x1E944) == 230);  // Adlam: in the 9.0 normalization data
  CHECK(canonical_combining_class('a') == 0);

  auto lower = [](char32_t c) {
    std::u32string out;
    append_lowercase(out, c);
    return out;
  };
  CHECK(lower('A') == u32({'a'}));
  CHECK(lower(0x3A3) == u32({0x3C3}));          // Σ -> σ, never the final ς
  CHECK(lower(0x130) == u32({'i', 0x307}));     // İ: SpecialCasing
  CHECK(lower(0x1E9E) == u32({0xDF}));          // ẞ -> ß
  CHECK(lower(0x212A) == u32({'k'}));           // KELVIN SIGN
  CHECK(lower(0x0100) == u32({0x0101}));        // alternating pairs
  CHECK(lower(0x0101) == u32({0x0101}));
  CHECK(lower(0x10400) == u32({0x10428}));      // Deseret
  CHECK(lower(0xA7CB) == u32({0x0264}));        // Unicode 16.0 addition
  CHECK(lower(0x10D50) == u32({0x10D70}));      // Garay, Unicode 16.0
  CHECK(lower(0x1F600) == u32({0x1F600}));
}

TEST_CASE("BertNormalizer and BertPreTokenizer on their own") {
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const auto tokenizer = blip::load_bert_tokenizer(asset(kBlipFolder));
  const auto normalize = [&](std::string_view text) {
    return blip::unicode::encode_utf8(tokenizer->normalize(blip::unicode::decode_utf8(text)));
  };
  CHECK(normalize("Caf\xC3\xA9") == "cafe");
  CHECK(normalize("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3") == "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83");  // ΟΔΟΣ -> οδοσ
  CHECK(normalize("a\tb\nc d") == "a b c d");
  // \v is White_Space but also Cc, and clean_text drops controls before mapping whitespace.
  CHECK(normalize("c\x0B" "d") == "cd");
  CHECK(normalize("x\xE5\xAF\xBFy") == "x \xE5\xAF\xBF y");  // CJK ideographs get spaces
  CHECK(normalize("\xE3\x81\x8C") == "\xE3\x81\x8B");        // が -> か
  const auto words = tokenizer->pre_tokenize(blip::unicode::decode_utf8("hello, world!! it's"));
  CHECK(words == std::vector<std::string>{"hello", ",", "world", "!", "!", "it", "'", "s"});
}

// ---- loading ---------------------------------------------------------------------------------

TEST_CASE("load_tokenizer: vocab.txt alone gives the same tokenizer as tokenizer.json") {
  const std::string path = fixture("tokenizers/bert.jsonl");
  if (!have_or_skip(path, "BERT tokenizer fixtures") || !have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  namespace fs = std::filesystem;
  const fs::path folder = fs::path(BLIP_TEST_BINARY_DIR) / "text_bert_tokenizer_vocab_only";
  fs::remove_all(folder);
  fs::create_directories(folder);
  fs::copy_file(fs::path(asset(kBlipFolder)) / "vocab.txt", folder / "vocab.txt");
  fs::copy_file(fs::path(asset(kBlipFolder)) / "tokenizer_config.json", folder / "tokenizer_config.json");
  const std::unique_ptr<blip::Tokenizer> from_vocab = blip::load_tokenizer(folder.string());
  CHECK(from_vocab->size() == 30522);
  for (const Json& record : read_json_lines(path)) {
    CAPTURE(record.at("idx").get<int>());
    const blip::Encoding encoding = from_vocab->encode(record.at("text").get<std::string>());
    CHECK(encoding.ids == ids_of(record.at("input_ids_fast")));
    CHECK(from_vocab->decode(encoding.ids) == record.at("decode_skip_fast").get<std::string>());
  }
  fs::remove_all(folder);
}

TEST_CASE("load_tokenizer: each folder gets its own kind; a missing folder is an error") {
  for (const auto& [name, kind] : {std::pair<const char*, const char*>{"tokenizers/blip-image-captioning-base", "bert-wordpiece"},
                                   {"tokenizers/blip2-opt-2.7b", "byte-level-bpe"},
                                   {"tokenizers/blip2-flan-t5-xl", "unigram"}}) {
    const std::string folder = asset(name);
    if (!have_or_skip(folder, name)) continue;
    CAPTURE(folder);
    CHECK(blip::load_tokenizer(folder)->kind() == kind);
  }
  CHECK_THROWS_WITH_AS(blip::load_tokenizer("/nonexistent/tokenizer/folder"), doctest::Contains("not a directory"),
                       blip::Error);
}

// ---- blip_tokenize core --------------------------------------------------------------------------

TEST_CASE("tokenize_json_lines: one JSON line out per line in, errors name the line") {
  if (!have_or_skip(asset(kBlipFolder), "BLIP tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = blip_tokenizer();
  SUBCASE("good input") {
    std::istringstream input(
        "{\"text\": \"Hello world\"}\n"
        "\n"
        "{\"text\": \"Caf\\u00e9 na\\u00efve r\\u00e9sum\\u00e9\", \"id\": 7}\r\n"
        "{\"text\": \"\"}\n");
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, tokenizer) == blip::kJsonLinesOk);
    CHECK(errors.str().empty());
    CHECK(output.str() ==
          "{\"ids\":[101,7592,2088,102],\"tokens\":[\"[CLS]\",\"hello\",\"world\",\"[SEP]\"],\"decoded\":\"hello world\"}\n"
          "{\"ids\":[101,7668,15743,13746,102],\"tokens\":[\"[CLS]\",\"cafe\",\"naive\",\"resume\",\"[SEP]\"],"
          "\"decoded\":\"cafe naive resume\"}\n"
          "{\"ids\":[101,102],\"tokens\":[\"[CLS]\",\"[SEP]\"],\"decoded\":\"\"}\n");
  }
  SUBCASE("bad JSON on line 3") {
    std::istringstream input("{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \n{\"text\": \"d\"}\n");
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, tokenizer) == blip::kJsonLinesBadInput);
    CHECK(errors.str().rfind("line 3: invalid JSON", 0) == 0);
    CHECK(output.str() ==
          "{\"ids\":[101,1037,102],\"tokens\":[\"[CLS]\",\"a\",\"[SEP]\"],\"decoded\":\"a\"}\n"
          "{\"ids\":[101,1038,102],\"tokens\":[\"[CLS]\",\"b\",\"[SEP]\"],\"decoded\":\"b\"}\n");
  }
  SUBCASE("valid JSON without a string text") {
    std::istringstream input("{\"text\": 5}\n");
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, tokenizer) == blip::kJsonLinesBadInput);
    CHECK(errors.str().rfind("line 1: expected an object with a string field \"text\"", 0) == 0);
    CHECK(output.str().empty());
  }
}

}  // namespace text_bert_tokenizer_test
