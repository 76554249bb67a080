// blip/io/weight_store.hpp: what models load their weights from.
//
// A model asks for each weight by its checkpoint name together with the shape
// its config implies; the store returns it as f32 or fails with a message that
// names the tensor, the checkpoint, and the expected and found shapes. That is
// where a config that does not match its checkpoint shows up, at load time.
//
// Where the weights live after load (WeightResidency):
//   * Copied (the default): every weight a model keeps (`get`) is copied out
//     of the memory-mapped file and the mapped pages handed back, and a weight
//     a kernel repacks at load (`get_for_repacking`: LinearWeights) is read
//     from the mapping once, for the repacking, and its pages handed back too
//     (core/mapped_file.hpp: release_mapped_pages). Either way the checkpoint
//     is held once, and once loading has finished the process never reads the
//     files again: truncating or overwriting them under a long-running process
//     cannot hurt it (a read of a truncated mapping is a SIGBUS).
//   * Mapped: kept weights stay zero-copy views of the mapping (pages shared
//     between processes that map the same file, and RAM only for the pages
//     read, e.g. the rows of an embedding table actually used). The files must
//     then not change while the model is alive; replace them with `mv`.
// F16 / BF16 (and integer) weights are converted to f32 once, when fetched
// (and their mapped pages handed back), except the two kinds that keep their
// stored type: Linear weights, packed in their running precision, and
// embedding tables (get_table), widened a looked-up row at a time.
//
// Quantized checkpoints (io/quantized_checkpoint.hpp, written by blip_weights
// convert --precision int8|int4): a Linear weight stored quantized is handed
// to LinearWeights as its q and scales (StoredMatrix::quantization) and, with
// the precision left AsStored, packed as it is: bit-identical to quantizing
// the original checkpoint at load. AsStored then means the file's precision
// for every Linear, so a tied head (kept as floats in the file) is quantized
// at load the same way. Asked for another precision, or read as floats, a
// quantized weight is q · scale.
//
// Checkpoints often hold more than a model needs (extra copies of tied
// weights, buffers such as position_ids, heads of other tasks). Those are not
// an error: `unused()` lists them so tools can report them, much like the
// "unexpected keys" warning of transformers' from_pretrained.
//
// Recording (WeightStore::recording): the model's own load() is the one list
// of the tensors it needs, with their shapes computed from the config. A
// recording store lets that list be read without a second copy of it: every
// request is recorded (name, expected shape, optional or not, and what the
// checkpoint holds under that name) and answered with a zero stand-in of the
// expected shape instead of failing, so load() runs to its end and reports
// every missing or mis-shaped tensor, not just the first. Tools use it to
// check a checkpoint against a model (blip_weights inspect) and to write a
// checkpoint a model will accept (blip_weights make-random). The model built
// from stand-ins is all zeros and is only good for throwing away.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/mapped_file.hpp"
#include "blip/core/stored_matrix.hpp"
#include "blip/core/tensor.hpp"
#include "blip/io/quantized_checkpoint.hpp"
#include "blip/io/safetensors.hpp"

namespace blip {

// Whether the weights a model keeps are copied out of the mapped files at load
// or stay views of them (see the top of this file).
enum class WeightResidency {
  Copied,  // the files are read while loading only (default)
  Mapped,  // zero-copy views: the files must not change while the model lives
};

// How a model's weights are read and kept.
struct WeightOptions {
  WeightResidency residency = WeightResidency::Copied;
  // The precision every Linear weight is packed in (kernels/linear.hpp);
  // AsStored keeps the checkpoint's type (a bf16 checkpoint runs in bf16).
  // Norms, biases and position tables stay f32 whatever this says; token
  // embedding tables keep the checkpoint's float type (get_table).
  WeightPrecision linear_precision = WeightPrecision::AsStored;
  // What Linear layers with bf16 weights multiply them by (core/dtype.hpp: ActivationPrecision).
  ActivationPrecision linear_activations = ActivationPrecision::F32;
};

// One tensor a model asked a recording store for, in the order of first request.
struct RequestedWeight {
  enum class Found {
    Yes,           // the checkpoint has it with the expected shape
    Absent,        // the checkpoint has no tensor of that name
    WrongShape,    // the checkpoint has it with another shape (stored_shape)
    NoCheckpoint,  // recorded from a config alone: nothing to compare with
  };
  std::string name;
  Shape expected;
  bool optional = false;  // asked with get_or_empty: the model loads without it
  Found found = Found::NoCheckpoint;
  Shape stored_shape;     // the checkpoint's shape when found is Yes or WrongShape
  DType stored_dtype = DType::F32;
  // How load() read it: packed as a Linear weight (get_matrix_for_repacking), read as floats (get,
  // get_or_empty, get_for_repacking), or both. blip_weights convert --precision quantizes the tensors
  // only ever packed: the others must stay floats.
  bool packed_as_linear = false;
  bool read_as_floats = false;
};

class WeightStore {
 public:
  explicit WeightStore(Checkpoint checkpoint, WeightOptions options = {})
      : checkpoint_(std::move(checkpoint)), options_(options), usage_(std::make_shared<Usage>()) {
    // One quantization for the whole checkpoint: shards of different precisions are not one model.
    for (const SafetensorsFile& file : checkpoint_.files()) {
      const WeightPrecision file_quantization = quantization_from_metadata(file.metadata(), file.path());
      if (file_quantization != quantization_ && &file != &checkpoint_.files().front())
        fail(checkpoint_.path(), ": its files are quantized differently (", file.path(), ": ",
             weight_precision_name(file_quantization), ", others: ", weight_precision_name(quantization_), ")");
      quantization_ = file_quantization;
    }
  }

  // A .safetensors file, an index .json, or a folder (see Checkpoint::open).
  static WeightStore open(const std::string& model_dir_or_file, WeightOptions options = {}) {
    return WeightStore(Checkpoint::open(model_dir_or_file), options);
  }
  static WeightStore open(const std::string& model_dir_or_file, WeightResidency residency) {
    WeightOptions options;
    options.residency = residency;
    return open(model_dir_or_file, options);
  }

  // A store that records what a model's load() asks for (see the top of this
  // file) and compares it with `checkpoint`: contains() and get_or_empty()
  // answer from the checkpoint, so the model takes the same branches (tied or
  // separate biases, q_bias / v_bias) as when loading it for real.
  static WeightStore recording(Checkpoint checkpoint) {
    WeightStore store(std::move(checkpoint));
    store.recording_ = true;
    return store;
  }
  // A store that records against no checkpoint (from a config alone): every
  // optional tensor is taken as present, so the record is the model's full
  // layout, and contains() is false for every name (the default branches).
  static WeightStore recording() {
    WeightStore store = recording(Checkpoint::empty("(no checkpoint: recording from the config)"));
    store.recording_without_checkpoint_ = true;
    return store;
  }
  bool is_recording() const { return recording_; }

  // What a model asked for so far, each name once, in order of first request.
  std::vector<RequestedWeight> requested() const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    return usage_->requested;
  }

  // The weight `name`, which must exist and have shape `expected`, to be kept
  // by the model: under WeightResidency::Copied never a view of the file.
  Tensor<const float> get(const std::string& name, const Shape& expected) const {
    return keep(get_for_repacking(name, expected));
  }

  // The weight `name` for a kernel that reads it once at load into a layout
  // of its own and hands the mapped pages back (LinearWeights::prepare): may
  // be a view of the mapped file whatever the residency, to save a copy.
  Tensor<const float> get_for_repacking(const std::string& name, const Shape& expected) const {
    if (recording_) return stand_in(name, expected, /*optional=*/false, Access::Floats);
    require(name, expected);
    return fetch(name, expected);
  }

  // Like get, but an absent weight gives an empty Tensor (for optional weights,
  // e.g. a tied bias some checkpoints store and others omit). A weight that is
  // present is still shape-checked.
  Tensor<const float> get_or_empty(const std::string& name, const Shape& expected) const {
    if (recording_ && (recording_without_checkpoint_ || checkpoint_.contains(name)))
      return stand_in(name, expected, /*optional=*/true, Access::Floats);
    if (recording_) record(name, expected, /*optional=*/true, Access::Floats);  // absent: the model takes its fallback
    if (!checkpoint_.contains(name)) return Tensor<const float>();
    return keep(fetch(name, expected));
  }

  // The embedding table `name` [rows, columns], kept in its stored float type
  // (f32, f16 or bf16) for lookups that widen only the rows they read
  // (kernels/embedding.hpp): a bf16 checkpoint's table takes half of f32's
  // memory and reads back exactly. Under WeightResidency::Copied it is copied
  // out of the mapping (whose pages go back as they are copied), under Mapped
  // it stays a view. Other stored types, quantized and misaligned tensors come
  // as f32.
  StoredMatrix get_table(const std::string& name, std::int64_t rows, std::int64_t columns) const {
    const Shape expected{rows, columns};
    if (recording_) return as_stored_matrix(stand_in(name, expected, /*optional=*/false, Access::Floats));
    require(name, expected);
    const TensorInfo& info = checkpoint_.info(name);
    const std::uint8_t* data = checkpoint_.file_of(name).raw_data(name);
    if (quantization_of(name) != WeightPrecision::AsStored || !readable_in_stored_type(info, data))
      return as_stored_matrix(keep(fetch(name, expected)));
    check_shape(name, info, expected);
    mark_fetched(name);
    if (options_.residency == WeightResidency::Mapped)
      return StoredMatrix{info.dtype, data, rows, columns, checkpoint_.file_of(name).storage_owner()};
    std::shared_ptr<std::uint8_t[]> copy(new std::uint8_t[info.bytes()]);
    copy_and_release_mapped_pages(data, copy.get(), info.bytes());
    return StoredMatrix{info.dtype, copy.get(), rows, columns, copy};
  }

  // The weight `name` [rows, columns] in its stored type (f32, f16 or bf16:
  // a view of the mapped file; quantized: its q and scales; other or
  // misaligned types: converted to f32), for a kernel that packs it at load
  // without an f32 copy in between.
  StoredMatrix get_matrix_for_repacking(const std::string& name, std::int64_t rows, std::int64_t columns) const {
    const Shape expected{rows, columns};
    if (recording_) {
      return as_stored_matrix(stand_in(name, expected, /*optional=*/false, Access::PackedAsLinear));
    }
    require(name, expected);
    if (quantization_of(name) != WeightPrecision::AsStored) return quantized_matrix(name, rows, columns);
    const TensorInfo& info = checkpoint_.info(name);
    if (quantization_ != WeightPrecision::AsStored && (info.dtype == DType::I8 || info.dtype == DType::U8))
      fail(checkpoint_.path(), ": the Linear weight '", name, "' is ", dtype_name(info.dtype), " in a ",
           weight_precision_name(quantization_), " checkpoint but has no scales '", name, kQuantizationScaleSuffix,
           "' (a damaged or partly copied quantized checkpoint?)");
    const std::uint8_t* data = checkpoint_.file_of(name).raw_data(name);
    if (!readable_in_stored_type(info, data)) return as_stored_matrix(fetch(name, expected));
    check_shape(name, info, expected);
    mark_fetched(name);
    return StoredMatrix{info.dtype, data, rows, columns, nullptr};
  }

  // The precision the Linear weight `name` is packed in: WeightOptions::linear_precision,
  // with AsStored resolved for the tensor's stored type.
  WeightPrecision linear_precision(const std::string& name) const {
    // A recording store's model is thrown away: int8 packs its zeros in a
    // quarter of f32's memory, which matters when inspecting a 15 GB model.
    if (recording_) return WeightPrecision::Int8;
    if (options_.linear_precision == WeightPrecision::AsStored && quantization_ != WeightPrecision::AsStored)
      return quantization_;
    return resolve_weight_precision(options_.linear_precision,
                                    checkpoint_.contains(name) ? checkpoint_.info(name).dtype : DType::F32);
  }

  WeightResidency residency() const { return options_.residency; }
  // What a Linear with bf16 weights multiplies them by (WeightOptions::linear_activations).
  ActivationPrecision linear_activations() const { return options_.linear_activations; }
  const WeightOptions& options() const { return options_; }

  bool contains(const std::string& name) const { return checkpoint_.contains(name); }

  // Int8 or Int4 for a quantized checkpoint (io/quantized_checkpoint.hpp), else AsStored.
  WeightPrecision checkpoint_quantization() const { return quantization_; }

  // Checkpoint tensors never fetched so far, in checkpoint order.
  std::vector<std::string> unused() const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    std::vector<std::string> names;
    for (const std::string& name : checkpoint_.names()) {
      if (usage_->fetched.count(name) == 0) names.push_back(name);
    }
    return names;
  }

  const Checkpoint& checkpoint() const { return checkpoint_; }

 private:
  // Copies of a WeightStore share one record of what was fetched.
  struct Usage {
    std::mutex mutex;
    std::unordered_set<std::string> fetched;
    // Recording only: the requests, and zeros the stand-ins view. One buffer
    // serves every request no larger than it; a larger request gets a new one
    // (earlier stand-ins keep theirs alive). calloc'd: a large buffer comes as
    // fresh anonymous pages, which take no RAM until written (nothing writes).
    std::vector<RequestedWeight> requested;
    std::unordered_set<std::string> requested_names;
    std::shared_ptr<const float> zeros;
    std::int64_t zeros_count = 0;
  };

  enum class Access { PackedAsLinear, Floats };

  // Records the request (the first time `name` is asked for; later requests
  // only add how it was read) and marks a tensor the checkpoint holds as used,
  // so unused() lists the unexpected ones.
  void record(const std::string& name, const Shape& expected, bool optional, Access access) const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    if (!usage_->requested_names.insert(name).second) {
      for (RequestedWeight& earlier : usage_->requested)
        if (earlier.name == name) (access == Access::PackedAsLinear ? earlier.packed_as_linear : earlier.read_as_floats) = true;
      return;
    }
    RequestedWeight request;
    (access == Access::PackedAsLinear ? request.packed_as_linear : request.read_as_floats) = true;
    request.name = name;
    request.expected = expected;
    request.optional = optional;
    if (recording_without_checkpoint_) {
      request.found = RequestedWeight::Found::NoCheckpoint;
    } else if (!checkpoint_.contains(name)) {
      request.found = RequestedWeight::Found::Absent;
    } else {
      const TensorInfo& info = checkpoint_.info(name);
      request.stored_shape = info.shape;
      request.stored_dtype = info.dtype;
      // A quantized weight matches in its stored form (and brings its scales).
      const WeightPrecision quantized = quantization_of(name);
      const Shape stored_form = quantized != WeightPrecision::AsStored && expected.rank() == 2
                                    ? quantized_weight_shape(quantized, expected[0], expected[1])
                                    : expected;
      request.found = info.shape == stored_form ? RequestedWeight::Found::Yes : RequestedWeight::Found::WrongShape;
      usage_->fetched.insert(name);
      if (quantized != WeightPrecision::AsStored) usage_->fetched.insert(name + kQuantizationScaleSuffix);
    }
    usage_->requested.push_back(std::move(request));
  }

  // Zeros of shape `expected` standing in for the weight `name` (recorded).
  Tensor<const float> stand_in(const std::string& name, const Shape& expected, bool optional, Access access) const {
    record(name, expected, optional, access);
    const std::int64_t count = std::max<std::int64_t>(expected.numel(), 1);
    std::lock_guard<std::mutex> lock(usage_->mutex);
    if (usage_->zeros_count < count) {
      void* memory = std::calloc(static_cast<std::size_t>(count), sizeof(float));
      if (memory == nullptr) fail("recording weights: cannot allocate ", count, " zeros for '", name, "' ", expected);
      usage_->zeros = std::shared_ptr<const float>(static_cast<const float*>(memory),
                                                   [](const float* pointer) { std::free(const_cast<float*>(pointer)); });
      usage_->zeros_count = count;
    }
    return Tensor<const float>::view(usage_->zeros.get(), expected, usage_->zeros);
  }

  // Fails, naming the tensor and the checkpoint, when the checkpoint lacks a weight the model needs.
  void require(const std::string& name, const Shape& expected) const {
    if (!checkpoint_.contains(name))
      fail(checkpoint_.path(), ": the model needs tensor '", name, "' ", expected,
           " but the checkpoint has no such tensor (wrong checkpoint for this model type, or a config mismatch?)");
  }

  // Whether a StoredMatrix can read the tensor at `data` as stored: a float type (f32, f16, bf16), aligned for it.
  static bool readable_in_stored_type(const TensorInfo& info, const std::uint8_t* data) {
    const bool floating = info.dtype == DType::F32 || info.dtype == DType::F16 || info.dtype == DType::BF16;
    return floating && reinterpret_cast<std::uintptr_t>(data) % dtype_size(info.dtype) == 0;
  }

  // An f32 tensor [rows, columns] as a StoredMatrix that keeps it alive.
  static StoredMatrix as_stored_matrix(Tensor<const float> tensor) {
    StoredMatrix matrix = StoredMatrix::of(tensor.data(), tensor.dim(0), tensor.dim(1));
    matrix.owner = std::make_shared<Tensor<const float>>(std::move(tensor));
    return matrix;
  }

  void check_shape(const std::string& name, const TensorInfo& info, const Shape& expected) const {
    if (info.shape != expected)
      fail(checkpoint_.path(), ": tensor '", name, "' has shape ", info.shape, " but the model expects ", expected,
           " (does the config match this checkpoint?)");
  }
  void mark_fetched(const std::string& name) const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    usage_->fetched.insert(name);
  }

  // Int8 or Int4 when `name` is a quantized weight (an I8 / U8 tensor with its scales in a quantized
  // checkpoint), else AsStored. An integer tensor without scales is an id or mask buffer, not quantized.
  WeightPrecision quantization_of(const std::string& name) const {
    if (quantization_ == WeightPrecision::AsStored || !checkpoint_.contains(name)) return WeightPrecision::AsStored;
    const DType dtype = checkpoint_.info(name).dtype;
    if ((dtype != DType::I8 && dtype != DType::U8) || !checkpoint_.contains(name + kQuantizationScaleSuffix))
      return WeightPrecision::AsStored;
    if (dtype != quantized_weight_dtype(quantization_))
      fail(checkpoint_.path(), ": tensor '", name, "' is ", dtype_name(dtype), " with scales, but a ",
           weight_precision_name(quantization_), " checkpoint stores its weights as ",
           dtype_name(quantized_weight_dtype(quantization_)));
    return quantization_;
  }

  // The quantized weight `name` of logical shape [rows, columns], with its scales, shapes checked.
  StoredMatrix quantized_matrix(const std::string& name, std::int64_t rows, std::int64_t columns) const {
    const WeightPrecision precision = quantization_of(name);
    const TensorInfo& info = checkpoint_.info(name);
    const Shape stored = quantized_weight_shape(precision, rows, columns);
    if (info.shape != stored)
      fail(checkpoint_.path(), ": tensor '", name, "' (", weight_precision_name(precision), ") has shape ", info.shape,
           " but the model's weight ", Shape{rows, columns}, " is stored as ", stored, " in ",
           weight_precision_name(precision), " (does the config match this checkpoint?)");
    const std::string scale_name = name + kQuantizationScaleSuffix;
    const Shape scale_shape = quantized_scale_shape(precision, rows, columns);
    const TensorInfo& scale_info = checkpoint_.info(scale_name);
    if (scale_info.shape != scale_shape || scale_info.dtype != DType::F32)
      fail(checkpoint_.path(), ": tensor '", scale_name, "' is ", dtype_name(scale_info.dtype), " ", scale_info.shape,
           " but the ", weight_precision_name(precision), " scales of ", Shape{rows, columns}, " are F32 ", scale_shape);
    auto scales = std::make_shared<Tensor<const float>>(checkpoint_.to_f32(scale_name));
    mark_fetched(name);
    mark_fetched(scale_name);
    const void* data = checkpoint_.file_of(name).raw_data(name);
    if (precision == WeightPrecision::Int8) {
      // Symmetric int8 is [-127, 127] (core/quantization.hpp); the integer kernels without VNNI multiply |w| as an
      // unsigned byte (kernels/detail/linear_avx2_integer.hpp), which -128 does not have.
      const auto* bytes = static_cast<const std::uint8_t*>(data);
      if (const void* found = std::memchr(bytes, 0x80, static_cast<std::size_t>(rows * columns))) {
        const std::int64_t at = static_cast<const std::uint8_t*>(found) - bytes;
        fail(checkpoint_.path(), ": tensor '", name, "' holds -128 at [", at / columns, ", ", at % columns,
             "]; int8 weights of a quantized checkpoint are in [-127, 127] (symmetric quantization)");
      }
    }
    StoredMatrix matrix{info.dtype, data, rows, columns, scales};
    matrix.quantization = precision;
    matrix.scales = scales->data();
    return matrix;
  }

  Tensor<const float> fetch(const std::string& name, const Shape& expected) const {
    if (quantization_of(name) != WeightPrecision::AsStored) {
      // A quantized weight read as floats (q · scale).
      if (expected.rank() != 2)
        fail(checkpoint_.path(), ": tensor '", name, "' is quantized but the model expects shape ", expected);
      const StoredMatrix matrix = quantized_matrix(name, expected[0], expected[1]);
      Tensor<float> weight(expected);
      for (std::int64_t row = 0; row < matrix.rows; ++row) matrix.read_row(row, weight.data() + row * matrix.columns);
      return weight;
    }
    const TensorInfo& info = checkpoint_.info(name);
    check_shape(name, info, expected);
    Tensor<const float> weight = checkpoint_.to_f32(name);
    mark_fetched(name);
    // A converted tensor (f16, bf16, misaligned f32) is a new copy: nothing
    // reads the mapped bytes it came from again, so their pages go back now
    // (kept, they were the bf16 checkpoint's second copy of every such tensor).
    const std::uint8_t* stored = checkpoint_.file_of(name).raw_data(name);
    if (static_cast<const void*>(weight.data()) != static_cast<const void*>(stored))
      release_mapped_pages(stored, info.bytes());
    return weight;
  }

  // Under WeightResidency::Copied, a view of the mapped file becomes a copy
  // in process memory and the file's pages are handed back, a few MiB at a
  // time as they are copied: handed back only at the end, a large tensor sat
  // in RAM twice for a moment (an embedding table: 94 MB in f32 for BLIP's
  // text decoder, 515 MB for OPT-2.7b's).
  Tensor<const float> keep(Tensor<const float> weight) const {
    if (options_.residency != WeightResidency::Copied || !is_mapped_memory(weight.data(), weight.bytes())) return weight;
    Tensor<float> copy(weight.shape());
    copy_and_release_mapped_pages(weight.data(), copy.data(), weight.bytes());
    return copy;
  }
  static void copy_and_release_mapped_pages(const void* source, void* destination, std::size_t bytes) {
    constexpr std::size_t kChunk = std::size_t{4} << 20;
    const auto* from = static_cast<const std::uint8_t*>(source);
    auto* to = static_cast<std::uint8_t*>(destination);
    for (std::size_t begin = 0; begin < bytes; begin += kChunk) {
      const std::size_t count = std::min(kChunk, bytes - begin);
      std::memcpy(to + begin, from + begin, count);
      release_mapped_pages(from + begin, count);
    }
    // The pages that straddle two chunks (each call releases whole pages inside its range only).
    release_mapped_pages(source, bytes);
  }

  Checkpoint checkpoint_;
  WeightOptions options_;
  std::shared_ptr<Usage> usage_;
  bool recording_ = false;
  bool recording_without_checkpoint_ = false;
  WeightPrecision quantization_ = WeightPrecision::AsStored;  // the checkpoint's (quantization_from_metadata)
};

}  // namespace blip
