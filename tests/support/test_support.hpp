// Helpers shared by the tests: where the fixtures are, skipping (skip.hpp) when
// they are absent, and comparing float tensors with a tolerance scaled by magnitude.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/core/error_type.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"
#include "skip.hpp"

namespace blip::test {

inline std::string fixtures_dir() { return BLIP_FIXTURES_DIR; }
inline std::string assets_dir() { return BLIP_ASSETS_DIR; }
inline std::string fixture(const std::string& relative) { return fixtures_dir() + "/" + relative; }
inline std::string asset(const std::string& relative) { return assets_dir() + "/" + relative; }

// A file under tests/data (committed reference data made by the scripts next to it).
inline std::string test_data(const std::string& relative) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / relative).string();
}

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream stream(path);
  REQUIRE_MESSAGE(stream.good(), "cannot open ", path);
  return nlohmann::json::parse(stream);
}

// A .jsonl file: one JSON value per non-empty line.
inline std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::ifstream stream(path);
  REQUIRE_MESSAGE(static_cast<bool>(stream), "cannot open ", path);
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(stream, line)) {
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

// A fresh, empty scratch directory <test binary dir>/<group>/<name>.
inline std::filesystem::path scratch_dir(const std::string& group, const std::string& name) {
  const std::filesystem::path directory = std::filesystem::path(BLIP_TEST_BINARY_DIR) / group / name;
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  return directory;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream stream(path, std::ios::binary);
  REQUIRE_MESSAGE(static_cast<bool>(stream), "cannot write ", path.string());
  stream << text;
}

// The message of the blip::Error that `call` throws; "" when it throws nothing. Any other exception
// type fails the check: the library reports every failure as blip::Error.
template <class Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const blip::Error& error) {
    return error.what();
  } catch (const std::exception& error) {
    FAIL_CHECK("expected blip::Error, got std::exception: ", error.what());
  }
  return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  REQUIRE_MESSAGE(static_cast<bool>(stream), "cannot open ", path);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
}

// True when `path` exists; otherwise records a skipped check (skip.hpp: the
// program then ends with status 77, which CTest reports as skipped, not passed),
// says what is missing and where, and returns false so the test can return early.
inline bool have_or_skip(const std::string& path, const char* what) {
  if (std::filesystem::exists(path)) return true;
  skip(std::string(what) + " not found at " + path + " (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)");
  return false;
}

// The tokenizer folders of the assets that the fixture models (which have none of their own) load with.
inline const std::string kBertTokenizer = "tokenizers/blip-image-captioning-base";
inline const std::string kOptTokenizer = "tokenizers/blip2-opt-2.7b";

// Two of the assets' photos (a PNG and a JPEG), for the task-level tests.
inline std::vector<std::string> two_photo_paths() {
  return {asset("images/skimage_coffee.png"), asset("images/skimage_rocket.jpg")};
}

// A fixture model, the assets' tokenizer folder it loads with, and the photos; or a skipped check saying which is
// absent.
inline bool have_task_inputs(const char* fixture_case, const std::string& tokenizer) {
  return have_or_skip(fixture(fixture_case), fixture_case) && have_or_skip(asset(tokenizer), "tokenizer") &&
         have_or_skip(asset("images"), "photos");
}

// max |a - b| / max(|b|), the relative error the fixtures are checked with.
template <class A, class B>
double max_relative_error(const A& actual, const B& expected) {
  REQUIRE(actual.numel() == expected.numel());
  double max_difference = 0.0, max_magnitude = 0.0;
  for (std::int64_t i = 0; i < expected.numel(); ++i) {
    const double a = actual.data()[i], b = expected.data()[i];
    max_difference = std::max(max_difference, std::abs(a - b));
    max_magnitude = std::max(max_magnitude, std::abs(b));
  }
  return max_difference / std::max(max_magnitude, 1e-30);
}

// The instruction-set paths this CPU (and build) runs: kernels chosen at run time are tested on each.
inline std::vector<kernels::KernelPath> supported_kernel_paths() {
  std::vector<kernels::KernelPath> paths;
  for (kernels::KernelPath path : kernels::kAllKernelPaths)
    if (kernels::kernel_path_supported(path)) paths.push_back(path);
  return paths;
}

}  // namespace blip::test
