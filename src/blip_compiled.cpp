// blip::compiled: the code behind blip/api.hpp, compiled once into a static library, so that an
// application's own files include only the small facade header (blip/api.hpp explains both forms).
#define BLIP_IMPLEMENTATION
#include "blip/api.hpp"
