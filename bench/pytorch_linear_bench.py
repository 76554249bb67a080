#!/usr/bin/env python3
"""PyTorch's torch.nn.functional.linear at linear_bench's shapes, in float32 and bfloat16: the peer of blipcpp's
Linear kernels (bench/linear_bench.cpp), same shapes, same thread count. In bfloat16 PyTorch runs oneDNN's matmul
(AVX512-BF16 or AMX where the CPU has them), the path blipcpp's bf16 kernels are measured against.

    /usr/bin/python3 bench/pytorch_linear_bench.py [--threads 2] [--min-time 0.5] [--dtype float32,bfloat16] [--shapes a,b]

Prints one JSON line per shape and dtype: the median seconds per call over repetitions of at least --min-time, and
the same counters linear_bench reports (FLOP/s; weight bytes/s for decode shapes, weights rotated through copies
that exceed the last-level cache as linear_bench does).
"""
import argparse
import json
import statistics
import time

import torch

# bench/linear_bench.cpp kShapes (name, rows, in, out).
SHAPES = [
    ("vit_b_qkv", 577, 768, 2304), ("vit_b_fc1", 577, 768, 3072), ("vit_b_fc2", 577, 3072, 768),
    ("vit_b_proj", 577, 768, 768), ("vit_l_qkv", 577, 1024, 3072), ("vit_l_fc1", 577, 1024, 4096),
    ("vit_g_qkv", 257, 1408, 4224), ("vit_g_fc1", 257, 1408, 6144), ("vit_g_fc2", 257, 6144, 1408),
    ("bert_proj", 40, 768, 768), ("bert_fc1", 40, 768, 3072), ("bert_short", 10, 768, 768),
    ("dec_fc1", 1, 768, 3072), ("dec_lm_head", 1, 768, 30524), ("opt27_fc1", 1, 2560, 10240),
    ("beams3_fc1", 3, 768, 3072), ("beams3_lm_head", 3, 768, 30524), ("beams8_opt27_fc1", 8, 2560, 10240),
    ("beams12_opt27_fc1", 12, 2560, 10240),
]
ROTATION_BYTES = 512 << 20  # as linear_bench's kRotationBytes: more than any L3 these VMs have


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--dtype", default="float32,bfloat16")
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = set(filter(None, args.shapes.split(",")))
    generator = torch.Generator().manual_seed(1)
    for dtype_name in args.dtype.split(","):
        dtype = getattr(torch, dtype_name)
        for name, rows, inputs, outputs in SHAPES:
            if wanted and name not in wanted:
                continue
            element = torch.tensor([], dtype=dtype).element_size()
            decode = rows <= 12
            copies = max(1, -(-ROTATION_BYTES // (inputs * outputs * element))) if decode else 1
            weights = [(torch.rand(outputs, inputs, generator=generator) * 2 - 1).to(dtype) for _ in range(copies)]
            bias = (torch.rand(outputs, generator=generator) * 2 - 1).to(dtype)
            x = (torch.rand(rows, inputs, generator=generator) * 2 - 1).to(dtype)
            with torch.no_grad():
                for weight in weights[:2]:
                    torch.nn.functional.linear(x, weight, bias)  # warm-up (oneDNN primitive creation)
                samples = []
                for _ in range(args.repetitions):
                    calls, start, index = 0, time.perf_counter(), 0
                    while True:
                        torch.nn.functional.linear(x, weights[index], bias)
                        index = (index + 1) % copies
                        calls += 1
                        elapsed = time.perf_counter() - start
                        if elapsed >= args.min_time:
                            break
                    samples.append(elapsed / calls)
            seconds = statistics.median(samples)
            print(json.dumps({
                "name": f"linear/pytorch-{dtype_name}/{name}/{rows}x{inputs}x{outputs}", "dtype": dtype_name,
                "threads": args.threads, "seconds": seconds, "FLOP": 2 * rows * inputs * outputs / seconds,
                "weight_bytes": element * inputs * outputs / seconds, "torch": torch.__version__,
                "mkldnn_bf16": torch.backends.mkldnn.is_available(),
            }), flush=True)


if __name__ == "__main__":
    main()
