// examples/support/retrieval_io.hpp: the inputs of the retrieval programs (blip_embed,
// blip_search, blip_eval retrieval, blip_match --pairs) and their progress line.
//
//   read_image_list     a folder of images (sorted by name) or a file listing one path per line
//   read_text_lines     a file of texts, one per line
//   read_pair_lines     JSON lines {"image": PATH, "text": TEXT}
//   terminal_progress   "[blip_embed] images embedded 300/5000" on stderr, only when stderr is a terminal
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/io/json_file.hpp"
#include "blip/io/safetensors.hpp"  // detail::first_invalid_utf8
#include "image_files.hpp"

namespace blip::examples {

// Lists hold at most this much (a catalogue of a few million lines).
inline constexpr std::uint64_t kMaxListFileBytes = std::uint64_t{1} << 30;

// The file's lines, '\r\n' or '\n' ended, blank ones skipped; each must be UTF-8 (`what` names
// the file's role in messages).
inline std::vector<std::pair<std::size_t, std::string>> read_nonblank_lines(const std::string& path, const char* what) {
  const std::string content = read_regular_file(path, kMaxListFileBytes, what);
  std::vector<std::pair<std::size_t, std::string>> lines;
  std::size_t start = 0, number = 0;
  while (start < content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    ++number;
    std::string line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    start = end + 1;
    if (std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); })) continue;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(line.data());
    const std::size_t bad = detail::first_invalid_utf8(bytes, line.size());
    check(bad == line.size(), path, ": line ", number, " is not valid UTF-8 (byte ", bad + 1, ")");
    lines.emplace_back(number, std::move(line));
  }
  check(!lines.empty(), path, ": no ", what, " in it (empty, or only blank lines)");
  return lines;
}

// A folder: its image files (by extension, image_files.hpp: jpg, jpeg, jpe, png, bmp, gif, ppm, pgm, pnm; not
// its subfolders), sorted by name. A file: one image path per line, relative ones as given
// (relative to the working directory). Each must be a regular file, checked here.
inline std::vector<std::string> read_image_list(const std::string& folder_or_list) {
  namespace fs = std::filesystem;
  std::error_code error;
  std::vector<std::string> paths;
  if (fs::is_directory(folder_or_list, error)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(folder_or_list, error)) {
      if (has_image_extension(entry.path()) && entry.is_regular_file(error)) paths.push_back(entry.path().string());
    }
    check(!error, folder_or_list, ": cannot list the folder (", error.message(), ")");
    std::sort(paths.begin(), paths.end());
    check(!paths.empty(), folder_or_list, ": no image files in the folder (jpg, jpeg, png, bmp, gif, ppm, pgm, pnm)");
    return paths;
  }
  // One image given where a list belongs would otherwise fail as "line 1 is not valid UTF-8".
  check(!has_image_extension(folder_or_list), folder_or_list,
        ": an image file; --images takes a folder of images or a file listing one image path per line");
  for (auto& [number, line] : read_nonblank_lines(folder_or_list, "image paths")) {
    try {
      require_regular_file(line);
    } catch (const Error& problem) {
      fail(folder_or_list, ": line ", number, ": ", problem.what());
    }
    paths.push_back(std::move(line));
  }
  return paths;
}

inline std::vector<std::string> read_text_lines(const std::string& path) {
  std::vector<std::string> texts;
  for (auto& [number, line] : read_nonblank_lines(path, "texts")) texts.push_back(std::move(line));
  return texts;
}

struct ImageTextPair {
  std::string image, text;
};

// JSON lines {"image": PATH, "text": TEXT}; the images are checked to be regular files.
inline std::vector<ImageTextPair> read_pair_lines(const std::string& path) {
  std::vector<ImageTextPair> pairs;
  for (const auto& [number, line] : read_nonblank_lines(path, "pairs")) {
    const std::string where = path + ": line " + std::to_string(number);
    const nlohmann::json object = parse_json_text(line, where);
    check(object.is_object() && object.contains("image") && object.contains("text") && object["image"].is_string() &&
              object["text"].is_string(),
          where, ": expected {\"image\": PATH, \"text\": TEXT}");
    ImageTextPair pair{object["image"].get<std::string>(), object["text"].get<std::string>()};
    check(!pair.text.empty(), where, ": empty text");
    try {
      require_regular_file(pair.image);
    } catch (const Error& problem) {
      fail(where, ": ", problem.what());
    }
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

// A progress line for long runs, redrawn in place on stderr; nothing when stderr is not a
// terminal (a log file gets no carriage-return clutter).
inline std::function<void(const char*, std::int64_t, std::int64_t)> terminal_progress(const char* program) {
  if (!isatty(STDERR_FILENO)) return {};
  return [program](const char* stage, std::int64_t done, std::int64_t total) {
    std::fprintf(stderr, "\r[%s] %s %lld/%lld", program, stage, static_cast<long long>(done),
                 static_cast<long long>(total));
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

}  // namespace blip::examples
