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
// F16 / BF16 (and integer) weights are converted to f32 once, when fetched.
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
  // Embeddings, norms and biases stay f32 whatever this says.
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
};

class WeightStore {
 public:
  explicit WeightStore(Checkpoint checkpoint, WeightOptions options = {})
      : checkpoint_(std::move(checkpoint)), options_(options), usage_(std::make_shared<Usage>()) {}

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
    if (recording_) return stand_in(name, expected, /*optional=*/false);
    if (!checkpoint_.contains(name))
      fail(checkpoint_.path(), ": the model needs tensor '", name, "' ", expected,
           " but the checkpoint has no such tensor (wrong checkpoint for this model type, or a config mismatch?)");
    return fetch(name, expected);
  }

  // Like get, but an absent weight gives an empty Tensor (for optional weights,
  // e.g. a tied bias some checkpoints store and others omit). A weight that is
  // present is still shape-checked.
  Tensor<const float> get_or_empty(const std::string& name, const Shape& expected) const {
    if (recording_ && (recording_without_checkpoint_ || checkpoint_.contains(name)))
      return stand_in(name, expected, /*optional=*/true);
    if (recording_) record(name, expected, /*optional=*/true);  // absent: the model takes its fallback
    if (!checkpoint_.contains(name)) return Tensor<const float>();
    return keep(fetch(name, expected));
  }

  // The weight `name` [rows, columns] in its stored type (f32, f16 or bf16:
  // a view of the mapped file; other or misaligned types: converted to f32),
  // for a kernel that packs it at load without an f32 copy in between.
  StoredMatrix get_matrix_for_repacking(const std::string& name, std::int64_t rows, std::int64_t columns) const {
    const Shape expected{rows, columns};
    if (recording_) {
      const Tensor<const float> zeros = stand_in(name, expected, /*optional=*/false);
      StoredMatrix matrix = StoredMatrix::of(zeros.data(), rows, columns);
      matrix.owner = std::make_shared<Tensor<const float>>(zeros);
      return matrix;
    }
    if (!checkpoint_.contains(name))
      fail(checkpoint_.path(), ": the model needs tensor '", name, "' ", expected,
           " but the checkpoint has no such tensor (wrong checkpoint for this model type, or a config mismatch?)");
    const TensorInfo& info = checkpoint_.info(name);
    const bool floating = info.dtype == DType::F32 || info.dtype == DType::F16 || info.dtype == DType::BF16;
    const std::uint8_t* data = checkpoint_.file_of(name).raw_data(name);
    if (!floating || reinterpret_cast<std::uintptr_t>(data) % dtype_size(info.dtype) != 0) {
      auto converted = std::make_shared<Tensor<const float>>(fetch(name, expected));
      StoredMatrix matrix = StoredMatrix::of(converted->data(), rows, columns);
      matrix.owner = converted;
      return matrix;
    }
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
    return resolve_weight_precision(options_.linear_precision,
                                    checkpoint_.contains(name) ? checkpoint_.info(name).dtype : DType::F32);
  }

  WeightResidency residency() const { return options_.residency; }
  // What a Linear with bf16 weights multiplies them by (WeightOptions::linear_activations).
  ActivationPrecision linear_activations() const { return options_.linear_activations; }
  const WeightOptions& options() const { return options_; }

  bool contains(const std::string& name) const { return checkpoint_.contains(name); }

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

  // Records the request (the first time `name` is asked for) and marks a
  // tensor the checkpoint holds as used, so unused() lists the unexpected ones.
  void record(const std::string& name, const Shape& expected, bool optional) const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    if (!usage_->requested_names.insert(name).second) return;
    RequestedWeight request;
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
      request.found = info.shape == expected ? RequestedWeight::Found::Yes : RequestedWeight::Found::WrongShape;
      usage_->fetched.insert(name);
    }
    usage_->requested.push_back(std::move(request));
  }

  // Zeros of shape `expected` standing in for the weight `name` (recorded).
  Tensor<const float> stand_in(const std::string& name, const Shape& expected, bool optional) const {
    record(name, expected, optional);
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

  void check_shape(const std::string& name, const TensorInfo& info, const Shape& expected) const {
    if (info.shape != expected)
      fail(checkpoint_.path(), ": tensor '", name, "' has shape ", info.shape, " but the model expects ", expected,
           " (does the config match this checkpoint?)");
  }
  void mark_fetched(const std::string& name) const {
    std::lock_guard<std::mutex> lock(usage_->mutex);
    usage_->fetched.insert(name);
  }

  Tensor<const float> fetch(const std::string& name, const Shape& expected) const {
    check_shape(name, checkpoint_.info(name), expected);
    Tensor<const float> weight = checkpoint_.to_f32(name);
    mark_fetched(name);
    return weight;
  }

  // Under WeightResidency::Copied, a view of the mapped file becomes a copy
  // in process memory and the file's pages are handed back.
  Tensor<const float> keep(Tensor<const float> weight) const {
    if (options_.residency != WeightResidency::Copied || !is_mapped_memory(weight.data(), weight.bytes())) return weight;
    Tensor<float> copy(weight.shape());
    std::copy(weight.data(), weight.data() + weight.numel(), copy.data());
    release_mapped_pages(weight.data(), weight.bytes());
    return copy;
  }

  Checkpoint checkpoint_;
  WeightOptions options_;
  std::shared_ptr<Usage> usage_;
  bool recording_ = false;
  bool recording_without_checkpoint_ = false;
};

}  // namespace blip
