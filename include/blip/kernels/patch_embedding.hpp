// blip/kernels/patch_embedding.hpp: the vision transformer's patch embedding,
// nn.Conv2d(channels, hidden, kernel_size=patch, stride=patch), as im2col + GEMM.
//
// Because stride == kernel size the patches do not overlap, so im2col is a pure
// rearrangement (every pixel copied once): each patch becomes one row of
// C·p·p values ordered (channel, y, x), the order of the flattened conv weight
// [hidden, C, p, p] -> [hidden, C·p·p]. The convolution is then one Linear over
// B·(H/p)·(W/p) rows, which runs on the fast GEMM.
//
// Output order mirrors HF BlipVisionEmbeddings / Blip2VisionEmbeddings:
// `patch_embedding(pixels).flatten(2).transpose(1, 2)`, i.e. [B, patches, hidden]
// with patches in row-major (patch row, patch column) order.
#pragma once

#include <cstdint>
#include <cstring>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/linear.hpp"

namespace blip::kernels {

struct PatchEmbeddingWeights {
  // conv_weight [hidden, C, p, p] (square kernel, the conv's stride equals p);
  // conv_bias [hidden] or empty. The weight is viewed, not copied, as [hidden, C·p·p].
  static PatchEmbeddingWeights prepare(Tensor<const float> conv_weight, Tensor<const float> conv_bias) {
    check(conv_weight.rank() == 4 && conv_weight.dim(2) == conv_weight.dim(3),
          "PatchEmbeddingWeights::prepare: conv weight must be [hidden, channels, patch, patch], got shape ",
          conv_weight.shape());
    PatchEmbeddingWeights weights;
    weights.hidden = conv_weight.dim(0);
    weights.channels = conv_weight.dim(1);
    weights.patch_size = conv_weight.dim(2);
    check(weights.hidden > 0 && weights.channels > 0 && weights.patch_size > 0,
          "PatchEmbeddingWeights::prepare: conv weight shape ", conv_weight.shape(), " has an empty dimension");
    const bool has_bias = conv_bias.data() != nullptr || conv_bias.rank() > 0;
    if (has_bias) {
      check(conv_bias.rank() == 1 && conv_bias.dim(0) == weights.hidden, "PatchEmbeddingWeights::prepare: conv bias must be [",
            weights.hidden, "], got shape ", conv_bias.shape());
    }
    weights.projection = LinearWeights::prepare(
        conv_weight.reshape(Shape{weights.hidden, weights.channels * weights.patch_size * weights.patch_size}),
        conv_bias);
    return weights;
  }

  std::int64_t channels = 0;
  std::int64_t patch_size = 0;
  std::int64_t hidden = 0;
  LinearWeights projection;  // [hidden, channels * patch_size * patch_size]
};

namespace detail {

struct PatchGrid {
  std::int64_t batch, rows, columns;  // images, patch rows, patch columns
  std::int64_t patches() const { return rows * columns; }
};

// Checks pixels [B, C, H, W] and out [B, (H/p)(W/p), hidden] against the weights.
inline PatchGrid check_patch_embedding_shapes(const Tensor<const float>& pixels, const PatchEmbeddingWeights& weights,
                                              const Tensor<float>& out) {
  check(!weights.projection.empty(), "patch_embedding: PatchEmbeddingWeights used before prepare");
  check(pixels.rank() == 4 && pixels.dim(1) == weights.channels, "patch_embedding: pixels must be [batch, ",
        weights.channels, ", height, width], got shape ", pixels.shape());
  const std::int64_t patch = weights.patch_size;
  check(pixels.dim(2) % patch == 0 && pixels.dim(3) % patch == 0, "patch_embedding: pixel height and width ",
        pixels.dim(2), "x", pixels.dim(3), " must be multiples of the patch size ", patch);
  const PatchGrid grid{pixels.dim(0), pixels.dim(2) / patch, pixels.dim(3) / patch};
  const Shape expected{grid.batch, grid.patches(), weights.hidden};
  check(out.shape() == expected, "patch_embedding: out has shape ", out.shape(), ", expected ", expected,
        " for pixels ", pixels.shape());
  return grid;
}

inline ScratchBuffer& patch_columns_scratch() {
  thread_local ScratchBuffer buffer;
  return buffer;
}

}  // namespace detail

// pixels [B, C, H, W] (H, W multiples of p) -> out [B, (H/p)·(W/p), hidden].
inline void patch_embedding(Tensor<const float> pixels, const PatchEmbeddingWeights& weights, Tensor<float> out) {
  const detail::PatchGrid grid = detail::check_patch_embedding_shapes(pixels, weights, out);
  const std::int64_t patch = weights.patch_size, channels = weights.channels;
  const std::int64_t height = pixels.dim(2), width = pixels.dim(3);
  const std::int64_t row_length = channels * patch * patch;
  const std::int64_t total_patches = grid.batch * grid.patches();
  if (total_patches == 0) return;
  float* columns = detail::patch_columns_scratch().reserve(static_cast<std::size_t>(total_patches * row_length));
  const float* source = pixels.data();

  // im2col, one patch row of one image per iteration.
  parallel_for(
      0, grid.batch * grid.rows,
      [&](std::int64_t image_patch_row) {
        const std::int64_t image = image_patch_row / grid.rows, patch_row = image_patch_row % grid.rows;
        for (std::int64_t patch_column = 0; patch_column < grid.columns; ++patch_column) {
          float* destination = columns + (image_patch_row * grid.columns + patch_column) * row_length;
          for (std::int64_t channel = 0; channel < channels; ++channel) {
            for (std::int64_t y = 0; y < patch; ++y) {
              const float* pixel_row = source + ((image * channels + channel) * height + patch_row * patch + y) * width +
                                       patch_column * patch;
              std::memcpy(destination + (channel * patch + y) * patch, pixel_row, sizeof(float) * patch);
            }
          }
        }
      },
      4);
  linear(columns, row_length, total_patches, weights.projection, out.data(), weights.hidden);
}

// The reference: the direct convolution, accumulated in double.
inline void patch_embedding_naive(Tensor<const float> pixels, const PatchEmbeddingWeights& weights,
                                  Tensor<float> out) {
  const detail::PatchGrid grid = detail::check_patch_embedding_shapes(pixels, weights, out);
  const std::int64_t patch = weights.patch_size, channels = weights.channels, hidden = weights.hidden;
  const std::int64_t height = pixels.dim(2), width = pixels.dim(3);
  const Tensor<float> unpacked = weights.projection.unpacked_weight();
  const float* weight = unpacked.data();  // [hidden][channel][y][x]
  const float* bias = weights.projection.bias().data();
  const float* source = pixels.data();
  for (std::int64_t image = 0; image < grid.batch; ++image) {
    for (std::int64_t patch_row = 0; patch_row < grid.rows; ++patch_row) {
      for (std::int64_t patch_column = 0; patch_column < grid.columns; ++patch_column) {
        float* destination = out.data() + ((image * grid.rows + patch_row) * grid.columns + patch_column) * hidden;
        for (std::int64_t feature = 0; feature < hidden; ++feature) {
          double sum = bias ? static_cast<double>(bias[feature]) : 0.0;
          for (std::int64_t channel = 0; channel < channels; ++channel)
            for (std::int64_t y = 0; y < patch; ++y)
              for (std::int64_t x = 0; x < patch; ++x)
                sum += static_cast<double>(weight[((feature * channels + channel) * patch + y) * patch + x]) *
                       static_cast<double>(source[((image * channels + channel) * height + patch_row * patch + y) * width +
                                                  patch_column * patch + x]);
          destination[feature] = static_cast<float>(sum);
        }
      }
    }
  }
}

}  // namespace blip::kernels
