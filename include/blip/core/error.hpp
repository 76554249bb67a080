// blip/core/error.hpp: the one exception type the library throws.
//
// Every failure a user can cause (a bad file, a missing tensor, a wrong argument)
// is reported as blip::Error with a message that names the file, tensor or
// argument and says what was expected. Internal invariants use the same type so
// that callers need a single catch.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace blip {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

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

}  // namespace blip
