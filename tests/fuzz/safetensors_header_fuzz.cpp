// libFuzzer target: any byte string given to the safetensors reader must
// either load into an internally consistent file (every tensor inside the
// data section, byte counts matching shapes, ranges tiling the data) or throw
// blip::Error. Any other exception, sanitizer report or broken invariant is a
// finding. The input is the whole file: size field, header and data.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "fuzz_support.hpp"

using blip::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy into a buffer of exactly `size` bytes so any read past the end is an
  // AddressSanitizer report, not a silent read of libFuzzer's own memory.
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const blip::SafetensorsFile file = blip::SafetensorsFile::from_memory(bytes.data(), bytes.size(), "fuzz-input");
    const std::uint64_t data_start = 8 + file.header_size();
    require(data_start <= size, "header inside the input");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const blip::TensorInfo& info : file.tensors()) {
      require(file.contains(info.name) && &file.info(info.name) == &info, "lookup by name");
      require(info.data_begin >= data_start && info.data_begin <= info.data_end && info.data_end <= size,
              "range inside the data section");
      require(info.bytes() == static_cast<std::uint64_t>(info.shape.numel()) * blip::dtype_size(info.dtype),
              "byte count matches shape");
      ranges.emplace_back(info.data_begin, info.data_end);
      // Reading converts every element: out-of-range reads would be ASan reports.
      const blip::Tensor<const float> values = file.to_f32(info.name);
      require(values.numel() == info.shape.numel(), "to_f32 size");
      if (info.dtype == blip::DType::I64 || info.dtype == blip::DType::I32 || info.dtype == blip::DType::U8 ||
          info.dtype == blip::DType::I8)
        require(file.to_i64(info.name).numel() == info.shape.numel(), "to_i64 size");
    }
    std::sort(ranges.begin(), ranges.end());
    std::uint64_t covered = data_start;
    for (const auto& [begin, end] : ranges) {
      require(begin == covered, "ranges tile the data section");
      covered = end;
    }
    require(covered == size, "ranges reach the end of the file");
  } catch (const blip::Error&) {
    // Rejected with a message: the expected outcome for most inputs.
  }
  return 0;
}
