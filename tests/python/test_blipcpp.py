#!/usr/bin/env python3
"""The Python binding (python/blipcpp) against Hugging Face, on the fixture cases.

    PYTHONPATH=<build>/python test_blipcpp.py FIXTURES_DIR ASSETS_DIR

- Captioning from the fixtures' own pixel_values (inputs.safetensors): the token ids of every generate()
  call the oracle made without a prompt (greedy, beams, repetition and length penalties, two returned
  sequences) equal Hugging Face's (outputs.safetensors), for BLIP, BLIP-2 OPT and BLIP-2 Flan-T5, and the
  beam scores to 1e-4; BLIP-2's ITC image embeddings equal HF's to 1e-4 (max |diff| / max |ref|).
- Images as paths, numpy arrays and PIL images give the same results; a batch gives each image's own.
- The interpreter lock is released while a model runs: another Python thread keeps running meanwhile.
- Wrong arguments are TypeError / ValueError naming them; the library's refusals are blipcpp.Error with its
  message.
Exit status 77 (CTest: skipped) when the fixtures or assets are absent.
"""
import json
import os
import struct
import sys
import threading
import time
import unittest

import numpy

import blipcpp

FIXTURES, ASSETS = sys.argv[1], sys.argv[2]
TOKENIZERS = {"blip_caption": "blip-image-captioning-base", "blip_vqa": "blip-image-captioning-base",
              "blip_itm": "blip-image-captioning-base", "blip2_itm": "blip-image-captioning-base",
              "blip2_opt": "blip2-opt-2.7b", "blip2_t5": "blip2-flan-t5-xl"}
PHOTOS = [os.path.join(ASSETS, "images", name) for name in ("skimage_coffee.png", "skimage_rocket.jpg")]
# The oracle's generate() calls without a prompt that have GenerationOptions' counterparts (not early_stopping).
CALLS = {"greedy_ids": dict(max_new_tokens=12, num_beams=1),
         "beam_ids": dict(max_new_tokens=12, num_beams=3),
         "greedy_rep_ids": dict(num_beams=1, repetition_penalty=1.5, min_new_tokens=4, max_new_tokens=12),
         "beam_lp_ids": dict(num_beams=3, length_penalty=0.6, repetition_penalty=1.2, max_new_tokens=12),
         "beam_nrs_ids": dict(num_beams=4, num_return_sequences=2, max_new_tokens=10)}


def read_safetensors(path):
    """{name: numpy array} of a .safetensors file (the format: u64 header size, JSON header, data)."""
    with open(path, "rb") as file:
        content = file.read()
    (header_size,) = struct.unpack("<Q", content[:8])
    header = json.loads(content[8:8 + header_size])
    dtypes = {"F32": numpy.float32, "I64": numpy.int64, "F16": numpy.float16}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        data = content[8 + header_size + begin:8 + header_size + end]
        tensors[name] = numpy.frombuffer(data, dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def fixture(case):
    return os.path.join(FIXTURES, case)


def tokenizer(case):
    return os.path.join(ASSETS, "tokenizers", TOKENIZERS[case])


def relative_error(actual, expected):
    return float(numpy.max(numpy.abs(actual - expected)) / numpy.max(numpy.abs(expected)))


class AgainstHuggingFace(unittest.TestCase):
    def test_captions_from_pixel_values_are_hugging_faces(self):
        for case in ("blip_caption", "blip2_opt", "blip2_t5"):
            with self.subTest(case=case):
                captioner = blipcpp.Captioner.from_pretrained(fixture(case), tokenizer=tokenizer(case))
                pixel_values = read_safetensors(os.path.join(fixture(case), "inputs.safetensors"))["pixel_values"]
                outputs = read_safetensors(os.path.join(fixture(case), "outputs.safetensors"))
                with open(os.path.join(fixture(case), "generation_config.json")) as file:
                    pad = json.load(file).get("pad_token_id", 0)
                for call, arguments in CALLS.items():
                    captions = captioner.caption(pixel_values=pixel_values, **arguments)
                    returned = arguments.get("num_return_sequences", 1)
                    expected = outputs[call]
                    self.assertEqual(len(captions), pixel_values.shape[0])
                    for image, sequences in enumerate(captions):
                        self.assertEqual(len(sequences), returned)
                        for rank, caption in enumerate(sequences):
                            row = list(expected[image * returned + rank])
                            ids = list(caption.token_ids)
                            # HF pads the batch's shorter sequences with pad_token_id after their end.
                            self.assertEqual(ids, row[:len(ids)], f"{case} {call} image {image} rank {rank}")
                            self.assertTrue(all(token == pad for token in row[len(ids):]),
                                            f"{case} {call}: HF's row {row} goes on after {ids}")
                    if call == "beam_nrs_ids" and "beam_nrs_scores" in outputs:
                        scores = numpy.array([caption.score for sequences in captions for caption in sequences])
                        self.assertLess(relative_error(scores, outputs["beam_nrs_scores"]), 1e-4, case)

    def test_blip2_image_embeddings_are_hugging_faces(self):
        matcher = blipcpp.ImageTextMatcher.from_pretrained(fixture("blip2_itm"), tokenizer=tokenizer("blip2_itm"))
        pixel_values = read_safetensors(os.path.join(fixture("blip2_itm"), "inputs.safetensors"))["pixel_values"]
        expected = read_safetensors(os.path.join(fixture("blip2_itm"), "outputs.safetensors"))["itc_image_embeds"]
        embeddings = matcher.image_embeddings(pixel_values=pixel_values)
        self.assertEqual(embeddings.shape, expected.shape)
        self.assertLess(relative_error(embeddings, expected), 1e-4)
        # Float64 pixel values are converted on the way in, to the same result.
        numpy.testing.assert_array_equal(matcher.image_embeddings(pixel_values=pixel_values.astype(numpy.float64)),
                                         embeddings)


class ImageForms(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from PIL import Image
        cls.pil_images = [Image.open(PHOTOS[0]), Image.open(PHOTOS[1])]
        # The PNG decodes to the same pixels through Pillow and the library; a JPEG may not (another decoder).
        cls.png_pixels = numpy.asarray(cls.pil_images[0].convert("RGB"))

    def test_caption_forms_and_batches(self):
        captioner = blipcpp.Captioner.from_pretrained(fixture("blip_caption"), tokenizer=tokenizer("blip_caption"))
        self.assertFalse(captioner.is_blip2)
        by_path = captioner.caption(PHOTOS[0], num_beams=3, num_return_sequences=2)
        self.assertEqual(len(by_path), 2)
        self.assertTrue(all(isinstance(caption, blipcpp.Caption) for caption in by_path))
        for other in (captioner.caption(self.png_pixels, num_beams=3, num_return_sequences=2),
                      captioner.caption(self.pil_images[0], num_beams=3, num_return_sequences=2)):
            self.assertEqual([c.token_ids for c in other], [c.token_ids for c in by_path])
            self.assertEqual([c.score for c in other], [c.score for c in by_path])
        # A batch: each image's own ids; the prompt starts every caption.
        batch = captioner.caption(PHOTOS, prompt="a picture of", max_new_tokens=6)
        self.assertEqual(len(batch), 2)
        for path, captions in zip(PHOTOS, batch):
            alone = captioner.caption(path, prompt="a picture of", max_new_tokens=6)
            self.assertEqual(captions[0].token_ids, alone[0].token_ids)
            self.assertTrue(captions[0].text.startswith("a picture of"))
        # Defaults: the model's, and a GenerationOptions' fields are the keyword names.
        defaults = captioner.default_options()
        self.assertEqual(defaults.num_beams, 1)
        self.assertEqual(captioner.caption(PHOTOS[1])[0].token_ids,
                         captioner.caption(PHOTOS[1], num_beams=defaults.num_beams)[0].token_ids)

    def test_answers_and_matching_forms(self):
        visual_qa = blipcpp.VisualQA.from_pretrained(fixture("blip_vqa"), tokenizer=tokenizer("blip_vqa"))
        by_path = visual_qa.answer(PHOTOS[0], "what is in the cup?")
        self.assertEqual(len(by_path), 1)
        self.assertEqual(visual_qa.answer(self.png_pixels, "what is in the cup?")[0].token_ids, by_path[0].token_ids)
        batch = visual_qa.answer(PHOTOS, ["what is in the cup?", "where is it?"], num_beams=2)
        self.assertEqual(len(batch), 2)
        with self.assertRaisesRegex(ValueError, "one image with one question"):
            visual_qa.answer(PHOTOS, "what is it?")

        matcher = blipcpp.ImageTextMatcher.from_pretrained(fixture("blip_itm"), tokenizer=tokenizer("blip_itm"))
        texts = ["a cup of coffee", "a dog", "a rocket"]
        probabilities, similarities = matcher.match(PHOTOS, texts)
        self.assertEqual(probabilities.shape, (2, 3))
        self.assertTrue(((probabilities >= 0) & (probabilities <= 1)).all())
        images, text_vectors = matcher.image_embeddings(PHOTOS), matcher.text_embeddings(texts)
        self.assertEqual(images.shape[0], 2)
        numpy.testing.assert_allclose(numpy.linalg.norm(text_vectors, axis=1), 1, rtol=1e-5)
        numpy.testing.assert_allclose(images @ text_vectors.T, similarities, rtol=1e-5, atol=1e-6)
        png_probabilities, _ = matcher.match(self.png_pixels, texts)
        numpy.testing.assert_array_equal(png_probabilities[0], probabilities[0])


class InterpreterLock(unittest.TestCase):
    def test_other_threads_run_while_a_model_runs(self):
        captioner = blipcpp.Captioner.from_pretrained(fixture("blip_caption"), tokenizer=tokenizer("blip_caption"))
        # A call long enough to see: many large images, whose resizing dominates.
        images = [numpy.full((1500, 1500, 3), index, dtype=numpy.uint8) for index in range(12)]
        started, finished = threading.Event(), threading.Event()
        span = {}

        def run():
            started.set()
            span["begin"] = time.monotonic()
            captioner.caption(images, max_new_tokens=2)
            span["end"] = time.monotonic()
            finished.set()

        worker = threading.Thread(target=run)
        worker.start()
        started.wait()
        ticks = []
        while not finished.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)
        worker.join()
        duration = span["end"] - span["begin"]
        inside = [tick for tick in ticks if span["begin"] + 0.2 * duration < tick < span["end"] - 0.2 * duration]
        self.assertGreater(duration, 0.05, "the call was too short to tell")
        # Held through the call, the lock would have stopped this thread for all of it.
        self.assertGreater(len(inside), 5, f"this thread ran {len(inside)} times in the middle {0.6 * duration:.3f} s "
                                           "of the call")


class Errors(unittest.TestCase):
    def test_wrong_arguments_and_refused_input(self):
        with self.assertRaisesRegex(blipcpp.Error, "no_such_model_folder"):
            blipcpp.Captioner.from_pretrained(fixture("no_such_model_folder"))
        with self.assertRaisesRegex(blipcpp.Error, "LoadOptions::precision: 'int3'"):
            blipcpp.Captioner.from_pretrained(fixture("blip_caption"), tokenizer=tokenizer("blip_caption"),
                                              precision="int3")
        captioner = blipcpp.Captioner.from_pretrained(fixture("blip_caption"), tokenizer=tokenizer("blip_caption"))
        with self.assertRaisesRegex(blipcpp.Error, "no_such_photo.jpg"):
            captioner.caption(os.path.join(ASSETS, "images", "no_such_photo.jpg"))
        with self.assertRaisesRegex(TypeError, "unknown generation option 'beams'"):
            captioner.caption(PHOTOS[0], beams=3)
        with self.assertRaisesRegex(TypeError, "images or pixel_values"):
            captioner.caption()
        with self.assertRaisesRegex(ValueError, r"images\[1\]: expected a uint8 \[height, width, 3\] RGB array"):
            captioner.caption([numpy.zeros((4, 4, 3), numpy.uint8), numpy.zeros((4, 4), numpy.uint8)])
        with self.assertRaisesRegex(ValueError, r"images\[1\] is pixels but images\[0\] is a file"):
            captioner.caption([PHOTOS[0], numpy.zeros((4, 4, 3), numpy.uint8)])
        with self.assertRaisesRegex(TypeError, r"images\[0\]: expected a path"):
            captioner.caption(3)
        with self.assertRaisesRegex(ValueError, "no images given"):
            captioner.caption([])
        with self.assertRaisesRegex(ValueError, r"pixel_values must be \[batch, 3, height, width\], got shape \(3, 32, 32\)"):
            captioner.caption(pixel_values=numpy.zeros((3, 32, 32), numpy.float32))
        with self.assertRaisesRegex(blipcpp.Error, "pixel_values has shape"):
            captioner.caption(pixel_values=numpy.zeros((1, 3, 31, 32), numpy.float32))
        with self.assertRaisesRegex(blipcpp.Error, "num_return_sequences"):
            captioner.caption(PHOTOS[0], num_return_sequences=2)  # more than num_beams 1: HF refuses it too
        self.assertTrue(issubclass(blipcpp.Error, RuntimeError))


if __name__ == "__main__":
    needed = [fixture(case) for case in TOKENIZERS] + [tokenizer(case) for case in TOKENIZERS] + PHOTOS
    absent = [path for path in needed if not os.path.exists(path)]
    if absent:
        print(f"SKIPPED: {absent[0]} is absent (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)")
        sys.exit(77)
    unittest.main(argv=[sys.argv[0], "-v"])
