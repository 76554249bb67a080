// blip/evaluation/longest_match.hpp: a small pattern language for writing a lexer the way JFlex
// reads one: every rule is tried at the current position, the longest match wins, and among equally
// long matches the rule written first wins. A rule may carry trailing context ("r/s": r is the token,
// s must follow it; like JFlex, the length of s counts when choosing the longest match, and s is left
// in the input).
//
// Patterns are built from code-point predicates with sequence, alternation and bounded repetition, and
// are matched by enumerating every end position (backtracking, continuation-passing, no allocation per
// step). That is exponential only for ambiguous nested repetitions such as (a|a)* or (a+)*; the PTB
// rules written with it avoid them (each repetition is followed by something that ends it).
// Literals are case-insensitive for ASCII letters, as JFlex's %caseless makes them; character classes
// are not (JFlex's %caseless does not expand inside classes either).
#pragma once

#include <bitset>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace blip::evaluation::lexing {

inline constexpr std::size_t kNoMatch = std::numeric_limits<std::size_t>::max();
inline constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

// A non-owning reference to "what to do with one end position" (no allocation, unlike std::function).
class EndSink {
 public:
  template <class Function, class = std::enable_if_t<!std::is_same_v<std::decay_t<Function>, EndSink>>>
  EndSink(const Function& function)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : object_(&function),
        call_([](const void* object, std::size_t end) { (*static_cast<const Function*>(object))(end); }) {}
  void operator()(std::size_t end) const { call_(object_, end); }

 private:
  const void* object_;
  void (*call_)(const void*, std::size_t);
};

class Pattern {
 public:
  struct Node {
    virtual ~Node() = default;
    // Calls `sink(end)` for every end such that text[start, end) matches (an end may repeat).
    virtual void match(std::u32string_view text, std::size_t start, const EndSink& sink) const = 0;
    // Whether a match can begin with `c` / can be empty: a quick filter before match().
    virtual bool can_start_with(char32_t c) const = 0;
    virtual bool can_be_empty() const = 0;
  };

  // Caches whether the pattern can match the empty string and which ASCII characters can begin a
  // match, so that the lexer skips most rules at a position after one table look-up.
  explicit Pattern(std::shared_ptr<const Node> node) : node_(std::move(node)), can_be_empty_(node_->can_be_empty()) {
    for (char32_t c = 0; c < 128; ++c) ascii_starts_[c] = node_->can_start_with(c);
  }

  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const {
    node_->match(text, start, sink);
  }

  // False when no match can start at text[start] (so match() need not be called).
  bool may_match_at(std::u32string_view text, std::size_t start) const {
    return can_be_empty_ || (start < text.size() && can_start_with(text[start]));
  }
  bool can_start_with(char32_t c) const { return c < 128 ? ascii_starts_[c] : node_->can_start_with(c); }
  bool can_be_empty() const { return can_be_empty_; }

  // The end of the longest match at `start`, or kNoMatch.
  std::size_t longest(std::u32string_view text, std::size_t start) const {
    std::size_t best = kNoMatch;
    match(text, start, [&best](std::size_t end) {
      if (best == kNoMatch || end > best) best = end;
    });
    return best;
  }

 private:
  std::shared_ptr<const Node> node_;
  bool can_be_empty_;
  std::bitset<128> ascii_starts_;
};

namespace detail {

template <class Predicate>
struct CharNode final : Pattern::Node {
  explicit CharNode(Predicate predicate) : predicate(std::move(predicate)) {}
  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const override {
    if (start < text.size() && predicate(text[start])) sink(start + 1);
  }
  bool can_start_with(char32_t c) const override { return predicate(c); }
  bool can_be_empty() const override { return false; }
  Predicate predicate;
};

inline char32_t fold_ascii(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

struct LiteralNode final : Pattern::Node {
  explicit LiteralNode(std::u32string literal) : literal(std::move(literal)) {}
  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const override {
    if (start > text.size() || text.size() - start < literal.size()) return;
    for (std::size_t i = 0; i < literal.size(); ++i) {
      if (fold_ascii(text[start + i]) != fold_ascii(literal[i])) return;
    }
    sink(start + literal.size());
  }
  bool can_start_with(char32_t c) const override { return !literal.empty() && fold_ascii(c) == fold_ascii(literal[0]); }
  bool can_be_empty() const override { return literal.empty(); }
  std::u32string literal;
};

struct SequenceNode final : Pattern::Node {
  explicit SequenceNode(std::vector<Pattern> parts) : parts(std::move(parts)) {}
  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const override {
    match_from(0, text, start, sink);
  }
  void match_from(std::size_t index, std::u32string_view text, std::size_t position, const EndSink& sink) const {
    if (index == parts.size()) {
      sink(position);
      return;
    }
    parts[index].match(text, position, [&](std::size_t end) { match_from(index + 1, text, end, sink); });
  }
  bool can_start_with(char32_t c) const override {
    for (const Pattern& part : parts) {
      if (part.can_start_with(c)) return true;
      if (!part.can_be_empty()) return false;
    }
    return false;
  }
  bool can_be_empty() const override {
    for (const Pattern& part : parts) {
      if (!part.can_be_empty()) return false;
    }
    return true;
  }
  std::vector<Pattern> parts;
};

struct AlternativeNode final : Pattern::Node {
  explicit AlternativeNode(std::vector<Pattern> choices) : choices(std::move(choices)) {}
  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const override {
    for (const Pattern& choice : choices) {
      if (choice.may_match_at(text, start)) choice.match(text, start, sink);
    }
  }
  bool can_start_with(char32_t c) const override {
    for (const Pattern& choice : choices) {
      if (choice.can_start_with(c)) return true;
    }
    return false;
  }
  bool can_be_empty() const override {
    for (const Pattern& choice : choices) {
      if (choice.can_be_empty()) return true;
    }
    return false;
  }
  std::vector<Pattern> choices;
};

struct RepeatNode final : Pattern::Node {
  RepeatNode(Pattern inner, std::size_t minimum, std::size_t maximum)
      : inner(std::move(inner)), minimum(minimum), maximum(maximum) {}
  void match(std::u32string_view text, std::size_t start, const EndSink& sink) const override {
    match_from(0, text, start, sink);
  }
  void match_from(std::size_t count, std::u32string_view text, std::size_t position, const EndSink& sink) const {
    if (count >= minimum) sink(position);
    if (count == maximum) return;
    inner.match(text, position, [&](std::size_t end) {
      // An empty repetition only helps to reach the minimum; past it, it would loop forever.
      if (end > position || count < minimum) match_from(count + 1, text, end, sink);
    });
  }
  bool can_start_with(char32_t c) const override { return maximum > 0 && inner.can_start_with(c); }
  bool can_be_empty() const override { return minimum == 0 || inner.can_be_empty(); }
  Pattern inner;
  std::size_t minimum, maximum;
};

}  // namespace detail

// One code point for which predicate(c) holds.
template <class Predicate>
Pattern chars(Predicate predicate) {
  return Pattern(std::make_shared<detail::CharNode<Predicate>>(std::move(predicate)));
}

// One code point of `set` (exact case).
inline Pattern one_of(std::u32string_view set) {
  return chars([set = std::u32string(set)](char32_t c) { return set.find(c) != std::u32string::npos; });
}

// One code point that is not in `set` (a negated class, so it also matches newlines).
inline Pattern none_of(std::u32string_view set) {
  return chars([set = std::u32string(set)](char32_t c) { return set.find(c) == std::u32string::npos; });
}

inline Pattern any_char() {
  return chars([](char32_t) { return true; });
}

// The literal text, ASCII letters in either case.
inline Pattern literal(std::u32string_view text) {
  return Pattern(std::make_shared<detail::LiteralNode>(std::u32string(text)));
}

// The literal text with its first code point in exactly that case and the rest in either case:
// what JFlex makes of "[A]bout" under %caseless.
inline Pattern cased_first(std::u32string_view text) {
  return Pattern(
      std::make_shared<detail::SequenceNode>(std::vector<Pattern>{one_of(text.substr(0, 1)), literal(text.substr(1))}));
}

inline Pattern sequence(std::vector<Pattern> parts) {
  return Pattern(std::make_shared<detail::SequenceNode>(std::move(parts)));
}

inline Pattern either(std::vector<Pattern> choices) {
  return Pattern(std::make_shared<detail::AlternativeNode>(std::move(choices)));
}

// Any one of the literal words; a word written "[X]yz" has its first letter in exactly that case.
inline Pattern words(std::initializer_list<std::u32string_view> list) {
  std::vector<Pattern> choices;
  for (std::u32string_view word : list) {
    if (word.size() >= 3 && word[0] == U'[' && word[2] == U']') {
      choices.push_back(sequence({one_of(word.substr(1, 1)), literal(word.substr(3))}));
    } else {
      choices.push_back(literal(word));
    }
  }
  return either(std::move(choices));
}

inline Pattern repeat(Pattern inner, std::size_t minimum, std::size_t maximum) {
  return Pattern(std::make_shared<detail::RepeatNode>(std::move(inner), minimum, maximum));
}
inline Pattern optional(Pattern inner) { return repeat(std::move(inner), 0, 1); }
inline Pattern zero_or_more(Pattern inner) { return repeat(std::move(inner), 0, kUnbounded); }
inline Pattern one_or_more(Pattern inner) { return repeat(std::move(inner), 1, kUnbounded); }

}  // namespace blip::evaluation::lexing
