// Reproduces every case in the fixtures folder that the parity runner knows
// (made by Hugging Face transformers from random weights): float outputs within
// 1e-4 of the reference relative to the tensor's largest magnitude, generated
// ids exactly. Every folder whose case.json has a supported kind is run, so new
// cases dropped into the folder are checked too.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "parity/case_runner.hpp"
#include "test_support.hpp"

namespace fixtures_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

std::vector<std::string> blip_case_directories() {
  std::vector<std::string> directories;
  const std::string root = blip::test::fixtures_dir();
  if (!std::filesystem::exists(root)) return directories;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string case_file = entry.path().string() + "/case.json";
    if (!std::filesystem::exists(case_file)) continue;
    const std::string kind = blip::parity::read_json_file(case_file).value("kind", "");
    if (blip::parity::CaseRunner::supports(kind)) directories.push_back(entry.path().string());
  }
  std::sort(directories.begin(), directories.end());
  return directories;
}

void check_case(const std::string& directory) {
  blip::parity::CaseRunner runner(directory);
  const blip::parity::CaseOutputs outputs = runner.run();
  const blip::SafetensorsFile expected = blip::SafetensorsFile::open(directory + "/outputs.safetensors");
  for (const std::string& name : outputs.names) {
    INFO(directory, ": output ", name);
    const auto& actual = outputs.tensors.at(name);
    REQUIRE(expected.contains(name));
    if (std::holds_alternative<blip::Tensor<float>>(actual)) {
      const blip::Tensor<float>& value = std::get<blip::Tensor<float>>(actual);
      const blip::Tensor<const float> reference = expected.to_f32(name);
      REQUIRE(value.shape() == reference.shape());
      const double error = blip::test::max_relative_error(value, reference);
      MESSAGE(directory, " ", name, ": max |diff| / max |ref| = ", error);
      CHECK(error <= 1e-4);
    } else {
      const blip::Tensor<std::int64_t>& value = std::get<blip::Tensor<std::int64_t>>(actual);
      const blip::Tensor<std::int64_t> reference = expected.to_i64(name);
      CHECK_MESSAGE(value.shape() == reference.shape(), "shape ", value.shape(), " vs ", reference.shape());
      if (value.shape() != reference.shape()) continue;
      std::int64_t mismatches = 0;
      for (std::int64_t i = 0; i < value.numel(); ++i) mismatches += value.data()[i] != reference.data()[i];
      CHECK_MESSAGE(mismatches == 0, mismatches, " of ", value.numel(), " ids differ");
    }
  }
}

}  // namespace

TEST_CASE("every fixture case reproduces Hugging Face's outputs") {
  if (!blip::test::have_or_skip(blip::test::fixtures_dir(), "fixtures folder")) return;
  const std::vector<std::string> directories = blip_case_directories();
  CHECK(directories.size() >= 3);
  for (const std::string& directory : directories) {
    SUBCASE(directory.c_str()) { check_case(directory); }
  }
}

}  // namespace fixtures_test
