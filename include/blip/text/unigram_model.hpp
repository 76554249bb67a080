// blip/text/unigram_model.hpp: the Unigram language-model tokenizer of SentencePiece, as Hugging
// Face's Rust `tokenizers` runs it (models/unigram/model.rs, `Unigram::encode_optimized` and
// `Model::tokenize`).
//
// A word (one piece of pre-tokenized text, e.g. "▁hello") is cut into vocabulary pieces by Viterbi:
// the segmentation with the highest sum of piece scores (log probabilities). Rust's details, which
// decide ties and unknown text:
//   * The lattice is over UTF-8 bytes; pieces are found with a byte trie (common prefix search), so
//     the work per character is bounded by the longest piece, not by the word.
//   * Start positions are visited left to right; at each, the pieces that start there in order of
//     length. A piece replaces the best path into its end only with a STRICTLY greater f64 score,
//     so on a tie the path found first stays ("x"*99 gives "▁", "x", then "xx" pairs in HF, where
//     SentencePiece puts the single "x" elsewhere).
//   * A character with no single-character piece also gets an <unk> edge scored
//     min(all scores) - 10. Consecutive <unk> characters of the best path are fused into one
//     token (fuse_unk is always on for Unigram).
//   * A piece string that appears twice in the vocabulary means its LAST id (and that id's score).
//   * The fused strings become ids through the vocabulary; a string that is not in it becomes
//     <0xNN> byte pieces when byte_fallback is on and every byte has one, else unk_id.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"

namespace blip {

class UnigramModel {
 public:
  // `pieces`: (piece, score) in id order; `unk_id`: the <unk> piece, or none (then text that no
  // piece covers is an error, as in Rust).
  UnigramModel(std::vector<std::pair<std::string, double>> pieces, std::optional<std::int64_t> unk_id,
               bool byte_fallback)
      : pieces_(std::move(pieces)), unk_id_(unk_id), byte_fallback_(byte_fallback) {
    if (unk_id_) {
      check(!pieces_.empty(), "UnigramModel: the vocabulary is empty but at least <unk> is needed");
      check(*unk_id_ >= 0 && *unk_id_ < static_cast<std::int64_t>(pieces_.size()), "UnigramModel: unk_id ", *unk_id_,
            " is outside the vocabulary of ", pieces_.size());
    }
    check(pieces_.size() <= std::numeric_limits<std::int32_t>::max(), "UnigramModel: too many pieces");
    ids_.reserve(pieces_.size());
    min_score_ = std::numeric_limits<double>::infinity();
    for (std::size_t id = 0; id < pieces_.size(); ++id) {
      ids_[pieces_[id].first] = static_cast<std::int64_t>(id);  // a repeated piece keeps its last id
      min_score_ = std::min(min_score_, pieces_[id].second);
    }
    build_trie();
  }

  std::size_t size() const { return pieces_.size(); }
  std::size_t distinct_piece_count() const { return ids_.size(); }
  std::optional<std::int64_t> unk_id() const { return unk_id_; }
  bool byte_fallback() const { return byte_fallback_; }
  const std::vector<std::pair<std::string, double>>& pieces() const { return pieces_; }

  std::optional<std::int64_t> token_to_id(std::string_view token) const {
    const auto found = ids_.find(std::string(token));
    if (found == ids_.end()) return std::nullopt;
    return found->second;
  }
  const std::string* id_to_token(std::int64_t id) const {
    if (id < 0 || id >= static_cast<std::int64_t>(pieces_.size())) return nullptr;
    return &pieces_[static_cast<std::size_t>(id)].first;
  }

  // Rust `Unigram::encode`: the best segmentation of `word` as piece strings, with consecutive
  // unknown characters fused. `word` must be valid UTF-8.
  std::vector<std::string> segment(std::string_view word) const {
    std::vector<std::string> result;
    for (const Segment& segment : best_segmentation(word)) result.emplace_back(word.substr(segment.begin, segment.end - segment.begin));
    return result;
  }

  // Rust `Unigram::tokenize`: the ids of `word`'s segmentation, appended to `ids`.
  void tokenize(std::string_view word, std::vector<std::int64_t>& ids) const {
    for (const Segment& segment : best_segmentation(word)) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
        continue;
      }
      // Fused unknown characters: Rust looks the string up like any piece first.
      const std::string piece(word.substr(segment.begin, segment.end - segment.begin));
      if (const auto id = token_to_id(piece)) {
        ids.push_back(*id);
      } else if (!(byte_fallback_ && append_byte_pieces(piece, ids))) {
        ids.push_back(*unk_id_);
      }
    }
  }

 private:
  // One token of the best path: word[begin, end) with its piece id, or id -1 for a run of unknown
  // characters (whose id tokenize() decides).
  struct Segment {
    std::size_t begin, end;
    std::int64_t id;
  };

  std::vector<Segment> best_segmentation(std::string_view word) const {
    std::vector<Segment> segments;
    if (word.empty()) return segments;
    const std::size_t size = word.size();
    const double unk_score = min_score_ - kUnknownPenalty;
    struct BestPath {
      double score = 0.0;
      std::int64_t id = 0;
      std::size_t start = kNoStart;  // where the last piece of the best path into here starts
    };
    std::vector<BestPath> best(size + 1);
    const auto* bytes = reinterpret_cast<const unsigned char*>(word.data());
    std::size_t character_bytes = 0;
    for (std::size_t start = 0; start < size; start += character_bytes) {
      character_bytes = std::min(character_length(bytes[start]), size - start);
      const double score_here = best[start].score;
      auto offer = [&](std::size_t end, std::int64_t id, double score) {
        BestPath& target = best[end];
        const double candidate = score + score_here;
        if (target.start == kNoStart || candidate > target.score) target = {candidate, id, start};
      };
      bool has_single_character_piece = false;
      std::uint32_t node = 0;
      for (std::size_t end = start; end < size; ++end) {
        node = child(node, bytes[end]);
        if (node == kNoNode) break;
        const std::int32_t id = piece_at_node_[node];
        if (id < 0) continue;
        offer(end + 1, id, pieces_[static_cast<std::size_t>(id)].second);
        if (end + 1 - start == character_bytes) has_single_character_piece = true;
      }
      if (!has_single_character_piece) {
        check(unk_id_.has_value(), "UnigramModel: the text has a character ('",
              clip(word.substr(start, character_bytes)), "') that no piece covers, and the model has no unk_id ",
              "(Rust: \"Encountered an unknown token but `unk_id` is missing\")");
        offer(start + character_bytes, *unk_id_, unk_score);
      }
    }
    // Back from the end; <unk> nodes next to each other become one segment.
    for (std::size_t end = size; end > 0;) {
      const BestPath& node = best[end];
      const bool unknown = unk_id_ && node.id == *unk_id_;
      if (unknown && !segments.empty() && segments.back().id < 0) {
        segments.back().begin = node.start;
      } else {
        segments.push_back({node.start, end, unknown ? -1 : node.id});
      }
      end = node.start;
    }
    std::reverse(segments.begin(), segments.end());
    return segments;
  }

  static constexpr double kUnknownPenalty = 10.0;  // Rust K_UNK_PENALTY
  static constexpr std::size_t kNoStart = std::numeric_limits<std::size_t>::max();
  static constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();

  static std::size_t character_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
  }

  // <0xNN> for every byte, all or nothing.
  bool append_byte_pieces(const std::string& piece, std::vector<std::int64_t>& ids) const {
    static const char kHex[] = "0123456789ABCDEF";
    std::vector<std::int64_t> byte_ids;
    for (const char c : piece) {
      const auto byte = static_cast<unsigned char>(c);
      const std::string name = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
      const auto id = token_to_id(name);
      if (!id) return false;
      byte_ids.push_back(*id);
    }
    ids.insert(ids.end(), byte_ids.begin(), byte_ids.end());
    return true;
  }

  // The trie over the pieces' bytes, flattened: node n's children are the edges
  // [first_edge_[n], first_edge_[n + 1]), sorted by label; the root's are also in root_children_.
  void build_trie() {
    std::vector<std::vector<std::pair<unsigned char, std::uint32_t>>> children(1);
    std::vector<std::int32_t> piece_at(1, -1);
    for (const auto& [piece, id] : ids_) {
      std::uint32_t node = 0;
      for (const char c : piece) {
        const auto label = static_cast<unsigned char>(c);
        auto& edges = children[node];
        const auto edge = std::find_if(edges.begin(), edges.end(), [&](const auto& e) { return e.first == label; });
        if (edge != edges.end()) {
          node = edge->second;
          continue;
        }
        const auto next = static_cast<std::uint32_t>(children.size());
        edges.emplace_back(label, next);
        children.emplace_back();
        piece_at.push_back(-1);
        node = next;
      }
      piece_at[node] = static_cast<std::int32_t>(id);  // the empty piece (node 0) is never looked up
    }
    first_edge_.assign(children.size() + 1, 0);
    for (std::size_t node = 0; node < children.size(); ++node) {
      std::sort(children[node].begin(), children[node].end());
      first_edge_[node + 1] = first_edge_[node] + static_cast<std::uint32_t>(children[node].size());
    }
    edge_labels_.reserve(first_edge_.back());
    edge_targets_.reserve(first_edge_.back());
    for (const auto& edges : children) {
      for (const auto& [label, target] : edges) {
        edge_labels_.push_back(label);
        edge_targets_.push_back(target);
      }
    }
    root_children_.fill(kNoNode);
    for (const auto& [label, target] : children[0]) root_children_[label] = target;
    piece_at_node_ = std::move(piece_at);
  }

  std::uint32_t child(std::uint32_t node, unsigned char label) const {
    if (node == 0) return root_children_[label];
    const auto begin = edge_labels_.begin() + first_edge_[node], end = edge_labels_.begin() + first_edge_[node + 1];
    const auto found = std::lower_bound(begin, end, label);
    if (found == end || *found != label) return kNoNode;
    return edge_targets_[static_cast<std::size_t>(found - edge_labels_.begin())];
  }

  std::vector<std::pair<std::string, double>> pieces_;
  std::unordered_map<std::string, std::int64_t> ids_;
  std::optional<std::int64_t> unk_id_;
  bool byte_fallback_ = false;
  double min_score_ = 0.0;
  std::vector<std::uint32_t> first_edge_;
  std::vector<unsigned char> edge_labels_;
  std::vector<std::uint32_t> edge_targets_;
  std::vector<std::int32_t> piece_at_node_;
  std::array<std::uint32_t, 256> root_children_{};
};

}  // namespace blip
