// blip/core/error_type.hpp: the blip::Error class alone, for headers that must
// stay light (blip/api.hpp, the compiled facade). Everything else includes
// blip/core/error.hpp, which adds check(), fail() and clip().
#pragma once

#include <stdexcept>
#include <string>

namespace blip {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace blip
