// libFuzzer target: text through the real tokenizers (BERT WordPiece, OPT
// byte-level BPE, T5 Unigram from the assets folder) and through
// blip_tokenize's JSON-lines loop. Encoding any bytes must give one token per
// id, within the vocabulary, and decode; the JSON-lines loop must answer or
// report the line. Any exception, sanitizer report or crash is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "blip/text/json_lines.hpp"
#include "blip/text/tokenizer.hpp"
#include "fuzz_support.hpp"

namespace {

const std::vector<std::unique_ptr<blip::Tokenizer>>& tokenizers() {
  static const std::vector<std::unique_ptr<blip::Tokenizer>> loaded = [] {
    std::vector<std::unique_ptr<blip::Tokenizer>> result;
    for (const char* name : {"blip-image-captioning-base", "blip2-opt-2.7b", "blip2-flan-t5-xl"}) {
      const std::filesystem::path folder = std::filesystem::path(BLIP_ASSETS_DIR) / "tokenizers" / name;
      if (std::filesystem::exists(folder)) result.push_back(blip::load_tokenizer(folder.string()));
    }
    if (result.empty()) std::fprintf(stderr, "tokenizer_text_fuzz: no tokenizers under %s\n", BLIP_ASSETS_DIR);
    return result;
  }();
  return loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tokenizer : tokenizers()) {
    const blip::Encoding encoding = tokenizer->encode(text);
    blip::fuzz::require(encoding.ids.size() == encoding.tokens.size(), "one token per id");
    for (const std::int64_t id : encoding.ids) blip::fuzz::require(id >= 0 && id < tokenizer->size(), "ids in range");
    (void)tokenizer->decode(encoding.ids);
    blip::fuzz::require(tokenizer->encode(text, true, 8).size() <= 8, "truncation holds");
  }
  if (!tokenizers().empty()) {
    std::istringstream input(text);
    std::ostringstream output, errors;
    const int status = blip::tokenize_json_lines(input, output, errors, *tokenizers().front(), 4096);
    blip::fuzz::require(status == blip::kJsonLinesOk || !errors.str().empty(), "a failed line is reported");
    blip::fuzz::require(errors.str().size() < 8192, "line errors quote input clipped");
  }
  return 0;
}
