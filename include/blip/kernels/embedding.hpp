// blip/kernels/embedding.hpp: table lookups (nn.Embedding) and row additions
// for position / token-type embeddings.
//
// Ids are validated: torch raises IndexError for an id outside [0, vocab);
// we throw blip::Error naming the id, its position and the table size, rather
// than read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "blip/core/error.hpp"
#include "blip/core/stored_matrix.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/kernels/linear.hpp"

namespace blip::kernels {

namespace detail {
inline void check_embedding_table(const Tensor<const float>& table, const char* function) {
  check(table.rank() == 2, function, ": the embedding table must be [vocab, dim], got shape ", table.shape());
}
inline void check_embedding_id(std::int64_t id, std::int64_t index, std::int64_t vocab, const char* function) {
  check(0 <= id && id < vocab, function, ": id ", id, " at position ", index, " is outside the embedding table [0, ",
        vocab, ")");
}
// Rows per thread before parallel copying pays (copies are memory-bound).
constexpr std::int64_t kEmbeddingRowsPerThread = 64;
}  // namespace detail

// A token embedding table [vocab, width], read a row at a time as f32. Held
// one of two ways, both exact (a row reads back as the checkpoint stores it):
//   * its own copy in the checkpoint's float type (f32, f16 or bf16; WeightStore::
//     get_table), each row widened as it is read: a bf16 table takes half of f32's memory;
//   * the panels of the LM head tied to it (HF tie_word_embeddings: the
//     checkpoint stores the matrix once), when that head is packed without loss
//     (f32 panels, or the table's own bf16 / f16): row `id` is the head's output
//     feature `id` (LinearWeights::weight_row), so the matrix is held once here too.
// A lookup then costs one cache line per value (a few µs per token), nothing next
// to the head's own pass over the whole matrix for each token.
class EmbeddingTable {
 public:
  EmbeddingTable() = default;
  explicit EmbeddingTable(StoredMatrix table) : table_(std::move(table)) {
    check(!table_.quantized(), "EmbeddingTable: a quantized matrix is not an embedding table (its rows would be q · scale)");
  }
  // Lookups read `head`'s panels (shared with it, not copied); only for a head packed without loss.
  static EmbeddingTable reading_head(LinearWeights head) {
    check(!head.empty(), "EmbeddingTable::reading_head: the head is empty");
    EmbeddingTable table;
    table.head_ = std::move(head);
    return table;
  }

  std::int64_t rows() const { return reads_head() ? head_.out_features() : table_.rows; }
  std::int64_t width() const { return reads_head() ? head_.in_features() : table_.columns; }
  bool reads_head() const { return !head_.empty(); }
  // The table's own copy (empty when it reads a head's panels).
  const StoredMatrix& stored() const { return table_; }
  // The type rows are held in: the table's stored type, or the head's panels'.
  DType dtype() const {
    if (!reads_head()) return table_.dtype;
    return head_.precision() == WeightPrecision::BF16 ? DType::BF16
           : head_.precision() == WeightPrecision::F16 ? DType::F16
                                                         : DType::F32;
  }
  // Memory this table holds by itself (0 when it reads a head's panels).
  std::size_t own_bytes() const { return reads_head() ? 0 : table_.bytes(); }

  // Row `id` (checked by the caller) as f32 into out[0 .. width).
  void read_row(std::int64_t id, float* out) const {
    if (reads_head()) {
      head_.weight_row(id, out);
    } else {
      table_.read_row(id, out);
    }
  }

 private:
  StoredMatrix table_;
  LinearWeights head_;
};

// out[i, :] = table[ids[i], :] for i in [0, count); out is [count, width].
inline void embedding_lookup(const EmbeddingTable& table, const std::int64_t* ids, std::int64_t count, float* out) {
  const std::int64_t vocab = table.rows(), width = table.width();
  for (std::int64_t i = 0; i < count; ++i) detail::check_embedding_id(ids[i], i, vocab, "embedding_lookup");
  parallel_for(
      0, count, [&](std::int64_t i) { table.read_row(ids[i], out + i * width); }, detail::kEmbeddingRowsPerThread);
}

inline void embedding_lookup(Tensor<const float> table, const std::int64_t* ids, std::int64_t count, float* out) {
  detail::check_embedding_table(table, "embedding_lookup");
  embedding_lookup(EmbeddingTable(StoredMatrix::of(table.data(), table.dim(0), table.dim(1))), ids, count, out);
}

// Tensor form: ids of any shape [...], out [..., dim].
inline void embedding_lookup(Tensor<const float> table, Tensor<const std::int64_t> ids, Tensor<float> out) {
  detail::check_embedding_table(table, "embedding_lookup");
  check(out.numel() == ids.numel() * table.dim(1) && out.rank() >= 1 && out.dim(-1) == table.dim(1),
        "embedding_lookup: output shape ", out.shape(), " does not fit ", ids.numel(), " ids of width ", table.dim(1));
  embedding_lookup(table, ids.data(), ids.numel(), out.data());
}

// out[i, :] += table[ids[i], :]: adds position embeddings looked up by id
// (OPT's learned positions, BERT's absolute positions, token types).
inline void add_embedding_rows(Tensor<const float> table, const std::int64_t* ids, std::int64_t count, float* out) {
  detail::check_embedding_table(table, "add_embedding_rows");
  const std::int64_t vocab = table.dim(0), dim = table.dim(1);
  for (std::int64_t i = 0; i < count; ++i) detail::check_embedding_id(ids[i], i, vocab, "add_embedding_rows");
  parallel_for(
      0, count,
      [&](std::int64_t i) {
        const float* source = table.data() + ids[i] * dim;
        float* destination = out + i * dim;
        for (std::int64_t d = 0; d < dim; ++d) destination[d] += source[d];
      },
      detail::kEmbeddingRowsPerThread);
}

// out[r, t, :] += addend[t, :] for r in [0, rows), t in [0, tokens): adds the
// same [tokens, dim] block (e.g. consecutive position embeddings, table rows
// first_position.. of a position table) to each of `rows` sequences.
// out rows are `out_row_stride` floats apart (tokens * dim when contiguous).
inline void add_rows(float* out, std::int64_t rows, std::int64_t tokens, std::int64_t dim, const float* addend,
                     std::int64_t out_row_stride = -1) {
  check(rows >= 0 && tokens >= 0 && dim >= 0, "add_rows: negative size (rows ", rows, ", tokens ", tokens, ", dim ",
        dim, ")");
  if (out_row_stride < 0) out_row_stride = tokens * dim;
  const std::int64_t block = tokens * dim;
  for (std::int64_t r = 0; r < rows; ++r) {
    float* destination = out + r * out_row_stride;
    for (std::int64_t i = 0; i < block; ++i) destination[i] += addend[i];
  }
}

// Element-wise destination[i] += source[i] (residual connections).
inline void add_in_place(float* destination, const float* source, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) destination[i] += source[i];
}

// Element-wise values[i] *= factor (OPT scales its queries by head_dim^-0.5
// before q·k, and the rounding of that order is what HF produces).
inline void scale_in_place(float* values, std::int64_t count, float factor) {
  for (std::int64_t i = 0; i < count; ++i) values[i] *= factor;
}

// ---- references -------------------------------------------------------------
// A lookup is a copy and an addition is one float add: the fast forms above
// are already exact, these are the obvious loops kept for the test.

inline void embedding_lookup_naive(Tensor<const float> table, const std::int64_t* ids, std::int64_t count, float* out) {
  detail::check_embedding_table(table, "embedding_lookup_naive");
  const std::int64_t vocab = table.dim(0), dim = table.dim(1);
  for (std::int64_t i = 0; i < count; ++i) {
    detail::check_embedding_id(ids[i], i, vocab, "embedding_lookup_naive");
    for (std::int64_t d = 0; d < dim; ++d) out[i * dim + d] = table.at(ids[i], d);
  }
}

inline void add_embedding_rows_naive(Tensor<const float> table, const std::int64_t* ids, std::int64_t count,
                                     float* out) {
  detail::check_embedding_table(table, "add_embedding_rows_naive");
  const std::int64_t vocab = table.dim(0), dim = table.dim(1);
  for (std::int64_t i = 0; i < count; ++i) {
    detail::check_embedding_id(ids[i], i, vocab, "add_embedding_rows_naive");
    for (std::int64_t d = 0; d < dim; ++d) out[i * dim + d] += table.at(ids[i], d);
  }
}

}  // namespace blip::kernels
