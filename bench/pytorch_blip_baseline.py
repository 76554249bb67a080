#!/usr/bin/env python3
"""PyTorch baseline for bench/blip_end_to_end_bench.cpp: the same full-size BLIP models, the same weights,
the same work, the same thread count, timed with Hugging Face transformers on torch.

Run through the oracle environment (../shared/oracle/README.md):
    ../shared/oracle/env.sh bench/pytorch_blip_baseline.py --out /tmp/blip-bench [--threads 2] [--runs 5]
It writes two model folders with save_pretrained (weights made exactly as the oracle's `perf` command makes
them: BLIP-base sizes, seeded random weights):
    OUT/caption  BlipForConditionalGeneration (Salesforce/blip-image-captioning-base shapes, 384 px)
    OUT/vqa      BlipForQuestionAnswering     (Salesforce/blip-vqa-base shapes)
and prints one JSON line per measurement (median seconds over --runs, after one warm-up) that
docs/performance.md compares with the C++ benchmark run on the same folders:
    BLIP_BENCH_MODEL_DIR=OUT build/bench/blip_end_to_end_bench
"""
import argparse
import json
import os
import resource
import sys

from timing import time_runs  # bench/timing.py

ORACLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "oracle")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the two model folders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="time the models cast to this dtype (the saved folders stay float32): PyTorch's bf16 path")
    parser.add_argument("--oracle", default=os.environ.get("BLIP_ORACLE_DIR", ORACLE), help="shared/oracle folder")
    args = parser.parse_args()

    os.environ["ORACLE_THREADS"] = str(args.threads)
    sys.path.insert(0, os.path.abspath(args.oracle))
    import torch
    import oracle  # the fixtures' generator: randomize() and COMMON make the weights
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # As oracle.py `perf`: Salesforce/blip-image-captioning-base sizes (ViT-B/16 at 384, BERT-base text, 12 heads).
    config = BlipConfig(text_config={"num_attention_heads": 12}, vision_config={"initializer_range": 0.02},
                        attn_implementation="eager")
    pixel_values = torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(1))
    question = torch.tensor([[101, 2129, 2116, 8870, 2024, 1999, 1996, 3861, 1029, 102]])

    def timed(name, function):
        median, times = time_runs(function, args.runs)
        print(json.dumps({"name": name, "dtype": args.dtype, "median_seconds": median, "runs": times,
                          "threads": args.threads, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
              flush=True)

    os.makedirs(args.out, exist_ok=True)
    with torch.no_grad():
        model = BlipForConditionalGeneration(config).eval()
        oracle.randomize(model, 0, dict(oracle.COMMON))
        model.save_pretrained(os.path.join(args.out, "caption"))
        from safetensors.torch import save_file
        save_file({"pixel_values": pixel_values.contiguous(), "question_input_ids": question},
                  os.path.join(args.out, "inputs.safetensors"))
        dtype = getattr(torch, args.dtype)
        model = model.to(dtype)
        pixel_values = pixel_values.to(dtype)
        timed("caption_vision_encoder", lambda: model.vision_model(pixel_values=pixel_values))
        # min_new_tokens = max_new_tokens: exactly 20 new tokens whatever the random weights predict.
        greedy = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, num_beams=1)
        timed("caption_generate_20_greedy", lambda: model.generate(pixel_values=pixel_values, **greedy))
        beams = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, num_beams=3)
        timed("caption_generate_20_beam3", lambda: model.generate(pixel_values=pixel_values, **beams))
        del model
        vqa = BlipForQuestionAnswering(config).eval()
        oracle.randomize(vqa, 0, dict(oracle.COMMON))
        vqa.save_pretrained(os.path.join(args.out, "vqa"))
        vqa = vqa.to(dtype)
        five = dict(max_new_tokens=5, min_new_tokens=5, do_sample=False, num_beams=1)
        timed("vqa_generate_5_greedy", lambda: vqa.generate(input_ids=question, pixel_values=pixel_values, **five))


if __name__ == "__main__":
    main()
