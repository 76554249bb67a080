// blip_tokenize: tokenize JSON lines with a checkpoint's tokenizer, as Hugging Face does.
//
//   echo '{"text": "a picture of"}' | blip_tokenize path/to/blip-image-captioning-base
//   {"ids":[101,1037,3861,1997,102],"tokens":["[CLS]","a","picture","of","[SEP]"],"decoded":"a picture of"}
//
// Exit codes: 0 ok, 1 the tokenizer could not be loaded, 2 bad usage or a bad input line
// (the message on stderr names the line number).
#include <cstring>
#include <exception>
#include <iostream>

#include "blip/text/json_lines.hpp"
#include "blip/text/tokenizer.hpp"

namespace {
void print_usage(std::ostream& stream) {
  stream << "usage: blip_tokenize TOKENIZER_DIR < input.jsonl > output.jsonl\n"
            "\n"
            "Reads JSON lines {\"text\": \"...\"} on stdin and writes one JSON line per input:\n"
            "  {\"ids\": [...], \"tokens\": [...], \"decoded\": \"...\"}\n"
            "ids/tokens are tokenizer(text) with the special tokens Hugging Face adds; decoded is\n"
            "decode(ids, skip_special_tokens=True). TOKENIZER_DIR is a Hugging Face folder with\n"
            "tokenizer.json, vocab.txt (BERT WordPiece, as in BLIP checkpoints), vocab.json +\n"
            "merges.txt (byte-level BPE, as in BLIP-2 OPT and GPT-2 checkpoints) or spiece.model\n"
            "(SentencePiece Unigram, as in BLIP-2 Flan-T5 checkpoints).\n"
            "Blank lines are skipped. Exit codes: 0 ok, 1 tokenizer not loadable, 2 bad usage or input.\n";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_usage(std::cout);
    return 0;
  }
  if (argc != 2) {
    print_usage(std::cerr);
    return 2;
  }
  std::unique_ptr<blip::Tokenizer> tokenizer;
  try {
    tokenizer = blip::load_tokenizer(argv[1]);
  } catch (const std::exception& error) {
    std::cerr << "blip_tokenize: " << error.what() << "\n";
    return 1;
  }
  std::ios::sync_with_stdio(false);
  return blip::tokenize_json_lines(std::cin, std::cout, std::cerr, *tokenizer);
}
