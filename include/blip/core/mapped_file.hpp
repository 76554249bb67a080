// blip/core/mapped_file.hpp: read-only memory mapping of a whole file.
//
// Weights are mmapped so that loading a checkpoint costs no copy and the OS
// can share the pages between processes. On systems without POSIX mmap the
// file is read into memory instead (same interface).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "blip/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define BLIP_HAVE_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace blip {

class MappedFile {
 public:
  // Maps `path` read-only; throws blip::Error naming the file if it cannot.
  static std::shared_ptr<const MappedFile> open(const std::string& path) {
    return std::shared_ptr<const MappedFile>(new MappedFile(path));
  }

  ~MappedFile() {
#ifdef BLIP_HAVE_MMAP
    if (mapped_ && size_ > 0) ::munmap(const_cast<std::uint8_t*>(data_), size_);
#endif
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  explicit MappedFile(const std::string& path) : path_(path) {
#ifdef BLIP_HAVE_MMAP
    const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) fail(path, ": cannot open (", std::strerror(errno), ")");
    struct stat status {};
    if (::fstat(descriptor, &status) != 0) {
      const int error = errno;
      ::close(descriptor);
      fail(path, ": cannot stat (", std::strerror(error), ")");
    }
    if (!S_ISREG(status.st_mode)) {
      ::close(descriptor);
      fail(path, ": not a regular file");
    }
    size_ = static_cast<std::size_t>(status.st_size);
    if (size_ > 0) {
      void* memory = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, descriptor, 0);
      const int error = errno;
      ::close(descriptor);
      if (memory == MAP_FAILED) fail(path, ": cannot mmap ", size_, " bytes (", std::strerror(error), ")");
      data_ = static_cast<const std::uint8_t*>(memory);
      mapped_ = true;
    } else {
      ::close(descriptor);
      data_ = reinterpret_cast<const std::uint8_t*>("");
    }
#else
    std::ifstream stream(path, std::ios::binary | std::ios::ate);
    if (!stream) fail(path, ": cannot open");
    size_ = static_cast<std::size_t>(stream.tellg());
    // Held as 8-byte words so that f32 and i64 views over it stay aligned.
    buffer_.resize(size_ / 8 + 8);
    stream.seekg(0);
    if (!stream.read(reinterpret_cast<char*>(buffer_.data()), static_cast<std::streamsize>(size_)))
      fail(path, ": read error");
    data_ = reinterpret_cast<const std::uint8_t*>(buffer_.data());
#endif
  }

  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
#ifndef BLIP_HAVE_MMAP
  std::vector<std::uint64_t> buffer_;
#endif
};

}  // namespace blip
