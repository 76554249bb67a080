// The buffer cache behind Tensor's storage (core/buffer_cache.hpp): a freed
// large buffer is handed to the next tensor of the same size, zero-filled; the
// limit, the eviction order and the size slack hold; small buffers and a zero
// limit bypass it.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "blip/core/buffer_cache.hpp"
#include "blip/core/tensor.hpp"

namespace core_buffer_cache_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;

constexpr std::int64_t kMiB = 1 << 20;

// Sets a limit for one test and puts the process default back afterwards.
struct CacheLimit {
  explicit CacheLimit(std::size_t bytes) : previous(buffer_cache_statistics().limit_bytes) {
    release_cached_buffers();
    set_buffer_cache_limit(bytes);
  }
  ~CacheLimit() {
    release_cached_buffers();
    set_buffer_cache_limit(previous);
  }
  std::size_t previous;
};

Tensor<float> floats(std::int64_t bytes) { return Tensor<float>(Shape{bytes / 4}); }

TEST_CASE("a freed large buffer is reused by the next tensor of its size, zero-filled") {
  const CacheLimit limit(64 * kMiB);
  const float* first_address = nullptr;
  {
    Tensor<float> first = floats(2 * kMiB);
    first_address = first.data();
    for (std::int64_t i = 0; i < first.numel(); ++i) first.data()[i] = 1.5f;
  }
  const BufferCacheStatistics held = buffer_cache_statistics();
  CHECK(held.cached_blocks == 1);
  CHECK(held.cached_bytes == static_cast<std::size_t>(2 * kMiB));

  Tensor<float> second = floats(2 * kMiB);
  const BufferCacheStatistics after = buffer_cache_statistics();
  CHECK(second.data() == first_address);
  CHECK(after.reused == held.reused + 1);
  CHECK(after.cached_blocks == 0);
  std::int64_t nonzero = 0;
  for (std::int64_t i = 0; i < second.numel(); ++i) nonzero += second.data()[i] != 0.0f;
  CHECK(nonzero == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(second.data()) % 64 == 0);
}

TEST_CASE("a cached block serves a request at most 1/8 smaller, and the smallest that fits is taken") {
  const CacheLimit limit(64 * kMiB);
  const float *one_mebibyte = nullptr, *two_mebibytes = nullptr;
  {
    Tensor<float> a = floats(kMiB), b = floats(2 * kMiB);
    one_mebibyte = a.data();
    two_mebibytes = b.data();
  }
  {
    const Tensor<float> half = floats(kMiB / 2);  // 1 MiB would leave half unused: not taken
    CHECK(half.data() != one_mebibyte);
    CHECK(half.data() != two_mebibytes);
  }
  const Tensor<float> slightly_smaller = floats(kMiB - 64 * 1024);
  CHECK(slightly_smaller.data() == one_mebibyte);
  const Tensor<float> larger = floats(2 * kMiB - 4096);
  CHECK(larger.data() == two_mebibytes);
}

TEST_CASE("the limit holds: the oldest freed blocks go first") {
  const CacheLimit limit(3 * kMiB);
  std::vector<const float*> addresses;
  {
    std::vector<Tensor<float>> tensors;
    for (int i = 0; i < 4; ++i) {
      tensors.push_back(floats(kMiB));
      addresses.push_back(tensors.back().data());
    }
    // Freed in order 0, 1, 2, 3.
    for (auto& tensor : tensors) tensor = Tensor<float>();
  }
  const BufferCacheStatistics held = buffer_cache_statistics();
  CHECK(held.cached_blocks == 3);
  CHECK(held.cached_bytes == static_cast<std::size_t>(3 * kMiB));
  // Block 0, the oldest, was freed; 1, 2 and 3 are served back.
  std::vector<Tensor<float>> again;
  for (int i = 0; i < 3; ++i) again.push_back(floats(kMiB));
  for (const Tensor<float>& tensor : again) CHECK(tensor.data() != addresses[0]);
  CHECK(buffer_cache_statistics().cached_blocks == 0);
}

TEST_CASE("a block larger than the limit, small buffers and a zero limit bypass the cache") {
  {
    const CacheLimit limit(kMiB);
    { const Tensor<float> large = floats(2 * kMiB); }
    { const Tensor<float> small = floats(64 * 1024); }
    CHECK(buffer_cache_statistics().cached_blocks == 0);
  }
  {
    const CacheLimit limit(0);
    { const Tensor<float> large = floats(kMiB); }
    CHECK(buffer_cache_statistics().cached_blocks == 0);
  }
}

TEST_CASE("lowering the limit and release_cached_buffers free what is held") {
  const CacheLimit limit(8 * kMiB);
  {
    const Tensor<float> a = floats(kMiB), b = floats(kMiB), c = floats(kMiB);
  }
  CHECK(buffer_cache_statistics().cached_bytes == static_cast<std::size_t>(3 * kMiB));
  set_buffer_cache_limit(2 * kMiB);
  CHECK(buffer_cache_statistics().cached_bytes == static_cast<std::size_t>(2 * kMiB));
  release_cached_buffers();
  CHECK(buffer_cache_statistics().cached_blocks == 0);
}

TEST_CASE("tensors allocated and freed from several threads at once") {
  const CacheLimit limit(16 * kMiB);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int round = 0; round < 200; ++round) {
        Tensor<float> tensor = floats((1 + (round + t) % 3) * kMiB / 2);
        failures[t] += tensor.data()[tensor.numel() - 1] != 0.0f;
        tensor.data()[0] = static_cast<float>(t + 1);
        tensor.data()[tensor.numel() - 1] = static_cast<float>(round);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int count : failures) CHECK(count == 0);
  CHECK(buffer_cache_statistics().cached_bytes <= static_cast<std::size_t>(16 * kMiB));
}

}  // namespace core_buffer_cache_test
