// tests/support/reference_blocks.hpp: plain double-precision building blocks
// (linear, LayerNorm, RMSNorm, attention with masks and position bias) that
// the nn-block tests compose into references written from HF's modules, and a
// RandomCheckpoint that writes random weights by HF name to a .safetensors
// file the real loaders read.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "blip/io/weight_store.hpp"

namespace blip::test::reference {

using Matrix = std::vector<std::vector<double>>;  // [rows][columns]

// Random weights by HF name, written to a .safetensors file and opened as a WeightStore.
class RandomCheckpoint {
 public:
  explicit RandomCheckpoint(unsigned seed) : random_(seed) {}

  void add(const std::string& name, const blip::Shape& shape, double scale, double offset = 0.0) {
    blip::Tensor<float> tensor(shape);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.data()[i] = static_cast<float>(offset + scale * normal(random_));
    tensors_[name] = tensor;
  }
  void linear(const std::string& prefix, std::int64_t out, std::int64_t in, bool bias = true) {
    add(prefix + ".weight", blip::Shape{out, in}, 1.0 / std::sqrt(static_cast<double>(in)));
    if (bias) add(prefix + ".bias", blip::Shape{out}, 0.1);
  }
  void layer_norm(const std::string& prefix, std::int64_t width) {
    add(prefix + ".weight", blip::Shape{width}, 0.1, 1.0);
    add(prefix + ".bias", blip::Shape{width}, 0.1);
  }
  const blip::Tensor<float>& operator[](const std::string& name) const { return tensors_.at(name); }

  blip::WeightStore store(const std::string& file_name) const {
    blip::SafetensorsWriter writer;
    for (const auto& [name, tensor] : tensors_) writer.add(name, tensor);
    const std::string path = std::string(BLIP_TEST_BINARY_DIR) + "/" + file_name;
    writer.write(path);
    return blip::WeightStore::open(path);
  }

 private:
  std::mt19937 random_;
  std::map<std::string, blip::Tensor<float>> tensors_;
};

// ---- double-precision references -------------------------------------------

inline Matrix linear(const Matrix& x, const blip::Tensor<float>& weight, const blip::Tensor<float>* bias) {
  const std::int64_t out = weight.dim(0), in = weight.dim(1);
  Matrix y(x.size(), std::vector<double>(static_cast<std::size_t>(out)));
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double sum = bias ? bias->data()[o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) sum += weight.data()[o * in + i] * x[r][static_cast<std::size_t>(i)];
      y[r][static_cast<std::size_t>(o)] = sum;
    }
  return y;
}
inline Matrix linear(const Matrix& x, const RandomCheckpoint& weights, const std::string& prefix, bool bias = true) {
  return linear(x, weights[prefix + ".weight"], bias ? &weights[prefix + ".bias"] : nullptr);
}
inline Matrix layer_norm(const Matrix& x, const RandomCheckpoint& weights, const std::string& prefix, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double mean = 0, variance = 0;
    for (double v : row) mean += v;
    mean /= static_cast<double>(row.size());
    for (double v : row) variance += (v - mean) * (v - mean);
    variance /= static_cast<double>(row.size());
    for (std::size_t i = 0; i < row.size(); ++i)
      row[i] = (row[i] - mean) / std::sqrt(variance + eps) * weights[prefix + ".weight"].data()[i] +
               weights[prefix + ".bias"].data()[i];
  }
  return y;
}
// T5LayerNorm: weight · x / √(mean(x²) + eps), no mean, no bias.
inline Matrix rms_norm(const Matrix& x, const blip::Tensor<float>& weight, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double squares = 0;
    for (double v : row) squares += v * v;
    const double scale = 1.0 / std::sqrt(squares / static_cast<double>(row.size()) + eps);
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = row[i] * scale * weight.data()[i];
  }
  return y;
}
inline Matrix multiply(Matrix a, const Matrix& b) {
  for (std::size_t r = 0; r < a.size(); ++r)
    for (std::size_t i = 0; i < a[r].size(); ++i) a[r][i] *= b[r][i];
  return a;
}
inline Matrix add(Matrix a, const Matrix& b) {
  for (std::size_t r = 0; r < a.size(); ++r)
    for (std::size_t i = 0; i < a[r].size(); ++i) a[r][i] += b[r][i];
  return a;
}
inline Matrix map_values(Matrix x, const std::function<double(double)>& function) {
  for (auto& row : x)
    for (double& v : row) v = function(v);
  return x;
}
inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double relu(double x) { return x > 0 ? x : 0; }

// Multi-head attention; visible(i, j) says whether query i sees key j; a query
// that sees nothing attends uniformly (what HF's float32 masks give). Scores
// are q·k · scale (default 1/√head_dim; T5: 1) + bias(head, i, j) when given.
using AttentionBias = std::function<double(std::int64_t, std::size_t, std::size_t)>;
inline Matrix attention(const Matrix& q, const Matrix& k, const Matrix& v, std::int64_t heads,
                        const std::function<bool(std::size_t, std::size_t)>& visible, double scale = -1.0,
                        const AttentionBias& bias = nullptr) {
  const std::size_t width = q[0].size(), head_dim = width / static_cast<std::size_t>(heads);
  if (scale < 0) scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  Matrix out(q.size(), std::vector<double>(width, 0.0));
  for (std::int64_t h = 0; h < heads; ++h) {
    const std::size_t offset = static_cast<std::size_t>(h) * head_dim;
    for (std::size_t i = 0; i < q.size(); ++i) {
      std::vector<double> scores(k.size());
      bool any = false;
      for (std::size_t j = 0; j < k.size(); ++j) any = any || visible(i, j);
      double best = -1e300;
      for (std::size_t j = 0; j < k.size(); ++j) {
        double dot = 0;
        for (std::size_t d = 0; d < head_dim; ++d) dot += q[i][offset + d] * k[j][offset + d];
        scores[j] = (!any || visible(i, j)) ? dot * scale + (bias ? bias(h, i, j) : 0.0) : -1e300;
        if (!any) scores[j] = 0;  // all hidden: uniform
        best = std::max(best, scores[j]);
      }
      double total = 0;
      for (double& s : scores) total += (s = s <= -1e299 ? 0.0 : std::exp(s - best));
      for (std::size_t j = 0; j < k.size(); ++j)
        for (std::size_t d = 0; d < head_dim; ++d) out[i][offset + d] += scores[j] / total * v[j][offset + d];
    }
  }
  return out;
}

inline Matrix rows_of(const float* data, std::int64_t rows, std::int64_t width) {
  Matrix m(static_cast<std::size_t>(rows), std::vector<double>(static_cast<std::size_t>(width)));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t i = 0; i < width; ++i) m[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)] = data[r * width + i];
  return m;
}

// max |actual - expected| / max |expected|
inline double relative_error(const float* actual, const Matrix& expected) {
  double difference = 0, magnitude = 0;
  std::size_t index = 0;
  for (const auto& row : expected)
    for (double v : row) {
      difference = std::max(difference, std::abs(actual[index++] - v));
      magnitude = std::max(magnitude, std::abs(v));
    }
  return difference / magnitude;
}

}  // namespace blip::test::reference
