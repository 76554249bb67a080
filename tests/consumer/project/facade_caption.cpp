// The README's facade example ("Use it from C++"): the same program as the blip/blip.hpp one, written
// against blip/api.hpp alone, so this file compiles in about a second. The packaging tests build it
// against blip::compiled (find_package and add_subdirectory) and against an implementation file of
// its own (pkg-config, facade_implementation.cpp), and run it on the fixture model:
//   facade_caption [MODEL_DIR [IMAGE [TOKENIZER_DIR]]]
#include <blip/api.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  try {
    blip::api::LoadOptions load_options;
    if (argc > 3) load_options.tokenizer_dir = argv[3];  // the fixture model has no tokenizer files of its own
    blip::api::Captioner captioner =
        blip::api::Captioner::load(argc > 1 ? argv[1] : "models/blip-image-captioning-base", load_options);
    blip::api::CaptionOptions options = captioner.default_options();
    options.generation.num_beams = 3;
    std::printf("%s\n", captioner.caption(argc > 2 ? argv[2] : "photo.jpg", options).front().text.c_str());
  } catch (const blip::api::Error& error) {
    std::fprintf(stderr, "facade_caption: %s\n", error.what());
    return 1;
  }
}
