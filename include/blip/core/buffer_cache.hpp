// blip/core/buffer_cache.hpp: large tensor buffers kept for the next request
// instead of handed back to the operating system.
//
// Why: every request allocates its activations and caches afresh (the vision
// encoder's [577, 3072] MLP buffer, the text decoder's cross-attention keys and
// values: 42 MB for BLIP-base). glibc serves blocks this large with mmap, or
// from the top of its heap, and gives them back to the kernel on free (munmap,
// or a trim once the free top passes 2× its mmap threshold). The next request
// then takes a page fault on every 4 KiB page and the kernel zeroes each one
// again. On a VM, where a fault costs a hypervisor round trip, that was 20-35%
// of a BLIP-base caption (bf16: 650-800 ms with, 500-560 ms without;
// docs/performance.md). Keeping the freed blocks and handing them back out is
// what every serving framework's caching allocator does.
//
// What is kept: blocks of at least kMinimumCachedBytes, up to a total of
// 1 GiB (set_buffer_cache_limit changes it); beyond that the oldest are freed
// first. With 256 MiB a 4-image BLIP-base batch still faulted its pages in on
// every call (2.0-2.4 s against 1.2 s); an 8-image batch's cross-attention keys
// and values alone are 340 MB. A request takes the smallest cached block that
// fits with at most 1/8 to spare, so one request's buffers are reused by the
// next one of the same shapes. release_cached_buffers() gives everything back
// (after unloading a model, say). Memory that a reused block hands out is
// zero-filled, like a fresh one.
//
// Under AddressSanitizer the cache starts disabled, so ASan's quarantine keeps
// catching use-after-free in every test; a test that enables it gets cached
// blocks poisoned, so a stale pointer into one is still reported.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define BLIP_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLIP_ADDRESS_SANITIZER 1
#endif
#endif
#ifdef BLIP_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#endif

namespace blip {

struct BufferCacheStatistics {
  std::size_t cached_bytes = 0;   // held now, ready for reuse
  std::size_t cached_blocks = 0;
  std::size_t limit_bytes = 0;
  std::uint64_t reused = 0;       // allocations served from the cache so far
  std::uint64_t allocated = 0;    // cacheable-sized allocations that had to ask the system
};

namespace detail {

class BufferCache {
 public:
  static constexpr std::size_t kMinimumCachedBytes = std::size_t{256} << 10;
  static constexpr std::size_t kDefaultLimitBytes = std::size_t{1} << 30;
  static constexpr std::size_t kAlignment = 64;

  // One cache for the process. Never destroyed: tensors in static objects are
  // freed after main returns, and must still find it.
  static BufferCache& instance() {
    static BufferCache* const cache = new BufferCache();
    return *cache;
  }

  // `bytes` of zero-filled memory, 64-byte aligned; the last owner's release
  // hands it back to the cache (give), or to the system when it is not kept.
  std::shared_ptr<void> allocate(std::size_t bytes) {
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
    std::size_t capacity = rounded;
    void* memory = rounded >= kMinimumCachedBytes ? take(rounded, capacity) : nullptr;
    if (memory == nullptr) {
      memory = std::aligned_alloc(kAlignment, rounded);
      if (memory == nullptr) throw std::bad_alloc();
    }
    std::memset(memory, 0, rounded);
    return std::shared_ptr<void>(memory, [capacity](void* pointer) { instance().give(pointer, capacity); });
  }

  void set_limit(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    // Entries never allocate while a request runs: room for the most blocks
    // the limit can hold is reserved here.
    blocks_.reserve(std::min<std::size_t>(limit_ / kMinimumCachedBytes, kMaxEntries));
    evict_until(limit_, blocks_.capacity());
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    evict_until(0, 0);
  }

  BufferCacheStatistics statistics() const {
    std::lock_guard<std::mutex> lock(mutex_);
    BufferCacheStatistics statistics;
    statistics.cached_bytes = cached_bytes_;
    statistics.cached_blocks = blocks_.size();
    statistics.limit_bytes = limit_;
    statistics.reused = reused_;
    statistics.allocated = allocated_;
    return statistics;
  }

 private:
  struct Block {
    void* memory;
    std::size_t capacity;
    std::uint64_t freed_at;  // order of freeing, oldest first out
  };
  static constexpr std::size_t kMaxEntries = 4096;

  BufferCache() {
#ifdef BLIP_ADDRESS_SANITIZER
    limit_ = 0;
#else
    limit_ = kDefaultLimitBytes;
#endif
    blocks_.reserve(std::min<std::size_t>(limit_ / kMinimumCachedBytes, kMaxEntries));
  }

  // The smallest cached block of at least `bytes` with at most 1/8 to spare,
  // or null. Its size goes to `capacity`.
  void* take(std::size_t bytes, std::size_t& capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t best = blocks_.size();
    for (std::size_t index = 0; index < blocks_.size(); ++index) {
      const std::size_t size = blocks_[index].capacity;
      if (size >= bytes && size - bytes <= bytes / 8 && (best == blocks_.size() || size < blocks_[best].capacity)) {
        best = index;
      }
    }
    if (best == blocks_.size()) {
      ++allocated_;
      return nullptr;
    }
    const Block block = blocks_[best];
    blocks_[best] = blocks_.back();
    blocks_.pop_back();
    cached_bytes_ -= block.capacity;
    ++reused_;
    capacity = block.capacity;
#ifdef BLIP_ADDRESS_SANITIZER
    ASAN_UNPOISON_MEMORY_REGION(block.memory, block.capacity);
#endif
    return block.memory;
  }

  void give(void* memory, std::size_t capacity) {
    if (capacity >= kMinimumCachedBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (capacity <= limit_ && blocks_.capacity() > 0) {
        evict_until(limit_ - capacity, blocks_.capacity() - 1);  // room without growing the vector
        blocks_.push_back(Block{memory, capacity, ++frees_});
        cached_bytes_ += capacity;
#ifdef BLIP_ADDRESS_SANITIZER
        ASAN_POISON_MEMORY_REGION(memory, capacity);
#endif
        return;
      }
    }
    std::free(memory);
  }

  // Frees the oldest blocks until at most `bytes` and `entries` are held.
  // Called with the mutex held.
  void evict_until(std::size_t bytes, std::size_t entries) {
    while (!blocks_.empty() && (cached_bytes_ > bytes || blocks_.size() > entries)) {
      const auto oldest = std::min_element(blocks_.begin(), blocks_.end(),
                                           [](const Block& a, const Block& b) { return a.freed_at < b.freed_at; });
      cached_bytes_ -= oldest->capacity;
#ifdef BLIP_ADDRESS_SANITIZER
      ASAN_UNPOISON_MEMORY_REGION(oldest->memory, oldest->capacity);
#endif
      std::free(oldest->memory);
      *oldest = blocks_.back();
      blocks_.pop_back();
    }
  }

  mutable std::mutex mutex_;
  std::vector<Block> blocks_;
  std::size_t limit_ = 0;
  std::size_t cached_bytes_ = 0;
  std::uint64_t frees_ = 0, reused_ = 0, allocated_ = 0;
};

}  // namespace detail

// Sets how many bytes of freed tensor buffers are kept for reuse (0: none,
// and what is held now is freed). Applies to the whole process.
inline void set_buffer_cache_limit(std::size_t bytes) { detail::BufferCache::instance().set_limit(bytes); }

// Frees every cached buffer; later requests fill the cache again.
inline void release_cached_buffers() { detail::BufferCache::instance().release_all(); }

inline BufferCacheStatistics buffer_cache_statistics() { return detail::BufferCache::instance().statistics(); }

}  // namespace blip
