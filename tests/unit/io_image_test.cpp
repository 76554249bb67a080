// Image loading and BLIP preprocessing against Pillow 9.4 / Hugging Face.
//
// What is checked, and against what:
//  * the resampler: optimized == naive reference bit for bit at odd sizes, and
//    both == Pillow's Image.resize for all five filters (hashes below);
//  * BlipImageProcessor settings (size, resample, mean/std, the do_* flags):
//    pixel_values hashes from HF on a synthetic image;
//  * the fixtures in shared/fixtures/preprocess (HF load_image +
//    BlipImageProcessor on real photos): PNGs bit-exact at every stage; JPEGs
//    measured (stb_image vs libjpeg-turbo) and bounded;
//  * EXIF orientation 1..8 against PIL's exif_transpose, in PNG (eXIf, XMP,
//    raw profile) and JPEG (APP1), plus the TIFF field types Pillow accepts;
//  * RGB conversion (gray, gray+alpha, RGBA, palette, 16-bit), GIF/BMP/PNM;
//  * hostile files: each must raise blip::Error naming the file, never crash.
//
// The hard-coded expectations were produced with the oracle environment
// (/work/shared/oracle/env.sh: Pillow 9.4.0, transformers 4.45.0.dev0):
//
//   W, H = 37, 23
//   y, x, c = np.mgrid[0:H, 0:W, 0:3]
//   img = ((x * 37 + y * 91 + c * 53 + (x * y) % 17 * 11) % 256).astype(np.uint8)
//   pil = Image.fromarray(img)
//   hashlib.sha256(np.array(pil.resize((w, h), resample=f, reducing_gap=None)).tobytes())
//   BlipImageProcessor(**kwargs)(pil, return_tensors="np")["pixel_values"][0]  -> sha256 of the float32 bytes
#include <doctest/doctest.h>
#include <stb_image.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "blip/io/image.hpp"
#include "blip/io/safetensors.hpp"
#include "test_support.hpp"

namespace io_image_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- SHA-256 (FIPS 180-4), for comparing against the manifest's hashes ----
std::string sha256_hex(const std::uint8_t* data, std::size_t size) {
  static const std::uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotate = [](std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  Bytes message(data, data + size);
  message.push_back(0x80);
  while (message.size() % 64 != 56) message.push_back(0);
  const std::uint64_t bits = static_cast<std::uint64_t>(size) * 8;
  for (int i = 7; i >= 0; --i) message.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  for (std::size_t block = 0; block < message.size(); block += 64) {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      const std::uint8_t* p = &message[block + 4 * i];
      w[i] = std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
    }
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotate(w[i - 15], 7) ^ rotate(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotate(w[i - 2], 17) ^ rotate(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 = hh + (rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 = (rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  char hex[65];
  for (int i = 0; i < 8; ++i) std::snprintf(hex + 8 * i, 9, "%08x", h[i]);
  return std::string(hex, 64);
}
std::string sha256_hex(const Bytes& bytes) { return sha256_hex(bytes.data(), bytes.size()); }
std::string sha256_hex(const float* data, std::size_t count) {
  return sha256_hex(reinterpret_cast<const std::uint8_t*>(data), count * sizeof(float));
}

Bytes read_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  REQUIRE_MESSAGE(stream.good(), "cannot read ", path);
  return Bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
}

std::string temp_path(const std::string& name) {
  const std::string dir = std::string(BLIP_TEST_BINARY_DIR) + "/io_image_test_files";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream stream(path, std::ios::binary);
  stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The fixtures' pixel_values, through the project's safetensors reader.
blip::Tensor<const float> read_f32_tensor(const std::string& path, const std::string& name) {
  return blip::SafetensorsFile::open(path).to_f32(name);
}

// ---- synthetic images and files --------------------------------------------

// The synthetic image of the oracle script at the top of this file.
blip::Image synthetic_image(int width = 37, int height = 23) {
  blip::Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixel(x, y)[c] = static_cast<std::uint8_t>((x * 37 + y * 91 + c * 53 + (x * y) % 17 * 11) % 256);
  return image;
}

std::uint32_t crc32(const Bytes& bytes, std::size_t begin, std::size_t end) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = begin; i < end; ++i) {
    crc ^= bytes[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

void put_u32_be(Bytes& out, std::uint32_t value) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

Bytes png_chunk(const std::string& type, const Bytes& data) {
  Bytes chunk;
  put_u32_be(chunk, static_cast<std::uint32_t>(data.size()));
  chunk.insert(chunk.end(), type.begin(), type.end());
  chunk.insert(chunk.end(), data.begin(), data.end());
  put_u32_be(chunk, crc32(chunk, 4, chunk.size()));
  return chunk;
}

// zlib stream with stored (uncompressed) blocks: enough to build test files.
Bytes zlib_stored(const Bytes& data) {
  Bytes out = {0x78, 0x01};
  std::size_t position = 0;
  do {
    const std::size_t length = std::min<std::size_t>(65535, data.size() - position);
    const bool last = position + length == data.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<std::uint8_t>(length & 0xFF));
    out.push_back(static_cast<std::uint8_t>(length >> 8));
    out.push_back(static_cast<std::uint8_t>(~length & 0xFF));
    out.push_back(static_cast<std::uint8_t>((~length >> 8) & 0xFF));
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(position),
               data.begin() + static_cast<std::ptrdiff_t>(position + length));
    position += length;
  } while (position < data.size());
  std::uint32_t a = 1, b = 0;
  for (std::uint8_t byte : data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  put_u32_be(out, b << 16 | a);
  return out;
}

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }
// All bytes of a string literal, embedded NULs included (not the final NUL).
template <std::size_t N>
Bytes literal_bytes(const char (&text)[N]) {
  return Bytes(text, text + N - 1);
}

// A PNG of `samples` (rows of width * channels samples, 8- or 16-bit) with
// `before` chunks after IHDR and `after` chunks after IDAT.
Bytes make_png(int width, int height, int bit_depth, int color_type, const std::vector<std::uint16_t>& samples,
               const Bytes& before = {}, const Bytes& after = {}, bool with_iend = true) {
  const int channels = color_type == 0 || color_type == 3 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : 4;
  Bytes raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < width * channels; ++i) {
      const std::uint16_t value = samples[static_cast<std::size_t>(y) * width * channels + i];
      if (bit_depth == 16) raw.push_back(static_cast<std::uint8_t>(value >> 8));
      raw.push_back(static_cast<std::uint8_t>(value & 0xFF));
    }
  }
  Bytes header;
  put_u32_be(header, static_cast<std::uint32_t>(width));
  put_u32_be(header, static_cast<std::uint32_t>(height));
  header.insert(header.end(), {static_cast<std::uint8_t>(bit_depth), static_cast<std::uint8_t>(color_type), 0, 0, 0});
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const Bytes ihdr = png_chunk("IHDR", header), idat = png_chunk("IDAT", zlib_stored(raw));
  png.insert(png.end(), ihdr.begin(), ihdr.end());
  png.insert(png.end(), before.begin(), before.end());
  png.insert(png.end(), idat.begin(), idat.end());
  png.insert(png.end(), after.begin(), after.end());
  if (with_iend) {
    const Bytes iend = png_chunk("IEND", {});
    png.insert(png.end(), iend.begin(), iend.end());
  }
  return png;
}

// The 3 x 2 RGB image whose pixel p = y * 3 + x has R = 3p, G = 3p + 1, B = 3p + 2.
Bytes numbered_png(const Bytes& before = {}, const Bytes& after = {}) {
  std::vector<std::uint16_t> samples;
  for (int i = 0; i < 18; ++i) samples.push_back(static_cast<std::uint16_t>(i));
  return make_png(3, 2, 8, 2, samples, before, after);
}

// Pixel numbers (R / 3) of an image, row by row.
std::vector<std::vector<int>> pixel_numbers(const blip::Image& image) {
  std::vector<std::vector<int>> rows(image.height, std::vector<int>(image.width));
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) rows[y][x] = image.pixel(x, y)[0] / 3;
  return rows;
}

// A TIFF block with one IFD0 entry (tag, type, count, 4 value bytes as given).
Bytes tiff_block(bool big_endian, std::uint16_t tag, std::uint16_t type, std::uint32_t count,
                 std::array<std::uint8_t, 4> value, const Bytes& trailing = {}) {
  Bytes out;
  auto u16 = [&](std::uint32_t v) {
    if (big_endian) {
      out.push_back(static_cast<std::uint8_t>(v >> 8));
      out.push_back(static_cast<std::uint8_t>(v));
    } else {
      out.push_back(static_cast<std::uint8_t>(v));
      out.push_back(static_cast<std::uint8_t>(v >> 8));
    }
  };
  auto u32 = [&](std::uint32_t v) {
    if (big_endian) {
      u16(v >> 16);
      u16(v & 0xFFFF);
    } else {
      u16(v & 0xFFFF);
      u16(v >> 16);
    }
  };
  out.insert(out.end(), big_endian ? std::initializer_list<std::uint8_t>{'M', 'M', 0, '*'}
                                   : std::initializer_list<std::uint8_t>{'I', 'I', '*', 0});
  u32(8);
  u16(1);
  u16(tag);
  u16(type);
  u32(count);
  out.insert(out.end(), value.begin(), value.end());
  u32(0);  // no next IFD
  out.insert(out.end(), trailing.begin(), trailing.end());
  return out;
}

// Orientation SHORT value in the byte order of the block.
Bytes orientation_exif(int orientation, bool big_endian = false) {
  const std::uint8_t v = static_cast<std::uint8_t>(orientation);
  return tiff_block(big_endian, 0x0112, 3, 1,
                    big_endian ? std::array<std::uint8_t, 4>{0, v, 0, 0} : std::array<std::uint8_t, 4>{v, 0, 0, 0});
}

std::optional<std::int64_t> orientation_of(const Bytes& exif) {
  return blip::exif::orientation_from_exif(exif.data(), exif.size());
}

blip::Image decode(const Bytes& bytes, const std::string& name = "memory") {
  return blip::decode_image(bytes.data(), bytes.size(), name);
}

// Expects decode_image to throw blip::Error whose message contains `name` and `fragment`.
void expect_decode_error(const Bytes& bytes, const std::string& name, const std::string& fragment,
                         std::int64_t max_pixels = blip::kDefaultMaxImagePixels) {
  try {
    blip::decode_image(bytes.data(), bytes.size(), name, max_pixels);
    FAIL("expected blip::Error for ", name, " (", fragment, ")");
  } catch (const blip::Error& error) {
    const std::string message = error.what();
    INFO("message: ", message);
    CHECK(message.find(name) != std::string::npos);
    CHECK(message.find(fragment) != std::string::npos);
  }
}

const blip::ResampleFilter kAllFilters[] = {blip::ResampleFilter::Lanczos, blip::ResampleFilter::Bilinear,
                                            blip::ResampleFilter::Bicubic, blip::ResampleFilter::Box,
                                            blip::ResampleFilter::Hamming};

}  // namespace

TEST_CASE("sha256 helper: FIPS 180-2 test vectors") {
  CHECK(sha256_hex(bytes_of("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(bytes_of("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("resample_u8 equals resample_u8_naive bit for bit at odd sizes, all filters and channel counts") {
  std::mt19937 random(7);
  const std::array<std::array<int, 4>, 8> sizes = {{{37, 23, 17, 11},
                                                    {13, 7, 41, 29},
                                                    {101, 3, 7, 5},
                                                    {5, 61, 9, 2},
                                                    {64, 64, 64, 33},
                                                    {19, 19, 1, 1},
                                                    {3, 1, 200, 2},
                                                    {250, 17, 31, 17}}};
  for (const auto& size : sizes) {
    for (int channels = 1; channels <= 4; ++channels) {
      Bytes input(static_cast<std::size_t>(size[0]) * size[1] * channels);
      for (auto& value : input) value = static_cast<std::uint8_t>(random());
      for (blip::ResampleFilter filter : kAllFilters) {
        Bytes fast(static_cast<std::size_t>(size[2]) * size[3] * channels), naive(fast.size());
        blip::resample_u8(input.data(), size[0], size[1], channels, fast.data(), size[2], size[3], filter);
        blip::resample_u8_naive(input.data(), size[0], size[1], channels, naive.data(), size[2], size[3], filter);
        INFO(size[0], "x", size[1], " -> ", size[2], "x", size[3], " channels ", channels, " filter ",
             blip::resample_filter_name(filter));
        CHECK(fast == naive);
      }
    }
  }
}

TEST_CASE("resize equals Pillow's Image.resize for every filter (hashes from Pillow 9.4)") {
  struct Case {
    blip::ResampleFilter filter;
    int width, height;
    const char* sha256;
  };
  using blip::ResampleFilter;
  const Case cases[] = {
      {ResampleFilter::Lanczos, 17, 11, "5cf31ab388266c21ac66b21de6d893f1d77baa15ff5eeaef34580b0d86922cf1"},
      {ResampleFilter::Lanczos, 64, 50, "8bd6fcab38278be49a67e214e9b82607d1d9380012f5cfcdf8f85dde5a09f3d0"},
      {ResampleFilter::Lanczos, 37, 9, "ccb544a583a5ed7298f100a72d5635f7eca56ba4d5921dc312782fc9478e2d15"},
      {ResampleFilter::Lanczos, 5, 23, "4cb48d3552c9ea9c9c50c7f72f979489ba3ddeb862c22ebf5c2d42ca08ba90d6"},
      {ResampleFilter::Lanczos, 1, 1, "0a7711aee10a99e037dc7504bbb46be0581757b02c76bdcbfc23a0d052d9f01f"},
      {ResampleFilter::Lanczos, 200, 3, "b7a3703a76f5d78c64fe663154524ad38580a5b7eb6b88541ebdf42852d61bf7"},
      {ResampleFilter::Bilinear, 17, 11, "c65cb39025a40341409b1db046d67fe7423422f3cc40cfa9e05b1ef9603d86a1"},
      {ResampleFilter::Bilinear, 64, 50, "3cffd94f32496e0d22ac7086bbeb72bd6e812a99e8faffc819a92e29e964b62d"},
      {ResampleFilter::Bilinear, 37, 9, "70fb8bc1c478a192f8af073c61eb9e88e992f84989d72e4c1a1a8759a7308c7b"},
      {ResampleFilter::Bilinear, 5, 23, "0355ac7e3fe8cbdf06898a006da026f252bab1a35a1c695f7b63b0764a74a038"},
      {ResampleFilter::Bilinear, 1, 1, "0a7711aee10a99e037dc7504bbb46be0581757b02c76bdcbfc23a0d052d9f01f"},
      {ResampleFilter::Bilinear, 200, 3, "df580b029be4fa2d9b1fbecc53fb9e66cfb420f0b3813e2d1ca6274bf90543b8"},
      {ResampleFilter::Bicubic, 17, 11, "acf0a8793ff28ac32d25cc7092c7150def308a9a67a2b73984a251268aefeb47"},
      {ResampleFilter::Bicubic, 64, 50, "cf7fb6e469e0795bcab05726b774d94610b018af3c09b7eeb084743bcbd633c6"},
      {ResampleFilter::Bicubic, 37, 9, "9eb9d1d2f527baa6efc9350045841a80066ddd9f38283e51ff05a7ef30aef41f"},
      {ResampleFilter::Bicubic, 5, 23, "d5954e470885aa47748b76d6c53a0808f91e82a8d383076943ab88793f23b767"},
      {ResampleFilter::Bicubic, 1, 1, "02cdc42d2a9494135149e9327aaafcd1d3decb442db31ab89974f032ae354ccd"},
      {ResampleFilter::Bicubic, 200, 3, "1afef0afcc745700d4dd0c30bcfc2dd6b86577ba73df563269dea96e5fcd6111"},
      {ResampleFilter::Box, 17, 11, "5d3e56634cc5fbd2aa58ae356233863bd64776a7f27f4c06ba2915c423d40ce2"},
      {ResampleFilter::Box, 64, 50, "7d3a024ce92b34015b2f7b4abc30f5b95260a5c437b8835e15e80a5ea835f16f"},
      {ResampleFilter::Box, 37, 9, "f275bdd8e1ac2116f959e8c7091d930cea87cb11f61243ec3456c03a1171c8ec"},
      {ResampleFilter::Box, 5, 23, "4fde7cbb0b8dcdf73ce9e7591cb2231a0d8ef449f179612f7d52d3954750e895"},
      {ResampleFilter::Box, 1, 1, "f6cbaea7a4ab36f36c48ddd7d03b7f6a32b8c4533a3ce9f9c4793e6fffe7fbee"},
      {ResampleFilter::Box, 200, 3, "260f025e708bcfb4993d5a456eddefe79dfa1f5b7753d1339f65aac14b57f3a6"},
      {ResampleFilter::Hamming, 17, 11, "a8dbdc4998827fe51db53e19c54518aad7057408a500f88f1f6e6590968fe925"},
      {ResampleFilter::Hamming, 64, 50, "2adbad47fb618df87bd6dbf25a935b30efd0a3f07989d71480135b8e18e0c353"},
      {ResampleFilter::Hamming, 37, 9, "d15ef98646218cc0418d241a81dd2201122e5e003f279fb05e105a1b7eae7acf"},
      {ResampleFilter::Hamming, 5, 23, "0b737badb97d3f0577a85ee5c0d5cb0614006f910aeb8a993a946e185c961b5a"},
      {ResampleFilter::Hamming, 1, 1, "02cdc42d2a9494135149e9327aaafcd1d3decb442db31ab89974f032ae354ccd"},
      {ResampleFilter::Hamming, 200, 3, "94fcfecec1ca4769ef0ab47e4120ff686af4a92fc93af2e52a9370eed58ef901"},
  };
  const blip::Image image = synthetic_image();
  REQUIRE(sha256_hex(image.rgb) == "d7357ab0cb55f6843de218c46df4241b0d07616e2164e3c6a0fb9232b4294d86");
  for (const Case& c : cases) {
    const blip::Image resized = blip::resize(image, c.width, c.height, c.filter);
    INFO(blip::resample_filter_name(c.filter), " to ", c.width, "x", c.height);
    CHECK(resized.width == c.width);
    CHECK(resized.height == c.height);
    CHECK(sha256_hex(resized.rgb) == c.sha256);
  }
  // Same size: Pillow returns a copy.
  CHECK(blip::resize_bicubic(image, image.width, image.height).rgb == image.rgb);
  CHECK_THROWS_WITH_AS(blip::resize_bicubic(image, 0, 5), doctest::Contains("positive"), blip::Error);
  CHECK_THROWS_WITH_AS(blip::resize_bicubic(image, 5, -1), doctest::Contains("positive"), blip::Error);
  CHECK_THROWS_AS(blip::resize_bicubic(blip::Image{}, 5, 5), blip::Error);
}

TEST_CASE("preprocess equals BlipImageProcessor for non-default settings (hashes from HF)") {
  struct Case {
    const char* name;
    const char* json;
    int channels, height, width;
    const char* sha256;
  };
  const Case cases[] = {
      {"default", "{}", 3, 384, 384, "a549fe409bc27215fce28c4e69e5882ab15af8c14c89aba109688fe23ee1feb0"},
      {"custom",
       R"({"size": {"height": 30, "width": 50}, "resample": 2, "image_mean": 0.5, "image_std": [0.2, 0.3, 0.4],
           "rescale_factor": 0.00784313725490196})",
       3, 30, 50, "736a4f4fdcde26c8d241be5835f0a731b83a49ed903192169e44150074cc5677"},
      {"no_rescale", R"({"do_rescale": false, "size": {"height": 20, "width": 20}})", 3, 20, 20,
       "9b083f5a1fc7d064bef633c85d005510c1c051911315d0efe83f2fb312d346cb"},
      {"no_normalize", R"({"do_normalize": false, "size": {"height": 20, "width": 20}})", 3, 20, 20,
       "7311b689b6b5a34e925e2b30baf2d6326c1071584e638b044a4f819e9a32ac51"},
      {"no_resize", R"({"do_resize": false})", 3, 23, 37,
       "4b680e3cada5d37bbb0094c8ec906f76c4ed33e5f0f9b0d428fc7b2328655e8b"},
      {"lanczos_int_size", R"({"size": 16, "resample": 1})", 3, 16, 16,
       "ad07c948135061f771286f70428364c909b573824bbce345f7bf589566444207"},
  };
  const blip::Image image = synthetic_image();
  for (const Case& c : cases) {
    INFO(c.name);
    // 1/127.5 as Python prints it: the same double.
    const auto config = blip::parse_image_processor_config(nlohmann::json::parse(c.json), c.name);
    const blip::Tensor<float> pixel_values = blip::preprocess(image, config);
    REQUIRE(pixel_values.shape() == blip::Shape({c.channels, c.height, c.width}));
    CHECK(sha256_hex(pixel_values.data(), static_cast<std::size_t>(pixel_values.numel())) == c.sha256);
  }
  // preprocess_into writes the same values into a batch slot; preprocess_batch stacks them.
  const auto config = blip::parse_image_processor_config(nlohmann::json::parse(cases[1].json), "custom");
  std::vector<float> slot(3 * 30 * 50 + 1, -7.0f);
  blip::preprocess_into(image, config, slot.data());
  CHECK(sha256_hex(slot.data(), 3 * 30 * 50) == cases[1].sha256);
  CHECK(slot.back() == -7.0f);
  const blip::Tensor<float> batch = blip::preprocess_batch({image, synthetic_image(11, 40)}, config);
  CHECK(batch.shape() == blip::Shape({2, 3, 30, 50}));
  CHECK(sha256_hex(batch.data(), 3 * 30 * 50) == cases[1].sha256);
  // With do_resize false a batch slot must already have the right size.
  auto no_resize = blip::parse_image_processor_config(nlohmann::json::parse(R"({"do_resize": false})"), "x");
  CHECK_THROWS_WITH_AS(blip::preprocess_into(image, no_resize, slot.data()), doctest::Contains("do_resize"),
                       blip::Error);
}

TEST_CASE("image processor configs: real checkpoints, defaults and bad files") {
  const std::string blip_dir = blip::test::asset("tokenizers/blip-image-captioning-base");
  if (blip::test::have_or_skip(blip_dir + "/preprocessor_config.json", "BLIP preprocessor_config.json")) {
    // {"size": 384, no resample / rescale keys}: an int size means a square.
    const auto config = blip::load_image_processor_config(blip_dir);
    CHECK(config.height == 384);
    CHECK(config.width == 384);
    CHECK(config.resample == 3);
    CHECK(config.do_rescale);
    CHECK(config.rescale_factor == 1.0 / 255.0);
    CHECK(config.image_mean[1] == 0.4578275f);
    CHECK(config.image_std[2] == 0.27577711f);
  }
  const std::string blip2_dir = blip::test::asset("tokenizers/blip2-opt-2.7b");
  if (blip::test::have_or_skip(blip2_dir + "/preprocessor_config.json", "BLIP-2 preprocessor_config.json")) {
    const auto config = blip::load_image_processor_config(blip2_dir + "/preprocessor_config.json");
    CHECK(config.height == 224);
    CHECK(config.width == 224);
    CHECK(config.rescale_factor == 0.00392156862745098);
  }
  // A folder without preprocessor_config.json: BlipImageProcessor defaults.
  const std::string empty_dir = temp_path("empty_model");
  std::filesystem::create_directories(empty_dir);
  const auto defaults = blip::load_image_processor_config(empty_dir);
  CHECK(defaults.height == 384);
  CHECK(defaults.image_mean[0] == 0.48145466f);

  auto parse_error = [](const char* json) {
    try {
      blip::parse_image_processor_config(nlohmann::json::parse(json), "cfg.json");
    } catch (const blip::Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  CHECK(parse_error(R"({"resample": 0})").find("NEAREST") != std::string::npos);
  CHECK(parse_error(R"({"resample": 9})").find("unknown resample") != std::string::npos);
  // 2^32 + 2 would become BILINEAR under an int cast.
  CHECK(parse_error(R"({"resample": 4294967298})").find("unknown resample 4294967298") != std::string::npos);
  CHECK(parse_error(R"({"size": {"shortest_edge": 224}})").find("size") != std::string::npos);
  CHECK(parse_error(R"({"size": -3})").find("positive") != std::string::npos);
  CHECK(parse_error(R"({"image_mean": [0.5, 0.5]})").find("image_mean") != std::string::npos);
  // Beyond float range: HF's float32 pixels would all be inf.
  CHECK(parse_error(R"({"image_mean": 1e300})").find("\"image_mean\" must be a number within float range") !=
        std::string::npos);
  CHECK(parse_error(R"({"image_std": [0.2, -1e39, 0.4]})").find("\"image_std\"[1] must be a number within float") !=
        std::string::npos);
  CHECK(parse_error(R"({"rescale_factor": 1e37})").find("takes pixel values beyond float range") != std::string::npos);
  CHECK(parse_error(R"({"image_std": [0.5, 0, 0.5]})").find("zero") != std::string::npos);
  CHECK(parse_error(R"({"image_processor_type": "CLIPImageProcessor"})").find("CLIPImageProcessor") !=
        std::string::npos);
  CHECK(parse_error(R"({"do_resize": "yes"})").find("do_resize") != std::string::npos);
  CHECK(parse_error(R"([1, 2])").find("object") != std::string::npos);
  CHECK(parse_error(R"({"size": [20, 30]})") == "no error");
  for (const auto& message : {parse_error(R"({"resample": 0})"), parse_error(R"({"size": -3})")})
    CHECK(message.find("cfg.json") != std::string::npos);

  const std::string bad_json = temp_path("bad_preprocessor_config.json");
  write_file(bad_json, bytes_of("{\"size\": 224,"));
  CHECK_THROWS_WITH_AS(blip::load_image_processor_config(bad_json), doctest::Contains("invalid JSON"), blip::Error);
  CHECK_THROWS_WITH_AS(blip::load_image_processor_config(temp_path("no_such_model")),
                       doctest::Contains("no_such_model"), blip::Error);
}

TEST_CASE("fixtures: load_image + BlipImageProcessor against Hugging Face on real photos") {
  const std::string directory = blip::test::fixture("preprocess");
  if (!blip::test::have_or_skip(directory + "/manifest.json", "preprocess fixtures")) return;
  if (!blip::test::have_or_skip(blip::test::asset("images"), "asset images")) return;
  const auto manifest = nlohmann::json::parse(read_file(directory + "/manifest.json"));

  // The two processor configs of the fixtures, read from the real checkpoint
  // files when present (else built from the manifest).
  std::map<int, blip::ImageProcessorConfig> configs;
  for (const auto& [size, model] : {std::pair<int, const char*>{384, "blip-image-captioning-base"},
                                    std::pair<int, const char*>{224, "blip2-opt-2.7b"}}) {
    const std::string dir = blip::test::asset(std::string("tokenizers/") + model);
    blip::ImageProcessorConfig config;
    if (std::filesystem::exists(dir + "/preprocessor_config.json")) {
      config = blip::load_image_processor_config(dir);
    } else {
      config = blip::parse_image_processor_config(manifest.at("processor_configs").at(model), model);
    }
    REQUIRE(config.height == size);
    configs[size] = config;
  }

  int png_files = 0, jpeg_files = 0, pixel_value_files = 0;
  for (const auto& entry : manifest.at("files")) {
    const std::string image_name = entry.at("image");
    const bool is_png = entry.at("format") == "PNG";
    const std::string path = blip::test::asset("images/" + image_name);
    if (!blip::test::have_or_skip(path, image_name.c_str())) continue;
    INFO(image_name);
    (is_png ? png_files : jpeg_files) += 1;

    const blip::Image image = blip::load_image(path);
    CHECK(image.width == entry.at("loaded_size")[0].get<int>());
    CHECK(image.height == entry.at("loaded_size")[1].get<int>());
    const bool decoded_identical = sha256_hex(image.rgb) == entry.at("loaded_rgb_sha256").get<std::string>();
    if (is_png) CHECK(decoded_identical);  // Pillow and stb_image inflate to the same bytes

    for (int size : {224, 384}) {
      const std::string key = "resized_u8_sha256_" + std::to_string(size);
      const blip::Image resized = blip::resize_bicubic(image, size, size);
      const bool resized_identical = sha256_hex(resized.rgb) == entry.at(key).get<std::string>();
      if (is_png) CHECK(resized_identical);

      const std::string stem = image_name.substr(0, image_name.rfind('.'));
      const std::string fixture_path = directory + "/" + stem + "_" + std::to_string(size) + ".safetensors";
      if (!std::filesystem::exists(fixture_path)) continue;  // the manifest lists sizes without a tensor file
      ++pixel_value_files;
      const blip::Tensor<const float> expected = read_f32_tensor(fixture_path, "pixel_values");
      REQUIRE(expected.shape() == blip::Shape({1, 3, size, size}));
      const blip::Tensor<float> actual = blip::preprocess(image, configs[size]);
      REQUIRE(actual.numel() == expected.numel());
      double max_pixel_value_difference = 0.0;
      for (std::int64_t i = 0; i < actual.numel(); ++i)
        max_pixel_value_difference =
            std::max(max_pixel_value_difference, std::abs(double(actual.data()[i]) - double(expected.data()[i])));

      // HF's resized uint8 image, recovered exactly from its pixel_values: the
      // per-channel map u8 -> (u8 / 255 - mean) / std is strictly increasing,
      // so every float names one byte. The manifest's hash confirms it.
      const blip::ImageProcessorConfig& config = configs[size];
      std::map<float, int> inverse[3];
      for (int c = 0; c < 3; ++c)
        for (int v = 0; v < 256; ++v)
          inverse[c][(static_cast<float>(v * config.rescale_factor) - config.image_mean[c]) / config.image_std[c]] = v;
      Bytes hf_resized(static_cast<std::size_t>(size) * size * 3);
      bool recovered = true;
      const std::size_t plane = static_cast<std::size_t>(size) * size;
      for (int c = 0; c < 3; ++c)
        for (std::size_t p = 0; p < plane; ++p) {
          const auto found = inverse[c].find(expected.data()[c * plane + p]);
          recovered = recovered && found != inverse[c].end();
          hf_resized[3 * p + c] = static_cast<std::uint8_t>(found == inverse[c].end() ? 0 : found->second);
        }
      REQUIRE(recovered);
      CHECK(sha256_hex(hf_resized) == entry.at(key).get<std::string>());
      int max_byte_difference = 0;
      std::size_t differing_bytes = 0;
      for (std::size_t i = 0; i < hf_resized.size(); ++i) {
        const int difference = std::abs(int(hf_resized[i]) - int(resized.rgb[i]));
        max_byte_difference = std::max(max_byte_difference, difference);
        differing_bytes += difference != 0;
      }
      const double differing_fraction = double(differing_bytes) / double(hf_resized.size());
      std::printf(
          "%-42s %s %3d px: decoded %s | resized u8 max|diff| %d, %.2f%% bytes differ | pixel_values max|diff| %.3g\n",
          image_name.c_str(), is_png ? "PNG " : "JPEG", size, decoded_identical ? "identical" : "differs  ",
          max_byte_difference, 100.0 * differing_fraction, max_pixel_value_difference);
      if (is_png) {
        CHECK(max_pixel_value_difference == 0.0);  // bit-identical
      } else {
        // stb_image vs libjpeg-turbo. Measured on these files (decoded RGB
        // against HF's load_image, with the oracle): max |diff| 1-3 per byte,
        // 1-6% of bytes differ. After the resize (printed above): max |diff|
        // 1-4, 1.3-8% of bytes, pixel_values max |diff| <= 0.059 (4 / 255 /
        // std). Bounds with margin:
        CHECK(max_byte_difference <= 6);
        CHECK(differing_fraction <= 0.15);
        CHECK(max_pixel_value_difference <= 6.0 / 255.0 / 0.26130258);
      }
    }
  }
  CHECK(png_files == 5);
  CHECK(jpeg_files == 7);
  CHECK(pixel_value_files == 16);
}

TEST_CASE("test_image.png -> pv224.safetensors, the first oracle fixture, is bit-identical") {
  const std::string image_path = blip::test::fixture("preprocess/test_image.png");
  const std::string tensor_path = blip::test::fixture("preprocess/pv224.safetensors");
  if (!blip::test::have_or_skip(image_path, "test_image.png") || !blip::test::have_or_skip(tensor_path, "pv224"))
    return;
  blip::ImageProcessorConfig config;
  config.height = config.width = 224;
  const blip::Tensor<float> actual = blip::preprocess(blip::load_image(image_path), config);
  const blip::Tensor<const float> expected = read_f32_tensor(tensor_path, "pixel_values");
  REQUIRE(expected.numel() == actual.numel());
  CHECK(std::memcmp(actual.data(), expected.data(), actual.bytes()) == 0);
}

TEST_CASE("EXIF orientation 1..8 in a PNG eXIf chunk gives PIL's exif_transpose") {
  // PIL: Image.fromarray(3 x 2 numbered image) saved with the chunk, then
  // ImageOps.exif_transpose(...).convert("RGB"); pixel numbers row by row.
  using Grid = std::vector<std::vector<int>>;
  const std::map<int, Grid> expected = {{1, {{0, 1, 2}, {3, 4, 5}}},   {2, {{2, 1, 0}, {5, 4, 3}}},
                                        {3, {{5, 4, 3}, {2, 1, 0}}},   {4, {{3, 4, 5}, {0, 1, 2}}},
                                        {5, {{0, 3}, {1, 4}, {2, 5}}}, {6, {{3, 0}, {4, 1}, {5, 2}}},
                                        {7, {{5, 2}, {4, 1}, {3, 0}}}, {8, {{2, 5}, {1, 4}, {0, 3}}}};
  for (const auto& [orientation, grid] : expected) {
    INFO("orientation ", orientation);
    // Little- and big-endian TIFF, chunk before and after the image data: Pillow honours all four.
    CHECK(pixel_numbers(decode(numbered_png(png_chunk("eXIf", orientation_exif(orientation))))) == grid);
    CHECK(pixel_numbers(decode(numbered_png(png_chunk("eXIf", orientation_exif(orientation, true))))) == grid);
    CHECK(pixel_numbers(decode(numbered_png({}, png_chunk("eXIf", orientation_exif(orientation))))) == grid);
    // The Image-level helper agrees.
    CHECK(pixel_numbers(blip::exif_transpose(decode(numbered_png()), orientation)) == grid);
  }
  // Values that are not 2..8 leave the image alone.
  for (int value : {0, 9, 255})
    CHECK(pixel_numbers(decode(numbered_png(png_chunk("eXIf", orientation_exif(value))))) == expected.at(1));
}

TEST_CASE("EXIF orientation sources Pillow reads in PNG: XMP, raw profile, tEXt, repeated chunks") {
  // Each expectation was checked with Pillow 9.4 on the same construction.
  const std::vector<std::vector<int>> upright = {{0, 1, 2}, {3, 4, 5}};
  const std::vector<std::vector<int>> rotate270 = {{3, 0}, {4, 1}, {5, 2}};  // orientation 6
  const std::vector<std::vector<int>> rotate90 = {{2, 5}, {1, 4}, {0, 3}};   // orientation 8
  const std::vector<std::vector<int>> rotate180 = {{5, 4, 3}, {2, 1, 0}};    // orientation 3
  const std::vector<std::vector<int>> mirror = {{2, 1, 0}, {5, 4, 3}};       // orientation 2
  const std::string xmp = "<x:xmpmeta><rdf:Description tiff:Orientation=\"6\"/></x:xmpmeta>";
  auto itxt = [](const std::string& key, const std::string& text) {
    return png_chunk("iTXt", bytes_of(key + std::string("\0\0\0\0\0", 5) + text));
  };
  CHECK(pixel_numbers(decode(numbered_png(itxt("XML:com.adobe.xmp", xmp)))) == rotate270);
  CHECK(pixel_numbers(decode(
            numbered_png(png_chunk("tEXt", bytes_of("XML:com.adobe.xmp" + std::string(1, '\0') + xmp))))) == rotate270);
  CHECK(pixel_numbers(decode(numbered_png(itxt("XML:com.adobe.xmp", "<tiff:Orientation>8</tiff:Orientation>")))) ==
        rotate90);
  // ImageMagick's hex "Raw profile type exif", in tEXt and in (stored-deflate) zTXt.
  const Bytes exif3 = orientation_exif(3);
  std::string hex;
  for (std::uint8_t byte : exif3) {
    char pair[3];
    std::snprintf(pair, sizeof pair, "%02x", byte);
    hex += pair;
  }
  const std::string raw =
      "\nexif\n" + std::to_string(exif3.size()) + "\n" + hex.substr(0, 20) + "\n" + hex.substr(20) + "\n";
  CHECK(pixel_numbers(decode(numbered_png(
            png_chunk("tEXt", bytes_of("Raw profile type exif" + std::string(1, '\0') + raw))))) == rotate180);
  Bytes ztxt = bytes_of("Raw profile type exif" + std::string(2, '\0'));
  const Bytes compressed = zlib_stored(bytes_of(raw));
  ztxt.insert(ztxt.end(), compressed.begin(), compressed.end());
  CHECK(pixel_numbers(decode(numbered_png(png_chunk("zTXt", ztxt)))) == rotate180);
  // XMP only counts when the EXIF has no Orientation tag at all.
  const Bytes empty_ifd = {'I', 'I', '*', 0, 8, 0, 0, 0, 0, 0};
  Bytes chunks = png_chunk("eXIf", empty_ifd);
  Bytes xmp_chunk = itxt("XML:com.adobe.xmp", xmp);
  chunks.insert(chunks.end(), xmp_chunk.begin(), xmp_chunk.end());
  CHECK(pixel_numbers(decode(numbered_png(chunks))) == rotate270);
  chunks = png_chunk("eXIf", orientation_exif(1));
  chunks.insert(chunks.end(), xmp_chunk.begin(), xmp_chunk.end());
  CHECK(pixel_numbers(decode(numbered_png(chunks))) == upright);
  // The last eXIf wins; a tEXt chunk keyed "exif" is EXIF too.
  chunks = png_chunk("eXIf", orientation_exif(3));
  const Bytes second = png_chunk("eXIf", orientation_exif(6));
  chunks.insert(chunks.end(), second.begin(), second.end());
  CHECK(pixel_numbers(decode(numbered_png(chunks))) == rotate270);
  Bytes text_exif = bytes_of(std::string("exif") + '\0');
  const Bytes exif2 = orientation_exif(2);
  text_exif.insert(text_exif.end(), exif2.begin(), exif2.end());
  CHECK(pixel_numbers(decode(numbered_png(png_chunk("tEXt", text_exif)))) == mirror);
  // Garbage EXIF (Pillow raises "not a TIFF file") is ignored here.
  CHECK(pixel_numbers(decode(numbered_png(png_chunk("eXIf", bytes_of("garbage!garbage"))))) == upright);
}

TEST_CASE("orientation_from_exif reads TIFF field types and damaged IFDs like Pillow") {
  using Value = std::array<std::uint8_t, 4>;
  CHECK(orientation_of(orientation_exif(6)) == 6);
  CHECK(orientation_of(orientation_exif(6, true)) == 6);
  Bytes prefixed = bytes_of(std::string("Exif\0\0", 6));
  const Bytes block = orientation_exif(8);
  prefixed.insert(prefixed.end(), block.begin(), block.end());
  CHECK(orientation_of(prefixed) == 8);
  CHECK(orientation_of(tiff_block(false, 0x0112, 4, 1, Value{5, 0, 0, 0})) == 5);              // LONG
  CHECK(orientation_of(tiff_block(false, 0x0112, 8, 1, Value{7, 0, 0, 0})) == 7);              // SSHORT
  CHECK(orientation_of(tiff_block(false, 0x0112, 9, 1, Value{2, 0, 0, 0})) == 2);              // SLONG
  CHECK(orientation_of(tiff_block(false, 0x0112, 6, 1, Value{3, 0, 0, 0})) == 3);              // SBYTE
  CHECK(orientation_of(tiff_block(false, 0x0112, 1, 1, Value{6, 0, 0, 0})) == 0);              // BYTE: bytes in Python
  CHECK(orientation_of(tiff_block(false, 0x0112, 2, 2, Value{'6', 0, 0, 0})) == 0);            // ASCII
  CHECK(orientation_of(tiff_block(false, 0x0112, 7, 1, Value{6, 0, 0, 0})) == 0);              // UNDEFINED
  CHECK(orientation_of(tiff_block(false, 0x0112, 11, 1, Value{0, 0, 0xC0, 0x40})) == 6);       // FLOAT 6.0
  CHECK(orientation_of(tiff_block(false, 0x0112, 11, 1, Value{0, 0, 0xD0, 0x40})) == 0);       // FLOAT 6.5
  CHECK(orientation_of(tiff_block(false, 0x0112, 3, 2, Value{4, 0, 6, 0})) == 4);              // count 2: first value
  CHECK(orientation_of(tiff_block(false, 0x0112, 3, 0, Value{6, 0, 0, 0})) == std::nullopt);   // empty: skipped
  CHECK(orientation_of(tiff_block(false, 0x0112, 99, 1, Value{6, 0, 0, 0})) == std::nullopt);  // unknown type
  CHECK(orientation_of(tiff_block(false, 0x0110, 3, 1, Value{6, 0, 0, 0})) == std::nullopt);   // another tag
  // RATIONAL 12/2 == 6 in Python; 13/2 is not an integer; 0/0 is NaN. Stored
  // out of line at offset 26 (after the IFD and its next-IFD pointer).
  const Bytes twelve_halves = {12, 0, 0, 0, 2, 0, 0, 0}, thirteen_halves = {13, 0, 0, 0, 2, 0, 0, 0},
              zero_zero = {0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(orientation_of(tiff_block(false, 0x0112, 5, 1, Value{26, 0, 0, 0}, twelve_halves)) == 6);
  CHECK(orientation_of(tiff_block(false, 0x0112, 5, 1, Value{26, 0, 0, 0}, thirteen_halves)) == 0);
  CHECK(orientation_of(tiff_block(false, 0x0112, 5, 1, Value{26, 0, 0, 0}, zero_zero)) == 0);
  // DOUBLE 3.0, out of line.
  const Bytes three = {0, 0, 0, 0, 0, 0, 8, 0x40};
  CHECK(orientation_of(tiff_block(false, 0x0112, 12, 1, Value{26, 0, 0, 0}, three)) == 3);
  // Out-of-line data past the end stops the walk: no tag.
  CHECK(orientation_of(tiff_block(false, 0x0112, 5, 1, Value{200, 0, 0, 0})) == std::nullopt);
  // Pillow's lenient prefix "MM*\0" is accepted (big-endian from "MM").
  Bytes lenient = orientation_exif(6, true);
  lenient[2] = '*';
  lenient[3] = 0;
  CHECK(orientation_of(lenient) == 6);
  // Damaged headers: not TIFF, IFD offset past the end, entries cut off.
  CHECK(orientation_of(bytes_of("not a tiff at all")) == std::nullopt);
  Bytes far_ifd = orientation_exif(6);
  far_ifd[4] = 0xF0;
  CHECK(orientation_of(far_ifd) == std::nullopt);
  Bytes cut = orientation_exif(6);
  cut.resize(15);  // the entry is incomplete
  CHECK(orientation_of(cut) == std::nullopt);
  CHECK(orientation_of(Bytes{}) == std::nullopt);
  // Two entries with the tag: the last readable one wins.
  Bytes twice = {'I', 'I', '*', 0,    8,    0, 0, 0, 2, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 3,
                 0,   0,   0,   0x12, 0x01, 3, 0, 1, 0, 0, 0,    8,    0, 0, 0, 0, 0, 0, 0};
  CHECK(orientation_of(twice) == 8);
}

TEST_CASE("EXIF orientation in a JPEG APP1 segment: the Pillow hopper photo, every value") {
  const std::string path = blip::test::asset("images/pillow_hopper_exif_orientation6_420.jpg");
  if (!blip::test::have_or_skip(path, "hopper EXIF photo")) return;
  Bytes bytes = read_file(path);
  const blip::exif::JpegScan scan = blip::exif::scan_jpeg(bytes.data(), bytes.size());
  REQUIRE(scan.exif != nullptr);
  REQUIRE(blip::exif::jpeg_orientation(scan) == 6);
  // Find the Orientation entry's value inside the APP1 payload, to rewrite it.
  const std::size_t tiff = static_cast<std::size_t>(scan.exif - bytes.data()) + 6;
  const bool big_endian = bytes[tiff] == 'M';
  auto u16 = [&](std::size_t at) {
    return big_endian ? (bytes[at] << 8 | bytes[at + 1]) : (bytes[at + 1] << 8 | bytes[at]);
  };
  const std::size_t ifd =
      tiff + (big_endian ? (bytes[tiff + 6] << 8 | bytes[tiff + 7]) : (bytes[tiff + 5] << 8 | bytes[tiff + 4]));
  std::size_t value_at = 0;
  for (int i = 0; i < u16(ifd); ++i)
    if (u16(ifd + 2 + 12 * i) == 0x0112) value_at = ifd + 2 + 12 * i + 8;
  REQUIRE(value_at != 0);
  REQUIRE(u16(value_at) == 6);
  auto with_orientation = [&](int orientation) {
    Bytes copy = bytes;
    copy[value_at + (big_endian ? 1 : 0)] = static_cast<std::uint8_t>(orientation);
    return decode(copy, "hopper");
  };
  const blip::Image stored = with_orientation(1);
  const blip::Image loaded = blip::load_image(path);
  CHECK(loaded.rgb == blip::exif_transpose(stored, 6).rgb);
  CHECK(loaded.rgb != stored.rgb);  // the tag really changes the pixels
  for (int orientation = 1; orientation <= 8; ++orientation) {
    INFO("orientation ", orientation);
    CHECK(with_orientation(orientation).rgb == blip::exif_transpose(stored, orientation).rgb);
  }
}

TEST_CASE("convert to RGB like PIL: gray, gray+alpha, RGBA, palette + tRNS, 16-bit PNG") {
  // 8-bit gray + alpha: L replicated, alpha dropped.
  const blip::Image gray_alpha = decode(make_png(2, 1, 8, 4, {10, 0, 200, 255}));
  CHECK(gray_alpha.rgb == Bytes{10, 10, 10, 200, 200, 200});
  // RGBA: a fully transparent pixel keeps its stored RGB (no compositing).
  const blip::Image rgba = decode(make_png(2, 1, 8, 6, {0, 0, 101, 0, 1, 2, 3, 128}));
  CHECK(rgba.rgb == Bytes{0, 0, 101, 1, 2, 3});
  // Palette with a transparent entry: the palette color, transparency ignored.
  const Bytes palette = png_chunk("PLTE", {255, 0, 0, 0, 255, 0, 7, 8, 9});
  Bytes palette_chunks = palette;
  const Bytes trns = png_chunk("tRNS", {255, 0, 0});
  palette_chunks.insert(palette_chunks.end(), trns.begin(), trns.end());
  CHECK(decode(make_png(3, 1, 8, 3, {2, 1, 0}, palette_chunks)).rgb == Bytes{7, 8, 9, 0, 255, 0, 255, 0, 0});
  // 16-bit: Pillow opens gray as 32-bit integers and clamps to 255 (checked
  // with Pillow 9.4: 0 1 100 254 255 256 1000 65535 -> 0 1 100 254 255 255 255 255);
  // RGB(A) and LA keep the high byte.
  const blip::Image gray16 = decode(make_png(8, 1, 16, 0, {0, 1, 100, 254, 255, 256, 1000, 65535}));
  const Bytes gray16_expected = {0, 1, 100, 254, 255, 255, 255, 255};
  for (int x = 0; x < 8; ++x) {
    CHECK(gray16.pixel(x, 0)[0] == gray16_expected[x]);
    CHECK(gray16.pixel(x, 0)[2] == gray16_expected[x]);
  }
  const Bytes gray16_trns = png_chunk("tRNS", {0, 100});
  CHECK(decode(make_png(2, 1, 16, 0, {100, 1000}, gray16_trns)).rgb == Bytes{100, 100, 100, 255, 255, 255});
  CHECK(decode(make_png(2, 1, 16, 2, {0x1234, 0xFF00, 0x00FF, 1, 2, 0xABCD})).rgb ==
        Bytes{0x12, 0xFF, 0x00, 0, 0, 0xAB});
  CHECK(decode(make_png(1, 1, 16, 4, {0x8001, 0x1234})).rgb == Bytes{0x80, 0x80, 0x80});
  CHECK(decode(make_png(1, 1, 16, 6, {0x8001, 0x4000, 0x0100, 0})).rgb == Bytes{0x80, 0x40, 0x01});

  // The real files of the fixtures.
  const std::string gray_path = blip::test::asset("images/pillow_hopper_gray.jpg");
  if (blip::test::have_or_skip(gray_path, "grayscale JPEG")) {
    const blip::Image gray = blip::load_image(gray_path);
    bool replicated = true;
    for (std::size_t i = 0; i < gray.rgb.size(); i += 3)
      replicated = replicated && gray.rgb[i] == gray.rgb[i + 1] && gray.rgb[i] == gray.rgb[i + 2];
    CHECK(replicated);
  }
  const std::string rgba_path = blip::test::asset("images/pillow_transparent_rgba.png");
  if (blip::test::have_or_skip(rgba_path, "RGBA PNG")) {
    const Bytes file = read_file(rgba_path);
    int width, height, channels;
    stbi_uc* stored = stbi_load_from_memory(file.data(), static_cast<int>(file.size()), &width, &height, &channels, 4);
    REQUIRE(stored != nullptr);
    const blip::Image image = blip::load_image(rgba_path);
    bool same_rgb = true;
    int transparent_with_color = 0;
    for (int i = 0; i < width * height; ++i) {
      same_rgb = same_rgb && std::memcmp(stored + 4 * i, image.rgb.data() + 3 * i, 3) == 0;
      transparent_with_color += stored[4 * i + 3] == 0 && (stored[4 * i] | stored[4 * i + 1] | stored[4 * i + 2]) != 0;
    }
    stbi_image_free(stored);
    CHECK(same_rgb);
    CHECK(transparent_with_color > 0);  // e.g. (0, 0, 101) under alpha 0 stays as it is
  }
  const std::string progressive_path = blip::test::asset("images/toys_progressive_420.jpg");
  if (blip::test::have_or_skip(progressive_path, "progressive JPEG")) {
    const Bytes file = read_file(progressive_path);
    bool progressive = false;  // an SOF2 marker
    for (std::size_t i = 0; i + 1 < file.size() && !progressive; ++i)
      progressive = file[i] == 0xFF && file[i + 1] == 0xC2;
    CHECK(progressive);
    const blip::Image image = blip::load_image(progressive_path);
    CHECK(image.width == 1500);
    CHECK(image.height == 1414);
  }
}

TEST_CASE("GIF, BMP and PNM decode to Pillow's RGB") {
  // A 7 x 5 GIF whose 5 x 3 frame sits at (1, 2), palette {red, green, blue,
  // (10, 20, 30)}, index 3 transparent: made by Pillow; the expected RGB is
  // Pillow's load_image result. Transparent and uncovered pixels get the
  // transparent index's color (stb_image alone would return black).
  const std::string gif_hex =
      "47494638396107000500810000ff000000ff000000ff0a141e21f90401000003002c0100020005000300000811000104103000c0800101"
      "060a3018004040003b";
  Bytes gif;
  for (std::size_t i = 0; i < gif_hex.size(); i += 2)
    gif.push_back(static_cast<std::uint8_t>(std::stoi(gif_hex.substr(i, 2), nullptr, 16)));
  const Bytes fill = {10, 20, 30};
  Bytes expected;
  for (int i = 0; i < 14; ++i) expected.insert(expected.end(), fill.begin(), fill.end());  // rows 0 and 1
  const std::vector<Bytes> rows = {{10, 20, 30, 255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 255, 0, 0, 10, 20, 30},
                                   {10, 20, 30, 10, 20, 30, 10, 20, 30, 0, 255, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30},
                                   {10, 20, 30, 0, 0, 255, 255, 0, 0, 10, 20, 30, 0, 255, 0, 255, 0, 0, 10, 20, 30}};
  for (const Bytes& row : rows) expected.insert(expected.end(), row.begin(), row.end());
  const blip::Image image = decode(gif, "tiny.gif");
  CHECK(image.width == 7);
  CHECK(image.height == 5);
  CHECK(image.rgb == expected);
  Bytes truncated_gif(gif.begin(), gif.end() - 5);
  expect_decode_error(truncated_gif, "tiny.gif", "truncated GIF");

  // BMP, 24-bit, bottom-up rows padded to 4 bytes, BGR order.
  const int width = 3, height = 2;
  Bytes bmp = {'B', 'M'};
  auto le32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto le16 = [&](std::uint32_t v) {
    for (int i = 0; i < 2; ++i) bmp.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  le32(14 + 40 + 12 * 2);
  le32(0);
  le32(14 + 40);
  le32(40);
  le32(width);
  le32(height);
  le16(1);
  le16(24);
  for (int i = 0; i < 6; ++i) le32(0);
  const blip::Image source = synthetic_image(width, height);
  for (int y = height - 1; y >= 0; --y) {
    for (int x = 0; x < width; ++x)
      for (int c = 2; c >= 0; --c) bmp.push_back(source.pixel(x, y)[c]);
    for (int pad = 0; pad < 3; ++pad) bmp.push_back(0);
  }
  CHECK(decode(bmp, "image.bmp").rgb == source.rgb);
  expect_decode_error(Bytes(bmp.begin(), bmp.end() - 4), "image.bmp", "truncated BMP");
  Bytes bmp16 = bmp;
  bmp16[28] = 16;
  expect_decode_error(bmp16, "image16.bmp", "16-bit BMP");

  // Binary PPM and PGM with maxval 255 (others are refused).
  Bytes ppm = bytes_of("P6\n# comment\n3 2\n255\n");
  ppm.insert(ppm.end(), source.rgb.begin(), source.rgb.end());
  CHECK(decode(ppm, "image.ppm").rgb == source.rgb);
  Bytes pgm = bytes_of("P5 2 1 255\n");
  pgm.insert(pgm.end(), {17, 230});
  CHECK(decode(pgm, "image.pgm").rgb == Bytes{17, 17, 17, 230, 230, 230});
  Bytes pgm15 = bytes_of("P5 2 1 15\n");
  pgm15.insert(pgm15.end(), {1, 15});
  expect_decode_error(pgm15, "image15.pgm", "maxval 15");
}

TEST_CASE("hostile and broken files raise blip::Error naming the file") {
  // Missing file and empty file.
  CHECK_THROWS_WITH_AS(blip::load_image(temp_path("does_not_exist.jpg")), doctest::Contains("does_not_exist.jpg"),
                       blip::Error);
  const std::string empty = temp_path("empty.png");
  write_file(empty, {});
  CHECK_THROWS_WITH_AS(blip::load_image(empty), doctest::Contains("empty.png: empty file"), blip::Error);
  CHECK_THROWS_WITH_AS(blip::load_image(temp_path("")), doctest::Contains("io_image_test_files"), blip::Error);

  // Random bytes, and random bytes behind real signatures.
  std::mt19937 random(11);
  Bytes noise(4096);
  for (auto& byte : noise) byte = static_cast<std::uint8_t>(random());
  noise[0] = 'x';
  expect_decode_error(noise, "noise.bin", "not a supported image");
  Bytes png_noise = noise;
  std::memcpy(png_noise.data(), "\x89PNG\r\n\x1A\n", 8);
  CHECK_THROWS_WITH_AS(decode(png_noise, "noise.png"), doctest::Contains("noise.png"), blip::Error);
  Bytes jpeg_noise = noise;
  std::memcpy(jpeg_noise.data(), "\xFF\xD8\xFF", 3);
  jpeg_noise.insert(jpeg_noise.end(), {0xFF, 0xD9});
  CHECK_THROWS_WITH_AS(decode(jpeg_noise, "noise.jpg"), doctest::Contains("noise.jpg"), blip::Error);

  // Formats Pillow cannot open at all.
  expect_decode_error(bytes_of("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x01\x02\x03\x04"), "sky.hdr",
                      "not a supported image");

  // Truncated PNG: Pillow fails once image data is missing, but reads a file
  // that only lacks IEND (checked with Pillow 9.4: cutting 1-10 bytes loads,
  // 100 bytes does not).
  const std::string png_path = blip::test::asset("images/skimage_coffee.png");
  if (blip::test::have_or_skip(png_path, "PNG photo")) {
    const Bytes png = read_file(png_path);
    const blip::Image whole = decode(png);
    for (std::size_t cut : {1, 3, 10, 12}) {
      INFO("cut ", cut);
      CHECK(decode(Bytes(png.begin(), png.end() - static_cast<std::ptrdiff_t>(cut)), "cut.png").rgb == whole.rgb);
    }
    for (std::size_t cut : {std::size_t{100}, std::size_t{1000}, png.size() / 2, png.size() - 20}) {
      INFO("cut ", cut);
      expect_decode_error(Bytes(png.begin(), png.end() - static_cast<std::ptrdiff_t>(cut)), "cut.png", "cut.png");
    }
    // A damaged header checksum: Pillow raises "broken PNG file".
    Bytes bad_crc = png;
    bad_crc[29] ^= 0xFF;
    expect_decode_error(bad_crc, "crc.png", "bad checksum in chunk IHDR");
    // A written-to-disk truncated file through load_image.
    const std::string cut_path = temp_path("truncated.png");
    write_file(cut_path, Bytes(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 3)));
    CHECK_THROWS_WITH_AS(blip::load_image(cut_path), doctest::Contains("truncated.png: truncated"), blip::Error);
  }
  // Truncated JPEG: Pillow rejects any JPEG without its end-of-image marker.
  const std::string jpeg_path = blip::test::asset("images/flickr8k_2108799322_e25aa6e185.jpg");
  if (blip::test::have_or_skip(jpeg_path, "JPEG photo")) {
    const Bytes jpeg = read_file(jpeg_path);
    for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{100}, jpeg.size() / 2, jpeg.size() - 4}) {
      INFO("cut ", cut);
      expect_decode_error(Bytes(jpeg.begin(), jpeg.end() - static_cast<std::ptrdiff_t>(cut)), "cut.jpg",
                          "truncated JPEG");
    }
    // Bytes after the end-of-image marker are ignored, as by libjpeg.
    Bytes trailing = jpeg;
    trailing.insert(trailing.end(), {1, 2, 3, 4});
    CHECK(decode(trailing).rgb == decode(jpeg).rgb);
    // The pixel limit, overridden both ways (500 x 358 = 179,000 pixels).
    expect_decode_error(jpeg, "limited.jpg", "179000 pixels, above the limit of 1000", 1000);
    CHECK(blip::decode_image(jpeg.data(), jpeg.size(), "unlimited.jpg", 0).width == 500);
  }

  // Decompression bombs: tiny files whose headers claim huge images.
  {
    Bytes header;
    put_u32_be(header, 100000);
    put_u32_be(header, 100000);
    header.insert(header.end(), {8, 2, 0, 0, 0});
    Bytes bomb = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    for (const Bytes& chunk :
         {png_chunk("IHDR", header), png_chunk("IDAT", zlib_stored({0, 0, 0, 0})), png_chunk("IEND", {})})
      bomb.insert(bomb.end(), chunk.begin(), chunk.end());
    expect_decode_error(bomb, "bomb.png", "10000000000 pixels, above the limit of 178956970");
    // A JPEG SOF claiming 65500 x 65500 (4.29e9 pixels).
    Bytes jpeg_bomb = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xFF, 0xDC, 0xFF, 0xDC, 1, 1,    0x11, 0,
                       0xFF, 0xDA, 0,    8,    1, 1,  0, 0,    63,   0,    0,    0, 0xFF, 0xD9};
    expect_decode_error(jpeg_bomb, "bomb.jpg", "pixels, above the limit");
  }
  // Zero-size image in the header.
  expect_decode_error(make_png(0, 0, 8, 2, {}), "zero.png", "zero.png");
  // Apple's CgBI PNG.
  Bytes cgbi = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const Bytes cgbi_chunk = png_chunk("CgBI", {0x50, 0, 0x20, 2});
  cgbi.insert(cgbi.end(), cgbi_chunk.begin(), cgbi_chunk.end());
  expect_decode_error(cgbi, "apple.png", "CgBI");
  // A 4-channel JPEG without an Adobe CMYK marker.
  Bytes cmyk = {0xFF, 0xD8, 0xFF, 0xC0, 0, 20, 8,    0, 8, 0,    8, 4,    1,
                0x11, 0,    2,    0x11, 0, 3,  0x11, 0, 4, 0x11, 0, 0xFF, 0xD9};
  expect_decode_error(cmyk, "cmyk.jpg", "4-channel JPEG");
}

TEST_CASE("fuzz: the EXIF, JPEG and PNG parsers and the decoder survive random mutations") {
  std::mt19937 random(2024);
  auto mutate = [&](Bytes bytes) {
    const int edits = 1 + static_cast<int>(random() % 8);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const std::size_t at = random() % bytes.size();
      switch (random() % 5) {
        case 0: bytes[at] = static_cast<std::uint8_t>(random()); break;
        case 1: bytes[at] ^= static_cast<std::uint8_t>(1u << (random() % 8)); break;
        case 2: bytes.resize(at); break;  // truncate
        case 3:
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(random()));
          break;
        case 4: bytes[at] = (random() & 1) ? 0xFF : 0x00; break;  // extreme values: lengths, counts, offsets
      }
    }
    return bytes;
  };
  // EXIF blocks: a rich IFD (several entries, out-of-line values) in both byte orders.
  const Bytes rational_ifd = tiff_block(false, 0x0112, 5, 1, {26, 0, 0, 0}, {12, 0, 0, 0, 2, 0, 0, 0});
  const std::vector<Bytes> exif_seeds = {orientation_exif(6), orientation_exif(3, true), rational_ifd,
                                         tiff_block(true, 0x0112, 3, 3, {0, 0, 0, 26}, {0, 6, 0, 1, 0, 2})};
  int found = 0;
  for (int i = 0; i < 20000; ++i) {
    const Bytes mutated = mutate(exif_seeds[i % exif_seeds.size()]);
    const auto orientation = orientation_of(mutated);
    found += orientation.has_value();
  }
  CHECK(found > 0);  // mutations that keep the tag still parse

  // Container walks on mutated PNGs full of metadata chunks, and on a JPEG.
  Bytes metadata = png_chunk("eXIf", orientation_exif(6));
  for (const Bytes& chunk : {png_chunk("iTXt", literal_bytes("XML:com.adobe.xmp\0\0\0\0\0tiff:Orientation=\"8\"")),
                             png_chunk("tEXt", literal_bytes("Raw profile type exif\0\nexif\n 10\n4d4d002a00000008"))})
    metadata.insert(metadata.end(), chunk.begin(), chunk.end());
  const Bytes png = numbered_png(metadata, png_chunk("eXIf", orientation_exif(3)));
  for (int i = 0; i < 20000; ++i) {
    const Bytes mutated = mutate(png);
    if (mutated.size() < 8) continue;
    const blip::exif::PngScan scan = blip::exif::scan_png(mutated.data(), mutated.size());
    (void)blip::exif::png_orientation(scan);
  }
  // Whole decodes (stb_image included) of mutated small files: only blip::Error may escape.
  std::vector<Bytes> files = {png, make_png(5, 4, 16, 0, std::vector<std::uint16_t>(20, 4000))};
  const std::string hopper = blip::test::asset("images/pillow_hopper_exif_orientation6_420.jpg");
  if (std::filesystem::exists(hopper)) files.push_back(read_file(hopper));
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    const Bytes& seed = files[i % files.size()];
    const Bytes mutated = mutate(seed);
    if (mutated.size() >= 3 && seed[0] == 0xFF) {
      const blip::exif::JpegScan scan = blip::exif::scan_jpeg(mutated.data(), mutated.size());
      (void)blip::exif::jpeg_orientation(scan);
    }
    try {
      // A small pixel limit keeps mutated headers from asking for huge images.
      const blip::Image image = blip::decode_image(mutated.data(), mutated.size(), "fuzz", 1 << 20);
      CHECK(image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3);
      ++decoded;
    } catch (const blip::Error& error) {
      CHECK(std::string(error.what()).rfind("fuzz", 0) == 0);
      ++rejected;
    }
  }
  std::printf("fuzz: %d mutated files decoded, %d rejected with blip::Error\n", decoded, rejected);
  CHECK(decoded > 0);
  CHECK(rejected > 0);
}

}  // namespace io_image_test
