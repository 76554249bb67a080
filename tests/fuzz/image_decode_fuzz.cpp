// libFuzzer target: image files through decode_image (JPEG, PNG, BMP, GIF,
// binary PPM/PGM, EXIF orientation) and BLIP's preprocessing. Any byte string
// must decode to a consistent RGB image or throw blip::Error; a decoded image
// must preprocess to finite pixel values. The pixel limit is lowered (65,536
// pixels, e.g. 256x256: every format's multi-block, interlaced and progressive
// paths still run) so that a header claiming a large image is refused rather
// than decoded slowly: at 2^20 pixels the fuzzer ran about 70 inputs a second.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "blip/io/image.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exact-size copy, so a read past the end is an AddressSanitizer report.
  const std::vector<std::uint8_t> bytes(data, data + size);
  blip::Image image;
  try {
    image = blip::decode_image(bytes.data(), bytes.size(), "fuzz-image", /*max_pixels=*/1 << 16);
  } catch (const blip::Error&) {
    return 0;
  }
  blip::fuzz::require(image.width > 0 && image.height > 0, "a decoded image has a size");
  blip::fuzz::require(image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3, "RGB bytes");
  blip::ImageProcessorConfig config;
  config.height = 8;
  config.width = 12;
  const blip::Tensor<float> pixels = blip::preprocess(image, config);
  for (std::int64_t i = 0; i < pixels.numel(); ++i)
    blip::fuzz::require(std::isfinite(pixels.data()[i]), "finite pixels");
  return 0;
}
