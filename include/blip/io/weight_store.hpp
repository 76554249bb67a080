// blip/io/weight_store.hpp: what models load their weights from.
//
// A model asks for each weight by its checkpoint name together with the shape
// its config implies; the store returns it as f32 or fails with a message that
// names the tensor, the checkpoint, and the expected and found shapes. That is
// where a config that does not match its checkpoint shows up, at load time.
//
// F32 weights are zero-copy views of the memory-mapped file, which cost RAM
// only for the pages read; a Linear weight's pages are handed back once
// LinearWeights has packed it (core/mapped_file.hpp: release_mapped_pages), so
// an f32 checkpoint is held once. F16 / BF16 (and integer) weights are
// converted to f32 once, when fetched.
//
// Checkpoints often hold more than a model needs (extra copies of tied
// weights, buffers such as position_ids, heads of other tasks). Those are not
// an error: `unused()` lists them so tools can report them, much like the
// "unexpected keys" warning of transformers' from_pretrained.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/io/safetensors.hpp"

namespace blip {

class WeightStore {
 public:
  explicit WeightStore(Checkpoint checkpoint)
      : checkpoint_(std::move(checkpoint)), usage_(std::make_shared<Usage>()) {}

  // A .safetensors file, an index .json, or a folder (see Checkpoint::open).
  static WeightStore open(const std::string& model_dir_or_file) {
    return WeightStore(Checkpoint::open(model_dir_or_file));
  }

  // The weight `name`, which must exist and have shape `expected`.
  Tensor<const float> get(const std::string& name, const Shape& expected) const {
    if (!checkpoint_.contains(name))
      fail(checkpoint_.path(), ": the model needs tensor '", name, "' ", expected,
           " but the checkpoint has no such tensor (wrong checkpoint for this model type, or a config mismatch?)");
    return fetch(name, expected);
  }

  // Like get, but an absent weight gives an empty Tensor (for optional weights,
  // e.g. a tied bias some checkpoints store and others omit). A weight that is
  // present is still shape-checked.
  Tensor<const float> get_or_empty(const std::string& name, const Shape& expected) const {
    if (!checkpoint_.contains(name)) return Tensor<const float>();
    return fetch(name, expected);
  }

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
  };

  Tensor<const float> fetch(const std::string& name, const Shape& expected) const {
    const TensorInfo& info = checkpoint_.info(name);
    if (info.shape != expected)
      fail(checkpoint_.path(), ": tensor '", name, "' has shape ", info.shape, " but the model expects ", expected,
           " (does the config match this checkpoint?)");
    Tensor<const float> weight = checkpoint_.to_f32(name);
    std::lock_guard<std::mutex> lock(usage_->mutex);
    usage_->fetched.insert(name);
    return weight;
  }

  Checkpoint checkpoint_;
  std::shared_ptr<Usage> usage_;
};

}  // namespace blip
