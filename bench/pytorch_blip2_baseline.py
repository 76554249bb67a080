#!/usr/bin/env python3
"""PyTorch baseline for bench/blip2_end_to_end_bench.cpp: a full-size BLIP-2 model with random weights, the same
inputs, the same work and the same thread count, timed with Hugging Face transformers on torch.

Run through the oracle environment (../shared/oracle/README.md), in two steps:
    # once: build the model with HF's own code and save it (15.5 GB for OPT-2.7b in f32)
    ../shared/oracle/env.sh bench/pytorch_blip2_baseline.py make --variant blip2-opt-2.7b --out /work/bench-models/blip2-opt-2.7b
    # time PyTorch on that folder (from_pretrained, as a user would), then blipcpp on the same folder
    ../shared/oracle/env.sh bench/pytorch_blip2_baseline.py time /work/bench-models/blip2-opt-2.7b --threads 2 --runs 3
    OMP_NUM_THREADS=2 build/bench/blip2_end_to_end_bench /work/bench-models/blip2-opt-2.7b --threads 2 --runs 3
Never run the two together: each holds the whole model in RAM.
Without PyTorch building the weights (blipcpp alone, e.g. bf16 weights written directly):
    build/weights_tools/blip_weights make-random ../shared/assets/tokenizers/blip2-opt-2.7b OUT --dtype bf16
    ../shared/oracle/env.sh bench/pytorch_blip2_baseline.py inputs --variant blip2-opt-2.7b --out OUT

`make` uses the real checkpoint's config.json (../shared/assets/tokenizers/<variant>) and the oracle's seeded
initialisation (oracle.randomize, the one the fixtures use), saves with save_pretrained (2 GB shards; the oracle's
safetensors stand-in writes one tensor at a time), copies the tokenizer and processor files, and
writes bench_inputs.safetensors: pixel_values [1, 3, S, S] (a real photo through BlipImageProcessor) and
input_ids [1, T] (Blip2Processor's layout: num_query_tokens <image> tokens when the config has image_token_index,
then the prompt's ids).

`time` prints one JSON line per measurement, with the same names blip2_end_to_end_bench prints:
    <variant>_encode_image       vision model + Q-Former + language projection, as generate() runs them
    <variant>_time_to_first_token  generate(max_new_tokens=1): encode + the prompt's prefill + the first token
    <variant>_generate_<N+1>     generate(max_new_tokens=min_new_tokens=N+1), greedy (EOS cannot stop it)
    <variant>_decode_per_token   (median generate_<N+1> - median time_to_first_token) / N
    <variant>_memory             RSS after loading, peak RSS while running, peak RSS of the whole process (MiB)
    <variant>_generated_ids      the ids of generate_<N+1>, to compare the two engines' outputs
Each time is the median over --runs after one warm-up.

A variant is one VARIANTS entry (the asset folder, the prompt ids); the measurements are the same generate() calls
for a decoder-only (OPT) and an encoder-decoder (Flan-T5) language model. For Flan-T5 the time to first token is
the T5 encoder over [queries ; prompt] plus the first decoder step, after the image encoding.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import time

from timing import time_runs  # bench/timing.py

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "..", "shared", "oracle")
ASSETS = os.path.join(HERE, "..", "..", "shared", "assets")

VARIANTS = {
    "blip2-opt-2.7b": dict(
        assets="tokenizers/blip2-opt-2.7b",  # config.json of Salesforce/blip2-opt-2.7b (image_token_index 50265)
        prompt="Question: what animal is this? Answer:",
        # The OPT tokenizer's ids for the prompt, BOS first (blip_tokenize; HF's fast tokenizer gives the same).
        prompt_ids=[2, 45641, 35, 99, 3477, 16, 42, 116, 31652, 35],
    ),
    "blip2-flan-t5-xl": dict(
        assets="tokenizers/blip2-flan-t5-xl",  # config.json of Salesforce/blip2-flan-t5-xl (no image_token_index)
        prompt="Question: what animal is this? Answer:",
        # The T5 tokenizer's ids, EOS last (blip_tokenize; HF's T5TokenizerFast gives the same).
        prompt_ids=[11860, 10, 125, 2586, 19, 48, 58, 11801, 10, 1],
    ),
}
IMAGE = "images/flickr8k_2108799322_e25aa6e185.jpg"
TOKENIZER_FILES = ["added_tokens.json", "merges.txt", "preprocessor_config.json", "processor_config.json",
                   "special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json", "vocab.json"]


def measurement_prefix(variant):
    """blip2-opt-2.7b -> blip2_opt_2_7b (blip2_end_to_end_bench names its lines the same way)."""
    return variant.replace("-", "_").replace(".", "_")


def memory_mib(field):
    """VmRSS (current) or VmHWM (peak) of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average():
    """The 1-minute load average: other work on the machine distorts every figure (2 cores)."""
    return os.getloadavg()[0]


def reset_peak_rss():
    """Sets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def import_oracle(path, threads):
    os.environ["ORACLE_THREADS"] = str(threads)
    sys.path.insert(0, os.path.abspath(path))
    import oracle  # noqa: E402  the fixtures' generator: randomize() and COMMON make the weights
    return oracle


def cmd_make(args):
    variant = VARIANTS[args.variant]
    oracle = import_oracle(args.oracle, args.threads)
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration
    from transformers.modeling_utils import no_init_weights

    asset_dir = os.path.join(ASSETS, variant["assets"])
    config = Blip2Config.from_pretrained(asset_dir, attn_implementation="eager")
    config.torch_dtype = "float32"
    if args.layers:  # a smoke test of the whole pipeline in seconds; the measurements use the real depth
        for sub_config in (config.vision_config, config.qformer_config, config.text_config):
            sub_config.num_hidden_layers = args.layers
        if hasattr(config.text_config, "num_decoder_layers"):
            config.text_config.num_decoder_layers = args.layers
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    # HF's own initialisation is skipped: oracle.randomize overwrites every parameter anyway. init_weights()
    # then skips tie_weights too, so tie here (OPT's lm_head is embed_tokens, stored once).
    with no_init_weights():
        model = Blip2ForConditionalGeneration(config)
    model.tie_weights()
    oracle.randomize(model, args.seed, dict(oracle.COMMON))
    model.eval()
    print(f"built {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B parameters "
          f"in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    # 2 GB shards (HF's default is 5 GB): from_pretrained then holds at most one shard beside the model, which
    # keeps PyTorch's own load within 24 GiB (the safetensors stand-in reads a shard into memory).
    model.save_pretrained(args.out, max_shard_size="2GB")
    print(f"saved to {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(asset_dir, name)):
            shutil.copyfile(os.path.join(asset_dir, name), os.path.join(args.out, name))
    write_inputs(args.variant, config, args.out)


def write_inputs(variant_name, config, out):
    """bench_inputs.safetensors in `out`: the photo through BlipImageProcessor and the prompt's ids."""
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import BlipImageProcessor

    variant = VARIANTS[variant_name]
    size = config.vision_config.image_size
    processor = BlipImageProcessor(size={"height": size, "width": size})  # bicubic, CLIP mean/std, as Blip2Processor
    pixel_values = processor(images=Image.open(os.path.join(ASSETS, IMAGE)).convert("RGB"),
                             return_tensors="pt")["pixel_values"]
    image_tokens = [config.image_token_index] * config.num_query_tokens if config.image_token_index is not None else []
    input_ids = torch.tensor([image_tokens + variant["prompt_ids"]], dtype=torch.int64)
    save_file({"pixel_values": pixel_values.contiguous(), "input_ids": input_ids},
              os.path.join(out, "bench_inputs.safetensors"),
              metadata={"variant": variant_name, "prompt": variant["prompt"], "image": IMAGE})


def cmd_inputs(args):
    """Only bench_inputs.safetensors, for a folder made another way (blip_weights make-random CONFIG_DIR OUT,
    from the same asset folder): blipcpp can then be timed on it without building the model in PyTorch."""
    import_oracle(args.oracle, args.threads)
    from transformers import Blip2Config

    config = Blip2Config.from_pretrained(os.path.join(ASSETS, VARIANTS[args.variant]["assets"]))
    write_inputs(args.variant, config, args.out)


def cmd_time(args):
    import_oracle(args.oracle, args.threads)
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import Blip2ForConditionalGeneration

    torch.set_num_threads(args.threads)
    inputs_path = os.path.join(args.model, "bench_inputs.safetensors")
    with safe_open(inputs_path, framework="pt") as inputs_file:
        name = measurement_prefix(inputs_file.metadata()["variant"])
    started = time.perf_counter()
    dtype = getattr(torch, args.dtype)
    model = Blip2ForConditionalGeneration.from_pretrained(args.model, attn_implementation="eager",
                                                          torch_dtype=dtype).eval()
    load_seconds = time.perf_counter() - started
    inputs = load_file(inputs_path)
    pixel_values, input_ids = inputs["pixel_values"].to(dtype), inputs["input_ids"]
    attention_mask = torch.ones_like(input_ids)
    rss_after_load = memory_mib("VmRSS")
    peak_while_loading = memory_mib("VmHWM")
    reset = reset_peak_rss()

    def report(measurement, **fields):
        print(json.dumps({"name": f"{name}_{measurement}", "engine": "pytorch", "threads": args.threads,
                          "dtype": args.dtype, **fields}), flush=True)

    def timed(measurement, function):
        median, times = time_runs(function, args.runs)
        report(measurement, median_seconds=median, runs=times)
        return median

    def encode_image():
        # What Blip2ForConditionalGeneration.generate runs before the language model.
        image_embeds = model.vision_model(pixel_values, return_dict=True).last_hidden_state
        image_attention_mask = torch.ones(image_embeds.size()[:-1], dtype=torch.long)
        query_tokens = model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        query_output = model.qformer(query_embeds=query_tokens, encoder_hidden_states=image_embeds,
                                     encoder_attention_mask=image_attention_mask, return_dict=True).last_hidden_state
        return model.language_projection(query_output)

    def generate(new_tokens):
        # min_new_tokens = max_new_tokens: exactly that many tokens whatever the random weights predict.
        return model.generate(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                              max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1)

    decode_tokens = args.new_tokens
    with torch.no_grad():
        timed("encode_image", encode_image)
        first = timed("time_to_first_token", lambda: generate(1))
        total = timed(f"generate_{decode_tokens + 1}", lambda: generate(decode_tokens + 1))
        report("decode_per_token", median_seconds=(total - first) / decode_tokens, tokens=decode_tokens)
        report("generated_ids", ids=generate(decode_tokens + 1)[0].tolist())
    report("memory", load_seconds=load_seconds, rss_after_load_mib=rss_after_load,
           peak_rss_loading_mib=peak_while_loading,
           peak_rss_running_mib=memory_mib("VmHWM") if reset else None,
           peak_rss_mib=max(peak_while_loading, memory_mib("VmHWM")),
           prompt_tokens=int(input_ids.shape[1]), torch=torch.__version__, load_average=load_average())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--oracle", default=os.environ.get("BLIP_ORACLE_DIR", ORACLE), help="shared/oracle folder")
    common.add_argument("--threads", type=int, default=2)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", parents=[common], help="build a full-size random-weight model folder")
    make.add_argument("--variant", choices=sorted(VARIANTS), default="blip2-opt-2.7b")
    make.add_argument("--out", required=True, help="model folder to write (outside the repository: 15+ GB)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--layers", type=int, help="every sub-model this deep (smoke test; default: the real config)")
    make.set_defaults(run=cmd_make)
    inputs = commands.add_parser("inputs", parents=[common], help="write only bench_inputs.safetensors into a folder")
    inputs.add_argument("--variant", choices=sorted(VARIANTS), default="blip2-opt-2.7b")
    inputs.add_argument("--out", required=True, help="the model folder (e.g. from blip_weights make-random)")
    inputs.set_defaults(run=cmd_inputs)
    measure = commands.add_parser("time", parents=[common], help="time PyTorch on a folder `make` wrote")
    measure.add_argument("model", help="the folder `make` wrote")
    measure.add_argument("--runs", type=int, default=3)
    measure.add_argument("--new-tokens", type=int, default=20, help="decode steps timed after the first token")
    measure.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                         help="the whole model in this type (bfloat16: PyTorch's reduced-precision path)")
    measure.set_defaults(run=cmd_time)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
