// Tests of blip/io/weight_store.hpp: fetching by name with the expected
// shape, the errors for missing / mis-shaped weights, optional weights,
// f16 / bf16 conversion on fetch, zero-copy f32, and the list of unused names.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "blip/io/weight_store.hpp"
#include "test_support.hpp"

namespace io_weight_store_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::error_of;

namespace fs = std::filesystem;
using namespace blip;

namespace {

Tensor<float> ramp(const Shape& shape, float start) {
  Tensor<float> tensor(shape);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = start + 0.5f * static_cast<float>(i);
  return tensor;
}

std::string write_checkpoint() {
  const fs::path dir = fs::path(BLIP_TEST_BINARY_DIR) / "io_weight_store_test_files";
  fs::create_directories(dir);
  SafetensorsWriter writer;
  writer.add("encoder.weight", ramp(Shape{2, 3}, 1.0f));
  writer.add("encoder.bias", ramp(Shape{2}, -1.0f));
  writer.add_f32_as("decoder.weight", ramp(Shape{3, 2}, 0.0f), DType::F16);
  writer.add_f32_as("decoder.bias", ramp(Shape{3}, 2.0f), DType::BF16);
  writer.add("text_decoder.cls.predictions.bias", ramp(Shape{4}, 0.0f));  // the tied bias, stored once
  Tensor<std::int64_t> position_ids(Shape{1, 4});
  for (int i = 0; i < 4; ++i) position_ids.data()[i] = i;
  writer.add("embeddings.position_ids", position_ids);  // a buffer the model does not load
  const std::string path = (dir / "model.safetensors").string();
  writer.write(path);
  return path;
}

}  // namespace

TEST_CASE("get returns the weight with the expected shape: f32 copied (Copied) or zero-copy (Mapped), f16/bf16 converted") {
  const std::string path = write_checkpoint();
  const WeightStore store = WeightStore::open(path);
  CHECK(store.checkpoint().path() == path);

  const Tensor<const float> weight = store.get("encoder.weight", Shape{2, 3});
  CHECK(weight.shape() == Shape{2, 3});
  CHECK(weight.data()[5] == 3.5f);
  const float* mapped = store.checkpoint().file_of("encoder.weight").view<float>("encoder.weight").data();
  // WeightResidency::Copied (default): a copy, so the file is not read after loading ...
  CHECK(weight.data() != mapped);
  // ... Mapped: straight from the mapping.
  const WeightStore mapped_store = WeightStore::open(path, WeightResidency::Mapped);
  CHECK(mapped_store.get("encoder.weight", Shape{2, 3}).data() ==
        mapped_store.checkpoint().file_of("encoder.weight").view<float>("encoder.weight").data());

  const Tensor<const float> half = store.get("decoder.weight", Shape{3, 2});
  for (int i = 0; i < 6; ++i) CHECK(half.data()[i] == 0.5f * static_cast<float>(i));
  const Tensor<const float> brain = store.get("decoder.bias", Shape{3});
  CHECK(brain.data()[2] == 3.0f);
  CHECK(store.contains("encoder.bias"));
  CHECK_FALSE(store.contains("encoder.gamma"));
}

TEST_CASE("get_table keeps an embedding table in its stored float type: a copy (Copied) or the mapping (Mapped)") {
  const fs::path dir = fs::path(BLIP_TEST_BINARY_DIR) / "io_weight_store_test_files";
  fs::create_directories(dir);
  const Tensor<float> values = ramp(Shape{5, 4}, -2.0f);  // on the f16 and bf16 grids: exact in both
  SafetensorsWriter writer;
  writer.add("f32_table", values);
  writer.add_f32_as("bf16_table", values, DType::BF16);
  writer.add_f32_as("f16_table", values, DType::F16);
  Tensor<std::int32_t> integers(Shape{5, 4});
  for (std::int64_t i = 0; i < integers.numel(); ++i) integers.data()[i] = static_cast<std::int32_t>(i);
  writer.add("int32_table", integers);
  const std::string path = (dir / "tables.safetensors").string();
  writer.write(path);

  for (const WeightResidency residency : {WeightResidency::Copied, WeightResidency::Mapped}) {
    const bool copied = residency == WeightResidency::Copied;
    INFO(std::string(copied ? "Copied" : "Mapped"));
    const WeightStore store = WeightStore::open(path, residency);
    for (const auto& [name, dtype] : {std::pair<std::string, DType>{"f32_table", DType::F32},
                                      {"bf16_table", DType::BF16},
                                      {"f16_table", DType::F16}}) {
      INFO(name);
      const StoredMatrix table = store.get_table(name, 5, 4);
      CHECK(table.dtype == dtype);
      CHECK(table.rows == 5);
      CHECK(table.columns == 4);
      CHECK(table.bytes() == store.checkpoint().info(name).bytes());
      const bool is_the_mapping = table.data == store.checkpoint().file_of(name).raw_data(name);
      CHECK(is_the_mapping == !copied);
      CHECK(static_cast<bool>(table.owner));  // keeps the copy, or the mapping, alive
      std::vector<float> row(4);
      for (std::int64_t r = 0; r < 5; ++r) {
        table.read_row(r, row.data());
        for (std::int64_t c = 0; c < 4; ++c) CHECK(row[static_cast<std::size_t>(c)] == values.at(r, c));
      }
    }
    // An integer table is not a weight type for lookups: it comes as f32.
    const StoredMatrix converted = store.get_table("int32_table", 5, 4);
    CHECK(converted.dtype == DType::F32);
    CHECK(static_cast<const float*>(converted.data)[7] == 7.0f);
    CHECK_THROWS_WITH_AS(store.get_table("bf16_table", 4, 5), doctest::Contains("'bf16_table' has shape [5, 4]"),
                         blip::Error);
    CHECK_THROWS_WITH_AS(store.get_table("word_embeddings", 5, 4),
                         doctest::Contains("needs tensor 'word_embeddings' [5, 4]"), blip::Error);
  }
  // The table outlives the store that made it (and its mapping).
  StoredMatrix kept;
  for (const WeightResidency residency : {WeightResidency::Copied, WeightResidency::Mapped}) {
    kept = WeightStore::open(path, residency).get_table("bf16_table", 5, 4);
    std::vector<float> row(4);
    kept.read_row(4, row.data());
    CHECK(row[3] == values.at(4, 3));
  }
  // A recording store records it as read as floats (blip_weights convert leaves it unquantized).
  const WeightStore recording = WeightStore::recording(Checkpoint::open(path));
  const StoredMatrix stand_in = recording.get_table("bf16_table", 5, 4);
  CHECK(stand_in.rows == 5);
  const std::vector<RequestedWeight> requested = recording.requested();
  REQUIRE(requested.size() == 1);
  CHECK(requested[0].read_as_floats);
  CHECK_FALSE(requested[0].packed_as_linear);
  CHECK(requested[0].stored_dtype == DType::BF16);
}

TEST_CASE("missing and mis-shaped weights are errors naming tensor, checkpoint and shapes") {
  const std::string path = write_checkpoint();
  const WeightStore store = WeightStore::open(path);

  const std::string missing = error_of([&] { store.get("encoder.gamma", Shape{2}); });
  CHECK(missing.find(path) != std::string::npos);
  CHECK(missing.find("'encoder.gamma' [2]") != std::string::npos);
  CHECK(missing.find("no such tensor") != std::string::npos);

  const std::string misshaped = error_of([&] { store.get("encoder.weight", Shape{3, 2}); });
  CHECK(misshaped.find(path) != std::string::npos);
  CHECK(misshaped.find("'encoder.weight' has shape [2, 3] but the model expects [3, 2]") != std::string::npos);

  const std::string rank = error_of([&] { store.get("encoder.bias", Shape{1, 2}); });
  CHECK(rank.find("has shape [2] but the model expects [1, 2]") != std::string::npos);
  // A failed fetch does not count as a use.
  const std::vector<std::string> unused = store.unused();
  CHECK(std::find(unused.begin(), unused.end(), "encoder.weight") != unused.end());
}

TEST_CASE("get_or_empty: absent gives an empty tensor, present is still shape-checked") {
  const std::string path = write_checkpoint();
  const WeightStore store = WeightStore::open(path);
  // BLIP's decoder bias is tied to cls.predictions.bias; checkpoints carry one or both.
  Tensor<const float> bias = store.get_or_empty("text_decoder.cls.predictions.decoder.bias", Shape{4});
  CHECK(bias.empty());
  if (bias.empty()) bias = store.get("text_decoder.cls.predictions.bias", Shape{4});
  CHECK(bias.data()[3] == 1.5f);
  CHECK(error_of([&] { store.get_or_empty("encoder.bias", Shape{3}); }).find("expects [3]") != std::string::npos);
  CHECK(store.get_or_empty("encoder.bias", Shape{2}).data()[1] == -0.5f);
}

TEST_CASE("unused lists what was never fetched, in checkpoint order; copies share the record") {
  const std::string path = write_checkpoint();
  const WeightStore store = WeightStore::open(path);
  CHECK(store.unused() == std::vector<std::string>{"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias",
                                                   "text_decoder.cls.predictions.bias", "embeddings.position_ids"});
  const WeightStore copy = store;
  std::thread first([&] { store.get("encoder.weight", Shape{2, 3}); });
  std::thread second([&] { copy.get("decoder.bias", Shape{3}); });
  first.join();
  second.join();
  store.get("encoder.weight", Shape{2, 3});  // fetching twice is fine
  CHECK(store.unused() == std::vector<std::string>{"encoder.bias", "decoder.weight",
                                                   "text_decoder.cls.predictions.bias", "embeddings.position_ids"});
  CHECK(copy.unused() == store.unused());
  // Integer buffers can be fetched as f32 too (converted).
  CHECK(store.get("embeddings.position_ids", Shape{1, 4}).data()[3] == 3.0f);
}

TEST_CASE("a fixture model folder loads through the store") {
  const std::string folder = test::fixture("blip_caption");
  if (!test::have_or_skip(folder + "/model.safetensors", "blip_caption fixture")) return;
  const WeightStore store = WeightStore::open(folder);
  CHECK(store.unused().size() == store.checkpoint().names().size());
  // vision hidden 32, 3 channels, patch 8 (case.json of blip_caption).
  const Tensor<const float> patch = store.get("vision_model.embeddings.patch_embedding.weight", Shape{32, 3, 8, 8});
  CHECK(patch.numel() == 32 * 3 * 8 * 8);
  const Tensor<const float> key =
      store.get("text_decoder.bert.encoder.layer.1.crossattention.self.key.weight", Shape{16, 32});
  CHECK(key.dim(1) == 32);
  CHECK(store.unused().size() == store.checkpoint().names().size() - 2);
}

TEST_CASE("recording: every request recorded against the checkpoint, answered with zeros, never an error") {
  const WeightStore store = WeightStore::recording(Checkpoint::open(write_checkpoint()));
  CHECK(store.is_recording());
  // Present with the right shape, present with another shape, absent: all answered with zeros.
  const Tensor<const float> present = store.get("encoder.weight", Shape{2, 3});
  const Tensor<const float> misshaped = store.get("encoder.bias", Shape{5});
  const Tensor<const float> absent = store.get_for_repacking("missing.weight", Shape{4, 4});
  CHECK(present.shape() == Shape{2, 3});
  CHECK(misshaped.shape() == Shape{5});
  CHECK(absent.shape() == Shape{4, 4});
  for (const auto* tensor : {&present, &misshaped, &absent})
    CHECK(std::all_of(tensor->data(), tensor->data() + tensor->numel(), [](float v) { return v == 0.0f; }));
  // A matrix for repacking: zeros too, packed as int8 (the stand-in model is thrown away).
  const StoredMatrix matrix = store.get_matrix_for_repacking("decoder.weight", 3, 2);
  CHECK(matrix.rows == 3);
  CHECK(matrix.columns == 2);
  CHECK(store.linear_precision("decoder.weight") == WeightPrecision::Int8);
  // Optional: absent gives the fallback branch (empty), present is a stand-in.
  CHECK(store.get_or_empty("decoder.extra_bias", Shape{3}).empty());
  CHECK(store.get_or_empty("text_decoder.cls.predictions.bias", Shape{4}).shape() == Shape{4});
  CHECK(store.contains("decoder.bias"));
  CHECK_FALSE(store.contains("missing.weight"));
  // A second request of the same name is not recorded twice.
  store.get("encoder.weight", Shape{2, 3});

  const std::vector<RequestedWeight> requested = store.requested();
  REQUIRE(requested.size() == 6);
  CHECK(requested[0].name == "encoder.weight");
  CHECK(requested[0].found == RequestedWeight::Found::Yes);
  CHECK(requested[1].found == RequestedWeight::Found::WrongShape);
  CHECK(requested[1].stored_shape == Shape{2});
  CHECK(requested[1].expected == Shape{5});
  CHECK(requested[2].found == RequestedWeight::Found::Absent);
  CHECK_FALSE(requested[2].optional);
  CHECK(requested[3].name == "decoder.weight");
  CHECK(requested[3].stored_dtype == DType::F16);
  CHECK(requested[4].name == "decoder.extra_bias");
  CHECK(requested[4].optional);
  CHECK(requested[4].found == RequestedWeight::Found::Absent);
  CHECK(requested[5].found == RequestedWeight::Found::Yes);
  // What the model never asked for: the checkpoint's unexpected tensors.
  CHECK(store.unused() == std::vector<std::string>{"decoder.bias", "embeddings.position_ids"});
}

TEST_CASE("recording without a checkpoint: the full layout, optional tensors included") {
  const WeightStore store = WeightStore::recording();
  CHECK(store.get_or_empty("head.bias", Shape{7}).shape() == Shape{7});  // taken as present
  CHECK_FALSE(store.contains("head.bias"));                               // default branches
  const Tensor<const float> big = store.get("embeddings.weight", Shape{1000, 64});
  CHECK(big.numel() == 64000);
  const std::vector<RequestedWeight> requested = store.requested();
  REQUIRE(requested.size() == 2);
  CHECK(requested[0].optional);
  for (const RequestedWeight& request : requested) CHECK(request.found == RequestedWeight::Found::NoCheckpoint);
  CHECK(store.unused().empty());
}

}  // namespace io_weight_store_test
