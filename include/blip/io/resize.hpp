// blip/io/resize.hpp: Pillow's Image.resize for 8-bit images, bit for bit.
//
// Hugging Face's BlipImageProcessor resizes with PIL: `image.resize((W, H),
// resample=BICUBIC, reducing_gap=None)`, which runs Pillow's ImagingResample
// (src/libImaging/Resample.c). To reproduce HF's pixel_values exactly, this
// file mirrors that code's arithmetic, not just its idea:
//
//  * Separable, two passes: horizontal first, then vertical. A pass is skipped
//    when its dimension does not change. The horizontal result is stored as
//    uint8 (rounded and clamped) before the vertical pass reads it.
//  * For each output index i: scale = in/out, filterscale = max(scale, 1),
//    support = filter_support * filterscale, center = (i + 0.5) * scale,
//    taps j in [xmin, xmax) with xmin = max((int)(center - support + 0.5), 0),
//    xmax = min((int)(center + support + 0.5), in). Weight of tap j is
//    filter((j - center + 0.5) * (1 / filterscale)), all in double, then the
//    taps are divided by their sum. So downscaling is antialiased (the filter
//    widens with the scale) and upscaling uses the plain kernel.
//  * Fixed point: each weight becomes (int)(w * 2^22 + 0.5), or (w * 2^22 - 0.5)
//    when negative; the accumulator starts at 2^21 (round half up) and the
//    result is clamp(acc >> 22, 0, 255) with an arithmetic shift.
//
// Pillow's filters (and their numbers in PIL.Image.Resampling / HF's
// PILImageResampling): LANCZOS = 1, BILINEAR = 2, BICUBIC = 3, BOX = 4,
// HAMMING = 5. NEAREST (0) takes a different code path in Pillow (an affine
// transform) and is not provided.
//
// `resample_u8` is the production path (coefficient tables computed once per
// axis, row-parallel, a vectorisable vertical pass). `resample_u8_naive`
// evaluates the same formulas directly per output sample; the tests require
// the two to agree exactly, and both to match Pillow's output hashes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/threading.hpp"

namespace blip {

enum class ResampleFilter : int { Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

inline const char* resample_filter_name(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::Lanczos: return "LANCZOS";
    case ResampleFilter::Bilinear: return "BILINEAR";
    case ResampleFilter::Bicubic: return "BICUBIC";
    case ResampleFilter::Box: return "BOX";
    case ResampleFilter::Hamming: return "HAMMING";
  }
  return "?";
}

// Maps PIL's resample number (as stored in preprocessor_config.json) to a
// filter; throws for NEAREST (0) and unknown numbers, naming `where`.
inline ResampleFilter resample_filter_from_pil(std::int64_t pil_resample, const std::string& where) {
  switch (pil_resample) {
    case 1: return ResampleFilter::Lanczos;
    case 2: return ResampleFilter::Bilinear;
    case 3: return ResampleFilter::Bicubic;
    case 4: return ResampleFilter::Box;
    case 5: return ResampleFilter::Hamming;
    case 0:
      fail(where, ": resample 0 (PIL NEAREST) is not supported; supported are 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, ",
           "4 BOX, 5 HAMMING");
    default:
      fail(where, ": unknown resample ", pil_resample, "; expected a PIL filter number: 1 LANCZOS, 2 BILINEAR, ",
           "3 BICUBIC, 4 BOX, 5 HAMMING");
  }
}

namespace resample_detail {

#ifndef M_PI
constexpr double kPi = 3.14159265358979323846;
#else
constexpr double kPi = M_PI;
#endif

// Pillow: PRECISION_BITS = 32 - 8 - 2, two bits of headroom for filters whose
// partial sums exceed 1 or dip below 0.
constexpr int kPrecisionBits = 22;

// The filters, transcribed from Pillow's Resample.c (same operation order, so
// the double results are identical).
inline double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
inline double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
inline double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  // Pillow writes the constants as floats (0.54f, 0.46f): keep their float values.
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}
inline double bicubic_filter(double x) {
  // Keys' cubic convolution with a = -0.5, as Pillow.
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
inline double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}
inline double lanczos_filter(double x) {
  // Truncated sinc, three lobes.
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

inline double filter_support(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::Box: return 0.5;
    case ResampleFilter::Bilinear: return 1.0;
    case ResampleFilter::Hamming: return 1.0;
    case ResampleFilter::Bicubic: return 2.0;
    case ResampleFilter::Lanczos: return 3.0;
  }
  return 0.0;
}

inline double evaluate_filter(ResampleFilter filter, double x) {
  switch (filter) {
    case ResampleFilter::Box: return box_filter(x);
    case ResampleFilter::Bilinear: return bilinear_filter(x);
    case ResampleFilter::Hamming: return hamming_filter(x);
    case ResampleFilter::Bicubic: return bicubic_filter(x);
    case ResampleFilter::Lanczos: return lanczos_filter(x);
  }
  return 0.0;
}

// Pillow's normalize_coeffs_8bpc: double weight -> 2^22 fixed point, rounding
// half away from zero.
inline std::int32_t to_fixed_point(double weight) {
  const double scaled = weight * static_cast<double>(1 << kPrecisionBits);
  return weight < 0 ? static_cast<std::int32_t>(-0.5 + scaled) : static_cast<std::int32_t>(0.5 + scaled);
}

// Pillow's clip8: the accumulator already holds the 2^21 rounding bias.
inline std::uint8_t clip_to_u8(std::int32_t accumulator) {
  const std::int32_t value =
      accumulator >> kPrecisionBits;  // arithmetic shift, as in C on every target Pillow supports
  return static_cast<std::uint8_t>(value < 0 ? 0 : (value > 255 ? 255 : value));
}

constexpr std::int32_t kRoundingBias = 1 << (kPrecisionBits - 1);

// The taps of one axis: for output i, inputs [first[i], first[i] + count[i])
// with fixed-point weights at weights[i * stride ...].
struct AxisCoefficients {
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
  int stride = 0;
};

// Pillow's precompute_coeffs (box = the whole input) + normalize_coeffs_8bpc.
inline AxisCoefficients compute_axis_coefficients(int input_size, int output_size, ResampleFilter filter) {
  // Pillow computes (in1 - in0) in float: exact for every size below 2^24.
  const double scale = static_cast<double>(static_cast<float>(input_size)) / output_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support(filter) * filterscale;
  AxisCoefficients axis;
  axis.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(output_size);
  axis.count.resize(output_size);
  axis.weights.assign(static_cast<std::size_t>(output_size) * axis.stride, 0);
  std::vector<double> taps(axis.stride);
  for (int out = 0; out < output_size; ++out) {
    const double center = (out + 0.5) * scale;
    const double inverse_filterscale = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > input_size) xmax = input_size;
    xmax -= xmin;
    double sum = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double weight = evaluate_filter(filter, (x + xmin - center + 0.5) * inverse_filterscale);
      taps[x] = weight;
      sum += weight;
    }
    for (int x = 0; x < xmax; ++x) {
      if (sum != 0.0) taps[x] /= sum;
      axis.weights[static_cast<std::size_t>(out) * axis.stride + x] = to_fixed_point(taps[x]);
    }
    axis.first[out] = xmin;
    axis.count[out] = xmax;
  }
  return axis;
}

inline void check_resample_arguments(int input_width, int input_height, int channels, int output_width,
                                     int output_height, const char* function) {
  check(input_width > 0 && input_height > 0, function, ": input image is ", input_width, "x", input_height,
        ", expected a positive size");
  check(output_width > 0 && output_height > 0, function, ": cannot resize to ", output_width, "x", output_height,
        ", expected a positive width and height");
  check(channels >= 1 && channels <= 4, function, ": ", channels, " channels, expected 1 to 4");
  // Pillow's own limit for the coefficient buffers; far above any real use.
  check(
      output_width <= (1 << 24) && output_height <= (1 << 24) && input_width <= (1 << 24) && input_height <= (1 << 24),
      function, ": sizes above 2^24 are not supported");
}

}  // namespace resample_detail

// Resamples an interleaved 8-bit image (rows of width * channels bytes, no
// padding) from input_width x input_height to output_width x output_height,
// exactly as Pillow's Image.resize(size, filter) with reducing_gap=None.
// `output` must hold output_width * output_height * channels bytes.
inline void resample_u8(const std::uint8_t* input, int input_width, int input_height, int channels,
                        std::uint8_t* output, int output_width, int output_height,
                        ResampleFilter filter = ResampleFilter::Bicubic) {
  using namespace resample_detail;
  check_resample_arguments(input_width, input_height, channels, output_width, output_height, "resample_u8");
  const bool need_horizontal = output_width != input_width;
  const bool need_vertical = output_height != input_height;
  const std::size_t input_row = static_cast<std::size_t>(input_width) * channels;
  const std::size_t output_row = static_cast<std::size_t>(output_width) * channels;

  if (!need_horizontal && !need_vertical) {
    std::copy(input, input + input_row * input_height, output);
    return;
  }

  // Horizontal pass: input rows -> `horizontal` (output_width wide, uint8).
  // When the vertical pass follows, only the input rows it reads are needed.
  std::vector<std::uint8_t> horizontal_storage;
  const std::uint8_t* vertical_source = input;
  int row_offset = 0;  // vertical taps index rows of vertical_source relative to this
  AxisCoefficients vertical_axis;
  if (need_vertical) vertical_axis = compute_axis_coefficients(input_height, output_height, filter);

  if (need_horizontal) {
    const AxisCoefficients axis = compute_axis_coefficients(input_width, output_width, filter);
    int first_row = 0, end_row = input_height;
    if (need_vertical) {
      first_row = vertical_axis.first.front();
      end_row = vertical_axis.first.back() + vertical_axis.count.back();
    }
    const int rows = end_row - first_row;
    std::uint8_t* destination = output;
    if (need_vertical) {
      horizontal_storage.resize(output_row * rows);
      destination = horizontal_storage.data();
    }
    parallel_for(
        0, rows,
        [&](std::int64_t row) {
          const std::uint8_t* source = input + (first_row + row) * input_row;
          std::uint8_t* target = destination + row * output_row;
          for (int out = 0; out < output_width; ++out) {
            const std::int32_t* weights = &axis.weights[static_cast<std::size_t>(out) * axis.stride];
            const std::uint8_t* taps = source + static_cast<std::size_t>(axis.first[out]) * channels;
            const int count = axis.count[out];
            std::int32_t sums[4] = {kRoundingBias, kRoundingBias, kRoundingBias, kRoundingBias};
            if (channels == 3) {  // the common case, unrolled
              for (int k = 0; k < count; ++k) {
                sums[0] += taps[3 * k + 0] * weights[k];
                sums[1] += taps[3 * k + 1] * weights[k];
                sums[2] += taps[3 * k + 2] * weights[k];
              }
            } else {
              for (int k = 0; k < count; ++k)
                for (int c = 0; c < channels; ++c) sums[c] += taps[k * channels + c] * weights[k];
            }
            for (int c = 0; c < channels; ++c) target[out * channels + c] = clip_to_u8(sums[c]);
          }
        },
        8);
    vertical_source = destination;
    row_offset = first_row;
  }

  if (need_vertical) {
    // Each output row is a weighted sum of whole input rows: the inner loop runs
    // over contiguous bytes, which the compiler vectorises.
    parallel_for(
        0, output_height,
        [&](std::int64_t out) {
          std::vector<std::int32_t> sums(output_row, kRoundingBias);
          const std::int32_t* weights = &vertical_axis.weights[static_cast<std::size_t>(out) * vertical_axis.stride];
          const int first = vertical_axis.first[out] - row_offset;
          for (int k = 0; k < vertical_axis.count[out]; ++k) {
            const std::uint8_t* source = vertical_source + static_cast<std::size_t>(first + k) * output_row;
            const std::int32_t weight = weights[k];
            for (std::size_t x = 0; x < output_row; ++x) sums[x] += source[x] * weight;
          }
          std::uint8_t* target = output + out * output_row;
          for (std::size_t x = 0; x < output_row; ++x) target[x] = clip_to_u8(sums[x]);
        },
        8);
  }
}

// Reference implementation: the same arithmetic evaluated directly, one output
// sample at a time, with no tables and no threads. Slow; for tests.
inline void resample_u8_naive(const std::uint8_t* input, int input_width, int input_height, int channels,
                              std::uint8_t* output, int output_width, int output_height,
                              ResampleFilter filter = ResampleFilter::Bicubic) {
  using namespace resample_detail;
  check_resample_arguments(input_width, input_height, channels, output_width, output_height, "resample_u8_naive");
  // One output sample of one axis: Pillow's tap range and normalised weights.
  auto resample_line = [&](auto&& sample_at, int input_size, int output_size, int out) {
    const double scale = static_cast<double>(static_cast<float>(input_size)) / output_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = filter_support(filter) * filterscale;
    const double center = (out + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), input_size);
    double sum = 0.0;
    for (int j = xmin; j < xmax; ++j) sum += evaluate_filter(filter, (j - center + 0.5) * (1.0 / filterscale));
    std::int32_t accumulator = kRoundingBias;
    for (int j = xmin; j < xmax; ++j) {
      double weight = evaluate_filter(filter, (j - center + 0.5) * (1.0 / filterscale));
      if (sum != 0.0) weight /= sum;
      accumulator += sample_at(j) * to_fixed_point(weight);
    }
    return clip_to_u8(accumulator);
  };

  // Horizontal pass over every input row (Pillow limits it to the rows the
  // vertical pass reads; the values of those rows are the same).
  std::vector<std::uint8_t> horizontal(static_cast<std::size_t>(output_width) * input_height * channels);
  for (int y = 0; y < input_height; ++y)
    for (int x = 0; x < output_width; ++x)
      for (int c = 0; c < channels; ++c) {
        std::uint8_t value;
        if (output_width == input_width) {
          value = input[(static_cast<std::size_t>(y) * input_width + x) * channels + c];
        } else {
          value = resample_line(
              [&](int j) {
                return static_cast<std::int32_t>(input[(static_cast<std::size_t>(y) * input_width + j) * channels + c]);
              },
              input_width, output_width, x);
        }
        horizontal[(static_cast<std::size_t>(y) * output_width + x) * channels + c] = value;
      }
  for (int y = 0; y < output_height; ++y)
    for (int x = 0; x < output_width; ++x)
      for (int c = 0; c < channels; ++c) {
        std::uint8_t value;
        if (output_height == input_height) {
          value = horizontal[(static_cast<std::size_t>(y) * output_width + x) * channels + c];
        } else {
          value = resample_line(
              [&](int j) {
                return static_cast<std::int32_t>(
                    horizontal[(static_cast<std::size_t>(j) * output_width + x) * channels + c]);
              },
              input_height, output_height, y);
        }
        output[(static_cast<std::size_t>(y) * output_width + x) * channels + c] = value;
      }
}

}  // namespace blip
