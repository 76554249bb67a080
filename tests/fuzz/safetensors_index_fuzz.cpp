// libFuzzer target: model.safetensors.index.json, the index of a sharded
// checkpoint, next to two small shards. Checkpoint::open must give a
// consistent checkpoint (every listed tensor readable from its shard) or throw
// blip::Error. Any other exception, sanitizer report or crash is a finding.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "blip/io/safetensors.hpp"
#include "fuzz_support.hpp"

namespace {

// The folder with shard_a.safetensors ("x" [2] F32, "z" [] F32) and
// shard_b.safetensors ("y" [1, 2] BF16), written once.
const std::filesystem::path& checkpoint_folder() {
  static const std::filesystem::path folder = [] {
    const std::filesystem::path& path = blip::fuzz::scratch_folder("safetensors_index_fuzz");
    blip::Tensor<float> values(blip::Shape{2});
    values.data()[0] = 1.5f;
    values.data()[1] = -2.0f;
    blip::SafetensorsWriter a;
    a.add("x", values);
    a.add("z", blip::Tensor<float>(blip::Shape{}));
    a.write((path / "shard_a.safetensors").string());
    blip::SafetensorsWriter b;
    b.add_f32_as("y", values.reshape(blip::Shape{1, 2}), blip::DType::BF16);
    b.write((path / "shard_b.safetensors").string());
    return path;
  }();
  return folder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path& folder = checkpoint_folder();
  blip::fuzz::write_file(folder / "model.safetensors.index.json", data, size);
  try {
    const blip::Checkpoint checkpoint = blip::Checkpoint::open(folder.string());
    for (const std::string& name : checkpoint.names()) {
      blip::fuzz::require(checkpoint.contains(name), "every listed name is found");
      const blip::Tensor<const float> values = checkpoint.to_f32(name);
      blip::fuzz::require(values.numel() == checkpoint.info(name).shape.numel(), "values match the shape");
    }
  } catch (const blip::Error&) {
    // Refused with a message.
  }
  return 0;
}
