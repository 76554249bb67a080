// Weights held once: after LinearWeights::prepare packs a weight that is a view
// of a mapped checkpoint, the mapping's pages of that weight are no longer
// resident in this process (core/mapped_file.hpp: release_mapped_pages), so
// RAM holds the packed copy only; the view stays readable.
//
// Residency is read per page from /proc/self/pagemap (bit 63: the page is
// present in this process's page tables). mincore() would not do: for a file
// mapping it reports the page cache, which keeps the file's pages whoever maps them.
//
// Reading one page of a file mapping makes Linux map its neighbours too when
// they are in the page cache ("fault-around", 64 KiB by default), so a read of
// the next tensor (a bias, the header) may map a few pages of a released one
// back: the checks allow kFaultAroundPages at each end of a tensor.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blip/core/mapped_file.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/kernels/linear.hpp"
#include "blip/models/blip2.hpp"
#include "blip/nn/loading.hpp"
#include "test_support.hpp"

namespace io_weights_once_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace fs = std::filesystem;
using namespace blip;

namespace {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// Pages a read next to a released tensor may map back, at each of its ends.
constexpr long kFaultAroundPages = 16;

// Pages of [data, data + bytes) present in this process, counting only the
// whole pages inside the range; -1 where /proc/self/pagemap cannot be read.
long resident_pages(const void* data, std::size_t bytes) {
  const std::size_t page = page_size();
  const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + page - 1) / page, last = (begin + bytes) / page;
  if (first >= last) return 0;
  std::FILE* pagemap = std::fopen("/proc/self/pagemap", "rb");
  if (pagemap == nullptr) return -1;
  std::vector<std::uint64_t> entries(last - first);
  const bool read = std::fseek(pagemap, static_cast<long>(first * sizeof(std::uint64_t)), SEEK_SET) == 0 &&
                    std::fread(entries.data(), sizeof(std::uint64_t), entries.size(), pagemap) == entries.size();
  std::fclose(pagemap);
  if (!read) return -1;
  long present = 0;
  for (std::uint64_t entry : entries) present += static_cast<long>((entry >> 63) & 1);
  return present;
}

bool pagemap_readable() {
  static const std::vector<std::uint8_t> two_pages(2 * page_size());
  if (resident_pages(two_pages.data(), two_pages.size()) >= 0) return true;
  blip::test::skip("/proc/self/pagemap is not readable here");
  return false;
}

float sum_of(const float* data, std::int64_t count) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < count; ++i) sum += data[i];
  return sum;
}

fs::path test_directory() {
  const fs::path directory = fs::path(BLIP_TEST_BINARY_DIR) / "io_weights_once_test_files";
  fs::create_directories(directory);
  return directory;
}

Tensor<float> pattern(const Shape& shape, std::uint32_t seed) {
  Tensor<float> tensor(shape);
  std::uint32_t state = seed * 2654435761u + 1;
  for (std::int64_t i = 0; i < tensor.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    tensor.data()[i] = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
  }
  return tensor;
}

}  // namespace

TEST_CASE("release_mapped_pages drops the whole pages inside a mapped range, and the data stays readable") {
  if (!pagemap_readable()) return;
  const std::size_t page = page_size();
  const fs::path path = test_directory() / "pages.bin";
  const std::size_t pages = 64;
  {
    std::vector<std::uint8_t> bytes(pages * page);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + i / page);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  const auto file = MappedFile::open(path.string());
  const std::uint8_t* data = file->data();
  unsigned checksum = 0;
  for (std::size_t i = 0; i < file->size(); ++i) checksum += data[i];
  REQUIRE(resident_pages(data, file->size()) == static_cast<long>(pages));

  // A range from the middle of page 3 to the middle of page 40: pages 4 .. 39
  // lie inside it; 3 and 40 are shared with whatever sits beside the range.
  const std::uint8_t* begin = data + 3 * page + 100;
  const std::size_t bytes = 37 * page - 50;
  CHECK(release_mapped_pages(begin, bytes) == 36 * page);
  CHECK(resident_pages(data + 4 * page, 36 * page) == 0);
  CHECK(resident_pages(data + 3 * page, page) == 1);
  CHECK(resident_pages(data + 40 * page, page) == 1);
  CHECK(resident_pages(data, file->size()) == static_cast<long>(pages - 36));

  // Reading faults the pages back in from the file, unchanged.
  unsigned again = 0;
  for (std::size_t i = 0; i < file->size(); ++i) again += data[i];
  CHECK(again == checksum);

  // Less than one whole page, or a range that leaves the mapping: nothing.
  CHECK(release_mapped_pages(data + 10, page) == 0);
  CHECK(release_mapped_pages(data + page, file->size()) == 0);
  CHECK(resident_pages(data, file->size()) == static_cast<long>(pages));
}

TEST_CASE("release_mapped_pages leaves memory that is not a live mapping alone") {
  Tensor<float> heap = pattern(Shape{4096}, 1);
  const float before = sum_of(heap.data(), heap.numel());
  CHECK(release_mapped_pages(heap.data(), heap.bytes()) == 0);
  CHECK(sum_of(heap.data(), heap.numel()) == before);

  // Once its MappedFile is gone, a range is no longer known.
  const fs::path path = test_directory() / "closed.bin";
  std::ofstream(path, std::ios::binary).write(std::string(4 * page_size(), 'x').data(), 4 * page_size());
  const std::uint8_t* address = nullptr;
  {
    const auto file = MappedFile::open(path.string());
    address = file->data();
  }
  CHECK(release_mapped_pages(address, 4 * page_size()) == 0);
}

TEST_CASE("packed Linear weights of an f32 checkpoint are held once; results unchanged") {
  if (!pagemap_readable()) return;
  // Eight Linear layers of 2 MiB each (as nn::load_linear reads them) and a
  // LayerNorm between them, stored as save_pretrained would.
  const std::int64_t out_features = 512, in_features = 1024, layers = 8;
  const fs::path path = test_directory() / "linears.safetensors";
  {
    SafetensorsWriter writer;
    for (std::int64_t layer = 0; layer < layers; ++layer) {
      const std::string prefix = "layers." + std::to_string(layer) + ".";
      writer.add(prefix + "fc.weight", pattern(Shape{out_features, in_features}, static_cast<std::uint32_t>(layer)));
      writer.add(prefix + "fc.bias", pattern(Shape{out_features}, 100 + static_cast<std::uint32_t>(layer)));
      writer.add(prefix + "norm.weight", pattern(Shape{in_features}, 200 + static_cast<std::uint32_t>(layer)));
      writer.add(prefix + "norm.bias", pattern(Shape{in_features}, 300 + static_cast<std::uint32_t>(layer)));
    }
    writer.write(path.string());
  }
  const WeightStore store = WeightStore::open(path.string());
  std::vector<nn::LinearWeights> linears;
  std::vector<nn::LayerNormWeights> norms;
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const std::string prefix = "layers." + std::to_string(layer) + ".";
    linears.push_back(nn::load_linear(store, prefix + "fc", out_features, in_features));
    norms.push_back(nn::load_layer_norm(store, prefix + "norm", in_features, 1e-5f));
  }

  std::size_t packed_bytes = 0;
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const nn::LinearWeights& linear = linears[static_cast<std::size_t>(layer)];
    // The weight was packed from the mapping in place, and none of its whole pages is resident.
    const std::string name = "layers." + std::to_string(layer) + ".fc.weight";
    const std::uint8_t* mapped = store.checkpoint().file_of(name).raw_data(name);
    CHECK(resident_pages(mapped, static_cast<std::size_t>(out_features * in_features) * sizeof(float)) <=
          2 * kFaultAroundPages);
    packed_bytes += linear.packed_bytes();
  }
  CHECK(packed_bytes >= static_cast<std::size_t>(layers * out_features * in_features) * sizeof(float));
  // What is not packed was copied out of the mapping (WeightResidency::Copied).
  for (const nn::LayerNormWeights& norm : norms) CHECK(sum_of(norm.weight.data(), in_features) != 0.0f);

  // The kernel and the naive reference (both read the packed panels) agree.
  const Tensor<float> x = pattern(Shape{3, in_features}, 999);
  for (const nn::LinearWeights& linear : linears) {
    Tensor<float> fast(Shape{3, out_features}), naive(Shape{3, out_features});
    kernels::linear(x, linear, fast);
    kernels::linear_naive(x, linear, naive);
    CHECK(test::max_relative_error(fast, naive) < 1e-5);
  }
}

TEST_CASE("after loading a BLIP-2 model, its mapping holds next to none of the weights' pages") {
  if (!pagemap_readable() || !test::have_or_skip(test::fixture("blip2_opt"), "blip2_opt fixture")) return;
  const std::string directory = test::fixture("blip2_opt");
  const WeightStore store = WeightStore::open(directory);
  const Blip2ForConditionalGeneration model =
      Blip2ForConditionalGeneration::load(store, make_blip2_model_config(load_model_config(directory).blip2));
  // Loading reads the Linear weights (packed, then released), every other
  // weight (copied, then released: WeightResidency::Copied) and the header.
  // The OPT embedding (50272 × 24 floats, 4.8 MB of the 5.1 MB file) is
  // copied for the embedding lookup and packed as the tied LM head.
  const Checkpoint& checkpoint = store.checkpoint();
  const std::string embedding = "language_model.model.decoder.embed_tokens.weight";
  const std::size_t embedding_pages = checkpoint.info(embedding).bytes() / page_size();
  REQUIRE(embedding_pages > 1000);
  CHECK(resident_pages(checkpoint.file_of(embedding).raw_data(embedding), checkpoint.info(embedding).bytes()) <=
        2 * kFaultAroundPages);
  for (const std::string& name : checkpoint.names()) {
    INFO(name);
    CHECK(resident_pages(checkpoint.file_of(name).raw_data(name), checkpoint.info(name).bytes()) <=
          2 * kFaultAroundPages);
  }
  // The whole mapping: a small part of the file is resident, not all of it.
  const SafetensorsFile& file = checkpoint.files().at(0);
  const std::uint8_t* mapping = file.raw_data(embedding) - checkpoint.info(embedding).data_begin;
  const long file_pages = static_cast<long>(file.file_size() / page_size());
  const long resident = resident_pages(mapping, file.file_size());
  MESSAGE("resident after loading: ", resident, " of ", file_pages, " pages of ", directory);
  CHECK(resident < file_pages / 5);
}

TEST_CASE("a weight converted from f16 or bf16 when fetched leaves no mapped pages behind") {
  if (!pagemap_readable()) return;
  const std::int64_t rows = 256, columns = 512;  // 256 KiB in bf16: 64 pages
  const fs::path path = test_directory() / "converted.safetensors";
  const Tensor<float> values = pattern(Shape{rows, columns}, 7);
  {
    SafetensorsWriter writer;
    writer.add_f32_as("bf16.weight", values, DType::BF16);
    writer.add_f32_as("f16.weight", values, DType::F16);
    writer.write(path.string());
  }
  const WeightStore store = WeightStore::open(path.string());
  for (const std::string name : {"bf16.weight", "f16.weight"}) {
    INFO(name);
    const std::uint8_t* mapped = store.checkpoint().file_of(name).raw_data(name);
    const std::size_t bytes = store.checkpoint().info(name).bytes();
    const Tensor<const float> weight = store.get(name, Shape{rows, columns});
    CHECK(resident_pages(mapped, bytes) <= 2 * kFaultAroundPages);
    CHECK(std::abs(weight.at(17, 300) - values.at(17, 300)) <= 4e-3f * std::abs(values.at(17, 300)));
  }
}

TEST_CASE("a bf16 BLIP-2 checkpoint: the tied embedding held once in bf16, and no mapped pages held after loading") {
  if (!pagemap_readable() || !test::have_or_skip(test::fixture("blip2_opt"), "blip2_opt fixture")) return;
  // The fixture's weights as a bf16 checkpoint (what torch_dtype=bfloat16's save_pretrained writes).
  const std::string directory = test::fixture("blip2_opt");
  const Checkpoint original = Checkpoint::open(directory);
  const fs::path path = test_directory() / "blip2_opt_bf16.safetensors";
  {
    SafetensorsWriter writer;
    for (const std::string& name : original.names()) {
      if (original.info(name).dtype == DType::F32) {
        writer.add_f32_as(name, original.to_f32(name), DType::BF16);
      } else {
        writer.add(name, original.to_i64(name));
      }
    }
    writer.write(path.string());
  }
  const WeightStore store = WeightStore::open(path.string());
  const Blip2ForConditionalGeneration model =
      Blip2ForConditionalGeneration::load(store, make_blip2_model_config(load_model_config(directory).blip2));
  // The tied embedding is held once: the bf16 LM head's panels serve the lookups.
  const std::string embedding = "language_model.model.decoder.embed_tokens.weight";
  const kernels::EmbeddingTable& table = model.token_embeddings();
  CHECK(table.reads_head());
  CHECK(table.own_bytes() == 0);
  CHECK(table.dtype() == DType::BF16);
  CHECK(model.opt.lm_head.precision() == WeightPrecision::BF16);
  // Its rows read back as the bf16 values of the original f32 table.
  const Tensor<const float> reference = original.to_f32(embedding);
  std::vector<float> row(static_cast<std::size_t>(table.width()));
  for (const std::int64_t id : {std::int64_t{0}, std::int64_t{2}, table.rows() - 1}) {
    table.read_row(id, row.data());
    for (std::int64_t column = 0; column < table.width(); ++column)
      CHECK(row[static_cast<std::size_t>(column)] == bf16_to_f32(f32_to_bf16(reference.at(id, column))));
  }
  // Every tensor's pages went back: packed (Linear), copied in its type (tables) or converted (the rest).
  const Checkpoint& checkpoint = store.checkpoint();
  for (const std::string& name : checkpoint.names()) {
    INFO(name);
    CHECK(resident_pages(checkpoint.file_of(name).raw_data(name), checkpoint.info(name).bytes()) <=
          2 * kFaultAroundPages);
  }
}

TEST_CASE("a tied embedding reads the LM head only when its packing keeps the checkpoint's values") {
  if (!test::have_or_skip(test::fixture("blip2_opt"), "blip2_opt fixture")) return;
  const std::string directory = test::fixture("blip2_opt");
  const Blip2ModelConfig config = make_blip2_model_config(load_model_config(directory).blip2);
  const std::string embedding = "language_model.model.decoder.embed_tokens.weight";
  const Tensor<const float> reference = Checkpoint::open(directory).to_f32(embedding);
  const std::int64_t ids[3] = {0, 1234, reference.dim(0) - 1};
  // f32 checkpoint: f32 (as stored) keeps the values, so lookups read the head; bf16, int8 and int4 would not,
  // so the f32 table is kept beside the head.
  for (const WeightPrecision precision : {WeightPrecision::AsStored, WeightPrecision::BF16, WeightPrecision::Int8,
                                          WeightPrecision::Int4}) {
    INFO(weight_precision_name(precision));
    WeightOptions options;
    options.linear_precision = precision;
    const Blip2ForConditionalGeneration model =
        Blip2ForConditionalGeneration::load(WeightStore::open(directory, options), config);
    const kernels::EmbeddingTable& table = model.token_embeddings();
    CHECK(table.reads_head() == (precision == WeightPrecision::AsStored));
    CHECK(table.dtype() == DType::F32);
    CHECK(table.own_bytes() == (table.reads_head() ? 0 : reference.bytes()));
    std::vector<float> rows(static_cast<std::size_t>(3 * reference.dim(1)));
    kernels::embedding_lookup(table, ids, 3, rows.data());
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t column = 0; column < reference.dim(1); ++column)
        CHECK(rows[static_cast<std::size_t>(i * reference.dim(1) + column)] == reference.at(ids[i], column));
  }
}

}  // namespace io_weights_once_test
