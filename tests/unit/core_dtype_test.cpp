// f16 / bf16 <-> f32 conversion against known bit patterns.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "blip/core/dtype.hpp"
#include "blip/core/tensor.hpp"

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
