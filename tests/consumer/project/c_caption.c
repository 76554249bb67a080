/* The README's C example ("Use it from C"): caption an image through blip/blip.h and libblip.so.
 *   c_caption [MODEL_DIR [IMAGE [TOKENIZER_DIR]]]
 * The packaging tests build it against the installed library (find_package's blip::c, pkg-config's
 * blip-c) and the source tree (add_subdirectory), run it on the fixture model, and compare its line
 * with facade_caption's (the same options through the C++ facade). tests/c_api builds it as strict
 * C99 with every warning an error. */
#include <blip/blip.h>
#include <stdio.h>

int main(int argc, char** argv) {
  blip_load_options load_options = {0};
  blip_captioner* captioner = NULL;
  blip_generation_options options;
  blip_image image = {NULL, NULL, 0, 0};
  blip_texts* captions = NULL;
  int status = 1;

  if (argc > 3) load_options.tokenizer_dir = argv[3]; /* the fixture model has no tokenizer files of its own */
  if (blip_captioner_load(argc > 1 ? argv[1] : "models/blip-image-captioning-base", &load_options, &captioner) !=
      BLIP_OK) {
    fprintf(stderr, "c_caption: %s\n", blip_last_error());
    return 1;
  }
  image.path = argc > 2 ? argv[2] : "photo.jpg";
  if (blip_captioner_default_options(captioner, &options) == BLIP_OK) { /* the model's own defaults */
    options.num_beams = 3;
    if (blip_caption(captioner, &image, 1, NULL, &options, &captions) == BLIP_OK) {
      printf("%s\n", blip_texts_get(captions, 0, 0)->text);
      status = 0;
    }
  }
  if (status != 0) fprintf(stderr, "c_caption: %s\n", blip_last_error());
  blip_texts_free(captions);
  blip_captioner_free(captioner);
  return status;
}
