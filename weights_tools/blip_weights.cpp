// blip_weights: the one program for checkpoints. Shards, converts (bf16 / f16
// / f32, or quantized int8 / int4) and lists safetensors checkpoints, inspects a model folder against
// what its blipcpp loader asks for, writes random-weight checkpoints from a
// config.json, and downloads models into the Hugging Face cache. The work is
// done by the headers next to this file (command_line.hpp), which the tests
// call directly; this file only hands them the command line.
//
//   blip_weights shard IN OUT_DIR (--shards N | --max-shard-size BYTES)
//   blip_weights convert IN OUT --dtype bf16|f16|f32
//   blip_weights convert MODEL OUT_DIR --precision int8|int4
//   blip_weights list IN
//   blip_weights inspect MODEL [--json]
//   blip_weights make-random CONFIG_DIR OUT_DIR [--dtype f32|bf16|f16] [--seed N] [--max-shard-size BYTES]
//   blip_weights download REPO_ID [--revision R] [--cache-dir D] [--endpoint URL] [--include GLOB]
#include <iostream>
#include <string>
#include <vector>

#include "command_line.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  // run_command_line catches everything and turns it into an exit status.
  return blip::weights_tools::run_command_line(arguments, std::cout, std::cerr);
}
