#!/usr/bin/env python3
"""HF generate() on the fixture models with the processors, warpers and group beam search of generation/.

Run through the oracle environment:

    /work/shared/oracle/env.sh tests/oracle/make_generation_model_references.py FIXTURES_DIR [OUTFILE]

FIXTURES_DIR holds the oracle's model cases (blip_caption, blip2_opt, blip2_t5: tiny random weights, real
vocabularies and special ids); OUTFILE defaults to tests/data/generation/model_cases.json. For each case
the model is loaded with from_pretrained and `model.generate(pixel_values=..., **options)` runs on the
case's own pixel_values (no prompt). This checks what the toy-model references cannot: the real decoders'
prompt lengths (BLIP [DEC]: 1 id; OPT fed by inputs_embeds: none, plus the BOS HF prepends; T5: the decoder
start id), which decide when forced_bos_token_id, begin_suppress_tokens, forced_eos_token_id and
exponential_decay_length_penalty act, and HF's own sessions feeding group beam search. Sampling cases are
kept only when three torch seeds give the same ids (the warpers leave one token per step).
"""
import json
import os
import sys

import torch

import transformers
from safetensors.torch import load_file
from transformers import Blip2ForConditionalGeneration, BlipForConditionalGeneration

torch.set_num_threads(1)

# Per fixture: (name, generate kwargs). Token ids are chosen among those the plain greedy call produces, so
# that banning or forcing them changes the output (checked below).
GROUP = {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0, "num_return_sequences": 2,
         "max_new_tokens": 8}


def options_for(greedy_rows, eos):
    """The option sets, built around the first two new ids of the greedy row with the most distinct ids."""
    first, second = max(greedy_rows, key=lambda row: len(set(row)))[:2]
    return [
        ("group_beam_search", dict(GROUP)),
        ("group_beam_search_6_3_processors", {"num_beams": 6, "num_beam_groups": 3, "diversity_penalty": 0.5,
                                              "num_return_sequences": 3, "max_new_tokens": 8,
                                              "repetition_penalty": 1.3, "suppress_tokens": [second]}),
        ("greedy_bad_words", {"max_new_tokens": 8, "bad_words_ids": [[first], [first, second], [second, 7]]}),
        ("greedy_suppress_begin_suppress", {"max_new_tokens": 8, "suppress_tokens": [second],
                                            "begin_suppress_tokens": [first]}),
        ("greedy_forced_bos", {"max_new_tokens": 8, "forced_bos_token_id": 1000}),
        ("greedy_forced_bos_begin_suppress", {"max_new_tokens": 8, "forced_bos_token_id": 1000,
                                              "begin_suppress_tokens": [first, second]}),
        ("greedy_forced_eos_exponential_decay", {"max_new_tokens": 8, "forced_eos_token_id": 1001,
                                                 "exponential_decay_length_penalty": [2, 1.8]}),
        ("beam3_renormalize_remove_invalid", {"num_beams": 3, "max_new_tokens": 8, "renormalize_logits": True,
                                              "remove_invalid_values": True, "min_new_tokens": 3,
                                              "bad_words_ids": [[second]]}),
        ("sample_top_k_typical_p", {"do_sample": True, "top_k": 3, "typical_p": 0.001, "max_new_tokens": 8}),
        ("sample_min_p_epsilon_eta", {"do_sample": True, "top_k": 0, "min_p": 1.0, "epsilon_cutoff": 0.2,
                                      "eta_cutoff": 0.2, "max_new_tokens": 8, "suppress_tokens": [first]}),
    ]


def load(kind, directory):
    model_class = Blip2ForConditionalGeneration if kind.startswith("blip2") else BlipForConditionalGeneration
    return model_class.from_pretrained(directory).eval()


def new_tokens(sequences, prefix_length):
    return [row[prefix_length:] for row in sequences.tolist()]


def main():
    fixtures = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    outfile = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "data", "generation", "model_cases.json")
    result = {
        "provenance": {"made_by": "tests/oracle/make_generation_model_references.py",
                       "transformers_version": transformers.__version__, "torch_version": torch.__version__},
        "description": __doc__,
        "fixtures": [],
    }
    for fixture in ("blip_caption", "blip2_opt", "blip2_t5"):
        directory = os.path.join(fixtures, fixture)
        model = load(fixture, directory)
        pixel_values = load_file(os.path.join(directory, "inputs.safetensors"))["pixel_values"]
        # What the returned rows start with: BLIP [DEC], BLIP-2 + OPT the BOS HF prepends, T5 the start id.
        prefix_length = 1
        with torch.no_grad():
            greedy = model.generate(pixel_values=pixel_values, max_new_tokens=8)
            eos = model.config.text_config.sep_token_id if fixture == "blip_caption" else None
            cases = []
            for name, options in options_for(new_tokens(greedy, prefix_length), eos):
                if fixture.startswith("blip2"):
                    # Blip2ForConditionalGeneration.generate prepends one BOS per image, which fails for
                    # more than one returned sequence per image in this HF version.
                    options.pop("num_return_sequences", None)
                outputs = []
                for seed in ((0, 1, 2) if options.get("do_sample") else (0,)):
                    torch.manual_seed(seed)
                    try:
                        outputs.append(model.generate(pixel_values=pixel_values, return_dict_in_generate=True,
                                                      output_scores=True, **options))
                    except RuntimeError:
                        # HF's group beam search fails to build beam_indices (needed for sequences_scores)
                        # when the language model starts from inputs_embeds: ids only then.
                        assert options.get("num_beam_groups", 1) > 1 and fixture == "blip2_opt"
                        outputs.append(model.generate(pixel_values=pixel_values, return_dict_in_generate=True,
                                                      **options))
                for other in outputs[1:]:
                    assert torch.equal(other.sequences, outputs[0].sequences), "%s/%s depends on the seed" % (
                        fixture, name)
                out = outputs[0]
                assert out.sequences.shape != greedy.shape or not torch.equal(out.sequences, greedy), \
                    "%s/%s: the options change nothing" % (fixture, name)
                case = {"name": name, "options": options, "sequences": out.sequences.tolist()}
                if getattr(out, "sequences_scores", None) is not None:
                    case["sequence_scores"] = [float(x) for x in out.sequences_scores.float()]
                cases.append(case)
                print("%-14s %-36s" % (fixture, name), out.sequences.tolist()[0])
        result["fixtures"].append({"fixture": fixture, "greedy": greedy.tolist(), "cases": cases})
    with open(outfile, "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")
    print("wrote", os.path.normpath(outfile))


if __name__ == "__main__":
    main()
