#!/usr/bin/env python3
"""Reference outputs for blipcpp's generation loop, made by Hugging Face's own generate().

Run through the oracle environment (torch 1.13 + the transformers the fixtures came from):

    /work/shared/oracle/env.sh tests/oracle/make_generation_references.py [OUTDIR]

OUTDIR defaults to tests/data/generation next to this script's tests/ folder. It writes:

* toy_model_cases.json: a toy language model (seeded float32 tables) and many generate() calls on it
  (greedy, repetition penalty, min length, no-repeat n-gram, bad words, suppress / begin-suppress tokens,
  forced BOS / EOS, exponential decay length penalty, remove_invalid_values, renormalize_logits, beam search
  with every early_stopping mode, group beam search with diversity penalties and several
  num_return_sequences, length penalties, batches, inputs_embeds, two EOS ids, and sampling where the
  warpers (top-k, top-p, min-p, typical, epsilon, eta) leave one token: run under three torch seeds, which
  must agree). The C++ test implements the same toy model from the same tables and must reproduce every id
  exactly, every sequences_scores value to ~1e-5, and the number of forward calls HF made. Every option
  listed in a case's must_matter changes HF's output (checked by running the case without it).
* logits_processor_cases.json: fixed logits pushed through the processor list that HF's
  `_get_logits_processor` builds from a GenerationConfig (every processor and warper above, alone and
  together, with their min_tokens_to_keep; HammingDiversity with its current_tokens), with the processed
  scores and the softmax probabilities sampling would draw from; plus log_softmax rows, tie-breaking rows
  for top-p, min-p and typical-p, and InfNanRemove on NaN / inf.

Sibling: make_generation_model_references.py runs the same options on the fixture models.

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


def run_generate(model, case, check_sampling_is_deterministic=True):
    """Runs HF generate for one case and fills in its expected outputs. A sampling case must not depend on
    torch's generator (the warpers leave one token each step): it is run under three seeds, which must agree."""
    kwargs = hf_kwargs(case["options"])
    eos = case["eos"]
    called = []
    methods = ("_sample", "_beam_search", "_group_beam_search")
    for method in methods:
        original = getattr(model, method)

        def wrapper(*args, _original=original, _method=method, **kw):
            called.append(_method)
            return _original(*args, **kw)

        setattr(model, method, wrapper)
    call = dict(kwargs, eos_token_id=eos if len(eos) > 1 else eos[0], pad_token_id=case["pad"],
                return_dict_in_generate=True, output_scores=True)
    seeds = (0, 1, 2) if kwargs.get("do_sample") and check_sampling_is_deterministic else (0,)
    outputs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model.forward_calls = 0
        if "context" in case:
            embeds = torch.nn.functional.one_hot(torch.tensor(case["context"]), VOCAB).float()
            out = model.generate(inputs_embeds=embeds, **call)
        else:
            out = model.generate(input_ids=torch.tensor(case["prompts"]), **call)
        outputs.append(out)
    for method in methods:
        delattr(model, method)
    assert len(set(called)) == 1 and len(called) == len(seeds), called
    for other in outputs[1:]:
        assert torch.equal(other.sequences, outputs[0].sequences), \
            "%s: sampling depends on the seed; the C++ sampler cannot reproduce it" % case["name"]
    out = outputs[0]
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
    add_processor_generation_cases(add)
    add_group_beam_search_cases(add)
    return cases


def add_processor_generation_cases(add):
    """The processors of every strategy beyond the penalties above, alone and with beams and penalties; and
    sampling cases where the newer warpers leave one token per step (RNG-independent, checked)."""
    single = [[3], [17]]
    context = [[7, 11, 3], [13, 4, 8], [20, 9, 9]]
    # ---- NoBadWordsLogitsProcessor
    add("greedy_bad_words_single", "never", {"max_new_tokens": 8, "bad_words_ids": [[4], [12]]},
        must_matter=["bad_words_ids"])
    add("greedy_bad_words_sequences", "never", {"max_new_tokens": 10,
                                                "bad_words_ids": [[21, 22], [10, 11, 0], [9, 5], [2], [21, 22]]},
        must_matter=["bad_words_ids"], note="[2] is the EOS id alone: dropped; [21, 22] twice counts once")
    add("greedy_bad_words_longer_than_history", "never", {"max_new_tokens": 8,
                                                          "bad_words_ids": [[13, 4, 0], [4, 0, 21]]},
        must_matter=["bad_words_ids"], note="[13, 4, 0] is longer than the 2-id history when 0 would follow: "
                                            "HF skips it; [4, 0, 21] fits from the next step on")
    add("greedy_bad_words_inputs_embeds", "late", {"max_new_tokens": 10, "bad_words_ids": [[12], [0, 4]]},
        context=context, must_matter=["bad_words_ids"])
    # ---- SuppressTokens / SuppressTokensAtBegin
    add("greedy_suppress_tokens", "late", {"max_new_tokens": 12, "suppress_tokens": [0, 4]},
        must_matter=["suppress_tokens"])
    add("greedy_suppress_eos", "early", {"max_new_tokens": 9, "suppress_tokens": [EOS]},
        must_matter=["suppress_tokens"])
    add("greedy_begin_suppress_tokens", "early", {"max_new_tokens": 10, "begin_suppress_tokens": [14, 0, 12]},
        must_matter=["begin_suppress_tokens"])
    add("greedy_begin_suppress_inputs_embeds", "late", {"max_new_tokens": 8, "begin_suppress_tokens": [12, 1, 16]},
        context=context, must_matter=["begin_suppress_tokens"], note="empty input_ids: the first new token")
    # ---- ForcedBOSToken (history of exactly one id) / ForcedEOSToken (at max_length - 1)
    add("greedy_forced_bos", "early", {"max_new_tokens": 10, "forced_bos_token_id": 6}, prompts=single,
        must_matter=["forced_bos_token_id"])
    add("greedy_forced_bos_begin_suppress", "early", {"max_new_tokens": 10, "forced_bos_token_id": 6,
                                                      "begin_suppress_tokens": [8, 21, 13]},
        prompts=single, must_matter=["begin_suppress_tokens"],
        note="one-id prompt and a forced BOS: begin_suppress_tokens act one token later")
    add("greedy_forced_bos_two_id_prompt", "early", {"max_new_tokens": 8, "forced_bos_token_id": 6},
        note="a history never has exactly one id: nothing forced")
    add("greedy_forced_bos_inputs_embeds", "late", {"max_new_tokens": 8, "forced_bos_token_id": 6},
        context=context, must_matter=["forced_bos_token_id"], note="empty input_ids: forced as the SECOND new token")
    add("greedy_forced_eos", "never", {"max_new_tokens": 6, "forced_eos_token_id": EOS},
        must_matter=["forced_eos_token_id"])
    add("greedy_forced_eos_not_an_eos", "never", {"max_length": 9, "forced_eos_token_id": [7]},
        must_matter=["forced_eos_token_id"], note="7 is not an EOS id: forced, but the row does not finish")
    add("greedy_forced_eos_two", "never", {"max_new_tokens": 5, "forced_eos_token_id": [SECOND_EOS, EOS]},
        eos=(SECOND_EOS, EOS), must_matter=["forced_eos_token_id"])
    # ---- ExponentialDecayLengthPenalty, InfNanRemove, LogitNormalization
    add("greedy_exponential_decay", "late", {"max_new_tokens": 12, "exponential_decay_length_penalty": [2, 1.5]},
        must_matter=["exponential_decay_length_penalty"])
    add("greedy_exponential_decay_two_eos", "late", {"max_new_tokens": 12,
                                                     "exponential_decay_length_penalty": [3, 1.3]},
        eos=(SECOND_EOS, EOS), must_matter=["exponential_decay_length_penalty"])
    add("greedy_remove_invalid_values", "early", {"max_new_tokens": 10, "min_new_tokens": 4,
                                                  "remove_invalid_values": True, "bad_words_ids": [[0]]},
        note="the -inf bans become -FLT_MAX: the same ids")
    add("greedy_renormalize_everything", "late", {"max_new_tokens": 12, "repetition_penalty": 1.2,
                                                  "bad_words_ids": [[4, 0]], "suppress_tokens": [16],
                                                  "exponential_decay_length_penalty": [4, 1.2],
                                                  "renormalize_logits": True, "remove_invalid_values": True},
        must_matter=["bad_words_ids", "suppress_tokens", "exponential_decay_length_penalty"])

    # ---- beam search with them (processors act on log-probs; renormalize changes the running sums)
    add("beam3_bad_words", "early", {"num_beams": 3, "max_new_tokens": 12, "bad_words_ids": [[22, 4], [12]]},
        must_matter=["bad_words_ids"])
    add("beam3_suppress_and_begin_suppress", "late", {"num_beams": 3, "max_new_tokens": 10, "suppress_tokens": [21],
                                                      "begin_suppress_tokens": [14, 0, 12]},
        must_matter=["suppress_tokens", "begin_suppress_tokens"])
    add("beam3_forced_bos_nrs2", "early", {"num_beams": 3, "max_new_tokens": 10, "forced_bos_token_id": 6,
                                           "num_return_sequences": 2}, prompts=single,
        must_matter=["forced_bos_token_id"])
    add("beam3_forced_eos_nrs3", "never", {"num_beams": 3, "max_new_tokens": 6, "forced_eos_token_id": EOS,
                                           "num_return_sequences": 3}, must_matter=["forced_eos_token_id"])
    add("beam3_exponential_decay_lp_0.6", "late", {"num_beams": 3, "max_new_tokens": 12, "length_penalty": 0.6,
                                                   "exponential_decay_length_penalty": [3, 2.0]},
        must_matter=["exponential_decay_length_penalty"])
    add("beam3_renormalize_rep_1.3", "late", {"num_beams": 3, "max_new_tokens": 12, "repetition_penalty": 1.3,
                                              "renormalize_logits": True},
        must_matter=["renormalize_logits"])
    add("beam3_remove_invalid_min_new_tokens", "early", {"num_beams": 3, "max_new_tokens": 10, "min_new_tokens": 4,
                                                         "remove_invalid_values": True})
    add("beam4_everything_nrs2", "late", {"num_beams": 4, "num_return_sequences": 2, "max_new_tokens": 12,
                                          "repetition_penalty": 1.2, "no_repeat_ngram_size": 3,
                                          "bad_words_ids": [[0, 21], [9]], "suppress_tokens": [15],
                                          "begin_suppress_tokens": [14, 12], "min_new_tokens": 3,
                                          "exponential_decay_length_penalty": [5, 1.4], "forced_eos_token_id": EOS,
                                          "renormalize_logits": True, "length_penalty": 0.8},
        must_matter=["bad_words_ids", "suppress_tokens", "exponential_decay_length_penalty", "renormalize_logits"])
    add("beam3_inputs_embeds_forced_bos_bad_words", "late", {"num_beams": 3, "max_new_tokens": 9,
                                                             "forced_bos_token_id": 6, "bad_words_ids": [[6, 12]]},
        context=context, must_matter=["forced_bos_token_id", "bad_words_ids"])

    # ---- sampling where the newer warpers leave a single token (deterministic whatever the RNG)
    add("sample_typical_p_tiny", "late", {"do_sample": True, "top_k": 0, "typical_p": 0.02, "max_new_tokens": 12},
        must_matter=["typical_p"], note="the most typical token, which is not always the most probable")
    add("sample_min_p_high", "late", {"do_sample": True, "top_k": 0, "min_p": 1.0, "temperature": 0.5,
                                      "max_new_tokens": 12, "repetition_penalty": 1.3},
        must_matter=["min_p"])
    add("sample_epsilon_half", "early", {"do_sample": True, "top_k": 0, "epsilon_cutoff": 0.5,
                                         "max_new_tokens": 12, "bad_words_ids": [[0, 4]], "num_return_sequences": 2},
        must_matter=["epsilon_cutoff"], note="at most one token reaches 0.5; else the best is kept")
    add("sample_eta_high", "late", {"do_sample": True, "top_k": 0, "eta_cutoff": 0.99, "temperature": 0.05,
                                    "max_new_tokens": 12, "suppress_tokens": [4]},
        must_matter=["eta_cutoff"])
    add("sample_typical_after_top_k", "never", {"do_sample": True, "top_k": 4, "typical_p": 0.05,
                                                "max_new_tokens": 10}, must_matter=["typical_p"])


def add_group_beam_search_cases(add):
    """HF _group_beam_search (num_beam_groups > 1, diversity_penalty > 0) with BeamSearchScorer's groups."""
    add("group_beam4_g2_d0.5", "early", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5,
                                         "max_new_tokens": 12}, must_matter=["groups"])
    add("group_beam4_g2_d2_nrs2", "late", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 2.0,
                                           "num_return_sequences": 2, "max_new_tokens": 12}, must_matter=["groups"])
    add("group_beam4_g2_d1_nrs4", "late", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0,
                                           "num_return_sequences": 4, "max_new_tokens": 10}, must_matter=["groups"])
    add("group_beam6_g3_d1_nrs3_lp_0.6", "late", {"num_beams": 6, "num_beam_groups": 3, "diversity_penalty": 1.0,
                                                  "num_return_sequences": 3, "length_penalty": 0.6,
                                                  "max_new_tokens": 12}, must_matter=["groups"])
    add("group_beam4_g4_d0.7", "early", {"num_beams": 4, "num_beam_groups": 4, "diversity_penalty": 0.7,
                                         "num_return_sequences": 2, "max_new_tokens": 12},
        must_matter=["groups"], note="groups of one beam: two candidates per group")
    add("group_beam6_g2_d1.5_early_true_nrs3", "early", {"num_beams": 6, "num_beam_groups": 2,
                                                         "diversity_penalty": 1.5, "early_stopping": True,
                                                         "num_return_sequences": 3, "max_new_tokens": 12},
        must_matter=["groups"], note="groups finish at different steps; a finished group offers pad ids")
    for pad in (PAD, 23):
        add("group_beam4_g2_d2_finished_group_offers_pad_%d" % pad, "early",
            {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 2.0, "max_new_tokens": 12}, pad=pad,
            must_matter=["groups"], note="once group 0 of an entry is done it offers pad ids to group 1's diversity "
                                         "penalty: the ids differ between pad 0 and pad 23, not only the padding")
    add("group_beam4_g2_never", "early", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.8,
                                          "early_stopping": "never", "max_new_tokens": 12}, must_matter=["groups"])
    add("group_beam4_g2_lp_-0.5", "late", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.8,
                                           "length_penalty": -0.5, "max_new_tokens": 12}, must_matter=["groups"])
    add("group_beam4_g2_two_eos_nrs2", "late", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0,
                                                "num_return_sequences": 2, "max_new_tokens": 12},
        eos=(SECOND_EOS, EOS), must_matter=["groups", "eos"])
    add("group_beam4_g2_d10_never_eos", "never", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 10.0,
                                                  "num_return_sequences": 4, "max_new_tokens": 7},
        must_matter=["groups"], note="a large penalty: the groups never share a token at a step")
    add("group_beam4_g2_batch1", "early", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0,
                                           "max_new_tokens": 12}, prompts=[[7, 11]], must_matter=["groups"])
    add("group_beam4_g2_processors", "late", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0,
                                              "num_return_sequences": 2, "max_new_tokens": 12,
                                              "repetition_penalty": 1.3, "no_repeat_ngram_size": 2,
                                              "min_new_tokens": 3, "bad_words_ids": [[0, 4]],
                                              "suppress_tokens": [15]},
        must_matter=["groups", "repetition_penalty", "bad_words_ids"])
    add("group_beam4_g2_inputs_embeds", "early", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0,
                                                  "num_return_sequences": 2, "max_new_tokens": 10},
        context=[[7, 11, 3], [13, 4, 8], [20, 9, 9]], must_matter=["groups"])
    add("group_beam6_g3_forced_bos_renormalize", "late", {"num_beams": 6, "num_beam_groups": 3,
                                                           "diversity_penalty": 0.6, "forced_bos_token_id": 6,
                                                           "renormalize_logits": True, "max_new_tokens": 10,
                                                           "num_return_sequences": 2},
        prompts=[[3], [17]], must_matter=["groups", "forced_bos_token_id"])


# ------------------------------------------------------------------------------------------------
# logits processors on fixed logits
# ------------------------------------------------------------------------------------------------
def encode_score(x):
    """JSON cannot hold -inf, +inf or NaN: -inf is written as null, the other two as strings."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return None if x < 0 else "inf"
    return float(x)


def encode_scores(tensor):
    return [[encode_score(x) for x in row] for row in tensor.tolist()]


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

    # (name, GenerationConfig options, overrides). Overrides: "input_ids_length" keeps the first ids of each
    # row (HF cur_len), "prompt_length" is HF's input_ids_seq_length; "hamming": (current_tokens,
    # beam_group_idx), the rows being batch x group_size rows of one group; "tolerance": the processed scores
    # are compared within this relative tolerance (log_softmax rounding) instead of exactly.
    configs = [
        ("repetition_penalty_1.5", dict(repetition_penalty=1.5), {}),
        ("repetition_penalty_0.8", dict(repetition_penalty=0.8), {}),
        ("no_repeat_ngram_1", dict(no_repeat_ngram_size=1), {}),
        ("no_repeat_ngram_2", dict(no_repeat_ngram_size=2), {}),
        ("no_repeat_ngram_3", dict(no_repeat_ngram_size=3), {}),
        ("no_repeat_ngram_7", dict(no_repeat_ngram_size=7), {}),
        ("no_repeat_ngram_8", dict(no_repeat_ngram_size=8), {}),
        ("min_length_8", dict(min_length=8), {}),
        ("min_length_7", dict(min_length=7), {}),
        ("min_new_tokens_5", dict(min_new_tokens=5), {}),
        ("min_new_tokens_4", dict(min_new_tokens=4), {}),
        ("temperature_0.7", dict(do_sample=True, temperature=0.7, top_k=0), {}),
        ("temperature_1.3", dict(do_sample=True, temperature=1.3, top_k=0), {}),
        ("top_k_default_50", dict(do_sample=True), {}),
        ("top_k_5", dict(do_sample=True, top_k=5), {}),
        ("top_k_3_ties", dict(do_sample=True, top_k=3), {}),
        ("top_k_1", dict(do_sample=True, top_k=1), {}),
        ("top_k_1_beam_sample", dict(do_sample=True, top_k=1, num_beams=3), {}),
        ("top_p_0.9", dict(do_sample=True, top_k=0, top_p=0.9), {}),
        ("top_p_0.5", dict(do_sample=True, top_k=0, top_p=0.5), {}),
        ("top_p_0.3", dict(do_sample=True, top_k=0, top_p=0.3), {}),
        ("top_p_0.05", dict(do_sample=True, top_k=0, top_p=0.05), {}),
        ("top_p_0.05_beam_sample_two_eos", dict(do_sample=True, top_k=0, top_p=0.05, num_beams=2), {}),
        ("top_p_0.75", dict(do_sample=True, top_k=0, top_p=0.75), {}),
        ("top_p_0.95_top_k_10_temperature_0.8", dict(do_sample=True, top_k=10, top_p=0.95, temperature=0.8), {}),
        ("everything", dict(do_sample=True, top_k=8, top_p=0.8, temperature=1.7, repetition_penalty=1.2,
                            no_repeat_ngram_size=2, min_new_tokens=5), {}),
        # ---- NoBadWords: single ids, sequences ending each row, a sequence longer than the history (skipped
        # though its prefix matches), EOS ids alone (dropped), a repeated sequence
        ("bad_words_ids", dict(bad_words_ids=[[5], [11, 3], [7, 11, 4], [2, 1, 9], [29, 28, 17], [5], [6], [2],
                                              [3, 7, 7, 11, 3, 7, 11, 20], [8, 8]]), {}),
        ("bad_words_ids_short_history", dict(bad_words_ids=[[3, 7, 12], [1, 2, 13], [4, 4, 4, 14], [0, 16]]),
         {"input_ids_length": 2}),
        # ---- SuppressTokens / SuppressTokensAtBegin (at history length = prompt length, +1 after a forced BOS)
        ("suppress_tokens", dict(suppress_tokens=[0, 5, 29, 2]), {}),
        ("begin_suppress_tokens_at_begin", dict(begin_suppress_tokens=[1, 2, 3, 28]), {"prompt_length": 7}),
        ("begin_suppress_tokens_later", dict(begin_suppress_tokens=[1, 2, 3, 28]), {}),
        ("begin_suppress_tokens_after_forced_bos", dict(begin_suppress_tokens=[1, 2, 3], forced_bos_token_id=8),
         {"prompt_length": 1, "input_ids_length": 2}),
        # ---- ForcedBOS (history of one id) / ForcedEOS (history of max_length - 1 ids)
        ("forced_bos", dict(forced_bos_token_id=8), {"prompt_length": 1, "input_ids_length": 1}),
        ("forced_bos_not_first", dict(forced_bos_token_id=8), {}),
        ("forced_eos_eos_ids", dict(forced_eos_token_id=[2, 6], max_length=8), {}),
        ("forced_eos_other_id", dict(forced_eos_token_id=9, max_length=8), {}),
        ("forced_eos_not_last", dict(forced_eos_token_id=9, max_length=9), {}),
        # ---- InfNanRemove (-inf from row 3 and from min_length), ExponentialDecayLengthPenalty
        ("remove_invalid_values_min_length", dict(remove_invalid_values=True, min_length=8), {}),
        ("remove_invalid_values_then_suppress", dict(remove_invalid_values=True, forced_eos_token_id=9,
                                                     max_length=8, suppress_tokens=[3]), {}),
        ("exponential_decay_1.5", dict(exponential_decay_length_penalty=(2, 1.5)), {}),
        ("exponential_decay_0.5", dict(exponential_decay_length_penalty=(0, 0.5)), {}),
        ("exponential_decay_not_yet", dict(exponential_decay_length_penalty=(4, 1.5)), {}),
        # ---- LogitNormalization (log_softmax: within rounding)
        ("renormalize_logits", dict(renormalize_logits=True), {"tolerance": 2e-6}),
        ("renormalize_logits_after_warpers", dict(renormalize_logits=True, repetition_penalty=1.3, do_sample=True,
                                                  top_k=6, temperature=0.6), {"tolerance": 2e-6}),
        # ---- MinP / Typical / EpsilonCutoff / EtaCutoff, alone, in beam sampling (min_tokens_to_keep 3) and
        # after the other warpers
        ("min_p_0.1", dict(do_sample=True, top_k=0, min_p=0.1), {}),
        ("min_p_0.3", dict(do_sample=True, top_k=0, min_p=0.3), {}),
        ("min_p_0.9_beam_sample", dict(do_sample=True, top_k=0, min_p=0.9, num_beams=3), {}),
        ("min_p_1.0_beam_sample", dict(do_sample=True, top_k=0, min_p=1.0, num_beams=2), {}),
        ("typical_p_0.9", dict(do_sample=True, top_k=0, typical_p=0.9), {}),
        ("typical_p_0.5", dict(do_sample=True, top_k=0, typical_p=0.5), {}),
        ("typical_p_0.2", dict(do_sample=True, top_k=0, typical_p=0.2), {}),
        ("typical_p_0.01", dict(do_sample=True, top_k=0, typical_p=0.01), {}),
        ("typical_p_0.1_beam_sample", dict(do_sample=True, top_k=0, typical_p=0.1, num_beams=2), {}),
        ("epsilon_0.02", dict(do_sample=True, top_k=0, epsilon_cutoff=0.02), {}),
        ("epsilon_0.1", dict(do_sample=True, top_k=0, epsilon_cutoff=0.1), {}),
        ("epsilon_0.6_beam_sample", dict(do_sample=True, top_k=0, epsilon_cutoff=0.6, num_beams=2), {}),
        ("eta_0.001", dict(do_sample=True, top_k=0, eta_cutoff=0.001), {}),
        ("eta_0.05", dict(do_sample=True, top_k=0, eta_cutoff=0.05), {}),
        ("eta_0.5", dict(do_sample=True, top_k=0, eta_cutoff=0.5), {}),
        ("eta_0.9_beam_sample", dict(do_sample=True, top_k=0, eta_cutoff=0.9, num_beams=2), {}),
        ("all_warpers", dict(do_sample=True, temperature=0.8, top_k=12, top_p=0.97, min_p=0.02, typical_p=0.95,
                             epsilon_cutoff=0.01, eta_cutoff=0.01), {}),
        ("all_warpers_beam_sample", dict(do_sample=True, temperature=1.2, top_k=20, top_p=0.9, min_p=0.05,
                                         typical_p=0.9, epsilon_cutoff=0.005, eta_cutoff=0.002, num_beams=2), {}),
        ("every_processor", dict(do_sample=True, top_k=9, typical_p=0.9, repetition_penalty=1.2,
                                 no_repeat_ngram_size=2, bad_words_ids=[[7, 11, 4], [13]], min_new_tokens=5,
                                 exponential_decay_length_penalty=(1, 1.1), suppress_tokens=[25],
                                 begin_suppress_tokens=[26], remove_invalid_values=True), {"prompt_length": 7}),
        # ---- HammingDiversity: the 4 rows are group `beam_group_idx` of 2 entries x 2 beams; current_tokens
        # holds what every group chose at this step (only the earlier groups' count)
        ("diversity_0.7_group_1", dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.7),
         {"hamming": ([3, 3, 21, 22, 5, 7, 21, 22], 1)}),
        ("diversity_0.3_group_2_repetition", dict(num_beams=6, num_beam_groups=3, diversity_penalty=0.3,
                                                  repetition_penalty=1.4),
         {"hamming": ([9, 9, 9, 1, 20, 21, 0, 11, 0, 11, 20, 21], 2)}),
        ("diversity_group_0", dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.7),
         {"hamming": ([3, 3, 21, 22, 5, 7, 21, 22], 0)}),
    ]
    cases = []
    for name, options, overrides in configs:
        case_prompt_length = overrides.get("prompt_length", prompt_length)
        case_input_ids = input_ids[:, :overrides.get("input_ids_length", input_ids.shape[1])]
        generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=PAD, **options)
        if "min_new_tokens" in options:
            # _prepare_generated_length: min_new_tokens overrides min_length.
            generation_config.min_length = options["min_new_tokens"] + case_prompt_length
        model._prepare_special_tokens(generation_config)
        processors = model._get_logits_processor(
            generation_config=generation_config,
            input_ids_seq_length=case_prompt_length,
            encoder_input_ids=case_input_ids,
            prefix_allowed_tokens_fn=None,
            logits_processor=LogitsProcessorList(),
            device="cpu",
            model_kwargs={"use_cache": True},
        )
        if "hamming" in overrides:
            current_tokens, group = overrides["hamming"]
            processed = processors(case_input_ids, logits.clone(), current_tokens=torch.tensor(current_tokens),
                                   beam_group_idx=group)
        else:
            processed = processors(case_input_ids, logits.clone())
        probabilities = torch.softmax(processed, dim=-1)
        case = {
            "name": name,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "processors": [type(p).__name__ for p in processors],
            "processed": encode_scores(processed),
            # compared with a tolerance: 9 significant digits identify a float32
            "probabilities": [[float("%.9g" % x) for x in row] for row in probabilities.tolist()],
        }
        if "prompt_length" in overrides:
            case["prompt_length"] = case_prompt_length
        if "input_ids_length" in overrides:
            case["input_ids_length"] = overrides["input_ids_length"]
        if "hamming" in overrides:
            case["current_tokens"], case["beam_group_idx"] = overrides["hamming"]
        if "tolerance" in overrides:
            case["tolerance"] = overrides["tolerance"]
        cases.append(case)
    log_softmax = torch.log_softmax(logits, dim=-1)
    return {
        "eos": eos,
        "prompt_length": prompt_length,
        "input_ids": input_ids.tolist(),
        "logits": encode_scores(logits),
        "log_softmax": encode_scores(log_softmax),
        "cases": cases,
    }


def tie_rows(size, groups):
    return torch.tensor([[float((v * 7) % groups) for v in range(size)]])


def top_p_tie_cases():
    """torch.sort (unstable: std::sort on (value, index) pairs) decides which of several EQUAL logits
    straddling the top-p boundary are removed. Recorded at sizes where std::sort is an insertion sort (<= 16)
    and where it is an introsort (> 16)."""
    cases = []
    for size, groups, top_p in [(12, 3, 0.5), (20, 3, 0.5), (37, 4, 0.4), (50, 5, 0.55), (64, 3, 0.62)]:
        logits = tie_rows(size, groups)
        from transformers.generation.logits_process import TopPLogitsWarper
        processed = TopPLogitsWarper(top_p=top_p)(None, logits.clone())
        cases.append({"logits": encode_scores(logits), "top_p": top_p, "processed": encode_scores(processed)})
    return cases


def sorted_warper_tie_cases():
    """MinP's descending argsort and Typical's ascending sort decide which of several EQUAL scores survive
    through min_tokens_to_keep. Recorded on tie-heavy rows at insertion-sort and introsort sizes."""
    from transformers.generation.logits_process import MinPLogitsWarper, TypicalLogitsWarper
    cases = []
    for size, groups, keep in [(12, 3, 5), (20, 3, 8), (37, 4, 11), (50, 5, 13), (64, 3, 30)]:
        logits = tie_rows(size, groups) * 1.5
        min_p = MinPLogitsWarper(min_p=0.99, min_tokens_to_keep=keep)(None, logits.clone())
        cases.append({"warper": "min_p", "value": 0.99, "min_tokens_to_keep": keep, "logits": encode_scores(logits),
                      "processed": encode_scores(min_p)})
        typical = TypicalLogitsWarper(mass=0.05, min_tokens_to_keep=keep)(None, logits.clone())
        cases.append({"warper": "typical_p", "value": 0.05, "min_tokens_to_keep": keep,
                      "logits": encode_scores(logits), "processed": encode_scores(typical)})
    return cases


def invalid_value_cases():
    """InfNanRemoveLogitsProcessor on NaN, +inf and -inf, which the fixed logits above do not all hold."""
    from transformers.generation.logits_process import InfNanRemoveLogitsProcessor
    logits = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1.5, -2.0, 0.0, 3.4e38, -3.4e38]])
    processed = InfNanRemoveLogitsProcessor()(None, logits.clone())
    return {"logits": encode_scores(logits), "processed": encode_scores(processed)}


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
                elif key == "groups":  # group beam search -> plain beam search
                    del baseline["options"]["num_beam_groups"]
                    del baseline["options"]["diversity_penalty"]
                else:
                    del baseline["options"][key]
                baseline = run_generate(toy_models[case["model"]], baseline, check_sampling_is_deterministic=False)
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
        processors["sorted_warper_ties"] = sorted_warper_tie_cases()
        processors["invalid_values"] = invalid_value_cases()
    processors["provenance"] = provenance
    with open(os.path.join(outdir, "logits_processor_cases.json"), "w") as f:
        f.write(to_json(processors) + "\n")
    print("wrote", os.path.normpath(outdir))


if __name__ == "__main__":
    main()
