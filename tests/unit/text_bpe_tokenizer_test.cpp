// Byte-level BPE tokenizer (BLIP-2 OPT, GPT-2) against Hugging Face's fast tokenizer:
// every record of fixtures/tokenizers/opt.jsonl and opt_extra.jsonl, loaded from tokenizer.json
// and from vocab.json + merges.txt alone; the GPT-2 regex and its Unicode classes; the loader's
// errors.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "blip/text/tokenizer.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using blip::test::asset;
using blip::test::fixture;
using blip::test::have_or_skip;
using Json = nlohmann::json;

const std::string kOptFolder = "tokenizers/blip2-opt-2.7b";

using blip::test::read_json_lines;

std::vector<std::int64_t> ids_of(const Json& value) { return value.get<std::vector<std::int64_t>>(); }

std::vector<std::vector<std::int64_t>> rows_of(const blip::Tensor<std::int64_t>& tensor) {
  std::vector<std::vector<std::int64_t>> rows(static_cast<std::size_t>(tensor.dim(0)));
  for (std::int64_t row = 0; row < tensor.dim(0); ++row) {
    for (std::int64_t column = 0; column < tensor.dim(1); ++column) rows[row].push_back(tensor.at(row, column));
  }
  return rows;
}

// A fresh folder under the system temp dir, removed at scope exit.
struct TemporaryFolder {
  fs::path path;
  explicit TemporaryFolder(const std::string& name)
      : path(fs::temp_directory_path() / ("blip_bpe_test_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  void copy(const std::string& source_folder, const std::string& file) const {
    fs::copy_file(fs::path(source_folder) / file, path / file);
  }
  void write(const std::string& file, const std::string& contents) const {
    std::ofstream(path / file, std::ios::binary) << contents;
  }
};

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

struct Counts {
  int ids = 0, ids_nospecial = 0, tokens = 0, decode_skip = 0, decode = 0, decode_skip_noclean = 0, records = 0;
};

Counts check_opt_jsonl(const blip::Tokenizer& tokenizer, const std::vector<Json>& records) {
  Counts matched;
  for (const Json& record : records) {
    const std::string text = record.at("text").get<std::string>();
    CAPTURE(record.at("idx").get<int>());
    CAPTURE(text);
    const blip::Encoding encoding = tokenizer.encode(text);
    const std::vector<std::int64_t> ids = ids_of(record.at("input_ids_fast"));
    std::vector<std::optional<std::string>> expected_tokens;
    for (const Json& token : record.at("tokens_fast")) {
      expected_tokens.push_back(token.is_null() ? std::nullopt : std::optional<std::string>(token.get<std::string>()));
    }
    std::vector<std::optional<std::string>> tokens(encoding.tokens.begin(), encoding.tokens.end());
    const auto nospecial = tokenizer.encode(text, /*add_special_tokens=*/false).ids;
    const std::string skip = tokenizer.decode(ids, true), keep = tokenizer.decode(ids, false),
                      noclean = tokenizer.decode(ids, true, false);
    CHECK(encoding.ids == ids);
    CHECK(tokens == expected_tokens);
    CHECK(nospecial == ids_of(record.at("ids_nospecial_fast")));
    CHECK(skip == record.at("decode_skip_fast").get<std::string>());
    CHECK(keep == record.at("decode_fast").get<std::string>());
    CHECK(noclean == record.at("decode_skip_noclean_fast").get<std::string>());
    matched.ids += encoding.ids == ids;
    matched.tokens += tokens == expected_tokens;
    matched.ids_nospecial += nospecial == ids_of(record.at("ids_nospecial_fast"));
    matched.decode_skip += skip == record.at("decode_skip_fast").get<std::string>();
    matched.decode += keep == record.at("decode_fast").get<std::string>();
    matched.decode_skip_noclean += noclean == record.at("decode_skip_noclean_fast").get<std::string>();
    ++matched.records;
  }
  MESSAGE("matched of ", matched.records, ": input_ids ", matched.ids, ", ids_nospecial ", matched.ids_nospecial,
          ", tokens ", matched.tokens, ", decode_skip ", matched.decode_skip, ", decode ", matched.decode,
          ", decode_skip_noclean ", matched.decode_skip_noclean);
  return matched;
}

void check_opt_extra(const blip::Tokenizer& tokenizer, const std::vector<Json>& records) {
  int batches = 0, prompts = 0, processor_batches = 0, decodes = 0;
  for (const Json& record : records) {
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
      CHECK(encoding.ids == ids_of(record.at("tokenizer_input_ids_fast")));
      // Blip2Processor with an image: 32 <image> ids, then tokenizer(text).
      std::vector<std::int64_t> processor_ids(32, *tokenizer.token_to_id("<image>"));
      processor_ids.insert(processor_ids.end(), encoding.ids.begin(), encoding.ids.end());
      CHECK(processor_ids == ids_of(record.at("processor_input_ids_fast")));
      CHECK(std::vector<std::int64_t>(processor_ids.size(), 1) == ids_of(record.at("processor_attention_mask_fast")));
      ++prompts;
    } else if (kind == "processor_batch_padding") {
      // The *_fast fields hold the intended result: 32 image tokens + each right-padded row.
      const auto texts = record.at("texts").get<std::vector<std::string>>();
      const blip::BatchEncoding batch = blip::encode_batch(tokenizer, texts);
      auto ids = rows_of(batch.input_ids), mask = rows_of(batch.attention_mask);
      for (auto& row : ids) row.insert(row.begin(), 32, *tokenizer.token_to_id("<image>"));
      for (auto& row : mask) row.insert(row.begin(), 32, 1);
      CHECK(ids == record.at("input_ids_fast").get<std::vector<std::vector<std::int64_t>>>());
      CHECK(mask == record.at("attention_mask_fast").get<std::vector<std::vector<std::int64_t>>>());
      ++processor_batches;
    } else if (kind == "decode") {
      CAPTURE(record.at("label").get<std::string>());
      const std::vector<std::int64_t> ids = ids_of(record.at("ids"));
      const Json& tokens = record.at("tokens_fast");
      REQUIRE(tokens.size() == ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::optional<std::string> token = tokenizer.id_to_token(ids[i]);
        if (tokens[i].is_null()) {
          CHECK_FALSE(token.has_value());
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
  CHECK(processor_batches == 1);
  CHECK(decodes == 11);
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
  const Counts matched = check_opt_jsonl(opt_from_tokenizer_json(), records);
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
  const Counts matched = check_opt_jsonl(tokenizer, read_json_lines(path));
  CHECK(matched.ids == 299);
}

TEST_CASE("opt_extra.jsonl: batch padding, prompts, processor batches and generation-like decodes") {
  const std::string path = fixture("tokenizers/opt_extra.jsonl");
  if (!have_or_skip(path, "OPT extra fixtures") || !have_or_skip(asset(kOptFolder), "BLIP-2 OPT tokenizer folder")) {
    return;
  }
  const std::vector<Json> records = read_json_lines(path);
  SUBCASE("tokenizer.json") { check_opt_extra(opt_from_tokenizer_json(), records); }
  SUBCASE("vocab.json + merges.txt") { check_opt_extra(opt_from_vocab_and_merges(), records); }
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
                         doctest::Contains("vocab.json: the id of 'a' is not an integer"), blip::Error);
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
