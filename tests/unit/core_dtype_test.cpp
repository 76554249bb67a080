// f16 / bf16 <-> f32 conversion against known bit patterns; int8 / int4 quantization of a row
// (core/quantization.hpp) worked by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "blip/core/dtype.hpp"
#include "blip/core/quantization.hpp"
#include "blip/core/stored_matrix.hpp"
#include "blip/core/tensor.hpp"

namespace core_dtype_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using namespace blip;

TEST_CASE("f16 -> f32 known bit patterns") {
  CHECK(f16_to_f32({0x3c00}) == 1.0f);
  CHECK(f16_to_f32({0xc000}) == -2.0f);
  CHECK(f16_to_f32({0x7bff}) == 65504.0f);
  CHECK(f16_to_f32({0x0400}) == std::ldexp(1.0f, -14));   // smallest normal
  CHECK(f16_to_f32({0x0001}) == std::ldexp(1.0f, -24));   // smallest subnormal
  CHECK(f16_to_f32({0x03ff}) == std::ldexp(1023.0f, -24)); // largest subnormal
  CHECK(std::isinf(f16_to_f32({0x7c00})));
  CHECK(f16_to_f32({0xfc00}) < 0);
  CHECK(std::isnan(f16_to_f32({0x7e00})));
  CHECK(float_bits(f16_to_f32({0x8000})) == 0x80000000u);  // negative zero
  CHECK(f16_to_f32({0x3555}) == 0.333251953125f);
}

TEST_CASE("f32 -> f16 rounds to nearest even, handles subnormals, overflow, NaN") {
  CHECK(f32_to_f16(1.0f).bits == 0x3c00);
  CHECK(f32_to_f16(65504.0f).bits == 0x7bff);
  CHECK(f32_to_f16(65519.0f).bits == 0x7bff);   // below the halfway point to 65536
  CHECK(f32_to_f16(65520.0f).bits == 0x7c00);   // halfway rounds to even = Inf
  CHECK(f32_to_f16(1e10f).bits == 0x7c00);
  CHECK(f32_to_f16(-1e10f).bits == 0xfc00);
  CHECK(f32_to_f16(std::numeric_limits<float>::infinity()).bits == 0x7c00);
  CHECK((f32_to_f16(std::nanf("")).bits & 0x7c00) == 0x7c00);
  CHECK((f32_to_f16(std::nanf("")).bits & 0x03ff) != 0);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (down).
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02: ties to even (up).
  CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3c02);
  CHECK(f32_to_f16(std::ldexp(1.0f, -24)).bits == 0x0001);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)).bits == 0x0000);          // tie to even: zero
  CHECK(f32_to_f16(std::ldexp(1.5f, -25)).bits == 0x0001);
  CHECK(f32_to_f16(std::ldexp(3.0f, -25)).bits == 0x0002);          // 1.5 ulp: tie to even 2
  CHECK(f32_to_f16(std::ldexp(1023.5f, -24)).bits == 0x0400);       // rounds up into the normals
  CHECK(f32_to_f16(-std::ldexp(1.0f, -30)).bits == 0x8000);
}

TEST_CASE("f16 round trip is exact for all 65536 patterns except NaN payloads") {
  for (unsigned bits = 0; bits < 65536; ++bits) {
    const Float16 value{static_cast<std::uint16_t>(bits)};
    const float wide = f16_to_f32(value);
    if (std::isnan(wide)) continue;
    CHECK_MESSAGE(f32_to_f16(wide).bits == bits, "bits ", bits);
  }
}

TEST_CASE("bf16 conversions") {
  CHECK(bf16_to_f32({0x3f80}) == 1.0f);
  CHECK(bf16_to_f32({0xc040}) == -3.0f);
  CHECK(f32_to_bf16(1.0f).bits == 0x3f80);
  CHECK(f32_to_bf16(bits_to_float(0x3f808000u)).bits == 0x3f80);  // tie, even stays
  CHECK(f32_to_bf16(bits_to_float(0x3f818000u)).bits == 0x3f82);  // tie, odd rounds up
  CHECK(f32_to_bf16(bits_to_float(0x3f808001u)).bits == 0x3f81);
  CHECK(f32_to_bf16(bits_to_float(0x7f7fffffu)).bits == 0x7f80);  // max float rounds to Inf
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()).bits == 0x7f80);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_float(0x7f800001u)))));  // NaN never becomes Inf
  CHECK(f32_to_bf16(bits_to_float(0x00010000u)).bits == 0x0001);  // subnormals pass through
  for (unsigned bits = 0; bits < 65536; ++bits) {
    const float wide = bf16_to_f32({static_cast<std::uint16_t>(bits)});
    if (std::isnan(wide)) continue;
    CHECK(f32_to_bf16(wide).bits == bits);
  }
}

TEST_CASE("round_to_bf16 over an array gives f32_to_bf16's bits for every value, in place too") {
  // Ties both ways, the largest finite values (rounding to Inf), subnormals, signed zeros, Inf and NaNs
  // (signalling and quiet, both signs), then a sweep of bit patterns across the whole f32 range.
  std::vector<std::uint32_t> patterns = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x7f7fffffu, 0xff7fffffu,
                                         0x00000001u, 0x807fffffu, 0x00008000u, 0x00018000u, 0x00000000u,
                                         0x80000000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0xff800001u,
                                         0x7fc00000u, 0x7fffffffu, 0xffffffffu};
  for (std::uint64_t bits = 0; bits <= 0xffffffffu; bits += 0x10003u) patterns.push_back(static_cast<std::uint32_t>(bits));
  std::vector<float> values(patterns.size()), rounded(patterns.size());
  for (std::size_t i = 0; i < patterns.size(); ++i) std::memcpy(&values[i], &patterns[i], sizeof(float));
  round_to_bf16(values.data(), rounded.data(), static_cast<std::int64_t>(values.size()));
  std::vector<float> in_place = values;
  round_to_bf16(in_place.data(), in_place.data(), static_cast<std::int64_t>(in_place.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint32_t expected = static_cast<std::uint32_t>(f32_to_bf16(values[i]).bits) << 16;
    std::uint32_t got, got_in_place;
    std::memcpy(&got, &rounded[i], sizeof got);
    std::memcpy(&got_in_place, &in_place[i], sizeof got_in_place);
    INFO("pattern 0x", std::hex, patterns[i]);
    CHECK(got == expected);
    CHECK(got_in_place == expected);
  }
}

TEST_CASE("Tensor views, reshape, slices and Eigen maps share storage") {
  Tensor<float> tensor(Shape{2, 3, 4});
  CHECK(tensor.numel() == 24);
  CHECK(reinterpret_cast<std::uintptr_t>(tensor.data()) % 64 == 0);
  for (int i = 0; i < 24; ++i) tensor.data()[i] = static_cast<float>(i);
  CHECK(tensor.at(1, 2, 3) == 23.0f);
  CHECK(tensor[1].at(0, 1) == 13.0f);
  CHECK(tensor.slice(1, 2).shape() == Shape{1, 3, 4});
  auto matrix = tensor.matrix();
  CHECK(matrix.rows() == 6);
  CHECK(matrix.cols() == 4);
  matrix(5, 3) = -1.0f;
  CHECK(tensor.at(1, 2, 3) == -1.0f);
  Tensor<const float> read_only = tensor;
  CHECK(read_only.reshape(Shape{6, 4}).at(5, 3) == -1.0f);
  CHECK_THROWS_AS(tensor.reshape(Shape{5, 5}), Error);
  CHECK_THROWS_AS(tensor.at(2, 0, 0), Error);
  auto copy = tensor.clone();
  copy.at(0, 0, 0) = 100.0f;
  CHECK(tensor.at(0, 0, 0) == 0.0f);
}

TEST_CASE("int8 and int4 quantization of a row, worked by hand, and read back through StoredMatrix") {
  // int8: the largest magnitude 2.54 gives scale 0.02; 0.03 / 0.02 = 1.5 rounds to even (2), -0.05 / 0.02 = -2.5
  // to even (-2), 2.54 -> 127, -1.0 -> -50.
  const float row[] = {0.03f, -0.05f, 2.54f, -1.0f, 0.0f};
  std::int8_t q[5];
  const float scale = quantization::quantize_row_int8(row, 5, q);
  CHECK(scale == 2.54f / 127.0f);
  CHECK(q[0] == static_cast<std::int8_t>(std::nearbyint(0.03f / scale)));
  CHECK(q[2] == 127);
  CHECK(q[3] == -50);
  CHECK(q[4] == 0);
  const float zeros[3] = {0, 0, 0};
  std::int8_t zero_q[3];
  CHECK(quantization::quantize_row_int8(zeros, 3, zero_q) == 0.0f);  // a zero row: scale 0, q 0
  CHECK(zero_q[1] == 0);

  // int4 over 35 inputs: two blocks (32 + 3), llama.cpp's Q4_0 rule. Block 0: the first weight of largest magnitude
  // is -7 (7 at input 31 ties it and comes later) -> scale -7 / -8 = 0.875; block 1: 1.4 -> scale -0.175.
  // q = round-half-even(w / scale) in [-8, 7]. Bytes: input 2j in the low nibble, 2j + 1 in the high one, q + 8.
  std::vector<float> values(35, 0.0f);
  values[0] = 2.5f;   // 2.857 -> 3
  values[1] = -7.0f;  // -> -8: the extreme itself, exactly
  values[2] = 3.5f;   // -> 4
  values[4] = 0.4375f;  // 0.5 -> 0 (ties to even)
  values[6] = 1.3125f;  // 1.5 -> 2 (ties to even)
  values[31] = 7.0f;  // 8 -> clamped to 7
  values[32] = 1.4f;  // block 1 -> -8 (a positive extreme: negative scale)
  values[33] = -0.3f; // 1.714 -> 2
  values[34] = 0.1f;  // -0.571 -> -1
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(quantization::int4_row_bytes(35)));
  std::vector<float> scales(static_cast<std::size_t>(quantization::int4_blocks(35)));
  REQUIRE(bytes.size() == 18);
  REQUIRE(scales.size() == 2);
  quantization::quantize_row_int4(values.data(), 35, bytes.data(), scales.data());
  CHECK(scales[0] == 0.875f);
  CHECK(scales[1] == 1.4f / -8.0f);
  CHECK(bytes[0] == ((-8 + 8) << 4 | (3 + 8)));
  CHECK(bytes[1] == (8 << 4 | (4 + 8)));
  CHECK(bytes[2] == (8 << 4 | (0 + 8)));
  CHECK(bytes[3] == (8 << 4 | (2 + 8)));
  CHECK(bytes[15] == ((7 + 8) << 4 | 8));
  CHECK(bytes[16] == ((2 + 8) << 4 | (-8 + 8)));
  CHECK((bytes[17] & 0x0f) == -1 + 8);
  CHECK(quantization::int4_in_row(bytes.data(), 1) * scales[0] == -7.0f);
  CHECK(quantization::int4_in_row(bytes.data(), 32) * scales[1] == 1.4f);
  CHECK((bytes[17] >> 4) == 8);  // the padding nibble of an odd row: q = 0

  // StoredMatrix reads a quantized row back as q · scale.
  StoredMatrix matrix;
  matrix.dtype = DType::U8;
  matrix.data = bytes.data();
  matrix.rows = 1;
  matrix.columns = 35;
  matrix.quantization = WeightPrecision::Int4;
  matrix.scales = scales.data();
  CHECK(matrix.bytes() == 18);
  std::vector<float> read(35);
  matrix.read_row(0, read.data());
  CHECK(read[0] == 3.0f * 0.875f);
  CHECK(read[1] == -7.0f);
  CHECK(read[32] == 1.4f);
  CHECK(read[5] == 0.0f);

  // NaN or ±inf: int8's row and int4's block get a NaN scale and q = 0 (outputs NaN, as in f32; never a NaN cast
  // to an integer), the other int4 blocks are untouched.
  const float not_finite[3] = {1.0f, std::numeric_limits<float>::infinity(), -2.0f};
  std::int8_t not_finite_q[3] = {1, 1, 1};
  CHECK(std::isnan(quantization::quantize_row_int8(not_finite, 3, not_finite_q)));
  CHECK((not_finite_q[0] == 0 && not_finite_q[1] == 0 && not_finite_q[2] == 0));
  std::vector<float> nan_block = values;
  nan_block[33] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::uint8_t> nan_bytes(bytes.size());
  std::vector<float> nan_scales(scales.size());
  quantization::quantize_row_int4(nan_block.data(), 35, nan_bytes.data(), nan_scales.data());
  CHECK(nan_scales[0] == scales[0]);
  CHECK(std::isnan(nan_scales[1]));
  CHECK(std::equal(nan_bytes.begin(), nan_bytes.begin() + 16, bytes.begin()));
  CHECK((nan_bytes[16] == 0x88 && nan_bytes[17] == 0x88));
  StoredMatrix int8_matrix;
  int8_matrix.dtype = DType::I8;
  int8_matrix.data = q;
  int8_matrix.rows = 1;
  int8_matrix.columns = 5;
  int8_matrix.quantization = WeightPrecision::Int8;
  int8_matrix.scales = &scale;
  float int8_read[5];
  int8_matrix.read_row(0, int8_read);
  CHECK(int8_read[3] == -50.0f * scale);
}

}  // namespace core_dtype_test
