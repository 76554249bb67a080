// weights_tools/model_weights.hpp: checkpoints seen through the model that
// loads them. `blip_weights inspect` and `blip_weights make-random`.
//
// Which tensors a model needs, and in which shapes, is written in one place:
// each model's load() (include/blip/models, nn/), which asks a WeightStore for
// every tensor by its checkpoint name and config-derived shape. Rather than
// keep a second list here that would drift from it, these tools run that
// load() on a recording store (WeightStore::recording, io/weight_store.hpp):
// it records each request and hands back zeros of the expected shape, so
// load() goes to its end whatever the checkpoint holds. The record is then
//   * compared with a checkpoint (inspect): missing, mis-shaped and unexpected
//     tensors, all of them, where a real load stops at the first;
//   * turned into a checkpoint (make-random): every tensor the loader asks
//     for, in the order and shape it asks, filled as HF's _init_weights does.
// A model class that learns a new tensor is thus covered without touching
// this file.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "blip/io/config.hpp"
#include "blip/io/json_file.hpp"
#include "blip/io/model_location.hpp"
#include "blip/io/quantized_checkpoint.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "weights_tools.hpp"

namespace blip::weights_tools {

// ---- what the loader asks for ---------------------------------------------------

struct ExpectedWeights {
  ModelConfig config;                     // config.json as blipcpp reads it
  std::string model_type;                 // config.json's model_type ("blip", "blip-2")
  std::vector<std::string> architectures; // config.json's architectures
  std::string model_class;                // the blipcpp class whose load() was recorded
  std::vector<RequestedWeight> requested; // each tensor load() asked for, in order
  std::vector<std::string> unexpected;    // checkpoint tensors load() never asked for
  std::string load_error;                 // set when load() stopped on a check of its own (not the store's)
};

// Runs the load() of the blipcpp model class for config.architecture on
// `store` and returns that class's name. The model itself is dropped.
inline std::string load_model_for_architecture(const WeightStore& store, const ModelConfig& config,
                                               const std::string& source) {
  const std::string& architecture = config.architecture;
  if (config.family == ModelFamily::Blip2) {
    const Blip2ModelConfig model_config = make_blip2_model_config(config.blip2);
    if (architecture == "Blip2ForConditionalGeneration") Blip2ForConditionalGeneration::load(store, model_config);
    else if (architecture == "Blip2ForImageTextRetrieval") Blip2ForImageTextRetrieval::load(store, model_config);
    else fail(source, ": architecture '", clip(architecture), "' has no blipcpp model class (blipcpp loads "
              "Blip2ForConditionalGeneration and Blip2ForImageTextRetrieval)");
    return architecture;
  }
  const BlipModelConfig model_config = make_blip_model_config(config.blip);
  if (architecture == "BlipForConditionalGeneration") BlipForConditionalGeneration::load(store, model_config);
  else if (architecture == "BlipForQuestionAnswering") BlipForQuestionAnswering::load(store, model_config);
  else if (architecture == "BlipForImageTextRetrieval") BlipForImageTextRetrieval::load(store, model_config);
  else fail(source, ": architecture '", clip(architecture), "' has no blipcpp model class (blipcpp loads "
            "BlipForConditionalGeneration, BlipForQuestionAnswering and BlipForImageTextRetrieval)");
  return architecture;
}

// Records what the model of <config_folder>/config.json asks for, against
// `checkpoint` or (nullopt) against none. Config errors are thrown; a check
// inside load() that fails (rare: e.g. an image size that is not a multiple
// of the patch size) is returned in load_error with the record up to there.
inline ExpectedWeights record_expected_weights(const std::string& config_folder, std::optional<Checkpoint> checkpoint) {
  ExpectedWeights expected;
  const std::string config_path = (std::filesystem::path(config_folder) / "config.json").string();
  const nlohmann::json document = read_config_json_file(config_path);
  expected.model_type = document.value("model_type", "");
  if (document.contains("architectures") && document["architectures"].is_array())
    for (const auto& name : document["architectures"])
      if (name.is_string()) expected.architectures.push_back(name.get<std::string>());
  expected.config = load_model_config(config_folder);
  const WeightStore store = checkpoint ? WeightStore::recording(*checkpoint) : WeightStore::recording();
  try {
    expected.model_class = load_model_for_architecture(store, expected.config, config_path);
  } catch (const Error& error) {
    if (expected.config.architecture.empty())
      fail(config_path, ": lists no architectures, so the model class is unknown");
    if (store.requested().empty()) throw;  // no class was run: nothing to report but the error
    expected.load_error = error.what();
  }
  expected.requested = store.requested();
  if (checkpoint) expected.unexpected = store.unused();
  return expected;
}

// ---- inspect ------------------------------------------------------------------

struct Inspection {
  std::string folder;
  Listing listing;
  ExpectedWeights expected;
  std::vector<const RequestedWeight*> missing, wrong_shape;  // into expected.requested
  std::size_t optional_absent = 0;

  // Loads: nothing required missing or mis-shaped, and load() ran to its end.
  bool loadable() const { return missing.empty() && wrong_shape.empty() && expected.load_error.empty(); }
};

// MODEL is a model folder or a Hub repository id in the local cache.
inline Inspection inspect_model(const std::string& model) {
  Inspection inspection;
  inspection.folder = resolve_model_folder(model);
  inspection.listing = list_checkpoint(inspection.folder);
  inspection.expected = record_expected_weights(inspection.folder, Checkpoint::open(inspection.folder));
  for (const RequestedWeight& request : inspection.expected.requested) {
    if (request.found == RequestedWeight::Found::WrongShape) inspection.wrong_shape.push_back(&request);
    else if (request.found == RequestedWeight::Found::Absent && request.optional) ++inspection.optional_absent;
    else if (request.found == RequestedWeight::Found::Absent) inspection.missing.push_back(&request);
  }
  return inspection;
}

inline void print_inspection(const Inspection& inspection, std::ostream& out) {
  const ExpectedWeights& expected = inspection.expected;
  out << "model folder: " << inspection.folder << "\n";
  out << "config.json: model_type " << expected.model_type << ", architectures [";
  for (std::size_t i = 0; i < expected.architectures.size(); ++i) out << (i ? ", " : "") << expected.architectures[i];
  out << "] -> blipcpp " << (expected.model_class.empty() ? "(no model class)" : expected.model_class) << "\n\n";
  print_listing(inspection.listing, out);
  out << "\n" << expected.model_class << " asks for " << expected.requested.size() << " tensors: "
      << expected.requested.size() - inspection.missing.size() - inspection.wrong_shape.size() -
             inspection.optional_absent
      << " present with the expected shape";
  if (inspection.optional_absent) out << ", " << inspection.optional_absent << " optional ones absent (the model has a fallback)";
  out << "\n";
  out << "missing (" << inspection.missing.size() << ")" << (inspection.missing.empty() ? "" : ":") << "\n";
  for (const RequestedWeight* request : inspection.missing) out << "  " << request->name << "  " << request->expected << "\n";
  out << "wrong shape (" << inspection.wrong_shape.size() << ")" << (inspection.wrong_shape.empty() ? "" : ":") << "\n";
  for (const RequestedWeight* request : inspection.wrong_shape)
    out << "  " << request->name << "  stored " << request->stored_shape << ", expected " << request->expected << "\n";
  out << "unexpected (" << expected.unexpected.size() << ")"
      << (expected.unexpected.empty() ? "" : ": in the checkpoint, not read by blipcpp (like HF's \"unexpected keys\"; "
                                             "buffers such as position_ids and tied copies are normal)")
      << "\n";
  for (const std::string& name : expected.unexpected) out << "  " << name << "\n";
  if (!expected.load_error.empty()) out << "load() stopped: " << expected.load_error << "\n";
  out << (inspection.loadable() ? "loads: yes" : "loads: no") << "\n";
}

inline nlohmann::json shape_json(const Shape& shape) {
  nlohmann::json dims = nlohmann::json::array();
  for (int axis = 0; axis < shape.rank(); ++axis) dims.push_back(shape[axis]);
  return dims;
}

inline nlohmann::json inspection_json(const Inspection& inspection) {
  const ExpectedWeights& expected = inspection.expected;
  nlohmann::json tensors = nlohmann::json::array();
  for (const ListedTensor& tensor : inspection.listing.tensors)
    tensors.push_back({{"name", tensor.name}, {"dtype", dtype_name(tensor.dtype)}, {"shape", shape_json(tensor.shape)},
                       {"bytes", tensor.bytes}, {"file", tensor.file}});
  nlohmann::json missing = nlohmann::json::array(), wrong_shape = nlohmann::json::array();
  for (const RequestedWeight* request : inspection.missing)
    missing.push_back({{"name", request->name}, {"expected_shape", shape_json(request->expected)}});
  for (const RequestedWeight* request : inspection.wrong_shape)
    wrong_shape.push_back({{"name", request->name}, {"expected_shape", shape_json(request->expected)},
                           {"stored_shape", shape_json(request->stored_shape)}});
  std::vector<std::string> files;
  for (const std::string& file : inspection.listing.files) files.push_back(std::filesystem::path(file).filename().string());
  return {{"folder", inspection.folder},
          {"model_type", expected.model_type},
          {"architectures", expected.architectures},
          {"model_class", expected.model_class},
          {"files", files},
          {"tensors", tensors},
          {"tensor_count", inspection.listing.tensors.size()},
          {"total_bytes", inspection.listing.total_bytes},
          {"bytes_per_dtype", inspection.listing.bytes_per_dtype},
          {"expected_count", expected.requested.size()},
          {"optional_absent", inspection.optional_absent},
          {"missing", missing},
          {"wrong_shape", wrong_shape},
          {"unexpected", expected.unexpected},
          {"load_error", expected.load_error.empty() ? nlohmann::json() : nlohmann::json(expected.load_error)},
          {"loadable", inspection.loadable()}};
}

// ---- make-random ----------------------------------------------------------------

// The non-weight files of a model folder that make-random copies when present.
inline const std::vector<std::string>& model_folder_side_files() {
  static const std::vector<std::string> names{
      "config.json",          "generation_config.json",  "preprocessor_config.json", "processor_config.json",
      "tokenizer.json",       "tokenizer_config.json",   "special_tokens_map.json",  "added_tokens.json",
      "vocab.txt",            "vocab.json",              "merges.txt",               "spiece.model"};
  return names;
}

// Copies the side files (above) `from` holds into `to`; returns their names.
inline std::vector<std::string> copy_model_side_files(const std::filesystem::path& from, const std::filesystem::path& to) {
  namespace fs = std::filesystem;
  std::vector<std::string> copied;
  std::error_code error;
  for (const std::string& name : model_folder_side_files()) {
    const fs::path source = from / name;
    if (!fs::is_regular_file(source, error)) continue;
    fs::copy_file(source, to / name, fs::copy_options::overwrite_existing, error);
    if (error) fail((to / name).string(), ": cannot copy ", source.string(), " (", error.message(), ")");
    copied.push_back(name);
  }
  return copied;
}

struct RandomOptions {
  DType dtype = DType::F32;
  std::uint64_t seed = 0;
  // transformers' save_pretrained default (5GB); larger checkpoints are sharded with an index.
  std::uint64_t max_shard_size = 5ull * 1000 * 1000 * 1000;
};

struct RandomResult {
  std::string model_class;
  std::size_t tensor_count = 0;
  std::uint64_t parameter_count = 0, total_size = 0;
  double initializer_range = 0;
  std::vector<std::string> files;   // weights written (shards then index, or model.safetensors)
  std::vector<std::string> copied;  // config and tokenizer files copied
};

// N(0, 1) from a 64-bit Mersenne Twister by Box-Muller. std::normal_distribution
// is not specified to the bit, so the same --seed would give other weights with
// another standard library; this gives the same file everywhere.
class NormalSource {
 public:
  explicit NormalSource(std::uint64_t seed) : engine_(seed) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // (0, 1]: the top 53 bits, offset by one so log() never sees 0.
    const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    const double u2 = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 6.283185307179586 * u2;
    spare_ = static_cast<float>(radius * std::sin(angle));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle));
  }

 private:
  std::mt19937_64 engine_;
  float spare_ = 0;
  bool has_spare_ = false;
};

// The value rule of HF's BlipPreTrainedModel / Blip2PreTrainedModel._init_weights:
// Linear, Conv2d and Embedding weights (and the vision embeddings, the
// query tokens) ~ N(0, initializer_range), biases 0, LayerNorm weight 1. The
// 1-D tensors named "*.weight" are exactly the norms' scales (LayerNorm, T5's
// RMSNorm): every other weight has two or more dimensions.
enum class InitialValue { Normal, Zero, One };
inline InitialValue initial_value_for(const RequestedWeight& request) {
  const auto ends_with = [&](const std::string& suffix) {
    return request.name.size() >= suffix.size() &&
           request.name.compare(request.name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("bias")) return InitialValue::Zero;  // ".bias", and BLIP-2's older q_bias / v_bias
  if (ends_with(".weight") && request.expected.rank() == 1) return InitialValue::One;
  return InitialValue::Normal;
}

// Writes into `output_folder` a random checkpoint for <config_folder>/config.json
// in Hugging Face's layout (model.safetensors, or shards + index above
// max_shard_size), and copies the config and tokenizer files next to it.
inline RandomResult make_random_checkpoint(const std::string& config_folder, const std::string& output_folder,
                                           const RandomOptions& options) {
  namespace fs = std::filesystem;
  if (!is_floating(options.dtype)) usage_fail("--dtype: expected bf16, f16 or f32");
  if (options.max_shard_size == 0) usage_fail("--max-shard-size 0: must be at least 1 byte");
  std::error_code error;
  if (!fs::is_directory(config_folder, error)) usage_fail(config_folder, ": not a folder (expected one holding config.json)");
  if (same_path(output_folder, config_folder))
    usage_fail(output_folder, ": the output folder is CONFIG_DIR; write to another folder (config.json and the "
               "tokenizer files are copied there)");
  const ExpectedWeights expected = record_expected_weights(config_folder, std::nullopt);
  if (!expected.load_error.empty()) fail(config_folder, "/config.json: the model's load() stopped: ", expected.load_error);
  const nlohmann::json document = read_config_json_file(fs::path(config_folder) / "config.json");
  RandomResult result;
  result.model_class = expected.model_class;
  result.initializer_range = document.contains("initializer_range") && document["initializer_range"].is_number()
                                 ? document["initializer_range"].get<double>()
                                 : 0.02;  // BlipConfig's and Blip2Config's default

  // Which tensors go to which file: save_pretrained's rule on the stored sizes.
  std::vector<std::uint64_t> sizes;
  for (const RequestedWeight& request : expected.requested) {
    sizes.push_back(static_cast<std::uint64_t>(request.expected.numel()) * dtype_size(options.dtype));
    result.parameter_count += static_cast<std::uint64_t>(request.expected.numel());
    result.total_size += sizes.back();
  }
  result.tensor_count = sizes.size();
  const std::vector<std::vector<std::size_t>> shards = split_like_save_pretrained(sizes, options.max_shard_size);
  std::vector<std::string> names;
  for (std::size_t shard = 0; shard < shards.size(); ++shard)
    names.push_back(shards.size() == 1 ? std::string(kSingleFileName) : shard_file_name(shard, shards.size()));
  std::set<std::string> written(names.begin(), names.end());
  if (shards.size() > 1) written.insert(kIndexFileName);
  const fs::path folder(output_folder);
  prepare_output_folder(folder, written);

  // Values are drawn tensor by tensor in request order, so a seed gives the
  // same weights whatever the dtype or the sharding.
  NormalSource normal(options.seed);
  std::map<std::string, std::string> weight_map;
  for (std::size_t shard = 0; shard < shards.size(); ++shard) {
    SafetensorsWriter writer;
    for (std::size_t index : shards[shard]) {
      const RequestedWeight& request = expected.requested[index];
      Tensor<float> values(request.expected);
      const InitialValue rule = initial_value_for(request);
      for (std::int64_t i = 0; i < values.numel(); ++i)
        values.data()[i] = rule == InitialValue::Zero  ? 0.0f
                           : rule == InitialValue::One ? 1.0f
                                                       : static_cast<float>(result.initializer_range) * normal.next();
      writer.add_f32_as(request.name, values, options.dtype);
      weight_map[request.name] = names[shard];
    }
    writer.set_metadata("format", "pt");
    const std::string path = (folder / names[shard]).string();
    writer.write(path);
    result.files.push_back(path);
  }
  if (shards.size() > 1) {
    write_index(folder / kIndexFileName, nlohmann::json{{"total_size", result.total_size}}, weight_map);
    result.files.push_back((folder / kIndexFileName).string());
  }
  result.copied = copy_model_side_files(config_folder, folder);
  return result;
}

// ---- quantize (convert --precision int8|int4) ------------------------------------

struct QuantizeResult {
  std::string model_class;
  std::size_t quantized = 0;  // Linear weights stored as q + scales
  std::size_t kept = 0;       // tensors copied as they were
  std::uint64_t bytes_before = 0, bytes_after = 0;
  std::vector<std::string> files;   // weights written (files, then the index when sharded)
  std::vector<std::string> copied;  // config and tokenizer files copied
};

// The Linear weight `info` of `file` quantized to `precision` into `writer`: <name> and <name>_scale
// (io/quantized_checkpoint.hpp), row by row with core/quantization.hpp's rules, as LinearWeights does at load.
inline std::uint64_t add_quantized_weight(SafetensorsWriter& writer, const SafetensorsFile& file, const TensorInfo& info,
                                          WeightPrecision precision) {
  const std::int64_t rows = info.shape[0], columns = info.shape[1];
  const Tensor<const float> weight = file.to_f32(info.name);
  const Shape weight_shape = quantized_weight_shape(precision, rows, columns);
  const Shape scale_shape = quantized_scale_shape(precision, rows, columns);
  std::vector<std::uint8_t> quantized(static_cast<std::size_t>(weight_shape.numel()));
  Tensor<float> scales(scale_shape);
  const std::int64_t row_bytes = weight_shape[1], scales_per_row = precision == WeightPrecision::Int8 ? 1 : scale_shape[1];
  parallel_for(0, rows, [&](std::int64_t row) {
    const float* values = weight.data() + row * columns;
    std::uint8_t* destination = quantized.data() + row * row_bytes;
    if (precision == WeightPrecision::Int8)
      scales.data()[row] = quantization::quantize_row_int8(values, columns, reinterpret_cast<std::int8_t*>(destination));
    else
      quantization::quantize_row_int4(values, columns, destination, scales.data() + row * scales_per_row);
  }, 16);
  writer.add_raw(info.name, quantized_weight_dtype(precision), weight_shape, quantized.data(), quantized.size());
  writer.add<float>(info.name + kQuantizationScaleSuffix, scales);
  return quantized.size() + scales.bytes();
}

// Writes into `output_folder` the checkpoint of MODEL (a model folder or a Hub id in the local cache) with every
// Linear weight the model packs at load stored quantized to `precision` (int8 or int4), everything else as it
// was, sharded the same way, and copies the config and tokenizer files next to it. Which tensors are Linear
// weights comes from the model's own load() (record_expected_weights): a tensor it also reads as floats (a tied
// embedding) stays as it is. Loading the result with the precision left as stored runs bit-identically to
// loading MODEL with that precision.
inline QuantizeResult quantize_checkpoint(const std::string& model, const std::string& output_folder,
                                          WeightPrecision precision) {
  namespace fs = std::filesystem;
  if (!is_checkpoint_quantization(precision))
    usage_fail("--precision ", weight_precision_name(precision), ": expected int8 or int4");
  std::error_code error;
  if (fs::is_regular_file(model, error))
    usage_fail(model, ": --precision needs a model folder with config.json, not a file (which tensors are Linear "
               "weights comes from the model)");
  const std::string folder = resolve_model_folder(model);
  if (!fs::is_regular_file(fs::path(folder) / "config.json", error))
    usage_fail(model, ": --precision needs a model folder with config.json (which tensors are Linear weights "
               "comes from the model)");
  const Checkpoint checkpoint = open_input(folder);
  for (const SafetensorsFile& file : checkpoint.files())
    if (quantization_from_metadata(file.metadata(), file.path()) != WeightPrecision::AsStored)
      usage_fail(file.path(), ": is quantized already; convert its original checkpoint");
  const ExpectedWeights expected = record_expected_weights(folder, checkpoint);
  if (!expected.load_error.empty()) fail(folder, ": the model's load() stopped: ", expected.load_error);
  std::set<std::string> linear_weights;
  for (const RequestedWeight& request : expected.requested) {
    if (request.found == RequestedWeight::Found::Absent && !request.optional)
      fail(folder, ": the model needs tensor '", request.name, "' ", request.expected,
           ", which the checkpoint does not hold (blip_weights inspect lists every difference)");
    if (request.found == RequestedWeight::Found::WrongShape)
      fail(folder, ": tensor '", request.name, "' has shape ", request.stored_shape, " but the model expects ",
           request.expected, " (blip_weights inspect lists every difference)");
    if (request.packed_as_linear && !request.read_as_floats && request.found == RequestedWeight::Found::Yes &&
        is_floating(request.stored_dtype))
      linear_weights.insert(request.name);
  }
  for (const std::string& name : linear_weights)
    if (checkpoint.contains(name + kQuantizationScaleSuffix))
      fail(folder, ": holds a tensor '", name, kQuantizationScaleSuffix, "', the name the scales of '", name,
           "' would take");

  QuantizeResult result;
  result.model_class = expected.model_class;
  std::set<std::string> source_dtypes;
  for (const std::string& name : linear_weights) source_dtypes.insert(dtype_name(checkpoint.info(name).dtype));
  std::string quantized_from;
  for (const std::string& dtype : source_dtypes) quantized_from += (quantized_from.empty() ? "" : ",") + dtype;

  const bool sharded = is_sharded(checkpoint);
  const fs::path input_folder = checkpoint_folder(checkpoint);
  std::set<std::string> written;
  std::vector<fs::path> relative_files;
  for (const SafetensorsFile& file : checkpoint.files()) {
    relative_files.push_back(fs::absolute(file.path()).lexically_relative(input_folder));
    written.insert(relative_files.back().begin()->string());
  }
  if (sharded) written.insert(fs::path(checkpoint.path()).filename().string());
  const fs::path output(output_folder);
  prepare_output_folder(output, written, checkpoint);

  std::map<std::string, std::string> weight_map;
  const std::vector<SourceTensor> tensors = tensors_in_order(checkpoint);
  for (std::size_t i = 0; i < checkpoint.files().size(); ++i) {
    const SafetensorsFile& file = checkpoint.files()[i];
    SafetensorsWriter writer;
    for (const SourceTensor& tensor : tensors) {
      if (tensor.file != &file) continue;
      const TensorInfo& info = *tensor.info;
      result.bytes_before += info.bytes();
      const std::string shard = relative_files[i].generic_string();
      weight_map[info.name] = shard;
      if (linear_weights.count(info.name)) {
        result.bytes_after += add_quantized_weight(writer, file, info, precision);
        weight_map[info.name + kQuantizationScaleSuffix] = shard;
        ++result.quantized;
      } else {
        writer.add_raw(info.name, info.dtype, info.shape, file.raw_data(info.name), info.bytes());
        result.bytes_after += info.bytes();
        ++result.kept;
      }
    }
    for (const auto& [key, value] : file.metadata()) writer.set_metadata(key, value);
    if (file.metadata().count("format") == 0) writer.set_metadata("format", "pt");
    writer.set_metadata(kQuantizationKey, weight_precision_name(precision));
    writer.set_metadata(kQuantizationFormatKey, kQuantizationFormatVersion);
    writer.set_metadata(kQuantizedFromKey, quantized_from);
    writer.set_metadata(kQuantizationMethodKey, quantization_method(precision));
    const fs::path path = output / relative_files[i];
    fs::create_directories(path.parent_path(), error);
    writer.write(path.string());
    result.files.push_back(path.string());
  }
  if (sharded) {
    const fs::path index = output / fs::path(checkpoint.path()).filename();
    write_index(index, nlohmann::json{{"total_size", result.bytes_after}}, weight_map);
    result.files.push_back(index.string());
  }
  result.copied = copy_model_side_files(folder, output);
  return result;
}

}  // namespace blip::weights_tools
