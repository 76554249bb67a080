// Mutation test of the safetensors reader: thousands of damaged variants of
// valid files (written by SafetensorsWriter, and the real fixture files) must
// each either load and be internally consistent, or throw blip::Error naming
// the file. Anything else (another exception type, a crash, an out-of-bounds
// read that the sanitizers see) fails the test.
//
// Deterministic: a fixed seed (BLIP_MUTATION_SEED overrides it). The number of
// mutated files is 20000 (about 3 s) or 6000 under AddressSanitizer (about
// 5 s of CPU); BLIP_MUTATION_ITERATIONS overrides it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "test_support.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BLIP_UNDER_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLIP_UNDER_ADDRESS_SANITIZER 1
#endif
#endif

namespace io_safetensors_mutation_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::read_bytes;

namespace fs = std::filesystem;
using namespace blip;

namespace {

using Bytes = std::vector<std::uint8_t>;
using OrderedJson = nlohmann::ordered_json;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

// Our own small helpers on mt19937_64 so the sequence is the same with any
// standard library (std::uniform_int_distribution is implementation-defined).
class Random {
 public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t bits() { return engine_(); }
  std::size_t below(std::size_t bound) { return bound == 0 ? 0 : static_cast<std::size_t>(engine_() % bound); }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& items) { return items[below(N)]; }

 private:
  std::mt19937_64 engine_;
};

std::uint64_t header_size_of(const Bytes& file) {
  std::uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | file[i];
  return size;
}

Bytes assemble(const std::string& header, const Bytes& data, bool pad) {
  std::string text = header;
  if (pad) text.append((8 - text.size() % 8) % 8, ' ');
  Bytes file(8 + text.size() + data.size());
  for (int i = 0; i < 8; ++i) file[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  std::memcpy(file.data() + 8, text.data(), text.size());
  if (!data.empty()) std::memcpy(file.data() + 8 + text.size(), data.data(), data.size());
  return file;
}

// A valid starting file, with its header parsed (in order) for JSON-level edits.
struct Seed {
  std::string name;
  Bytes bytes;
  OrderedJson header;
  Bytes data;
  int weight;  // relative frequency (big files are mutated less often)
};

Seed make_seed(const std::string& name, Bytes bytes, int weight) {
  Seed seed{name, std::move(bytes), {}, {}, weight};
  const std::uint64_t header_size = header_size_of(seed.bytes);
  const char* header = reinterpret_cast<const char*>(seed.bytes.data() + 8);
  seed.header = OrderedJson::parse(header, header + header_size);
  seed.data.assign(seed.bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size), seed.bytes.end());
  return seed;
}

template <class T>
Tensor<T> filled(const Shape& shape, Random& random) {
  Tensor<T> tensor(shape);
  auto* raw = reinterpret_cast<std::uint8_t*>(tensor.data());
  for (std::size_t i = 0; i < tensor.bytes(); ++i) raw[i] = static_cast<std::uint8_t>(random.bits());
  return tensor;
}

std::vector<Seed> make_seeds(Random& random) {
  std::vector<Seed> seeds;
  {
    SafetensorsWriter writer;
    writer.add("scalar", filled<float>(Shape{}, random));
    writer.add("bytes", filled<std::uint8_t>(Shape{5}, random));
    writer.add("signed", filled<std::int8_t>(Shape{3, 1}, random));
    writer.add("half", filled<Float16>(Shape{3, 2}, random));
    writer.add("brain", filled<BFloat16>(Shape{2, 1, 3}, random));
    writer.add("ints", filled<std::int32_t>(Shape{2, 2}, random));
    writer.add("longs", filled<std::int64_t>(Shape{1, 2, 1, 2}, random));
    writer.add("empty", Tensor<float>(Shape{0, 3}));
    writer.add("weight", filled<float>(Shape{4, 3}, random));
    writer.set_metadata("format", "pt");
    seeds.push_back(make_seed("writer_mixed", writer.serialize(), 40));
  }
  {
    SafetensorsWriter writer;
    writer.add("only", filled<float>(Shape{2, 2}, random));
    seeds.push_back(make_seed("writer_single", writer.serialize(), 15));
  }
  {
    SafetensorsWriter writer;
    writer.set_metadata("a", "b");
    seeds.push_back(make_seed("writer_empty", writer.serialize(), 5));
  }
  // The real fixture files, when present.
  const std::pair<const char*, int> fixture_files[] = {{"blip_caption/inputs.safetensors", 15},
                                                       {"blip_caption/outputs.safetensors", 15},
                                                       {"blip2_opt/inputs.safetensors", 5},
                                                       {"blip_itm/model.safetensors", 2}};
  for (const auto& [relative, weight] : fixture_files) {
    const std::string path = test::fixture(relative);
    if (!test::have_or_skip(path, "fixture file for the mutation test")) continue;
    seeds.push_back(make_seed(relative, read_bytes(path), weight));
  }
  return seeds;
}

// ---- mutations ------------------------------------------------------------

enum Mutation {
  kFlipHeaderBits,
  kFlipDataBytes,
  kJsonCharacter,
  kTruncate,
  kAppend,
  kSizeField,
  kSplice,
  kInsertIntoHeader,
  kEditDtype,
  kEditShape,
  kEditOffsets,
  kEditEntry,
  kDuplicateKey,
  kEditMetadata,
  kMutationCount
};
const char* const kMutationNames[kMutationCount] = {
    "flip header bits", "flip data bytes", "JSON character", "truncate",  "append",
    "size field",       "splice",          "insert into header", "edit dtype", "edit shape",
    "edit offsets",     "edit entry",      "duplicate key",  "edit metadata"};

OrderedJson random_json_scalar(Random& random) {
  switch (random.below(12)) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return -1;
    case 3: return 1.5;
    case 4: return "2";
    case 5: return OrderedJson::array();
    case 6: return OrderedJson::object();
    case 7: return std::uint64_t{1} << 63;
    case 8: return std::uint64_t{1} << 32;
    case 9: return std::numeric_limits<std::uint64_t>::max();
    case 10: return 0;
    default: return random.below(40);
  }
}

// Picks a tensor entry (not __metadata__); returns nullptr when there is none.
OrderedJson* pick_entry(OrderedJson& header, Random& random, std::string* name = nullptr) {
  std::vector<std::string> names;
  for (auto& item : header.items())
    if (item.key() != "__metadata__") names.push_back(item.key());
  if (names.empty()) return nullptr;
  const std::string& chosen = names[random.below(names.size())];
  if (name) *name = chosen;
  return &header[chosen];
}

Bytes mutate(const Seed& seed, Mutation mutation, Random& random) {
  Bytes file = seed.bytes;
  const std::uint64_t header_size = header_size_of(file);
  const std::size_t header_begin = 8, data_begin = 8 + header_size;
  OrderedJson header = seed.header;
  bool rebuilt = false;  // the JSON was edited: re-serialise it
  switch (mutation) {
    case kFlipHeaderBits: {
      const std::size_t flips = 1 + random.below(4);
      for (std::size_t i = 0; i < flips; ++i)
        file[header_begin + random.below(header_size)] ^= static_cast<std::uint8_t>(1u << random.below(8));
      break;
    }
    case kFlipDataBytes: {
      if (file.size() == data_begin) break;
      const std::size_t flips = 1 + random.below(8);
      for (std::size_t i = 0; i < flips; ++i)
        file[data_begin + random.below(file.size() - data_begin)] = static_cast<std::uint8_t>(random.bits());
      break;
    }
    case kJsonCharacter: {
      static const std::string significant = "{}[]\",:0123456789-.eE \\u\x80\xff";
      const std::size_t count = 1 + random.below(3);
      for (std::size_t i = 0; i < count; ++i)
        file[header_begin + random.below(header_size)] =
            static_cast<std::uint8_t>(significant[random.below(significant.size())]);
      break;
    }
    case kTruncate: file.resize(random.below(file.size())); break;
    case kAppend: {
      const std::size_t count = 1 + random.below(16);
      for (std::size_t i = 0; i < count; ++i) file.push_back(static_cast<std::uint8_t>(random.bits()));
      break;
    }
    case kSizeField: {
      std::uint64_t size = header_size;
      switch (random.below(5)) {
        case 0: size = random.bits(); break;
        case 1: size += 1 + random.below(8); break;
        case 2: size -= std::min<std::uint64_t>(size, 1 + random.below(8)); break;
        case 3: size = random.below(file.size() + 16); break;
        default: size |= std::uint64_t{1} << (32 + random.below(32)); break;
      }
      for (int i = 0; i < 8; ++i) file[i] = static_cast<std::uint8_t>(size >> (8 * i));
      break;
    }
    case kSplice: {
      const std::size_t length = 1 + random.below(std::min<std::size_t>(64, file.size()));
      const std::size_t from = random.below(file.size() - length + 1), to = random.below(file.size() - length + 1);
      std::memmove(file.data() + to, seed.bytes.data() + from, length);
      break;
    }
    case kInsertIntoHeader: {
      const std::size_t at = header_begin + random.below(header_size + 1);
      const std::size_t count = 1 + random.below(8);
      Bytes inserted(count);
      for (auto& byte : inserted) byte = static_cast<std::uint8_t>(" {}[],:\"0a"[random.below(10)]);
      file.insert(file.begin() + static_cast<std::ptrdiff_t>(at), inserted.begin(), inserted.end());
      if (random.chance(50)) {  // keep the size field consistent half of the time
        const std::uint64_t size = header_size + count;
        for (int i = 0; i < 8; ++i) file[i] = static_cast<std::uint8_t>(size >> (8 * i));
      }
      break;
    }
    case kEditDtype: {
      static const std::array<const char*, 12> dtypes = {"F32", "F16", "BF16", "I8",  "U8",  "I32",
                                                         "I64", "F64", "BOOL", "",    "f32", "U64"};
      if (OrderedJson* entry = pick_entry(header, random)) {
        if (random.chance(85)) (*entry)["dtype"] = random.pick(dtypes);
        else (*entry)["dtype"] = random_json_scalar(random);
      }
      rebuilt = true;
      break;
    }
    case kEditShape: {
      if (OrderedJson* entry = pick_entry(header, random)) {
        OrderedJson& shape = (*entry)["shape"];
        if (!shape.is_array()) break;
        switch (random.below(5)) {
          case 0: shape.push_back(1 + random.below(3)); break;
          case 1: if (!shape.empty()) shape.erase(shape.size() - 1); break;
          case 2:
            if (!shape.empty() && shape[0].is_number_unsigned()) {  // reshape keeping the byte count sometimes
              const std::uint64_t first = shape[0].get<std::uint64_t>();
              shape[0] = random.chance(50) ? first * 2 : first + 1;
            }
            break;
          case 3: shape = OrderedJson::array({std::uint64_t{1} << 62, 4}); break;
          default:
            if (!shape.empty()) shape[random.below(shape.size())] = random_json_scalar(random);
            else shape.push_back(random_json_scalar(random));
        }
      }
      rebuilt = true;
      break;
    }
    case kEditOffsets: {
      std::string name;
      if (OrderedJson* entry = pick_entry(header, random, &name)) {
        OrderedJson& offsets = (*entry)["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2) break;
        const std::uint64_t begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
        switch (random.below(6)) {
          case 0: offsets[random.below(2)] = (random.chance(50) ? begin : end) + 1 + random.below(8); break;
          case 1: offsets = OrderedJson::array({end, begin}); break;
          case 2: offsets = OrderedJson::array({begin + 4, end + 4}); break;  // shift: hole / overlap / past end
          case 3: {
            OrderedJson* other = pick_entry(header, random);  // copy another tensor's range
            if (other) offsets = (*other)["data_offsets"];
            break;
          }
          case 4: offsets[random.below(2)] = random_json_scalar(random); break;
          default: offsets.push_back(0); break;
        }
      }
      rebuilt = true;
      break;
    }
    case kEditEntry: {
      std::string name;
      if (OrderedJson* entry = pick_entry(header, random, &name)) {
        static const std::array<const char*, 3> fields = {"dtype", "shape", "data_offsets"};
        switch (random.below(4)) {
          case 0: entry->erase(random.pick(fields)); break;
          case 1: (*entry)["extra"] = random_json_scalar(random); break;  // ignored: must still load
          case 2: *entry = random_json_scalar(random); break;
          default: {  // rename the tensor, possibly onto an existing name (a silent overwrite in the DOM)
            OrderedJson moved = *entry;
            header.erase(name);
            header[random.chance(50) ? name + "x" : std::string("")] = moved;
          }
        }
      }
      rebuilt = true;
      break;
    }
    case kDuplicateKey: {
      // Textual: nlohmann's DOM cannot hold duplicates, so splice the JSON.
      std::string name;
      OrderedJson* entry = pick_entry(header, random, &name);
      if (!entry) {
        name = "__metadata__";
        header[name] = OrderedJson::object();
        entry = &header[name];
      }
      std::string text = header.dump();
      const std::string duplicate = OrderedJson(name).dump() + ":" + entry->dump();
      text.insert(1, duplicate + (text.size() > 2 ? "," : ""));
      return assemble(text, seed.data, random.chance(50));
    }
    case kEditMetadata: {
      switch (random.below(4)) {
        case 0: header["__metadata__"] = random_json_scalar(random); break;
        case 1: header["__metadata__"]["k"] = random_json_scalar(random); break;
        case 2: header["__metadata__"] = nullptr; break;  // accepted: null means none
        default: header["__metadata__"]["key"] = "value"; break;
      }
      rebuilt = true;
      break;
    }
    default: break;
  }
  if (rebuilt) return assemble(header.dump(), seed.data, random.chance(70));
  return file;
}

// ---- what a successful load must satisfy -----------------------------------

template <class Source>
double element(const std::uint8_t* bytes, std::int64_t index) {
  Source value;
  std::memcpy(&value, bytes + index * static_cast<std::int64_t>(sizeof(Source)), sizeof(Source));
  return static_cast<double>(to_f32(value));
}

double decode(DType dtype, const std::uint8_t* bytes, std::int64_t index) {
  switch (dtype) {
    case DType::F32: return element<float>(bytes, index);
    case DType::F16: return element<Float16>(bytes, index);
    case DType::BF16: return element<BFloat16>(bytes, index);
    case DType::I8: return static_cast<float>(element<std::int8_t>(bytes, index));
    case DType::U8: return static_cast<float>(element<std::uint8_t>(bytes, index));
    case DType::I32: return static_cast<float>(element<std::int32_t>(bytes, index));
    case DType::I64: return static_cast<float>(element<std::int64_t>(bytes, index));
  }
  return 0;
}

bool same_value(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Returns an empty string when `file` (loaded from `bytes`) is consistent,
// otherwise what is wrong.
std::string inconsistency(const SafetensorsFile& file, const Bytes& bytes) {
  const std::uint64_t data_start = 8 + file.header_size();
  if (file.file_size() != bytes.size()) return "file_size differs from the input";
  if (data_start > bytes.size()) return "header runs past the end";
  std::set<std::string> names;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const TensorInfo& info : file.tensors()) {
    if (!names.insert(info.name).second) return "duplicate name " + info.name;
    if (!file.contains(info.name) || &file.info(info.name) != &info) return "lookup disagrees for " + info.name;
    if (info.data_begin < data_start || info.data_begin > info.data_end || info.data_end > bytes.size())
      return "range out of bounds for " + info.name;
    if (info.shape.rank() > Shape::kMaxRank) return "rank too big";
    if (info.bytes() != static_cast<std::uint64_t>(info.shape.numel()) * dtype_size(info.dtype))
      return "byte count disagrees with shape for " + info.name;
    ranges.emplace_back(info.data_begin, info.data_end);
    // Converting reads every byte; the values must be the bytes at the offsets.
    const Tensor<const float> values = file.to_f32(info.name);
    if (values.shape() != info.shape) return "to_f32 shape differs for " + info.name;
    const std::uint8_t* raw = bytes.data() + info.data_begin;
    for (std::int64_t index : {std::int64_t{0}, info.shape.numel() / 2, info.shape.numel() - 1}) {
      if (info.shape.numel() == 0) break;
      if (!same_value(values.data()[index], decode(info.dtype, raw, index)))
        return "to_f32 value differs from the file bytes for " + info.name;
    }
    const bool integer = info.dtype == DType::I8 || info.dtype == DType::U8 || info.dtype == DType::I32 ||
                         info.dtype == DType::I64;
    if (integer && file.to_i64(info.name).numel() != info.shape.numel()) return "to_i64 size differs";
  }
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t covered = data_start;
  for (const auto& [begin, end] : ranges) {
    if (begin != covered) return "ranges do not tile the data section";
    covered = end;
  }
  if (covered != bytes.size()) return "ranges do not reach the end of the file";
  return {};
}

}  // namespace

TEST_CASE("mutated safetensors files either load consistently or throw blip::Error") {
#ifdef BLIP_UNDER_ADDRESS_SANITIZER
  constexpr std::uint64_t kDefaultIterations = 6000;
#else
  constexpr std::uint64_t kDefaultIterations = 20000;
#endif
  const std::uint64_t iterations = env_or("BLIP_MUTATION_ITERATIONS", kDefaultIterations);
  const std::uint64_t seed_value = env_or("BLIP_MUTATION_SEED", 0x5afe7e45);
  Random random(seed_value);
  const std::vector<Seed> seeds = make_seeds(random);
  int total_weight = 0;
  for (const Seed& seed : seeds) {
    total_weight += seed.weight;
    // Every seed is valid to begin with.
    REQUIRE(inconsistency(SafetensorsFile::from_memory(seed.bytes.data(), seed.bytes.size(), seed.name), seed.bytes)
                .empty());
  }

  const fs::path scratch = fs::path(BLIP_TEST_BINARY_DIR) / "io_safetensors_mutation_files";
  fs::create_directories(scratch);
  std::array<int, kMutationCount> loaded{}, rejected{};
  int through_disk = 0;
  for (std::uint64_t iteration = 0; iteration < iterations; ++iteration) {
    std::size_t chosen = 0;
    for (int ticket = static_cast<int>(random.below(total_weight)); ticket >= seeds[chosen].weight; ++chosen)
      ticket -= seeds[chosen].weight;
    const Seed& seed = seeds[chosen];
    const auto mutation = static_cast<Mutation>(random.below(kMutationCount));
    const Bytes bytes = mutate(seed, mutation, random);
    const std::string name = "mutant-" + std::to_string(iteration) + "-of-" + seed.name;
    CAPTURE(name);
    const std::string mutation_name = kMutationNames[mutation];
    CAPTURE(mutation_name);

    std::string outcome;  // "" when it loaded, else the error message
    try {
      const SafetensorsFile file = SafetensorsFile::from_memory(bytes.data(), bytes.size(), name);
      const std::string problem = inconsistency(file, bytes);
      CHECK_MESSAGE(problem.empty(), problem);
      ++loaded[mutation];
    } catch (const blip::Error& error) {
      outcome = error.what();
      CHECK_MESSAGE(outcome.rfind(name + ": ", 0) == 0, "error does not start with the file name: ", outcome);
      ++rejected[mutation];
    } catch (const std::exception& error) {
      FAIL_CHECK("not a blip::Error: ", error.what());
    }

    // Every 50th mutant also goes through the file system: open() must agree.
    if (iteration % 50 == 0) {
      ++through_disk;
      const std::string path = (scratch / "mutant.safetensors").string();
      {
        std::ofstream stream(path, std::ios::binary | std::ios::trunc);
        stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      }
      std::string disk_outcome;
      try {
        const SafetensorsFile file = SafetensorsFile::open(path);
        CHECK(inconsistency(file, bytes).empty());
      } catch (const blip::Error& error) {
        disk_outcome = error.what();
        disk_outcome.replace(0, path.size(), name);
      }
      CHECK(disk_outcome == outcome);
    }
  }

  int total_loaded = 0, total_rejected = 0;
  for (int m = 0; m < kMutationCount; ++m) {
    MESSAGE(std::string(kMutationNames[m]), ": ", loaded[m], " loaded, ", rejected[m], " rejected");
    total_loaded += loaded[m];
    total_rejected += rejected[m];
  }
  MESSAGE(iterations, " mutants (seed ", seed_value, ", ", through_disk, " through the file system): ", total_loaded,
          " loaded consistently, ", total_rejected, " rejected with blip::Error");
  CHECK(total_loaded + total_rejected == static_cast<int>(iterations));
  if (iterations >= 1000) {
    // The mutations must exercise both outcomes, or they test nothing.
    CHECK(total_loaded > static_cast<int>(iterations / 20));
    CHECK(total_rejected > static_cast<int>(iterations / 4));
    CHECK(loaded[kFlipDataBytes] > 0);  // data damage never breaks the structure
    CHECK(rejected[kFlipDataBytes] == 0);
    CHECK(loaded[kDuplicateKey] == 0);  // duplicate keys are always rejected
  }
}

}  // namespace io_safetensors_mutation_test
