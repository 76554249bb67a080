// examples/support/image_files.hpp: which files of a folder the programs take as images.
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

namespace blip::examples {

// The file name extensions a folder's images are recognised by (compared
// without regard to case): the formats load_image decodes. A file named on the
// command line or in a list is tried whatever its name.
inline const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".jpe", ".png", ".bmp",
                                                      ".gif", ".ppm",  ".pgm", ".pnm"};
  return extensions;
}

inline bool has_image_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), extension) != known.end();
}

}  // namespace blip::examples
