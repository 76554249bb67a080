// blip/io/exif.hpp: EXIF orientation, found the way Pillow 9.4 finds it, and
// the JPEG / PNG container walks that locate it.
//
// Hugging Face's `load_image` calls PIL.ImageOps.exif_transpose, which reads
// tag 0x0112 (Orientation) of IFD0 from `image.getexif()` and, for values
// 2..8, flips/rotates the pixels. Where that tag comes from:
//   * JPEG: the first APP1 segment (before the first scan) whose payload starts
//     with "Exif\0". JPEG XMP is not consulted.
//   * PNG: `info["exif"]`, set by an eXIf chunk (before or after the image
//     data; the last one wins) or by a tEXt chunk keyed "exif"; else an
//     ImageMagick "Raw profile type exif" text chunk (hex); and, only when the
//     EXIF has no Orientation tag, the XMP text chunk "XML:com.adobe.xmp"
//     matched with the regex `tiff:Orientation(="|>)([0-9])`.
//   * Other formats (BMP, GIF, PNM): none.
// The EXIF payload is a small TIFF file. Pillow reads IFD0 entry by entry and
// keeps what it read when the data ends early; an entry whose out-of-line data
// lies past the end stops the walk. The Orientation value is the tag's first
// element whatever its count; integer types give that integer, and float and
// rational values count when they are exactly an integer (Python compares
// 6.0 and 6/1 equal to 6). BYTE, ASCII and UNDEFINED values never match.
//
// Everything here is bounds-checked: hostile data yields "no orientation",
// never a crash. Where Pillow itself raises on malformed metadata (an EXIF
// block that is not TIFF, bad hex in a raw profile, ...) HF's load_image would
// fail; we ignore the metadata instead and load the pixels as stored.
#pragma once

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace blip::exif {

// Orientation values that exif_transpose acts on (PIL.Image.Transpose names).
constexpr int kOrientationNormal = 1;
constexpr int kOrientationFlipLeftRight = 2;
constexpr int kOrientationRotate180 = 3;
constexpr int kOrientationFlipTopBottom = 4;
constexpr int kOrientationTranspose = 5;
constexpr int kOrientationRotate270 = 6;  // 90 degrees clockwise
constexpr int kOrientationTransverse = 7;
constexpr int kOrientationRotate90 = 8;  // 90 degrees counter-clockwise

namespace detail {

inline std::uint32_t read_u16(const std::uint8_t* p, bool big_endian) {
  return big_endian ? (std::uint32_t{p[0]} << 8 | p[1]) : (std::uint32_t{p[1]} << 8 | p[0]);
}
inline std::uint32_t read_u32(const std::uint8_t* p, bool big_endian) {
  return big_endian ? (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3])
                    : (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0]);
}
inline std::uint64_t read_u64(const std::uint8_t* p, bool big_endian) {
  const std::uint64_t first = read_u32(p, big_endian), second = read_u32(p + 4, big_endian);
  return big_endian ? (first << 32 | second) : (second << 32 | first);
}

// Bytes per element of each TIFF field type Pillow 9.4 can load; 0 for the
// types it skips.
inline int tiff_type_size(std::uint32_t type) {
  // clang-format off
  static constexpr int kSizes[17] = {
      0,
      1, 1, 2, 4, 8,  // 1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL
      1, 1, 2, 4, 8,  // 6 SBYTE, 7 UNDEFINED, 8 SSHORT, 9 SLONG, 10 SRATIONAL
      4, 8, 4,        // 11 FLOAT, 12 DOUBLE, 13 IFD
      0, 0, 8};       // 14, 15 (not loaded by Pillow 9.4), 16 LONG8
  // clang-format on
  return type < 17 ? kSizes[type] : 0;
}

inline std::int64_t integral_or_zero(double value) {
  // Only exact integers in a sane range can equal an orientation key.
  if (!(value >= -1e9 && value <= 1e9)) return 0;  // also rejects NaN
  const double truncated = static_cast<double>(static_cast<std::int64_t>(value));
  return truncated == value ? static_cast<std::int64_t>(value) : 0;
}

// The first element of a field as Python would compare it with an int;
// 0 when it can never equal one (bytes, strings, non-integral numbers).
inline std::int64_t first_value_as_integer(std::uint32_t type, const std::uint8_t* p, bool big_endian) {
  switch (type) {
    case 3: return static_cast<std::int64_t>(read_u16(p, big_endian));
    case 4:
    case 13: return static_cast<std::int64_t>(read_u32(p, big_endian));
    case 6: return static_cast<std::int8_t>(p[0]);
    case 8: return static_cast<std::int16_t>(read_u16(p, big_endian));
    case 9: return static_cast<std::int32_t>(read_u32(p, big_endian));
    case 16: {
      const std::uint64_t value = read_u64(p, big_endian);
      return value > 1000000000u ? 0 : static_cast<std::int64_t>(value);
    }
    case 11: {
      float value;
      const std::uint32_t bits = read_u32(p, big_endian);
      std::memcpy(&value, &bits, sizeof value);
      return integral_or_zero(value);
    }
    case 12: {
      double value;
      const std::uint64_t bits = read_u64(p, big_endian);
      std::memcpy(&value, &bits, sizeof value);
      return integral_or_zero(value);
    }
    case 5: {  // Fraction(num, den) == int only when den divides num; 0/0 is NaN
      const std::int64_t numerator = read_u32(p, big_endian), denominator = read_u32(p + 4, big_endian);
      return denominator != 0 && numerator % denominator == 0 ? numerator / denominator : 0;
    }
    case 10: {
      const std::int64_t numerator = static_cast<std::int32_t>(read_u32(p, big_endian));
      const std::int64_t denominator = static_cast<std::int32_t>(read_u32(p + 4, big_endian));
      return denominator != 0 && numerator % denominator == 0 ? numerator / denominator : 0;
    }
    default: return 0;  // BYTE (bytes in Pillow), ASCII, UNDEFINED
  }
}

inline bool starts_with(const std::uint8_t* data, std::size_t size, const char* prefix, std::size_t prefix_size) {
  return size >= prefix_size && std::memcmp(data, prefix, prefix_size) == 0;
}

}  // namespace detail

// The Orientation tag of an EXIF block (a TIFF file, optionally preceded by
// "Exif\0\0" as in JPEG APP1 and Pillow's info["exif"]), read like Pillow's
// Exif.load + ImageFileDirectory_v2.load. nullopt when there is no such tag
// (or the block is not TIFF); otherwise the value as an integer, 0 when it is
// not an integer Python would compare equal to 2..8.
inline std::optional<std::int64_t> orientation_from_exif(const std::uint8_t* data, std::size_t size) {
  using namespace detail;
  if (starts_with(data, size, "Exif\0\0", 6)) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return std::nullopt;
  // Pillow accepts these four classic-TIFF prefixes; the byte order is taken
  // from the first two bytes. BigTIFF inside EXIF makes Pillow raise: ignored.
  bool big_endian;
  if (std::memcmp(data, "MM\0*", 4) == 0 || std::memcmp(data, "MM*\0", 4) == 0) {
    big_endian = true;
  } else if (std::memcmp(data, "II*\0", 4) == 0 || std::memcmp(data, "II\0*", 4) == 0) {
    big_endian = false;
  } else {
    return std::nullopt;
  }
  const std::uint64_t ifd = read_u32(data + 4, big_endian);
  if (ifd + 2 > size) return std::nullopt;
  const std::uint32_t entries = read_u16(data + ifd, big_endian);
  std::optional<std::int64_t> orientation;
  for (std::uint32_t i = 0; i < entries; ++i) {
    const std::uint64_t entry = ifd + 2 + 12ull * i;
    if (entry + 12 > size) break;  // Pillow: short read -> warning, keep what was read
    const std::uint8_t* field = data + entry;
    const std::uint32_t tag = read_u16(field, big_endian);
    const std::uint32_t type = read_u16(field + 2, big_endian);
    const std::uint64_t count = read_u32(field + 4, big_endian);
    const int unit = tiff_type_size(type);
    if (unit == 0) continue;  // unsupported type: skipped
    const std::uint64_t bytes = count * static_cast<std::uint64_t>(unit);
    if (bytes == 0) continue;  // empty value: skipped
    const std::uint8_t* value = field + 8;
    if (bytes > 4) {
      const std::uint64_t offset = read_u32(field + 8, big_endian);
      if (offset + bytes > size) break;  // Pillow: "Truncated File Read" ends the IFD walk
      value = data + offset;
    }
    // A first element needs `unit` bytes; inline values of 8-byte types do not
    // fit in 4 bytes, so they always take the out-of-line branch above.
    if (tag == 0x0112) orientation = first_value_as_integer(type, value, big_endian);
  }
  return orientation;
}

// ---- JPEG -----------------------------------------------------------------

struct JpegScan {
  bool complete = false;               // an EOI marker ends the stream (Pillow rejects a JPEG without one)
  std::size_t end_offset = 0;          // where the walk stopped (for error messages)
  int components = 0;                  // from the first SOF segment (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK)
  std::int64_t width = 0, height = 0;  // from the first SOF segment
  int adobe_transform = -1;            // APP14 "Adobe" color transform (0 RGB/CMYK, 1 YCbCr, 2 YCCK); -1 absent
  const std::uint8_t* exif = nullptr;  // payload of the first APP1 "Exif\0" segment before the first scan
  std::size_t exif_size = 0;
  // Set when a scan uses a Huffman or quantization table that no segment
  // before it defined. stb_image would then read its never-initialised table
  // memory (a wild read, found by fuzzing); libjpeg refuses most such files
  // ("Huffman table 0x.. was not defined"), so they are refused here.
  std::string table_error;
};

// Walks the marker segments and entropy-coded data of a JPEG (which must start
// with SOI) without decoding it. Junk bytes between markers are skipped, as
// Pillow and libjpeg do.
inline JpegScan scan_jpeg(const std::uint8_t* data, std::size_t size) {
  JpegScan scan;
  std::size_t position = 2;  // after SOI
  bool seen_scan = false;
  // Tables defined so far: bit i of huffman[0] (DC) / huffman[1] (AC) / quantization = table i.
  unsigned huffman_defined[2] = {0, 0}, quantization_defined = 0;
  std::vector<int> frame_quantization_tables;  // Tq of each component of the first frame header
  while (position < size) {
    if (data[position] != 0xFF) {  // junk before a marker
      ++position;
      continue;
    }
    if (position + 1 >= size) break;
    const std::uint8_t marker = data[position + 1];
    if (marker == 0xFF) {  // fill byte
      ++position;
      continue;
    }
    if (marker == 0xD9) {  // EOI
      scan.complete = true;
      position += 2;
      break;
    }
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
      position += 2;  // standalone markers (and stuffed zeros outside a scan)
      continue;
    }
    if (position + 4 > size) break;
    const std::size_t length = std::size_t{data[position + 2]} << 8 | data[position + 3];
    if (length < 2 || position + 2 + length > size) break;
    const std::uint8_t* payload = data + position + 4;
    const std::size_t payload_size = length - 2;
    const bool start_of_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame && scan.components == 0 && payload_size >= 6) {
      scan.height = std::int64_t{payload[1]} << 8 | payload[2];
      scan.width = std::int64_t{payload[3]} << 8 | payload[4];
      scan.components = payload[5];
      for (std::size_t c = 0; c < static_cast<std::size_t>(scan.components) && 8 + 3 * c < payload_size; ++c)
        frame_quantization_tables.push_back(payload[8 + 3 * c]);
    }
    if (marker == 0xC4) {  // DHT: one or more tables, each class/id, 16 counts, the symbols
      for (std::size_t at = 0; at + 17 <= payload_size;) {
        const unsigned table_class = payload[at] >> 4, id = payload[at] & 15u;
        std::size_t symbols = 0;
        for (std::size_t i = 1; i <= 16; ++i) symbols += payload[at + i];
        if (table_class <= 1 && id <= 3) huffman_defined[table_class] |= 1u << id;
        at += 17 + symbols;
      }
    }
    if (marker == 0xDB) {  // DQT: one or more tables, each precision/id then 64 or 128 bytes
      for (std::size_t at = 0; at < payload_size;) {
        const unsigned precision = payload[at] >> 4, id = payload[at] & 15u;
        if (id <= 3) quantization_defined |= 1u << id;
        at += 1 + 64 * (precision + 1);
      }
    }
    if (marker == 0xDA && scan.table_error.empty() && payload_size >= 1) {
      // SOS: Ns, then per component (id, Td << 4 | Ta), then Ss, Se, Ah/Al. A scan that starts at
      // coefficient 0 decodes DC with Td; one that reaches past it decodes AC with Ta.
      const std::size_t count = payload[0];
      if (1 + 2 * count + 2 <= payload_size) {
        const unsigned first = payload[1 + 2 * count], last = payload[2 + 2 * count];
        for (std::size_t c = 0; c < count; ++c) {
          const unsigned dc = payload[2 + 2 * c] >> 4, ac = payload[2 + 2 * c] & 15u;
          if (first == 0 && (dc > 3 || !(huffman_defined[0] >> dc & 1u)))
            scan.table_error = "JPEG scan uses DC Huffman table " + std::to_string(dc) + ", which is not defined";
          else if (last > 0 && (ac > 3 || !(huffman_defined[1] >> ac & 1u)))
            scan.table_error = "JPEG scan uses AC Huffman table " + std::to_string(ac) + ", which is not defined";
          if (!scan.table_error.empty()) break;
        }
      }
      for (int table : frame_quantization_tables) {
        if (!scan.table_error.empty()) break;
        if (table > 3 || !(quantization_defined >> table & 1u))
          scan.table_error = "JPEG frame uses quantization table " + std::to_string(table) + ", which is not defined";
      }
    }
    if (marker == 0xEE && scan.adobe_transform < 0 && payload_size >= 12 &&
        detail::starts_with(payload, payload_size, "Adobe", 5))
      scan.adobe_transform = payload[11];
    if (marker == 0xE1 && !seen_scan && scan.exif == nullptr &&
        detail::starts_with(payload, payload_size, "Exif\0", 5)) {
      scan.exif = payload;
      scan.exif_size = payload_size;
    }
    position += 2 + length;
    if (marker == 0xDA) {  // start of scan: skip the entropy-coded data up to the next real marker
      seen_scan = true;
      while (position < size) {
        const void* next = std::memchr(data + position, 0xFF, size - position);
        if (next == nullptr) {
          position = size;
          break;
        }
        position = static_cast<std::size_t>(static_cast<const std::uint8_t*>(next) - data);
        if (position + 1 >= size) {
          position = size;
          break;
        }
        const std::uint8_t following = data[position + 1];
        if (following == 0x00 || (following >= 0xD0 && following <= 0xD7)) {
          position += 2;  // stuffed 0xFF or restart marker: still scan data
        } else if (following == 0xFF) {
          position += 1;  // fill byte before a marker
        } else {
          break;  // a marker: back to the segment walk
        }
      }
    }
  }
  scan.end_offset = position;
  return scan;
}

// Orientation of a JPEG per Pillow (see the top of this file).
inline std::optional<std::int64_t> jpeg_orientation(const JpegScan& scan) {
  if (scan.exif == nullptr) return std::nullopt;
  return orientation_from_exif(scan.exif, scan.exif_size);
}

// ---- PNG ------------------------------------------------------------------

struct PngScan {
  std::string error;  // non-empty: Pillow refuses this file (message says why)
  bool cgbi = false;  // Apple's CgBI variant, which Pillow cannot read
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = -1;
  bool has_iend = false;
  // Where the last chunk read ends (its CRC included). When has_iend is false
  // a decoder that insists on IEND (stb_image does) needs one appended there;
  // Pillow stops reading at the end of the image data and does not need it.
  // May exceed the file size by the missing bytes of a cut-off CRC.
  std::size_t chunks_end = 8;
  // The text/EXIF entries of Pillow's `info` that can carry an orientation.
  std::optional<std::string> exif;              // info["exif"] bytes
  std::optional<std::string> raw_profile_exif;  // info["Raw profile type exif"]
  std::optional<std::string> xmp;               // info["XML:com.adobe.xmp"]
};

namespace detail {

inline std::uint32_t crc32_update(std::uint32_t crc, const std::uint8_t* data, std::size_t size) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> entries{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[n] = c;
    }
    return entries;
  }();
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

inline bool is_chunk_type(const std::uint8_t* type) {
  for (int i = 0; i < 4; ++i) {
    const std::uint8_t c = type[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// zlib-wrapped data, inflated into at most `limit` bytes (Pillow's
// MAX_TEXT_CHUNK is 1 MB); nullopt when corrupt or larger.
inline std::optional<std::string> inflate_bounded(const std::uint8_t* data, std::size_t size, std::size_t limit) {
  if (size > static_cast<std::size_t>(INT32_MAX)) return std::nullopt;
  std::string output(limit + 1, '\0');
  const int produced = stbi_zlib_decode_buffer(output.data(), static_cast<int>(output.size()),
                                               reinterpret_cast<const char*>(data), static_cast<int>(size));
  if (produced < 0 || static_cast<std::size_t>(produced) > limit) return std::nullopt;
  output.resize(static_cast<std::size_t>(produced));
  return output;
}

inline bool is_valid_utf8(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    int extra;
    std::uint32_t code;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else
      return false;
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = code << 6 | (next & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are errors in Python's strict codec.
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) ||
        (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF)
      return false;
    i += extra + 1;
  }
  return true;
}

constexpr std::size_t kMaxTextChunk = 1024 * 1024;  // Pillow's ImageFile / PngImagePlugin MAX_TEXT_CHUNK

// Records a text chunk value under the keys that matter for orientation.
inline void store_text(PngScan& scan, const std::string& key, std::string value) {
  if (key == "exif")
    scan.exif = std::move(value);
  else if (key == "Raw profile type exif")
    scan.raw_profile_exif = std::move(value);
  else if (key == "XML:com.adobe.xmp")
    scan.xmp = std::move(value);
}

inline bool is_orientation_key(const std::string& key) {
  return key == "exif" || key == "Raw profile type exif" || key == "XML:com.adobe.xmp";
}

// tEXt, zTXt and iTXt as Pillow's PngStream reads them.
inline void read_text_chunk(PngScan& scan, const std::uint8_t* type, const std::uint8_t* data, std::size_t size) {
  const std::string chunk(reinterpret_cast<const char*>(data), size);
  const std::size_t separator = chunk.find('\0');
  const std::string key = separator == std::string::npos ? chunk : chunk.substr(0, separator);
  const std::string rest = separator == std::string::npos ? std::string() : chunk.substr(separator + 1);
  if (!is_orientation_key(key)) return;
  if (std::memcmp(type, "tEXt", 4) == 0) {
    store_text(scan, key, rest);
  } else if (std::memcmp(type, "zTXt", 4) == 0) {
    const int method = rest.empty() ? 0 : static_cast<unsigned char>(rest[0]);
    if (method != 0) return;  // Pillow raises; ignored here
    if (rest.size() <= 1) {
      store_text(scan, key, std::string());  // Pillow: zlib error -> empty value
      return;
    }
    auto inflated =
        inflate_bounded(reinterpret_cast<const std::uint8_t*>(rest.data()) + 1, rest.size() - 1, kMaxTextChunk);
    store_text(scan, key, inflated ? std::move(*inflated) : std::string());
  } else {  // iTXt: key \0 compression-flag compression-method language \0 translated-key \0 text
    if (separator == std::string::npos || rest.size() < 2) return;
    const int compressed = static_cast<unsigned char>(rest[0]);
    const int method = static_cast<unsigned char>(rest[1]);
    const std::string tail = rest.substr(2);
    const std::size_t language_end = tail.find('\0');
    if (language_end == std::string::npos) return;
    const std::size_t translated_end = tail.find('\0', language_end + 1);
    if (translated_end == std::string::npos) return;
    const std::string language = tail.substr(0, language_end);
    const std::string translated_key = tail.substr(language_end + 1, translated_end - language_end - 1);
    std::string text = tail.substr(translated_end + 1);
    if (compressed != 0) {
      if (method != 0) return;
      auto inflated = inflate_bounded(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), kMaxTextChunk);
      if (!inflated) return;
      text = std::move(*inflated);
    }
    if (!is_valid_utf8(language) || !is_valid_utf8(translated_key) || !is_valid_utf8(text)) return;
    store_text(scan, key, std::move(text));
  }
}

}  // namespace detail

// Walks the chunks of a PNG (which must start with the 8-byte signature) the
// way Pillow 9.4 does: before the first IDAT every chunk must be complete with
// a valid type and CRC (Pillow raises "broken PNG file" otherwise); after it,
// reading stops quietly at IEND, at an incomplete header or at an invalid type,
// but a chunk whose data runs past the end of the file is a truncated file.
inline PngScan scan_png(const std::uint8_t* data, std::size_t size) {
  using namespace detail;
  PngScan scan;
  std::size_t position = 8;
  bool seen_image_data = false;
  bool first_chunk = true;
  while (true) {
    if (position + 8 > size) {
      if (!seen_image_data) scan.error = "truncated before the image data (no IDAT chunk)";
      break;
    }
    const std::uint32_t length = read_u32(data + position, true);
    const std::uint8_t* type = data + position + 4;
    if (!is_chunk_type(type)) {
      if (!seen_image_data) scan.error = "broken PNG file (invalid chunk type)";
      break;
    }
    const std::string type_name(reinterpret_cast<const char*>(type), 4);
    if (first_chunk && type_name == "CgBI") {
      scan.cgbi = true;
      break;
    }
    first_chunk = false;
    const std::size_t data_begin = position + 8;
    if (type_name == "IEND") {
      scan.has_iend = true;
      break;
    }
    if (std::uint64_t{length} > size - data_begin) {
      scan.error =
          "truncated: chunk " + type_name + " declares " + std::to_string(length) + " bytes but the file ends first";
      break;
    }
    const std::uint8_t* chunk = data + data_begin;
    const bool is_image_data = type_name == "IDAT";
    if (!seen_image_data && !is_image_data) {
      if (data_begin + length + 4 > size) {
        scan.error = "truncated: checksum of chunk " + type_name + " is missing";
        break;
      }
      const std::uint32_t expected = read_u32(chunk + length, true);
      const std::uint32_t actual = ~crc32_update(crc32_update(0xFFFFFFFFu, type, 4), chunk, length);
      if (expected != actual) {
        scan.error = "broken PNG file (bad checksum in chunk " + type_name + ")";
        break;
      }
    }
    if (type_name == "IHDR" && length >= 13) {
      scan.width = read_u32(chunk, true);
      scan.height = read_u32(chunk + 4, true);
      scan.bit_depth = chunk[8];
      scan.color_type = chunk[9];
    } else if (type_name == "eXIf") {
      scan.exif = std::string("Exif\0\0", 6) + std::string(reinterpret_cast<const char*>(chunk), length);
    } else if (type_name == "tEXt" || type_name == "zTXt" || type_name == "iTXt") {
      read_text_chunk(scan, type, chunk, length);
    }
    if (is_image_data) seen_image_data = true;
    position = data_begin + std::size_t{length} + 4;  // may pass `size` by the missing CRC bytes
    scan.chunks_end = position;
  }
  return scan;
}

// Orientation of a PNG per Pillow's getexif (see the top of this file).
inline std::optional<std::int64_t> png_orientation(const PngScan& scan) {
  std::optional<std::int64_t> orientation;
  if (scan.exif) {
    orientation = orientation_from_exif(reinterpret_cast<const std::uint8_t*>(scan.exif->data()), scan.exif->size());
  } else if (scan.raw_profile_exif) {
    // bytes.fromhex("".join(value.split("\n")[3:])): skip three lines, then hex
    // pairs with optional whitespace between pairs.
    const std::string& text = *scan.raw_profile_exif;
    std::size_t position = 0;
    bool valid = true;
    for (int line = 0; line < 3 && valid; ++line) {
      const std::size_t newline = text.find('\n', position);
      if (newline == std::string::npos)
        valid = false;
      else
        position = newline + 1;
    }
    std::string bytes;
    if (valid) {
      auto hex_value = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      std::string digits;
      for (std::size_t i = position; i < text.size(); ++i)
        if (text[i] != '\n') digits.push_back(text[i]);
      for (std::size_t i = 0; i < digits.size() && valid;) {
        const char c = digits[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
          ++i;
          continue;
        }
        if (i + 1 >= digits.size() || hex_value(c) < 0 || hex_value(digits[i + 1]) < 0) {
          valid = false;  // Pillow raises ValueError here; ignored
          break;
        }
        bytes.push_back(static_cast<char>(hex_value(c) * 16 + hex_value(digits[i + 1])));
        i += 2;
      }
    }
    if (valid) orientation = orientation_from_exif(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  if (!orientation && scan.xmp && !scan.xmp->empty()) {
    // re.search(r'tiff:Orientation(="|>)([0-9])', xmp): the leftmost match.
    const std::string& xmp = *scan.xmp;
    const std::string needle = "tiff:Orientation";
    for (std::size_t at = xmp.find(needle); at != std::string::npos; at = xmp.find(needle, at + 1)) {
      std::size_t digit = at + needle.size();
      if (digit < xmp.size() && xmp[digit] == '>')
        digit += 1;
      else if (digit + 1 < xmp.size() && xmp[digit] == '=' && xmp[digit + 1] == '"')
        digit += 2;
      else
        continue;
      if (digit < xmp.size() && xmp[digit] >= '0' && xmp[digit] <= '9') return xmp[digit] - '0';
    }
  }
  return orientation;
}

}  // namespace blip::exif
