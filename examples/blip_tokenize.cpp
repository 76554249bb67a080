// blip_tokenize: tokenize JSON lines with a checkpoint's tokenizer, as Hugging Face does.
//
//   echo '{"text": "a picture of"}' | blip_tokenize path/to/blip-image-captioning-base
//   {"ids":[101,1037,3861,1997,102],"tokens":["[CLS]","a","picture","of","[SEP]"],"decoded":"a picture of"}
//
// Exit codes: 0 ok, 1 the tokenizer could not be loaded, a bad input line (the message on stderr
// names the line number), unreadable input or unwritable output, 2 bad usage.
#include <iostream>
#include <memory>

#include "blip/text/json_lines.hpp"
#include "blip/text/tokenizer.hpp"
#include "support/command_line.hpp"

namespace {
const char* const kUsage =
    "usage: blip_tokenize TOKENIZER_DIR < input.jsonl > output.jsonl\n"
    "\n"
    "Reads JSON lines {\"text\": \"...\"} on stdin and writes one JSON line per input:\n"
    "  {\"ids\": [...], \"tokens\": [...], \"decoded\": \"...\"}\n"
    "ids/tokens are tokenizer(text) with the special tokens Hugging Face adds; decoded is\n"
    "decode(ids, skip_special_tokens=True). TOKENIZER_DIR is a Hugging Face folder with\n"
    "tokenizer.json, vocab.txt (BERT WordPiece, as in BLIP checkpoints), vocab.json +\n"
    "merges.txt (byte-level BPE, as in BLIP-2 OPT and GPT-2 checkpoints) or spiece.model\n"
    "(SentencePiece Unigram, as in BLIP-2 Flan-T5 checkpoints).\n"
    "Blank lines are skipped. A line may hold at most 1 MiB (1048576 bytes) and nest JSON at most\n"
    "128 levels deep; the first bad line ends the run with a message naming it, after the output of\n"
    "the lines before it.\n";
}  // namespace

int main(int argc, char** argv) {
  return blip::examples::run_command(
      argc, argv, "blip_tokenize", kUsage, {}, {}, [](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 1 || command.positional()[0].empty() || command.positional()[0][0] == '-')
          return blip::examples::usage_error(kUsage);
        const std::unique_ptr<blip::Tokenizer> tokenizer = blip::load_tokenizer(command.positional()[0]);
        std::ios::sync_with_stdio(false);
        return blip::tokenize_json_lines(std::cin, std::cout, std::cerr, *tokenizer);
      });
}
