// Without CMake's blip::compiled: the one file of the program that compiles the code behind
// blip/api.hpp (stb style). The packaging test through pkg-config builds facade_caption this way.
#define BLIP_IMPLEMENTATION
#include <blip/api.hpp>
