// Tests of blip/io/safetensors.hpp: round trips for every dtype and rank,
// f16 / bf16 conversion on read, the writer's exact byte layout, sharded
// checkpoints, and one hostile file per validation rule (each error must name
// the file and, where one is at fault, the tensor).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "test_support.hpp"

namespace io_safetensors_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::error_of;
using blip::test::read_bytes;

namespace fs = std::filesystem;
using namespace blip;

namespace {

fs::path scratch_dir() {
  const fs::path dir = fs::path(BLIP_TEST_BINARY_DIR) / "io_safetensors_test_files";
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(stream.good());
}

// A file with the given header text and data bytes; the size field is the
// header's length unless `size_field` overrides it.
std::string raw_file(const std::string& name, const std::string& header, std::size_t data_bytes = 0,
                     std::optional<std::uint64_t> size_field = std::nullopt) {
  const std::uint64_t size = size_field ? *size_field : header.size();
  std::vector<std::uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(size >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (std::size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<std::uint8_t>(i * 7 + 1));
  const std::string path = (scratch_dir() / name).string();
  write_bytes(path, bytes);
  return path;
}

// Opens `path` expecting a blip::Error whose message holds the path and every
// one of `fragments`; returns the message.
std::string expect_rejected(const std::string& path, std::initializer_list<std::string> fragments) {
  std::string message;
  try {
    SafetensorsFile::open(path);
    FAIL("expected blip::Error for ", path);
  } catch (const blip::Error& error) {
    message = error.what();
  }
  CHECK_MESSAGE(message.find(path) != std::string::npos, "error does not name the file: ", message);
  for (const std::string& fragment : fragments)
    CHECK_MESSAGE(message.find(fragment) != std::string::npos, "error lacks '", fragment, "': ", message);
  return message;
}

std::string entry(const std::string& dtype, const std::string& shape, std::uint64_t begin, std::uint64_t end) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(begin) + "," +
         std::to_string(end) + "]}";
}

template <class T>
Tensor<T> iota_tensor(const Shape& shape, double start, double step) {
  Tensor<T> tensor(shape);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = static_cast<T>(start + step * i);
  return tensor;
}

#define CHECK_ERROR(expression, fragment)                                                              \
  do {                                                                                                 \
    const std::string error_message_ = error_of([&] { (void)(expression); });                          \
    CHECK_MESSAGE(error_message_.find(fragment) != std::string::npos, "error '", error_message_,       \
                  "' lacks '", std::string(fragment), "'");                                            \
  } while (0)

}  // namespace

TEST_CASE("round trip: every dtype, ranks 0..4, empty tensors and metadata") {
  SafetensorsWriter writer;
  writer.add("f32.rank0", iota_tensor<float>(Shape{}, 3.5, 0));
  writer.add("f32.rank4", iota_tensor<float>(Shape{2, 3, 1, 5}, -1.25, 0.5));
  writer.add("i8.rank1", iota_tensor<std::int8_t>(Shape{7}, -3, 1));  // odd byte count before wider types
  writer.add("u8.rank2", iota_tensor<std::uint8_t>(Shape{3, 3}, 250, 0.5));
  writer.add("i32.rank3", iota_tensor<std::int32_t>(Shape{2, 2, 3}, -100000, 12345));
  writer.add("i64.rank2", iota_tensor<std::int64_t>(Shape{2, 3}, -5e12, 1e12));
  writer.add("f32.empty", Tensor<float>(Shape{0, 4}));
  writer.add("i64.empty", Tensor<std::int64_t>(Shape{3, 0}));
  writer.add_f32_as("f16.rank2", iota_tensor<float>(Shape{3, 5}, -2, 0.25), DType::F16);
  writer.add_f32_as("bf16.rank1", iota_tensor<float>(Shape{9}, 1, -0.5), DType::BF16);
  writer.add_f32_as("f32.via_add_f32_as", iota_tensor<float>(Shape{2}, 1, 1), DType::F32);
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "caf\xc3\xa9 \"quoted\"");
  const std::string path = (scratch_dir() / "round_trip.safetensors").string();
  writer.write(path);
  CHECK_FALSE(fs::exists(path + ".partial"));

  const SafetensorsFile file = SafetensorsFile::open(path);
  CHECK(file.path() == path);
  CHECK(file.header_size() % 8 == 0);
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "caf\xc3\xa9 \"quoted\""}});

  const std::vector<std::string> expected_order = {"f32.rank0", "f32.rank4", "i8.rank1",  "u8.rank2",
                                                   "i32.rank3", "i64.rank2", "f32.empty", "i64.empty",
                                                   "f16.rank2", "bf16.rank1", "f32.via_add_f32_as"};
  REQUIRE(file.tensors().size() == expected_order.size());
  for (std::size_t i = 0; i < expected_order.size(); ++i) CHECK(file.tensors()[i].name == expected_order[i]);

  CHECK(file.info("f32.rank0").shape == Shape{});
  CHECK(file.info("f32.rank0").dtype == DType::F32);
  CHECK(file.view<float>("f32.rank0").data()[0] == 3.5f);
  CHECK(file.info("f32.rank4").shape == Shape{2, 3, 1, 5});
  CHECK(file.info("i8.rank1").dtype == DType::I8);
  CHECK(file.info("u8.rank2").dtype == DType::U8);
  CHECK(file.info("i32.rank3").dtype == DType::I32);
  CHECK(file.info("i64.rank2").dtype == DType::I64);
  CHECK(file.info("f16.rank2").dtype == DType::F16);
  CHECK(file.info("bf16.rank1").dtype == DType::BF16);
  CHECK(file.info("f32.empty").shape == Shape{0, 4});
  CHECK(file.info("f32.empty").bytes() == 0);
  CHECK(file.to_f32("f32.empty").numel() == 0);
  CHECK(file.to_i64("i64.empty").shape() == Shape{3, 0});

  // Every tensor is aligned to its element size and exact in value.
  for (const TensorInfo& info : file.tensors()) CHECK(info.data_begin % dtype_size(info.dtype) == 0);
  const auto rank4 = file.view<float>("f32.rank4");
  for (std::int64_t i = 0; i < rank4.numel(); ++i) CHECK(rank4.data()[i] == static_cast<float>(-1.25 + 0.5 * i));
  const auto i8 = file.view<std::int8_t>("i8.rank1");
  for (std::int64_t i = 0; i < 7; ++i) CHECK(i8.data()[i] == -3 + i);
  const auto u8 = file.to_i64("u8.rank2");
  for (std::int64_t i = 0; i < 9; ++i) CHECK(u8.data()[i] == static_cast<std::uint8_t>(250 + 0.5 * i));
  const auto i32 = file.to_i64("i32.rank3");
  for (std::int64_t i = 0; i < 12; ++i) CHECK(i32.data()[i] == -100000 + 12345 * i);
  const auto i64 = file.view<std::int64_t>("i64.rank2");
  for (std::int64_t i = 0; i < 6; ++i) CHECK(i64.data()[i] == static_cast<std::int64_t>(-5e12 + 1e12 * i));
  CHECK(file.to_i64("i64.rank2").data()[5] == 0);
  const auto i8_as_i64 = file.to_i64("i8.rank1");
  CHECK(i8_as_i64.data()[0] == -3);
  const auto i32_as_f32 = file.to_f32("i32.rank3");
  CHECK(i32_as_f32.data()[1] == -100000.0f + 12345.0f);
  // These values are exact in f16 / bf16, so they survive the trip unchanged.
  const auto f16 = file.to_f32("f16.rank2");
  for (std::int64_t i = 0; i < 15; ++i) CHECK(f16.data()[i] == static_cast<float>(-2 + 0.25 * i));
  const auto bf16 = file.to_f32("bf16.rank1");
  for (std::int64_t i = 0; i < 9; ++i) CHECK(bf16.data()[i] == static_cast<float>(1 - 0.5 * i));
  CHECK(file.to_f32("f32.via_add_f32_as").data()[1] == 2.0f);

  // The F32 conversion of F32 data is the mapped memory itself (zero-copy).
  CHECK(file.to_f32("f32.rank4").data() == rank4.data());
  // Views keep the mapping alive after the file object is gone.
  Tensor<const float> survivor;
  {
    const SafetensorsFile scoped = SafetensorsFile::open(path);
    survivor = scoped.view<float>("f32.rank4");
  }
  CHECK(survivor.data()[3] == static_cast<float>(-1.25 + 1.5));

  // serialize() is byte-identical to what write() put on disk.
  CHECK(writer.serialize() == read_bytes(path));
}

TEST_CASE("f16 and bf16 are converted on read from known bit patterns") {
  Tensor<Float16> half(Shape{8});
  const std::uint16_t half_bits[8] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x7C00, 0x8000, 0x7E00};
  for (int i = 0; i < 8; ++i) half.data()[i].bits = half_bits[i];
  Tensor<BFloat16> brain(Shape{6});
  const std::uint16_t brain_bits[6] = {0x3F80, 0xC040, 0x7F80, 0x0001, 0x4049, 0xFFC1};
  for (int i = 0; i < 6; ++i) brain.data()[i].bits = brain_bits[i];
  SafetensorsWriter writer;
  writer.add("half", half);
  writer.add("brain", brain);
  const std::string path = (scratch_dir() / "half_bits.safetensors").string();
  writer.write(path);
  const SafetensorsFile file = SafetensorsFile::open(path);

  const auto h = file.to_f32("half");
  CHECK(h.data()[0] == 1.0f);
  CHECK(h.data()[1] == -2.0f);
  CHECK(h.data()[2] == 65504.0f);
  CHECK(h.data()[3] == std::ldexp(1.0f, -24));         // smallest subnormal
  CHECK(h.data()[4] == std::ldexp(1023.0f, -24));      // largest subnormal
  CHECK(h.data()[5] == std::numeric_limits<float>::infinity());
  CHECK(std::signbit(h.data()[6]));
  CHECK(h.data()[6] == 0.0f);
  CHECK(std::isnan(h.data()[7]));
  const auto b = file.to_f32("brain");
  CHECK(b.data()[0] == 1.0f);
  CHECK(b.data()[1] == -3.0f);
  CHECK(b.data()[2] == std::numeric_limits<float>::infinity());
  CHECK(b.data()[3] == std::ldexp(1.0f, -133));  // f32 denormal 0x00010000
  CHECK(float_bits(b.data()[4]) == 0x40490000u);
  CHECK(std::isnan(b.data()[5]));
  CHECK(file.view<Float16>("half").data()[2].bits == 0x7BFF);
  CHECK(file.view<BFloat16>("brain").data()[4].bits == 0x4049);
}

TEST_CASE("add_f32_as rounds to nearest even like torch .half() / .bfloat16()") {
  Tensor<float> values(Shape{4});
  values.data()[0] = 1.0f + std::ldexp(1.0f, -11);            // halfway between f16 1.0 and next: ties to even -> 1.0
  values.data()[1] = 1.0f + 3 * std::ldexp(1.0f, -11);        // halfway, odd neighbour below -> rounds up
  values.data()[2] = 70000.0f;                                // beyond f16 range -> inf
  values.data()[3] = bits_to_float(0x3F808000u);              // bf16 tie -> even (0x3F80)
  SafetensorsWriter writer;
  writer.add_f32_as("as_half", values, DType::F16);
  writer.add_f32_as("as_brain", values, DType::BF16);
  const std::string path = (scratch_dir() / "rounding.safetensors").string();
  writer.write(path);
  const SafetensorsFile file = SafetensorsFile::open(path);
  const auto half = file.view<Float16>("as_half");
  CHECK(half.data()[0].bits == 0x3C00);
  CHECK(half.data()[1].bits == 0x3C02);
  CHECK(half.data()[2].bits == 0x7C00);
  const auto brain = file.view<BFloat16>("as_brain");
  CHECK(brain.data()[3].bits == 0x3F80);
  CHECK(brain.data()[0].bits == 0x3F80);
}

TEST_CASE("writer output is byte-identical to the reference writer's") {
  // The reference (Rust) writer serialises {"attn.0": F32 [1,2,3] = 0..5} as a
  // compact 64-byte header (fields in the order dtype, shape, data_offsets),
  // then the raw little-endian data.
  Tensor<float> attention(Shape{1, 2, 3});
  for (int i = 0; i < 6; ++i) attention.data()[i] = static_cast<float>(i);
  SafetensorsWriter writer;
  writer.add("attn.0", attention);
  const std::vector<std::uint8_t> image = writer.serialize();
  const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  REQUIRE(header.size() == 64);  // already a multiple of 8: no padding
  std::vector<std::uint8_t> expected = {64, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  const std::uint8_t data[24] = {0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
  expected.insert(expected.end(), data, data + 24);
  CHECK(image == expected);

  // No tensors: "{}" and six spaces. Metadata only: 35 bytes of JSON + 5 spaces.
  const std::vector<std::uint8_t> empty = SafetensorsWriter().serialize();
  CHECK(empty == std::vector<std::uint8_t>{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '});
  SafetensorsWriter metadata_only;
  metadata_only.set_metadata("framework", "pt");
  const std::vector<std::uint8_t> with_metadata = metadata_only.serialize();
  const std::string metadata_header = std::string(R"({"__metadata__":{"framework":"pt"}})") + "     ";
  REQUIRE(with_metadata.size() == 8 + 40);
  CHECK(with_metadata[0] == 40);
  CHECK(std::string(with_metadata.begin() + 8, with_metadata.end()) == metadata_header);
  // And both parse back.
  CHECK(SafetensorsFile::from_memory(empty.data(), empty.size(), "empty").tensors().empty());
  CHECK(SafetensorsFile::from_memory(with_metadata.data(), with_metadata.size(), "meta").metadata().at("framework") == "pt");
}

TEST_CASE("writer refuses what it cannot write faithfully") {
  SafetensorsWriter writer;
  writer.add("w", Tensor<float>(Shape{2}));
  CHECK_ERROR(writer.add("w", Tensor<float>(Shape{2})), "'w' added twice");
  CHECK_ERROR(writer.add("__metadata__", Tensor<float>(Shape{2})), "reserved");
  CHECK_ERROR(writer.add("bad\xff", Tensor<float>(Shape{2})), "UTF-8");
  CHECK_ERROR(writer.add_f32_as("ints", Tensor<float>(Shape{2}), DType::I32), "'ints'");
  CHECK_ERROR(writer.add("no_data", Tensor<float>()), "'no_data'");
  const std::string unwritable = (scratch_dir() / "no_such_folder" / "out.safetensors").string();
  CHECK_ERROR(writer.write(unwritable), unwritable);
}

TEST_CASE("views: exact dtype, alignment, missing names") {
  // A one-byte U8 tensor first puts the F32 data at an odd address: views
  // refuse it, to_f32 copies it.
  const float values[2] = {1.5f, -2.25f};
  std::string header = "{\"byte\":" + entry("U8", "[1]", 0, 1) + ",\"odd\":" + entry("F32", "[2]", 1, 9) + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<std::uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(header.size() >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.push_back(42);
  const auto* raw = reinterpret_cast<const std::uint8_t*>(values);
  bytes.insert(bytes.end(), raw, raw + 8);
  const std::string path = (scratch_dir() / "misaligned.safetensors").string();
  write_bytes(path, bytes);

  const SafetensorsFile file = SafetensorsFile::open(path);
  CHECK_ERROR(file.view<float>("odd"), "not aligned");
  const auto copied = file.to_f32("odd");
  CHECK(copied.data()[0] == 1.5f);
  CHECK(copied.data()[1] == -2.25f);
  CHECK(file.to_i64("byte").data()[0] == 42);
  CHECK_ERROR(file.view<std::int32_t>("byte"), "is U8, not the I32");
  CHECK_ERROR(file.to_i64("odd"), "'odd' is F32; to_i64 reads integer tensors");
  CHECK_ERROR(file.info("nope"), path + ": no tensor 'nope'");
  CHECK_ERROR(file.to_f32("nope"), "no tensor 'nope'");
  CHECK_FALSE(file.contains("nope"));
  CHECK(file.contains("odd"));
}

TEST_CASE("hostile files: every validation rule is a clear blip::Error") {
  SUBCASE("missing file and folders") {
    const std::string missing = (scratch_dir() / "does_not_exist.safetensors").string();
    expect_rejected(missing, {"cannot open"});
    expect_rejected(scratch_dir().string(), {"not a regular file"});
  }
  SUBCASE("shorter than the 8-byte size field") {
    const std::string empty_path = (scratch_dir() / "empty.safetensors").string();
    write_bytes(empty_path, {});
    expect_rejected(empty_path, {"0 bytes, too short"});
    const std::string seven = (scratch_dir() / "seven.safetensors").string();
    write_bytes(seven, {1, 2, 3, 4, 5, 6, 7});
    expect_rejected(seven, {"7 bytes, too short"});
  }
  SUBCASE("header length past the end of the file") {
    expect_rejected(raw_file("past_end.safetensors", "{}      ", 0, 9), {"header size 9 bytes runs past the end"});
    expect_rejected(raw_file("no_header.safetensors", "", 0, 2), {"runs past the end"});
  }
  SUBCASE("absurd header size") {
    expect_rejected(raw_file("huge_header.safetensors", "{}", 0, 100'000'001), {"100000001", "limit of 100000000"});
    expect_rejected(raw_file("max_header.safetensors", "{}", 0, std::numeric_limits<std::uint64_t>::max()),
                    {"18446744073709551615"});
  }
  SUBCASE("not UTF-8") {
    expect_rejected(raw_file("latin1.safetensors", "{\"caf\xe9\":" + entry("F32", "[1]", 0, 4) + "}", 4),
                    {"not valid UTF-8", "byte 5"});
    expect_rejected(raw_file("surrogate.safetensors", "{\"\xed\xa0\x80\":1}"), {"not valid UTF-8"});
    expect_rejected(raw_file("overlong.safetensors", "{\"\xc0\xaf\":1}"), {"not valid UTF-8"});
  }
  SUBCASE("bad JSON") {
    expect_rejected(raw_file("truncated_json.safetensors", "{\"w\":"), {"invalid JSON"});
    expect_rejected(raw_file("garbage_after.safetensors", "{} x"), {"invalid JSON"});
    expect_rejected(raw_file("nul_padding.safetensors", std::string("{}\0\0\0\0\0\0", 8)), {"NUL byte at byte 2"});
    expect_rejected(raw_file("empty_header.safetensors", ""), {"invalid JSON"});
    expect_rejected(raw_file("comment.safetensors", "{} // x"), {"invalid JSON"});
    std::string deep(200, '[');
    deep += std::string(200, ']');
    expect_rejected(raw_file("deep.safetensors", "{\"w\":" + deep + "}"), {"nested deeper than 128"});
  }
  SUBCASE("header not an object") {
    expect_rejected(raw_file("array_header.safetensors", "[]"), {"must be a JSON object", "array"});
    expect_rejected(raw_file("number_header.safetensors", "3"), {"must be a JSON object", "number"});
    expect_rejected(raw_file("string_header.safetensors", "\"w\""), {"must be a JSON object", "string"});
  }
  SUBCASE("entry not an object, missing or mistyped fields") {
    expect_rejected(raw_file("entry_number.safetensors", "{\"w\":3}"), {"tensor 'w'", "must be an object"});
    expect_rejected(raw_file("entry_array.safetensors", "{\"w\":[]}"), {"tensor 'w'", "must be an object"});
    expect_rejected(raw_file("no_dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                    {"tensor 'w'", "no 'dtype'"});
    expect_rejected(raw_file("no_shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                    {"tensor 'w'", "no 'shape'"});
    expect_rejected(raw_file("no_offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
                    {"tensor 'w'", "no 'data_offsets'"});
    expect_rejected(raw_file("dtype_number.safetensors", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                    {"tensor 'w'", "'dtype' must be a string"});
    expect_rejected(raw_file("shape_string.safetensors", "{\"w\":" + entry("F32", "\"[1]\"", 0, 4) + "}", 4),
                    {"tensor 'w'", "'shape' must be an array"});
    expect_rejected(raw_file("offsets_three.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4),
                    {"tensor 'w'", "'data_offsets' must be [begin, end]"});
    expect_rejected(raw_file("offsets_negative.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
                    {"tensor 'w'", "'data_offsets' must be [begin, end]"});
    expect_rejected(raw_file("offsets_object.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4),
                    {"tensor 'w'", "'data_offsets' must be [begin, end]"});
  }
  SUBCASE("unknown dtype") {
    expect_rejected(raw_file("f64.safetensors", "{\"w\":" + entry("F64", "[1]", 0, 8) + "}", 8),
                    {"tensor 'w'", "unsupported dtype 'F64'"});
    expect_rejected(raw_file("bool.safetensors", "{\"w\":" + entry("BOOL", "[1]", 0, 1) + "}", 1),
                    {"tensor 'w'", "unsupported dtype 'BOOL'"});
    expect_rejected(raw_file("lowercase.safetensors", "{\"w\":" + entry("f32", "[1]", 0, 4) + "}", 4),
                    {"tensor 'w'", "unsupported dtype 'f32'"});
  }
  SUBCASE("negative, non-integer or overflowing shape dims") {
    expect_rejected(raw_file("dim_negative.safetensors", "{\"w\":" + entry("F32", "[-1]", 0, 4) + "}", 4),
                    {"tensor 'w'", "shape[0] must be a non-negative integer", "negative"});
    expect_rejected(raw_file("dim_float.safetensors", "{\"w\":" + entry("F32", "[2,1.5]", 0, 12) + "}", 12),
                    {"tensor 'w'", "shape[1]", "non-integer"});
    expect_rejected(raw_file("dim_exponent.safetensors", "{\"w\":" + entry("F32", "[1e0]", 0, 4) + "}", 4),
                    {"tensor 'w'", "shape[0]", "non-integer"});
    expect_rejected(raw_file("dim_string.safetensors", "{\"w\":" + entry("F32", "[\"1\"]", 0, 4) + "}", 4),
                    {"tensor 'w'", "shape[0]", "string"});
    expect_rejected(raw_file("dim_null.safetensors", "{\"w\":" + entry("F32", "[null]", 0, 4) + "}", 4),
                    {"tensor 'w'", "shape[0]", "null"});
    expect_rejected(raw_file("dims_overflow.safetensors",
                             "{\"w\":" + entry("F32", "[4294967296,4294967296]", 0, 0) + "}"),
                    {"tensor 'w'", "overflows"});
    // Overflow before a zero is still overflow, as in the Rust loader.
    expect_rejected(raw_file("dims_overflow_then_zero.safetensors",
                             "{\"w\":" + entry("F32", "[4294967296,4294967296,0]", 0, 0) + "}"),
                    {"tensor 'w'", "overflows"});
    expect_rejected(raw_file("bytes_overflow.safetensors",
                             "{\"w\":" + entry("I64", "[2305843009213693952]", 0, 0) + "}"),
                    {"tensor 'w'", "overflows"});
    expect_rejected(raw_file("dim_beyond_int64.safetensors",
                             "{\"w\":" + entry("U8", "[9223372036854775808]", 0, 0) + "}"),
                    {"tensor 'w'", "overflows"});
    expect_rejected(raw_file("dim_beyond_uint64.safetensors",
                             "{\"w\":" + entry("U8", "[18446744073709551616]", 0, 0) + "}"),
                    {"tensor 'w'", "shape[0]", "non-integer"});
    expect_rejected(raw_file("rank5.safetensors", "{\"w\":" + entry("F32", "[1,1,1,1,1]", 0, 4) + "}", 4),
                    {"tensor 'w'", "rank 5"});
  }
  SUBCASE("shape x dtype size differs from the byte range") {
    expect_rejected(raw_file("size_mismatch.safetensors", "{\"w\":" + entry("F32", "[2,3]", 0, 20) + "}", 20),
                    {"tensor 'w'", "needs 24 bytes", "span 20"});
    expect_rejected(raw_file("dtype_size_mismatch.safetensors", "{\"w\":" + entry("F16", "[4]", 0, 16) + "}", 16),
                    {"tensor 'w'", "F16 needs 8 bytes"});
  }
  SUBCASE("begin after end") {
    expect_rejected(raw_file("reversed.safetensors", "{\"w\":" + entry("U8", "[0]", 4, 0) + "}", 4),
                    {"tensor 'w'", "[4, 0] begin after they end"});
  }
  SUBCASE("offsets out of range") {
    expect_rejected(raw_file("out_of_range.safetensors", "{\"w\":" + entry("F32", "[4]", 0, 16) + "}", 12),
                    {"tensor 'w'", "run past the end of the data section (12 bytes"});
    expect_rejected(raw_file("huge_offsets.safetensors",
                             "{\"w\":" + entry("U8", "[0]", 18446744073709551615u, 18446744073709551615u) + "}"),
                    {"tensor 'w'", "run past the end"});
  }
  SUBCASE("overlapping ranges") {
    expect_rejected(raw_file("overlap.safetensors",
                             "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[2]", 4, 12) + "}", 12),
                    {"tensor 'b'", "overlap those of tensor 'a'"});
    expect_rejected(raw_file("same_range.safetensors",
                             "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[2]", 0, 8) + "}", 8),
                    {"overlap those of tensor"});
    // An empty tensor inside another's range overlaps it too (Rust agrees).
    expect_rejected(raw_file("empty_inside.safetensors",
                             "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[0]", 4, 4) + "}", 8),
                    {"tensor 'b'", "overlap those of tensor 'a'"});
  }
  SUBCASE("holes and trailing bytes (strict like the reference loader)") {
    expect_rejected(raw_file("hole.safetensors",
                             "{\"a\":" + entry("F32", "[1]", 0, 4) + ",\"b\":" + entry("F32", "[1]", 8, 12) + "}", 12),
                    {"tensor 'b'", "begin at 8", "ends at 4"});
    expect_rejected(raw_file("not_from_zero.safetensors", "{\"a\":" + entry("F32", "[1]", 4, 8) + "}", 8),
                    {"tensor 'a'", "begin at 4", "ends at 0"});
    expect_rejected(raw_file("trailing.safetensors", "{\"a\":" + entry("F32", "[1]", 0, 4) + "}", 6),
                    {"cover 4 bytes but the data section holds 6"});
    expect_rejected(raw_file("data_without_tensors.safetensors", "{}", 3), {"cover 0 bytes", "holds 3"});
  }
  SUBCASE("duplicate names") {
    const std::string message = expect_rejected(
        raw_file("duplicate.safetensors",
                 "{\"w\":" + entry("F32", "[1]", 0, 4) + ",\"w\":" + entry("F32", "[1]", 4, 8) + "}", 8),
        {"duplicate key 'w'"});
    expect_rejected(raw_file("duplicate_metadata.safetensors",
                             "{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{\"a\":\"c\"}}"),
                    {"duplicate key '__metadata__'"});
    expect_rejected(raw_file("duplicate_field.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                    {"duplicate key 'dtype'", "entry of 'w'"});
    expect_rejected(raw_file("duplicate_metadata_key.safetensors",
                             "{\"__metadata__\":{\"a\":\"b\",\"a\":\"c\"}}"),
                    {"duplicate key 'a'"});
  }
  SUBCASE("__metadata__ must map strings to strings") {
    expect_rejected(raw_file("metadata_number.safetensors", "{\"__metadata__\":3}"),
                    {"'__metadata__' must be an object"});
    expect_rejected(raw_file("metadata_array.safetensors", "{\"__metadata__\":[\"a\"]}"),
                    {"'__metadata__' must be an object"});
    expect_rejected(raw_file("metadata_value.safetensors", "{\"__metadata__\":{\"step\":1}}"),
                    {"'step' holds number"});
    expect_rejected(raw_file("metadata_nested.safetensors", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}"),
                    {"'a' holds object"});
  }
}

TEST_CASE("accepted edge cases, as the reference loader accepts them") {
  SUBCASE("no tensors at all") {
    const SafetensorsFile file = SafetensorsFile::open(raw_file("only_braces.safetensors", "{}"));
    CHECK(file.tensors().empty());
    CHECK(file.metadata().empty());
  }
  SUBCASE("null __metadata__ means none, whitespace around the JSON is fine") {
    const SafetensorsFile file =
        SafetensorsFile::open(raw_file("null_metadata.safetensors", " \n{\"__metadata__\":null} \t "));
    CHECK(file.metadata().empty());
  }
  SUBCASE("extra fields in an entry are ignored, header order is kept, -0 is 0") {
    const SafetensorsFile file = SafetensorsFile::open(raw_file(
        "extra_fields.safetensors",
        "{\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8],\"note\":{\"deep\":[1,2]}},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[-0, 4],\"data_offsets\":[0,0]},"
        "\"m\":" + entry("F32", "[1]", 0, 4) + "}",
        8));
    REQUIRE(file.tensors().size() == 3);
    CHECK(file.tensors()[0].name == "z");
    CHECK(file.tensors()[1].name == "a");
    CHECK(file.tensors()[2].name == "m");
    CHECK(file.info("a").shape == Shape{0, 4});
    CHECK(file.info("z").data_begin == 8 + file.header_size() + 4);
  }
  SUBCASE("several empty tensors at the same offset, and at the end") {
    const SafetensorsFile file = SafetensorsFile::open(
        raw_file("empties.safetensors",
                 "{\"e1\":" + entry("F32", "[0]", 0, 0) + ",\"e2\":" + entry("I64", "[0,3]", 0, 0) + ",\"w\":" +
                     entry("F32", "[1]", 0, 4) + ",\"e3\":" + entry("U8", "[0]", 4, 4) + "}",
                 4));
    CHECK(file.tensors().size() == 4);
    CHECK(file.to_f32("e3").numel() == 0);
  }
  SUBCASE("unicode names") {
    const SafetensorsFile file = SafetensorsFile::open(
        raw_file("unicode.safetensors", "{\"caf\xc3\xa9.\\u00e9\\ud83d\\ude00\":" + entry("U8", "[2]", 0, 2) + "}", 2));
    CHECK(file.contains("caf\xc3\xa9.\xc3\xa9\xf0\x9f\x98\x80"));
  }
}

TEST_CASE("checkpoints: single file, folder, and sharded index") {
  const fs::path folder = scratch_dir() / "sharded";
  fs::remove_all(folder);
  fs::create_directories(folder / "part");
  SafetensorsWriter first, second;
  first.add("encoder.weight", iota_tensor<float>(Shape{2, 3}, 0, 1));
  first.add("encoder.bias", iota_tensor<float>(Shape{2}, 10, 1));
  second.add_f32_as("decoder.weight", iota_tensor<float>(Shape{3, 2}, -1, 0.5), DType::BF16);
  second.add("decoder.ids", iota_tensor<std::int64_t>(Shape{4}, 7, 1));
  second.add("not_in_index", iota_tensor<float>(Shape{1}, 0, 0));
  first.write((folder / "model-00001-of-00002.safetensors").string());
  second.write((folder / "part" / "model-00002-of-00002.safetensors").string());
  const auto write_index = [&](const std::string& name, const std::string& text) {
    std::ofstream((folder / name).string()) << text;
    return (folder / name).string();
  };
  const std::string good_index = write_index("model.safetensors.index.json", R"({
    "metadata": {"total_size": 76},
    "weight_map": {
      "encoder.weight": "model-00001-of-00002.safetensors",
      "encoder.bias": "model-00001-of-00002.safetensors",
      "decoder.weight": "part/model-00002-of-00002.safetensors",
      "decoder.ids": "part/model-00002-of-00002.safetensors"
    }})");

  SUBCASE("sharded via the folder and via the index path") {
    for (const std::string& path : {folder.string(), good_index}) {
      const Checkpoint checkpoint = Checkpoint::open(path);
      CHECK(checkpoint.path() == good_index);
      CHECK(checkpoint.files().size() == 2);  // each shard opened once
      CHECK(checkpoint.names() ==
            std::vector<std::string>{"decoder.ids", "decoder.weight", "encoder.bias", "encoder.weight"});
      CHECK(checkpoint.contains("encoder.bias"));
      CHECK_FALSE(checkpoint.contains("not_in_index"));
      CHECK(checkpoint.info("decoder.weight").dtype == DType::BF16);
      CHECK(checkpoint.to_f32("decoder.weight").data()[5] == 1.5f);
      CHECK(checkpoint.to_f32("encoder.weight").data()[4] == 4.0f);
      CHECK(checkpoint.to_i64("decoder.ids").data()[3] == 10);
      CHECK(checkpoint.file_of("decoder.ids").path().find("part") != std::string::npos);
      CHECK_ERROR(checkpoint.info("missing"), good_index + ": no tensor 'missing'");
    }
  }
  SUBCASE("single file and a folder holding model.safetensors") {
    const fs::path single_folder = scratch_dir() / "single";
    fs::create_directories(single_folder);
    first.write((single_folder / "model.safetensors").string());
    const Checkpoint by_folder = Checkpoint::open(single_folder.string());
    CHECK(by_folder.names() == std::vector<std::string>{"encoder.weight", "encoder.bias"});  // file order
    CHECK(by_folder.files().size() == 1);
    const Checkpoint by_file = Checkpoint::open((folder / "model-00001-of-00002.safetensors").string());
    CHECK(by_file.to_f32("encoder.bias").data()[1] == 11.0f);
  }
  SUBCASE("index errors name the index and the shard or tensor") {
    const std::string missing_shard = write_index("missing_shard.json", R"({"weight_map": {
        "encoder.weight": "model-00001-of-00002.safetensors", "extra": "model-00009-of-00009.safetensors"}})");
    CHECK_ERROR(Checkpoint::open(missing_shard), missing_shard + ": shard 'model-00009-of-00009.safetensors' (for tensor 'extra') is missing");
    const std::string absent = write_index("absent_tensor.json", R"({"weight_map": {
        "encoder.weight": "model-00001-of-00002.safetensors", "ghost": "model-00001-of-00002.safetensors"}})");
    CHECK_ERROR(Checkpoint::open(absent), "tensor 'ghost' is listed in shard 'model-00001-of-00002.safetensors' but that file has no such tensor");
    const std::string no_map = write_index("no_weight_map.json", R"({"metadata": {}})");
    CHECK_ERROR(Checkpoint::open(no_map), "'weight_map'");
    const std::string bad_json = write_index("bad.json", R"({"weight_map": {)");
    CHECK_ERROR(Checkpoint::open(bad_json), bad_json + ": checkpoint index: invalid JSON");
    const std::string duplicate = write_index("duplicate.json", R"({"weight_map": {
        "encoder.weight": "model-00001-of-00002.safetensors", "encoder.weight": "part/model-00002-of-00002.safetensors"}})");
    CHECK_ERROR(Checkpoint::open(duplicate), "duplicate key 'encoder.weight'");
    const std::string escaping = write_index("escaping.json", R"({"weight_map": {"w": "../outside.safetensors"}})");
    CHECK_ERROR(Checkpoint::open(escaping), "relative to the index's folder");
    const std::string not_string = write_index("not_string.json", R"({"weight_map": {"w": 3}})");
    CHECK_ERROR(Checkpoint::open(not_string), "tensor 'w' must be a shard file name");
    const fs::path empty_folder = scratch_dir() / "empty_folder";
    fs::create_directories(empty_folder);
    CHECK_ERROR(Checkpoint::open(empty_folder.string()), "neither model.safetensors nor model.safetensors.index.json");
    const std::string nowhere = (scratch_dir() / "nowhere").string();
    CHECK_ERROR(Checkpoint::open(nowhere), nowhere + ": checkpoint does not exist");
  }
}

TEST_CASE("the real BLIP-2 OPT 2.7b index: a missing shard names index and shard") {
  const std::string index = test::asset("tokenizers/blip2-opt-2.7b/model.safetensors.index.json");
  if (!test::have_or_skip(index, "blip2-opt-2.7b weight index")) return;
  CHECK_ERROR(Checkpoint::open(index), index + ": shard 'model-00001-of-00002.safetensors'");
}

}  // namespace io_safetensors_test
