"""Writes tests/data/config_expectations.json: Hugging Face's own reading of
config.json / generation_config.json for every fixture, the real checkpoint
configs in the assets, and hand-written edge cases, restricted to the keys
blip/io/config.hpp models. io_config_test.cpp compares the C++ parser with it
field by field (no Python at test time).

Run through the oracle environment (transformers 4.45.0.dev0, the fixtures'
version), from the repository root:
  /work/shared/oracle/env.sh tests/data/make_config_expectations.py \
      /work/shared/fixtures /work/shared/assets tests/data/config_expectations.json
"""
import json
import os
import sys
import tempfile

from transformers import Blip2Config, BlipConfig, GenerationConfig

COMMON = ["model_type", "architectures", "bos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
          "eos_token_id", "tie_word_embeddings", "is_encoder_decoder", "is_decoder", "add_cross_attention",
          "torch_dtype"]
KEYS = {
    "blip_vision_model": COMMON + ["hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                                   "num_attention_heads", "image_size", "patch_size", "num_channels", "hidden_act",
                                   "layer_norm_eps"],
    "blip_text_model": COMMON + ["vocab_size", "hidden_size", "encoder_hidden_size", "intermediate_size",
                                 "projection_dim", "num_hidden_layers", "num_attention_heads",
                                 "max_position_embeddings", "hidden_act", "layer_norm_eps", "use_cache"],
    "blip": COMMON + ["text_config", "vision_config", "projection_dim", "image_text_hidden_size"],
    "blip_2_vision_model": COMMON + ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                     "image_size", "patch_size", "num_channels", "hidden_act", "layer_norm_eps",
                                     "qkv_bias"],
    "blip_2_qformer": COMMON + ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size", "hidden_act", "max_position_embeddings", "layer_norm_eps",
                                "position_embedding_type", "cross_attention_frequency", "encoder_hidden_size",
                                "use_qformer_text_input"],
    "opt": COMMON + ["vocab_size", "hidden_size", "num_hidden_layers", "ffn_dim", "max_position_embeddings",
                     "do_layer_norm_before", "_remove_final_layer_norm", "word_embed_proj_dim",
                     "num_attention_heads", "activation_function", "enable_bias", "layer_norm_elementwise_affine",
                     "use_cache"],
    "t5": COMMON + ["vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
                    "relative_attention_num_buckets", "relative_attention_max_distance", "layer_norm_epsilon",
                    "feed_forward_proj", "dense_act_fn", "is_gated_act", "use_cache"],
    "blip-2": COMMON + ["vision_config", "qformer_config", "text_config", "num_query_tokens",
                        "image_text_hidden_size", "image_token_index", "use_decoder_only_language_model"],
}
GENERATION_KEYS = [
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "early_stopping", "do_sample", "num_beams",
    "num_beam_groups", "use_cache", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff",
    "eta_cutoff", "diversity_penalty", "repetition_penalty", "encoder_repetition_penalty", "length_penalty",
    "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "renormalize_logits",
    "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
    "suppress_tokens", "begin_suppress_tokens", "num_return_sequences", "output_scores", "return_dict_in_generate",
    "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"]


def restrict(dictionary):
    """The keys config.hpp models, recursively (sub-configs by their model_type)."""
    keys = KEYS[dictionary["model_type"]]
    out = {}
    for key in keys:
        if key == "num_channels":
            # Not a constructor argument: present only when config.json has it; the
            # patch embedding is hard-wired to in_channels=3 either way.
            out[key] = dictionary.get(key, 3)
            continue
        value = dictionary[key]  # KeyError here means the key list is wrong
        if isinstance(value, dict) and "model_type" in value:
            value = restrict(value)
        out[key] = value
    return out


def restrict_generation(generation_config, only_non_default=True):
    """The modelled keys; by default only those differing from GenerationConfig() (the
    file stores the defaults once, as "generation_defaults")."""
    dictionary = generation_config.to_dict()
    defaults = GenerationConfig().to_dict()
    return {key: dictionary[key] for key in GENERATION_KEYS
            if not only_non_default or dictionary[key] != defaults[key]}


def hf_view(directory):
    with open(os.path.join(directory, "config.json")) as handle:
        model_type = json.load(handle)["model_type"]
    config_class = {"blip": BlipConfig, "blip-2": Blip2Config}[model_type]
    config = config_class.from_pretrained(directory)
    generation_path = os.path.join(directory, "generation_config.json")
    if os.path.exists(generation_path):
        generation, origin = GenerationConfig.from_pretrained(directory), "file"
    else:
        # what PreTrainedModel.from_pretrained keeps when the file is missing
        generation, origin = GenerationConfig.from_model_config(config), "model_config"
    return {
        "config": restrict(config.to_dict()),
        "architecture": (config.architectures or [""])[0],
        "generation_config": restrict_generation(generation),
        "generation_origin": origin,
        # BLIP's text_decoder / BLIP-2's language_model are built from text_config
        # and generate with this (they never read generation_config.json)
        "language_model_generation_config": restrict_generation(
            GenerationConfig.from_model_config(config.text_config)),
    }


# Hand-written configs: HF defaults, nulls, aliases, overrides, derived fields.
INLINE = [
    ("blip_empty", {"model_type": "blip"}, None),
    ("blip2_empty", {"model_type": "blip-2"}, None),
    ("blip_null_subconfigs",
     {"model_type": "blip", "architectures": ["BlipModel"], "text_config": None, "vision_config": None}, None),
    ("blip_overrides",
     {"model_type": "blip", "architectures": ["BlipForQuestionAnswering"], "tie_word_embeddings": False,
      "projection_dim": 256, "image_text_hidden_size": 128, "max_length": 40, "num_beams": 3,
      "text_config": {"bos_token_id": None, "eos_token_id": [2, 102], "pad_token_id": 5, "sep_token_id": 7,
                      "tie_word_embeddings": False, "hidden_act": "gelu_new", "is_decoder": False,
                      "hidden_size": 64, "num_attention_heads": 4, "encoder_hidden_size": 999, "vocab_size": 100,
                      "max_position_embeddings": 40, "layer_norm_eps": 1e-6, "use_cache": False,
                      "length_penalty": 0.5, "intermediate_size": 100, "num_hidden_layers": 3,
                      "projection_dim": 32, "model_type": "blip_text_model"},
      "vision_config": {"layer_norm_eps": 1e-6, "projection_dim": 256, "hidden_size": 48,
                        "num_attention_heads": 3, "image_size": 64, "patch_size": 8, "torch_dtype": "float16",
                        "intermediate_size": 96, "num_hidden_layers": 5, "hidden_act": "quick_gelu"}}, None),
    ("blip2_t5_aliases",
     {"model_type": "blip-2", "architectures": ["Blip2ForConditionalGeneration"], "num_query_tokens": 8,
      "is_encoder_decoder": False, "use_decoder_only_language_model": True, "tie_word_embeddings": True,
      "text_config": {"model_type": "t5", "feed_forward_proj": "gated-silu", "hidden_size": 64,
                      "num_attention_heads": 4, "num_hidden_layers": 3, "d_kv": 16, "tie_word_embeddings": False,
                      "decoder_start_token_id": 0, "vocab_size": 500}}, None),
    ("blip2_t5_plain_activation",
     {"model_type": "blip-2",
      "text_config": {"model_type": "t5", "feed_forward_proj": "gelu", "num_layers": 2, "num_decoder_layers": None,
                      "relative_attention_num_buckets": 16, "relative_attention_max_distance": 64,
                      "layer_norm_epsilon": 1e-5, "is_gated_act": True, "d_ff": 100, "num_heads": 3}}, None),
    ("blip2_opt_variants",
     {"model_type": "blip-2", "architectures": ["Blip2ForImageTextRetrieval"], "tie_word_embeddings": False,
      "use_decoder_only_language_model": False, "image_token_index": 7, "image_text_hidden_size": 64,
      "qformer_config": {"use_qformer_text_input": True, "encoder_hidden_size": 99, "cross_attention_frequency": 1,
                         "hidden_size": 96, "num_attention_heads": 6, "layer_norm_eps": 1e-6, "vocab_size": 30523,
                         "max_position_embeddings": 64, "intermediate_size": 200, "num_hidden_layers": 3},
      "vision_config": {"qkv_bias": False, "hidden_size": 64, "num_attention_heads": 4, "layer_norm_eps": 1e-5,
                        "image_size": 56, "patch_size": 7, "num_hidden_layers": 2, "intermediate_size": 128},
      "text_config": {"model_type": "opt", "word_embed_proj_dim": None, "hidden_size": 40, "num_attention_heads": 5,
                      "do_layer_norm_before": False, "_remove_final_layer_norm": True, "enable_bias": False,
                      "layer_norm_elementwise_affine": False, "activation_function": "gelu", "max_length": 33,
                      "eos_token_id": [2, 50118], "tie_word_embeddings": False, "vocab_size": 1000,
                      "ffn_dim": 80, "num_hidden_layers": 3, "max_position_embeddings": 100,
                      "bos_token_id": 0, "pad_token_id": None}}, None),
    ("blip2_text_without_model_type",
     {"model_type": "blip-2", "text_config": {"hidden_size": 32, "num_attention_heads": 4, "word_embed_proj_dim": 16}},
     None),
    ("generation_everything",
     {"model_type": "blip", "architectures": ["BlipForConditionalGeneration"]},
     {"bos_token_id": 30522, "eos_token_id": [102, 2], "pad_token_id": 0, "max_new_tokens": 30,
      "min_new_tokens": 2, "num_beams": 4, "num_return_sequences": 2, "early_stopping": "never",
      "length_penalty": 0.6, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "bad_words_ids": [[5, 6], [7]],
      "suppress_tokens": [1, 2], "begin_suppress_tokens": [3], "forced_bos_token_id": 4,
      "forced_eos_token_id": [8, 9], "exponential_decay_length_penalty": [5, 1.5], "temperature": 0.7,
      "top_k": 10, "top_p": 0.9, "do_sample": True, "some_unknown_key": 1, "min_p": 0.05, "typical_p": 0.95,
      "encoder_no_repeat_ngram_size": 2, "renormalize_logits": True, "remove_invalid_values": True,
      "decoder_start_token_id": 30522, "output_scores": True, "return_dict_in_generate": True, "use_cache": False,
      "epsilon_cutoff": 0.001, "eta_cutoff": 0.002, "diversity_penalty": 0.0, "encoder_repetition_penalty": 1.1,
      "num_beam_groups": 1, "max_length": 50, "min_length": 3}),
    ("generation_early_stopping_true",
     {"model_type": "blip-2", "architectures": ["Blip2ForConditionalGeneration"]},
     {"early_stopping": True, "num_beams": 2, "eos_token_id": 50118}),
]

# Configs HF itself rejects; `error_contains` is what the C++ message must contain.
INLINE_ERRORS = [
    ("t5_three_part_activation",
     {"model_type": "blip-2", "text_config": {"model_type": "t5", "feed_forward_proj": "gated-gelu-x"}}, None,
     "feed_forward_proj"),
    ("t5_prefix_not_gated",
     {"model_type": "blip-2", "text_config": {"model_type": "t5", "feed_forward_proj": "fancy-gelu"}}, None,
     "feed_forward_proj"),
    ("generation_zero_max_new_tokens", {"model_type": "blip"}, {"max_new_tokens": 0}, "max_new_tokens"),
    ("generation_bad_early_stopping", {"model_type": "blip"}, {"early_stopping": "sometimes"}, "early_stopping"),
    ("generation_greedy_many_sequences", {"model_type": "blip"}, {"num_return_sequences": 2},
     "num_return_sequences"),
    ("generation_more_sequences_than_beams", {"model_type": "blip"}, {"num_return_sequences": 5, "num_beams": 3},
     "num_return_sequences"),
]


def write_case_directory(directory, config, generation):
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config, handle)
    if generation is not None:
        with open(os.path.join(directory, "generation_config.json"), "w") as handle:
            json.dump(generation, handle)


def main(fixtures_dir, assets_dir, output_path):
    cases = []
    for name in sorted(os.listdir(fixtures_dir)):
        directory = os.path.join(fixtures_dir, name)
        if os.path.exists(os.path.join(directory, "config.json")):
            cases.append({"name": name, "directory": "fixtures/" + name, **hf_view(directory)})
    for name in ["blip-image-captioning-base", "blip2-opt-2.7b", "blip2-flan-t5-xl"]:
        directory = os.path.join(assets_dir, "tokenizers", name)
        cases.append({"name": name, "directory": "assets/tokenizers/" + name, **hf_view(directory)})
    for name, config, generation in INLINE:
        with tempfile.TemporaryDirectory() as directory:
            write_case_directory(directory, config, generation)
            case = {"name": name, "config_json": config, **hf_view(directory)}
            if generation is not None:
                case["generation_config_json"] = generation
            cases.append(case)
    for name, config, generation, error_contains in INLINE_ERRORS:
        with tempfile.TemporaryDirectory() as directory:
            write_case_directory(directory, config, generation)
            try:
                hf_view(directory)
            except ValueError as error:
                hf_error = str(error).splitlines()[0]
            else:
                raise SystemExit(f"{name}: HF accepted a config expected to be rejected")
        case = {"name": name, "config_json": config, "error_contains": error_contains, "hf_error": hf_error}
        if generation is not None:
            case["generation_config_json"] = generation
        cases.append(case)
    def compact(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    # One case per line keeps the file small and its diffs readable.
    with open(output_path, "w") as handle:
        handle.write('{"generated_by":"tests/data/make_config_expectations.py",\n')
        handle.write(f'"transformers_version":{compact(__import__("transformers").__version__)},\n')
        handle.write(f'"generation_defaults":{compact(restrict_generation(GenerationConfig(), False))},\n')
        handle.write('"cases":[\n' + ",\n".join(compact(case) for case in cases) + "\n]}\n")
    print(f"wrote {len(cases)} cases to {output_path}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
