// blip_weights inspect and make-random (weights_tools/model_weights.hpp),
// both driven by the models' own load() through a recording WeightStore:
//  * every fixture checkpoint is complete for its model;
//  * a copy with one tensor removed, one renamed and one mis-shaped is
//    reported tensor by tensor (all three, where a real load stops at the first);
//  * a random checkpoint made from each fixture's config.json loads and runs
//    every output of the fixture case (the parity runner) to finite numbers.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "../../weights_tools/command_line.hpp"
#include "parity/case_runner.hpp"
#include "test_support.hpp"

namespace weights_model_tools_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

namespace fs = std::filesystem;
namespace tools = blip::weights_tools;
using blip::RequestedWeight;

std::vector<std::string> fixture_models() {
  std::vector<std::string> folders;
  if (!fs::exists(blip::test::fixtures_dir())) return folders;
  for (const auto& entry : fs::directory_iterator(blip::test::fixtures_dir()))
    if (fs::exists(entry.path() / "config.json") && fs::exists(entry.path() / "model.safetensors"))
      folders.push_back(entry.path().string());
  std::sort(folders.begin(), folders.end());
  return folders;
}

fs::path scratch(const std::string& name) {
  const fs::path folder = fs::path(BLIP_TEST_BINARY_DIR) / "weights_model_tools" / name;
  fs::remove_all(folder);
  fs::create_directories(folder.parent_path());
  return folder;
}

bool has_name(const std::vector<const RequestedWeight*>& requests, const std::string& name) {
  return std::any_of(requests.begin(), requests.end(), [&](const RequestedWeight* r) { return r->name == name; });
}

}  // namespace

TEST_CASE("inspect: every fixture checkpoint is complete for the model its config names") {
  const std::vector<std::string> folders = fixture_models();
  if (folders.empty()) {
    MESSAGE("SKIPPED: no fixtures");
    return;
  }
  CHECK(folders.size() >= 3);
  for (const std::string& folder : folders) {
    CAPTURE(folder);
    const tools::Inspection inspection = tools::inspect_model(folder);
    CHECK(inspection.loadable());
    CHECK(inspection.missing.empty());
    CHECK(inspection.wrong_shape.empty());
    CHECK(inspection.expected.load_error.empty());
    CHECK(inspection.expected.model_class == inspection.expected.config.architecture);
    // Each requested tensor once; the present ones plus the unexpected ones are the checkpoint.
    std::size_t present = 0;
    for (const RequestedWeight& request : inspection.expected.requested)
      present += request.found == RequestedWeight::Found::Yes;
    CHECK(present + inspection.expected.unexpected.size() == inspection.listing.tensors.size());
    MESSAGE(fs::path(folder).filename().string(), ": ", inspection.expected.model_class, " asks for ",
            inspection.expected.requested.size(), " tensors; ", inspection.expected.unexpected.size(),
            " unexpected in the checkpoint");
  }
}

TEST_CASE("inspect: a removed, a renamed and a mis-shaped tensor are all reported") {
  const std::string fixture = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(fixture + "/model.safetensors", "blip_caption fixture")) return;
  const fs::path broken = scratch("broken_caption");
  fs::create_directories(broken);
  fs::copy_file(fs::path(fixture) / "config.json", broken / "config.json");

  const std::string removed = "vision_model.post_layernorm.weight";
  const std::string renamed = "text_decoder.bert.embeddings.word_embeddings.weight";
  const std::string renamed_to = "text_decoder.bert.embeddings.word_embedding.weight";
  const std::string misshaped = "vision_model.embeddings.class_embedding";  // [1, 1, H] stored as [1, H]
  const blip::SafetensorsFile source = blip::SafetensorsFile::open(fixture + "/model.safetensors");
  REQUIRE(source.contains(removed));
  REQUIRE(source.contains(renamed));
  REQUIRE(source.contains(misshaped));
  blip::SafetensorsWriter writer;
  blip::Shape stored_class_shape;
  for (const blip::TensorInfo& info : source.tensors()) {
    if (info.name == removed) continue;
    blip::Shape shape = info.shape;
    if (info.name == misshaped) shape = stored_class_shape = blip::Shape{1, info.shape[2]};
    writer.add_raw(info.name == renamed ? renamed_to : info.name, info.dtype, shape, source.raw_data(info.name),
                   info.bytes());
  }
  writer.write((broken / "model.safetensors").string());

  // The real load stops at the first problem...
  {
    const blip::WeightStore store = blip::WeightStore::open(broken.string());
    const blip::ModelConfig config = blip::load_model_config(broken.string());
    CHECK_THROWS_AS(blip::BlipForConditionalGeneration::load(store, blip::make_blip_model_config(config.blip)),
                    blip::Error);
  }
  // ...the recording one reports all three.
  const tools::Inspection inspection = tools::inspect_model(broken.string());
  CHECK_FALSE(inspection.loadable());
  CHECK(inspection.missing.size() == 2);
  CHECK(has_name(inspection.missing, removed));
  CHECK(has_name(inspection.missing, renamed));
  REQUIRE(inspection.wrong_shape.size() == 1);
  CHECK(inspection.wrong_shape[0]->name == misshaped);
  CHECK(inspection.wrong_shape[0]->stored_shape == stored_class_shape);
  CHECK(inspection.wrong_shape[0]->expected.rank() == 3);
  CHECK(std::find(inspection.expected.unexpected.begin(), inspection.expected.unexpected.end(), renamed_to) !=
        inspection.expected.unexpected.end());

  // The report and the command line say the same.
  std::ostringstream out, err;
  CHECK(tools::run_command_line({"inspect", broken.string()}, out, err) == 1);
  const std::string text = out.str();
  CHECK(text.find("missing (2):") != std::string::npos);
  CHECK(text.find("  " + removed + "  [") != std::string::npos);
  CHECK(text.find("wrong shape (1):") != std::string::npos);
  CHECK(text.find("  " + misshaped + "  stored [1, ") != std::string::npos);
  CHECK(text.find("  " + renamed_to + "\n") != std::string::npos);
  CHECK(text.find("loads: no") != std::string::npos);
  std::ostringstream json_out;
  CHECK(tools::run_command_line({"inspect", broken.string(), "--json"}, json_out, err) == 1);
  const nlohmann::json report = nlohmann::json::parse(json_out.str());
  CHECK(report["loadable"] == false);
  CHECK(report["missing"].size() == 2);
  CHECK(report["wrong_shape"][0]["name"] == misshaped);
  MESSAGE(text.substr(text.find("BlipForConditionalGeneration asks")));
}

TEST_CASE("make-random: every fixture config gives a checkpoint its model loads and runs to finite outputs") {
  const std::vector<std::string> folders = fixture_models();
  if (folders.empty()) {
    MESSAGE("SKIPPED: no fixtures");
    return;
  }
  int cases_run = 0;
  for (const std::string& folder : folders) {
    CAPTURE(folder);
    const std::string name = fs::path(folder).filename().string();
    const fs::path output = scratch("random_" + name);
    tools::RandomOptions options;
    options.seed = 11;
    const tools::RandomResult result = tools::make_random_checkpoint(folder, output.string(), options);
    CHECK(result.tensor_count > 10);
    CHECK(result.initializer_range > 0);
    CHECK(fs::exists(output / "config.json"));
    // The loader takes it (through the real, not recording, store).
    const tools::Inspection inspection = tools::inspect_model(output.string());
    CHECK(inspection.loadable());
    CHECK(inspection.expected.unexpected.empty());
    // Values follow HF's _init_weights: LayerNorm weight 1, bias 0, others N(0, initializer_range).
    const blip::SafetensorsFile written = blip::SafetensorsFile::open((output / "model.safetensors").string());
    for (const blip::TensorInfo& info : written.tensors()) {
      const blip::Tensor<const float> values = written.to_f32(info.name);
      const bool norm_scale = info.shape.rank() == 1 && info.name.size() > 7 &&
                              info.name.compare(info.name.size() - 7, 7, ".weight") == 0;
      const bool bias = info.name.size() > 4 && info.name.compare(info.name.size() - 4, 4, "bias") == 0;
      double sum = 0, squares = 0;
      for (std::int64_t i = 0; i < values.numel(); ++i) sum += values.data()[i], squares += double(values.data()[i]) * values.data()[i];
      const double mean = sum / double(values.numel()), rms = std::sqrt(squares / double(values.numel()));
      if (norm_scale) CHECK_MESSAGE(mean == 1.0, info.name);
      else if (bias) CHECK_MESSAGE(rms == 0.0, info.name);
      else if (values.numel() >= 1000) CHECK_MESSAGE(std::abs(rms - result.initializer_range) < 0.15 * result.initializer_range, info.name, " rms ", rms);
    }
    // The fixture case's outputs (generation included) on the random weights: finite, well-formed.
    if (!fs::exists(fs::path(folder) / "case.json")) continue;
    const std::string kind = blip::parity::read_json_file(folder + "/case.json").value("kind", "");
    if (!blip::parity::CaseRunner::supports(kind)) continue;
    for (const char* file : {"case.json", "inputs.safetensors", "generation_config.json"})
      if (fs::exists(fs::path(folder) / file))
        fs::copy_file(fs::path(folder) / file, output / file, fs::copy_options::overwrite_existing);
    blip::parity::CaseRunner runner(output.string());
    const blip::parity::CaseOutputs outputs = runner.run();
    CHECK(!outputs.names.empty());
    for (const auto& [output_name, tensor] : outputs.tensors) {
      CAPTURE(output_name);
      if (const auto* floats = std::get_if<blip::Tensor<float>>(&tensor)) {
        CHECK(floats->numel() > 0);
        bool finite = true;
        for (std::int64_t i = 0; i < floats->numel(); ++i) finite = finite && std::isfinite(floats->data()[i]);
        CHECK(finite);
      } else {
        CHECK(std::get<blip::Tensor<std::int64_t>>(tensor).numel() > 0);
      }
    }
    ++cases_run;
    MESSAGE(name, ": ", result.model_class, " random checkpoint, ", result.tensor_count, " tensors, ",
            outputs.names.size(), " case outputs finite");
  }
  CHECK(cases_run >= 3);
}

TEST_CASE("make-random: bf16, sharding, seeds and errors") {
  const std::string fixture = blip::test::fixture("blip_itm");
  if (!blip::test::have_or_skip(fixture + "/config.json", "blip_itm fixture")) return;
  tools::RandomOptions options;
  options.dtype = blip::DType::BF16;
  options.max_shard_size = 100'000;
  const fs::path sharded = scratch("random_sharded");
  const tools::RandomResult result = tools::make_random_checkpoint(fixture, sharded.string(), options);
  CHECK(result.files.size() > 2);
  CHECK(fs::exists(sharded / tools::kIndexFileName));
  const tools::Listing listing = tools::list_checkpoint(sharded.string());
  CHECK(listing.bytes_per_dtype.size() == 1);
  CHECK(listing.bytes_per_dtype.count("BF16") == 1);
  CHECK(tools::inspect_model(sharded.string()).loadable());

  // The same seed gives the same values whatever the dtype: bf16 is f32 rounded.
  const fs::path single = scratch("random_f32");
  options.dtype = blip::DType::F32;
  options.max_shard_size = 5'000'000'000ull;
  tools::make_random_checkpoint(fixture, single.string(), options);
  const blip::Checkpoint f32 = blip::Checkpoint::open(single.string());
  const blip::Checkpoint bf16 = blip::Checkpoint::open(sharded.string());
  const std::string probe = f32.names().front();
  const blip::Tensor<const float> a = f32.to_f32(probe), b = bf16.to_f32(probe);
  REQUIRE(a.numel() == b.numel());
  for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(b.data()[i] == blip::bf16_to_f32(blip::f32_to_bf16(a.data()[i])));

  std::ostringstream out, err;
  CHECK(tools::run_command_line({"make-random", fixture, fixture}, out, err) == 2);
  CHECK(err.str().find("the output folder is CONFIG_DIR") != std::string::npos);
  CHECK(tools::run_command_line({"make-random", fixture, single.string(), "--dtype", "i8"}, out, err) == 2);
  CHECK(tools::run_command_line({"make-random", fixture, single.string(), "--seed", "-1"}, out, err) == 2);
  CHECK(tools::run_command_line({"make-random", "/no/such/folder", single.string()}, out, err) == 2);
}

}  // namespace weights_model_tools_test
