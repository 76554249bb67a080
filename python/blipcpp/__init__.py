"""blipcpp: BLIP and BLIP-2 inference on the CPU, from Python.

The C++ library's three tasks, loaded from unmodified Hugging Face model folders (or Hub ids already in
the Hugging Face cache), with Hugging Face's results:

    import blipcpp
    captioner = blipcpp.Captioner.from_pretrained("Salesforce/blip-image-captioning-base")
    print(captioner.caption("photo.jpg", num_beams=3)[0].text)

Images are paths (str or os.PathLike; decoded by the library: EXIF rotation applied, converted to RGB,
as transformers' load_image), numpy uint8 arrays [height, width, 3] (RGB), or PIL images (converted
with .convert("RGB"), as Hugging Face's image processors do); one image, or a list of them (one batch,
the same results as one at a time). ``pixel_values=`` takes images already preprocessed instead:
float32 [batch, 3, height, width], e.g. ``BlipProcessor(images, return_tensors="np")["pixel_values"]``.

Generation options are Hugging Face's generate() keyword arguments (max_new_tokens, num_beams,
do_sample, temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size, length_penalty,
num_return_sequences, min_new_tokens, max_length, min_length, seed); what is not given is the model's
own default (its config.json, as generate() reads it). An unknown name is a TypeError.

Models run with Python's interpreter lock released, so other threads go on meanwhile, and one loaded
object may be used from several threads at once. Errors from the library (a missing folder, a bad
tensor, an unreadable image, options Hugging Face refuses) are blipcpp.Error, with a message naming
the file or argument; wrong Python arguments are TypeError or ValueError.
"""
import os

import numpy

from ._blipcpp import Caption, Error, GenerationOptions, __version__
from . import _blipcpp

__all__ = ["Captioner", "VisualQA", "ImageTextMatcher", "Caption", "GenerationOptions", "Error", "__version__"]

_GENERATION_FIELDS = ("max_new_tokens", "max_length", "min_new_tokens", "min_length", "num_beams", "do_sample",
                      "temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram_size",
                      "length_penalty", "num_return_sequences", "seed")


def _generation_options(defaults, arguments):
    """The model's defaults with the keyword arguments given applied."""
    for name in arguments:
        if name not in _GENERATION_FIELDS:
            raise TypeError(f"unknown generation option '{name}'; the options are: {', '.join(_GENERATION_FIELDS)}")
    for name, value in arguments.items():
        setattr(defaults, name, value)
    return defaults


def _is_pil_image(value):
    return hasattr(value, "convert") and hasattr(value, "mode") and hasattr(value, "size")


def _images(images):
    """(kind, items, single): kind "files" (paths) or "pixels" (C-contiguous uint8 RGB arrays)."""
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    if not items:
        raise ValueError("no images given")
    kinds, converted = [], []
    for index, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            kinds.append("files")
            converted.append(os.fspath(item))
        elif isinstance(item, numpy.ndarray):
            if item.dtype != numpy.uint8 or item.ndim != 3 or item.shape[2] != 3:
                raise ValueError(f"images[{index}]: expected a uint8 [height, width, 3] RGB array, got dtype "
                                 f"{item.dtype} and shape {item.shape}")
            kinds.append("pixels")
            converted.append(numpy.ascontiguousarray(item))
        elif _is_pil_image(item):
            kinds.append("pixels")
            converted.append(numpy.ascontiguousarray(numpy.asarray(item.convert("RGB"), dtype=numpy.uint8)))
        else:
            raise TypeError(f"images[{index}]: expected a path, a numpy uint8 [height, width, 3] array or a PIL "
                            f"image, got {type(item).__name__}")
        if kinds[-1] != kinds[0]:
            raise ValueError(f"images[{index}] is {'a file' if kinds[-1] == 'files' else 'pixels'} but images[0] "
                             f"is {'a file' if kinds[0] == 'files' else 'pixels'}; one call takes files or pixels, "
                             "not both")
    return kinds[0], converted, single


def _one_input(images, pixel_values):
    if (images is None) == (pixel_values is None):
        raise TypeError("give images or pixel_values (one of them)")


class _Task:
    """What the three tasks share: loading, and what was loaded. _native: the extension's class."""

    _native = None

    def __init__(self, task):
        self._task = task

    @classmethod
    def from_pretrained(cls, model, *, tokenizer=None, precision="as-stored", activations="f32", num_threads=0,
                        verbose=False):
        """A model folder or a cached Hub id. tokenizer: where its tokenizer files are (default: the model
        folder); precision: the Linear weights' ("as-stored", "f32", "bf16", "f16", "int8", "int4");
        activations: what narrow weights multiply ("f32", "bf16", "int8"); num_threads: 0 keeps OpenMP's
        default."""
        return cls(cls._native.load(model_dir=os.fspath(model),
                                    tokenizer_dir="" if tokenizer is None else os.fspath(tokenizer),
                                    precision=precision, activations=activations, num_threads=num_threads,
                                    verbose=verbose))

    @property
    def is_blip2(self):
        return self._task.is_blip2

    @property
    def model_dir(self):
        return self._task.model_dir


class Captioner(_Task):
    """Captioning: BLIP captioning models and BLIP-2 (OPT, Flan-T5)."""

    _native = _blipcpp.Captioner

    def default_options(self):
        """The model's generation defaults (a GenerationOptions to change and pass back as keywords)."""
        return self._task.default_options()

    def caption(self, images=None, prompt=None, *, pixel_values=None, **generation):
        """num_return_sequences Captions (text, token_ids, score) per image, best first: a list for one
        image, a list of lists for a list of images or for pixel_values. prompt: the caption continues it
        (conditional captioning); None or "": unconditional."""
        _one_input(images, pixel_values)
        options = _generation_options(self._task.default_options(), generation)
        prompt = "" if prompt is None else prompt
        if pixel_values is not None:
            return self._task.caption_pixel_values(pixel_values, prompt, options)
        kind, items, single = _images(images)
        call = self._task.caption_files if kind == "files" else self._task.caption_pixels
        result = call(items, prompt, options)
        return result[0] if single else result


class VisualQA(_Task):
    """Visual question answering: BLIP VQA models and BLIP-2 (asked "Question: {question} Answer:")."""

    _native = _blipcpp.VisualQA

    def default_options(self):
        return self._task.default_options()

    def answer(self, images=None, questions=None, *, pixel_values=None, **generation):
        """num_return_sequences answers (Captions) per question, best first: questions[i] is asked about
        image i. One image and one question (a str): a list; lists of them, or pixel_values: a list of
        lists."""
        _one_input(images, pixel_values)
        if questions is None:
            raise TypeError("answer() needs questions")
        single_question = isinstance(questions, str)
        question_list = [questions] if single_question else list(questions)
        options = _generation_options(self._task.default_options(), generation)
        if pixel_values is not None:
            return self._task.answer_pixel_values(pixel_values, question_list, options)
        kind, items, single = _images(images)
        if single != single_question:
            raise ValueError("give one image with one question (a str), or a list of images with a list of questions")
        call = self._task.answer_files if kind == "files" else self._task.answer_pixels
        result = call(items, question_list, options)
        return result[0] if single else result


class ImageTextMatcher(_Task):
    """Image-text matching and retrieval embeddings: BLIP ITM models and BLIP-2's Q-Former."""

    _native = _blipcpp.ImageTextMatcher

    def match(self, images=None, texts=None, *, pixel_values=None):
        """Every (image, text) pair: (match_probability, similarity), two float32 arrays [images, texts]:
        the ITM head's probability that the text describes the image, and the ITC cosine similarity (BLIP-2:
        the best query token's)."""
        _one_input(images, pixel_values)
        text_list = [texts] if isinstance(texts, str) else list(texts or [])
        if not text_list:
            raise ValueError("match() needs at least one text")
        if pixel_values is not None:
            return self._task.match_pixel_values(pixel_values, text_list)
        kind, items, _ = _images(images)
        return (self._task.match_files if kind == "files" else self._task.match_pixels)(items, text_list)

    def image_embeddings(self, images=None, *, pixel_values=None):
        """Unit vectors ITC compares, float32: [images, dimension] (BLIP), [images, query tokens, dimension]
        (BLIP-2). Always a batch, even for one image."""
        _one_input(images, pixel_values)
        if pixel_values is not None:
            return self._task.image_embeddings_pixel_values(pixel_values)
        kind, items, _ = _images(images)
        return (self._task.image_embeddings_files if kind == "files" else self._task.image_embeddings_pixels)(items)

    def text_embeddings(self, texts):
        """Unit vectors, float32 [texts, dimension]; a str counts as one text."""
        return self._task.text_embeddings([texts] if isinstance(texts, str) else list(texts))
