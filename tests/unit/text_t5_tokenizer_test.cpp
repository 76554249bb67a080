// T5 SentencePiece Unigram tokenizer (BLIP-2 Flan-T5) against Hugging Face's fast tokenizer:
// every record of fixtures/tokenizers/t5.jsonl and t5_extra.jsonl, loaded from tokenizer.json and
// from spiece.model (+ the small json files) alone; then the pieces on their own: Viterbi ties and
// unknown characters, the charsmap and its grapheme-cluster quirk, grapheme clusters, and the
// SentencePiece protobuf reader and charsmap on hostile input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blip/text/tokenizer.hpp"
#include "test_support.hpp"
#include "text_tokenizer_fixtures.hpp"

namespace text_t5_tokenizer_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

namespace fs = std::filesystem;
using blip::test::asset;
using blip::test::fixture;
using blip::test::have_or_skip;
using blip::test::read_json_lines;
using blip::test::check_blip2_extra_records;
using blip::test::check_fixture_strings;
using blip::test::ExtraCounts;
using blip::test::FixtureCounts;
using blip::test::ids_of;
using blip::test::Ids;
using blip::test::TemporaryFolder;
using Json = nlohmann::json;

const std::string kT5Folder = "tokenizers/blip2-flan-t5-xl";

// The T5 tokenizer twice: from tokenizer.json, and from spiece.model + the json files only (what
// transformers' T5Converter would build).
const blip::Tokenizer& t5_from_tokenizer_json() {
  static const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(asset(kT5Folder));
  return *tokenizer;
}
const blip::Tokenizer& t5_from_sentencepiece() {
  static const TemporaryFolder folder("t5_spiece_only");
  static const std::unique_ptr<blip::Tokenizer> tokenizer = [] {
    for (const char* file : {"spiece.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}) {
      folder.copy(asset(kT5Folder), file);
    }
    return blip::load_tokenizer(folder.path.string());
  }();
  return *tokenizer;
}

bool have_t5(const char* fixture_file = nullptr) {
  if (fixture_file != nullptr && !have_or_skip(fixture(fixture_file), "T5 tokenizer fixtures")) return false;
  return have_or_skip(asset(kT5Folder), "BLIP-2 Flan-T5 tokenizer folder");
}

// ---- a small protobuf writer for synthetic SentencePiece models ----------------------------------

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void put_tag(std::string& out, int field, int wire_type) { put_varint(out, static_cast<std::uint64_t>(field) << 3 | wire_type); }
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_float(std::string& out, int field, float value) {
  put_tag(out, field, 5);
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((bits >> (8 * k)) & 0xFF));
}

struct SyntheticPiece {
  std::string piece;
  float score;
  int type;
};

// A ModelProto with these pieces, unk_id, and (optionally) a precompiled charsmap.
std::string synthetic_model(const std::vector<SyntheticPiece>& pieces, int unk_id, const std::string& charsmap = "") {
  std::string model;
  for (const SyntheticPiece& piece : pieces) {
    std::string message;
    put_bytes(message, 1, piece.piece);
    put_float(message, 2, piece.score);
    put_tag(message, 3, 0);
    put_varint(message, static_cast<std::uint64_t>(piece.type));
    put_bytes(model, 1, message);
  }
  std::string trainer;
  put_tag(trainer, 3, 0);
  put_varint(trainer, 1);  // UNIGRAM
  put_tag(trainer, 40, 0);
  put_varint(trainer, static_cast<std::uint64_t>(unk_id));
  put_tag(trainer, 35, 0);
  put_varint(trainer, 1);  // byte_fallback: T5Converter ignores it
  put_bytes(model, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "synthetic");
  if (!charsmap.empty()) put_bytes(normalizer, 2, charsmap);
  put_bytes(model, 3, normalizer);
  return model;
}

std::string little_endian(const std::vector<std::uint32_t>& units) {
  std::string bytes;
  for (std::uint32_t unit : units) {
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((unit >> (8 * k)) & 0xFF));
  }
  return bytes;
}

// A hand-built Darts double array holding one key, "a" -> "b": the root's offset is 1, so 'a'
// (0x61) lands on unit 0x60, whose leaf value sits at 0x60 ^ 1 = 0x61 and points at replacement 0.
std::string charsmap_a_to_b() {
  std::vector<std::uint32_t> units(256, 0);
  units[0] = 1u << 10;
  units[0x60] = 0x61u | (1u << 8) | (1u << 10);
  units[0x61] = 0x80000000u | 0u;
  std::string bytes = little_endian({static_cast<std::uint32_t>(units.size() * 4)});
  bytes += little_endian(units);
  bytes += std::string("b\0", 2);
  return bytes;
}

}  // namespace

// ---- fixtures: the Rust fast tokenizer's output --------------------------------------------

TEST_CASE("t5.jsonl from tokenizer.json: ids, tokens and decodes equal the fast tokenizer on every string") {
  if (!have_t5("tokenizers/t5.jsonl")) return;
  const std::vector<Json> records = read_json_lines(fixture("tokenizers/t5.jsonl"));
  REQUIRE(records.size() == 299);
  const FixtureCounts matched = check_fixture_strings(t5_from_tokenizer_json(), records);
  CHECK(matched.records == 299);
  CHECK(matched.ids == 299);
  CHECK(matched.decode == 299);
}

TEST_CASE("t5.jsonl from spiece.model only: the same ids, tokens and decodes") {
  if (!have_t5("tokenizers/t5.jsonl")) return;
  const blip::Tokenizer& tokenizer = t5_from_sentencepiece();
  CHECK(tokenizer.kind() == "unigram");
  const FixtureCounts matched = check_fixture_strings(tokenizer, read_json_lines(fixture("tokenizers/t5.jsonl")));
  CHECK(matched.ids == 299);
  CHECK(matched.decode == 299);
}

TEST_CASE("t5_extra.jsonl: batch padding, prompts, processor batches and generation-like decodes") {
  if (!have_t5("tokenizers/t5_extra.jsonl")) return;
  const std::vector<Json> records = read_json_lines(fixture("tokenizers/t5_extra.jsonl"));
  REQUIRE(records.size() == 16);
  const ExtraCounts expected{/*batches=*/3, /*prompts=*/3, /*processor_batches=*/1, /*decodes=*/9};
  SUBCASE("tokenizer.json") { CHECK(check_blip2_extra_records(t5_from_tokenizer_json(), records) == expected); }
  SUBCASE("spiece.model") { CHECK(check_blip2_extra_records(t5_from_sentencepiece(), records) == expected); }
}

TEST_CASE("tokenizer_reference_encodings.jsonl: T5 entries") {
  const std::string path = asset("reference/tokenizer_reference_encodings.jsonl");
  if (!have_or_skip(path, "reference encodings") || !have_t5()) return;
  int checked = 0;
  for (const Json& record : read_json_lines(path)) {
    if (record.at("tokenizer").get<std::string>() != "t5") continue;
    const std::string text = record.at("text").get<std::string>();
    CAPTURE(text);
    for (const blip::Tokenizer* tokenizer : {&t5_from_tokenizer_json(), &t5_from_sentencepiece()}) {
      const blip::Encoding encoding = tokenizer->encode(text);
      CHECK(encoding.ids == ids_of(record.at("ids")));
      CHECK(encoding.tokens == record.at("tokens").get<std::vector<std::string>>());
      CHECK(tokenizer->decode(encoding.ids) == record.at("decoded").get<std::string>());
    }
    ++checked;
  }
  CHECK(checked == 6);
}

// ---- the tokenizer's own behaviour ------------------------------------------------------------

TEST_CASE("T5 tokenizer basics, from both sources") {
  if (!have_t5()) return;
  for (const blip::Tokenizer* tokenizer : {&t5_from_tokenizer_json(), &t5_from_sentencepiece()}) {
    CHECK(tokenizer->kind() == "unigram");
    CHECK(tokenizer->size() == 32101);  // len(tokenizer): 32000 pieces + 100 sentinels + <image>
    CHECK(tokenizer->pad_token_id() == 0);
    CHECK(tokenizer->num_special_tokens_to_add() == 1);
    CHECK(tokenizer->default_clean_up_tokenization_spaces());
    const Ids specials = tokenizer->special_token_ids();
    CHECK(specials.size() == 104);  // <pad> </s> <unk>, 100 sentinels, <image>
    CHECK(specials.front() == 0);
    CHECK(specials.back() == 32100);
    CHECK(tokenizer->token_to_id("<extra_id_0>") == 32099);
    CHECK(tokenizer->token_to_id("<extra_id_99>") == 32000);
    CHECK(tokenizer->is_special_token_id(32100));
    CHECK_FALSE(tokenizer->is_special_token_id(3));
    CHECK(tokenizer->encode("").ids == Ids{1});
    CHECK(tokenizer->encode("</s>").ids == Ids{1, 1});
    CHECK(tokenizer->encode("   ").ids == Ids{3, 1});
    CHECK(tokenizer->encode("trailing space ").ids == Ids{5032, 53, 628, 3, 1});
    CHECK(tokenizer->encode("hello </s> world").ids == Ids{21820, 3, 1, 296, 1});
    CHECK(tokenizer->encode("<image> <image>").ids == Ids{32100, 3, 32100, 1});
    // Truncation keeps the template's </s>.
    CHECK(tokenizer->encode("a woman sitting on the beach", true, 3).ids == Ids{3, 9, 1});
    // Ids above the vocabulary vanish, like Rust's id_to_token; negative ids are an error.
    CHECK(tokenizer->decode({32101, 1782, 50000}) == "dog");
    CHECK_FALSE(tokenizer->id_to_token(32101).has_value());
    CHECK_THROWS_WITH_AS(tokenizer->decode({1782, -1}), doctest::Contains("id -1 is not a token id"), blip::Error);
  }
}

TEST_CASE("Unigram Viterbi: ties keep the first path, unknown characters fuse into one <unk>") {
  if (!have_t5()) return;
  const blip::Tokenizer& tokenizer = t5_from_tokenizer_json();
  // HF (not SentencePiece): "▁" then "x", then "xx" pairs.
  const blip::Encoding xs = tokenizer.encode(std::string(99, 'x'), false);
  REQUIRE(xs.tokens.size() == 51);
  CHECK(xs.tokens[0] == "▁");
  CHECK(xs.tokens[1] == "x");
  for (std::size_t i = 2; i < xs.tokens.size(); ++i) CHECK(xs.tokens[i] == "xx");
  // Two emoji that no piece covers are one <unk>.
  CHECK(tokenizer.encode("😀😀 dog", false).ids == Ids{3, 2, 1782});
}

TEST_CASE("the charsmap is applied per grapheme cluster, as HF's Precompiled normalizer does") {
  if (!have_t5()) return;
  const auto& tokenizer = dynamic_cast<const blip::UnigramTokenizer&>(t5_from_tokenizer_json());
  CHECK(tokenizer.normalize("ＡＢＣ①") == "ABC1");            // NFKC-like
  CHECK(tokenizer.normalize("a\tb\nc  d") == "a b c d");     // whitespace to ' ', runs collapsed
  // A cluster shorter than 6 bytes whose first character is a key is replaced whole: the accent
  // after fullwidth A is lost (Rust looks up the shortest key that prefixes the cluster).
  CHECK(tokenizer.normalize("\xEF\xBC\xA1\xCC\x81" "b") == "Ab");
  // Six bytes or more: character by character, so the marks survive.
  CHECK(tokenizer.normalize("\xEF\xBC\xA1\xCC\x81\xCC\x81") == "A\xCC\x81\xCC\x81");
}

TEST_CASE("grapheme clusters follow UAX #29 (unicode-segmentation 1.13)") {
  using blip::unicode::decode_utf8;
  using blip::unicode::grapheme_cluster_ends;
  using Ends = std::vector<std::size_t>;
  CHECK(grapheme_cluster_ends(U"").empty());
  CHECK(grapheme_cluster_ends(U"ab") == Ends{1, 2});
  CHECK(grapheme_cluster_ends(U"\r\n\n") == Ends{2, 3});                           // GB3, GB4
  CHECK(grapheme_cluster_ends(decode_utf8("e\xCC\x81x")) == Ends{2, 3});             // GB9 Extend
  CHECK(grapheme_cluster_ends(decode_utf8("a\xE2\x80\x8B" "b")) == Ends{1, 2, 3});  // U+200B is Control
  // GB11: 👨 ZWJ 👩 is one cluster; ZWJ after a letter does not join the next emoji.
  CHECK(grapheme_cluster_ends(U"\U0001F468\u200D\U0001F469") == Ends{3});
  CHECK(grapheme_cluster_ends(U"a\u200D\U0001F469") == Ends{2, 3});
  // GB12/13: regional indicators pair up.
  CHECK(grapheme_cluster_ends(U"\U0001F1EB\U0001F1F7\U0001F1E9") == Ends{2, 3});
  // GB6-8: Hangul jamo L V T, and an LV syllable + T.
  CHECK(grapheme_cluster_ends(U"\u1100\u1161\u11A8\uAC00\u11A8") == Ends{3, 5});
  // GB9c: क ् ष (Devanagari consonant, virama, consonant) is one cluster; GB9b: Arabic number sign.
  CHECK(grapheme_cluster_ends(U"\u0915\u094D\u0937") == Ends{3});
  CHECK(grapheme_cluster_ends(U"\u0600" "1") == Ends{2});
}

TEST_CASE("a bare spiece.model: T5Tokenizer's defaults (sentinels, no <image>)") {
  if (!have_t5()) return;
  TemporaryFolder folder("bare_spiece");
  folder.copy(asset(kT5Folder), "spiece.model");
  const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(folder.path.string());
  CHECK(tokenizer->kind() == "unigram");
  CHECK(tokenizer->size() == 32100);
  CHECK_FALSE(tokenizer->token_to_id("<image>").has_value());
  CHECK(tokenizer->token_to_id("<extra_id_0>") == 32099);
  CHECK(tokenizer->special_token_ids().size() == 103);
  CHECK(tokenizer->encode("a photo of").ids == t5_from_tokenizer_json().encode("a photo of").ids);
  // Both sources hold the same pieces. The scores agree to the 16 significant digits that
  // tokenizer.json was written with; spiece.model's float32 scores widen exactly, so e.g. "▁" is
  // -2.0122928619384766 there and -2.012292861938477 in tokenizer.json (HF has the same split).
  const auto& converted = dynamic_cast<const blip::UnigramTokenizer&>(*tokenizer).model().pieces();
  const auto& from_json = dynamic_cast<const blip::UnigramTokenizer&>(t5_from_tokenizer_json()).model().pieces();
  REQUIRE(converted.size() == from_json.size());
  int same_strings = 0, close_scores = 0;
  for (std::size_t i = 0; i < converted.size(); ++i) {
    same_strings += converted[i].first == from_json[i].first;
    close_scores += std::abs(converted[i].second - from_json[i].second) <= 1e-14 * (1 + std::abs(converted[i].second));
  }
  CHECK(same_strings == static_cast<int>(converted.size()));
  CHECK(close_scores == static_cast<int>(converted.size()));
}

TEST_CASE("a synthetic SentencePiece model: pieces, control and user-defined symbols, the charsmap") {
  TemporaryFolder folder("synthetic");
  folder.write("spiece.model",
               synthetic_model({{"<pad>", 0, 3}, {"</s>", 0, 3}, {"<unk>", 0, 2}, {"\xE2\x96\x81", -2, 1},
                                {"b", -3, 1}, {"c", -3, 1}, {"\xE2\x96\x81" "bc", -1, 1}, {"<sep>", 0, 4}},
                               2, charsmap_a_to_b()));
  folder.write("tokenizer_config.json", R"({"extra_ids": 2, "tokenizer_class": "T5Tokenizer"})");
  const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(folder.path.string());
  CHECK(tokenizer->size() == 10);
  CHECK(tokenizer->token_to_id("<extra_id_1>") == 8);
  CHECK(tokenizer->token_to_id("<extra_id_0>") == 9);
  // "a" -> "b" by the charsmap; "▁bc" is one piece; "d" has none: <unk>.
  CHECK(tokenizer->encode("ac d").ids == Ids{6, 3, 2, 1});
  // A user-defined symbol is an added token, but not a special one.
  CHECK(tokenizer->encode("b<sep>").ids == Ids{3, 4, 7, 1});
  CHECK(tokenizer->decode({3, 4, 7, 1}) == "b<sep>");
  // "a" + U+0301 is one 3-byte cluster, replaced whole by "a"'s replacement: the accent is dropped.
  const auto& unigram = dynamic_cast<const blip::UnigramTokenizer&>(*tokenizer);
  CHECK(unigram.normalize("xa\xCC\x81y") == "xby");
  CHECK(unigram.normalize("a\xCC\x81\xCC\x81\xCC\x81") == "b\xCC\x81\xCC\x81\xCC\x81");
}

// ---- bad input ------------------------------------------------------------------------------------

TEST_CASE("the SentencePiece reader refuses truncated and garbage files with the file's name") {
  TemporaryFolder folder("hostile_spiece");
  const std::string model = synthetic_model({{"<pad>", 0, 3}, {"</s>", 0, 3}, {"<unk>", 0, 2}, {"a", -1, 1}}, 2);
  const std::string path = folder.file("spiece.model");
  auto load = [&](const std::string& bytes) {
    folder.write("spiece.model", bytes);
    return blip::load_tokenizer(folder.path.string());
  };
  CHECK_NOTHROW(load(model));
  SUBCASE("every truncation is an error naming the file") {
    for (std::size_t size = 0; size < model.size(); ++size) {
      CAPTURE(size);
      CHECK_THROWS_WITH_AS(load(model.substr(0, size)), doctest::Contains(path.c_str()), blip::Error);
    }
  }
  SUBCASE("a Git LFS pointer") {
    CHECK_THROWS_WITH_AS(load("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 791656\n"),
                         doctest::Contains("Git LFS pointer"), blip::Error);
  }
  SUBCASE("a length that runs past the end") {
    CHECK_THROWS_WITH_AS(load(std::string("\x0a\xff\xff\xff\xff\x0f", 6)), doctest::Contains("runs past the end"),
                         blip::Error);
  }
  SUBCASE("a varint longer than 10 bytes") {
    CHECK_THROWS_WITH_AS(load(std::string(12, '\xff')), doctest::Contains("longer than 10 bytes"), blip::Error);
  }
  SUBCASE("random garbage never crashes") {
    std::mt19937 random(12345);
    for (int trial = 0; trial < 2000; ++trial) {
      std::string bytes(random() % 64, '\0');
      for (char& byte : bytes) byte = static_cast<char>(random() & 0xFF);
      try {
        blip::parse_sentencepiece_model(bytes, path);
      } catch (const blip::Error& error) {
        CHECK(std::string(error.what()).find(path) != std::string::npos);
      }
    }
  }
  SUBCASE("an unk_id outside the vocabulary") {
    CHECK_THROWS_WITH_AS(load(synthetic_model({{"<pad>", 0, 3}, {"a", -1, 1}}, 500)),
                         doctest::Contains("unk_id 500 is outside"), blip::Error);
  }
}

TEST_CASE("the charsmap trie is bounds-checked") {
  const std::string good = charsmap_a_to_b();
  const blip::PrecompiledCharsmap charsmap(good, "test.model");
  CHECK(charsmap.transform("a") == "b");
  CHECK_FALSE(charsmap.transform("c").has_value());
  CHECK(charsmap.normalize("cac") == "cbc");
  SUBCASE("too short, or a trie size beyond the data") {
    CHECK_THROWS_WITH_AS(blip::PrecompiledCharsmap(std::string("\x01\x00", 2), "x.model"),
                         doctest::Contains("x.model: precompiled_charsmap of 2 bytes is too short"), blip::Error);
    CHECK_THROWS_WITH_AS(blip::PrecompiledCharsmap(little_endian({4000}), "x.model"),
                         doctest::Contains("only 0 follow"), blip::Error);
    CHECK_THROWS_WITH_AS(blip::PrecompiledCharsmap(little_endian({0}), "x.model"), doctest::Contains("empty trie"),
                         blip::Error);
  }
  SUBCASE("a root offset outside the array") {
    const std::string corrupt = little_endian({8, 0xFFFFFC00u, 0});
    const blip::PrecompiledCharsmap broken(corrupt, "x.model");
    CHECK_THROWS_WITH_AS(broken.transform("a"), doctest::Contains("x.model: corrupt precompiled_charsmap"), blip::Error);
  }
  SUBCASE("a leaf value outside the replacements") {
    std::string corrupt = good;
    corrupt[4 + 4 * 0x61] = '\x40';  // replacement offset 64 of a 2-byte table
    const blip::PrecompiledCharsmap broken(corrupt, "x.model");
    CHECK_THROWS_WITH_AS(broken.transform("a"), doctest::Contains("replacement offset 64"), blip::Error);
  }
  SUBCASE("replacements that are not UTF-8") {
    CHECK_THROWS_WITH_AS(blip::PrecompiledCharsmap(good + "\xff", "x.model"), doctest::Contains("not valid UTF-8"),
                         blip::Error);
  }
  SUBCASE("random units never crash") {
    std::mt19937 random(7);
    for (int trial = 0; trial < 2000; ++trial) {
      std::vector<std::uint32_t> units(1 + random() % 300);
      for (std::uint32_t& unit : units) unit = static_cast<std::uint32_t>(random());
      std::string bytes = little_endian({static_cast<std::uint32_t>(units.size() * 4)}) + little_endian(units) + "xyz";
      const blip::PrecompiledCharsmap charsmap_under_test(bytes, "random.model");
      try {
        charsmap_under_test.normalize("abc \xC3\xA9\xE2\x80\x8D!");
      } catch (const blip::Error& error) {
        CHECK(std::string(error.what()).find("random.model") != std::string::npos);
      }
    }
  }
}

TEST_CASE("Unigram tokenizer.json errors name the file and what was expected") {
  TemporaryFolder folder("bad_json");
  const std::string vocab = R"("model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]})";
  auto write = [&](const std::string& rest) { folder.write("tokenizer.json", "{" + vocab + ", " + rest + "}"); };
  SUBCASE("an unsupported normalizer") {
    write(R"("normalizer": {"type": "NFKC"}, "pre_tokenizer": null, "decoder": null, "post_processor": null, "added_tokens": [])");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()), doctest::Contains("normalizer 'NFKC' is not supported"),
                         blip::Error);
  }
  SUBCASE("an unsupported pre-tokenizer") {
    write(R"("normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "decoder": null, "post_processor": null, "added_tokens": [])");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()), doctest::Contains("only the Metaspace pre-tokenizer"),
                         blip::Error);
  }
  SUBCASE("an unsupported Replace regex") {
    write(R"("normalizer": {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, "added_tokens": [])");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()), doctest::Contains("Replace regex '\\s+' is not supported"),
                         blip::Error);
  }
  SUBCASE("a charsmap that is not base64") {
    write(R"("normalizer": {"type": "Precompiled", "precompiled_charsmap": "%%%%"}, "added_tokens": [])");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()),
                         doctest::Contains("tokenizer.json: precompiled_charsmap: invalid base64"), blip::Error);
  }
  SUBCASE("ids that are not integers (a float beyond int64 was undefined behaviour; found by fuzzing)") {
    write(R"("normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null,
             "added_tokens": [{"id": 5.31845e+22, "content": "<x>", "special": true}])");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()),
                         doctest::Contains("the id of added token '<x>' must be an integer, got 5.31845e+22"),
                         blip::Error);
    folder.write("tokenizer.json", R"({"model": {"type": "Unigram", "unk_id": 1e30, "vocab": [["<unk>", 0.0]]},
      "normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null, "added_tokens": []})");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()),
                         doctest::Contains("model.unk_id must be an integer, got 1e+30"), blip::Error);
  }
  SUBCASE("a Strip decoder with a negative count") {
    write(R"("normalizer": null, "pre_tokenizer": null, "post_processor": null, "added_tokens": [],
             "decoder": {"type": "Strip", "content": " ", "start": -1, "stop": 0})");
    CHECK_THROWS_WITH_AS(blip::load_tokenizer(folder.path.string()),
                         doctest::Contains("the Strip decoder's start and stop must be >= 0, got -1 and 0"), blip::Error);
  }
  SUBCASE("no unk_id: loads, and text with an uncovered character is refused naming it, as Rust does") {
    folder.write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": [["<unk>", 0.0], ["a", -1.0]]},
      "normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null, "added_tokens": []})");
    const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(folder.path.string());
    CHECK(tokenizer->encode("aa").ids == Ids{1, 1});
    CHECK_THROWS_WITH_AS(tokenizer->encode("ab"), doctest::Contains("the text has a character ('b') that no piece covers"),
                         blip::Error);
  }
  SUBCASE("a minimal valid file: no normalizer, no pre-tokenizer, no decoder") {
    write(R"("normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null, "added_tokens": [])");
    const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(folder.path.string());
    CHECK(tokenizer->encode("aab").ids == Ids{1, 1, 0});
    CHECK(tokenizer->decode({1, 1}) == "a a");  // without a decoder, Rust joins tokens with ' '
  }
}

}  // namespace text_t5_tokenizer_test
