// Every fixture case the parity runner knows, loaded from converted weights:
//  * as two shards (model-0000k-of-00002.safetensors + index, made by
//    weights_tools' shard_checkpoint): outputs bit-identical to the
//    single-file run, since the same f32 bytes reach the same kernels;
//  * as bf16 (convert_checkpoint): float outputs within bf16's precision of
//    the f32 run, generated ids equal where the case's recorded top-1/top-2
//    logit gaps make that robust (see check_bf16_outputs).
// Cases are found by case.json kind through CaseRunner::supports, so kinds the
// runner learns later (BLIP-2) are covered without touching this file.
// Also: the blip_weights tool's sharding, conversion and error paths.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

// weights_tools/ is a sibling of tests/; its header has no build target of its own to link.
#include "../../weights_tools/command_line.hpp"
#include "parity/case_runner.hpp"
#include "test_support.hpp"

namespace converted_fixtures_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::contains;
using blip::test::ends_with;

namespace {

namespace fs = std::filesystem;
namespace tools = blip::weights_tools;
using blip::parity::CaseOutputs;
using blip::parity::CaseRunner;

// bf16 keeps 8 significant bits: rounding a weight changes it by at most
// 2^-9 relative (half an ulp), 2^-8 = 3.9e-3 being bf16's epsilon. An output
// is a chain of ~4-8 weight products (patch embedding, 2 ViT layers,
// Q-Former / text layers, head), each adding at most about one weight
// rounding error relative to its result; LayerNorm rescales but does not
// amplify relative error, residual sums add it. So the worst case is a few
// times 2^-8 (8 x 2^-9 ~ 1.6e-2) and random rounding errors partly cancel.
// 5e-2 (max |diff| over max |ref|, the fixtures' metric) leaves room for
// softmax and GELU slopes above 1 without letting a real bug (errors of O(1))
// through; the measured values are printed.
constexpr double kBf16RelativeTolerance = 5e-2;
// Greedy ids are required to match only when the case's recorded smallest
// top-1/top-2 logit gap (case.json generation_min_top2_gap, measured by HF on
// the greedy steps) is this many times the largest change bf16 makes to a
// top-1/top-2 gap of the case's teacher-forcing logits. The margin covers the
// repetition penalty (processed scores up to 1.5x the logits in
// greedy_rep_ids) and the generation steps being other positions than the
// teacher-forcing ones, of which the max over a few dozen rows is an estimate,
// not a bound. Measured: bf16 moves those gaps by 0.007-0.02 while the
// smallest recorded gaps are 0.001-0.18, and exactly the outputs whose gap is
// below that error (blip_vqa greedy_ids 0.002, blip2_opt greedy_rep_ids
// 0.0026) do change; blip_caption greedy_ids (gap 0.18, 12x the error) is the
// one robust enough to require. Beam-search gaps in case.json are not the
// quantities beam ranking depends on (sums of log-probs across beams), so beam
// outputs are compared and reported but not required.
constexpr double kGapSafetyFactor = 4.0;

std::vector<std::string> supported_case_directories() {
  std::vector<std::string> directories;
  const std::string root = blip::test::fixtures_dir();
  if (!fs::exists(root)) return directories;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string case_file = entry.path().string() + "/case.json";
    if (!fs::exists(case_file)) continue;
    const std::string kind = blip::parity::read_json_file(case_file).value("kind", "");
    if (CaseRunner::supports(kind)) directories.push_back(entry.path().string());
  }
  std::sort(directories.begin(), directories.end());
  return directories;
}

// An empty scratch folder under the test build directory.
std::string scratch_folder(const std::string& relative) {
  const fs::path folder = fs::path(BLIP_TEST_BINARY_DIR) / "converted_fixtures" / relative;
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder.string();
}

// The case's files other than the weights.
void copy_case_files(const std::string& from, const std::string& to) {
  for (const char* name : {"config.json", "generation_config.json", "case.json", "inputs.safetensors",
                           "outputs.safetensors"}) {
    const fs::path source = fs::path(from) / name;
    if (fs::exists(source)) fs::copy_file(source, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

std::string case_name(const std::string& directory) { return fs::path(directory).filename().string(); }

bool bits_equal(const blip::Tensor<float>& a, const blip::Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

std::int64_t id_mismatches(const blip::Tensor<std::int64_t>& a, const blip::Tensor<std::int64_t>& b) {
  if (a.shape() != b.shape()) return std::max(a.numel(), b.numel());
  std::int64_t count = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) count += a.data()[i] != b.data()[i];
  return count;
}

// How bf16 changed logits [..., V]: largest absolute error, RMS error, and the
// largest change of the reference's top-1 minus top-2 difference over the rows
// (what decides an argmax). -1 until a tensor is added.
struct LogitError {
  double max_abs = -1, rms = -1, gap = -1;
  void add(const blip::Tensor<float>& actual, const blip::Tensor<float>& expected) {
    REQUIRE(actual.shape() == expected.shape());
    const std::int64_t vocabulary = expected.shape()[expected.shape().rank() - 1];
    double squares = 0;
    for (std::int64_t i = 0; i < expected.numel(); ++i) {
      const double difference = double(actual.data()[i]) - expected.data()[i];
      max_abs = std::max(max_abs, std::abs(difference));
      squares += difference * difference;
    }
    rms = std::max(rms, std::sqrt(squares / double(std::max<std::int64_t>(expected.numel(), 1))));
    if (vocabulary < 2) return;
    for (std::int64_t row = 0; row < expected.numel() / vocabulary; ++row) {
      const float* reference = expected.data() + row * vocabulary;
      const float* value = actual.data() + row * vocabulary;
      std::int64_t first = 0, second = 1;
      if (reference[second] > reference[first]) std::swap(first, second);
      for (std::int64_t v = 2; v < vocabulary; ++v) {
        if (reference[v] > reference[first]) second = first, first = v;
        else if (reference[v] > reference[second]) second = v;
      }
      const double change = (double(value[first]) - value[second]) - (double(reference[first]) - reference[second]);
      gap = std::max(gap, std::abs(change));
    }
  }
};

void check_two_shard_copy(const std::string& directory, const CaseOutputs& reference) {
  const std::string copy = scratch_folder(case_name(directory) + "/two_shards");
  copy_case_files(directory, copy);
  tools::ShardOptions options;
  options.shard_count = 2;
  tools::shard_checkpoint(directory + "/model.safetensors", copy, options);
  REQUIRE(fs::exists(copy + "/model.safetensors.index.json"));
  REQUIRE_FALSE(fs::exists(copy + "/model.safetensors"));
  REQUIRE(blip::Checkpoint::open(copy).files().size() == 2);

  const CaseOutputs outputs = CaseRunner(copy).run();
  REQUIRE(outputs.names == reference.names);
  for (const std::string& name : outputs.names) {
    INFO(case_name(directory), " two shards: output ", name);
    const auto& actual = outputs.tensors.at(name);
    const auto& expected = reference.tensors.at(name);
    REQUIRE(actual.index() == expected.index());
    if (std::holds_alternative<blip::Tensor<float>>(actual)) {
      CHECK_MESSAGE(bits_equal(std::get<blip::Tensor<float>>(actual), std::get<blip::Tensor<float>>(expected)),
                    "float output differs from the single-file run");
    } else {
      CHECK(id_mismatches(std::get<blip::Tensor<std::int64_t>>(actual), std::get<blip::Tensor<std::int64_t>>(expected)) == 0);
    }
  }
}

// Returns how many id outputs were held to exact equality.
int check_bf16_copy(const std::string& directory, const CaseOutputs& reference) {
  const std::string name_of_case = case_name(directory);
  const std::string copy = scratch_folder(name_of_case + "/bf16");
  copy_case_files(directory, copy);
  tools::convert_checkpoint(directory + "/model.safetensors", copy, blip::DType::BF16);
  {
    // The weights really are bf16 now, and load through the normal WeightStore path below.
    const blip::SafetensorsFile converted = blip::SafetensorsFile::open(copy + "/model.safetensors");
    for (const blip::TensorInfo& info : converted.tensors()) {
      INFO(info.name);
      if (info.dtype != blip::DType::I64 && info.dtype != blip::DType::I32) CHECK(info.dtype == blip::DType::BF16);
    }
  }

  const CaseOutputs outputs = CaseRunner(copy).run();
  REQUIRE(outputs.names == reference.names);
  const nlohmann::json description = blip::parity::read_json_file(directory + "/case.json");
  const nlohmann::json gaps = description.value("generation_min_top2_gap", nlohmann::json::object());

  // The teacher-forcing logits stand for the logits of the generation steps.
  LogitError logit_error;
  for (const std::string& name : outputs.names) {
    if (ends_with(name, "tf_logits"))
      logit_error.add(std::get<blip::Tensor<float>>(outputs.tensors.at(name)),
                      std::get<blip::Tensor<float>>(reference.tensors.at(name)));
  }
  const double gap_error = logit_error.gap;
  if (logit_error.gap >= 0)
    MESSAGE(name_of_case, " bf16 logits: max abs error ", logit_error.max_abs, ", rms ", logit_error.rms,
            ", largest change of a top-1/top-2 gap ", logit_error.gap);

  std::map<std::string, bool> ids_equal;  // "<stem>" -> the *_ids output matched
  double largest_error = 0;
  int exact_outputs = 0;
  for (const std::string& name : outputs.names) {
    INFO(name_of_case, " bf16: output ", name);
    const auto& actual = outputs.tensors.at(name);
    const auto& expected = reference.tensors.at(name);
    REQUIRE(actual.index() == expected.index());
    if (std::holds_alternative<blip::Tensor<float>>(actual)) {
      const auto& value = std::get<blip::Tensor<float>>(actual);
      const auto& base = std::get<blip::Tensor<float>>(expected);
      REQUIRE(value.shape() == base.shape());
      const double error = blip::test::max_relative_error(value, base);
      if (ends_with(name, "_scores")) {
        // Beam scores belong to the hypotheses found; compare them only when those are the same.
        const std::string stem = name.substr(0, name.size() - 7);
        if (ids_equal.count(stem) && ids_equal[stem]) {
          MESSAGE(name_of_case, " bf16 ", name, ": max |diff| / max |ref| = ", error, " (same hypotheses as f32)");
          CHECK(error <= kBf16RelativeTolerance);
        } else {
          MESSAGE(name_of_case, " bf16 ", name, ": not compared, its sequences differ from the f32 run's");
        }
        continue;
      }
      MESSAGE(name_of_case, " bf16 ", name, ": max |diff| / max |ref| = ", error);
      CHECK(error <= kBf16RelativeTolerance);
      largest_error = std::max(largest_error, error);
      continue;
    }
    const auto& value = std::get<blip::Tensor<std::int64_t>>(actual);
    const auto& base = std::get<blip::Tensor<std::int64_t>>(expected);
    const std::int64_t mismatches = id_mismatches(value, base);
    ids_equal[name.substr(0, name.size() - 4)] = mismatches == 0;
    const auto gap_entry = gaps.find(name + "_min_top2_gap");
    const bool greedy = name.find("greedy") != std::string::npos;  // the recorded gap is greedy decoding's
    const double gap = gap_entry != gaps.end() && gap_entry->is_number() ? gap_entry->get<double>() : -1;
    const bool robust = greedy && gap_error >= 0 && gap > kGapSafetyFactor * gap_error;
    const std::string difference = value.shape() != base.shape()
                                       ? "shapes differ (" + value.shape().to_string() + " vs " + base.shape().to_string() + ")"
                                       : std::to_string(mismatches) + " of " + std::to_string(value.numel()) + " ids differ";
    const std::string verdict = robust ? "robust: must match" : "not robust enough to require a match";
    MESSAGE(name_of_case, " bf16 ", name, ": ", difference, " from the f32 run (recorded min top-2 gap ", gap,
            " vs bf16 gap error ", gap_error, ": ", verdict, ")");
    if (robust) {
      CHECK(mismatches == 0);
      ++exact_outputs;
    }
  }
  // The bf16 weights must have changed something, or the comparison proves nothing.
  CHECK_MESSAGE(largest_error > 0, name_of_case, ": bf16 outputs are identical to f32; was anything converted?");
  return exact_outputs;
}

// A small checkpoint file with the given tensors (floats and ids).
void write_test_checkpoint(const std::string& path) {
  blip::SafetensorsWriter writer;
  blip::Tensor<float> weights(blip::Shape{2, 3});
  // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even gives 1;
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even gives 1 + 2^-6.
  const float values[] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f, 1e-30f, 65504.0f, 3.14159265f};
  std::copy(std::begin(values), std::end(values), weights.data());
  writer.add<float>("a.weight", weights);
  blip::Tensor<std::int64_t> ids(blip::Shape{3});
  ids.data()[0] = 7, ids.data()[1] = -1, ids.data()[2] = std::int64_t(1) << 40;
  writer.add<std::int64_t>("b.position_ids", ids);
  blip::Tensor<float> bias(blip::Shape{5});
  for (int i = 0; i < 5; ++i) bias.data()[i] = 0.1f * float(i) - 0.2f;
  writer.add<float>("c.bias", bias);
  writer.add_f32_as("d.half", bias, blip::DType::F16);
  writer.set_metadata("format", "pt");
  writer.write(path);
}

// Runs the command line, returning the exit status and what went to stderr.
std::pair<int, std::string> run_tool(const std::vector<std::string>& arguments) {
  std::ostringstream out, err;
  const int status = tools::run_command_line(arguments, out, err);
  return {status, err.str()};
}

}  // namespace

TEST_CASE("every fixture case loads as two shards (bit-identical) and as bf16 (within bf16 precision)") {
  if (!blip::test::have_or_skip(blip::test::fixtures_dir(), "fixtures folder")) return;
  const std::vector<std::string> directories = supported_case_directories();
  CHECK(directories.size() >= 3);
  int exact_id_outputs = 0;
  for (const std::string& directory : directories) {
    MESSAGE("case ", directory);
    // One case's exception (a kind the runner is still learning) must not hide the others.
    try {
      const CaseOutputs reference = CaseRunner(directory).run();
      check_two_shard_copy(directory, reference);
      exact_id_outputs += check_bf16_copy(directory, reference);
    } catch (const std::exception& error) {
      FAIL_CHECK(directory, ": ", error.what());
    }
  }
  // If no generated ids were robust enough to be required equal, the id part of
  // this test would prove nothing: fail loudly rather than pass silently
  // (today blip_caption's greedy_ids qualifies, see kGapSafetyFactor).
  MESSAGE(exact_id_outputs, " id outputs were required to match exactly under bf16");
  CHECK(exact_id_outputs >= 1);
}

TEST_CASE("save_pretrained's shard rule, as huggingface_hub implements it") {
  using Shards = std::vector<std::vector<std::size_t>>;
  CHECK(tools::split_like_save_pretrained({3, 3, 3, 3}, 6) == Shards{{0, 1}, {2, 3}});
  CHECK(tools::split_like_save_pretrained({3, 3, 3, 3}, 100) == Shards{{0, 1, 2, 3}});
  // A tensor above the limit gets its own shard, appended before the one being filled.
  CHECK(tools::split_like_save_pretrained({3, 3, 10, 3}, 6) == Shards{{2}, {0, 1}, {3}});
  CHECK(tools::split_like_save_pretrained({4, 3, 3}, 6) == Shards{{0}, {1, 2}});
  // --shards N: the smallest max_shard_size giving N shards.
  CHECK(tools::max_shard_size_for_count({4, 3, 3}, 2, "test") == 6);
  CHECK(tools::max_shard_size_for_count({4, 3, 3}, 3, "test") == 4);
  CHECK(tools::max_shard_size_for_count({4, 3, 3}, 1, "test") == 10);
  CHECK(tools::shard_file_name(0, 2) == "model-00001-of-00002.safetensors");
  CHECK(tools::parse_size("5GB") == 5000000000ull);
  CHECK(tools::parse_size("2KiB") == 2048);
  CHECK(tools::parse_size("123") == 123);
}

TEST_CASE("blip_weights shard: the index and shards save_pretrained writes, read back through Checkpoint byte for byte") {
  const std::string folder = scratch_folder("tool/shard_input");
  const std::string input = folder + "/model.safetensors";
  write_test_checkpoint(input);
  const std::string output = scratch_folder("tool/shard_output");
  const auto [status, errors] = run_tool({"shard", input, output, "--shards", "3"});
  REQUIRE_MESSAGE(status == 0, errors);

  const blip::SafetensorsFile original = blip::SafetensorsFile::open(input);
  const blip::Checkpoint sharded = blip::Checkpoint::open(output);
  CHECK(sharded.files().size() == 3);
  CHECK(fs::path(sharded.path()).filename() == "model.safetensors.index.json");
  std::uint64_t total = 0;
  std::vector<std::string> order;  // tensor names shard by shard
  for (const blip::SafetensorsFile& file : sharded.files()) {
    CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
    for (const blip::TensorInfo& info : file.tensors()) order.push_back(info.name);
  }
  std::vector<std::string> original_order;
  for (const blip::TensorInfo& info : original.tensors()) {
    original_order.push_back(info.name);
    INFO(info.name);
    REQUIRE(sharded.contains(info.name));
    const blip::TensorInfo& copy = sharded.info(info.name);
    CHECK(copy.dtype == info.dtype);
    CHECK(copy.shape == info.shape);
    REQUIRE(copy.bytes() == info.bytes());
    CHECK(std::memcmp(sharded.file_of(info.name).raw_data(info.name), original.raw_data(info.name), info.bytes()) == 0);
    total += info.bytes();
  }
  CHECK(order == original_order);  // assigned in order
  CHECK(sharded.names().size() == original.tensors().size());

  const nlohmann::json index = blip::test::load_json(output + "/model.safetensors.index.json");
  CHECK(index.at("metadata") == nlohmann::json{{"total_size", total}});
  CHECK(index.at("weight_map").size() == original.tensors().size());
  CHECK(index.at("weight_map").at("a.weight") == "model-00001-of-00003.safetensors");
  // json.dumps(index, indent=2, sort_keys=True) + "\n"
  std::ifstream stream(output + "/model.safetensors.index.json");
  const std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  CHECK(text.rfind("{\n  \"metadata\": {\n    \"total_size\": ", 0) == 0);
  CHECK(text.back() == '\n');

  // One shard is a plain model.safetensors, as save_pretrained writes it.
  const std::string single = scratch_folder("tool/shard_single");
  CHECK(run_tool({"shard", output, single, "--max-shard-size", "1GB"}).first == 0);
  CHECK(fs::exists(single + "/model.safetensors"));
  CHECK_FALSE(fs::exists(single + "/model.safetensors.index.json"));
  CHECK(blip::Checkpoint::open(single).names().size() == original.tensors().size());
}

TEST_CASE("blip_weights convert: round to nearest even, integers kept, sharding kept") {
  const std::string folder = scratch_folder("tool/convert_input");
  const std::string input = folder + "/model.safetensors";
  write_test_checkpoint(input);
  const std::string output = scratch_folder("tool/convert_bf16") + "/weights.safetensors";
  REQUIRE(run_tool({"convert", input, output, "--dtype", "bf16"}).first == 0);

  const blip::SafetensorsFile original = blip::SafetensorsFile::open(input);
  const blip::SafetensorsFile converted = blip::SafetensorsFile::open(output);
  CHECK(converted.metadata().at("format") == "pt");
  for (const blip::TensorInfo& info : original.tensors()) {
    INFO(info.name);
    const blip::TensorInfo& copy = converted.info(info.name);
    CHECK(copy.shape == info.shape);
    if (info.dtype == blip::DType::I64) {
      CHECK(copy.dtype == blip::DType::I64);
      CHECK(std::memcmp(converted.raw_data(info.name), original.raw_data(info.name), info.bytes()) == 0);
      continue;
    }
    REQUIRE(copy.dtype == blip::DType::BF16);
    const blip::Tensor<const float> source = original.to_f32(info.name);
    const blip::Tensor<const blip::BFloat16> stored = converted.view<blip::BFloat16>(info.name);
    for (std::int64_t i = 0; i < source.numel(); ++i)
      CHECK(stored.data()[i].bits == blip::f32_to_bf16(source.data()[i]).bits);
  }
  const blip::Tensor<const blip::BFloat16> a = converted.view<blip::BFloat16>("a.weight");
  CHECK(blip::bf16_to_f32(a.data()[0]) == 1.0f);              // tie -> even
  CHECK(blip::bf16_to_f32(a.data()[1]) == 1.0f + 1.0f / 64);  // tie -> even (up)

  // bf16 -> f32 is exact; f16 goes through f32 with one rounding.
  const std::string back = scratch_folder("tool/convert_back") + "/model.safetensors";
  REQUIRE(run_tool({"convert", output, back, "--dtype=f32"}).first == 0);
  const blip::SafetensorsFile widened = blip::SafetensorsFile::open(back);
  CHECK(widened.info("a.weight").dtype == blip::DType::F32);
  CHECK(widened.to_f32("a.weight").data()[1] == 1.0f + 1.0f / 64);
  CHECK(widened.info("b.position_ids").dtype == blip::DType::I64);

  // A sharded checkpoint stays sharded, with the index's total_size updated.
  const std::string sharded = scratch_folder("tool/convert_sharded_input");
  tools::ShardOptions two;
  two.shard_count = 2;
  tools::shard_checkpoint(input, sharded, two);
  const std::string converted_folder = scratch_folder("tool/convert_sharded_output");
  const tools::ConvertResult result = tools::convert_checkpoint(sharded, converted_folder, blip::DType::F16);
  CHECK(result.converted == 3);
  CHECK(result.kept == 1);
  CHECK(fs::exists(converted_folder + "/model-00001-of-00002.safetensors"));
  CHECK(fs::exists(converted_folder + "/model-00002-of-00002.safetensors"));
  const nlohmann::json old_index = blip::test::load_json(sharded + "/model.safetensors.index.json");
  const nlohmann::json new_index = blip::test::load_json(converted_folder + "/model.safetensors.index.json");
  CHECK(new_index.at("weight_map") == old_index.at("weight_map"));
  CHECK(new_index.at("metadata").at("total_size") == (6 + 5 + 5) * 2 + 3 * 8);
  const blip::Checkpoint reloaded = blip::Checkpoint::open(converted_folder);
  CHECK(reloaded.info("c.bias").dtype == blip::DType::F16);
  CHECK(reloaded.info("d.half").dtype == blip::DType::F16);
  CHECK(reloaded.to_f32("c.bias").data()[1] == blip::f16_to_f32(blip::f32_to_f16(original.to_f32("c.bias").data()[1])));

  // list: one line per tensor and the totals.
  std::ostringstream out, err;
  CHECK(tools::run_command_line({"list", converted_folder}, out, err) == 0);
  CHECK(contains(out.str(), "a.weight"));
  CHECK(contains(out.str(), "4 tensors, 56 bytes"));
  CHECK(contains(out.str(), "in 2 files"));
}

TEST_CASE("blip_weights: errors name the file or argument; exit status 2 for a bad command line, 1 for bad input") {
  const std::string folder = scratch_folder("tool/errors");
  const std::string input = folder + "/model.safetensors";
  write_test_checkpoint(input);
  const std::string missing = folder + "/no_such_model.safetensors";

  auto [status, errors] = run_tool({"convert", missing, folder + "/out.safetensors", "--dtype", "bf16"});
  CHECK(status == 1);
  CHECK(contains(errors, missing));
  CHECK_THROWS_WITH_AS(tools::convert_checkpoint(missing, folder + "/out", blip::DType::BF16),
                       doctest::Contains("does not exist"), blip::Error);
  std::tie(status, errors) = run_tool({"shard", missing, folder + "/shards", "--shards", "2"});
  CHECK(status == 1);
  CHECK(contains(errors, missing));
  std::tie(status, errors) = run_tool({"list", missing});
  CHECK(status == 1);
  CHECK(contains(errors, missing));

  std::tie(status, errors) = run_tool({"convert", input, folder + "/out.safetensors", "--dtype", "f64"});
  CHECK(status == 2);
  CHECK(contains(errors, "--dtype 'f64'"));
  CHECK_THROWS_AS(tools::parse_float_dtype("int8"), blip::Error);
  std::tie(status, errors) = run_tool({"convert", input, folder + "/out.safetensors"});
  CHECK(status == 2);
  CHECK(contains(errors, "--dtype"));

  std::tie(status, errors) = run_tool({"shard", input, folder + "/shards", "--shards", "0"});
  CHECK(status == 2);
  CHECK(contains(errors, "--shards 0"));
  tools::ShardOptions zero;
  CHECK_THROWS_AS(tools::shard_checkpoint(input, folder + "/shards", zero), blip::Error);
  std::tie(status, errors) = run_tool({"shard", input, folder + "/shards", "--shards", "9"});
  CHECK(status == 2);
  CHECK(contains(errors, "only 4 tensors"));
  std::tie(status, errors) = run_tool({"shard", input, folder + "/shards", "--shards", "-1"});
  CHECK(status == 2);
  std::tie(status, errors) = run_tool({"shard", input, folder + "/shards", "--shards", "2", "--max-shard-size", "9"});
  CHECK(status == 2);
  std::tie(status, errors) = run_tool({"shard", input, folder + "/shards"});
  CHECK(status == 2);
  // A stale model.safetensors would shadow the new index: refused.
  const std::string stale = scratch_folder("tool/errors_stale");
  write_test_checkpoint(stale + "/model.safetensors");
  std::tie(status, errors) = run_tool({"shard", input, stale, "--shards", "2"});
  CHECK(status == 2);
  CHECK(contains(errors, "already holds model.safetensors"));

  CHECK(run_tool({"frobnicate", input}).first == 2);
  CHECK(run_tool({}).first == 2);
  CHECK(run_tool({"list", input, "--dtype", "bf16"}).first == 2);
  std::ostringstream out, err;
  CHECK(tools::run_command_line({"--help"}, out, err) == 0);
  CHECK(contains(out.str(), "usage: blip_weights"));
}

namespace {

// Every output of `actual` bit-identical to `expected` (floats) or equal (ids).
void check_identical_outputs(const CaseOutputs& actual, const CaseOutputs& expected, const std::string& what) {
  REQUIRE(actual.names == expected.names);
  for (const std::string& name : actual.names) {
    INFO(what, ": output ", name);
    const auto& value = actual.tensors.at(name);
    const auto& reference = expected.tensors.at(name);
    REQUIRE(value.index() == reference.index());
    if (std::holds_alternative<blip::Tensor<float>>(value))
      CHECK_MESSAGE(bits_equal(std::get<blip::Tensor<float>>(value), std::get<blip::Tensor<float>>(reference)),
                    "float output differs");
    else
      CHECK(id_mismatches(std::get<blip::Tensor<std::int64_t>>(value), std::get<blip::Tensor<std::int64_t>>(reference)) == 0);
  }
}

// A copy of the checkpoint file `path` with `edit` applied to each tensor before it is written (and the
// metadata replaced by `metadata` when given).
void rewrite_checkpoint(const std::string& path, const std::function<void(blip::SafetensorsWriter&, const blip::SafetensorsFile&,
                                                                          const blip::TensorInfo&)>& edit,
                        const std::map<std::string, std::string>* metadata = nullptr) {
  const std::string original = path + ".original";
  fs::rename(path, original);
  {
    const blip::SafetensorsFile file = blip::SafetensorsFile::open(original);
    blip::SafetensorsWriter writer;
    for (const blip::TensorInfo& info : file.tensors()) edit(writer, file, info);
    for (const auto& [key, value] : metadata ? *metadata : file.metadata()) writer.set_metadata(key, value);
    writer.write(path);
  }
  fs::remove(original);
}

}  // namespace

TEST_CASE("blip_weights convert --precision int8 / int4: every fixture case runs from the quantized checkpoint "
          "bit-identically to quantizing the original at load") {
  if (!blip::test::have_or_skip(blip::test::fixtures_dir(), "fixtures folder")) return;
  const std::vector<std::string> directories = supported_case_directories();
  CHECK(directories.size() >= 7);
  for (const std::string& directory : directories) {
    for (const blip::WeightPrecision precision : {blip::WeightPrecision::Int8, blip::WeightPrecision::Int4}) {
      const std::string precision_name = blip::weight_precision_name(precision);
      const std::string what = case_name(directory) + " " + precision_name;
      MESSAGE(what);
      const std::string copy = scratch_folder(case_name(directory) + "/" + precision_name);
      std::ostringstream out, err;
      REQUIRE(tools::run_command_line({"convert", directory, copy, "--precision", precision_name}, out, err) == 0);
      copy_case_files(directory, copy);  // case.json and the inputs (config.json came with the conversion)

      // The file: Linear weights as q + scales, marked in the metadata; a tensor the model also reads as
      // floats (OPT's embedding, which its LM head is tied to) kept as it was.
      const blip::Checkpoint checkpoint = blip::Checkpoint::open(copy);
      const blip::Checkpoint original = blip::Checkpoint::open(directory);
      CHECK(checkpoint.files().front().metadata().at("blipcpp_quantization") == precision_name);
      CHECK(checkpoint.files().front().metadata().at("blipcpp_quantized_from") == "F32");
      std::size_t quantized = 0;
      for (const std::string& name : checkpoint.names()) {
        const blip::DType dtype = checkpoint.info(name).dtype;
        if (dtype == blip::DType::I8 || dtype == blip::DType::U8) {
          ++quantized;
          CHECK(checkpoint.contains(name + "_scale"));
          CHECK(dtype == (precision == blip::WeightPrecision::Int8 ? blip::DType::I8 : blip::DType::U8));
        }
      }
      CHECK(quantized >= 8);
      CHECK(contains(out.str(), std::to_string(quantized) + " Linear weights -> " + precision_name));
      if (original.contains("language_model.model.decoder.embed_tokens.weight"))
        CHECK(checkpoint.info("language_model.model.decoder.embed_tokens.weight").dtype == blip::DType::F32);
      const tools::Inspection inspection = tools::inspect_model(copy);
      CHECK_MESSAGE(inspection.loadable(), what, ": blip_weights inspect finds the quantized folder unloadable");
      CHECK(inspection.expected.unexpected.empty());

      // Loaded as stored: the same q and scales reach the same kernels as quantizing at load.
      blip::WeightOptions at_load;
      at_load.linear_precision = precision;
      const CaseOutputs reference = CaseRunner(directory, at_load).run();
      check_identical_outputs(CaseRunner(copy).run(), reference, what + " as stored");

      // Asked for f32, the weights are q · scale: the same function, other rounding of the sums. Not where
      // the LM head is tied to an embedding the file keeps as floats (OPT: no lm_head tensor), since that
      // head is then f32 here and int8 / int4 in the reference.
      if (original.contains("language_model.model.decoder.embed_tokens.weight") &&
          !original.contains("language_model.lm_head.weight")) {
        MESSAGE(what, ": tied LM head, read-as-f32 comparison not applicable");
        continue;
      }
      blip::WeightOptions widened;
      widened.linear_precision = blip::WeightPrecision::F32;
      const CaseOutputs dequantized = CaseRunner(copy, widened).run();
      for (const std::string& name : dequantized.names) {
        if (!std::holds_alternative<blip::Tensor<float>>(dequantized.tensors.at(name)) || ends_with(name, "_scores")) continue;
        const double error = blip::test::max_relative_error(std::get<blip::Tensor<float>>(dequantized.tensors.at(name)),
                                                            std::get<blip::Tensor<float>>(reference.tensors.at(name)));
        INFO(what, " read as f32: output ", name);
        CHECK(error <= 1e-4);
      }
    }
  }
}

TEST_CASE("a quantized checkpoint: a sharded model stays sharded; damaged or unknown ones are refused by name") {
  const std::string directory = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(directory, "blip_caption fixture")) return;

  // Sharded in, sharded out: the scales go to their weight's shard, in the index too.
  const std::string sharded = scratch_folder("quantized/sharded_input");
  copy_case_files(directory, sharded);
  tools::ShardOptions two;
  two.shard_count = 2;
  tools::shard_checkpoint(directory + "/model.safetensors", sharded, two);
  const std::string sharded_int8 = scratch_folder("quantized/sharded_int8");
  const tools::QuantizeResult result = tools::quantize_checkpoint(sharded, sharded_int8, blip::WeightPrecision::Int8);
  CHECK(result.files.size() == 3);
  CHECK(result.bytes_after < result.bytes_before);
  copy_case_files(directory, sharded_int8);
  const nlohmann::json index = blip::test::load_json(sharded_int8 + "/model.safetensors.index.json");
  const std::string head = "text_decoder.cls.predictions.decoder.weight";
  CHECK(index.at("weight_map").at(head + "_scale") == index.at("weight_map").at(head));
  blip::WeightOptions at_load;
  at_load.linear_precision = blip::WeightPrecision::Int8;
  check_identical_outputs(CaseRunner(sharded_int8).run(), CaseRunner(directory, at_load).run(), "two shards, int8");

  const std::string quantized = scratch_folder("quantized/damaged");
  REQUIRE(tools::quantize_checkpoint(directory, quantized, blip::WeightPrecision::Int4).quantized > 0);
  copy_case_files(directory, quantized);
  const std::string file = quantized + "/model.safetensors";
  const auto load_error = [&]() -> std::string {
    try {
      CaseRunner(quantized).run();
    } catch (const blip::Error& error) {
      return error.what();
    }
    return "(loaded)";
  };

  // Already quantized: convert refuses (exit 2), naming the file.
  std::ostringstream out, err;
  const int twice = tools::run_command_line({"convert", quantized, scratch_folder("quantized/twice"), "--precision", "int8"}, out, err);
  CHECK_MESSAGE(twice == 2, err.str());
  CHECK(contains(err.str(), "quantized already"));
  // --dtype would turn the f32 scales into bf16: refused too.
  const auto [dtype_status, dtype_errors] = run_tool({"convert", quantized, scratch_folder("quantized/bf16"), "--dtype", "bf16"});
  CHECK(dtype_status == 2);
  CHECK(contains(dtype_errors, "quantized checkpoint"));
  // Bad arguments.
  CHECK(run_tool({"convert", directory, scratch_folder("quantized/bad"), "--precision", "int3"}).first == 2);
  CHECK(run_tool({"convert", directory, scratch_folder("quantized/bad"), "--precision", "bf16"}).first == 2);
  CHECK(run_tool({"convert", directory, scratch_folder("quantized/bad"), "--precision", "int8", "--dtype", "f32"}).first == 2);
  const auto [status, errors] = run_tool({"convert", file, scratch_folder("quantized/bad"), "--precision", "int8"});
  CHECK(status == 2);
  CHECK(contains(errors, "config.json"));

  // A scale of the wrong shape.
  const std::string scale = head + "_scale";
  rewrite_checkpoint(file, [&](blip::SafetensorsWriter& writer, const blip::SafetensorsFile& source, const blip::TensorInfo& info) {
    if (info.name == scale) {
      blip::Tensor<float> wrong(blip::Shape{info.shape[0], info.shape[1] + 1});
      std::fill(wrong.data(), wrong.data() + wrong.numel(), 1.0f);
      writer.add<float>(info.name, wrong);
    } else {
      writer.add_raw(info.name, info.dtype, info.shape, source.raw_data(info.name), info.bytes());
    }
  });
  std::string message = load_error();
  CHECK(contains(message, scale));
  CHECK(contains(message, "scales"));

  // Weights of the other quantized type (I8 in an int4 file), and weights without their scales.
  const auto requantize = [&] {
    fs::remove_all(quantized);
    tools::quantize_checkpoint(directory, quantized, blip::WeightPrecision::Int4);
    copy_case_files(directory, quantized);
  };
  requantize();
  rewrite_checkpoint(file, [&](blip::SafetensorsWriter& writer, const blip::SafetensorsFile& source, const blip::TensorInfo& info) {
    if (info.name == head) {
      const std::vector<std::uint8_t> zeros(static_cast<std::size_t>(info.shape[0] * info.shape[1] * 2), 0);
      writer.add_raw(info.name, blip::DType::I8, blip::Shape{info.shape[0], info.shape[1] * 2}, zeros.data(), zeros.size());
    } else {
      writer.add_raw(info.name, info.dtype, info.shape, source.raw_data(info.name), info.bytes());
    }
  });
  message = load_error();
  CHECK(contains(message, head));
  CHECK(contains(message, "stores its weights as U8"));
  requantize();
  rewrite_checkpoint(file, [&](blip::SafetensorsWriter& writer, const blip::SafetensorsFile& source, const blip::TensorInfo& info) {
    if (info.name != scale) writer.add_raw(info.name, info.dtype, info.shape, source.raw_data(info.name), info.bytes());
  });
  message = load_error();
  CHECK(contains(message, head));
  CHECK(contains(message, "no scales"));

  // Metadata this blipcpp does not know: another quantization, another format version.
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"blipcpp_quantization", "int3"}, {"blipcpp_quantization_format", "2"}}) {
    requantize();
    std::map<std::string, std::string> metadata = blip::SafetensorsFile::open(file).metadata();
    metadata[key] = value;
    rewrite_checkpoint(file, [&](blip::SafetensorsWriter& writer, const blip::SafetensorsFile& source,
                                 const blip::TensorInfo& info) {
      writer.add_raw(info.name, info.dtype, info.shape, source.raw_data(info.name), info.bytes());
    }, &metadata);
    message = load_error();
    INFO(key, " = ", value, ": ", message);
    CHECK(contains(message, "model.safetensors"));
    CHECK(contains(message, value));
  }

  // An int8 weight of -128: outside symmetric int8's [-127, 127], which the integer kernels rely on.
  fs::remove_all(quantized);
  REQUIRE(tools::quantize_checkpoint(directory, quantized, blip::WeightPrecision::Int8).quantized > 0);
  copy_case_files(directory, quantized);
  CHECK(load_error() == "(loaded)");
  rewrite_checkpoint(file, [&](blip::SafetensorsWriter& writer, const blip::SafetensorsFile& source, const blip::TensorInfo& info) {
    const auto* bytes = static_cast<const std::uint8_t*>(source.raw_data(info.name));
    std::vector<std::uint8_t> copy(bytes, bytes + info.bytes());
    if (info.name == head) copy[static_cast<std::size_t>(info.shape[1] + 2)] = 0x80;  // [1, 2]
    writer.add_raw(info.name, info.dtype, info.shape, copy.data(), copy.size());
  });
  message = load_error();
  INFO(message);
  CHECK(contains(message, head));
  CHECK(contains(message, "-128 at [1, 2]"));
}

}  // namespace converted_fixtures_test
