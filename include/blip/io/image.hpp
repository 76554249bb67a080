// blip/io/image.hpp: loading an image and turning it into BLIP's pixel_values,
// the way Hugging Face does.
//
// HF's pipeline for one image (transformers.image_utils.load_image followed by
// BlipImageProcessor, verified bit for bit against fixtures made with
// Pillow 9.4 / numpy 1.24):
//   1. PIL.Image.open + decode. Here: stb_image, for JPEG, PNG, BMP, GIF (first
//      frame) and binary PGM/PPM. PNG, BMP, GIF and PNM decode to the same bytes
//      as Pillow (GIF after repainting transparent pixels, see GifFirstFrame).
//      JPEG does not quite: stb_image's IDCT and chroma upsampling differ from
//      libjpeg-turbo's (JDCT_ISLOW, fancy upsampling), so 1-6% of the bytes are
//      off by 1-3 on real photos (measured; see tests/unit/io_image_test.cpp),
//      which moves pixel_values by at most a few 1/255/std. Files Pillow rejects
//      (truncated JPEG/PNG/BMP/GIF, bad PNG header checksums) are rejected too;
//      variants where stb_image and Pillow disagree (16-bit BMP, PNM maxval !=
//      255, unmarked or YCCK 4-channel JPEG) are refused rather than decoded
//      differently. Where stb_image itself is lax, the header is checked here
//      first: it reads missing BMP and PNM pixels as zeros (Pillow: "image
//      file is truncated"), and reports a top-down BMP's height as negative.
//   2. PIL.ImageOps.exif_transpose: EXIF Orientation 2..8 applied (exif.hpp).
//   3. .convert("RGB"): gray -> R = G = B; alpha (LA, RGBA, palette or tRNS
//      transparency) is DROPPED, with no compositing: fully transparent pixels
//      keep the RGB stored in the file. 16-bit PNG: Pillow keeps the high byte
//      of RGB(A)/LA samples, but opens 16-bit grayscale as 32-bit integers that
//      convert to RGB by clamping to 0..255 (not by scaling); both mirrored.
//   4. Resize to height x width with PIL bicubic, no crop, no aspect ratio kept
//      (resize.hpp, bit-exact with Pillow's fixed-point code).
//   5. Rescale: float32(u8 * rescale_factor), the product in double.
//   6. Normalize in float32: (x - mean[c]) / std[c] (a division: multiplying by
//      1/std differs in the last bit), then HWC -> CHW.
//
// Errors: every failure throws blip::Error naming the file and what is wrong
// (missing, not a regular file, larger than kMaxImageFileBytes, empty,
// truncated, not an image, too many pixels, ...).
#pragma once

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/io/exif.hpp"
#include "blip/io/json_file.hpp"
#include "blip/io/resize.hpp"

namespace blip {

// An 8-bit RGB image: `rgb` holds height rows of width * 3 bytes (R, G, B),
// top row first, no padding.
struct Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;

  bool empty() const { return width <= 0 || height <= 0; }
  const std::uint8_t* pixel(int x, int y) const { return rgb.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
  std::uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
};

// Pillow's Image.MAX_IMAGE_PIXELS. Above it Pillow only warns; it raises
// DecompressionBombError above twice that, so HF's load_image accepts images up
// to 2 * 89,478,485 pixels. The default limit here is that same error threshold.
constexpr std::int64_t kPillowMaxImagePixels = 89'478'485;
constexpr std::int64_t kDefaultMaxImagePixels = 2 * kPillowMaxImagePixels;
// The largest image file load_image reads: an uncompressed image at the pixel
// limit (a 24-bit BMP or a PPM) takes 537 MB.
constexpr std::uint64_t kMaxImageFileBytes = 1024 * kMebibyte;

// PIL.Image.Transpose operations.
enum class Transpose { FlipLeftRight, FlipTopBottom, Rotate90, Rotate180, Rotate270, Transpose, Transverse };

// Image.transpose(method). Rotate90 is counter-clockwise, Rotate270 clockwise
// (PIL's convention); Transpose mirrors across the main diagonal, Transverse
// across the other one.
inline Image transpose(const Image& image, Transpose method) {
  check(image.rgb.size() == static_cast<std::size_t>(std::max(image.width, 0)) * std::max(image.height, 0) * 3,
        "transpose: image is ", image.width, "x", image.height, " but holds ", image.rgb.size(), " bytes");
  const int width = image.width, height = image.height;
  const bool swaps = method == Transpose::Rotate90 || method == Transpose::Rotate270 ||
                     method == Transpose::Transpose || method == Transpose::Transverse;
  Image result;
  result.width = swaps ? height : width;
  result.height = swaps ? width : height;
  result.rgb.resize(image.rgb.size());
  for (int y = 0; y < result.height; ++y) {
    for (int x = 0; x < result.width; ++x) {
      int source_x = x, source_y = y;
      switch (method) {
        case Transpose::FlipLeftRight: source_x = width - 1 - x; break;
        case Transpose::FlipTopBottom: source_y = height - 1 - y; break;
        case Transpose::Rotate180:
          source_x = width - 1 - x;
          source_y = height - 1 - y;
          break;
        case Transpose::Transpose:
          source_x = y;
          source_y = x;
          break;
        case Transpose::Rotate270:
          source_x = y;
          source_y = height - 1 - x;
          break;
        case Transpose::Transverse:
          source_x = width - 1 - y;
          source_y = height - 1 - x;
          break;
        case Transpose::Rotate90:
          source_x = width - 1 - y;
          source_y = x;
          break;
      }
      std::memcpy(result.pixel(x, y), image.pixel(source_x, source_y), 3);
    }
  }
  return result;
}

// ImageOps.exif_transpose for a known Orientation value: 2..8 transform the
// pixels, anything else returns the image unchanged.
inline Image exif_transpose(const Image& image, std::int64_t orientation) {
  switch (orientation) {
    case exif::kOrientationFlipLeftRight: return transpose(image, Transpose::FlipLeftRight);
    case exif::kOrientationRotate180: return transpose(image, Transpose::Rotate180);
    case exif::kOrientationFlipTopBottom: return transpose(image, Transpose::FlipTopBottom);
    case exif::kOrientationTranspose: return transpose(image, Transpose::Transpose);
    case exif::kOrientationRotate270: return transpose(image, Transpose::Rotate270);
    case exif::kOrientationTransverse: return transpose(image, Transpose::Transverse);
    case exif::kOrientationRotate90: return transpose(image, Transpose::Rotate90);
    default: return image;
  }
}

namespace image_detail {

enum class Format { Jpeg, Png, Bmp, Gif, Pnm, Unknown };

inline bool has_prefix(const std::uint8_t* data, std::size_t size, const char* prefix, std::size_t prefix_size) {
  return size >= prefix_size && std::memcmp(data, prefix, prefix_size) == 0;
}

// The formats this loader accepts, recognised by their signatures. stb_image
// can also read TGA, PSD, HDR and PIC; they are refused: Pillow cannot open HDR
// or PIC at all, and stb's TGA/PSD readers have not been checked against
// Pillow's (and TGA has no signature, so any garbage could "be" one).
inline Format sniff_format(const std::uint8_t* data, std::size_t size) {
  if (has_prefix(data, size, "\xFF\xD8\xFF", 3)) return Format::Jpeg;
  if (has_prefix(data, size, "\x89PNG\r\n\x1A\n", 8)) return Format::Png;
  if (has_prefix(data, size, "BM", 2)) return Format::Bmp;
  if (has_prefix(data, size, "GIF87a", 6) || has_prefix(data, size, "GIF89a", 6)) return Format::Gif;
  if (size >= 3 && data[0] == 'P' && (data[1] == '5' || data[1] == '6') &&
      (data[2] == ' ' || data[2] == '\n' || data[2] == '\r' || data[2] == '\t'))
    return Format::Pnm;
  return Format::Unknown;
}

inline std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

inline std::uint32_t read_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
inline std::uint32_t read_le16(const std::uint8_t* p) { return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8; }

// BMP checks stb_image does not make: it reads missing pixel bytes as zeros,
// where Pillow reports "image file is truncated". 16-bit BMPs are refused:
// stb widens 5-bit channels by bit replication, Pillow by v * 255 / 31, and
// the two differ for about half of the values.
// Width and height as a file's header declares them (before any decoding).
struct DeclaredSize {
  std::int64_t width = 0, height = 0;
};

inline DeclaredSize check_bmp(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size < 26) fail(name, ": truncated BMP header (", size, " bytes)");
  const std::uint32_t pixel_offset = read_le32(data + 10);
  const std::uint32_t header_size = read_le32(data + 14);
  std::int64_t width, height;
  std::uint32_t bits_per_pixel, compression = 0;
  if (header_size == 12) {
    width = read_le16(data + 18);
    height = read_le16(data + 20);
    bits_per_pixel = read_le16(data + 24);
  } else {
    if (size < 34) fail(name, ": truncated BMP header (", size, " bytes)");
    width = static_cast<std::int32_t>(read_le32(data + 18));
    height = static_cast<std::int32_t>(read_le32(data + 22));
    bits_per_pixel = read_le16(data + 28);
    compression = read_le32(data + 30);
  }
  if (bits_per_pixel == 16)
    fail(name, ": 16-bit BMP is not supported (its 5/6-bit channels would not expand to 8 bits the way Pillow does)");
  // Uncompressed (BI_RGB) and bit-field layouts: the pixel array size is known.
  // Header values can be anything: rows x row bytes is compared by division, as
  // the product can exceed 64 bits.
  if (width > 0 && (compression == 0 || compression == 3 || compression == 6)) {
    const std::uint64_t rows = static_cast<std::uint64_t>(height < 0 ? -height : height);
    const std::uint64_t row_bytes = (static_cast<std::uint64_t>(width) * bits_per_pixel + 31) / 32 * 4;
    const std::uint64_t available = size > pixel_offset ? size - pixel_offset : 0;
    if (row_bytes > 0 && rows > available / row_bytes)
      fail(name, ": truncated BMP (the pixel data needs ", rows, " rows of ", row_bytes, " bytes from byte ",
           pixel_offset, ", the file has ", size, " bytes)");
  }
  return DeclaredSize{width, height < 0 ? -height : height};
}

// Binary PGM/PPM: only maxval 255 is accepted. For other maxvals Pillow
// rescales samples to 0..255 (or opens 16-bit gray as 32-bit integers) while
// stb_image keeps the raw bytes (or the high byte). The samples must all be
// there: stb_image reads missing ones as zeros, Pillow refuses the file.
inline DeclaredSize check_pnm(const std::uint8_t* data, std::size_t size, const std::string& name) {
  std::size_t position = 2;
  std::int64_t fields[3] = {0, 0, 0};  // width, height, maxval
  for (int field = 0; field < 3; ++field) {
    while (position < size) {  // whitespace and # comments
      const std::uint8_t c = data[position];
      if (c == '#') {
        while (position < size && data[position] != '\n' && data[position] != '\r') ++position;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
        ++position;
      } else {
        break;
      }
    }
    if (position >= size || data[position] < '0' || data[position] > '9') fail(name, ": malformed PNM header");
    while (position < size && data[position] >= '0' && data[position] <= '9' && fields[field] < (1 << 30))
      fields[field] = fields[field] * 10 + (data[position++] - '0');
  }
  if (fields[2] != 255)
    fail(name, ": PNM with maxval ", fields[2], " is not supported (only 255: Pillow rescales other ranges, ",
         "stb_image does not)");
  if (fields[0] >= (1 << 30) || fields[1] >= (1 << 30))
    fail(name, ": PNM size ", fields[0], "x", fields[1], " is too large");
  // One whitespace byte ends the header, then width * height samples of 1 (P5) or 3 (P6) bytes.
  const std::int64_t channels = data[1] == '6' ? 3 : 1;
  const std::int64_t needed = static_cast<std::int64_t>(position) + 1 + fields[0] * fields[1] * channels;
  if (needed > static_cast<std::int64_t>(size))
    fail(name, ": truncated PNM (the pixel data needs ", needed, " bytes, the file has ", size, ")");
  return DeclaredSize{fields[0], fields[1]};
}

// What Pillow gives the pixels stb_image leaves transparent in the first GIF
// frame. Pillow opens a GIF as a palette image and convert("RGB") looks every
// index up in the palette, transparent or not; pixels outside the first
// frame's rectangle hold the transparent index when there is one, else index
// 0. stb_image instead returns RGBA with alpha 0 (and RGB 0) for transparent
// pixels and fills the outside with its background rules. This records what
// is needed to repaint those pixels like Pillow.
struct GifFirstFrame {
  std::vector<std::uint8_t> palette;  // the frame's palette (local, else global), RGB triples
  int transparent_index = -1;         // from a graphic control extension before the frame
  int left = 0, top = 0, width = 0, height = 0;
};

inline GifFirstFrame scan_gif(const std::uint8_t* data, std::size_t size, const std::string& name) {
  auto need = [&](std::size_t position, std::size_t count) {
    if (position + count > size) fail(name, ": truncated GIF (", size, " bytes)");
  };
  GifFirstFrame frame;
  need(0, 13);
  std::vector<std::uint8_t> global_palette;
  std::size_t position = 13;
  if (data[10] & 0x80) {
    const std::size_t bytes = 3u << ((data[10] & 7) + 1);
    need(position, bytes);
    global_palette.assign(data + position, data + position + bytes);
    position += bytes;
  }
  auto skip_sub_blocks = [&]() {
    while (true) {
      need(position, 1);
      const std::size_t length = data[position++];
      if (length == 0) return;
      need(position, length);
      position += length;
    }
  };
  while (true) {
    need(position, 1);
    const std::uint8_t introducer = data[position++];
    if (introducer == 0x21) {  // extension
      need(position, 1);
      const std::uint8_t label = data[position++];
      // Pillow: a graphic control extension with the transparency flag sets the
      // transparent index; one without the flag leaves it as it was.
      if (label == 0xF9 && position + 5 <= size && data[position] >= 4 && (data[position + 1] & 1))
        frame.transparent_index = data[position + 4];
      skip_sub_blocks();
    } else if (introducer == 0x2C) {  // image descriptor of the first frame
      need(position, 9);
      frame.left = static_cast<int>(read_le16(data + position));
      frame.top = static_cast<int>(read_le16(data + position + 2));
      frame.width = static_cast<int>(read_le16(data + position + 4));
      frame.height = static_cast<int>(read_le16(data + position + 6));
      const std::uint8_t flags = data[position + 8];
      position += 9;
      if (flags & 0x80) {
        const std::size_t bytes = 3u << ((flags & 7) + 1);
        need(position, bytes);
        frame.palette.assign(data + position, data + position + bytes);
        position += bytes;
      } else {
        frame.palette = global_palette;
      }
      need(position, 1);  // LZW minimum code size
      position += 1;
      skip_sub_blocks();  // the image data must be complete (Pillow: "image file is truncated")
      if (frame.palette.empty())
        fail(name, ": GIF without a color table is not supported (Pillow reads its indices as gray levels)");
      return frame;
    } else {
      fail(name, ": GIF has no image (", introducer == 0x3B ? "trailer" : "unexpected block",
           " before the first frame)");
    }
  }
}

// Repaints stb's transparent / uncovered pixels with the colors Pillow gives them.
inline void repaint_gif(std::uint8_t* rgba, int width, int height, const GifFirstFrame& frame) {
  auto palette_color = [&](int index, std::uint8_t* out) {
    const std::size_t offset = static_cast<std::size_t>(index) * 3;
    for (int c = 0; c < 3; ++c) out[c] = offset + 2 < frame.palette.size() ? frame.palette[offset + c] : 0;
  };
  // Both the transparent pixels and the outside take the transparent index's
  // color; without transparency the outside is index 0.
  std::uint8_t fill_color[3];
  palette_color(frame.transparent_index >= 0 ? frame.transparent_index : 0, fill_color);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      std::uint8_t* pixel = rgba + (static_cast<std::size_t>(y) * width + x) * 4;
      const bool inside =
          x >= frame.left && x < frame.left + frame.width && y >= frame.top && y < frame.top + frame.height;
      if (!inside || (pixel[3] == 0 && frame.transparent_index >= 0)) std::memcpy(pixel, fill_color, 3);
    }
  }
}

// stb output (1 = L, 2 = LA, 3 = RGB, 4 = RGBA) -> RGB, as PIL's convert("RGB").
template <class Sample, class ToByte>
inline Image to_rgb(const Sample* samples, int width, int height, int channels, ToByte to_byte) {
  Image image;
  image.width = width;
  image.height = height;
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  image.rgb.resize(pixels * 3);
  std::uint8_t* out = image.rgb.data();
  for (std::size_t i = 0; i < pixels; ++i) {
    const Sample* in = samples + i * channels;
    if (channels <= 2) {  // L or LA: replicate L, drop alpha
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = to_byte(in[0]);
    } else {  // RGB or RGBA: drop alpha, no compositing
      out[3 * i] = to_byte(in[0]);
      out[3 * i + 1] = to_byte(in[1]);
      out[3 * i + 2] = to_byte(in[2]);
    }
  }
  return image;
}

struct StbFree {
  void operator()(void* pointer) const { stbi_image_free(pointer); }
};

}  // namespace image_detail

// Decodes an image file held in memory and returns it as HF's
// load_image(path) would: EXIF orientation applied, converted to RGB.
// `name_for_errors` (usually the path) starts every error message.
// `max_pixels` (width * height) guards against decompression bombs; <= 0
// disables the check.
inline Image decode_image(const std::uint8_t* bytes, std::size_t size, const std::string& name_for_errors,
                          std::int64_t max_pixels = kDefaultMaxImagePixels) {
  using namespace image_detail;
  const std::string& name = name_for_errors;
  if (size == 0) fail(name, ": empty file (0 bytes), not an image");
  check(bytes != nullptr, name, ": null image data");
  check(size <= static_cast<std::size_t>(INT_MAX), name, ": ", size, " bytes is more than the decoder accepts (2 GiB)");

  const Format format = sniff_format(bytes, size);
  const std::uint8_t* decode_bytes = bytes;
  std::size_t decode_size = size;
  std::vector<std::uint8_t> patched;  // a PNG completed with IEND
  std::optional<std::int64_t> orientation;
  bool gray16 = false;
  std::optional<GifFirstFrame> gif;
  DeclaredSize declared;
  std::string jpeg_table_error;  // a Huffman / quantization table a JPEG uses but never defines
  switch (format) {
    case Format::Unknown:
      fail(name, ": not a supported image (unrecognised signature; supported formats: JPEG, PNG, BMP, GIF, ",
           "binary PPM/PGM)");
    case Format::Jpeg: {
      const exif::JpegScan scan = exif::scan_jpeg(bytes, size);
      if (!scan.complete)
        fail(name, ": truncated JPEG (no end-of-image marker in its ", size,
             " bytes; Pillow rejects it as 'image file is truncated')");
      jpeg_table_error = scan.table_error;  // reported after the pixel limit, which comes first
      orientation = exif::jpeg_orientation(scan);
      declared = DeclaredSize{scan.width, scan.height};
      // Adobe CMYK (what Photoshop and libjpeg write) converts like Pillow's
      // CMYK -> RGB (measured within 1); YCCK and marker-less 4-channel JPEGs
      // are interpreted differently by stb_image and Pillow.
      if (scan.components == 4 && scan.adobe_transform != 0)
        fail(name, ": 4-channel JPEG without an Adobe CMYK marker (YCCK or unmarked) is not supported");
      break;
    }
    case Format::Png: {
      const exif::PngScan scan = exif::scan_png(bytes, size);
      if (!scan.error.empty()) fail(name, ": ", scan.error);
      if (scan.cgbi) fail(name, ": Apple CgBI PNG is not supported (Pillow cannot read it either)");
      orientation = exif::png_orientation(scan);
      gray16 = scan.bit_depth == 16 && scan.color_type == 0;
      declared = DeclaredSize{scan.width, scan.height};
      if (!scan.has_iend) {
        // Pillow stops at the end of the image data; stb_image wants IEND.
        const std::size_t kept = std::min(scan.chunks_end, size);
        patched.assign(bytes, bytes + kept);
        patched.resize(scan.chunks_end, 0);  // a CRC cut off by the end of the file (never checked)
        static const std::uint8_t kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
        patched.insert(patched.end(), kIend, kIend + 12);
        decode_bytes = patched.data();
        decode_size = patched.size();
      }
      break;
    }
    case Format::Bmp: declared = check_bmp(bytes, size, name); break;
    case Format::Gif:
      gif = scan_gif(bytes, size, name);  // checks that the 13-byte screen descriptor is there
      declared = DeclaredSize{read_le16(bytes + 6), read_le16(bytes + 8)};  // Pillow's size: the logical screen
      break;
    case Format::Pnm: declared = check_pnm(bytes, size, name); break;
  }
  // The pixel limit applies to the declared size before anything is allocated
  // (stb_image refuses some huge headers with only "unknown image type").
  auto check_pixel_limit = [&](std::int64_t width, std::int64_t height) {
    // Every declared side is below 2^32, so the product fits 64 unsigned bits.
    const std::uint64_t pixels = static_cast<std::uint64_t>(std::max<std::int64_t>(width, 0)) *
                                 static_cast<std::uint64_t>(std::max<std::int64_t>(height, 0));
    if (max_pixels > 0 && pixels > static_cast<std::uint64_t>(max_pixels))
      fail(name, ": image is ", width, "x", height, " = ", pixels, " pixels, above the limit of ", max_pixels,
           " (a decompression-bomb guard, like Pillow's; pass a larger max_pixels to load it anyway)");
  };
  check_pixel_limit(declared.width, declared.height);
  // stb_image would read the undefined table's uninitialised memory (found by image_decode_fuzz).
  if (!jpeg_table_error.empty()) fail(name, ": ", jpeg_table_error);

  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(decode_bytes, static_cast<int>(decode_size), &width, &height, &channels))
    fail(name, ": cannot read the image header (stb_image: ", stb_reason(), ")");
  // stb_image's BMP header reader gives a top-down BMP (negative height) as is;
  // its decoder flips such rows itself. check_bmp has the size.
  if (format == Format::Bmp) height = static_cast<int>(declared.height);
  if (width <= 0 || height <= 0) fail(name, ": image has zero size (", width, "x", height, ")");
  check_pixel_limit(width, height);

  // stb can flip images vertically on load; that switch is global and may have
  // been set by someone else. The thread-local override keeps this thread's
  // decodes upright (it stays set on this thread).
  stbi_set_flip_vertically_on_load_thread(0);
  Image image;
  int decoded_width = 0, decoded_height = 0;
  if (gray16) {
    std::unique_ptr<stbi_us, StbFree> samples(stbi_load_16_from_memory(decode_bytes, static_cast<int>(decode_size),
                                                                       &decoded_width, &decoded_height, &channels, 0));
    if (!samples) fail(name, ": cannot decode the PNG (stb_image: ", stb_reason(), ")");
    check(channels >= 1 && channels <= 4, name, ": decoder returned ", channels, " channels");
    // Pillow opens 16-bit grayscale as mode "I"; convert("RGB") clamps to 0..255.
    image = image_detail::to_rgb(samples.get(), decoded_width, decoded_height, channels,
                                 [](stbi_us v) { return static_cast<std::uint8_t>(v > 255 ? 255 : v); });
  } else {
    // stb reduces other 16-bit PNGs to their high byte, as Pillow does.
    std::unique_ptr<stbi_uc, StbFree> samples(stbi_load_from_memory(decode_bytes, static_cast<int>(decode_size),
                                                                    &decoded_width, &decoded_height, &channels, 0));
    if (!samples) fail(name, ": cannot decode the image (stb_image: ", stb_reason(), ")");
    check(channels >= 1 && channels <= 4, name, ": decoder returned ", channels, " channels");
    if (gif && channels == 4) repaint_gif(samples.get(), decoded_width, decoded_height, *gif);
    image = image_detail::to_rgb(samples.get(), decoded_width, decoded_height, channels, [](stbi_uc v) { return v; });
  }
  if (orientation) image = exif_transpose(image, *orientation);
  return image;
}

// Reads and decodes an image file (a regular file of at most
// kMaxImageFileBytes); see decode_image.
inline Image load_image(const std::string& path, std::int64_t max_pixels = kDefaultMaxImagePixels) {
  const std::string bytes = read_regular_file(path, kMaxImageFileBytes, "an image file");
  return decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), path, max_pixels);
}

// Pillow's Image.resize((width, height), filter) of an RGB image.
inline Image resize(const Image& image, int width, int height, ResampleFilter filter) {
  check(!image.empty() && image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
        "resize: input image is ", image.width, "x", image.height, " with ", image.rgb.size(),
        " bytes, expected a non-empty RGB image");
  check(width > 0 && height > 0, "resize: cannot resize to ", width, "x", height,
        ", expected a positive width and height");
  Image result;
  result.width = width;
  result.height = height;
  result.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  resample_u8(image.rgb.data(), image.width, image.height, 3, result.rgb.data(), width, height, filter);
  return result;
}

// Pillow's Image.resize((width, height), resample=BICUBIC, reducing_gap=None).
inline Image resize_bicubic(const Image& image, int width, int height) {
  return resize(image, width, height, ResampleFilter::Bicubic);
}

// ---- BlipImageProcessor ---------------------------------------------------

// The fields of a preprocessor_config.json that BlipImageProcessor uses,
// defaulting to BlipImageProcessor's own defaults.
struct ImageProcessorConfig {
  int height = 384, width = 384;  // "size": {"height", "width"} or an int (square)
  bool do_resize = true, do_rescale = true, do_normalize = true;
  // Accepted for completeness; a no-op here because Image is always RGB, as
  // HF's load_image output already is.
  bool do_convert_rgb = true;
  int resample = 3;  // PIL filter number: 3 = BICUBIC
  double rescale_factor = 1.0 / 255.0;
  // OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, cast to float32 as HF's normalize does.
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
};

namespace image_detail {

// Python truthiness of a JSON flag (HF treats null as "falsy").
inline bool json_flag(const nlohmann::json& value, const std::string& key, const std::string& source) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_null()) return false;
  if (value.is_number()) return value.get<double>() != 0.0;
  fail(source, ": \"", key, "\" must be true or false, got ", clip(value.dump()));
}

inline int json_positive_int(const nlohmann::json& value, const std::string& key, const std::string& source) {
  if (!json_is_int64(value) || value.get<std::int64_t>() <= 0 || value.get<std::int64_t>() > (1 << 24))
    fail(source, ": \"", key, "\" must be a positive integer, got ", clip(value.dump()));
  return static_cast<int>(value.get<std::int64_t>());
}

// A number a float holds. The pixel arithmetic is float32, as in HF; 1e300 would become inf (a
// double-to-float conversion out of range is undefined behaviour besides) and every pixel with it.
inline float json_float(const nlohmann::json& value, const std::string& what, const std::string& source) {
  const double number = value.get<double>();
  if (!(std::fabs(number) <= static_cast<double>(std::numeric_limits<float>::max())))
    fail(source, ": ", what, " must be a number within float range (|x| <= 3.4e38), got ", clip(value.dump()));
  return static_cast<float>(number);
}

inline std::array<float, 3> json_channel_values(const nlohmann::json& value, const std::string& key,
                                                const std::string& source) {
  std::array<float, 3> result{};
  if (value.is_number()) {
    result.fill(json_float(value, "\"" + key + "\"", source));
    return result;
  }
  if (!value.is_array() || value.size() != 3)
    fail(source, ": \"", key, "\" must be a number or a list of 3 numbers (one per RGB channel), got ",
         clip(value.dump()));
  for (std::size_t c = 0; c < 3; ++c) {
    if (!value[c].is_number()) fail(source, ": \"", key, "\"[", c, "] must be a number, got ", clip(value[c].dump()));
    result[c] = json_float(value[c], "\"" + key + "\"[" + std::to_string(c) + "]", source);
  }
  return result;
}

inline void validate_config(const ImageProcessorConfig& config, const std::string& source) {
  check(config.height > 0 && config.width > 0, source, ": image size ", config.width, "x", config.height,
        " must be positive");
  (void)resample_filter_from_pil(config.resample, source);
  for (int c = 0; c < 3; ++c) check(config.image_std[c] != 0.0f, source, ": image_std[", c, "] is zero");
}

}  // namespace image_detail

// Reads BlipImageProcessor settings from a parsed preprocessor_config.json.
// `source` names the file in error messages.
inline ImageProcessorConfig parse_image_processor_config(const nlohmann::json& json, const std::string& source) {
  using namespace image_detail;
  if (!json.is_object()) fail(source, ": expected a JSON object, got ", json.type_name());
  ImageProcessorConfig config;
  if (auto it = json.find("image_processor_type"); it != json.end() && !it->is_null()) {
    // Other processors (CLIPImageProcessor: shortest-edge resize + center crop, ...)
    // would need a different pipeline; refuse rather than compute wrong pixels.
    if (!it->is_string() || it->get<std::string>() != "BlipImageProcessor")
      fail(source, ": image_processor_type is ", clip(it->dump()), ", only BlipImageProcessor is supported");
  }
  if (auto it = json.find("size"); it != json.end() && !it->is_null()) {
    const nlohmann::json& size = *it;
    if (size.is_number_integer()) {  // get_size_dict(int, default_to_square=True)
      config.height = config.width = json_positive_int(size, "size", source);
    } else if (size.is_array() && size.size() == 2) {  // (height, width)
      config.height = json_positive_int(size[0], "size[0]", source);
      config.width = json_positive_int(size[1], "size[1]", source);
    } else if (size.is_object() && size.contains("height") && size.contains("width") && size.size() == 2) {
      config.height = json_positive_int(size["height"], "size.height", source);
      config.width = json_positive_int(size["width"], "size.width", source);
    } else {
      fail(source, ": \"size\" must be an int or {\"height\": H, \"width\": W} for BlipImageProcessor, got ",
           clip(size.dump()));
    }
  }
  if (auto it = json.find("resample"); it != json.end()) {
    if (it->is_null()) {
      config.resample = 2;  // HF's resize() falls back to BILINEAR when resample is None
    } else if (it->is_number_integer()) {
      const std::int64_t resample = json_integer(*it, source, "\"resample\"");
      // Refused before the narrowing to int, which would turn 2^32 + 2 into BILINEAR.
      (void)resample_filter_from_pil(resample, source);
      config.resample = static_cast<int>(resample);
    } else {
      fail(source, ": \"resample\" must be a PIL filter number, got ", clip(it->dump()));
    }
  }
  if (auto it = json.find("do_resize"); it != json.end()) config.do_resize = json_flag(*it, "do_resize", source);
  if (auto it = json.find("do_rescale"); it != json.end()) config.do_rescale = json_flag(*it, "do_rescale", source);
  if (auto it = json.find("do_normalize"); it != json.end())
    config.do_normalize = json_flag(*it, "do_normalize", source);
  if (auto it = json.find("do_convert_rgb"); it != json.end())
    config.do_convert_rgb = json_flag(*it, "do_convert_rgb", source);
  if (auto it = json.find("rescale_factor"); it != json.end()) {
    if (!it->is_number()) fail(source, ": \"rescale_factor\" must be a number, got ", clip(it->dump()));
    config.rescale_factor = it->get<double>();
    // u8 * rescale_factor is rounded to float: 255 * factor must stay within float range.
    check(std::fabs(config.rescale_factor) * 255.0 <= static_cast<double>(std::numeric_limits<float>::max()), source,
          ": \"rescale_factor\" ", clip(it->dump()), " takes pixel values beyond float range");
  }
  if (auto it = json.find("image_mean"); it != json.end() && !it->is_null())
    config.image_mean = json_channel_values(*it, "image_mean", source);
  if (auto it = json.find("image_std"); it != json.end() && !it->is_null())
    config.image_std = json_channel_values(*it, "image_std", source);
  validate_config(config, source);
  return config;
}

// The image processor settings of a checkpoint: `path` is the model folder
// (reads its preprocessor_config.json) or that JSON file itself. A folder
// without the file gets BlipImageProcessor's defaults (384 x 384, bicubic,
// CLIP mean/std).
inline ImageProcessorConfig load_image_processor_config(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail(path, ": no such model folder or preprocessor_config.json");
  std::string file = path;
  if (fs::is_directory(status)) {
    file = (fs::path(path) / "preprocessor_config.json").string();
    if (!fs::exists(file, error)) return ImageProcessorConfig{};
  }
  return parse_image_processor_config(read_config_json_file(file), file);
}

namespace image_detail {

// Resizes (if asked) and writes [3, height, width] float32 to `out`.
inline void preprocess_to(const Image& image, const ImageProcessorConfig& config, float* out, int out_width,
                          int out_height) {
  validate_config(config, "ImageProcessorConfig");
  check(!image.empty() && image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
        "preprocess: input image is ", image.width, "x", image.height, " with ", image.rgb.size(),
        " bytes, expected a non-empty RGB image");
  const Image* source = &image;
  Image resized;
  if (config.do_resize && (image.width != out_width || image.height != out_height)) {
    resized = resize(image, out_width, out_height, resample_filter_from_pil(config.resample, "ImageProcessorConfig"));
    source = &resized;
  }
  check(source->width == out_width && source->height == out_height, "preprocess: image is ", source->width, "x",
        source->height, " but the output is ", out_width, "x", out_height, " and do_resize is false");

  // Every uint8 value maps to one float per channel: a table reproduces HF's
  // float32(u8 * factor) then (x - mean) / std exactly, and is fast.
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float value = config.do_rescale ? static_cast<float>(static_cast<double>(v) * config.rescale_factor)
                                      : static_cast<float>(v);
      if (config.do_normalize) value = (value - config.image_mean[c]) / config.image_std[c];
      table[c][v] = value;
    }
  }
  const std::size_t plane = static_cast<std::size_t>(out_width) * out_height;
  const std::uint8_t* rgb = source->rgb.data();
  for (std::size_t p = 0; p < plane; ++p) {
    out[p] = table[0][rgb[3 * p]];
    out[plane + p] = table[1][rgb[3 * p + 1]];
    out[2 * plane + p] = table[2][rgb[3 * p + 2]];
  }
}

}  // namespace image_detail

// HF's BlipImageProcessor(image)["pixel_values"][0] for an image from
// load_image: float32 [3, height, width] (the config's size, or the image's own
// when do_resize is false).
inline Tensor<float> preprocess(const Image& image, const ImageProcessorConfig& config) {
  const int width = config.do_resize ? config.width : image.width;
  const int height = config.do_resize ? config.height : image.height;
  check(width > 0 && height > 0, "preprocess: output size ", width, "x", height, " is not positive");
  Tensor<float> pixel_values(Shape{3, height, width});
  image_detail::preprocess_to(image, config, pixel_values.data(), width, height);
  return pixel_values;
}

// Same as preprocess, written to `out` (3 * config.height * config.width
// floats), e.g. one slot of a [batch, 3, H, W] tensor. With do_resize false the
// image must already have the config's size.
inline void preprocess_into(const Image& image, const ImageProcessorConfig& config, float* out) {
  check(out != nullptr, "preprocess_into: null output");
  image_detail::preprocess_to(image, config, out, config.width, config.height);
}

// A batch: float32 [images.size(), 3, config.height, config.width].
inline Tensor<float> preprocess_batch(const std::vector<Image>& images, const ImageProcessorConfig& config) {
  check(!images.empty(), "preprocess_batch: no images");
  Tensor<float> pixel_values(Shape{static_cast<std::int64_t>(images.size()), 3, config.height, config.width});
  const std::size_t slot = static_cast<std::size_t>(3) * config.height * config.width;
  for (std::size_t i = 0; i < images.size(); ++i) preprocess_into(images[i], config, pixel_values.data() + i * slot);
  return pixel_values;
}

// The same batch straight from image files, one at a time: each image is
// decoded, preprocessed into its slot and dropped before the next is read, so
// a batch of huge photos holds one at full resolution, never all of them
// (a 13300 x 13300 PNG is 0.5 GB decoded; its slot is 1.7 MB at 384 x 384).
inline Tensor<float> load_preprocessed_batch(const std::vector<std::string>& paths, const ImageProcessorConfig& config,
                                             std::int64_t max_pixels = kDefaultMaxImagePixels) {
  check(!paths.empty(), "load_preprocessed_batch: no images");
  Tensor<float> pixel_values(Shape{static_cast<std::int64_t>(paths.size()), 3, config.height, config.width});
  const std::size_t slot = static_cast<std::size_t>(3) * config.height * config.width;
  for (std::size_t i = 0; i < paths.size(); ++i)
    preprocess_into(load_image(paths[i], max_pixels), config, pixel_values.data() + i * slot);
  return pixel_values;
}

}  // namespace blip
