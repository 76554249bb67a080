// blip/io/output_file.hpp: writing an output file without harming what sits at
// its path.
//
// Write-then-rename (write `<path>.partial`, rename it over `path`, as
// SafetensorsWriter::write does) is right for a regular file: a failed write
// never leaves a truncated file under the real name. For anything else it is
// wrong: renaming over a FIFO, a symbolic link or a device node (as root:
// /dev/full) replaces that node with a regular file. output_kind looks first
// (without following links):
//   * nothing there, or a regular file:      Replace (write-then-rename);
//   * a symbolic link:                        WriteThrough, as a shell redirection does
//                                             (the target is truncated and written; the link stays);
//   * a FIFO or a character device:           WriteThrough (/dev/null, /dev/stdout, a pipe);
//                                             write errors (/dev/full: no space) are reported;
//   * a directory, a block device, a socket:  refused.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blip/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace blip {

enum class OutputKind { Replace, WriteThrough };

// How the file at `path` must be written (see the top of this file).
inline OutputKind output_kind(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (error || !fs::exists(status) || fs::is_regular_file(status)) return OutputKind::Replace;
  switch (status.type()) {
    case fs::file_type::symlink:
    case fs::file_type::fifo:
    case fs::file_type::character:
      return OutputKind::WriteThrough;
    case fs::file_type::directory:
      fail(path, ": is a directory; name the output file");
    default:
      fail(path, ": is a block device or a socket; refusing to write over it");
  }
}

// Writes `bytes` into whatever `path` names, in place: a symbolic link's
// target (created or truncated), a FIFO, a device.
inline void write_through(const std::string& path, const std::vector<std::uint8_t>& bytes) {
#if defined(__unix__) || defined(__APPLE__)
  // O_TRUNC means nothing for a FIFO or a device, and is what a link's target needs.
  const int descriptor = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (descriptor < 0) fail(path, ": cannot open for writing (", std::strerror(errno), ")");
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t count = ::write(descriptor, bytes.data() + written, bytes.size() - written);
    if (count < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(descriptor);
      fail(path, ": write failed (", std::strerror(error), ")");
    }
    written += static_cast<std::size_t>(count);
  }
  if (::close(descriptor) != 0) fail(path, ": write failed (", std::strerror(errno), ")");
#else
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  if (!stream) fail(path, ": cannot open for writing");
  stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  stream.flush();
  if (!stream) fail(path, ": write failed");
#endif
}

}  // namespace blip
