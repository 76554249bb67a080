// Shared by the libFuzzer targets: how a finding is reported, and a scratch
// folder for targets whose input must be a file.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace blip::fuzz {

// A broken invariant is a finding: abort, so libFuzzer saves the input.
inline void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// A folder of this process's own (under the temporary directory), made once per target.
inline const std::filesystem::path& scratch_folder(const char* target) {
  static const std::filesystem::path folder = [target] {
    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / (std::string(target) + "." + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return folder;
}

inline void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  require(static_cast<bool>(stream), "the scratch file can be written");
}

}  // namespace blip::fuzz
