// weights_tools/weights_tools.hpp: sharding, dtype conversion and listing of
// safetensors checkpoints. The `blip_weights` command line (blip_weights.cpp)
// is a thin shell over these functions; the tests call them directly.
//
//   shard_checkpoint    one checkpoint -> model-0000k-of-0000N.safetensors +
//                       model.safetensors.index.json, as save_pretrained does
//   convert_checkpoint  every F32/F16/BF16 tensor -> one float dtype (round to
//                       nearest even, as torch's .to(dtype)); integers kept;
//                       a sharded checkpoint stays sharded the same way
//   list_checkpoint     names, dtypes, shapes and bytes
//
// Inputs are anything blip::Checkpoint::open takes: a .safetensors file, a
// model.safetensors.index.json, or a model folder. Only weights are written:
// config.json, tokenizer files and the rest are the caller's to copy.
//
// Every file is built in memory before it is written (one shard, or the one
// file of an unsharded checkpoint), so converting a single 15 GB file needs
// about the output file's size in RAM; shard it first to bound that.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/io/quantized_checkpoint.hpp"
#include "blip/io/safetensors.hpp"

namespace blip::weights_tools {

// A wrong command-line argument (the CLI exits with status 2 for these, 1 for
// other errors). Still a blip::Error, so library callers need one catch.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

template <class... Parts>
[[noreturn]] void usage_fail(Parts&&... parts) {
  throw UsageError(detail::concat(std::forward<Parts>(parts)...));
}

inline constexpr const char* kSingleFileName = "model.safetensors";
inline constexpr const char* kIndexFileName = "model.safetensors.index.json";

// save_pretrained's shard names: model-00001-of-00003.safetensors (1-based).
inline std::string shard_file_name(std::size_t index, std::size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

inline bool is_floating(DType type) { return type == DType::F32 || type == DType::F16 || type == DType::BF16; }

// ---- argument parsing (shared by the CLI and the functions below) -----------

// "bf16" | "f16" | "f32" (also bfloat16, fp16, float16, half, fp32, float32, float).
inline DType parse_float_dtype(const std::string& text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "bf16" || lower == "bfloat16") return DType::BF16;
  if (lower == "f16" || lower == "fp16" || lower == "float16" || lower == "half") return DType::F16;
  if (lower == "f32" || lower == "fp32" || lower == "float32" || lower == "float") return DType::F32;
  usage_fail("--dtype '", text, "': expected bf16, f16 or f32");
}

// A non-negative decimal integer, the whole of `text` (no sign, no spaces).
inline std::uint64_t parse_unsigned(const std::string& text, const std::string& option) {
  if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    usage_fail(option, " '", text, "': expected a non-negative integer");
  return std::stoull(text);
}

// Bytes, as huggingface_hub's parse_size_to_int reads max_shard_size: a plain
// integer, or a number with KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB
// (powers of 1024), e.g. "5GB", "500MiB".
inline std::uint64_t parse_size(const std::string& text, const std::string& option = "--max-shard-size") {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, std::uint64_t> multipliers{
      {"", 1},           {"B", 1},
      {"KB", 1000ull},   {"MB", 1000ull * 1000},      {"GB", 1000ull * 1000 * 1000},      {"TB", 1000ull * 1000 * 1000 * 1000},
      {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}, {"TIB", 1ull << 40}};
  const auto multiplier = multipliers.find(unit);
  if (digits == 0 || multiplier == multipliers.end())
    usage_fail(option, " '", text, "': expected a byte count such as 1000000, 500MB or 5GiB");
  const std::uint64_t number = parse_unsigned(text.substr(0, digits), option);
  if (number > std::numeric_limits<std::uint64_t>::max() / multiplier->second) usage_fail(option, " '", text, "': too large");
  return number * multiplier->second;
}

// ---- reading the input -------------------------------------------------------

// One tensor of the input, with the file it lives in.
struct SourceTensor {
  const SafetensorsFile* file = nullptr;
  const TensorInfo* info = nullptr;
};

// The checkpoint's tensors in storage order: file by file (index order of the
// shards), each file in its header order. Only tensors the checkpoint lists
// (for a sharded one, those in the index's weight_map).
inline std::vector<SourceTensor> tensors_in_order(const Checkpoint& checkpoint) {
  std::vector<SourceTensor> tensors;
  for (const SafetensorsFile& file : checkpoint.files()) {
    for (const TensorInfo& info : file.tensors()) {
      if (checkpoint.contains(info.name) && &checkpoint.file_of(info.name) == &file) tensors.push_back({&file, &info});
    }
  }
  return tensors;
}

inline bool is_sharded(const Checkpoint& checkpoint) {
  return std::filesystem::path(checkpoint.path()).extension() == ".json";
}

inline Checkpoint open_input(const std::string& input) {
  std::error_code error;
  if (!std::filesystem::exists(input, error)) fail(input, ": input checkpoint does not exist");
  return Checkpoint::open(input);
}

// The folder a checkpoint's files sit in.
inline std::filesystem::path checkpoint_folder(const Checkpoint& checkpoint) {
  return std::filesystem::absolute(checkpoint.path()).parent_path();
}

inline bool same_path(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code error;
  return std::filesystem::exists(a, error) && std::filesystem::exists(b, error) && std::filesystem::equivalent(a, b, error);
}

// Creates `folder` if needed and refuses one that already holds checkpoint
// files not among `written` (a stale model.safetensors would win over a new
// index when loading, and stale shards would be confusing). Files about to be
// overwritten are fine, so re-running a command works.
// (This overload has no input checkpoint to protect: make-random.)
inline void prepare_output_folder(const std::filesystem::path& folder, const std::set<std::string>& written) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(folder, error) && !fs::is_directory(folder, error))
    usage_fail(folder.string(), ": output must be a folder, but a file of that name exists");
  fs::create_directories(folder, error);
  if (error) fail(folder.string(), ": cannot create the output folder (", error.message(), ")");
  static const std::regex shard_pattern(R"(model-\d{5}-of-\d{5}\.safetensors)");
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    const bool checkpoint_file =
        name == kSingleFileName || name == kIndexFileName || std::regex_match(name, shard_pattern);
    if (checkpoint_file && written.count(name) == 0)
      usage_fail(folder.string(), ": already holds ", name,
                 ", which is not part of the checkpoint being written; use an empty folder or remove it");
  }
}

inline void prepare_output_folder(const std::filesystem::path& folder, const std::set<std::string>& written,
                                  const Checkpoint& input) {
  if (same_path(folder, checkpoint_folder(input)))
    usage_fail(folder.string(), ": the output folder is the input's folder; write to another one");
  prepare_output_folder(folder, written);
}

// save_pretrained's index: {"metadata": {"total_size": N}, "weight_map":
// {name: file}}, written as json.dumps(index, indent=2, sort_keys=True) + "\n".
inline void write_index(const std::filesystem::path& path, const nlohmann::json& metadata,
                        const std::map<std::string, std::string>& weight_map) {
  nlohmann::json index;
  index["metadata"] = metadata;
  index["weight_map"] = weight_map;
  const std::string text = index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";  // Python's json.dumps escapes non-ASCII
  const std::string partial = path.string() + ".partial";
  {
    std::ofstream stream(partial, std::ios::binary | std::ios::trunc);
    if (!stream) fail(path.string(), ": cannot create file for writing");
    stream << text;
    if (!stream.flush()) fail(path.string(), ": write failed");
  }
  std::error_code error;
  std::filesystem::rename(partial, path, error);
  if (error) fail(path.string(), ": cannot move the written file into place (", error.message(), ")");
}

// ---- sharding ----------------------------------------------------------------

// huggingface_hub's split_state_dict_into_shards_factory (what
// save_pretrained calls): tensors taken in order; a tensor larger than
// max_shard_size gets a shard of its own, appended at once (so it lands BEFORE
// the shard still being filled); otherwise the current shard is closed when
// the tensor would tip it over max_shard_size. Returns tensor indices per shard.
inline std::vector<std::vector<std::size_t>> split_like_save_pretrained(const std::vector<std::uint64_t>& sizes,
                                                                        std::uint64_t max_shard_size) {
  std::vector<std::vector<std::size_t>> shards;
  std::vector<std::size_t> current;
  std::uint64_t current_size = 0;
  for (std::size_t index = 0; index < sizes.size(); ++index) {
    if (sizes[index] > max_shard_size) {
      shards.push_back({index});
      continue;
    }
    if (current_size + sizes[index] > max_shard_size) {
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(index);
    current_size += sizes[index];
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

// The smallest max_shard_size at least as large as the largest tensor for
// which save_pretrained's rule makes exactly `shard_count` shards (the most
// even split that rule gives, with tensors in order), or a blip::Error when no
// such size exists. Smaller sizes are not searched: there every larger tensor
// becomes a shard of its own, out of order, and the count is not monotone.
inline std::uint64_t max_shard_size_for_count(const std::vector<std::uint64_t>& sizes, std::size_t shard_count,
                                              const std::string& source) {
  if (shard_count == 0) usage_fail("--shards 0: the number of shards must be at least 1");
  if (shard_count > sizes.size())
    usage_fail("--shards ", shard_count, ": ", source, " has only ", sizes.size(), " tensors, and a shard holds at least one");
  std::uint64_t total = 0, largest = 0;
  for (std::uint64_t size : sizes) total += size, largest = std::max(largest, size);
  largest = std::max<std::uint64_t>(largest, 1);
  // From `largest` up, the rule is plain next-fit in order, and more room never
  // makes more shards: bisect for the smallest size giving <= shard_count.
  std::uint64_t low = largest - 1, high = std::max(total, largest);  // count(high) == 1 <= shard_count
  while (low + 1 < high) {
    const std::uint64_t middle = low + (high - low) / 2;
    if (split_like_save_pretrained(sizes, middle).size() <= shard_count) high = middle;
    else low = middle;
  }
  const std::size_t made = split_like_save_pretrained(sizes, high).size();
  if (made != shard_count)
    usage_fail("--shards ", shard_count, ": save_pretrained's rule cannot split ", source, " into exactly ", shard_count,
               " in-order shards (a max_shard_size of ", high, " gives ", made, "); use --max-shard-size");
  return high;
}

struct ShardOptions {
  std::size_t shard_count = 0;        // --shards N (exactly one of the two is set)
  std::uint64_t max_shard_size = 0;   // --max-shard-size BYTES
};

struct ShardResult {
  std::vector<std::string> files;     // written, in order (shards, then the index)
  std::uint64_t max_shard_size = 0;   // the size used (chosen for --shards)
  std::uint64_t total_size = 0;       // bytes of tensor data ("total_size" of the index)
  std::size_t tensor_count = 0;
};

// Writes `input`'s tensors (bytes unchanged) into `output_folder` as
// save_pretrained(max_shard_size=...) would: model-0000k-of-0000N.safetensors
// with __metadata__ {"format": "pt"} and model.safetensors.index.json; or a
// single model.safetensors and no index when everything fits one shard.
inline ShardResult shard_checkpoint(const std::string& input, const std::string& output_folder,
                                    const ShardOptions& options) {
  if ((options.shard_count == 0) == (options.max_shard_size == 0)) {
    if (options.shard_count == 0 && options.max_shard_size == 0)
      usage_fail("shard: give --shards N (N >= 1) or --max-shard-size BYTES (> 0)");
    usage_fail("shard: give --shards or --max-shard-size, not both");
  }
  const Checkpoint checkpoint = open_input(input);
  const std::vector<SourceTensor> tensors = tensors_in_order(checkpoint);
  if (tensors.empty()) fail(checkpoint.path(), ": the checkpoint holds no tensors");
  std::vector<std::uint64_t> sizes;
  for (const SourceTensor& tensor : tensors) sizes.push_back(tensor.info->bytes());

  ShardResult result;
  result.tensor_count = tensors.size();
  result.max_shard_size = options.shard_count ? max_shard_size_for_count(sizes, options.shard_count, checkpoint.path())
                                              : options.max_shard_size;
  const std::vector<std::vector<std::size_t>> shards = split_like_save_pretrained(sizes, result.max_shard_size);
  for (std::uint64_t size : sizes) result.total_size += size;

  std::vector<std::string> names;
  for (std::size_t shard = 0; shard < shards.size(); ++shard)
    names.push_back(shards.size() == 1 ? std::string(kSingleFileName) : shard_file_name(shard, shards.size()));
  std::set<std::string> written(names.begin(), names.end());
  if (shards.size() > 1) written.insert(kIndexFileName);
  const std::filesystem::path folder(output_folder);
  prepare_output_folder(folder, written, checkpoint);

  std::map<std::string, std::string> weight_map;
  for (std::size_t shard = 0; shard < shards.size(); ++shard) {
    SafetensorsWriter writer;
    for (std::size_t index : shards[shard]) {
      const SourceTensor& tensor = tensors[index];
      writer.add_raw(tensor.info->name, tensor.info->dtype, tensor.info->shape, tensor.file->raw_data(tensor.info->name),
                     tensor.info->bytes());
      weight_map[tensor.info->name] = names[shard];
    }
    writer.set_metadata("format", "pt");
    const std::string path = (folder / names[shard]).string();
    writer.write(path);
    result.files.push_back(path);
  }
  if (shards.size() > 1) {
    const std::filesystem::path index_path = folder / kIndexFileName;
    write_index(index_path, nlohmann::json{{"total_size", result.total_size}}, weight_map);
    result.files.push_back(index_path.string());
  }
  return result;
}

// ---- dtype conversion --------------------------------------------------------

struct ConvertResult {
  std::vector<std::string> files;     // written (files, then the index when sharded)
  std::size_t converted = 0;          // floating tensors stored in the new dtype
  std::size_t kept = 0;               // integer tensors copied unchanged
  std::uint64_t bytes_before = 0, bytes_after = 0;  // tensor data
};

// One safetensors file with every floating tensor stored as `target`.
// Floating tensors already in `target` are copied bit for bit; the others go
// through f32 (exact for F16/BF16) and are rounded once, to nearest even.
// Metadata is kept ("format": "pt" added when absent, as transformers expects).
inline void convert_file(const SafetensorsFile& file, const std::string& output_path, DType target,
                         ConvertResult& result) {
  SafetensorsWriter writer;
  for (const TensorInfo& info : file.tensors()) {
    result.bytes_before += info.bytes();
    if (is_floating(info.dtype)) {
      ++result.converted;
      if (info.dtype == target) writer.add_raw(info.name, info.dtype, info.shape, file.raw_data(info.name), info.bytes());
      else writer.add_f32_as(info.name, file.to_f32(info.name), target);
      result.bytes_after += static_cast<std::uint64_t>(info.shape.numel()) * dtype_size(target);
    } else {
      ++result.kept;
      writer.add_raw(info.name, info.dtype, info.shape, file.raw_data(info.name), info.bytes());
      result.bytes_after += info.bytes();
    }
  }
  for (const auto& [key, value] : file.metadata()) writer.set_metadata(key, value);
  if (file.metadata().count("format") == 0) writer.set_metadata("format", "pt");
  writer.write(output_path);
  result.files.push_back(output_path);
}

// Converts a checkpoint to `target`:
//  * a single .safetensors (or a folder holding model.safetensors): `output`
//    is the new file when it ends in .safetensors, else a folder that gets a
//    file of the input's name;
//  * a sharded checkpoint (index .json, or a folder holding one): `output` is
//    a folder that gets every shard under its name and the index, with
//    metadata.total_size updated (other metadata and the weight_map kept).
inline ConvertResult convert_checkpoint(const std::string& input, const std::string& output, DType target) {
  namespace fs = std::filesystem;
  const Checkpoint checkpoint = open_input(input);
  // A quantized checkpoint's scales must stay f32 (io/quantized_checkpoint.hpp): convert its original instead.
  for (const SafetensorsFile& file : checkpoint.files())
    if (quantization_from_metadata(file.metadata(), file.path()) != WeightPrecision::AsStored)
      usage_fail(file.path(), ": is a quantized checkpoint; --dtype converts float checkpoints (convert the "
                 "original, then quantize that)");
  ConvertResult result;
  if (!is_sharded(checkpoint)) {
    const SafetensorsFile& file = checkpoint.files().at(0);
    fs::path output_path(output);
    if (output_path.extension() != ".safetensors") {
      prepare_output_folder(output_path, {fs::path(file.path()).filename().string()}, checkpoint);
      output_path /= fs::path(file.path()).filename();
    } else {
      std::error_code error;
      if (!output_path.parent_path().empty()) fs::create_directories(output_path.parent_path(), error);
      if (error) fail(output, ": cannot create the folder for the output file (", error.message(), ")");
    }
    if (same_path(output_path, file.path())) usage_fail(output, ": the output is the input file; write to another path");
    convert_file(file, output_path.string(), target, result);
    return result;
  }

  // Sharded: the same files, each converted, and the index rewritten.
  const fs::path index_path(checkpoint.path());
  const fs::path input_folder = checkpoint_folder(checkpoint);
  std::ifstream stream(index_path, std::ios::binary);
  if (!stream) fail(index_path.string(), ": cannot open checkpoint index");
  const std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  nlohmann::json index = detail::parse_strict_json(text.data(), text.data() + text.size(), index_path.string(),
                                                   "checkpoint index");
  std::vector<fs::path> relative_files;
  std::set<std::string> written{index_path.filename().string()};
  for (const SafetensorsFile& file : checkpoint.files()) {
    relative_files.push_back(fs::absolute(file.path()).lexically_relative(input_folder));
    written.insert(relative_files.back().begin()->string());
  }
  const fs::path folder(output);
  prepare_output_folder(folder, written, checkpoint);
  for (std::size_t i = 0; i < checkpoint.files().size(); ++i) {
    const fs::path output_path = folder / relative_files[i];
    std::error_code error;
    fs::create_directories(output_path.parent_path(), error);
    convert_file(checkpoint.files()[i], output_path.string(), target, result);
  }
  nlohmann::json metadata = index.contains("metadata") && index["metadata"].is_object() ? index["metadata"]
                                                                                         : nlohmann::json::object();
  metadata["total_size"] = result.bytes_after;
  const std::map<std::string, std::string> weight_map = index.at("weight_map").get<std::map<std::string, std::string>>();
  write_index(folder / index_path.filename(), metadata, weight_map);
  result.files.push_back((folder / index_path.filename()).string());
  return result;
}

// ---- listing -----------------------------------------------------------------

struct ListedTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::uint64_t bytes = 0;
  std::string file;  // file name (of the shard) holding it
};

struct Listing {
  std::string path;                    // what was opened (file or index)
  std::vector<std::string> files;      // safetensors files, in order
  std::vector<ListedTensor> tensors;   // storage order (see tensors_in_order)
  std::uint64_t total_bytes = 0;
  std::map<std::string, std::uint64_t> bytes_per_dtype;  // "F32" -> bytes
};

inline Listing list_checkpoint(const std::string& input) {
  const Checkpoint checkpoint = open_input(input);
  Listing listing;
  listing.path = checkpoint.path();
  for (const SafetensorsFile& file : checkpoint.files()) listing.files.push_back(file.path());
  for (const SourceTensor& tensor : tensors_in_order(checkpoint)) {
    const TensorInfo& info = *tensor.info;
    listing.tensors.push_back({info.name, info.dtype, info.shape, info.bytes(),
                               std::filesystem::path(tensor.file->path()).filename().string()});
    listing.total_bytes += info.bytes();
    listing.bytes_per_dtype[dtype_name(info.dtype)] += info.bytes();
  }
  return listing;
}

inline std::string human_bytes(std::uint64_t bytes) {
  char text[32];
  if (bytes >= 1000ull * 1000 * 1000) std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1000ull * 1000) std::snprintf(text, sizeof text, "%.2f MB", bytes / 1e6);
  else if (bytes >= 1000) std::snprintf(text, sizeof text, "%.2f kB", bytes / 1e3);
  else std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  return text;
}

// One line per tensor (name, dtype, shape, bytes, and the shard when there
// are several), then the totals.
inline void print_listing(const Listing& listing, std::ostream& out) {
  std::size_t width = 4;
  for (const ListedTensor& tensor : listing.tensors) width = std::max(width, tensor.name.size());
  const bool show_file = listing.files.size() > 1;
  for (const ListedTensor& tensor : listing.tensors) {
    std::ostringstream line;
    line << tensor.name << std::string(width - tensor.name.size() + 2, ' ') << dtype_name(tensor.dtype);
    line << std::string(6 - std::string(dtype_name(tensor.dtype)).size(), ' ');
    const std::string shape = tensor.shape.to_string();
    line << shape << std::string(shape.size() < 22 ? 22 - shape.size() : 1, ' ') << tensor.bytes;
    if (show_file) line << "  " << tensor.file;
    out << line.str() << "\n";
  }
  out << listing.tensors.size() << " tensors, " << listing.total_bytes << " bytes (" << human_bytes(listing.total_bytes)
      << ") in " << listing.files.size() << (listing.files.size() == 1 ? " file" : " files") << ":";
  for (const auto& [dtype, bytes] : listing.bytes_per_dtype) out << " " << dtype << " " << bytes;
  out << "\n";
}

}  // namespace blip::weights_tools
