// Shared by the tokenizer tests: checking a tokenizer against the `*_fast` fields of
// fixtures/tokenizers/<name>.jsonl and <name>_extra.jsonl (see that folder's README), and a
// temporary folder for building tokenizer folders from parts of the real ones.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "blip/text/tokenizer_base.hpp"

namespace blip::test {

using Ids = std::vector<std::int64_t>;

inline Ids ids_of(const nlohmann::json& value) { return value.get<Ids>(); }

inline std::vector<Ids> rows_of(const Tensor<std::int64_t>& tensor) {
  std::vector<Ids> rows(static_cast<std::size_t>(tensor.dim(0)));
  for (std::int64_t row = 0; row < tensor.dim(0); ++row) {
    for (std::int64_t column = 0; column < tensor.dim(1); ++column) rows[row].push_back(tensor.at(row, column));
  }
  return rows;
}

// A fresh folder under the system temp dir, removed at scope exit.
struct TemporaryFolder {
  std::filesystem::path path;
  explicit TemporaryFolder(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("blip_test_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  void copy(const std::string& source_folder, const std::string& file) const {
    std::filesystem::copy_file(std::filesystem::path(source_folder) / file, path / file);
  }
  void write(const std::string& file, const std::string& contents) const {
    std::ofstream(path / file, std::ios::binary) << contents;
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// How many corpus records matched, field by field.
struct FixtureCounts {
  int ids = 0, ids_nospecial = 0, tokens = 0, decode_skip = 0, decode = 0, decode_skip_noclean = 0, records = 0;
};

// Every record of <name>.jsonl: input_ids, ids_nospecial, tokens (null = an id the tokenizer does
// not know) and the three decodes of the fast tokenizer.
inline FixtureCounts check_fixture_strings(const Tokenizer& tokenizer, const std::vector<nlohmann::json>& records) {
  FixtureCounts matched;
  for (const nlohmann::json& record : records) {
    const std::string text = record.at("text").get<std::string>();
    CAPTURE(record.at("idx").get<int>());
    CAPTURE(text);
    const Encoding encoding = tokenizer.encode(text);
    const Ids ids = ids_of(record.at("input_ids_fast"));
    std::vector<std::optional<std::string>> expected_tokens, tokens(encoding.tokens.begin(), encoding.tokens.end());
    for (const nlohmann::json& token : record.at("tokens_fast")) {
      expected_tokens.push_back(token.is_null() ? std::nullopt : std::optional<std::string>(token.get<std::string>()));
    }
    const Ids nospecial = tokenizer.encode(text, /*add_special_tokens=*/false).ids;
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

// How many records of each kind <name>_extra.jsonl holds.
struct ExtraCounts {
  int batches = 0, prompts = 0, processor_batches = 0, decodes = 0;
  bool operator==(const ExtraCounts& other) const {
    return batches == other.batches && prompts == other.prompts && processor_batches == other.processor_batches &&
           decodes == other.decodes;
  }
};

// Every record of a BLIP-2 <name>_extra.jsonl: batch padding, prompts and processor batches
// (Blip2Processor with an image: 32 <image> ids before each row) and generation-like decodes.
inline ExtraCounts check_blip2_extra_records(const Tokenizer& tokenizer, const std::vector<nlohmann::json>& records) {
  ExtraCounts counts;
  const std::int64_t image = tokenizer.token_to_id("<image>").value_or(-1);
  for (const nlohmann::json& record : records) {
    const std::string kind = record.at("kind").get<std::string>();
    if (kind == "batch_padding") {
      const auto texts = record.at("texts").get<std::vector<std::string>>();
      CAPTURE(record.at("texts").dump());
      const BatchEncoding batch = encode_batch(tokenizer, texts);
      CHECK(record.at("pad_token_id").get<std::int64_t>() == tokenizer.pad_token_id());
      CHECK(rows_of(batch.input_ids) == record.at("input_ids_fast").get<std::vector<Ids>>());
      CHECK(rows_of(batch.attention_mask) == record.at("attention_mask_fast").get<std::vector<Ids>>());
      ++counts.batches;
    } else if (kind == "prompt") {
      const std::string text = record.at("text").get<std::string>();
      CAPTURE(text);
      const Encoding encoding = tokenizer.encode(text);
      CHECK(encoding.ids == ids_of(record.at("tokenizer_input_ids_fast")));
      Ids processor_ids(32, image);
      processor_ids.insert(processor_ids.end(), encoding.ids.begin(), encoding.ids.end());
      CHECK(processor_ids == ids_of(record.at("processor_input_ids_fast")));
      CHECK(Ids(processor_ids.size(), 1) == ids_of(record.at("processor_attention_mask_fast")));
      ++counts.prompts;
    } else if (kind == "processor_batch_padding") {
      // The *_fast fields hold the intended result: 32 image tokens + each right-padded row.
      const BatchEncoding batch = encode_batch(tokenizer, record.at("texts").get<std::vector<std::string>>());
      auto ids = rows_of(batch.input_ids), mask = rows_of(batch.attention_mask);
      for (auto& row : ids) row.insert(row.begin(), 32, image);
      for (auto& row : mask) row.insert(row.begin(), 32, 1);
      CHECK(ids == record.at("input_ids_fast").get<std::vector<Ids>>());
      CHECK(mask == record.at("attention_mask_fast").get<std::vector<Ids>>());
      ++counts.processor_batches;
    } else if (kind == "decode") {
      CAPTURE(record.at("label").get<std::string>());
      const Ids ids = ids_of(record.at("ids"));
      const nlohmann::json& tokens = record.at("tokens_fast");
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
      ++counts.decodes;
    } else {
      FAIL("unknown record kind ", kind);
    }
  }
  return counts;
}

}  // namespace blip::test
