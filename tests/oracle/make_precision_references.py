#!/usr/bin/env python3
"""References for blipcpp's reduced-precision Linear weights (--precision bf16 / f16 / int8), from Hugging Face.

Run through the oracle environment (../shared/oracle/README.md):

    ../shared/oracle/env.sh tests/oracle/make_precision_references.py FIXTURES_DIR [OUTDIR]

For every model case in FIXTURES_DIR (case.json + model.safetensors + inputs.safetensors, as the oracle wrote
them) and every precision, the f32 model is loaded with from_pretrained, then every torch.nn.Linear weight is
replaced by what blipcpp packs for it (kernels/detail/weight_formats.hpp):
    bf16  w.bfloat16().float()                     (round to nearest even)
    f16   w.half().float()
    int8  scale = amax(|w|, over in_features) / 127 (float32; a zero row gets scale 0),
          q = round-half-even(w / scale) clamped to [-127, 127], w = q * scale
    int4  the same per block of 32 consecutive in_features of each row (the last block may be shorter):
          llama.cpp's Q4_0: scale = m / -8 for the block's weight m of largest magnitude (the first of equal
          magnitudes), q clamped to [-8, 7]
A new Parameter is assigned, so a Linear tied to an embedding (BLIP's text decoder head, OPT's lm_head) is
untied: the embedding lookup keeps the f32 table, as in blipcpp, where only LinearWeights change precision.
Convolutions (the patch embedding), embeddings, norms and biases stay f32 on both sides. Then the oracle's own
recipe (oracle.run_recipe: the same calls, generation kwargs and inputs as the fixture) runs in float32.

    bf16-activations  bf16 weights as above, and the input of every Linear rounded to bf16 (round to nearest
                      even) before the float32 product: blipcpp's ActivationPrecision::BF16. torch.nn.functional.linear
                      is wrapped for the run, which covers nn.Linear and the F.linear calls HF makes with a Linear's
                      weight (Blip2Attention's qkv); the patch embedding is a Conv2d and stays f32 on both sides.
                      Inside the vision model, torch.matmul rounds both operands to bf16 too: the two attention
                      products of every vision layer (q·kᵀ before the scale, and softmax weights · v), the vision
                      model's only matmuls; blipcpp's AttentionOptions::products = BF16, which its vision
                      transformer sets for bf16 activations. The text models' attention stays float32 on both sides.

OUTDIR (default tests/data/precision) receives <case>.<precision>.safetensors: every *_ids output whole, and of
every float output `sample_count(numel)` values at the flat indices i_j = j * numel // count (j = 0 .. count-1),
which the C++ test recomputes; the metadata holds the full shapes. Small files, the whole computation covered.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "..", "..", "shared", "oracle")
sys.path.insert(0, ORACLE)
import oracle  # noqa: E402  (../shared/oracle/oracle.py: run_recipe, the fixtures' calls)
from safetensors.torch import load_file, save_file  # noqa: E402  (the oracle's stand-in)

PRECISIONS = ("bf16", "f16", "int8", "int4", "bf16-activations")
INT4_BLOCK = 32
SAMPLES = 512


def sample_count(numel):
    return min(numel, SAMPLES)


def quantize_int8(weight):
    scale = weight.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(weight / safe[:, None]).clamp(-127, 127)
    q = torch.where(scale[:, None] > 0, q, torch.zeros_like(q))
    return q * scale[:, None]


def quantize_int4(weight):
    rows, columns = weight.shape
    padding = (-columns) % INT4_BLOCK
    blocks = torch.nn.functional.pad(weight, (0, padding)).reshape(rows, -1, INT4_BLOCK)
    # argmax returns the first of equal maxima, as the C++ rule keeps the first
    extreme = torch.gather(blocks, 2, blocks.abs().argmax(dim=2, keepdim=True))[:, :, 0]
    scale = extreme / -8.0
    safe = torch.where(scale != 0, scale, torch.ones_like(scale))
    q = torch.round(blocks / safe[:, :, None]).clamp(-8, 7)
    q = torch.where(scale[:, :, None] != 0, q, torch.zeros_like(q))
    return (q * scale[:, :, None]).reshape(rows, -1)[:, :columns].contiguous()


def round_linear_weights(model, precision):
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight.detach().clone().float()
            if precision in ("bf16", "bf16-activations"):
                w = w.bfloat16().float()
            elif precision == "f16":
                w = w.half().float()
            elif precision == "int4":
                w = quantize_int4(w)
            else:
                w = quantize_int8(w)
            module.weight = torch.nn.Parameter(w, requires_grad=False)
            count += 1
    return count


class RoundedLinearInputs:
    """While active, F.linear rounds its input to bf16 (nearest even) and multiplies in float32."""

    def __enter__(self):
        self.original = torch.nn.functional.linear
        original = self.original

        def linear(input, weight, bias=None):
            return original(input.bfloat16().float(), weight, bias)

        torch.nn.functional.linear = linear
        return self

    def __exit__(self, *exc):
        torch.nn.functional.linear = self.original


class RoundedVisionAttentionProducts:
    """While `vision_model` runs (between its forward pre-hook and hook), torch.matmul rounds both operands to
    bf16 (nearest even) and multiplies in float32."""

    def __init__(self, vision_model):
        self.vision_model = vision_model

    def __enter__(self):
        self.original = torch.matmul
        original = self.original
        depth = [0]

        def matmul(a, b, *args, **kwargs):
            if depth[0] > 0:
                return original(a.bfloat16().float(), b.bfloat16().float(), *args, **kwargs)
            return original(a, b, *args, **kwargs)

        def enter(module, inputs):
            depth[0] += 1

        def leave(module, inputs, output):
            depth[0] -= 1

        torch.matmul = matmul
        self.hooks = [self.vision_model.register_forward_pre_hook(enter),
                      self.vision_model.register_forward_hook(leave)]
        return self

    def __exit__(self, *exc):
        torch.matmul = self.original
        for hook in self.hooks:
            hook.remove()


def reduce_outputs(out):
    reduced, shapes = {}, {}
    for name, value in out.items():
        shapes[name] = list(value.shape)
        if value.dtype == torch.int64:
            reduced[name] = value.contiguous()
            continue
        flat = value.reshape(-1).float()
        count = sample_count(flat.numel())
        indices = torch.tensor([j * flat.numel() // count for j in range(count)], dtype=torch.int64)
        reduced[name] = flat[indices].contiguous()
    return reduced, shapes


def main():
    import transformers
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    fixtures = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "data", "precision")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(2)
    only = set(os.environ.get("PRECISIONS", ",".join(PRECISIONS)).split(","))
    for case_name in sorted(os.listdir(fixtures)):
        case_dir = os.path.join(fixtures, case_name)
        case_file = os.path.join(case_dir, "case.json")
        if not os.path.exists(case_file):
            continue
        with open(case_file) as f:
            case = json.load(f)
        for precision in [p for p in PRECISIONS if p in only]:
            cls = getattr(transformers, case["model_class"])
            model = cls.from_pretrained(case_dir, attn_implementation="eager")
            model.eval()
            linears = round_linear_weights(model, precision)
            inputs = load_file(os.path.join(case_dir, "inputs.safetensors"))
            roundings = ([RoundedLinearInputs(), RoundedVisionAttentionProducts(model.vision_model)]
                         if precision == "bf16-activations" else [])
            with torch.no_grad():
                for rounding in roundings:
                    rounding.__enter__()
                try:
                    out, calls, _ = oracle.run_recipe(case["kind"], model, inputs, case["params"], want_margins=False)
                finally:
                    for rounding in reversed(roundings):
                        rounding.__exit__(None, None, None)
            reduced, shapes = reduce_outputs(out)
            metadata = {
                "format": "pt",
                "made_by": "tests/oracle/make_precision_references.py",
                "case": case_name,
                "precision": precision,
                "linear_layers_rounded": str(linears),
                "samples_per_float_output": str(SAMPLES),
                "shapes": json.dumps(shapes),
                "transformers_version": transformers.__version__,
                "torch_version": torch.__version__,
            }
            path = os.path.join(outdir, f"{case_name}.{precision}.safetensors")
            save_file(reduced, path, metadata=metadata)
            ids = {k: v.tolist() for k, v in out.items() if k.endswith("_ids")}
            print(f"{case_name} {precision}: {linears} Linear layers rounded -> {path}")
            for k, v in ids.items():
                print(f"    {k}: {v}")


if __name__ == "__main__":
    main()
