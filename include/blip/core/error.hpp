// blip/core/error.hpp: the one exception type the library throws.
//
// Every failure a user can cause (a bad file, a missing tensor, a wrong argument)
// is reported as blip::Error with a message that names the file, tensor or
// argument and says what was expected. Internal invariants use the same type so
// that callers need a single catch.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "blip/core/error_type.hpp"

namespace blip {

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream stream;
  (stream << ... << std::forward<Parts>(parts));
  return stream.str();
}
}  // namespace detail

// Throws blip::Error whose message is the concatenation of `parts`
// (anything with an operator<<).
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

// Throws blip::Error with the given message parts when `condition` is false.
template <class... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) fail(std::forward<Parts>(parts)...);
}

// Input quoted in a message (a string read from a file, a token, a line of
// text) is cut to this many bytes, so that a 5 MB model_type never becomes a
// 5 MB message.
inline constexpr std::size_t kMaxQuotedBytes = 80;

// `text` as a message quotes it: whole when short, else its first
// kMaxQuotedBytes (never splitting a UTF-8 character) and its full size:
// "aaaa... (5000000 bytes)". Every message that repeats input goes through it.
inline std::string clip(std::string_view text, std::size_t max_bytes = kMaxQuotedBytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // back to a character start
  return std::string(text.substr(0, cut)) + "... (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace blip
