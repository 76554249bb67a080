#!/usr/bin/env python3
"""Reference outputs for blipcpp's caption and VQA metrics, made by the reference implementations.

The reference sources are NOT part of this repository. Get them and point this script at them:

    git clone https://github.com/salaniz/pycocoevalcap          # bleu/, cider/ (tested at ad63453)
    git clone https://github.com/GT-Vision-Lab/VQA              # vqaEval.py     (tested at a013f00)
    /usr/bin/python3 tests/oracle/make_evaluation_references.py \
        --pycocoevalcap pycocoevalcap --vqa VQA [--out tests/data/evaluation]

Needs Python 3 with numpy (Debian: python3-numpy); no Java. It writes into --out:

* caption_metric_cases.json: a few hundred random corpora of already tokenised captions (one
  candidate and 0..7 references per image) with pycocoevalcap's Bleu(4) and Cider() results: the
  corpus BLEU-1..4 ("closest" reference length), the per-image BLEU lists, the corpus CIDEr-D and the
  per-image CIDEr-D. Whitespace inside the strings varies (tabs, U+00A0, runs of spaces) because the
  scorers split with Python's str.split().
* vqa_cases.json: answer-normalisation strings with vqaEval.py's processPunctuation and
  processDigitArticle outputs, and random VQA-v2 style annotation/result sets with the script's
  accuracy per question (unrounded) and its overall / perQuestionType / perAnswerType figures.
* cli/: small COCO caption and VQA-v2 files for the blip_eval command-line test, with the scores the
  reference code gives. The captions there contain punctuation and clitics; pycocoevalcap would run
  Stanford's PTBTokenizer (Java) on them, which is not available here, so the tokenised form each one
  must take is written below by hand from PTBLexer.flex (CoreNLP 3.4.1) and the scorers run on that.

vqaEval.py is Python 2 code; its two `print "..."` statements are rewritten as calls when it is loaded
(nothing else changes). It reads `vqa.qa`, `vqaRes.qa` and `vqa.getQuesIds()`; small stand-ins for the
VQA helper class provide those, with the fields VQA.loadRes copies into each result.
"""
import argparse
import contextlib
import copy
import importlib.util
import io
import json
import os
import random
import re
import sys


def load_module(name, path, rewrite=None):
    source = open(path, encoding="utf-8").read()
    if rewrite:
        source = rewrite(source)
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def python2_prints_as_calls(source):
    return re.sub(r'^(\s*)print (".*")\s*$', r"\1print(\2)", source, flags=re.M)


# ---- captions ---------------------------------------------------------------------------------

WORDS = ("a a a the the of on in with man woman dog cat two sitting standing table street red "
         "white people next to large small bus train pizza field grass playing ball an is are "
         "near his her holding frisbee skateboard water beach").split()


def random_sentence(rng, length):
    return [rng.choice(WORDS) for _ in range(length)]


def perturb(rng, words):
    out = []
    for word in words:
        roll = rng.random()
        if roll < 0.12:
            continue
        if roll < 0.24:
            out.append(rng.choice(WORDS))
        elif roll < 0.30:
            out += [word, word]
        else:
            out.append(word)
    if rng.random() < 0.2:
        out.insert(rng.randrange(len(out) + 1), rng.choice(WORDS))
    return out


def join_words(rng, words):
    """Words joined as a tokenised caption; sometimes with other whitespace str.split() accepts."""
    if rng.random() < 0.85:
        return " ".join(words)
    text = ""
    for index, word in enumerate(words):
        text += (rng.choice([" ", "  ", "\t", "\u00a0", " \u3000"]) if index else "") + word
    return rng.choice(["", " ", "\u00a0"]) + text + rng.choice(["", " ", "\t"])


def random_caption_corpus(rng):
    num_images = rng.choice([1, 1, 2, 3] + list(range(4, 20)))
    candidates, references = [], []
    for _ in range(num_images):
        num_refs = rng.choice([1, 2, 3, 4, 5, 5, 5, 5, 6, 7])
        refs = []
        for _ in range(num_refs):
            length = rng.choice([0] + [rng.randint(1, 4)] + [rng.randint(5, 16)] * 8)
            refs.append(random_sentence(rng, length))
        roll = rng.random()
        if roll < 0.05:
            candidate = []
        elif roll < 0.12:
            candidate = random_sentence(rng, 1)
        elif roll < 0.20:
            candidate = list(rng.choice(refs))
        elif roll < 0.25:
            candidate = [rng.choice(WORDS)] * rng.randint(2, 9)  # clipping against reference counts
        elif roll < 0.35:
            candidate = random_sentence(rng, rng.randint(2, 18))
        else:
            candidate = perturb(rng, rng.choice(refs))
        candidates.append(join_words(rng, candidate))
        references.append([join_words(rng, ref) for ref in refs])
    return candidates, references


def caption_cases(refs_dir, rng, count):
    sys.path.insert(0, refs_dir)
    from bleu.bleu import Bleu  # noqa: E402 (the reference package, found through sys.path)
    from cider.cider import Cider

    cases = []
    for _ in range(count):
        candidates, references = random_caption_corpus(rng)
        gts = {index: refs for index, refs in enumerate(references)}
        res = {index: [candidate] for index, candidate in enumerate(candidates)}
        with contextlib.redirect_stdout(io.StringIO()):
            bleu, bleu_per_image = Bleu(4).compute_score(gts, res)
        cider, cider_per_image = Cider().compute_score(gts, res)
        cases.append({
            "candidates": candidates,
            "references": references,
            "bleu": [float(value) for value in bleu],
            "bleu_per_image": [[float(values[i]) for values in bleu_per_image] for i in range(len(candidates))],
            "cider": float(cider),
            "cider_per_image": [float(value) for value in cider_per_image],
        })
    return cases


def score_tokenised(refs_dir, references, candidates):
    """pycocoevalcap's scores on already tokenised captions, with COCOEvalCap's key names."""
    sys.path.insert(0, refs_dir)
    from bleu.bleu import Bleu
    from cider.cider import Cider
    gts = {index: refs for index, refs in enumerate(references)}
    res = {index: [candidate] for index, candidate in enumerate(candidates)}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"Bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    scores["CIDEr"] = float(cider)
    return scores


# ---- VQA --------------------------------------------------------------------------------------

ANSWER_FRAGMENTS = [
    "yes", "Yes", "YES", "no", "No", "2", "two", "Two", "none", "zero", "0", "ten", "10", "one",
    "a dog", "the dog", "dog", "dogs", "an apple", "A Dog", "red", "red.", "red!", "red,white",
    "red, white", "red/white", "red / white", "(red)", "[red]", "{red}", "red-white", "red - white",
    "1,000", "1000", "1, 000", "3.5", "3.5.", ".5", "5.", "a.m.", "p.m", "mr. smith", "e.g.",
    "dont", "don't", "Dont", "isnt", "isn't", "im", "Im", "Ive", "youre", "somebody'd", "yall",
    "wont", "cant", "thats", "let's", "hes", "it's", "its", "oclock", "ow's'at",
    "hello;world", "50%", "$5", "#1", "a+b", "x=y", "a_b", "<none>", "@home", "`tick`", '"quoted"',
    "back\\slash", "?", "!", "what?", "wow!!", "3:00", "tennis racket", "tennis racquet", "the the",
    "A THE An", "  spaced  ", "\tTab\t", "new\nline", "...", "....", "a...b", "1.2.3", "a . b",
    "one two three", "caf\u00e9", "CAF\u00c9", "na\u00efve", "\u00a0nbsp\u00a0", "stra\u00dfe",
]


def random_answer(rng):
    roll = rng.random()
    if roll < 0.75:
        return rng.choice(ANSWER_FRAGMENTS)
    if roll < 0.95:
        return " ".join(rng.choice(ANSWER_FRAGMENTS) for _ in range(rng.randint(2, 4)))
    if roll < 0.98:
        return "." * rng.randint(30, 40) + rng.choice(["", "x", "5"])  # more periods than the 32 periodStrip removes
    return ".a" * rng.randint(30, 36)


def normalization_strings(rng, count):
    fixed = list(ANSWER_FRAGMENTS) + [
        "", " ", "a", "the", "an", "A", "The", "a.b", "a,b", "1,2", "a, b", "a ,b", "(a)(b)", "x/y,1,2",
        "3.14.15", "..5", "5..", "....5....", "a . . . b", "." * 33, "." * 31 + "5" + "." * 5,
        "<=3.5", "<=.5", "none of them", "no one", "1 one", "one, two", "ten.", "Ten.",
    ]
    return fixed + [random_answer(rng) for _ in range(count)]


QUESTION_TYPES = ["what color is the", "how many", "is the", "what is", "none of the above", "are there"]
ANSWER_TYPES = ["yes/no", "number", "other"]


def random_vqa_set(rng, first_question_id):
    annotations, results = [], []
    for index in range(rng.randint(1, 12)):
        question_id = first_question_id + index
        roll = rng.random()
        num_answers = 10 if roll < 0.9 else rng.choice([1, 3, 5, 9, 11])
        pool = [random_answer(rng) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            answers = [pool[0]] * num_answers  # every human the same: no normalisation at all
        else:
            answers = [rng.choice(pool) for _ in range(num_answers)]
        records = [{"answer": text, "answer_confidence": rng.choice(["yes", "maybe", "no"]), "answer_id": i + 1}
                   for i, text in enumerate(answers)]
        if rng.random() < 0.1 and num_answers > 2:
            records[1] = copy.deepcopy(records[0])  # two identical records: vqaEval leaves both out together
        if rng.random() < 0.8:
            prediction = rng.choice(answers + pool)
            if rng.random() < 0.3:
                prediction = rng.choice([prediction.upper(), prediction + ".", " " + prediction + " ",
                                         "the " + prediction, prediction.replace(" ", "  ")])
        else:
            prediction = random_answer(rng)
        annotations.append({
            "question_id": question_id,
            "image_id": 1000 + index // 3,
            "question_type": rng.choice(QUESTION_TYPES),
            "answer_type": rng.choice(ANSWER_TYPES),
            "multiple_choice_answer": answers[0],
            "answers": records,
        })
        results.append({"question_id": question_id, "answer": prediction})
    rng.shuffle(results)
    return annotations, results


class VqaStandIn:
    """What VQAEval reads from the VQA helper class: qa (question id -> record) and getQuesIds()."""

    def __init__(self, records):
        self.qa = {record["question_id"]: record for record in records}
        self.question_ids = [record["question_id"] for record in records]

    def getQuesIds(self):
        return list(self.question_ids)


def run_vqa_eval(vqa_eval_module, annotations, results):
    annotations = copy.deepcopy(annotations)
    by_question = {record["question_id"]: record for record in annotations}
    loaded = []
    for result in copy.deepcopy(results):  # VQA.loadRes adds these fields from the annotation
        record = by_question[result["question_id"]]
        result.update(image_id=record["image_id"], question_type=record["question_type"],
                      answer_type=record["answer_type"])
        loaded.append(result)
    evaluator = vqa_eval_module.VQAEval(VqaStandIn(annotations), VqaStandIn(loaded), n=2)
    per_question = {}
    original_set = evaluator.setEvalQA

    def record_unrounded(question_id, accuracy):
        per_question[question_id] = accuracy
        original_set(question_id, accuracy)

    evaluator.setEvalQA = record_unrounded
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
    return evaluator.accuracy, per_question


def vqa_cases(vqa_dir, rng, set_count, string_count):
    path = os.path.join(vqa_dir, "PythonEvaluationTools", "vqaEvaluation", "vqaEval.py")
    module = load_module("vqaEval", path, python2_prints_as_calls)
    evaluator = module.VQAEval(VqaStandIn([]), VqaStandIn([]))
    normalization = []
    for text in normalization_strings(rng, string_count):
        punctuation = evaluator.processPunctuation(text)
        normalization.append({"text": text, "punctuation": punctuation,
                              "digit_article": evaluator.processDigitArticle(text),
                              "both": evaluator.processDigitArticle(punctuation)})
    sets = []
    for index in range(set_count):
        annotations, results = random_vqa_set(rng, 1 + 1000 * index)
        accuracy, per_question = run_vqa_eval(module, annotations, results)
        sets.append({"annotations": annotations, "results": results,
                     "per_question": [per_question[a["question_id"]] for a in annotations],
                     "overall": accuracy["overall"], "perQuestionType": accuracy["perQuestionType"],
                     "perAnswerType": accuracy["perAnswerType"]})
    return {"normalization": normalization, "sets": sets}, module


# ---- the command-line test's files ------------------------------------------------------------

# (raw caption, the tokenised form pycocoevalcap gives it): PTBTokenizer -preserveLines -lowerCase,
# then the PUNCTUATIONS tokens dropped. Worked out by hand from PTBLexer.flex (CoreNLP 3.4.1).
CLI_IMAGES = [
    (1, ["A man riding a wave on top of a surfboard.", "A surfer's riding a big wave!",
         "The man isn't falling off his board.", "A person (surfer) rides the ocean wave.",
         "Man on a surf-board, in the water."],
     "A man's riding a wave on a surfboard."),
    (2, ["Two dogs play with a frisbee in the park.", "Two dogs are playing \"catch\" outside.",
         "They're playing with a red-and-white frisbee.", "A dog jumps for a frisbee; another watches.",
         "Dogs at the park... having fun."],
     "Two dogs playing with a frisbee."),
    (3, ["A pizza with 3.5 toppings on a table.", "A large pizza that can't be eaten by one person.",
         "Pizza, salad and a glass of wine.", "A pizza cut into 8 slices on a wooden table.",
         "A delicious pizza -- with cheese."],
     "A pizza on a table with a glass of wine."),
]
CLI_TOKENISED = {
    "A man riding a wave on top of a surfboard.": "a man riding a wave on top of a surfboard",
    "A surfer's riding a big wave!": "a surfer 's riding a big wave",
    "The man isn't falling off his board.": "the man is n't falling off his board",
    "A person (surfer) rides the ocean wave.": "a person -lrb- surfer -rrb- rides the ocean wave",
    "Man on a surf-board, in the water.": "man on a surf-board in the water",
    "A man's riding a wave on a surfboard.": "a man 's riding a wave on a surfboard",
    "Two dogs play with a frisbee in the park.": "two dogs play with a frisbee in the park",
    "Two dogs are playing \"catch\" outside.": "two dogs are playing catch outside",
    "They're playing with a red-and-white frisbee.": "they 're playing with a red-and-white frisbee",
    "A dog jumps for a frisbee; another watches.": "a dog jumps for a frisbee another watches",
    "Dogs at the park... having fun.": "dogs at the park having fun",
    "Two dogs playing with a frisbee.": "two dogs playing with a frisbee",
    "A pizza with 3.5 toppings on a table.": "a pizza with 3.5 toppings on a table",
    "A large pizza that can't be eaten by one person.": "a large pizza that ca n't be eaten by one person",
    "Pizza, salad and a glass of wine.": "pizza salad and a glass of wine",
    "A pizza cut into 8 slices on a wooden table.": "a pizza cut into 8 slices on a wooden table",
    "A delicious pizza -- with cheese.": "a delicious pizza with cheese",
    "A pizza on a table with a glass of wine.": "a pizza on a table with a glass of wine",
}


def cli_files(refs_dir, vqa_module, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    images = [{"id": image_id, "file_name": f"COCO_val2014_{image_id:012d}.jpg"} for image_id, _, _ in CLI_IMAGES]
    images.append({"id": 4, "file_name": "COCO_val2014_000000000004.jpg"})  # not in the results: not scored
    annotations, next_id = [], 1
    for image_id, refs, _ in CLI_IMAGES + [(4, ["An image that is not scored."], None)]:
        for caption in refs:
            annotations.append({"image_id": image_id, "id": next_id, "caption": caption})
            next_id += 1
    results = [{"image_id": image_id, "caption": caption} for image_id, _, caption in reversed(CLI_IMAGES)]
    write_json(os.path.join(out_dir, "captions_annotations.json"),
               {"info": {"description": "blipcpp blip_eval test"}, "images": images, "annotations": annotations})
    write_json(os.path.join(out_dir, "captions_results.json"), results)
    # COCOEvalCap scores the images in the order of the annotation file's image list.
    references = [[CLI_TOKENISED[c] for c in refs] for _, refs, _ in CLI_IMAGES]
    candidates = [CLI_TOKENISED[caption] for _, _, caption in CLI_IMAGES]
    write_json(os.path.join(out_dir, "captions_expected.json"), score_tokenised(refs_dir, references, candidates))

    rng = random.Random(7)
    vqa_annotations, vqa_results = random_vqa_set(rng, 5000)
    questions = [{"question_id": a["question_id"], "image_id": a["image_id"], "question": f"question {a['question_id']}?"}
                 for a in vqa_annotations]
    header = {"info": {"description": "blipcpp blip_eval test"}, "task_type": "Open-Ended",
              "data_type": "mscoco", "data_subtype": "val2014", "license": {}}
    write_json(os.path.join(out_dir, "vqa_questions.json"), dict(header, questions=questions))
    write_json(os.path.join(out_dir, "vqa_annotations.json"), dict(header, annotations=vqa_annotations))
    write_json(os.path.join(out_dir, "vqa_results.json"), vqa_results)
    accuracy, _ = run_vqa_eval(vqa_module, vqa_annotations, vqa_results)
    write_json(os.path.join(out_dir, "vqa_expected.json"), accuracy)


def write_json(path, value, indent=None):
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(value, stream, ensure_ascii=False, indent=indent)
        stream.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pycocoevalcap", required=True, help="a pycocoevalcap checkout (holds bleu/ and cider/)")
    parser.add_argument("--vqa", required=True, help="a GT-Vision-Lab/VQA checkout")
    parser.add_argument("--out", default=os.path.join(here, "..", "data", "evaluation"))
    args = parser.parse_args()
    refs_dir = os.path.abspath(args.pycocoevalcap)
    os.makedirs(args.out, exist_ok=True)
    provenance = {"made_by": "tests/oracle/make_evaluation_references.py",
                  "python": sys.version.split()[0], "numpy": __import__("numpy").__version__}

    rng = random.Random(20240601)
    captions = caption_cases(refs_dir, rng, 300)
    write_json(os.path.join(args.out, "caption_metric_cases.json"),
               {"provenance": dict(provenance, reference="salaniz/pycocoevalcap bleu/ cider/"), "cases": captions})
    vqa, module = vqa_cases(args.vqa, rng, 250, 400)
    write_json(os.path.join(args.out, "vqa_cases.json"),
               dict({"provenance": dict(provenance, reference="GT-Vision-Lab/VQA vqaEval.py")}, **vqa))
    cli_files(refs_dir, module, os.path.join(args.out, "cli"))


if __name__ == "__main__":
    main()
