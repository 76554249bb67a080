#!/usr/bin/env python3
"""Reference outputs for blipcpp's generation loop, made by Hugging Face's own generate().

Run through the oracle environment (torch 1.13 + the transformers the fixtures came from):

    /work/shared/oracle/env.sh tests/oracle/make_generation_references.py [OUTDIR]

OUTDIR defaults to tests/data/generation next to this script's tests/ folder. It writes:

* toy_model_cases.json: a toy language model (seeded float32 tables) and many generate() calls on it
  (greedy, repetition penalty, min length, no-repeat n-gram, beam search with every early_stopping mode,
  length penalties, num_return_sequences, batches, inputs_embeds, two EOS ids, deterministic sampling).
  The C++ test implements the same toy model from the same tables and must reproduce every id exactly,
  every sequences_scores value to ~1e-5, and the number of forward calls HF made.
* logits_processor_cases.json: fixed logits pushed through the processor list that HF's
  `_get_logits_processor` builds from a GenerationConfig (repetition penalty, no-repeat n-gram, min length,
  min new tokens, temperature, top-k, top-p with their min_tokens_to_keep), with the processed scores and
  the softmax probabilities sampling would draw from; plus log_softmax rows.

The toy model. Vocabulary V, position table size P. For a row whose token history is h_0 .. h_{L-1}:

    logits = (A[h_{L-1}] + B[h_{L-2}]) + C[L-1]          (float32, in this order)

with B[V] (the extra last row) standing in for "no second-to-last token" when L == 1. Each "model"
variant replaces the EOS column of A and C (A[:, eos] and C[:, eos]) to make EOS likely early, late or
never. In the `inputs_embeds` cases the history starts with context tokens given as one-hot embeddings
(HF then holds an EMPTY input_ids, as for BLIP-2 + OPT); in the others it starts with the prompt ids.
"""
import json
import math
import os
import sys

import torch
from torch import nn

import transformers
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel
from transformers.generation.logits_process import LogitsProcessorList
from transformers.modeling_outputs import CausalLMOutputWithPast

torch.set_num_threads(1)

VOCAB = 24
POSITIONS = 48
EOS = 2
SECOND_EOS = 5
PAD = 0
SEED = 20240827


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------
def make_tables():
    generator = torch.Generator().manual_seed(SEED)
    A = torch.randn(VOCAB, VOCAB, generator=generator) * 1.5
    B = torch.randn(VOCAB + 1, VOCAB, generator=generator) * 0.75
    C = torch.randn(POSITIONS, VOCAB, generator=generator) * 0.25
    positions = torch.arange(POSITIONS, dtype=torch.float32)
    eos_rows = torch.randn(VOCAB, generator=generator) * 0.5
    # Each variant: the EOS column of A (per previous token) and of C (per position).
    variants = {
        # EOS likely after a few tokens.
        "early": (eos_rows + 1.5, (positions * 0.12).float()),
        # EOS unlikely at first, likely after ~8-12 tokens.
        "late": (eos_rows - 2.0, (positions * 0.35).float()),
        # EOS essentially never: every row runs to the maximum length.
        "never": (eos_rows - 30.0, torch.zeros(POSITIONS)),
    }
    return A.float(), B.float(), C.float(), variants


def variant_tables(A, C, variant):
    a_eos, c_eos = variant
    A = A.clone()
    C = C.clone()
    A[:, EOS] = a_eos
    C[:, EOS] = c_eos
    return A, C


# ------------------------------------------------------------------------------------------------
# the toy model, driven by HF generate()
# ------------------------------------------------------------------------------------------------
class ToyConfig(PretrainedConfig):
    model_type = "blipcpp_toy"

    def __init__(self, **kwargs):
        super().__init__(vocab_size=VOCAB, is_encoder_decoder=False, **kwargs)


class ToyLM(PreTrainedModel):
    config_class = ToyConfig
    main_input_name = "input_ids"

    def __init__(self, config, A, B, C):
        super().__init__(config)
        self.A = nn.Parameter(A, requires_grad=False)
        self.B = nn.Parameter(B, requires_grad=False)
        self.C = nn.Parameter(C, requires_grad=False)
        self.forward_calls = 0

    def _init_weights(self, module):
        pass

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, inputs_embeds=None, **kwargs):
        if past_key_values is not None:
            return {"input_ids": input_ids[:, -1:], "past_key_values": past_key_values}
        if inputs_embeds is not None:
            return {"inputs_embeds": inputs_embeds}
        return {"input_ids": input_ids}

    def forward(self, input_ids=None, inputs_embeds=None, past_key_values=None, attention_mask=None,
                return_dict=True, **kwargs):
        self.forward_calls += 1
        if past_key_values is not None:
            history = torch.cat([past_key_values[0], input_ids], dim=1)
        elif inputs_embeds is not None:
            history = inputs_embeds.argmax(dim=-1)
        else:
            history = input_ids
        length = history.shape[1]
        last = history[:, -1]
        previous = history[:, -2] if length >= 2 else torch.full_like(last, VOCAB)
        logits = (self.A[last] + self.B[previous]) + self.C[length - 1]
        return CausalLMOutputWithPast(logits=logits[:, None, :], past_key_values=(history,))

    def _reorder_cache(self, past_key_values, beam_idx):
        return tuple(t.index_select(0, beam_idx) for t in past_key_values)


# ------------------------------------------------------------------------------------------------
# options: blipcpp's GenerationOptions names -> HF generate kwargs
# ------------------------------------------------------------------------------------------------
def hf_kwargs(options):
    kwargs = dict(options)
    if "early_stopping" in kwargs and kwargs["early_stopping"] not in (True, False):
        assert kwargs["early_stopping"] == "never"
    kwargs.pop("seed", None)
    return kwargs


def run_generate(model, case):
    """Runs HF generate for one case and fills in its expected outputs."""
    kwargs = hf_kwargs(case["options"])
    eos = case["eos"]
    called = []
    for method in ("_sample", "_beam_search"):
        original = getattr(model, method)

        def wrapper(*args, _original=original, _method=method, **kw):
            called.append(_method)
            return _original(*args, **kw)

        setattr(model, method, wrapper)
    model.forward_calls = 0
    call = dict(kwargs, eos_token_id=eos if len(eos) > 1 else eos[0], pad_token_id=case["pad"],
                return_dict_in_generate=True, output_scores=True)
    if "context" in case:
        embeds = torch.nn.functional.one_hot(torch.tensor(case["context"]), VOCAB).float()
        out = model.generate(inputs_embeds=embeds, **call)
    else:
        out = model.generate(input_ids=torch.tensor(case["prompts"]), **call)
    for method in ("_sample", "_beam_search"):
        delattr(model, method)
    assert len(called) == 1, called
    case["hf_method"] = called[0]
    case["forward_calls"] = model.forward_calls
    case["sequences"] = out.sequences.tolist()
    if getattr(out, "sequences_scores", None) is not None:
        case["sequence_scores"] = [float(x) for x in out.sequences_scores.float()]
    case["hf_call"] = "model.generate(%s=..., %s)" % (
        "inputs_embeds" if "context" in case else "input_ids",
        ", ".join("%s=%r" % (k, v) for k, v in call.items()))
    return case


def generation_cases():
    three_prompts = [[7, 11], [13, 4], [20, 9]]
    cases = []

    def add(name, model, options, prompts=None, context=None, eos=(EOS,), pad=PAD, note="", must_matter=()):
        case = {"name": name, "model": model, "options": options, "eos": list(eos), "pad": pad, "note": note,
                "must_matter": list(must_matter)}
        if context is not None:
            case["context"] = context
        else:
            case["prompts"] = prompts if prompts is not None else three_prompts
        cases.append(case)

    # ---- greedy (HF _sample with do_sample=False), processors on the raw logits
    add("greedy_default_max_length", "late", {}, note="HF default max_length=20 counts the prompt")
    add("greedy_max_length_9", "late", {"max_length": 9}, must_matter=["max_length"])
    add("greedy_early_eos", "early", {"max_new_tokens": 12})
    add("greedy_late_eos", "late", {"max_new_tokens": 12})
    add("greedy_never_eos", "never", {"max_new_tokens": 7})
    add("greedy_max_new_overrides_max_length", "late", {"max_new_tokens": 6, "max_length": 30})
    add("greedy_repetition_penalty", "late", {"max_new_tokens": 12, "repetition_penalty": 1.5, "min_new_tokens": 4},
        must_matter=["repetition_penalty"])
    add("greedy_repetition_reward", "never", {"max_new_tokens": 10, "repetition_penalty": 0.7},
        must_matter=["repetition_penalty"])
    add("greedy_min_new_tokens", "early", {"max_new_tokens": 12, "min_new_tokens": 5}, must_matter=["min_new_tokens"])
    add("greedy_min_length", "early", {"max_new_tokens": 12, "min_length": 8}, must_matter=["min_length"])
    add("greedy_no_repeat_ngram_1", "never", {"max_new_tokens": 10, "no_repeat_ngram_size": 1},
        must_matter=["no_repeat_ngram_size"])
    add("greedy_no_repeat_ngram_2", "never", {"max_new_tokens": 16, "no_repeat_ngram_size": 2},
        must_matter=["no_repeat_ngram_size"])
    add("greedy_no_repeat_ngram_3", "never", {"max_new_tokens": 20, "no_repeat_ngram_size": 3},
        must_matter=["no_repeat_ngram_size"])
    add("greedy_two_eos", "late", {"max_new_tokens": 12}, eos=(SECOND_EOS, EOS), must_matter=["eos"])
    add("greedy_single_prompt_token", "early", {"max_new_tokens": 12}, prompts=[[3], [17]])
    add("greedy_inputs_embeds", "late", {"max_new_tokens": 12, "repetition_penalty": 1.5},
        context=[[7, 11, 3], [13, 4, 8], [20, 9, 9]], must_matter=["repetition_penalty"],
        note="empty input_ids: only new tokens count for the penalty")
    add("greedy_all_processors", "late", {"max_new_tokens": 14, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2,
                                          "min_length": 4, "min_new_tokens": 10},
        must_matter=["repetition_penalty", "no_repeat_ngram_size", "min_new_tokens"])
    add("greedy_pad_is_eos", "early", {"max_new_tokens": 12}, pad=EOS, must_matter=["pad"])

    # ---- beam search (HF _beam_search): processors on log_softmax, then + running sum
    add("beam3_default", "early", {"num_beams": 3, "max_new_tokens": 12})
    add("beam3_late", "late", {"num_beams": 3, "max_new_tokens": 12})
    add("beam2", "early", {"num_beams": 2, "max_new_tokens": 12})
    add("beam4", "late", {"num_beams": 4, "max_new_tokens": 12})
    add("beam5", "early", {"num_beams": 5, "max_new_tokens": 12})
    add("beam3_default_max_length", "late", {"num_beams": 3})
    add("beam3_max_length_8", "early", {"num_beams": 3, "max_length": 8}, must_matter=["max_length"])
    add("beam3_never_eos", "never", {"num_beams": 3, "max_new_tokens": 7},
        note="no hypothesis finishes: finalize adds the open beams")
    add("beam3_lp_0.6_rep_1.2", "late", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": 0.6,
                                          "repetition_penalty": 1.2},
        must_matter=["length_penalty", "repetition_penalty"])
    add("beam3_lp_2.0", "late", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": 2.0},
        must_matter=["length_penalty"])
    add("beam3_lp_0.0", "early", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": 0.0},
        must_matter=["length_penalty"])
    add("beam2_never", "early", {"num_beams": 2, "max_new_tokens": 12, "early_stopping": "never"},
        must_matter=["early_stopping"])
    add("beam3_lp_0.0_never", "early", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": 0.0,
                                        "early_stopping": "never"}, note="length_penalty <= 0: 'never' uses cur_len")
    add("beam3_lp_-0.5", "late", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": -0.5},
        must_matter=["length_penalty"])
    add("beam4_early_true", "early", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": True},
        must_matter=["early_stopping"])
    add("beam4_early_true_late", "late", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": True})
    add("beam4_early_false", "early", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": False})
    add("beam4_early_never", "early", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": "never"})
    add("beam4_early_never_late", "late", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": "never"})
    add("beam4_early_never_lp_-0.5", "late", {"num_beams": 4, "max_new_tokens": 12, "early_stopping": "never",
                                              "length_penalty": -0.5})
    add("beam4_early_never_lp_2.0_max_length", "early", {"num_beams": 4, "max_length": 16,
                                                         "early_stopping": "never", "length_penalty": 2.0})
    add("beam4_nrs2", "early", {"num_beams": 4, "num_return_sequences": 2, "max_new_tokens": 10})
    add("beam4_nrs2_late", "late", {"num_beams": 4, "num_return_sequences": 2, "max_new_tokens": 10})
    add("beam5_nrs3_lp_0.6", "late", {"num_beams": 5, "num_return_sequences": 3, "max_new_tokens": 12,
                                      "length_penalty": 0.6})
    add("beam3_nrs3_never_eos", "never", {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 6})
    add("beam3_min_new_tokens", "early", {"num_beams": 3, "max_new_tokens": 12, "min_new_tokens": 5},
        must_matter=["min_new_tokens"])
    add("beam3_min_length", "early", {"num_beams": 3, "max_new_tokens": 12, "min_length": 7},
        must_matter=["min_length"])
    add("beam3_no_repeat_ngram_2", "never", {"num_beams": 3, "max_new_tokens": 14, "no_repeat_ngram_size": 2},
        must_matter=["no_repeat_ngram_size"])
    add("beam3_two_eos", "late", {"num_beams": 3, "max_new_tokens": 12}, eos=(SECOND_EOS, EOS), must_matter=["eos"])
    add("beam3_two_eos_nrs2", "early", {"num_beams": 3, "max_new_tokens": 12, "num_return_sequences": 2},
        eos=(SECOND_EOS, EOS), must_matter=["eos"])
    add("beam3_batch1", "early", {"num_beams": 3, "max_new_tokens": 12}, prompts=[[7, 11]])
    add("beam3_long_prompt", "late", {"num_beams": 3, "max_new_tokens": 10, "length_penalty": 0.6},
        prompts=[[7, 11, 14, 7, 16, 9], [13, 4, 3, 3, 8, 1]])
    add("beam3_inputs_embeds", "early", {"num_beams": 3, "max_new_tokens": 12, "repetition_penalty": 1.2},
        context=[[7, 11, 3], [13, 4, 8], [20, 9, 9]], must_matter=["repetition_penalty"])
    add("beam4_inputs_embeds_nrs2", "late", {"num_beams": 4, "max_new_tokens": 10, "num_return_sequences": 2},
        context=[[7, 11], [13, 4]])
    add("beam3_pad_is_eos", "early", {"num_beams": 3, "max_new_tokens": 12}, pad=EOS, must_matter=["pad"])

    # ---- edges: a single new token, a minimum beyond the maximum (HF only warns)
    add("greedy_max_new_1", "early", {"max_new_tokens": 1})
    add("beam3_max_new_1", "early", {"num_beams": 3, "max_new_tokens": 1, "num_return_sequences": 3})
    add("beam2_max_length_prompt_plus_2", "early", {"num_beams": 2, "max_length": 4})
    add("greedy_min_new_exceeds_max", "early", {"max_new_tokens": 5, "min_new_tokens": 8})
    add("beam3_min_new_exceeds_max", "early", {"num_beams": 3, "max_new_tokens": 5, "min_new_tokens": 8})

    # ---- sampling (HF _sample with do_sample=True) where the warpers leave one token: RNG-independent
    add("sample_top_k_1", "late", {"do_sample": True, "top_k": 1, "temperature": 0.7, "max_new_tokens": 12,
                                   "repetition_penalty": 1.3}, must_matter=["repetition_penalty"])
    add("sample_top_p_tiny", "early", {"do_sample": True, "top_p": 0.01, "max_new_tokens": 12})
    add("sample_top_k_1_nrs3", "early", {"do_sample": True, "top_k": 1, "num_return_sequences": 3,
                                         "max_new_tokens": 10, "min_new_tokens": 2}, must_matter=["min_new_tokens"])
    return cases


# ------------------------------------------------------------------------------------------------
# logits processors on fixed logits
# ------------------------------------------------------------------------------------------------
def encode_scores(tensor):
    """JSON cannot hold -inf: it is written as null."""
    return [[None if math.isinf(x) and x < 0 else float(x) for x in row] for row in tensor.tolist()]


def processor_cases(model):
    generator = torch.Generator().manual_seed(SEED + 1)
    vocab = 30
    rows = 4
    logits = torch.randn(rows, vocab, generator=generator) * 2.0
    # Row 2 has ties at the top-k boundary and across the top-p boundary; row 3 carries -inf entries.
    logits[2] = torch.tensor([float(v % 5) * 0.75 for v in range(vocab)])
    logits[3, 4] = -math.inf
    logits[3, 9] = -math.inf
    input_ids = torch.tensor([
        [3, 7, 7, 11, 3, 7, 11],
        [1, 2, 1, 2, 1, 2, 1],
        [0, 5, 10, 15, 20, 25, 5],
        [4, 4, 4, 9, 28, 29, 28],
    ])
    prompt_length = 3
    eos = [2, 6]

    configs = [
        ("repetition_penalty_1.5", dict(repetition_penalty=1.5)),
        ("repetition_penalty_0.8", dict(repetition_penalty=0.8)),
        ("no_repeat_ngram_1", dict(no_repeat_ngram_size=1)),
        ("no_repeat_ngram_2", dict(no_repeat_ngram_size=2)),
        ("no_repeat_ngram_3", dict(no_repeat_ngram_size=3)),
        ("no_repeat_ngram_7", dict(no_repeat_ngram_size=7)),
        ("no_repeat_ngram_8", dict(no_repeat_ngram_size=8)),
        ("min_length_8", dict(min_length=8)),
        ("min_length_7", dict(min_length=7)),
        ("min_new_tokens_5", dict(min_new_tokens=5)),
        ("min_new_tokens_4", dict(min_new_tokens=4)),
        ("temperature_0.7", dict(do_sample=True, temperature=0.7, top_k=0)),
        ("temperature_1.3", dict(do_sample=True, temperature=1.3, top_k=0)),
        ("top_k_default_50", dict(do_sample=True)),
        ("top_k_5", dict(do_sample=True, top_k=5)),
        ("top_k_3_ties", dict(do_sample=True, top_k=3)),
        ("top_k_1", dict(do_sample=True, top_k=1)),
        ("top_k_1_beam_sample", dict(do_sample=True, top_k=1, num_beams=3)),
        ("top_p_0.9", dict(do_sample=True, top_k=0, top_p=0.9)),
        ("top_p_0.5", dict(do_sample=True, top_k=0, top_p=0.5)),
        ("top_p_0.3", dict(do_sample=True, top_k=0, top_p=0.3)),
        ("top_p_0.05", dict(do_sample=True, top_k=0, top_p=0.05)),
        ("top_p_0.05_beam_sample_two_eos", dict(do_sample=True, top_k=0, top_p=0.05, num_beams=2)),
        ("top_p_0.75", dict(do_sample=True, top_k=0, top_p=0.75)),
        ("top_p_0.95_top_k_10_temperature_0.8", dict(do_sample=True, top_k=10, top_p=0.95, temperature=0.8)),
        ("everything", dict(do_sample=True, top_k=8, top_p=0.8, temperature=1.7, repetition_penalty=1.2,
                            no_repeat_ngram_size=2, min_new_tokens=5)),
    ]
    cases = []
    for name, options in configs:
        generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=PAD, **options)
        if "min_new_tokens" in options:
            # _prepare_generated_length: min_new_tokens overrides min_length.
            generation_config.min_length = options["min_new_tokens"] + prompt_length
        model._prepare_special_tokens(generation_config)
        processors = model._get_logits_processor(
            generation_config=generation_config,
            input_ids_seq_length=prompt_length,
            encoder_input_ids=input_ids,
            prefix_allowed_tokens_fn=None,
            logits_processor=LogitsProcessorList(),
            device="cpu",
            model_kwargs={"use_cache": True},
        )
        processed = processors(input_ids, logits.clone())
        probabilities = torch.softmax(processed, dim=-1)
        cases.append({
            "name": name,
            "options": options,
            "processors": [type(p).__name__ for p in processors],
            "processed": encode_scores(processed),
            # compared with a tolerance: 9 significant digits identify a float32
            "probabilities": [[float("%.9g" % x) for x in row] for row in probabilities.tolist()],
        })
    log_softmax = torch.log_softmax(logits, dim=-1)
    return {
        "eos": eos,
        "prompt_length": prompt_length,
        "input_ids": input_ids.tolist(),
        "logits": encode_scores(logits),
        "log_softmax": encode_scores(log_softmax),
        "cases": cases,
    }


def top_p_tie_cases():
    """torch.sort (unstable: std::sort on (value, index) pairs) decides which of several EQUAL logits
    straddling the top-p boundary are removed. Recorded at sizes where std::sort is an insertion sort (<= 16)
    and where it is an introsort (> 16)."""
    cases = []
    for size, groups, top_p in [(12, 3, 0.5), (20, 3, 0.5), (37, 4, 0.4), (50, 5, 0.55), (64, 3, 0.62)]:
        logits = torch.tensor([[float((v * 7) % groups) for v in range(size)]])
        from transformers.generation.logits_process import TopPLogitsWarper
        processed = TopPLogitsWarper(top_p=top_p)(None, logits.clone())
        cases.append({"logits": encode_scores(logits), "top_p": top_p, "processed": encode_scores(processed)})
    return cases


def to_json(value, indent=0):
    """JSON with every list of numbers on one line (the files stay small and diffable)."""
    pad = " " * indent
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) or (isinstance(v, list) and len(v) < 16 and
                                                    all(not isinstance(x, (dict, list)) for x in v))
               for v in value.values()):
            return json.dumps(value, separators=(",", ": "))
        items = ['%s "%s": %s' % (pad, key, to_json(v, indent + 1)) for key, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [pad + " " + to_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(",", ":"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "generation")
    os.makedirs(outdir, exist_ok=True)

    A, B, C, variants = make_tables()
    models = {}
    toy_models = {}
    for name, variant in variants.items():
        A_variant, C_variant = variant_tables(A, C, variant)
        toy_models[name] = ToyLM(ToyConfig(), A_variant, B, C_variant).eval()
        models[name] = {"A_eos_column": [float(x) for x in variant[0]], "C_eos_column": [float(x) for x in variant[1]]}

    provenance = {
        "made_by": "tests/oracle/make_generation_references.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }

    cases = []
    with torch.no_grad():
        for case in generation_cases():
            cases.append(run_generate(toy_models[case["model"]], case))
        # A case whose option has no effect would test nothing: the same call without that option must
        # give other ids, other scores or another number of forward calls.
        failures = []
        for case in cases:
            for key in case.get("must_matter", []):
                baseline = json.loads(json.dumps(case))
                if key == "eos":
                    baseline["eos"] = [EOS]
                elif key == "pad":
                    baseline["pad"] = PAD
                else:
                    del baseline["options"][key]
                baseline = run_generate(toy_models[case["model"]], baseline)
                differs = any(baseline.get(field) != case.get(field)
                              for field in ("sequences", "sequence_scores", "forward_calls"))
                if not differs:
                    failures.append("%s: option %s changes nothing" % (case["name"], key))
    for case in cases:
        print("%-40s %-12s calls=%-3d T=%-3d" % (case["name"], case["hf_method"], case["forward_calls"],
                                                 len(case["sequences"][0])))
        for row in case["sequences"]:
            print("    ", row)
    assert not failures, failures

    toy = {
        "provenance": provenance,
        "description": __doc__,
        "vocab_size": VOCAB,
        "positions": POSITIONS,
        "eos_token_id": EOS,
        "second_eos_token_id": SECOND_EOS,
        "pad_token_id": PAD,
        "A": [[float(x) for x in row] for row in A.tolist()],
        "B": [[float(x) for x in row] for row in B.tolist()],
        "C": [[float(x) for x in row] for row in C.tolist()],
        "models": models,
        "cases": cases,
    }
    with open(os.path.join(outdir, "toy_model_cases.json"), "w") as f:
        f.write(to_json(toy) + "\n")

    with torch.no_grad():
        processors = processor_cases(toy_models["early"])
        processors["top_p_ties"] = top_p_tie_cases()
    processors["provenance"] = provenance
    with open(os.path.join(outdir, "logits_processor_cases.json"), "w") as f:
        f.write(to_json(processors) + "\n")
    print("wrote", os.path.normpath(outdir))


if __name__ == "__main__":
    main()
