#!/usr/bin/env python3
"""What PyTorch's own reduced precision costs on an oracle case: the PyTorch peer of `blip_run_case --accuracy`.

    ../shared/oracle/env.sh bench/pytorch_precision_accuracy.py CASE_DIR... [--dtype bfloat16] [--threads 2]

Loads each case's model with Hugging Face's from_pretrained(torch_dtype=DTYPE) (so HF's own rules apply, e.g.
Blip2ForConditionalGeneration keeps T5's `wo` layers in float32), recomputes every logits output whose case.json
call is a plain `model(...).<field>` (teacher-forced LM logits, ITM logits; the VQA answer logits, captured by a
hook, are skipped and named), and compares them with the case's float32 outputs.safetensors with the measures
blip_run_case uses (tests/parity/precision_accuracy.hpp): max |diff| / max |ref| per output (the largest over
the outputs), mean |diff| / mean |ref|, top-1 agreement and the largest HF float32 top-2 gap where the arg-max
differs. Prints one table row, as blip_run_case does. Generated ids are not compared (PyTorch's reduced-precision
generate is slow on a CPU and its ids are not this table's subject).
"""
import argparse
import json
import os
import re
import time

import torch


def top_two_gap(rows):
    best = torch.topk(rows, 2, dim=-1).values
    return best[..., 0] - best[..., 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case_dirs", nargs="+")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import transformers
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    max_error, error_sum, reference_sum = 0.0, 0.0, 0.0
    positions, agreements, largest_gap_where_parted = 0, 0, 0.0
    started = time.time()
    for case_dir in args.case_dirs:
        with open(os.path.join(case_dir, "case.json")) as f:
            case = json.load(f)
        model_class = getattr(transformers, case["model_class"])
        model = model_class.from_pretrained(case_dir, torch_dtype=dtype, attn_implementation="eager").eval()
        inputs = load_file(os.path.join(case_dir, "inputs.safetensors"))
        expected = load_file(os.path.join(case_dir, "outputs.safetensors"))
        names = {name: (tensor.to(dtype) if tensor.is_floating_point() else tensor) for name, tensor in inputs.items()}
        for name, description in case["outputs"].items():
            if not name.endswith("logits"):
                continue
            call = re.match(r"(model\([^()]*\)\.\w+)(\s|$)", description["call"])
            if call is None:
                print(f"# {case_dir}: {name} skipped (not a plain model(...).field call)")
                continue
            with torch.no_grad():
                actual = eval(call.group(1), {"model": model}, dict(names)).float()  # the case's own call text
            reference = expected[name].float()
            if actual.shape != reference.shape:
                raise SystemExit(f"{case_dir}: {name}: PyTorch gave {list(actual.shape)}, the case holds "
                                 f"{list(reference.shape)}")
            difference = (actual - reference).abs()
            max_error = max(max_error, (difference.max() / reference.abs().max().clamp_min(1e-30)).item())
            error_sum += difference.sum().item()
            reference_sum += reference.abs().sum().item()
            rows, want = actual.reshape(-1, actual.shape[-1]), reference.reshape(-1, reference.shape[-1])
            same = rows.argmax(-1) == want.argmax(-1)
            positions += same.numel()
            agreements += int(same.sum())
            if not bool(same.all()):
                largest_gap_where_parted = max(largest_gap_where_parted, top_two_gap(want[~same]).max().item())
        del model
    print(json.dumps({"dtype": args.dtype, "cases": args.case_dirs, "threads": args.threads}))
    print(f"| PyTorch {args.dtype} (HF from_pretrained) | {max_error:.2e} | {error_sum / max(reference_sum, 1e-30):.2e} | "
          f"{100.0 * agreements / max(positions, 1):.2f}% of {positions} | {largest_gap_where_parted:.3g} | | "
          f"{time.time() - started:.0f} |")


if __name__ == "__main__":
    main()
