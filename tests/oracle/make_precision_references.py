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
A new Parameter is assigned, so a Linear tied to an embedding (BLIP's text decoder head, OPT's lm_head) is
untied: the embedding lookup keeps the f32 table, as in blipcpp, where only LinearWeights change precision.
Convolutions (the patch embedding), embeddings, norms and biases stay f32 on both sides. Then the oracle's own
recipe (oracle.run_recipe: the same calls, generation kwargs and inputs as the fixture) runs in float32.

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

PRECISIONS = ("bf16", "f16", "int8")
SAMPLES = 512


def sample_count(numel):
    return min(numel, SAMPLES)


def quantize_int8(weight):
    scale = weight.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(weight / safe[:, None]).clamp(-127, 127)
    q = torch.where(scale[:, None] > 0, q, torch.zeros_like(q))
    return q * scale[:, None]


def round_linear_weights(model, precision):
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight.detach().clone().float()
            if precision == "bf16":
                w = w.bfloat16().float()
            elif precision == "f16":
                w = w.half().float()
            else:
                w = quantize_int8(w)
            module.weight = torch.nn.Parameter(w, requires_grad=False)
            count += 1
    return count


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
    for case_name in sorted(os.listdir(fixtures)):
        case_dir = os.path.join(fixtures, case_name)
        case_file = os.path.join(case_dir, "case.json")
        if not os.path.exists(case_file):
            continue
        with open(case_file) as f:
            case = json.load(f)
        for precision in PRECISIONS:
            cls = getattr(transformers, case["model_class"])
            model = cls.from_pretrained(case_dir, attn_implementation="eager")
            model.eval()
            linears = round_linear_weights(model, precision)
            inputs = load_file(os.path.join(case_dir, "inputs.safetensors"))
            with torch.no_grad():
                out, calls, _ = oracle.run_recipe(case["kind"], model, inputs, case["params"], want_margins=False)
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
