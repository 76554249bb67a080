// blip/core/regular_file.hpp: reading a whole input file, safely.
//
// Every file the library reads whole (the JSON files of a model folder, the
// tokenizer files, images) goes through read_regular_file, which refuses
//   * anything but a regular file, before reading a byte: a FIFO would block
//     forever, /dev/zero never ends, a directory is not data. The file is
//     opened non-blocking and checked on the opened descriptor, so a FIFO (or
//     anything else) swapped in between a check and the read cannot slip
//     through, and opening a FIFO never waits for a writer;
//   * a file larger than the caller's limit, before allocating for it (and
//     the read stops at the limit even if the file grows meanwhile).
// Memory-mapped weights are opened by core/mapped_file.hpp instead.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "blip/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define BLIP_HAVE_POSIX_FILES 1
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace blip {

inline constexpr std::uint64_t kMebibyte = std::uint64_t{1} << 20;

namespace file_detail {

// "is a directory", "is a FIFO (named pipe)", ... for a file that is not a regular file.
inline const char* describe_file_kind(const std::filesystem::file_status& status) {
  namespace fs = std::filesystem;
  switch (status.type()) {
    case fs::file_type::directory:
      return "is a directory";
    case fs::file_type::fifo:
      return "is a FIFO (named pipe)";
    case fs::file_type::character:
      return "is a character device";
    case fs::file_type::block:
      return "is a block device";
    case fs::file_type::socket:
      return "is a socket";
    default:
      return "is not a regular file";
  }
}

inline std::string describe_limit(std::uint64_t bytes) {
  if (bytes % kMebibyte == 0) return std::to_string(bytes / kMebibyte) + " MiB";
  return std::to_string(bytes) + " bytes";
}

[[noreturn]] inline void fail_too_large(const std::string& path, std::uint64_t size, std::uint64_t max_bytes,
                                        const char* what) {
  fail(path, ": ", size, " bytes, above the ", describe_limit(max_bytes), " limit for ", what,
       " (see docs/reliability.md)");
}

#ifdef BLIP_HAVE_POSIX_FILES
inline std::filesystem::file_status status_of(const struct stat& status) {
  namespace fs = std::filesystem;
  if (S_ISREG(status.st_mode)) return fs::file_status(fs::file_type::regular);
  if (S_ISDIR(status.st_mode)) return fs::file_status(fs::file_type::directory);
  if (S_ISFIFO(status.st_mode)) return fs::file_status(fs::file_type::fifo);
  if (S_ISCHR(status.st_mode)) return fs::file_status(fs::file_type::character);
  if (S_ISBLK(status.st_mode)) return fs::file_status(fs::file_type::block);
  if (S_ISSOCK(status.st_mode)) return fs::file_status(fs::file_type::socket);
  return fs::file_status(fs::file_type::unknown);
}

// Closes the descriptor on every path out.
struct Descriptor {
  int value = -1;
  ~Descriptor() {
    if (value >= 0) ::close(value);
  }
};
#endif

}  // namespace file_detail

// Fails unless `path` is a regular file (symbolic links followed), naming what
// it is instead: a check before work, or for files opened elsewhere (the
// memory-mapped weights). With `missing_is_ok` a missing file passes.
inline void require_regular_file(const std::string& path, bool missing_is_ok = false) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error || !fs::exists(status)) {
    if (missing_is_ok) return;
    fail("cannot open ", path, " (no such file)");
  }
  if (!fs::is_regular_file(status))
    fail(path, ": ", file_detail::describe_file_kind(status), ", expected a regular file");
}

// The bytes of the regular file `path`, at most `max_bytes` of them. `what`
// names the kind of file in the size message ("a JSON file", "an image").
// Errors (blip::Error) name the file: "cannot open <path> (no such file)" /
// "(exists but is not readable)", "<path>: is a FIFO (named pipe), expected a
// regular file", "<path>: 2147483648 bytes, above the 16 MiB limit for ...".
inline std::string read_regular_file(const std::string& path, std::uint64_t max_bytes, const char* what) {
#ifdef BLIP_HAVE_POSIX_FILES
  file_detail::Descriptor descriptor{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (descriptor.value < 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) fail("cannot open ", path, " (no such file)");
    if (error == EACCES) fail("cannot open ", path, " (exists but is not readable)");
    fail("cannot open ", path, " (", std::strerror(error), ")");
  }
  struct stat status {};
  if (::fstat(descriptor.value, &status) != 0) fail(path, ": cannot stat (", std::strerror(errno), ")");
  if (!S_ISREG(status.st_mode))
    fail(path, ": ", file_detail::describe_file_kind(file_detail::status_of(status)), ", expected a regular file");
  const std::uint64_t size = static_cast<std::uint64_t>(status.st_size);
  if (size > max_bytes) file_detail::fail_too_large(path, size, max_bytes, what);
  // One byte more than the limit tells a file that grew past it while read.
  std::string bytes(static_cast<std::size_t>(size < max_bytes ? size + 1 : max_bytes + 1), '\0');
  std::size_t filled = 0;
  while (true) {
    if (filled == bytes.size()) {
      if (filled > max_bytes) file_detail::fail_too_large(path, filled, max_bytes, what);
      bytes.resize(
          static_cast<std::size_t>(std::min<std::uint64_t>(2 * bytes.size(), max_bytes + 1)));  // the file grew
    }
    const ssize_t count = ::read(descriptor.value, bytes.data() + filled, bytes.size() - filled);
    if (count < 0) {
      if (errno == EINTR) continue;
      fail(path, ": read error (", std::strerror(errno), ")");
    }
    if (count == 0) break;
    filled += static_cast<std::size_t>(count);
  }
  bytes.resize(filled);
  return bytes;
#else
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error || !fs::exists(status)) fail("cannot open ", path, " (no such file)");
  if (!fs::is_regular_file(status))
    fail(path, ": ", file_detail::describe_file_kind(status), ", expected a regular file");
  const std::uint64_t size = fs::file_size(path, error);
  if (!error && size > max_bytes) file_detail::fail_too_large(path, size, max_bytes, what);
  std::ifstream stream(path, std::ios::binary);
  if (!stream) fail("cannot open ", path, " (exists but is not readable)");
  std::string bytes(static_cast<std::size_t>(max_bytes + 1 < size + 1 ? max_bytes + 1 : size + 1), '\0');
  stream.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (stream.bad()) fail(path, ": read error");
  bytes.resize(static_cast<std::size_t>(stream.gcount()));
  if (bytes.size() > max_bytes) file_detail::fail_too_large(path, bytes.size(), max_bytes, what);
  return bytes;
#endif
}

}  // namespace blip
