// libFuzzer target: loading a tokenizer folder. The first input byte picks
// the file the rest becomes, alone in its folder: tokenizer.json (even) or
// vocab.txt (odd). load_tokenizer must give a tokenizer or throw blip::Error;
// a tokenizer it gives must encode text or refuse it with a blip::Error (as the
// Rust library does: a Unigram model without unk_id cannot encode a character
// no piece covers), and must decode any ids. Any other exception, sanitizer
// report, crash or huge allocation (a token id of 10^12) is a finding.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "blip/text/tokenizer.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::filesystem::path& folder = blip::fuzz::scratch_folder("tokenizer_files_fuzz");
  const bool vocab_txt = data[0] & 1;
  std::filesystem::remove(folder / (vocab_txt ? "tokenizer.json" : "vocab.txt"));
  blip::fuzz::write_file(folder / (vocab_txt ? "vocab.txt" : "tokenizer.json"), data + 1, size - 1);
  std::unique_ptr<blip::Tokenizer> tokenizer;
  try {
    tokenizer = blip::load_tokenizer(folder.string());
  } catch (const blip::Error&) {
    return 0;  // refused with a message: the expected outcome for most inputs
  }
  for (const char* text :
       {"A photo of two cats.", "[CLS] hello </s> <unk>", "caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80",
        "  spaces\tand\nnewlines  ", "\xFF\xFE broken"}) {
    blip::Encoding encoding;
    try {
      encoding = tokenizer->encode(text);
    } catch (const blip::Error&) {
      continue;  // refused with a message
    }
    blip::fuzz::require(encoding.ids.size() == encoding.tokens.size(), "one token per id");
    (void)tokenizer->decode(encoding.ids);
    (void)tokenizer->decode(encoding.ids, /*skip_special_tokens=*/false);
  }
  blip::fuzz::require(tokenizer->size() >= 0, "a size");
  (void)tokenizer->decode({0, 1, 2, tokenizer->size() - 1, tokenizer->size(), 1 << 30});
  return 0;
}
