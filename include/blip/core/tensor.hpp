// blip/core/tensor.hpp: a small row-major tensor (up to 4-D) with Eigen views.
//
// A Tensor<T> is a handle, like a torch.Tensor: copying it shares the storage.
// It either owns 64-byte aligned memory (allocated once, at load or at the
// start of a request) or is a view over memory kept alive by someone else,
// for example a memory-mapped safetensors file. `Tensor<const float>` is the
// read-only form that weights use; it converts implicitly from Tensor<float>.
//
// The math happens on Eigen maps: `matrix()` views the tensor as a row-major
// (all leading dims) x (last dim) matrix, with no copy.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <type_traits>

#include "blip/core/buffer_cache.hpp"
#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"

namespace blip {

// Dimensions of a tensor, outermost first. Rank 0..4.
class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) {
    check(dims.size() <= kMaxRank, "Shape: rank ", dims.size(), " exceeds the maximum of ", kMaxRank);
    for (std::int64_t dim : dims) push_back(dim);
  }

  void push_back(std::int64_t dim) {
    check(rank_ < kMaxRank, "Shape: rank exceeds the maximum of ", kMaxRank);
    check(dim >= 0, "Shape: negative dimension ", dim);
    dims_[rank_++] = dim;
  }

  int rank() const { return rank_; }
  std::int64_t operator[](int axis) const { return dims_[axis]; }
  std::int64_t& operator[](int axis) { return dims_[axis]; }
  // Dimension counted from the end when negative (dim(-1) is the last).
  std::int64_t dim(int axis) const {
    const int resolved = axis < 0 ? rank_ + axis : axis;
    check(resolved >= 0 && resolved < rank_, "Shape: axis ", axis, " out of range for rank ", rank_);
    return dims_[resolved];
  }
  std::int64_t numel() const {
    std::int64_t count = 1;
    for (int axis = 0; axis < rank_; ++axis) count *= dims_[axis];
    return count;
  }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }

  bool operator==(const Shape& other) const {
    return rank_ == other.rank_ && std::equal(begin(), end(), other.begin());
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

  std::string to_string() const {
    std::string text = "[";
    for (int axis = 0; axis < rank_; ++axis) {
      if (axis) text += ", ";
      text += std::to_string(dims_[axis]);
    }
    return text + "]";
  }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& stream, const Shape& shape) {
  return stream << shape.to_string();
}

namespace detail {
// 64-byte aligned, zero-filled storage; 64 bytes is one cache line and one
// AVX-512 register, so every row of a freshly allocated tensor can be loaded
// with aligned instructions when its width allows. Large blocks come from, and
// go back to, the buffer cache (core/buffer_cache.hpp), so a request reuses the
// previous request's pages instead of faulting in fresh ones.
inline std::shared_ptr<void> allocate_aligned(std::size_t bytes) { return BufferCache::instance().allocate(bytes); }
}  // namespace detail

template <class T>
class Tensor {
 public:
  using Element = std::remove_const_t<T>;
  using RowMajorMatrix = Eigen::Matrix<Element, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatrixMap = Eigen::Map<std::conditional_t<std::is_const_v<T>, const RowMajorMatrix, RowMajorMatrix>>;
  using VectorMap = Eigen::Map<std::conditional_t<std::is_const_v<T>, const Eigen::Matrix<Element, Eigen::Dynamic, 1>,
                                                  Eigen::Matrix<Element, Eigen::Dynamic, 1>>>;

  Tensor() = default;

  // Owning tensor, zero-filled.
  explicit Tensor(const Shape& shape) : shape_(shape) {
    storage_ = detail::allocate_aligned(static_cast<std::size_t>(shape.numel()) * sizeof(Element));
    data_ = static_cast<T*>(storage_.get());
  }

  // View over `data`; `owner` (may be null) is kept alive as long as the view.
  static Tensor view(T* data, const Shape& shape, std::shared_ptr<const void> owner = nullptr) {
    Tensor tensor;
    tensor.shape_ = shape;
    tensor.data_ = data;
    tensor.storage_ = std::const_pointer_cast<void>(owner);
    return tensor;
  }

  // Tensor<float> -> Tensor<const float>.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  Tensor(const Tensor<U>& other)  // NOLINT(google-explicit-constructor): mirrors T* -> const T*
      : storage_(other.storage()), data_(other.data()), shape_(other.shape()) {}

  bool empty() const { return data_ == nullptr || shape_.numel() == 0; }
  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int axis) const { return shape_.dim(axis); }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(Element); }
  const std::shared_ptr<void>& storage() const { return storage_; }
  static constexpr DType dtype() { return dtype_of<Element>; }

  // Element access by full index (row-major).
  T& at(std::int64_t i0) const { return data_[offset({i0})]; }
  T& at(std::int64_t i0, std::int64_t i1) const { return data_[offset({i0, i1})]; }
  T& at(std::int64_t i0, std::int64_t i1, std::int64_t i2) const { return data_[offset({i0, i1, i2})]; }
  T& at(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) const {
    return data_[offset({i0, i1, i2, i3})];
  }

  // Same storage, new shape with the same number of elements.
  Tensor reshape(const Shape& shape) const {
    check(shape.numel() == numel(), "Tensor::reshape: cannot view ", shape_, " as ", shape);
    return view(data_, shape, storage_);
  }

  // Rows [begin, end) of the outermost dimension, as a view.
  Tensor slice(std::int64_t begin, std::int64_t end) const {
    check(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "Tensor::slice: [", begin, ", ", end,
          ") out of range for shape ", shape_);
    Shape shape = shape_;
    shape[0] = end - begin;
    return view(data_ + begin * inner_size(), shape, storage_);
  }

  // The index-th entry of the outermost dimension, with that dimension removed.
  Tensor operator[](std::int64_t index) const {
    check(rank() >= 1 && 0 <= index && index < shape_[0], "Tensor: index ", index, " out of range for shape ",
          shape_);
    Shape shape;
    for (int axis = 1; axis < rank(); ++axis) shape.push_back(shape_[axis]);
    return view(data_ + index * inner_size(), shape, storage_);
  }

  // Deep copy into fresh owning storage.
  Tensor<Element> clone() const {
    Tensor<Element> copy(shape_);
    if (numel() > 0) std::memcpy(copy.data(), data_, bytes());
    return copy;
  }

  // Row-major (product of leading dims) x (last dim) view; a vector is 1 x n.
  MatrixMap matrix() const {
    const std::int64_t columns = rank() == 0 ? 1 : shape_[rank() - 1];
    const std::int64_t rows = columns == 0 ? 0 : numel() / columns;
    return MatrixMap(data_, rows, columns);
  }
  // All elements as one column vector.
  VectorMap vector() const { return VectorMap(data_, numel()); }

  void fill(Element value) const { std::fill(data_, data_ + numel(), value); }

 private:
  std::int64_t inner_size() const {
    std::int64_t size = 1;
    for (int axis = 1; axis < rank(); ++axis) size *= shape_[axis];
    return size;
  }
  std::int64_t offset(std::initializer_list<std::int64_t> index) const {
    check(static_cast<int>(index.size()) == rank(), "Tensor: ", index.size(), " indices for rank ", rank());
    std::int64_t flat = 0;
    int axis = 0;
    for (std::int64_t i : index) {
      check(0 <= i && i < shape_[axis], "Tensor: index ", i, " out of range for axis ", axis, " of shape ", shape_);
      flat = flat * shape_[axis] + i;
      ++axis;
    }
    return flat;
  }

  std::shared_ptr<void> storage_;
  T* data_ = nullptr;
  Shape shape_;
};

}  // namespace blip
