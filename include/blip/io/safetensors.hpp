// blip/io/safetensors.hpp: reading and writing Hugging Face .safetensors files.
//
// File layout: an 8-byte little-endian header size N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<value>", ...}}
// then the data section; offsets are relative to the end of the header.
//
// Reading: SafetensorsFile::open maps the file (no copy) and validates ALL of
// the header before anything is handed out, so a hostile or truncated file is
// a blip::Error naming the file (and the tensor), never a crash. The rules are
// those of the reference Rust loader (huggingface/safetensors, tensor.rs), which
// is what `safetensors.safe_open` and therefore transformers use:
//   * header size <= 100,000,000 bytes and within the file;
//   * the header is UTF-8 JSON whose top level is an object;
//   * every entry has a supported dtype, a shape of non-negative integers
//     whose byte size (checked for overflow) equals end - begin;
//   * the data ranges, sorted by offset, tile the data section exactly: they
//     start at 0, leave no hole, do not overlap, and end at the end of the file.
//     (The Rust loader rejects holes and trailing bytes too; with the rules
//     below, every file that loads here also loads in transformers.)
//   * `__metadata__` maps strings to strings (null means "none", as in Rust).
// Stricter than Rust on purpose: duplicate keys are an error (serde and
// nlohmann silently keep the last one, which would let two readers disagree on
// the weights), unknown dtypes (F64, BOOL, F8_*, ...) are an error because this
// library cannot use them, and shapes are limited to rank 4 (blip::Shape).
// Extra fields inside an entry are ignored, as in Rust.
//
// Views and copies: `view<T>` is zero-copy and requires the exact dtype and a
// suitably aligned address (files from the reference writer always are; a
// misaligned tensor is a clear error there). `to_f32` / `to_i64` never fail on
// alignment: F32 data is viewed in place when aligned and copied otherwise;
// F16 / BF16 / integer data is converted into a fresh tensor.
//
// Sharded checkpoints (`model.safetensors.index.json`, as save_pretrained
// writes them) are read by Checkpoint, which opens each shard once.
//
// Writing: SafetensorsWriter produces files the reference loader accepts, with
// the header padded by spaces to a multiple of 8 bytes like the reference
// writer, and every tensor aligned to its element size.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/core/mapped_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"

// The data section is little-endian; this library reads it in place.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "blip reads safetensors data in place: little-endian hosts only");
#endif

namespace blip {

// One tensor of a safetensors file, as its header describes it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::uint64_t data_begin = 0;  // absolute byte offset of the first data byte in the file
  std::uint64_t data_end = 0;    // absolute byte offset one past the last data byte
  std::uint64_t bytes() const { return data_end - data_begin; }
};

namespace detail {

// The reference implementation refuses larger headers (MAX_HEADER_SIZE in tensor.rs).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// The deepest nesting accepted in a JSON header (serde_json's recursion limit).
// A valid header needs 3 levels; the limit keeps hostile input from exhausting memory.
inline constexpr std::size_t kMaxJsonDepth = 128;

// Index of the first byte that is not part of valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or `size` if all is.
inline std::size_t first_invalid_utf8(const std::uint8_t* text, std::size_t size) {
  std::size_t i = 0;
  while (i < size) {
    const std::uint8_t lead = text[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint8_t second_low = 0x80, second_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_low = 0xA0;   // no overlong 3-byte forms
      if (lead == 0xED) second_high = 0x9F;  // no UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_low = 0x90;   // no overlong 4-byte forms
      if (lead == 0xF4) second_high = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (size - i < length) return i;
    if (text[i + 1] < second_low || text[i + 1] > second_high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if ((text[i + k] & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return size;
}

// `text` cut to a length fit for an error message (names in hostile files can
// be megabytes long).
inline std::string shorten(const std::string& text, std::size_t limit = 200) {
  return text.size() <= limit ? text : text.substr(0, limit) + "...(" + std::to_string(text.size()) + " bytes)";
}

// Builds an nlohmann::json from nlohmann's SAX events, rejecting duplicate
// object keys (nlohmann's own parser keeps the last duplicate silently) and
// nesting deeper than kMaxJsonDepth. Also records the top-level keys in the
// order they appear, which nlohmann::json (a std::map) does not keep.
class StrictJsonBuilder {
 public:
  using json = nlohmann::json;

  json result;
  std::vector<std::string> top_level_keys;
  std::string error;  // empty when parsing succeeded

  bool null() { return place(json(nullptr)); }
  bool boolean(bool value) { return place(json(value)); }
  bool number_integer(json::number_integer_t value) { return place(json(value)); }
  bool number_unsigned(json::number_unsigned_t value) { return place(json(value)); }
  bool number_float(json::number_float_t value, const json::string_t&) { return place(json(value)); }
  bool string(json::string_t& value) { return place(json(std::move(value))); }
  bool binary(json::binary_t&) {
    error = "binary values are not JSON";
    return false;
  }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& key) {
    json::object_t& object = stack_.back()->get_ref<json::object_t&>();
    if (object.find(key) != object.end()) {
      error = stack_.size() == 1 ? "duplicate key '" + shorten(key) + "' (a tensor or __metadata__ listed twice)"
                                 : "duplicate key '" + shorten(key) + "' inside " + describe_open_object();
      return false;
    }
    if (stack_.size() == 1) top_level_keys.push_back(key);
    pending_key_ = std::move(key);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& exception) {
    std::string message = exception.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep the reason.
    if (const auto bracket = message.find("] "); message.rfind("[json.exception", 0) == 0 && bracket != std::string::npos)
      message.erase(0, bracket + 2);
    if (message.size() > 240) message = message.substr(0, 240) + "...";
    error = "invalid JSON near byte " + std::to_string(position) + ": " + message;
    return false;
  }

 private:
  // Puts `value` where the parser is: the root, the end of the open array, or
  // under the pending key of the open object. Returns where it now lives.
  json* insert(json value) {
    if (stack_.empty()) {
      result = std::move(value);
      return &result;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      auto& array = parent.get_ref<json::array_t&>();
      array.push_back(std::move(value));
      return &array.back();
    }
    auto& object = parent.get_ref<json::object_t&>();
    return &object.emplace(std::move(pending_key_), std::move(value)).first->second;
  }
  bool place(json value) {
    insert(std::move(value));
    return true;
  }
  bool open(json container) {
    if (stack_.size() >= kMaxJsonDepth) {
      error = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    // Only the innermost open container grows, so pointers to the enclosing
    // ones (elements of their own parents) stay valid until they are closed.
    stack_.push_back(insert(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  std::string describe_open_object() const {
    // The most recent top-level key is the entry (tensor) being parsed.
    return top_level_keys.empty() ? std::string("a nested object") : "the entry of '" + shorten(top_level_keys.back()) + "'";
  }

  std::vector<json*> stack_;
  std::string pending_key_;
};

// Parses `text` as strict JSON (see StrictJsonBuilder). On failure throws
// blip::Error("<source>: <what>: <reason>").
inline nlohmann::json parse_strict_json(const char* begin, const char* end, const std::string& source,
                                        const char* what, std::vector<std::string>* top_level_keys = nullptr) {
  // nlohmann's lexer takes a NUL byte for the end of the input, so "{}\0junk"
  // would pass; serde (the reference) rejects it, and so do we.
  if (const void* nul = std::memchr(begin, 0, static_cast<std::size_t>(end - begin)))
    fail(source, ": ", what, ": invalid JSON: NUL byte at byte ", static_cast<const char*>(nul) - begin);
  StrictJsonBuilder builder;
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(begin, end, &builder, nlohmann::json::input_format_t::json,
                                       /*strict=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& exception) {  // errors are reported through the SAX; belt and braces
    fail(source, ": ", what, ": invalid JSON: ", exception.what());
  }
  if (!parsed || !builder.error.empty()) {
    fail(source, ": ", what, ": ", builder.error.empty() ? std::string("invalid JSON") : builder.error);
  }
  if (top_level_keys) *top_level_keys = std::move(builder.top_level_keys);
  return std::move(builder.result);
}

// "array", "object", or a scalar with its value: "null", "string \"1\"",
// "negative number -1", "non-integer number 1.5" (for error messages).
inline std::string describe_json(const nlohmann::json& value) {
  if (value.is_array() || value.is_object()) return value.type_name();
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 60) + "...";
  if (value.is_null()) return "null";
  if (value.is_number_float()) return "non-integer number " + text;
  if (value.is_number_integer() && !value.is_number_unsigned() && value.get<std::int64_t>() < 0)
    return "negative number " + text;
  return std::string(value.type_name()) + " " + text;
}

// A non-negative JSON integer that fits in 64 bits ("-0" counts as 0; floats
// such as 1.0 or 1e3 are rejected, as serde rejects them for usize).
inline bool json_to_u64(const nlohmann::json& value, std::uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<std::uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(value.get<std::int64_t>());
    return true;
  }
  return false;
}

inline std::string supported_dtype_list() { return "F32, F16, BF16, I8, U8, I32, I64"; }

// Everything a SafetensorsFile shares between its copies.
struct SafetensorsState {
  std::string path;
  std::shared_ptr<const void> owner;  // keeps `bytes` alive (the mapping, or a caller's buffer)
  const std::uint8_t* bytes = nullptr;
  std::size_t size = 0;
  std::uint64_t header_size = 0;
  std::vector<TensorInfo> tensors;  // header order
  std::unordered_map<std::string, std::size_t> index_by_name;
  std::map<std::string, std::string> metadata;
};

// Reads one header entry into `info` (name already set), checking everything
// that can be checked locally; `data_size` is the size of the data section.
inline void parse_tensor_entry(const std::string& path, const nlohmann::json& entry, std::uint64_t data_size,
                               std::uint64_t data_start, TensorInfo& info) {
  const std::string where = path + ": tensor '" + shorten(info.name) + "'";
  if (!entry.is_object()) fail(where, ": header entry must be an object with dtype, shape and data_offsets, found ", describe_json(entry));

  const auto dtype_field = entry.find("dtype");
  if (dtype_field == entry.end()) fail(where, ": header entry has no 'dtype'");
  if (!dtype_field->is_string()) fail(where, ": 'dtype' must be a string, found ", describe_json(*dtype_field));
  const std::string& dtype_text = dtype_field->get_ref<const std::string&>();
  if (!parse_dtype(dtype_text, info.dtype))
    fail(where, ": unsupported dtype '", dtype_text, "' (blip reads ", supported_dtype_list(), ")");

  const auto shape_field = entry.find("shape");
  if (shape_field == entry.end()) fail(where, ": header entry has no 'shape'");
  if (!shape_field->is_array()) fail(where, ": 'shape' must be an array of integers, found ", describe_json(*shape_field));
  if (shape_field->size() > static_cast<std::size_t>(Shape::kMaxRank))
    fail(where, ": rank ", shape_field->size(), " is above the maximum of ", Shape::kMaxRank, " that blip supports");
  // Element count with overflow checks in the order of the dims, as the Rust
  // loader does (checked_mul), so [huge, huge, 0] is rejected there and here.
  std::uint64_t element_count = 1;
  bool overflow = false;
  info.shape = Shape();
  for (std::size_t axis = 0; axis < shape_field->size(); ++axis) {
    const nlohmann::json& dim_value = (*shape_field)[axis];
    std::uint64_t dim = 0;
    if (!json_to_u64(dim_value, dim))
      fail(where, ": shape[", axis, "] must be a non-negative integer, found ", describe_json(dim_value));
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) overflow = true;
    if (!overflow && dim != 0 && element_count > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
    if (!overflow) element_count *= dim;
    info.shape.push_back(overflow ? 0 : static_cast<std::int64_t>(dim));
  }
  const std::uint64_t element_size = dtype_size(info.dtype);
  if (overflow || element_count > std::numeric_limits<std::uint64_t>::max() / element_size ||
      element_count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    fail(where, ": shape ", shape_field->dump(), " overflows 64-bit arithmetic");
  const std::uint64_t expected_bytes = element_count * element_size;

  const auto offsets_field = entry.find("data_offsets");
  if (offsets_field == entry.end()) fail(where, ": header entry has no 'data_offsets'");
  std::uint64_t begin = 0, end = 0;
  if (!offsets_field->is_array() || offsets_field->size() != 2 || !json_to_u64((*offsets_field)[0], begin) ||
      !json_to_u64((*offsets_field)[1], end))
    fail(where, ": 'data_offsets' must be [begin, end] with non-negative integers, found ", offsets_field->dump());
  if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] begin after they end");
  if (end > data_size)
    fail(where, ": data_offsets [", begin, ", ", end, "] run past the end of the data section (", data_size,
         " bytes; file truncated?)");
  if (end - begin != expected_bytes)
    fail(where, ": shape ", info.shape, " of ", dtype_name(info.dtype), " needs ", expected_bytes,
         " bytes but data_offsets [", begin, ", ", end, "] span ", end - begin);
  info.data_begin = data_start + begin;
  info.data_end = data_start + end;
}

// Validates a whole safetensors image; see the rules at the top of this file.
inline std::shared_ptr<SafetensorsState> parse_safetensors(const std::uint8_t* bytes, std::size_t size,
                                                           const std::string& path,
                                                           std::shared_ptr<const void> owner) {
  auto state = std::make_shared<SafetensorsState>();
  state->path = path;
  state->owner = std::move(owner);
  state->bytes = bytes;
  state->size = size;

  if (size < 8) fail(path, ": file is ", size, " bytes, too short for the 8-byte header size of a safetensors file");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxSafetensorsHeaderBytes)
    fail(path, ": header size ", header_size, " bytes is above the safetensors limit of ", kMaxSafetensorsHeaderBytes,
         " (not a safetensors file, or corrupt)");
  if (header_size > size - 8)
    fail(path, ": header size ", header_size, " bytes runs past the end of the file (", size - 8,
         " bytes follow the size field; file truncated?)");
  state->header_size = header_size;
  const std::uint8_t* header = bytes + 8;
  if (const std::size_t bad = first_invalid_utf8(header, header_size); bad != header_size)
    fail(path, ": header is not valid UTF-8 (byte ", bad, " of the header)");

  std::vector<std::string> order;
  const nlohmann::json root = parse_strict_json(reinterpret_cast<const char*>(header),
                                                reinterpret_cast<const char*>(header + header_size), path,
                                                "safetensors header", &order);
  if (!root.is_object()) fail(path, ": safetensors header must be a JSON object, found ", describe_json(root));

  const std::uint64_t data_start = 8 + header_size;
  const std::uint64_t data_size = size - data_start;
  state->tensors.reserve(order.size());
  for (const std::string& name : order) {
    const nlohmann::json& entry = root.at(name);
    if (name == "__metadata__") {
      if (entry.is_null()) continue;  // serde reads null as "no metadata"
      if (!entry.is_object())
        fail(path, ": '__metadata__' must be an object mapping strings to strings, found ", describe_json(entry));
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          fail(path, ": '__metadata__' must map strings to strings, but '", shorten(key), "' holds ", describe_json(value));
        state->metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    TensorInfo info;
    info.name = name;
    parse_tensor_entry(path, entry, data_size, data_start, info);
    state->index_by_name.emplace(name, state->tensors.size());
    state->tensors.push_back(std::move(info));
  }

  // The ranges must tile [0, data_size): sort by (begin, end) and walk.
  std::vector<std::size_t> by_offset(state->tensors.size());
  std::iota(by_offset.begin(), by_offset.end(), std::size_t{0});
  std::stable_sort(by_offset.begin(), by_offset.end(), [&](std::size_t a, std::size_t b) {
    const TensorInfo &left = state->tensors[a], &right = state->tensors[b];
    return std::make_pair(left.data_begin, left.data_end) < std::make_pair(right.data_begin, right.data_end);
  });
  std::uint64_t covered_until = data_start;
  const TensorInfo* previous = nullptr;
  for (std::size_t index : by_offset) {
    const TensorInfo& info = state->tensors[index];
    if (info.data_begin < covered_until)
      fail(path, ": tensor '", shorten(info.name), "': data_offsets [", info.data_begin - data_start, ", ",
           info.data_end - data_start, "] overlap those of tensor '", shorten(previous->name), "' [",
           previous->data_begin - data_start, ", ", previous->data_end - data_start, "]");
    if (info.data_begin > covered_until)
      fail(path, ": tensor '", shorten(info.name), "': data_offsets begin at ", info.data_begin - data_start,
           " but the data before it ends at ", covered_until - data_start,
           "; bytes that belong to no tensor are invalid in safetensors (the reference loader rejects them)");
    covered_until = info.data_end;
    previous = &info;
  }
  if (covered_until != size)
    fail(path, ": the tensors cover ", covered_until - data_start, " bytes but the data section holds ", data_size,
         " (trailing bytes that belong to no tensor; the reference loader rejects them)");
  return state;
}

// Copies `count` elements of type Source from possibly unaligned `bytes` into
// `out`, converting each with `convert`. Spread over threads for big tensors.
template <class Source, class Target, class Convert>
void convert_elements(const std::uint8_t* bytes, std::int64_t count, Target* out, Convert convert) {
  constexpr std::int64_t kChunk = 1 << 16;
  const std::int64_t chunks = (count + kChunk - 1) / kChunk;
  parallel_for(0, chunks, [&](std::int64_t chunk) {
    const std::int64_t begin = chunk * kChunk, end = std::min(count, begin + kChunk);
    for (std::int64_t i = begin; i < end; ++i) {
      Source value;
      std::memcpy(&value, bytes + static_cast<std::size_t>(i) * sizeof(Source), sizeof(Source));
      out[i] = convert(value);
    }
  });
}

}  // namespace detail

// A validated, memory-mapped safetensors file. Copies share the mapping.
class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header (see the top of this file);
  // throws blip::Error naming the file, and the tensor when one is at fault.
  static SafetensorsFile open(const std::string& path) {
    std::shared_ptr<const MappedFile> mapping = MappedFile::open(path);
    const std::uint8_t* bytes = mapping->data();
    const std::size_t size = mapping->size();
    return SafetensorsFile(detail::parse_safetensors(bytes, size, path, std::move(mapping)));
  }

  // Same validation over a safetensors image already in memory (tests, fuzzing,
  // embedded data). `bytes` must stay valid while `owner` lives; when owner is
  // null the caller keeps `bytes` alive for as long as the file and its views.
  // `name` stands for the path in error messages.
  static SafetensorsFile from_memory(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                                     std::shared_ptr<const void> owner = nullptr) {
    return SafetensorsFile(detail::parse_safetensors(bytes, size, name, std::move(owner)));
  }

  const std::string& path() const { return state_->path; }
  std::size_t file_size() const { return state_->size; }
  std::uint64_t header_size() const { return state_->header_size; }
  // Tensors in the order the header lists them.
  const std::vector<TensorInfo>& tensors() const { return state_->tensors; }
  bool contains(const std::string& name) const { return state_->index_by_name.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const {
    const auto found = state_->index_by_name.find(name);
    if (found == state_->index_by_name.end()) fail(state_->path, ": no tensor '", name, "'");
    return state_->tensors[found->second];
  }
  const std::map<std::string, std::string>& metadata() const { return state_->metadata; }

  // The tensor's bytes exactly as stored (info(name).bytes() of them, any
  // dtype, any alignment), for tools that copy tensors between files.
  const std::uint8_t* raw_data(const std::string& name) const { return state_->bytes + info(name).data_begin; }
  // What keeps raw_data() alive (the mapping): hold it to keep a view.
  std::shared_ptr<const void> storage_owner() const { return state_; }

  // Zero-copy view. The dtype must be exactly T's, and the data must sit at an
  // address aligned for T (always true for files from the reference writer);
  // otherwise a blip::Error says why. to_f32 / to_i64 have no such limits.
  template <class T>
  Tensor<const T> view(const std::string& name) const {
    static_assert(!std::is_const_v<T>, "view<T>: name the element type without const");
    const TensorInfo& tensor = info(name);
    check(tensor.dtype == dtype_of<T>, state_->path, ": tensor '", name, "' is ", dtype_name(tensor.dtype),
          ", not the ", dtype_name(dtype_of<T>), " that view<> asked for");
    const std::uint8_t* data = state_->bytes + tensor.data_begin;
    check(reinterpret_cast<std::uintptr_t>(data) % alignof(T) == 0, state_->path, ": tensor '", name,
          "' starts at file offset ", tensor.data_begin, ", not aligned to ", alignof(T),
          " bytes, so it cannot be viewed in place (to_f32 / to_i64 copy it instead)");
    return Tensor<const T>::view(reinterpret_cast<const T*>(data), tensor.shape, state_);
  }

  // As f32: F32 is viewed in place when aligned (copied when not); F16, BF16
  // and the integer types are converted into a new tensor.
  Tensor<const float> to_f32(const std::string& name) const {
    const TensorInfo& tensor = info(name);
    const std::uint8_t* data = state_->bytes + tensor.data_begin;
    if (tensor.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(data) % alignof(float) == 0)
      return view<float>(name);
    Tensor<float> result(tensor.shape);
    const std::int64_t count = tensor.shape.numel();
    switch (tensor.dtype) {
      case DType::F32: detail::convert_elements<float>(data, count, result.data(), [](float v) { return v; }); break;
      case DType::F16:
        detail::convert_elements<std::uint16_t>(data, count, result.data(),
                                                [](std::uint16_t bits) { return f16_to_f32(Float16{bits}); });
        break;
      case DType::BF16:
        detail::convert_elements<std::uint16_t>(data, count, result.data(),
                                                [](std::uint16_t bits) { return bf16_to_f32(BFloat16{bits}); });
        break;
      case DType::I8: detail::convert_elements<std::int8_t>(data, count, result.data(), [](std::int8_t v) { return static_cast<float>(v); }); break;
      case DType::U8: detail::convert_elements<std::uint8_t>(data, count, result.data(), [](std::uint8_t v) { return static_cast<float>(v); }); break;
      case DType::I32: detail::convert_elements<std::int32_t>(data, count, result.data(), [](std::int32_t v) { return static_cast<float>(v); }); break;
      case DType::I64: detail::convert_elements<std::int64_t>(data, count, result.data(), [](std::int64_t v) { return static_cast<float>(v); }); break;
    }
    return result;
  }

  // An integer tensor (I64, I32, U8, I8; token ids, masks) widened into a new
  // int64 tensor. Floating-point tensors are an error, not silently truncated.
  Tensor<std::int64_t> to_i64(const std::string& name) const {
    const TensorInfo& tensor = info(name);
    const std::uint8_t* data = state_->bytes + tensor.data_begin;
    Tensor<std::int64_t> result(tensor.shape);
    const std::int64_t count = tensor.shape.numel();
    const auto widen = [](auto v) { return static_cast<std::int64_t>(v); };
    switch (tensor.dtype) {
      case DType::I64: detail::convert_elements<std::int64_t>(data, count, result.data(), widen); break;
      case DType::I32: detail::convert_elements<std::int32_t>(data, count, result.data(), widen); break;
      case DType::U8: detail::convert_elements<std::uint8_t>(data, count, result.data(), widen); break;
      case DType::I8: detail::convert_elements<std::int8_t>(data, count, result.data(), widen); break;
      default:
        fail(state_->path, ": tensor '", name, "' is ", dtype_name(tensor.dtype),
             "; to_i64 reads integer tensors only (I64, I32, U8, I8)");
    }
    return result;
  }

 private:
  explicit SafetensorsFile(std::shared_ptr<const detail::SafetensorsState> state) : state_(std::move(state)) {}
  std::shared_ptr<const detail::SafetensorsState> state_;
};

// A checkpoint: one .safetensors file, or the shards a
// model.safetensors.index.json lists. Copies share the opened files.
class Checkpoint {
 public:
  // `path` is a .safetensors file, a *.json index, or a folder holding
  // model.safetensors or model.safetensors.index.json (the single file wins
  // when both exist, as in transformers' from_pretrained).
  static Checkpoint open(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) fail(path, ": checkpoint does not exist");
    if (fs::is_directory(status)) {
      const fs::path single = fs::path(path) / "model.safetensors";
      const fs::path index = fs::path(path) / "model.safetensors.index.json";
      if (fs::exists(single)) return from_file(SafetensorsFile::open(single.string()));
      if (fs::exists(index)) return open_index(index.string());
      fail(path, ": folder holds neither model.safetensors nor model.safetensors.index.json");
    }
    if (fs::path(path).extension() == ".json") return open_index(path);
    return from_file(SafetensorsFile::open(path));
  }

  // A checkpoint with no tensors, for a WeightStore that records what a model
  // asks for without any weights at hand (WeightStore::recording). `path`
  // stands for the checkpoint in messages.
  static Checkpoint empty(const std::string& path) {
    auto state = std::make_shared<State>();
    state->path = path;
    return Checkpoint(std::move(state));
  }

  // A checkpoint made of one already opened file.
  static Checkpoint from_file(SafetensorsFile file) {
    auto state = std::make_shared<State>();
    state->path = file.path();
    for (const TensorInfo& tensor : file.tensors()) {
      state->names.push_back(tensor.name);
      state->file_index_by_name.emplace(tensor.name, 0);
    }
    state->files.push_back(std::move(file));
    return Checkpoint(std::move(state));
  }

  // What was opened: the .safetensors file or the index.
  const std::string& path() const { return state_->path; }
  // Tensor names: file order for a single file; for a sharded checkpoint the
  // index's names, sorted.
  std::vector<std::string> names() const { return state_->names; }
  bool contains(const std::string& name) const { return state_->file_index_by_name.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const { return file_of(name).info(name); }
  Tensor<const float> to_f32(const std::string& name) const { return file_of(name).to_f32(name); }
  Tensor<std::int64_t> to_i64(const std::string& name) const { return file_of(name).to_i64(name); }
  const SafetensorsFile& file_of(const std::string& name) const {
    const auto found = state_->file_index_by_name.find(name);
    if (found == state_->file_index_by_name.end()) fail(state_->path, ": no tensor '", name, "'");
    return state_->files[found->second];
  }
  // The opened files (one per shard).
  const std::vector<SafetensorsFile>& files() const { return state_->files; }

 private:
  struct State {
    std::string path;
    std::vector<SafetensorsFile> files;
    std::vector<std::string> names;
    std::unordered_map<std::string, std::size_t> file_index_by_name;
  };
  explicit Checkpoint(std::shared_ptr<const State> state) : state_(std::move(state)) {}

  // {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}};
  // shard files are relative to the index's folder.
  static Checkpoint open_index(const std::string& index_path) {
    namespace fs = std::filesystem;
    std::ifstream stream(index_path, std::ios::binary);
    if (!stream) fail(index_path, ": cannot open checkpoint index");
    const std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    if (const std::size_t bad = detail::first_invalid_utf8(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
        bad != text.size())
      fail(index_path, ": checkpoint index is not valid UTF-8 (byte ", bad, ")");
    const nlohmann::json root =
        detail::parse_strict_json(text.data(), text.data() + text.size(), index_path, "checkpoint index");
    if (!root.is_object()) fail(index_path, ": checkpoint index must be a JSON object");
    const auto weight_map = root.find("weight_map");
    if (weight_map == root.end() || !weight_map->is_object())
      fail(index_path, ": checkpoint index needs a 'weight_map' object mapping tensor names to shard files");

    auto state = std::make_shared<State>();
    state->path = index_path;
    std::map<std::string, std::size_t> file_index_by_shard;
    const fs::path folder = fs::path(index_path).parent_path();
    for (const auto& [name, shard_value] : weight_map->items()) {
      if (!shard_value.is_string())
        fail(index_path, ": weight_map entry for tensor '", name, "' must be a shard file name, found ",
             detail::describe_json(shard_value));
      const std::string shard = shard_value.get<std::string>();
      const fs::path relative(shard);
      bool escapes = shard.empty() || relative.is_absolute() || relative.has_root_name();
      for (const auto& part : relative) escapes = escapes || part == "..";
      if (escapes)
        fail(index_path, ": shard '", shard, "' for tensor '", name,
             "' must be a file name relative to the index's folder");
      auto found = file_index_by_shard.find(shard);
      if (found == file_index_by_shard.end()) {
        const fs::path shard_path = folder / relative;
        if (!fs::exists(shard_path))
          fail(index_path, ": shard '", shard, "' (for tensor '", name, "') is missing; looked for ",
               shard_path.string());
        state->files.push_back(SafetensorsFile::open(shard_path.string()));
        found = file_index_by_shard.emplace(shard, state->files.size() - 1).first;
      }
      if (!state->files[found->second].contains(name))
        fail(index_path, ": tensor '", name, "' is listed in shard '", shard, "' but that file has no such tensor");
      state->names.push_back(name);
      state->file_index_by_name.emplace(name, found->second);
    }
    return Checkpoint(std::move(state));
  }

  std::shared_ptr<const State> state_;
};

// Collects tensors and writes them as one .safetensors file.
class SafetensorsWriter {
 public:
  // Adds a tensor of any supported element type (float, Float16, BFloat16,
  // int8/uint8/int32/int64). The header lists tensors in insertion order; the
  // data section puts wider types first (like the reference writer) so every
  // tensor stays aligned to its element size.
  template <class T>
  void add(const std::string& name, Tensor<const T> tensor) {
    static_assert(!std::is_const_v<T>, "add<T>: name the element type without const");
    check_new_name(name);
    check(tensor.numel() == 0 || tensor.data() != nullptr, "SafetensorsWriter: tensor '", name,
          "' has shape ", tensor.shape(), " but no data");
    Entry entry{name, dtype_of<T>, tensor.shape(), {}};
    entry.bytes.resize(tensor.bytes());
    if (tensor.numel() > 0) std::memcpy(entry.bytes.data(), tensor.data(), tensor.bytes());
    push(std::move(entry));
  }
  // Tensor<T> (mutable) overload, so `writer.add("x", tensor)` deduces T.
  template <class T, std::enable_if_t<!std::is_const_v<T>, int> = 0>
  void add(const std::string& name, const Tensor<T>& tensor) {
    add<T>(name, Tensor<const T>(tensor));
  }

  // Adds a tensor from its raw little-endian bytes (`size` must be the shape's
  // element count times the dtype's size): copies a tensor of any dtype
  // unchanged, e.g. from SafetensorsFile::raw_data.
  void add_raw(const std::string& name, DType dtype, const Shape& shape, const std::uint8_t* bytes, std::size_t size) {
    check_new_name(name);
    const std::uint64_t expected = static_cast<std::uint64_t>(shape.numel()) * dtype_size(dtype);
    check(size == expected, "SafetensorsWriter: tensor '", name, "': shape ", shape, " of ", dtype_name(dtype), " needs ",
          expected, " bytes, but ", size, " were given");
    check(size == 0 || bytes != nullptr, "SafetensorsWriter: tensor '", name, "' has shape ", shape, " but no data");
    Entry entry{name, dtype, shape, {}};
    if (size > 0) entry.bytes.assign(bytes, bytes + size);
    push(std::move(entry));
  }

  // Stores an f32 tensor as F32, F16 or BF16 (round to nearest even, as
  // torch's .half() / .bfloat16()).
  void add_f32_as(const std::string& name, Tensor<const float> tensor, DType stored_as) {
    check(stored_as == DType::F32 || stored_as == DType::F16 || stored_as == DType::BF16,
          "SafetensorsWriter: tensor '", name, "': add_f32_as stores F32, F16 or BF16, not ", dtype_name(stored_as));
    if (stored_as == DType::F32) return add<float>(name, tensor);
    check_new_name(name);
    check(tensor.numel() == 0 || tensor.data() != nullptr, "SafetensorsWriter: tensor '", name,
          "' has shape ", tensor.shape(), " but no data");
    Entry entry{name, stored_as, tensor.shape(), {}};
    const std::int64_t count = tensor.numel();
    entry.bytes.resize(static_cast<std::size_t>(count) * 2);
    for (std::int64_t i = 0; i < count; ++i) {
      const std::uint16_t bits = stored_as == DType::F16 ? f32_to_f16(tensor.data()[i]).bits
                                                         : f32_to_bf16(tensor.data()[i]).bits;
      std::memcpy(entry.bytes.data() + 2 * i, &bits, 2);
    }
    push(std::move(entry));
  }

  void set_metadata(const std::string& key, const std::string& value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value");
    metadata_[key] = value;
  }

  // The complete file image (header size, header, data).
  std::vector<std::uint8_t> serialize() const {
    const std::string header = build_header();
    std::vector<std::uint8_t> image(8 + header.size());
    write_size_field(header.size(), image.data());
    std::memcpy(image.data() + 8, header.data(), header.size());
    for (std::size_t index : data_order()) {
      const auto& bytes = entries_[index].bytes;
      image.insert(image.end(), bytes.begin(), bytes.end());
    }
    return image;
  }

  // Writes the file: to `<path>.partial` first, then renamed over `path`, so
  // a failed write never leaves a truncated file behind under the real name.
  void write(const std::string& path) const {
    const std::string header = build_header();
    const std::string partial = path + ".partial";
    {
      std::ofstream stream(partial, std::ios::binary | std::ios::trunc);
      if (!stream) fail(path, ": cannot create file for writing (", std::strerror(errno), ")");
      std::uint8_t size_field[8];
      write_size_field(header.size(), size_field);
      stream.write(reinterpret_cast<const char*>(size_field), 8);
      stream.write(header.data(), static_cast<std::streamsize>(header.size()));
      for (std::size_t index : data_order()) {
        const auto& bytes = entries_[index].bytes;
        stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      }
      stream.flush();
      if (!stream) {
        const int error = errno;
        stream.close();
        std::remove(partial.c_str());
        fail(path, ": write failed (", std::strerror(error), ")");
      }
    }
    std::error_code error;
    std::filesystem::rename(partial, path, error);
    if (error) {
      std::remove(partial.c_str());
      fail(path, ": cannot move the written file into place (", error.message(), ")");
    }
  }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::vector<std::uint8_t> bytes;
  };

  static void check_utf8(const std::string& text, const char* what) {
    check(detail::first_invalid_utf8(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()) == text.size(),
          "SafetensorsWriter: ", what, " '", text, "' is not valid UTF-8");
  }
  void check_new_name(const std::string& name) const {
    check(name != "__metadata__", "SafetensorsWriter: '__metadata__' is reserved and cannot name a tensor");
    check_utf8(name, "tensor name");
    check(names_.count(name) == 0, "SafetensorsWriter: tensor '", name, "' added twice");
  }
  void push(Entry entry) {
    names_.insert(entry.name);
    entries_.push_back(std::move(entry));
  }
  // Widest element type first, insertion order within a width: starting at an
  // 8-aligned offset, every tensor then starts at a multiple of its element size.
  std::vector<std::size_t> data_order() const {
    std::vector<std::size_t> order(entries_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return dtype_size(entries_[a].dtype) > dtype_size(entries_[b].dtype);
    });
    return order;
  }
  std::string build_header() const {
    std::vector<std::uint64_t> begin(entries_.size());
    std::uint64_t offset = 0;
    for (std::size_t index : data_order()) {
      begin[index] = offset;
      offset += entries_[index].bytes.size();
    }
    std::string header = "{";
    bool first = true;
    if (!metadata_.empty()) {
      header += "\"__metadata__\":" + nlohmann::json(metadata_).dump();
      first = false;
    }
    for (std::size_t index = 0; index < entries_.size(); ++index) {
      const Entry& entry = entries_[index];
      if (!first) header += ",";
      first = false;
      header += nlohmann::json(entry.name).dump();
      header += ":{\"dtype\":\"";
      header += dtype_name(entry.dtype);
      header += "\",\"shape\":[";
      for (int axis = 0; axis < entry.shape.rank(); ++axis) {
        if (axis) header += ",";
        header += std::to_string(entry.shape[axis]);
      }
      header += "],\"data_offsets\":[" + std::to_string(begin[index]) + "," +
                std::to_string(begin[index] + entry.bytes.size()) + "]}";
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');  // the reference writer pads so data starts 8-aligned
    return header;
  }
  static void write_size_field(std::uint64_t size, std::uint8_t* out) {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(size >> (8 * i));
  }

  std::vector<Entry> entries_;
  std::unordered_set<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace blip
