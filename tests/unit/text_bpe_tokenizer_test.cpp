// Byte-level BPE tokenizer (BLIP-2 OPT, GPT-2) against Hugging Face's fast tokenizer:
// every record of fixtures/tokenizers/opt.jsonl and opt_extra.jsonl, loaded from tokenizer.json
// and from vocab.json + merges.txt alone; the GPT-2 regex and its Unicode classes; the loader's
// errors.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/text/tokenizer.hpp"
#include "test_support.hpp"
#include "text_tokenizer_fixtures.hpp"

namespace text_bpe_tokenizer_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

namespace fs = std::filesystem;
using blip::test::asset;
using blip::test::fixture;
using blip::test::have_or_skip;
using Json = nlohmann::json;

const std::string kOptFolder = "tokenizers/blip2-opt-2.7b";

using blip::test::check_blip2_extra_records;
using blip::test::check_fixture_strings;
using blip::test::ExtraCounts;
using blip::test::FixtureCounts;
using blip::test::read_json_lines;
using blip::test::TemporaryFolder;

// The OPT tokenizer twice: from tokenizer.json, and from the slow files only (vocab.json,
// merges.txt and the configs, as GPT2Converter would convert them).
const blip::Tokenizer& opt_from_tokenizer_json() {
  static const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(asset(kOptFolder));
  return *tokenizer;
}
const blip::Tokenizer& opt_from_vocab_and_merges() {
  static const TemporaryFolder folder("opt_slow_files");
  static const std::unique_ptr<blip::Tokenizer> tokenizer = [] {
    for (const char* file : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                             "added_tokens.json"}) {
      folder.copy(asset(kOptFolder), file);
    }
    return blip::load_tokenizer(folder.path.string());
  }();
  return *tokenizer;
}

}  // namespace

// ---- fixtures: the Rust fast tokenizer's output --------------------------------------------

TEST_CASE("opt.jsonl from tokenizer.json: ids, tokens and decodes equal the fast tokenizer on every string") {
  const std::string path = fixture("tokenizers/opt.jsonl");
  if (!have_or_skip(path, "OPT tokenizer fixtures") || !have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) {
    return;
  }
  const std::vector<Json> records = read_json_lines(path);
  REQUIRE(records.size() == 299);
  const FixtureCounts matched = check_fixture_strings(opt_from_tokenizer_json(), records);
  CHECK(matched.records == 299);
  CHECK(matched.ids == 299);
}

TEST_CASE("opt.jsonl from vocab.json + merges.txt only: the same ids, tokens and decodes") {
  const std::string path = fixture("tokenizers/opt.jsonl");
  if (!have_or_skip(path, "OPT tokenizer fixtures") || !have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) {
    return;
  }
  const blip::Tokenizer& tokenizer = opt_from_vocab_and_merges();
  CHECK(tokenizer.kind() == "byte-level-bpe");
  const FixtureCounts matched = check_fixture_strings(tokenizer, read_json_lines(path));
  CHECK(matched.ids == 299);
}

TEST_CASE("opt_extra.jsonl: batch padding, prompts, processor batches and generation-like decodes") {
  const std::string path = fixture("tokenizers/opt_extra.jsonl");
  if (!have_or_skip(path, "OPT extra fixtures") || !have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) {
    return;
  }
  const std::vector<Json> records = read_json_lines(path);
  const ExtraCounts expected{/*batches=*/3, /*prompts=*/3, /*processor_batches=*/1, /*decodes=*/11};
  SUBCASE("tokenizer.json") { CHECK(check_blip2_extra_records(opt_from_tokenizer_json(), records) == expected); }
  SUBCASE("vocab.json + merges.txt") { CHECK(check_blip2_extra_records(opt_from_vocab_and_merges(), records) == expected); }
}

// ---- the tokenizer's own behaviour ------------------------------------------------------------

TEST_CASE("OPT tokenizer basics") {
  if (!have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = opt_from_tokenizer_json();
  CHECK(tokenizer.kind() == "byte-level-bpe");
  CHECK(tokenizer.size() == 50266);  // len(tokenizer): 50265 + <image>
  CHECK(tokenizer.pad_token_id() == 1);
  CHECK(tokenizer.special_token_ids() == std::vector<std::int64_t>{1, 2, 50265});
  CHECK(tokenizer.num_special_tokens_to_add() == 1);
  CHECK_FALSE(tokenizer.default_clean_up_tokenization_spaces());
  CHECK(tokenizer.encode("").ids == std::vector<std::int64_t>{2});
  CHECK(tokenizer.encode("</s>").ids == std::vector<std::int64_t>{2, 2});
  CHECK(tokenizer.encode("a<image>b", false).ids ==
        std::vector<std::int64_t>{*tokenizer.token_to_id("a"), 50265, *tokenizer.token_to_id("b")});
  // <s>, <unk> and <mask> are not added tokens: they are split as text.
  CHECK(tokenizer.encode("<s>", false).ids.size() > 1);
  // Ids above the vocabulary vanish (BLIP-2 OPT's embedding has 50272 rows), like Rust's id_to_token.
  CHECK(tokenizer.decode({50271, 102}) == "a");
  CHECK_FALSE(tokenizer.id_to_token(50271).has_value());
  // With clean-up on, transformers' clean_up_tokenization runs on the text.
  CHECK(tokenizer.decode(tokenizer.encode("it 's").ids, true, true) == "it's");
  // Truncation keeps the template's </s>.
  CHECK(tokenizer.encode("a woman sitting on the beach", true, 3).ids == std::vector<std::int64_t>{2, 102, 693});
}

TEST_CASE("GPT-2 pre-tokenizer regex, by hand") {
  if (!have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) return;
  const auto& tokenizer = dynamic_cast<const blip::ByteLevelBpeTokenizer&>(opt_from_tokenizer_json());
  using Words = std::vector<std::string>;
  auto words = [&](const std::string& text) { return tokenizer.pre_tokenize(blip::unicode::decode_utf8(text)); };
  CHECK(words("Hello world") == Words{"Hello", "Ġworld"});
  // \s+(?!\S): the last space of a run goes with the next word; a trailing run stays whole.
  CHECK(words("a   b  ") == Words{"a", "ĠĠ", "Ġb", "ĠĠ"});
  // Contractions are lowercase only; "'S" falls to the punctuation class.
  CHECK(words("it's IT'S we'll") == Words{"it", "'s", "ĠIT", "'", "S", "Ġwe", "'ll"});
  CHECK(words("x1 2.5") == Words{"x", "1", "Ġ2", ".", "5"});
  // A newline is whitespace, not a space: no "Ġ" prefix for the next word; tab likewise.
  CHECK(words("a\nb\tc") == Words{"a", "Ċ", "b", "ĉ", "c"});
  // Unicode classes: é is a letter, ٣ (Arabic-Indic three) a number, 😀 neither.
  CHECK(words("café ٣😀") == Words{"cafÃ©", "ĠÙ£", "ðŁĺĢ"});
}

TEST_CASE("Unicode letter and number classes are Oniguruma's (Unicode 16.0)") {
  using namespace blip::unicode;
  CHECK(is_letter('a'));
  CHECK(is_letter(0x00AA));     // ª, Lo
  CHECK(is_letter(0x02B0));     // ʰ, Lm
  CHECK_FALSE(is_letter(0x0301));  // combining acute, Mn: not \p{L}
  CHECK(is_number(0x0663));     // Arabic-Indic three, Nd
  CHECK(is_number(0x00BD));     // ½, No
  CHECK(is_number(0x2160));     // Ⅰ, Nl
  CHECK_FALSE(is_number('x'));
  CHECK(is_letter(0x1C89));     // CYRILLIC CAPITAL LETTER TJE, new in Unicode 16.0
  CHECK_FALSE(is_letter(0x1F600));
}

TEST_CASE("bare GPT-2 folder (vocab.json + merges.txt): GPT2Tokenizer's defaults") {
  const std::string folder = asset("tokenizers/gpt2");
  if (!have_or_skip(folder, "GPT-2 tokenizer folder")) return;
  const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(folder);
  // No bos template (add_bos_token false), <|endoftext|> = 50256 is special, no pad token.
  CHECK(tokenizer->num_special_tokens_to_add() == 0);
  CHECK(tokenizer->encode("Hello world").ids == std::vector<std::int64_t>{15496, 995});
  CHECK(tokenizer->encode("a<|endoftext|>").ids == std::vector<std::int64_t>{64, 50256});
  CHECK(tokenizer->special_token_ids() == std::vector<std::int64_t>{50256});
  CHECK(tokenizer->decode({15496, 995, 50256}) == "Hello world");
  CHECK(tokenizer->default_clean_up_tokenization_spaces());
  CHECK_THROWS_WITH_AS(tokenizer->pad_token_id(), doctest::Contains("no pad token"), blip::Error);
}

// ---- bad input ------------------------------------------------------------------------------------

TEST_CASE("byte-level BPE loader errors name the file and what was expected") {
  const std::string source = asset("tokenizers/gpt2");
  if (!have_or_skip(source, "GPT-2 tokenizer folder")) return;
  SUBCASE("merges.txt without vocab.json") {
    TemporaryFolder folder("no_vocab");
    folder.copy(source, "merges.txt");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("has merges.txt but no vocab.json"), blip::Error);
  }
  SUBCASE("vocab.json without merges.txt") {
    TemporaryFolder folder("no_merges");
    folder.copy(source, "vocab.json");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("has vocab.json but no merges.txt"), blip::Error);
  }
  SUBCASE("an empty folder") {
    TemporaryFolder folder("empty");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()), doctest::Contains("vocab.json + merges.txt"),
                         blip::Error);
  }
  SUBCASE("a merge line with three tokens") {
    TemporaryFolder folder("bad_merge_line");
    folder.copy(source, "vocab.json");
    folder.write("merges.txt", "#version: 0.2\nĠ t\nh e x\n");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("merges.txt: line 3: expected two tokens"), blip::Error);
  }
  SUBCASE("a merge of tokens the vocabulary lacks") {
    TemporaryFolder folder("unknown_merge");
    folder.write("vocab.json", R"({"a": 0, "b": 1})");
    folder.write("merges.txt", "#version: 0.2\na b\n");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("makes 'ab', which is not in the vocabulary"), blip::Error);
  }
  SUBCASE("vocab.json that is not an object of ids") {
    TemporaryFolder folder("bad_vocab");
    folder.write("vocab.json", R"({"a": "zero"})");
    folder.copy(source, "merges.txt");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("vocab.json: the id of 'a' must be an integer, got \"zero\""),
                         blip::Error);
    folder.write("vocab.json", R"({"a": 1e300})");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("vocab.json: the id of 'a' must be an integer, got 1e+300"), blip::Error);
    folder.write("vocab.json", R"({"a": 18446744073709551615})");
    CHECK_THROWS_WITH_AS(blip::load_byte_level_bpe_tokenizer(folder.path.string()),
                         doctest::Contains("vocab.json: the id of 'a' must be an integer, got 18446744073709551615"),
                         blip::Error);
  }
  SUBCASE("malformed tokenizer.json merges") {
    TemporaryFolder folder("bad_json_merge");
    folder.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]},
      "normalizer": null, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
      "post_processor": null, "added_tokens": []})");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()),
                         doctest::Contains("merge 0 'a' is not two tokens"), blip::Error);
  }
}

TEST_CASE("decode: negative ids are an error, unknown ids are dropped") {
  if (!have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) return;
  const blip::Tokenizer& tokenizer = opt_from_tokenizer_json();
  CHECK_THROWS_WITH_AS(tokenizer.decode({102, -1}), doctest::Contains("id -1 is not a token id"), blip::Error);
  CHECK(tokenizer.decode({102, 1000000, 693}) == "a woman");
}

}  // namespace text_bpe_tokenizer_test
