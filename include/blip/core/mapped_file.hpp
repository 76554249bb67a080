// blip/core/mapped_file.hpp: read-only memory mapping of a whole file.
//
// Weights are mmapped so that loading a checkpoint costs no copy and the OS
// can share the pages between processes. On systems without POSIX mmap the
// file is read into memory instead (same interface).
//
// Weights held once: a kernel that repacks a weight at load (LinearWeights)
// reads it from the mapping once and then only its own copy. Each mapping is
// listed in a process-wide table, so release_mapped_pages(data, bytes) can
// hand those pages back given nothing but the address a Tensor view holds:
// inside a live mapping it drops this process's pages of the range
// (madvise MADV_DONTNEED); anywhere else (heap tensors, e.g. converted bf16)
// it does nothing. The mapping is read-only and file-backed, so the data stays
// readable: a later read faults the page back in from the file (page cache).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
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

namespace detail {

// The address ranges of the live MappedFile mappings, so that
// release_mapped_pages never advises memory it does not know to be a
// read-only file mapping (MADV_DONTNEED on heap memory would zero it).
class MappedRanges {
 public:
  // Never destroyed: a MappedFile held by a static object may outlive any
  // static registry.
  static MappedRanges& instance() {
    static MappedRanges* ranges = new MappedRanges();
    return *ranges;
  }
  void add(const std::uint8_t* begin, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    end_by_begin_[reinterpret_cast<std::uintptr_t>(begin)] = reinterpret_cast<std::uintptr_t>(begin) + size;
  }
  void remove(const std::uint8_t* begin) {
    std::lock_guard<std::mutex> lock(mutex_);
    end_by_begin_.erase(reinterpret_cast<std::uintptr_t>(begin));
  }
  // Runs `action()` while no mapping can be removed, if [begin, end) lies
  // inside one live mapping; returns whether it did.
  template <class Action>
  bool with_mapped(std::uintptr_t begin, std::uintptr_t end, Action&& action) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto after = end_by_begin_.upper_bound(begin);
    if (after == end_by_begin_.begin()) return false;
    --after;  // the last mapping starting at or before `begin`
    if (end > after->second) return false;
    action();
    return true;
  }

 private:
  MappedRanges() = default;
  mutable std::mutex mutex_;
  std::map<std::uintptr_t, std::uintptr_t> end_by_begin_;
};

}  // namespace detail

class MappedFile {
 public:
  // Maps `path` read-only; throws blip::Error naming the file if it cannot.
  static std::shared_ptr<const MappedFile> open(const std::string& path) {
    return std::shared_ptr<const MappedFile>(new MappedFile(path));
  }

  ~MappedFile() {
#ifdef BLIP_HAVE_MMAP
    if (mapped_ && size_ > 0) {
      detail::MappedRanges::instance().remove(data_);
      ::munmap(const_cast<std::uint8_t*>(data_), size_);
    }
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
      detail::MappedRanges::instance().add(data_, size_);
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

// Drops this process's resident pages of [data, data + bytes) if the range
// lies in a live MappedFile mapping: the whole pages inside it (a page it
// shares with a neighbouring tensor is kept). Returns the bytes released; 0
// for memory that is not such a mapping, which is left untouched. The bytes
// stay readable (see the top of this file); call it when the range will not
// be read again soon, e.g. after repacking a weight.
inline std::size_t release_mapped_pages(const void* data, std::size_t bytes) {
#if defined(BLIP_HAVE_MMAP) && defined(MADV_DONTNEED)
  if (data == nullptr || bytes == 0) return 0;
  const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(data), end = begin + bytes;
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (first >= last) return 0;
  bool advised = false;
  // Under the table's lock, so the mapping cannot be unmapped (and the
  // addresses reused) between the check and the advice.
  const bool mapped = detail::MappedRanges::instance().with_mapped(begin, end, [&] {
    advised = ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;  // advisory
  });
  if (!mapped || !advised) return 0;
  return last - first;
#else
  (void)data;
  (void)bytes;
  return 0;
#endif
}

}  // namespace blip
