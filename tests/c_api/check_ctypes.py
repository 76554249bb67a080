#!/usr/bin/env python3
"""libblip.so from another language: Python's ctypes, with nothing but the C header's declarations.

    check_ctypes.py LIBBLIP C_CAPTION FIXTURES_DIR ASSETS_DIR

On the fixture captioning model: the caption of a photo (3 beams, as c_caption asks for) must be the
line c_caption prints; a missing model folder must give BLIP_ERROR_FAILED, a NULL handle, and a message
naming the folder; on the fixture matching model, text embeddings must be unit vectors and blip_match's
similarity their dot product with the image's. Exit status 77 (skipped) when an input is absent.
"""
import ctypes
import math
import os
import subprocess
import sys

BLIP_OK, BLIP_ERROR_FAILED = 0, 2


class LoadOptions(ctypes.Structure):
    _fields_ = [("tokenizer_dir", ctypes.c_char_p), ("precision", ctypes.c_char_p),
                ("activations", ctypes.c_char_p), ("num_threads", ctypes.c_int), ("verbose", ctypes.c_int)]


class Image(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char_p), ("rgb", ctypes.POINTER(ctypes.c_uint8)),
                ("width", ctypes.c_int), ("height", ctypes.c_int)]


class GenerationOptions(ctypes.Structure):
    _fields_ = [("max_new_tokens", ctypes.c_int64), ("max_length", ctypes.c_int64),
                ("min_new_tokens", ctypes.c_int64), ("min_length", ctypes.c_int64),
                ("num_beams", ctypes.c_int64), ("do_sample", ctypes.c_int), ("temperature", ctypes.c_double),
                ("top_k", ctypes.c_int64), ("top_p", ctypes.c_double), ("repetition_penalty", ctypes.c_double),
                ("no_repeat_ngram_size", ctypes.c_int64), ("length_penalty", ctypes.c_double),
                ("num_return_sequences", ctypes.c_int64), ("seed", ctypes.c_uint64)]


class Text(ctypes.Structure):
    _fields_ = [("text", ctypes.c_char_p), ("token_ids", ctypes.POINTER(ctypes.c_int64)),
                ("token_count", ctypes.c_size_t), ("score", ctypes.c_float)]


class MatchScore(ctypes.Structure):
    _fields_ = [("match_probability", ctypes.c_float), ("similarity", ctypes.c_float)]


def declare(library):
    handle = ctypes.c_void_p
    signatures = {
        "blip_last_error": (ctypes.c_char_p, []),
        "blip_c_api_version": (ctypes.c_int, []),
        "blip_captioner_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(LoadOptions), ctypes.POINTER(handle)]),
        "blip_captioner_default_options": (ctypes.c_int, [handle, ctypes.POINTER(GenerationOptions)]),
        "blip_caption": (ctypes.c_int, [handle, ctypes.POINTER(Image), ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.POINTER(GenerationOptions), ctypes.POINTER(handle)]),
        "blip_texts_get": (ctypes.POINTER(Text), [handle, ctypes.c_size_t, ctypes.c_size_t]),
        "blip_texts_free": (None, [handle]),
        "blip_captioner_free": (None, [handle]),
        "blip_matcher_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(LoadOptions), ctypes.POINTER(handle)]),
        "blip_match": (ctypes.c_int, [handle, ctypes.POINTER(Image), ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p),
                                      ctypes.c_size_t, ctypes.POINTER(MatchScore)]),
        "blip_image_embeddings": (ctypes.c_int, [handle, ctypes.POINTER(Image), ctypes.c_size_t,
                                                 ctypes.POINTER(handle)]),
        "blip_text_embeddings": (ctypes.c_int, [handle, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                                ctypes.POINTER(handle)]),
        "blip_embeddings_get": (ctypes.POINTER(ctypes.c_float), [handle, ctypes.c_size_t,
                                                                 ctypes.POINTER(ctypes.c_size_t),
                                                                 ctypes.POINTER(ctypes.c_size_t)]),
        "blip_embeddings_free": (None, [handle]),
        "blip_matcher_free": (None, [handle]),
    }
    for name, (result, arguments) in signatures.items():
        function = getattr(library, name)
        function.restype, function.argtypes = result, arguments


def check(condition, message):
    if not condition:
        print("FAIL:", message)
        sys.exit(1)


def embedding(library, embeddings, index):
    vectors, dimension = ctypes.c_size_t(), ctypes.c_size_t()
    values = library.blip_embeddings_get(embeddings, index, ctypes.byref(vectors), ctypes.byref(dimension))
    check(bool(values), f"embedding {index} is missing")
    return [values[i] for i in range(vectors.value * dimension.value)], vectors.value, dimension.value


def main():
    library_path, c_caption, fixtures, assets = sys.argv[1:5]
    caption_model, match_model = os.path.join(fixtures, "blip_caption"), os.path.join(fixtures, "blip_itm")
    tokenizer = os.path.join(assets, "tokenizers", "blip-image-captioning-base")
    photo = os.path.join(assets, "images", "skimage_coffee.png")
    for needed in (caption_model, match_model, tokenizer, photo):
        if not os.path.exists(needed):
            print(f"SKIPPED: {needed} is absent (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)")
            sys.exit(77)
    library = ctypes.CDLL(library_path)
    declare(library)
    check(library.blip_c_api_version() == 1, "the library is not C API version 1, which this script declares")
    load = LoadOptions(tokenizer_dir=tokenizer.encode())

    # A missing folder: BLIP_ERROR_FAILED, no handle, the folder named.
    captioner = ctypes.c_void_p(1)
    missing = os.path.join(fixtures, "no_such_model_folder")
    status = library.blip_captioner_load(missing.encode(), ctypes.byref(load), ctypes.byref(captioner))
    message = library.blip_last_error().decode()
    check(status == BLIP_ERROR_FAILED and captioner.value is None and "no_such_model_folder" in message,
          f"a missing folder gave status {status}, handle {captioner.value}, message '{message}'")

    # The caption c_caption prints.
    status = library.blip_captioner_load(caption_model.encode(), ctypes.byref(load), ctypes.byref(captioner))
    check(status == BLIP_OK, library.blip_last_error().decode())
    options = GenerationOptions()
    check(library.blip_captioner_default_options(captioner, ctypes.byref(options)) == BLIP_OK, "default options")
    options.num_beams = 3
    image = Image(path=photo.encode())
    captions = ctypes.c_void_p()
    status = library.blip_caption(captioner, ctypes.byref(image), 1, None, ctypes.byref(options), ctypes.byref(captions))
    check(status == BLIP_OK, library.blip_last_error().decode())
    text = library.blip_texts_get(captions, 0, 0).contents
    caption = text.text.decode()
    ids = [text.token_ids[i] for i in range(text.token_count)]
    score = text.score
    library.blip_texts_free(captions)  # `text` points into the result: read it before this
    library.blip_captioner_free(captioner)
    expected = subprocess.run([c_caption, caption_model, photo, tokenizer], check=True, capture_output=True,
                              text=True).stdout.strip()
    check(caption == expected, f"ctypes captioned '{caption}', c_caption '{expected}'")
    check(ids[0] == 30522 and not math.isnan(score), f"ids {ids} (BLIP starts with [DEC] 30522), score {score}")
    print(f"caption: {caption} (ids {ids}, beam score {score:.4f})")

    # Matching: unit text vectors; the similarity is their dot product with the image's vector.
    matcher = ctypes.c_void_p()
    check(library.blip_matcher_load(match_model.encode(), ctypes.byref(load), ctypes.byref(matcher)) == BLIP_OK,
          library.blip_last_error().decode())
    texts = (ctypes.c_char_p * 2)(b"a cup of coffee", b"a dog")
    scores = (MatchScore * 2)()
    check(library.blip_match(matcher, ctypes.byref(image), 1, texts, 2, scores) == BLIP_OK,
          library.blip_last_error().decode())
    text_embeddings, image_embeddings = ctypes.c_void_p(), ctypes.c_void_p()
    check(library.blip_text_embeddings(matcher, texts, 2, ctypes.byref(text_embeddings)) == BLIP_OK, "text embeddings")
    check(library.blip_image_embeddings(matcher, ctypes.byref(image), 1, ctypes.byref(image_embeddings)) == BLIP_OK,
          "image embeddings")
    image_vector, _, _ = embedding(library, image_embeddings, 0)
    for index in range(2):
        values, vectors, dimension = embedding(library, text_embeddings, index)
        check(vectors == 1 and dimension == len(image_vector), f"text {index}: {vectors} x {dimension}")
        norm = math.sqrt(sum(value * value for value in values))
        check(abs(norm - 1) < 1e-5, f"text {index}: norm {norm}")
        dot = sum(a * b for a, b in zip(values, image_vector))
        check(abs(dot - scores[index].similarity) < 1e-5, f"text {index}: dot {dot}, similarity {scores[index].similarity}")
        check(0 <= scores[index].match_probability <= 1, f"text {index}: probability {scores[index].match_probability}")
        print(f"text {index}: similarity {scores[index].similarity:.6f}, match probability "
              f"{scores[index].match_probability:.6f}")
    library.blip_embeddings_free(text_embeddings)
    library.blip_embeddings_free(image_embeddings)
    library.blip_matcher_free(matcher)


if __name__ == "__main__":
    main()
