// blip_weights: shards, converts (bf16 / f16 / f32) and lists safetensors
// checkpoints. The work is done by weights_tools.hpp, which the tests call
// directly; this file only hands it the command line.
//
//   blip_weights shard IN OUT_DIR (--shards N | --max-shard-size BYTES)
//   blip_weights convert IN OUT --dtype bf16|f16|f32
//   blip_weights list IN
#include <iostream>
#include <string>
#include <vector>

#include "weights_tools.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  // run_command_line catches everything and turns it into an exit status.
  return blip::weights_tools::run_command_line(arguments, std::cout, std::cerr);
}
