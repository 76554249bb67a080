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
//
// A mapped file changed under the process: if a mapped file is truncated (or
// overwritten in place by `cp`, which truncates first), reading a page past
// its new end raises SIGBUS, which kills the process with "Bus error". Two
// defences: WeightStore copies every weight a model keeps out of the mapping
// at load (io/weight_store.hpp, WeightResidency::Copied, the default), so
// after loading nothing reads the files again; and programs may call
// report_mapped_file_faults() so that a fault inside a mapping (while loading,
// or with WeightResidency::Mapped) ends the process with a message naming the
// file instead of a bare bus error. Replace a model under a running process
// with `mv` (a new file), never by writing over the old one.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
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
#include <signal.h>
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
  void add(const std::uint8_t* begin, std::size_t size, const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    end_by_begin_[reinterpret_cast<std::uintptr_t>(begin)] = reinterpret_cast<std::uintptr_t>(begin) + size;
    fault_table_.add(reinterpret_cast<std::uintptr_t>(begin), reinterpret_cast<std::uintptr_t>(begin) + size, path);
  }
  void remove(const std::uint8_t* begin) {
    std::lock_guard<std::mutex> lock(mutex_);
    end_by_begin_.erase(reinterpret_cast<std::uintptr_t>(begin));
    fault_table_.remove(reinterpret_cast<std::uintptr_t>(begin));
  }
  // Whether [begin, end) lies inside one live mapping.
  bool contains(std::uintptr_t begin, std::uintptr_t end) const {
    return with_mapped(begin, end, [] {});
  }

  // The same ranges with their paths in fixed storage that a signal handler
  // may read (no locks, no allocation): slot i is valid while its `end` is
  // non-zero. Up to kSlots mappings are named; more still work, unnamed.
  struct FaultTable {
    static constexpr int kSlots = 256;
    static constexpr std::size_t kPathBytes = 512;
    struct Slot {
      std::atomic<std::uintptr_t> begin{0}, end{0};
      char path[kPathBytes] = {};
    };
    Slot slots[kSlots];

    void add(std::uintptr_t begin, std::uintptr_t end, const std::string& path) {
      for (Slot& slot : slots) {
        if (slot.end.load(std::memory_order_acquire) != 0) continue;
        const std::size_t length = std::min(path.size(), kPathBytes - 1);
        std::memcpy(slot.path, path.data(), length);
        slot.path[length] = '\0';
        slot.begin.store(begin, std::memory_order_relaxed);
        slot.end.store(end, std::memory_order_release);  // published last
        return;
      }
    }
    void remove(std::uintptr_t begin) {
      for (Slot& slot : slots) {
        if (slot.end.load(std::memory_order_acquire) != 0 && slot.begin.load(std::memory_order_relaxed) == begin) {
          slot.end.store(0, std::memory_order_release);
          return;
        }
      }
    }
    // The path of the mapping holding `address`, or null. Async-signal-safe.
    const char* find(std::uintptr_t address) const {
      for (const Slot& slot : slots) {
        const std::uintptr_t end = slot.end.load(std::memory_order_acquire);
        if (end != 0 && address >= slot.begin.load(std::memory_order_relaxed) && address < end) return slot.path;
      }
      return nullptr;
    }
  };
  const FaultTable& fault_table() const { return fault_table_; }
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
  FaultTable fault_table_;
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
      detail::MappedRanges::instance().add(data_, size_, path_);
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

// Whether [data, data + bytes) lies inside a live MappedFile mapping (so
// reading it reads the file).
inline bool is_mapped_memory(const void* data, std::size_t bytes) {
  if (data == nullptr) return false;
  const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(data);
  return detail::MappedRanges::instance().contains(begin, begin + bytes);
}

namespace detail {
inline void write_to_stderr(const char* text) {
#ifdef BLIP_HAVE_MMAP
  std::size_t length = 0;
  while (text[length] != '\0') ++length;
  while (length > 0) {
    const ssize_t written = ::write(2, text, length);
    if (written <= 0) return;
    text += written;
    length -= static_cast<std::size_t>(written);
  }
#else
  (void)text;
#endif
}

// The name bus-error messages start with (report_mapped_file_faults).
inline char* fault_message_prefix() {
  static char prefix[128] = "blip";
  return prefix;
}

#ifdef BLIP_HAVE_MMAP
inline struct sigaction& previous_bus_action() {
  static struct sigaction action {};
  return action;
}

// SIGBUS handler: a fault inside a mapped file gets a message naming the
// file and exit status 1; any other SIGBUS goes to the previous handler (or
// the default action, which ends the process with "Bus error").
inline void on_bus_error(int signal_number, siginfo_t* info, void* context) {
  const char* path = info != nullptr
                         ? MappedRanges::instance().fault_table().find(reinterpret_cast<std::uintptr_t>(info->si_addr))
                         : nullptr;
  if (path != nullptr) {
    write_to_stderr(fault_message_prefix());
    write_to_stderr(": ");
    write_to_stderr(path);
    write_to_stderr(
        ": the memory-mapped model file changed under this process (truncated or overwritten in place), so part of "
        "it can no longer be read. Replace a model's files with `mv` (a new file), never by copying over or "
        "truncating the ones a running process uses.\n");
    ::_exit(1);
  }
  const struct sigaction& previous = previous_bus_action();
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signal_number, info, context);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler != nullptr) {
    previous.sa_handler(signal_number);
    return;
  }
  ::signal(SIGBUS, SIG_DFL);  // the default action, on return the faulting read runs again and ends the process
}
#endif
}  // namespace detail

// For programs: turns a bus error inside a mapped model file (the file was
// truncated or overwritten while mapped) into "<program>: <file>: ..." on
// stderr and exit status 1. Process-wide (it installs a SIGBUS handler, and
// passes faults outside the mappings on to the handler that was there), so a
// library never calls it on its own; the blipcpp programs call it first thing.
// With the default WeightResidency::Copied the files are only read while
// loading; afterwards no change to them can reach the process.
inline void report_mapped_file_faults(const char* program = "blip") {
  char* prefix = detail::fault_message_prefix();
  std::size_t length = 0;
  for (; program[length] != '\0' && length + 1 < 128; ++length) prefix[length] = program[length];
  prefix[length] = '\0';
#ifdef BLIP_HAVE_MMAP
  static std::once_flag installed;
  std::call_once(installed, [] {
    detail::MappedRanges::instance();  // built before any signal can arrive
    struct sigaction action {};
    action.sa_sigaction = detail::on_bus_error;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO;
    ::sigaction(SIGBUS, &action, &detail::previous_bus_action());
  });
#endif
}

}  // namespace blip
