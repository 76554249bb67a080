// blip/text/sentencepiece_model.hpp: reads a SentencePiece model file (spiece.model), the
// `sentencepiece.ModelProto` protobuf message, without a protobuf library.
//
// Only the fields a Unigram tokenizer needs are kept (field numbers from sentencepiece_model.proto):
//   ModelProto      1 pieces (repeated SentencePiece)   2 trainer_spec   3 normalizer_spec
//   SentencePiece   1 piece (string)   2 score (float)   3 type (enum, default NORMAL)
//   TrainerSpec     3 model_type (default UNIGRAM)   35 byte_fallback   40 unk_id (default 0)
//   NormalizerSpec  1 name   2 precompiled_charsmap (bytes)   3 add_dummy_prefix (default true)
//                   4 remove_extra_whitespaces (default true)   5 escape_whitespaces (default true)
// Everything else is skipped by its wire type; trainer_spec and normalizer_spec must be present (as
// in every file spm_train writes), which catches a file cut at a field boundary. Protobuf's rules apply: a scalar given twice keeps
// its last value, a message given twice is merged. The file is untrusted: every length and varint
// is checked against the bytes that remain, and anything malformed is a blip::Error naming the file
// and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/text/tokenizer_base.hpp"
#include "blip/text/unicode.hpp"

namespace blip {

struct SentencePieceModel {
  // sentencepiece ModelProto.SentencePiece.Type.
  enum class PieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
  enum class ModelType : int { kUnigram = 1, kBpe = 2, kWord = 3, kCharacter = 4 };

  struct Piece {
    std::string piece;
    float score = 0.0f;
    PieceType type = PieceType::kNormal;
  };
  struct TrainerSpec {
    ModelType model_type = ModelType::kUnigram;
    std::int32_t unk_id = 0;
    bool byte_fallback = false;
  };
  struct NormalizerSpec {
    std::string name;
    std::string precompiled_charsmap;  // raw bytes; empty = no charsmap
    bool add_dummy_prefix = true;
    bool remove_extra_whitespaces = true;
    bool escape_whitespaces = true;
  };

  std::vector<Piece> pieces;
  TrainerSpec trainer_spec;
  NormalizerSpec normalizer_spec;
  bool has_trainer_spec = false, has_normalizer_spec = false;
};

namespace sentencepiece_detail {

// A cursor over one protobuf message: reads tags and values, checking each against the end.
class ProtobufReader {
 public:
  ProtobufReader(std::string_view bytes, std::size_t base_offset, const std::string& source)
      : bytes_(bytes), base_offset_(base_offset), source_(source) {}

  bool done() const { return position_ >= bytes_.size(); }

  // The next field's number and wire type.
  std::pair<std::uint32_t, int> read_tag() {
    const std::uint64_t tag = read_varint();
    const auto field = static_cast<std::uint32_t>(tag >> 3);
    const int wire_type = static_cast<int>(tag & 7);
    if (field == 0) malformed("field number 0");
    return {field, wire_type};
  }

  std::uint64_t read_varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position_ >= bytes_.size()) malformed("a varint runs past the end");
      const auto byte = static_cast<unsigned char>(bytes_[position_++]);
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    malformed("a varint is longer than 10 bytes");
  }

  float read_float() {
    if (bytes_.size() - position_ < 4) malformed("a 4-byte float runs past the end");
    std::uint32_t bits = 0;
    for (int k = 3; k >= 0; --k) bits = (bits << 8) | static_cast<unsigned char>(bytes_[position_ + static_cast<std::size_t>(k)]);
    position_ += 4;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

  // A length-delimited field's bytes, and (through `offset`) where they start in the file.
  std::string_view read_length_delimited(std::size_t* offset = nullptr) {
    const std::uint64_t length = read_varint();
    if (length > bytes_.size() - position_) {
      malformed("a field of ", length, " bytes runs past the end (", bytes_.size() - position_, " left)");
    }
    if (offset != nullptr) *offset = base_offset_ + position_;
    const std::string_view value = bytes_.substr(position_, static_cast<std::size_t>(length));
    position_ += static_cast<std::size_t>(length);
    return value;
  }

  std::string read_utf8_string(const char* field_name) {
    const std::string_view value = read_length_delimited();
    check(unicode::encode_utf8(unicode::decode_utf8(value)) == value, source_, ": ", field_name,
          " at byte ", base_offset_ + position_ - value.size(), " is not valid UTF-8");
    return std::string(value);
  }

  void skip(int wire_type) {
    switch (wire_type) {
      case 0: read_varint(); return;
      case 1: advance(8); return;
      case 2: read_length_delimited(); return;
      case 5: advance(4); return;
      default: malformed("unsupported wire type ", wire_type, " (groups or garbage)");
    }
  }

  // Checks that a known field came with the wire type its declaration implies.
  void expect_wire_type(int wire_type, int expected, const char* field_name) {
    if (wire_type != expected) malformed(field_name, " has wire type ", wire_type, ", expected ", expected);
  }

  template <class... Parts>
  [[noreturn]] void malformed(Parts&&... parts) const {
    fail(source_, ": not a valid SentencePiece model (protobuf ModelProto): at byte ", base_offset_ + position_, ": ",
         std::forward<Parts>(parts)...);
  }

 private:
  void advance(std::size_t count) {
    if (bytes_.size() - position_ < count) malformed("a ", count, "-byte field runs past the end");
    position_ += count;
  }

  std::string_view bytes_;
  std::size_t base_offset_;
  std::size_t position_ = 0;
  const std::string& source_;
};

inline SentencePieceModel::Piece parse_piece(ProtobufReader reader) {
  SentencePieceModel::Piece piece;
  while (!reader.done()) {
    const auto [field, wire_type] = reader.read_tag();
    if (field == 1) {
      reader.expect_wire_type(wire_type, 2, "SentencePiece.piece");
      piece.piece = reader.read_utf8_string("SentencePiece.piece");
    } else if (field == 2) {
      reader.expect_wire_type(wire_type, 5, "SentencePiece.score");
      piece.score = reader.read_float();
    } else if (field == 3) {
      reader.expect_wire_type(wire_type, 0, "SentencePiece.type");
      const std::uint64_t type = reader.read_varint();
      // An unknown enum value leaves the field at its default, as protobuf does for proto2.
      if (type >= 1 && type <= 6) piece.type = static_cast<SentencePieceModel::PieceType>(type);
    } else {
      reader.skip(wire_type);
    }
  }
  return piece;
}

inline void merge_trainer_spec(ProtobufReader reader, SentencePieceModel::TrainerSpec& spec) {
  while (!reader.done()) {
    const auto [field, wire_type] = reader.read_tag();
    if (field == 3) {
      reader.expect_wire_type(wire_type, 0, "TrainerSpec.model_type");
      const std::uint64_t type = reader.read_varint();
      if (type >= 1 && type <= 4) spec.model_type = static_cast<SentencePieceModel::ModelType>(type);
    } else if (field == 35) {
      reader.expect_wire_type(wire_type, 0, "TrainerSpec.byte_fallback");
      spec.byte_fallback = reader.read_varint() != 0;
    } else if (field == 40) {
      reader.expect_wire_type(wire_type, 0, "TrainerSpec.unk_id");
      // int32: negative values are sign-extended to 64 bits on the wire; keep the low 32.
      spec.unk_id = static_cast<std::int32_t>(static_cast<std::uint32_t>(reader.read_varint()));
    } else {
      reader.skip(wire_type);
    }
  }
}

inline void merge_normalizer_spec(ProtobufReader reader, SentencePieceModel::NormalizerSpec& spec) {
  while (!reader.done()) {
    const auto [field, wire_type] = reader.read_tag();
    if (field == 1) {
      reader.expect_wire_type(wire_type, 2, "NormalizerSpec.name");
      spec.name = reader.read_utf8_string("NormalizerSpec.name");
    } else if (field == 2) {
      reader.expect_wire_type(wire_type, 2, "NormalizerSpec.precompiled_charsmap");
      spec.precompiled_charsmap = std::string(reader.read_length_delimited());
    } else if (field == 3 || field == 4 || field == 5) {
      reader.expect_wire_type(wire_type, 0, "a NormalizerSpec flag");
      const bool value = reader.read_varint() != 0;
      (field == 3 ? spec.add_dummy_prefix : field == 4 ? spec.remove_extra_whitespaces : spec.escape_whitespaces) = value;
    } else {
      reader.skip(wire_type);
    }
  }
}

}  // namespace sentencepiece_detail

// Parses the bytes of a SentencePiece model; `source` names them in error messages.
inline SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& source) {
  // A checkout without Git LFS holds a small text pointer instead of the model: say so.
  if (bytes.substr(0, 24) == "version https://git-lfs.") {
    fail(source, ": is a Git LFS pointer file, not the SentencePiece model (fetch it with `git lfs pull`)");
  }
  SentencePieceModel model;
  sentencepiece_detail::ProtobufReader reader(bytes, 0, source);
  while (!reader.done()) {
    const auto [field, wire_type] = reader.read_tag();
    if (field >= 1 && field <= 3) {
      reader.expect_wire_type(wire_type, 2, field == 1 ? "ModelProto.pieces" : field == 2 ? "ModelProto.trainer_spec"
                                                                                           : "ModelProto.normalizer_spec");
      std::size_t offset = 0;
      const std::string_view message = reader.read_length_delimited(&offset);
      const sentencepiece_detail::ProtobufReader inner(message, offset, source);
      if (field == 1) {
        model.pieces.push_back(sentencepiece_detail::parse_piece(inner));
      } else if (field == 2) {
        sentencepiece_detail::merge_trainer_spec(inner, model.trainer_spec);
        model.has_trainer_spec = true;
      } else {
        sentencepiece_detail::merge_normalizer_spec(inner, model.normalizer_spec);
        model.has_normalizer_spec = true;
      }
    } else {
      reader.skip(wire_type);
    }
  }
  // spm_train always writes the pieces, then trainer_spec, then normalizer_spec: a file that
  // stops short of them was cut at a field boundary.
  check(!model.pieces.empty(), source, ": not a valid SentencePiece model: it has no pieces");
  check(model.has_trainer_spec && model.has_normalizer_spec, source,
        ": not a valid SentencePiece model: it has no ", model.has_trainer_spec ? "normalizer_spec" : "trainer_spec",
        " (is the file truncated?)");
  return model;
}

// Reads spiece.model (or any SentencePiece .model file).
inline SentencePieceModel read_sentencepiece_model(const std::filesystem::path& path) {
  return parse_sentencepiece_model(text_detail::read_file_bytes(path), path.string());
}

}  // namespace blip
