// blip/kernels/kv_cache.hpp: the keys and values a decoder keeps between
// generation steps.
//
// KVCache: one self-attention layer's keys and values, [rows, heads,
//   capacity, head_dim] each (head-major, so the keys of one head are one
//   contiguous [length, head_dim] block that the attention GEMV streams).
//   Allocated once per request for the longest sequence, appended to at each
//   step (HF: torch.cat([past_key, new_key], dim=2)), and reordered between beam
//   search steps (HF: past.index_select(0, beam_idx), `_reorder_cache`).
// CrossAttentionCache: the cross-attention keys and values of the image
//   tokens, computed once per image and shared by all beams and all steps:
//   attention reads them with kv_group = beams (HF instead repeats the image
//   embeddings num_beams times, which gives the same numbers).
//
// Neither allocates after allocate(): append copies, reorder permutes in place
// with one row of scratch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "blip/core/error.hpp"
#include "blip/core/tensor.hpp"
#include "blip/kernels/attention.hpp"

namespace blip::kernels {

namespace detail {
// Copies new tokens from a projected buffer (element (r, t, h, d) at
// source[r·row_stride + t·token_stride + h·head_dim + d]) into a head-major
// buffer [rows, heads, capacity, head_dim] at token positions first_token...
inline void scatter_projected_to_head_major(const float* source, std::int64_t row_stride, std::int64_t token_stride,
                                            std::int64_t rows, std::int64_t tokens, std::int64_t heads,
                                            std::int64_t head_dim, float* destination, std::int64_t capacity,
                                            std::int64_t first_token) {
  const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(head_dim);
  for (std::int64_t row = 0; row < rows; ++row)
    for (std::int64_t head = 0; head < heads; ++head)
      for (std::int64_t token = 0; token < tokens; ++token)
        std::memcpy(destination + ((row * heads + head) * capacity + first_token + token) * head_dim,
                    source + row * row_stride + token * token_stride + head * head_dim, bytes);
}
}  // namespace detail

class KVCache {
 public:
  // Sizes the cache for `rows` sequences (batch × beams) of at most `capacity`
  // tokens, and empties it. Call once per request; reuses the memory when the
  // sizes have not grown.
  void allocate(std::int64_t rows, std::int64_t heads, std::int64_t capacity, std::int64_t head_dim) {
    check(rows > 0 && heads > 0 && capacity > 0 && head_dim > 0, "KVCache::allocate: invalid sizes (rows ", rows,
          ", heads ", heads, ", capacity ", capacity, ", head_dim ", head_dim, ")");
    const Shape shape{rows, heads, capacity, head_dim};
    if (keys_.shape() != shape) {
      keys_ = Tensor<float>(shape);
      values_ = Tensor<float>(shape);
      row_scratch_ = Tensor<float>(Shape{heads, capacity, head_dim});
      reorder_state_ = Tensor<std::int64_t>(Shape{2, rows});
    }
    rows_ = rows;
    heads_ = heads;
    capacity_ = capacity;
    head_dim_ = head_dim;
    length_ = 0;
  }

  // Appends new_tokens tokens of every row from projected key / value buffers:
  // element (row r, token t, head h, d) at keys[r·row_stride + t·token_stride +
  // h·head_dim + d] (for a contiguous [rows, new_tokens, heads·head_dim] buffer,
  // token_stride = heads·head_dim and row_stride = new_tokens·token_stride).
  void append(const float* keys, const float* values, std::int64_t row_stride, std::int64_t token_stride,
              std::int64_t new_tokens) {
    check(!keys_.empty(), "KVCache::append: the cache was not allocated");
    check(new_tokens >= 0, "KVCache::append: negative token count ", new_tokens);
    check(length_ + new_tokens <= capacity_, "KVCache::append: ", length_, " cached + ", new_tokens,
          " new tokens exceed the capacity of ", capacity_, " (allocate a longer cache)");
    detail::scatter_projected_to_head_major(keys, row_stride, token_stride, rows_, new_tokens, heads_, head_dim_,
                                            keys_.data(), capacity_, length_);
    detail::scatter_projected_to_head_major(values, row_stride, token_stride, rows_, new_tokens, heads_, head_dim_,
                                            values_.data(), capacity_, length_);
    length_ += new_tokens;
  }

  // Beam search: new row i = old row source_rows[i] (HF index_select(0, beam_idx)).
  // Rows may be repeated or dropped. Done in place: rows nobody else still
  // needs are overwritten first; what remains are cycles, rotated through one
  // row of scratch. Only the first length() tokens are moved.
  void reorder(const std::int64_t* source_rows) {
    check(!keys_.empty(), "KVCache::reorder: the cache was not allocated");
    for (std::int64_t i = 0; i < rows_; ++i)
      check(0 <= source_rows[i] && source_rows[i] < rows_, "KVCache::reorder: source row ", source_rows[i],
            " at position ", i, " is outside [0, ", rows_, ")");
    if (length_ == 0) return;
    gather_rows(keys_, source_rows);
    gather_rows(values_, source_rows);
  }

  // Fills this cache from `source` (same heads and head_dim, no longer than
  // this capacity): row r gets source row source_rows[r], and the length
  // becomes source's. Starts every beam of an entry from the prompt keys and
  // values computed once for that entry.
  void assign_rows(const KVCache& source, const std::int64_t* source_rows) {
    check(!keys_.empty() && !source.keys_.empty(), "KVCache::assign_rows: a cache was not allocated");
    check(source.heads_ == heads_ && source.head_dim_ == head_dim_ && source.length_ <= capacity_,
          "KVCache::assign_rows: source [heads ", source.heads_, ", length ", source.length_, ", head_dim ",
          source.head_dim_, "] does not fit [heads ", heads_, ", capacity ", capacity_, ", head_dim ", head_dim_, "]");
    const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(source.length_ * head_dim_);
    for (std::int64_t row = 0; row < rows_; ++row) {
      const std::int64_t from = source_rows[row];
      check(0 <= from && from < source.rows_, "KVCache::assign_rows: source row ", from, " at position ", row,
            " is outside [0, ", source.rows_, ")");
      for (std::int64_t head = 0; head < heads_; ++head) {
        const std::int64_t to_offset = (row * heads_ + head) * capacity_ * head_dim_;
        const std::int64_t from_offset = (from * heads_ + head) * source.capacity_ * head_dim_;
        std::memcpy(keys_.data() + to_offset, source.keys_.data() + from_offset, bytes);
        std::memcpy(values_.data() + to_offset, source.values_.data() + from_offset, bytes);
      }
    }
    length_ = source.length_;
  }

  // Views over the cached tokens (for attention: key = keys(), value = values()).
  HeadsView keys() const { return head_major_view(keys_.data(), rows_, heads_, capacity_, head_dim_, length_); }
  HeadsView values() const { return head_major_view(values_.data(), rows_, heads_, capacity_, head_dim_, length_); }

  std::int64_t length() const { return length_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t heads() const { return heads_; }
  std::int64_t head_dim() const { return head_dim_; }
  // Forgets the cached tokens (keeps the memory).
  void reset() { length_ = 0; }

 private:
  void copy_row(const float* from, float* to) const {
    const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(length_ * head_dim_);
    for (std::int64_t head = 0; head < heads_; ++head)
      std::memcpy(to + head * capacity_ * head_dim_, from + head * capacity_ * head_dim_, bytes);
  }

  void gather_rows(Tensor<float>& buffer, const std::int64_t* source_rows) {
    const std::int64_t row_size = heads_ * capacity_ * head_dim_;
    float* data = buffer.data();
    std::int64_t* pending_readers = reorder_state_.data();  // how many other rows still need this row's old value
    std::int64_t* done = reorder_state_.data() + rows_;
    for (std::int64_t i = 0; i < rows_; ++i) {
      pending_readers[i] = 0;
      done[i] = source_rows[i] == i;  // already in place
    }
    for (std::int64_t i = 0; i < rows_; ++i)
      if (!done[i]) ++pending_readers[source_rows[i]];
    // Overwrite rows whose old value nobody needs; each write may free its source.
    bool progress = true;
    while (progress) {
      progress = false;
      for (std::int64_t i = 0; i < rows_; ++i) {
        if (done[i] || pending_readers[i] > 0) continue;
        copy_row(data + source_rows[i] * row_size, data + i * row_size);
        done[i] = 1;
        --pending_readers[source_rows[i]];
        progress = true;
      }
    }
    // The rest are disjoint cycles i -> source_rows[i] -> ...: rotate each.
    for (std::int64_t start = 0; start < rows_; ++start) {
      if (done[start]) continue;
      copy_row(data + start * row_size, row_scratch_.data());
      std::int64_t i = start;
      while (source_rows[i] != start) {
        copy_row(data + source_rows[i] * row_size, data + i * row_size);
        done[i] = 1;
        i = source_rows[i];
      }
      copy_row(row_scratch_.data(), data + i * row_size);
      done[i] = 1;
    }
  }

  Tensor<float> keys_, values_;   // [rows, heads, capacity, head_dim]
  Tensor<float> row_scratch_;      // [heads, capacity, head_dim]: one row, for reorder cycles
  Tensor<std::int64_t> reorder_state_;  // [2, rows]: reorder bookkeeping
  std::int64_t rows_ = 0, heads_ = 0, capacity_ = 0, head_dim_ = 0, length_ = 0;
};

// Reference for reorder: the plain out-of-place gather of a [rows, heads,
// capacity, head_dim] buffer (what index_select does).
inline void gather_rows_naive(const float* source, const std::int64_t* source_rows, std::int64_t rows,
                              std::int64_t row_size, float* destination) {
  for (std::int64_t i = 0; i < rows; ++i)
    std::memcpy(destination + i * row_size, source + source_rows[i] * row_size,
                sizeof(float) * static_cast<std::size_t>(row_size));
}

// Cross-attention keys and values of the encoder tokens (image tokens for
// BLIP's text decoder, Q-Former queries' image features, T5 encoder output),
// [images, heads, tokens, head_dim] each, filled once per request.
class CrossAttentionCache {
 public:
  void allocate(std::int64_t images, std::int64_t heads, std::int64_t max_tokens, std::int64_t head_dim) {
    check(images > 0 && heads > 0 && max_tokens > 0 && head_dim > 0, "CrossAttentionCache::allocate: invalid sizes (",
          "images ", images, ", heads ", heads, ", tokens ", max_tokens, ", head_dim ", head_dim, ")");
    const Shape shape{images, heads, max_tokens, head_dim};
    if (keys_.shape() != shape) {
      keys_ = Tensor<float>(shape);
      values_ = Tensor<float>(shape);
    }
    images_ = images;
    heads_ = heads;
    capacity_ = max_tokens;
    head_dim_ = head_dim;
    tokens_ = 0;
  }

  // Stores the projected keys / values of `tokens` encoder tokens per image:
  // element (image i, token t, head h, d) at keys[i·row_stride + t·token_stride
  // + h·head_dim + d] (the k_proj / v_proj output of the encoder states).
  void fill(const float* keys, const float* values, std::int64_t row_stride, std::int64_t token_stride,
            std::int64_t tokens) {
    check(!keys_.empty(), "CrossAttentionCache::fill: the cache was not allocated");
    check(0 < tokens && tokens <= capacity_, "CrossAttentionCache::fill: ", tokens,
          " tokens do not fit the allocated ", capacity_);
    detail::scatter_projected_to_head_major(keys, row_stride, token_stride, images_, tokens, heads_, head_dim_,
                                            keys_.data(), capacity_, 0);
    detail::scatter_projected_to_head_major(values, row_stride, token_stride, images_, tokens, heads_, head_dim_,
                                            values_.data(), capacity_, 0);
    tokens_ = tokens;
  }

  HeadsView keys() const { return head_major_view(keys_.data(), images_, heads_, capacity_, head_dim_, tokens_); }
  HeadsView values() const { return head_major_view(values_.data(), images_, heads_, capacity_, head_dim_, tokens_); }
  std::int64_t images() const { return images_; }
  std::int64_t tokens() const { return tokens_; }
  bool filled() const { return tokens_ > 0; }
  void reset() { tokens_ = 0; }

 private:
  Tensor<float> keys_, values_;  // [images, heads, max_tokens, head_dim]
  std::int64_t images_ = 0, heads_ = 0, capacity_ = 0, head_dim_ = 0, tokens_ = 0;
};

}  // namespace blip::kernels
